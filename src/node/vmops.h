/* What the operations on a VM share (start, stop, destroy, migrate): its
 * process spec from its config (disks resolved to files through their
 * storage), its owner, and its lock. A VM's lock is taken only through
 * vmops_lock: by a task (vmops_task_locked) or by a destroy. */
#ifndef TERN_NODE_VMOPS_H
#define TERN_NODE_VMOPS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "common/err.h"
#include "node/task.h"
#include "node/vmm.h"

struct node_ctx;

/* mkdir -p: a local storage's directory appears on first use on each node. */
int vmops_make_dirs(const char *path, struct err *e);
/* Config and storage read linearizably (-ENOLINK without quorum). */
/* The disks' paths are those on node ("{node}" in a storage path). */
int vmops_spec_load(struct etcd_client *c, uint32_t id, const char *node,
                    struct vmm_spec *spec, struct err *e);
/* The owner of vm id, linearizable; -ENOENT "vm 100 does not exist". */
int vmops_owner(struct etcd_client *c, uint32_t id, char owner[TERN_NAME_MAX + 1],
                struct err *e);

/* How the holder of a lock reads in a message: "task UPID:..." for a
 * task, else the holder quoted ('n1 destroy'). */
void vmops_holder_text(const char *holder, char *out, size_t size);
/* VM vmid's lock for holder under this node's lease: -EBUSY "vm 100 is
 * locked by task UPID:...", -ENOLINK when this node is not online. */
int vmops_lock(struct node_ctx *x, struct etcd_client *c, uint32_t vmid, const char *holder,
               struct err *e);
/* 0, -ENOENT or -EPERM when holder does not have it (any more), other
 * -errno when etcd did not answer. */
int vmops_unlock(struct etcd_client *c, uint32_t vmid, const char *holder, struct err *e);
/* body(k, c) with the VM's lock held by task k, on an etcd client of the
 * task's own (tasks run in their own threads). */
int vmops_task_locked(struct task *k,
                      int (*body)(struct task *k, struct etcd_client *c, struct err *e),
                      struct err *e);

#endif
