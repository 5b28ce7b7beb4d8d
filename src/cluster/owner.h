/* VM ownership and per-VM task locks.
 *
 * /tern/vms/<id>/owner holds the name of the one node that may run the VM.
 * A live migration's handover is committed by vm_owner_move, a
 * compare-and-swap from the source to the destination (DESIGN invariant 2):
 * the destination resumes only when it returns 0 (VM_MOVE_COMMITTED), the
 * source resumes only on VM_MOVE_REFUSED. VM_MOVE_UNKNOWN (quorum lost with
 * the request in flight: it may yet be applied) leaves both paused until a
 * linearizable vm_owner_get, or the same vm_owner_move again, says which.
 *
 * The owner key has no lease: a VM belongs to its node even while that node
 * is offline. A task lock does have one (the node's heartbeat lease), so the
 * locks of a node that died go away with it. */
#ifndef TERN_CLUSTER_OWNER_H
#define TERN_CLUSTER_OWNER_H

#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

#define VM_HOLDER_MAX 127

enum vm_move_result {
    VM_MOVE_COMMITTED,   /* etcd names `to` the owner */
    VM_MOVE_REFUSED,     /* certainly not applied: the source may resume */
    VM_MOVE_UNKNOWN,     /* may or may not be applied: nobody resumes yet */
};

/* 0 with owner filled, -ENOENT when the VM has no owner. flags as etcd_get
 * (a serializable read may be stale: never decide a handover on it). */
int vm_owner_get(struct etcd_client *c, const char *vmid, unsigned flags,
                 char owner[TERN_NAME_MAX + 1], struct err *e);
/* Makes node the owner of a VM that has none (creating a VM). Claiming a VM
 * already owned by node is 0 too; owned by another: -EEXIST, owner_now
 * (may be NULL) names it. */
int vm_owner_claim(struct etcd_client *c, const char *vmid, const char *node,
                   char owner_now[TERN_NAME_MAX + 1], struct err *e);
/* The handover commit: owner from -> to, atomically. 0 when committed;
 * -ESTALE when the owner was not `from` (owner_now names it, "" for none);
 * -ENOLINK "cluster not quorate" with *res telling whether it may have been
 * applied; -EINVAL for bad names. */
int vm_owner_move(struct etcd_client *c, const char *vmid, const char *from,
                  const char *to, enum vm_move_result *res,
                  char owner_now[TERN_NAME_MAX + 1], struct err *e);
/* Takes /tern/locks/vm/<id> for holder (free text, e.g. "node1 task 42")
 * under lease (non-zero). -EBUSY when held: holder_now (may be NULL) says
 * by whom. */
int vm_lock_acquire(struct etcd_client *c, const char *vmid, const char *holder,
                    int64_t lease, char holder_now[VM_HOLDER_MAX + 1],
                    struct err *e);
/* Drops the lock if holder has it; -EPERM if someone else does, -ENOENT if
 * nobody does (e.g. its lease ended). */
int vm_lock_release(struct etcd_client *c, const char *vmid, const char *holder,
                    struct err *e);

#endif
