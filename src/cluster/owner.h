/* VM ownership and per-VM task locks.
 *
 * /tern/vms/<id>/owner holds the name of the one node that may run the VM.
 * It is written when the VM is created (vmconf_create, in the same
 * transaction as its config) and by a live migration's handover
 * (cluster/handover.h: handover_commit, a compare-and-swap from the source
 * to the destination, docs/design.md, invariant 2).
 *
 * The owner key has no lease: a VM belongs to its node even while that node
 * is offline. A task lock does have one (the node's heartbeat lease), so the
 * locks of a node that died go away with it. */
#ifndef TERN_CLUSTER_OWNER_H
#define TERN_CLUSTER_OWNER_H

#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

#define VMLOCK_HOLDER_MAX 127

/* 0 with owner filled and *rev (may be NULL) the revision of its last
 * change; -ENOENT when the VM has no owner. flags as etcd_get (a
 * serializable read may be stale: never decide a handover on it). */
int vmowner_get(struct etcd_client *c, uint32_t id, unsigned flags,
                char owner[TERN_NAME_MAX + 1], int64_t *rev, struct err *e);
/* Takes /tern/locks/vm/<id> for holder (free text, e.g. "node1 task 42")
 * under lease (non-zero). -EBUSY when held: holder_now (may be NULL) says
 * by whom. */
int vmlock_acquire(struct etcd_client *c, const char *vmid, const char *holder,
                   int64_t lease, char holder_now[VMLOCK_HOLDER_MAX + 1], struct err *e);
/* Drops the lock if holder has it; -EPERM if someone else does, -ENOENT if
 * nobody does (e.g. its lease ended). */
int vmlock_release(struct etcd_client *c, const char *vmid, const char *holder,
                   struct err *e);

#endif
