/* The HA manager's decision pass (node/ha.h): which nodes are offline and
 * since when, and for each HA VM whether this node records it as running,
 * stopped, starts it again, takes it over, or holds back (storm guard,
 * rate limit). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/node.h"
#include "cluster/owner.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/ha.h"
#include "node/task.h"

/* What one pass knows of the cluster. */
struct view {
    struct node_entries nodes; /* linearizable: who holds a heartbeat */
    struct ha_conf *confs;
    size_t nconfs;
    char (*owner)[TERN_NAME_MAX + 1];
    int64_t *rev;
    struct ha_state *st;
    bool *known; /* owner and state read */
    unsigned online;
};

static bool online(const struct view *w, const char *name)
{
    for (size_t i = 0; i < w->nodes.count; i++)
        if (strcmp(w->nodes.items[i].name, name) == 0)
            return w->nodes.items[i].online;
    return false;
}

/* Keeps, per offline node, when it was first seen offline; 0 if online. */
static uint64_t offline_ms(struct ha_manager *h, const struct view *w, const char *name)
{
    for (unsigned i = 0; i < h->noffline; i++)
        if (strcmp(h->offline[i].name, name) == 0)
            return (clock_mono_ns() - h->offline[i].since_ns) / 1000000;
    (void)w;
    return 0;
}

static void observe(struct ha_manager *h, struct view *w)
{
    unsigned n = 0;
    uint64_t now = clock_mono_ns();
    w->online = 0;
    for (size_t i = 0; i < w->nodes.count && n < HA_NODES_MAX; i++) {
        const struct node_entry *ne = &w->nodes.items[i];
        if (ne->online) {
            w->online++;
            continue;
        }
        uint64_t since = now;
        for (unsigned j = 0; j < h->noffline; j++)
            if (strcmp(h->offline[j].name, ne->name) == 0)
                since = h->offline[j].since_ns;
        if (since == now)
            log_info("ha", "node '%s' seen offline (no heartbeat)", ne->name);
        snprintf(h->offline[n].name, sizeof(h->offline[n].name), "%s", ne->name);
        h->offline[n++].since_ns = since;
    }
    h->noffline = n;
}

static int view_load(struct ha_manager *h, struct view *w)
{
    struct err e;
    memset(w, 0, sizeof(*w));
    node_entries_init(&w->nodes);
    int rc = node_list(&h->client, 0, &w->nodes, &e);
    if (!rc)
        rc = ha_conf_list(&h->client, 0, &w->confs, &w->nconfs, &e);
    size_t n = w->nconfs ? w->nconfs : 1;
    if (!rc) {
        w->owner = calloc(n, sizeof(*w->owner));
        w->rev = calloc(n, sizeof(*w->rev));
        w->st = calloc(n, sizeof(*w->st));
        w->known = calloc(n, sizeof(*w->known));
        if (!w->owner || !w->rev || !w->st || !w->known)
            rc = -ENOMEM;
    }
    for (size_t i = 0; !rc && i < w->nconfs; i++) {
        uint32_t id = w->confs[i].id;
        int r = vmowner_get(&h->client, id, 0, w->owner[i], &w->rev[i], &e);
        if (!r)
            r = ha_state_get(&h->client, id, 0, &w->st[i], &e);
        w->known[i] = r == 0;
    }
    return rc;
}

static void view_release(struct view *w)
{
    node_entries_release(&w->nodes);
    free(w->confs);
    free(w->owner);
    free(w->rev);
    free(w->st);
    free(w->known);
}

static unsigned *local_slot(struct ha_manager *h, uint32_t id, bool starts)
{
    int free_slot = -1;
    for (int i = 0; i < HA_VMS_MAX; i++) {
        if (h->local[i].id == id)
            return starts ? &h->local[i].starts : &h->local[i].missing;
        if (!h->local[i].id && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        free_slot = (int)(id % HA_VMS_MAX);
    memset(&h->local[free_slot], 0, sizeof(h->local[free_slot]));
    h->local[free_slot].id = id;
    return starts ? &h->local[free_slot].starts : &h->local[free_slot].missing;
}

static bool armed_here(struct ha_manager *h, uint32_t id)
{
    bool armed = false;
    pthread_mutex_lock(&h->lock);
    for (unsigned i = 0; i < h->narmed; i++)
        armed = armed || h->armed[i] == id;
    pthread_mutex_unlock(&h->lock);
    return armed;
}

static void state_put(struct ha_manager *h, uint32_t id, struct ha_state *st,
                      const char *state, const char *fmt, const char *arg)
{
    snprintf(st->node, sizeof(st->node), "%s", h->ctx->cfg->name);
    snprintf(st->state, sizeof(st->state), "%s", state);
    snprintf(st->event, sizeof(st->event), fmt, h->ctx->cfg->name, arg);
    st->time = time(NULL);
    struct err e;
    if (ha_state_put(&h->client, id, st, &e) == 0)
        log_info("ha", "vm %u: %s", id, st->event);
}

/* A clean end (the guest powered off, an operator's stop): not a failure. */
static bool clean_exit(const char *why)
{
    return strncmp(why, "powered off", 11) == 0 || strstr(why, "quit") ||
           strcmp(why, "exited") == 0 || strncmp(why, "migrated", 8) == 0;
}

static void start_again(struct ha_manager *h, struct view *w, size_t i, const char *why)
{
    const struct ha_conf *c = &w->confs[i];
    unsigned *starts = local_slot(h, c->id, true);
    if (task_running_for(h->ctx->tasks, c->id))
        return;
    if (*starts > c->max_restart) {
        char line[300];
        snprintf(line, sizeof(line),
                 "vm %u: started again %u times on '%s' (max_restart %u)", c->id,
                 *starts - 1, h->ctx->cfg->name, c->max_restart);
        state_put(h, c->id, &w->st[i], "error", "gave up on node '%s': %s", line);
        ha_task_note(h, "hahold", c->id, line, "gave up: max_restart reached");
        return;
    }
    (*starts)++;
    struct ha_recovery r = {.h = h, .conf = *c, .rev = w->rev[i]};
    snprintf(r.from, sizeof(r.from), "%s", h->ctx->cfg->name);
    snprintf(r.reason, sizeof(r.reason), "%s", why);
    r.relocations = w->st[i].relocations;
    struct err e;
    if (ha_task_recover(h, &r, &e) < 0)
        log_warn("ha", "vm %u: %s", c->id, e.msg);
}

static void place(struct ha_manager *h, const struct view *w, const struct ha_conf *c,
                  const char *except, char out[TERN_NAME_MAX + 1]);

/* This node gave up on an HA VM it owns (state "error"): another node
 * tries, max_relocate times until the VM has run a minute. */
static void relocate(struct ha_manager *h, struct view *w, size_t i)
{
    const struct ha_conf *c = &w->confs[i];
    struct ha_state *st = &w->st[i];
    const char *me = h->ctx->cfg->name;
    char target[TERN_NAME_MAX + 1], line[1024];
    if (st->relocations >= c->max_relocate || task_running_for(h->ctx->tasks, c->id))
        return;
    place(h, w, c, me, target);
    if (!target[0])
        return;
    struct ha_state next = {.time = time(NULL), .relocations = st->relocations + 1};
    snprintf(next.node, sizeof(next.node), "%s", target);
    snprintf(next.state, sizeof(next.state), "relocated");
    snprintf(next.event, sizeof(next.event),
             "relocated from node '%s' (relocation %u of %u)", me, next.relocations,
             c->max_relocate);
    bool moved = false;
    struct err e;
    if (ha_relocate(&h->client, c->id, me, w->rev[i], target, &next, &moved, &e) < 0 ||
        !moved) {
        log_warn("ha", "vm %u: relocation to '%s' not applied: %s", c->id, target,
                 moved ? e.msg : "the owner key moved meanwhile");
        return;
    }
    *local_slot(h, c->id, true) = 0;
    snprintf(line, sizeof(line),
             "vm %u: gave up on node '%s' (%.200s)\nowner moved to node '%s' by "
             "compare-and-swap: "
             "relocation %u of %u (max_relocate); '%s' starts it",
             c->id, me, st->event, target, next.relocations, c->max_relocate, target);
    ha_task_note(h, "harelocate", c->id, line, "");
    log_info("ha", "vm %u: relocated to node '%s'", c->id, target);
}

/* An HA VM this node owns. */
static void decide_own(struct ha_manager *h, struct view *w, size_t i)
{
    const struct ha_conf *c = &w->confs[i];
    struct ha_state *st = &w->st[i];
    struct vmm_info info;
    vmm_info(h->ctx->vmms, c->id, &info);
    unsigned *missing = local_slot(h, c->id, false);
    bool mine = strcmp(st->node, h->ctx->cfg->name) == 0;
    if (info.present) {
        *missing = 0;
        /* a minute of running: max_restart and max_relocate count afresh */
        if (time(NULL) - info.started > 60) {
            *local_slot(h, c->id, true) = 0;
            if (st->relocations && mine) {
                st->relocations = 0;
                state_put(h, c->id, st, "started", "runs on node '%s'%s, its fence armed",
                          "");
            }
        }
        if (armed_here(h, c->id) && (!mine || strcmp(st->state, "started") != 0))
            state_put(h, c->id, st, "started", "runs on node '%s'%s, its fence armed", "");
        return;
    }
    if (strcmp(st->state, "error") == 0 && mine)
        return relocate(h, w, i);
    /* handed here by a node that gave up: start it (whatever an older
     * process of this node's last exit says) */
    if (strcmp(st->state, "relocated") == 0 && mine)
        return start_again(h, w, i, st->event);
    if (strcmp(st->state, "started") != 0 || !mine)
        return;
    if (clean_exit(info.last_exit)) {
        state_put(h, c->id, st, "stopped", "stopped on node '%s': %s", info.last_exit);
        return;
    }
    /* two passes in a row: the restart policy of a crash goes first */
    if (++*missing >= 2) {
        char why[400];
        snprintf(why, sizeof(why), "its tern-vmm here is gone (%.300s)",
                 info.last_exit[0] ? info.last_exit : "not running");
        start_again(h, w, i, why);
    }
}

static void hold(struct ha_manager *h, uint32_t id, const char *why)
{
    if (strcmp(h->last_hold, why) == 0)
        return;
    snprintf(h->last_hold, sizeof(h->last_hold), "%s", why);
    log_warn("ha", "%s", why);
    ha_task_note(h, "hahold", id, why, "no failover");
}

/* The node a VM recovers to: online, in its group, not in maintenance,
 * fewest HA VMs, then by name; "" if none. */
static void place(struct ha_manager *h, const struct view *w, const struct ha_conf *c,
                  const char *except, char out[TERN_NAME_MAX + 1])
{
    unsigned best = ~0u;
    out[0] = '\0';
    for (size_t n = 0; n < w->nodes.count; n++) {
        const char *name = w->nodes.items[n].name;
        bool maint = false;
        struct err e;
        if (!w->nodes.items[n].online || !ha_conf_allows(c, name) ||
            (except && strcmp(name, except) == 0) ||
            ha_maint_get(&h->client, name, ETCD_SERIALIZABLE, &maint, NULL, &e) < 0 ||
            maint)
            continue;
        unsigned load = 0;
        for (size_t v = 0; v < w->nconfs; v++)
            load += w->known[v] && strcmp(w->owner[v], name) == 0;
        if (load < best) {
            best = load;
            snprintf(out, TERN_NAME_MAX + 1, "%s", name);
        }
    }
}

static bool rate_ok(struct ha_manager *h)
{
    time_t now = time(NULL);
    unsigned recent = 0, oldest = 0;
    for (unsigned i = 0; i < HA_RATE_MAX; i++) {
        recent += now - h->recent[i] < HA_RATE_WINDOW_S;
        if (h->recent[i] < h->recent[oldest])
            oldest = i;
    }
    if (recent >= HA_RATE_MAX)
        return false;
    h->recent[oldest] = now;
    return true;
}

/* An HA VM whose owner is another node. */
static void decide_other(struct ha_manager *h, struct view *w, size_t i)
{
    const struct ha_conf *c = &w->confs[i];
    const char *owner = w->owner[i];
    uint64_t off = offline_ms(h, w, owner);
    if (online(w, owner) || off < (uint64_t)h->margin_ms)
        return;
    char why[200], target[TERN_NAME_MAX + 1];
    if (strcmp(w->st[i].state, "started") != 0 || strcmp(w->st[i].node, owner) != 0)
        return; /* stopped, failed, or never armed there: not ours to start */
    place(h, w, c, NULL, target);
    if (strcmp(target, h->ctx->cfg->name) != 0 || task_running_for(h->ctx->tasks, c->id))
        return;
    if (w->online * 2 <= w->nodes.count) {
        snprintf(why, sizeof(why),
                 "vm %u: no failover from '%s': only %u of %zu nodes online (no majority)",
                 c->id, owner, w->online, w->nodes.count);
        return hold(h, c->id, why);
    }
    if (!rate_ok(h)) {
        snprintf(why, sizeof(why),
                 "vm %u: no failover from '%s' yet: rate limit (%d in %d s)", c->id, owner,
                 HA_RATE_MAX, HA_RATE_WINDOW_S);
        return hold(h, c->id, why);
    }
    h->last_hold[0] = '\0';
    struct ha_recovery r = {.h = h, .conf = *c, .rev = w->rev[i], .offline_ms = off};
    snprintf(r.from, sizeof(r.from), "%s", owner);
    snprintf(
        r.reason, sizeof(r.reason),
        "node '%s' is offline (its lease expired), seen so for %llu ms (margin %d ms); "
        "%u of %zu nodes online",
        owner, (unsigned long long)off, h->margin_ms, w->online, w->nodes.count);
    r.relocations = w->st[i].relocations;
    struct err e;
    if (ha_task_recover(h, &r, &e) < 0)
        log_warn("ha", "vm %u: %s", c->id, e.msg);
}

void ha_decide(struct ha_manager *h)
{
    struct view w;
    if (view_load(h, &w) == 0) {
        observe(h, &w);
        for (size_t i = 0; i < w.nconfs; i++) {
            if (!w.known[i])
                continue;
            if (strcmp(w.owner[i], h->ctx->cfg->name) == 0)
                decide_own(h, &w, i);
            else
                decide_other(h, &w, i);
        }
    }
    view_release(&w);
}
