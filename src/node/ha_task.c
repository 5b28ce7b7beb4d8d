/* The tasks of the HA manager's decisions (node/ha.h): a recovery (take
 * the owner key, then start the VM here, up to max_restart times again),
 * and one-shot notes for a fence or a failover held back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/node.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/ha.h"
#include "node/task.h"
#include "node/vmops.h"

struct recover_arg {
    struct ha_recovery r;
    uint64_t decided_ns;
};

static int take(struct task *k, struct etcd_client *c, const struct recover_arg *a,
                bool *taken, struct err *e)
{
    const struct ha_recovery *r = &a->r;
    const char *me = k->ctx->cfg->name;
    bool self = strcmp(r->from, me) == 0;
    struct ha_state st = {.time = time(NULL), .relocations = r->relocations};
    snprintf(st.node, sizeof(st.node), "%s", me);
    snprintf(st.state, sizeof(st.state), "started");
    if (self)
        task_log(k,
                 "starting vm %u again on '%s': owner key moved on from revision %lld "
                 "first, so that a recovery decided elsewhere cannot apply",
                 k->vmid, me, (long long)r->rev);
    else
        task_log(k,
                 "taking vm %u over: owner '%s' -> '%s' by compare-and-swap at revision "
                 "%lld, on condition that '%s' is still offline",
                 k->vmid, r->from, me, (long long)r->rev, r->from);
    snprintf(st.event, sizeof(st.event),
             self ? "started again on node '%s'"
                  : "recovered to node '%s' from offline '%s'",
             me, r->from);
    int rc = ha_take(c, k->vmid, r->from, r->rev, me, &st, taken, e);
    if (!rc && !*taken)
        task_log(k,
                 "not taken: the owner key moved since the decision (another node "
                 "acted, or '%s' is back)",
                 r->from);
    return rc;
}

static int start_here(struct task *k, struct etcd_client *c, const struct recover_arg *a,
                      int64_t lease, struct err *e)
{
    struct vmm_spec spec;
    int rc = vmops_spec_load(c, k->vmid, k->ctx->cfg->name, &spec, e);
    if (rc)
        return rc;
    spec.ha = true;
    spec.ha_lease = lease;
    unsigned tries = a->r.conf.max_restart + 1;
    for (unsigned i = 0; i < tries; i++) {
        /* the last process is reaped first (its end published) */
        vmm_wait_settled(k->ctx->vmms, k->vmid, 10000);
        rc = vmm_start(k->ctx->vmms, &spec, e);
        if (!rc)
            break;
        task_log(k, "start %u of %u failed: %s", i + 1, tries, e->msg);
    }
    if (rc)
        return err_set(e, -rc, "vm %u did not start on '%s' (%u tries, max_restart %u)",
                       k->vmid, k->ctx->cfg->name, tries, a->r.conf.max_restart);
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    double since = (double)(clock_mono_ns() - a->decided_ns) / 1e9;
    task_log(k,
             "vm %u runs on '%s' (tern-vmm pid %d, fence armed): %.1f s after the "
             "decision, %.1f s after '%s' was first seen offline",
             k->vmid, k->ctx->cfg->name, (int)info.pid, since,
             since + (double)a->r.offline_ms / 1000, a->r.from);
    return 0;
}

static void mark_error(struct etcd_client *c, struct task *k, const char *why)
{
    struct ha_state st = {.time = time(NULL)};
    struct err ignored;
    ha_state_get(c, k->vmid, 0, &st, &ignored);
    snprintf(st.node, sizeof(st.node), "%s", k->ctx->cfg->name);
    snprintf(st.state, sizeof(st.state), "error");
    snprintf(st.event, sizeof(st.event), "gave up: %.200s", why);
    st.time = time(NULL);
    ha_state_put(c, k->vmid, &st, &ignored);
}

static int recover_body(struct task *k, struct etcd_client *c, struct err *e)
{
    const struct recover_arg *a = k->arg;
    task_log(k, "vm %u: %s", k->vmid, a->r.reason);
    /* read before the take: see ha_take */
    int64_t lease = node_lease(k->ctx->node);
    bool taken = false;
    int rc = lease ? take(k, c, a, &taken, e)
                   : err_set(e, ETCD_NOT_QUORATE, "node '%s' holds no lease: not taken",
                             k->ctx->cfg->name);
    if (rc || !taken)
        return rc;
    rc = start_here(k, c, a, lease, e);
    if (rc)
        mark_error(c, k, e->msg);
    return rc;
}

static int recover_run(struct task *k, struct err *e)
{
    return vmops_task_locked(k, recover_body, e);
}

int ha_task_recover(struct ha_manager *h, const struct ha_recovery *r, struct err *e)
{
    struct recover_arg *a = malloc(sizeof(*a));
    if (!a)
        return err_set(e, ENOMEM, "out of memory");
    a->r = *r;
    a->r.h = NULL; /* the task outlives no manager, but needs none */
    a->decided_ns = clock_mono_ns();
    char id[TASK_ID_MAX];
    int rc = task_start(h->ctx->tasks, h->ctx, "harecover", r->conf.id, recover_run, a, id,
                        e);
    if (rc)
        free(a);
    else
        log_info("ha", "vm %u: recovery task %s", r->conf.id, id);
    return rc;
}

struct note_arg {
    char lines[1024];
    char error[200];
};

static int note_run(struct task *k, struct err *e)
{
    struct note_arg *a = k->arg;
    char *save = NULL;
    for (char *line = strtok_r(a->lines, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        task_log(k, "%s", line);
    return a->error[0] ? err_set(e, EAGAIN, "%s", a->error) : 0;
}

void ha_task_note(struct ha_manager *h, const char *type, uint32_t vmid, const char *lines,
                  const char *error)
{
    struct note_arg *a = malloc(sizeof(*a));
    if (!a)
        return;
    snprintf(a->lines, sizeof(a->lines), "%s", lines);
    snprintf(a->error, sizeof(a->error), "%s", error);
    char id[TASK_ID_MAX];
    struct err e;
    if (task_start(h->ctx->tasks, h->ctx, type, vmid, note_run, a, id, &e) < 0) {
        log_warn("ha", "vm %u: %s task: %s", vmid, type, e.msg);
        free(a);
    }
}
