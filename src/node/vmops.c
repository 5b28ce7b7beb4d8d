#include "node/vmops.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "node/ternd.h"

int vm_spec_load(struct etcd_client *c, uint32_t id, struct vmm_spec *spec,
                 struct err *e)
{
    memset(spec, 0, sizeof(*spec));
    int rc = vm_conf_get(c, id, 0, &spec->conf, e);
    for (unsigned i = 0; rc == 0 && i < spec->conf.ndisks; i++) {
        struct storage_conf s;
        const struct vm_disk_conf *d = &spec->conf.disks[i];
        rc = storage_get(c, d->storage, 0, &s, e);
        if (rc == -ENOENT)
            rc = err_set(e, ENOENT, "vm %u: disk %u is on storage '%s', which does not "
                         "exist", id, i, d->storage);
        if (rc == 0)
            rc = storage_volume_path(&s, d->volume, spec->disk[i], e);
        spec->shared[i] = s.shared;
    }
    return rc;
}

static void vmid_text(uint32_t id, char out[16])
{
    snprintf(out, 16, "%u", id);
}

int vm_task_lock(struct ternd *t, struct etcd_client *c, struct task *k, struct err *e)
{
    char vmid[16], holder[VM_HOLDER_MAX + 1] = "";
    vmid_text(k->vmid, vmid);
    int64_t lease = node_lease(&t->node);
    if (!lease)
        return err_set(e, ETCD_NOT_QUORATE, ETCD_NOT_QUORATE_MSG);
    int rc = vm_lock_acquire(c, vmid, k->id, lease, holder, e);
    if (rc == -EBUSY)
        return err_set(e, EBUSY, "vm %u is locked by task %s", k->vmid, holder);
    return rc;
}

void vm_task_unlock(struct etcd_client *c, struct task *k)
{
    char vmid[16];
    struct err e;
    vmid_text(k->vmid, vmid);
    /* without quorum the lock goes with the node's lease, or the next try */
    vm_lock_release(c, vmid, k->id, &e);
}

int vm_owner_of(struct etcd_client *c, uint32_t id, char owner[TERN_NAME_MAX + 1],
                struct err *e)
{
    char vmid[16];
    vmid_text(id, vmid);
    int rc = vm_owner_get(c, vmid, 0, owner, e);
    return rc == -ENOENT ? err_set(e, ENOENT, "vm %u does not exist", id) : rc;
}
