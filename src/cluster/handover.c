#include "cluster/handover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void owner_key(char key[TERN_KEY_MAX], uint32_t vmid)
{
    snprintf(key, TERN_KEY_MAX, TERN_PREFIX_VMS "%u/owner", vmid);
}

int handover_read(struct etcd_client *c, uint32_t vmid, char owner[TERN_NAME_MAX + 1],
                  int64_t *rev, struct err *e)
{
    char key[TERN_KEY_MAX];
    owner_key(key, vmid);
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

/* Puts value at the owner key if its revision is still rev. */
static int swap_at(struct etcd_client *c, uint32_t vmid, int64_t rev, const char *value,
                   bool *swapped, struct err *e)
{
    char key[TERN_KEY_MAX];
    owner_key(key, vmid);
    struct etcd_cas op = { .key = key, .cmp = ETCD_CMP_MOD_REVISION,
                           .expect_revision = rev, .new_value = value };
    return etcd_cas(c, &op, swapped, NULL, e);
}

int handover_commit(struct etcd_client *c, uint32_t vmid, const char *source,
                    const char *target, int64_t rev, enum vm_move_result *res,
                    struct err *e)
{
    (void)source;
    bool swapped = false;
    int rc = swap_at(c, vmid, rev, target, &swapped, e);
    if (rc == 0) {
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
    int rc = swap_at(c, vmid, rev, source, &swapped, e);
    if (rc < 0)
        return rc;
    if (swapped) {
        *fenced = true;
        return 0;
    }
    enum handover_state st;
    rc = handover_state(c, vmid, source, target, rev, &st, e);
    if (rc < 0)
        return rc;
    *fenced = st != HANDOVER_COMMITTED;
    return 0;
}
