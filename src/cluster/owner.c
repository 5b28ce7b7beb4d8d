#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/handover.h"
#include "cluster/owner.h"

static int owner_key(char key[TERN_KEY_MAX], const char *vmid, struct err *e)
{
    return keys_build(key, TERN_PREFIX_VMS, vmid, "/owner", "vm id", e);
}

static void copy_out(char *dst, size_t size, const struct etcd_kv *kv)
{
    if (dst)
        snprintf(dst, size, "%s", kv->value ? kv->value : "");
}

int vm_owner_get(struct etcd_client *c, const char *vmid, unsigned flags,
                 char owner[TERN_NAME_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = owner_key(key, vmid, e);
    if (rc < 0)
        return rc;
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    rc = etcd_get(c, key, flags, &kv, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %s has no owner", vmid);
    if (rc == 0)
        copy_out(owner, TERN_NAME_MAX + 1, &kv);
    etcd_kv_release(&kv);
    return rc;
}

int vm_owner_claim(struct etcd_client *c, const char *vmid, const char *node,
                   char owner_now[TERN_NAME_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = owner_key(key, vmid, e);
    if (rc == 0)
        rc = name_check(node, "node name", e);
    if (rc < 0)
        return rc;
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_ABSENT, .new_value = node};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (rc == 0 && !swapped) {
        copy_out(owner_now, TERN_NAME_MAX + 1, &now);
        if (!now.value || strcmp(now.value, node) != 0)
            rc = err_set(e, EEXIST, "vm %s is owned by %s", vmid,
                         now.value ? now.value : "nobody");
    } else if (rc == 0) {
        if (owner_now)
            snprintf(owner_now, TERN_NAME_MAX + 1, "%s", node);
    }
    etcd_kv_release(&now);
    return rc;
}

static int move_check(const char *vmid, const char *from, const char *to,
                      char key[TERN_KEY_MAX], struct err *e)
{
    int rc = owner_key(key, vmid, e);
    if (rc == 0)
        rc = name_check(from, "source node", e);
    if (rc == 0)
        rc = name_check(to, "destination node", e);
    if (rc == 0 && strcmp(from, to) == 0)
        rc = err_set(e, EINVAL, "vm %s: source and destination are both %s", vmid, to);
    return rc;
}

int vm_owner_move(struct etcd_client *c, const char *vmid, const char *from,
                  const char *to, enum vm_move_result *res,
                  char owner_now[TERN_NAME_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    *res = VM_MOVE_REFUSED;
    if (owner_now)
        owner_now[0] = '\0';
    int rc = move_check(vmid, from, to, key, e);
    if (rc < 0)
        return rc;
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_VALUE, .expect_value = from,
                          .new_value = to};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (rc < 0) {
        *res = c->maybe_applied ? VM_MOVE_UNKNOWN : VM_MOVE_REFUSED;
        return rc;
    }
    if (owner_now)
        snprintf(owner_now, TERN_NAME_MAX + 1, "%s", swapped ? to : now.value ? now.value : "");
    /* owner already `to`: our own earlier attempt (retried by the client
     * after a member failed mid-request) or another's, either way etcd names
     * the destination and the source must not resume */
    if (swapped || (now.value && strcmp(now.value, to) == 0))
        *res = VM_MOVE_COMMITTED;
    else
        rc = err_set(e, ESTALE, "vm %s: owner is %s, not %s", vmid,
                     now.value ? now.value : "nobody", from);
    etcd_kv_release(&now);
    return rc;
}

static int lock_key(char key[TERN_KEY_MAX], const char *vmid, const char *holder,
                    struct err *e)
{
    if (!holder || !*holder || strlen(holder) > VM_HOLDER_MAX)
        return err_set(e, EINVAL, "vm %s: lock holder must be 1..%d characters",
                       vmid, VM_HOLDER_MAX);
    return keys_build(key, TERN_PREFIX_LOCKS, vmid, NULL, "vm id", e);
}

int vm_lock_acquire(struct etcd_client *c, const char *vmid, const char *holder,
                    int64_t lease, char holder_now[VM_HOLDER_MAX + 1],
                    struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = lock_key(key, vmid, holder, e);
    if (rc < 0)
        return rc;
    if (lease == 0)
        return err_set(e, EINVAL, "vm %s: a lock needs a lease (it must end "
                       "with its node)", vmid);
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_ABSENT, .new_value = holder,
                          .lease = lease};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (rc == 0 && !swapped) {
        copy_out(holder_now, VM_HOLDER_MAX + 1, &now);
        rc = err_set(e, EBUSY, "vm %s is locked by %s", vmid,
                     now.value ? now.value : "(released meanwhile)");
    }
    etcd_kv_release(&now);
    return rc;
}

int vm_lock_release(struct etcd_client *c, const char *vmid, const char *holder,
                    struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = lock_key(key, vmid, holder, e);
    if (rc < 0)
        return rc;
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_VALUE, .expect_value = holder};
    bool swapped;
    struct etcd_kv now;
    rc = etcd_cas(c, &op, &swapped, &now, e);
    if (rc == 0 && !swapped)
        rc = now.value ? err_set(e, EPERM, "vm %s is locked by %s, not %s", vmid,
                                 now.value, holder)
                       : err_set(e, ENOENT, "vm %s is not locked", vmid);
    etcd_kv_release(&now);
    return rc;
}

static void owner_key_of(char key[TERN_KEY_MAX], uint32_t vmid)
{
    snprintf(key, TERN_KEY_MAX, TERN_PREFIX_VMS "%u/owner", vmid);
}

int handover_read(struct etcd_client *c, uint32_t vmid, char owner[TERN_NAME_MAX + 1],
                  int64_t *rev, struct err *e)
{
    char key[TERN_KEY_MAX];
    owner_key_of(key, vmid);
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_get(c, key, 0, &kv, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %u has no owner", vmid);
    if (rc == 0) {
        snprintf(owner, TERN_NAME_MAX + 1, "%s", kv.value ? kv.value : "");
        *rev = kv.mod_revision;
    }
    etcd_kv_release(&kv);
    return rc;
}

int handover_state(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, enum handover_state *st,
                   struct err *e)
{
    char owner[TERN_NAME_MAX + 1];
    int64_t now;
    int rc = handover_read(c, vmid, owner, &now, e);
    if (rc < 0)
        return rc;
    if (strcmp(owner, target) == 0)
        *st = HANDOVER_COMMITTED;
    else if (strcmp(owner, source) != 0)
        *st = HANDOVER_OTHER;
    else
        *st = now == rev ? HANDOVER_OPEN : HANDOVER_FENCED;
    return 0;
}

/* Puts value at the owner key if its revision is still rev; when it was
 * not, owner_now (may be NULL) is the owner as it is now. */
static int swap_at(struct etcd_client *c, uint32_t vmid, int64_t rev, const char *value,
                   bool *swapped, char owner_now[TERN_NAME_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    owner_key_of(key, vmid);
    struct etcd_cas op = { .key = key, .cmp = ETCD_CMP_MOD_REVISION,
                           .expect_revision = rev, .new_value = value };
    struct etcd_kv now;
    int rc = etcd_cas(c, &op, swapped, &now, e);
    if (owner_now)
        copy_out(owner_now, TERN_NAME_MAX + 1, &now);
    etcd_kv_release(&now);
    return rc;
}

/* After revision R only the commit writes `target` (a fence writes the
 * source), so an owner that is the target means the commit applied, also
 * when it was an earlier attempt of this very call that etcd_cas retried
 * on another member. */
int handover_commit(struct etcd_client *c, uint32_t vmid, const char *target, int64_t rev,
                    enum vm_move_result *res, struct err *e)
{
    bool swapped = false;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = swap_at(c, vmid, rev, target, &swapped, owner, e);
    if (rc == 0) {
        swapped = swapped || strcmp(owner, target) == 0;
        *res = swapped ? VM_MOVE_COMMITTED : VM_MOVE_REFUSED;
        return swapped ? 0 : err_set(e, ESTALE, "the owner of vm %u changed since the "
                                     "migration began (fenced or moved)", vmid);
    }
    *res = rc == -ETCD_NOT_QUORATE && c->maybe_applied ? VM_MOVE_UNKNOWN : VM_MOVE_REFUSED;
    return rc;
}

int handover_fence(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, bool *fenced, struct err *e)
{
    bool swapped = false;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = swap_at(c, vmid, rev, source, &swapped, owner, e);
    if (rc < 0)
        return rc;
    *fenced = swapped || strcmp(owner, target) != 0;
    return 0;
}
