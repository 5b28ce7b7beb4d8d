/* What VM tasks share: a VM's process spec from its config (disks resolved
 * to files through their storage), and the per-VM task lock. */
#ifndef TERN_NODE_VMOPS_H
#define TERN_NODE_VMOPS_H

#include "cluster/etcd.h"
#include "node/task.h"
#include "node/vmm.h"

struct ternd;

/* Config and storage read linearizably (-ENOLINK without quorum). */
int vm_spec_load(struct etcd_client *c, uint32_t id, struct vmm_spec *spec,
                 struct err *e);
/* The VM's task lock for task k under this node's lease; -EBUSY naming the
 * task that holds it. */
int vm_task_lock(struct ternd *t, struct etcd_client *c, struct task *k, struct err *e);
void vm_task_unlock(struct etcd_client *c, struct task *k);
/* The owner of vm id, linearizable; -ENOENT "vm 100 does not exist". */
int vm_owner_of(struct etcd_client *c, uint32_t id, char owner[TERN_NAME_MAX + 1],
                struct err *e);

#endif
