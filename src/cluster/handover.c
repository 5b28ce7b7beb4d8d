#include "cluster/handover.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/owner.h"

int handover_read(struct etcd_client *c, uint32_t vmid, char owner[TERN_NAME_MAX + 1],
                  int64_t *rev, struct err *e)
{
    return vmowner_get(c, vmid, 0, owner, rev, e);
}

int handover_state(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, enum handover_state *st, struct err *e)
{
    char owner[TERN_NAME_MAX + 1];
    int64_t now;
    int rc = handover_read(c, vmid, owner, &now, e);
    if (rc)
        return rc;
    if (strcmp(owner, target) == 0)
        *st = HANDOVER_COMMITTED;
    else if (strcmp(owner, source) != 0)
        *st = HANDOVER_OTHER;
    else
        *st = now == rev ? HANDOVER_OPEN : HANDOVER_FENCED;
    return 0;
}

/* Puts value at the owner key if its revision is still rev; owner_now is
 * the owner as it is now when it was not. */
static int swap_at(struct etcd_client *c, uint32_t vmid, int64_t rev, const char *value,
                   bool *swapped, char owner_now[TERN_NAME_MAX + 1], struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_vm_owner(key, vmid, e);
    if (rc)
        return rc;
    struct etcd_cas op = {.key = key,
                          .cmp = ETCD_CMP_MOD_REVISION,
                          .expect_revision = rev,
                          .new_value = value};
    struct etcd_kv now;
    rc = etcd_cas(c, &op, swapped, &now, e);
    snprintf(owner_now, TERN_NAME_MAX + 1, "%s", now.value ? now.value : "");
    etcd_kv_release(&now);
    return rc;
}

/* After revision R only the commit writes `target` (a fence writes the
 * source), so an owner that is the target means the commit applied, also
 * when it was an earlier attempt of this very call that etcd_cas retried
 * on another member. */
int handover_commit(struct etcd_client *c, uint32_t vmid, const char *target, int64_t rev,
                    enum handover_result *res, struct err *e)
{
    bool swapped = false;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = swap_at(c, vmid, rev, target, &swapped, owner, e);
    if (!rc) {
        swapped = swapped || strcmp(owner, target) == 0;
        *res = swapped ? HANDOVER_RESULT_COMMITTED : HANDOVER_RESULT_REFUSED;
        return swapped ? 0
                       : err_set(e, ESTALE,
                                 "the owner of vm %u changed since the "
                                 "migration began (fenced or moved)",
                                 vmid);
    }
    *res = rc == -ETCD_NOT_QUORATE && c->maybe_applied ? HANDOVER_RESULT_UNKNOWN
                                                       : HANDOVER_RESULT_REFUSED;
    return rc;
}

int handover_fence(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, bool *fenced, struct err *e)
{
    bool swapped = false;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = swap_at(c, vmid, rev, source, &swapped, owner, e);
    if (rc)
        return rc;
    *fenced = swapped || strcmp(owner, target) != 0;
    return 0;
}
