/* `tern replication run|delete` and the schedule, on the VM's owner
 * (docs/replication.md): a sync is a task ("replicate") that asks the
 * target's ternd for a tern-replica, sends the running tern-vmm
 * repl_attach (a disk not replicated yet) and repl_sync, and records how
 * it went in etcd (cluster/replication.h). */
#ifndef TERN_NODE_REPLSYNC_H
#define TERN_NODE_REPLSYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/err.h"
#include "node/task.h"
#include "node/vmm.h"

struct node_ctx;

/* Starts a sync of vm vmid's replication as a task of this node (its
 * owner); *id its id. -EBUSY when a task works on the VM. */
int replsync_start(struct node_ctx *x, uint32_t vmid, char id[TASK_ID_MAX], struct err *e);
/* Ends the replication: the bitmaps detached (a running VM) or removed,
 * the replicas removed on the target, the job and its state out of etcd. */
int replsync_delete(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                    struct err *e);
/* Whether a migration of the running VM to target may mirror only the
 * delta into a copy of the replica there (`nbd_delta`): the VM's job goes
 * to target, every local disk is replicated without a full sync needed,
 * and a sync committed there. */
bool replsync_delta_ready(struct node_ctx *x, struct etcd_client *c,
                          const struct vmm_spec *spec, const char *target);
/* Main loop: starts the syncs that are due of this node's running VMs. */
void replsync_tick(struct node_ctx *x, struct etcd_client *c);

#endif
