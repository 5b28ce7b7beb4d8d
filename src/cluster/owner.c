#include "cluster/owner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int vmowner_get(struct etcd_client *c, uint32_t id, unsigned flags,
                char owner[TERN_NAME_MAX + 1], int64_t *rev, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_vm_owner(key, id, e);
    if (rc)
        return rc;
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    rc = etcd_get(c, key, flags, &kv, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %" PRIu32 " has no owner", id);
    if (!rc) {
        snprintf(owner, TERN_NAME_MAX + 1, "%s", kv.value ? kv.value : "");
        if (rev)
            *rev = kv.mod_revision;
    }
    etcd_kv_release(&kv);
    return rc;
}

static int lock_key(char key[TERN_KEY_MAX], const char *vmid, const char *holder,
                    struct err *e)
{
    if (!holder || !*holder || strlen(holder) > VMLOCK_HOLDER_MAX)
        return err_set(e, EINVAL, "vm %s: lock holder must be 1..%d characters", vmid,
                       VMLOCK_HOLDER_MAX);
    return keys_build(key, TERN_PREFIX_LOCKS, vmid, NULL, "vm id", e);
}

int vmlock_acquire(struct etcd_client *c, const char *vmid, const char *holder,
                   int64_t lease, char holder_now[VMLOCK_HOLDER_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = lock_key(key, vmid, holder, e);
    if (rc)
        return rc;
    if (lease == 0)
        return err_set(e, EINVAL,
                       "vm %s: a lock needs a lease (it must end "
                       "with its node)",
                       vmid);
    struct etcd_cas op = {
        .key = key, .cmp = ETCD_CMP_ABSENT, .new_value = holder, .lease = lease};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (!rc && !swapped) {
        if (holder_now)
            snprintf(holder_now, VMLOCK_HOLDER_MAX + 1, "%s", now.value ? now.value : "");
        rc = err_set(e, EBUSY, "vm %s is locked by %s", vmid,
                     now.value ? now.value : "(released meanwhile)");
    }
    etcd_kv_release(&now);
    return rc;
}

int vmlock_release(struct etcd_client *c, const char *vmid, const char *holder,
                   struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = lock_key(key, vmid, holder, e);
    if (rc)
        return rc;
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_VALUE, .expect_value = holder};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (!rc && !swapped)
        rc = now.value ? err_set(e, EPERM, "vm %s is locked by %s, not %s", vmid, now.value,
                                 holder)
                       : err_set(e, ENOENT, "vm %s is not locked", vmid);
    etcd_kv_release(&now);
    return rc;
}
