/* Following the source tern-vmm through its migration, for the task on
 * the source node (and for the task a restarted ternd takes over): the
 * log, the pause gate (quorum before stop-and-copy), the commit in etcd,
 * cancel, a target that stopped answering, and the control request every
 * second that keeps tern-vmm's watchdog quiet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "common/clock.h"
#include "common/opts.h"
#include "node/ctx.h"
#include "node/migtask_run.h"
#include "node/peer.h"
#include "node/vmm.h"

#define MiB (1024.0 * 1024.0)
#define SEC 1000000000ULL
#define PROBE_TIMEOUT_MS 3000   /* the target's ternd must answer GET /version by then */
#define ABANDON_TIMEOUT_MS 5000 /* ... and DELETE of its destination */
#define SAY_EVERY_NS (5 * SEC)  /* lines while waiting for etcd */
#define GATE_READ_MS 1500       /* tern-vmm waits 2 s for the pause gate's answer */

struct migtask_run *migtask_run_new(void)
{
    struct migtask_run *m = calloc(1, sizeof(*m));
    if (m) {
        pthread_mutex_init(&m->lock, NULL);
        pthread_cond_init(&m->cond, NULL);
    }
    return m;
}

void migtask_on_event(void *ctx, json_t *ev)
{
    struct migtask_run *m = ctx;
    pthread_mutex_lock(&m->lock);
    if (m->nevents < MIGTASK_EVENTS_MAX)
        m->events[m->nevents++] = json_incref(ev);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* The events no one took (the source's exit after "completed"), the
 * target's peer. */
void migtask_run_release(struct migtask_run *m)
{
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < m->nevents; i++)
        json_decref(m->events[i]);
    m->nevents = 0;
    pthread_mutex_unlock(&m->lock);
    if (m->have_target)
        peer_release(&m->target);
    m->have_target = false;
}

/* The next event, or NULL after timeout_ms. */
static json_t *next_event(struct migtask_run *m, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)timeout_ms * 1000000;
    until.tv_sec += until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    pthread_mutex_lock(&m->lock);
    while (!m->nevents && pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0)
        ;
    json_t *ev = NULL;
    if (m->nevents) {
        ev = m->events[0];
        memmove(m->events, m->events + 1, --m->nevents * sizeof(*m->events));
    }
    pthread_mutex_unlock(&m->lock);
    return ev;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static double secs_since(uint64_t t)
{
    return (double)(clock_mono_ns() - t) / 1e9;
}

/* The progress (node/progress.h) for every event; a log line per pass, or
 * per second while a long pass runs. */
static void log_progress(struct task *k, struct migtask_run *m, json_t *ev)
{
    unsigned pass = (unsigned)num(ev, "pass");
    uint64_t now = clock_mono_ns();
    json_t *p = progress_meter_update(&m->meter, ev, now);
    if (!p)
        return;
    if (pass != m->last_pass || now - m->last_line_ns >= SEC) {
        char line[400];
        progress_line(p, line, sizeof(line));
        task_log(k, "%s", line);
        m->last_pass = pass;
        m->last_line_ns = now;
    }
    task_set_progress(k, p);
}

static void log_figures(struct task *k, json_t *ev, const char *target)
{
    double ms = num(ev, "total_ms"), sent = num(ev, "transferred");
    json_t *d = json_object_get(ev, "downtime");
    task_log(k,
             "migration status: completed in %u pass(es), %.1f MiB sent, %.0f zero pages",
             (unsigned)num(ev, "pass"), sent / MiB, num(ev, "zero_pages"));
    if (d)
        task_log(
            k,
            "downtime %.1f ms: pause %.1f, last pages %.1f, state %.1f, transfer %.1f, "
            "load %.1f, commit %.1f, resume %.1f",
            num(ev, "downtime_ms"), num(d, "pause_ms"), num(d, "last_pages_ms"),
            num(d, "state_save_ms"), num(d, "transfer_ms"), num(d, "load_ms"),
            num(d, "commit_ms"), num(d, "resume_ms"));
    task_log(k, "average migration speed: %.1f MiB/s - downtime %.0f ms",
             ms > 0 ? sent / MiB / (ms / 1000.0) : 0.0, num(ev, "downtime_ms"));
    json_t *f = json_pack("{s:i, s:I, s:I, s:f, s:f, s:f}", "passes", (int)num(ev, "pass"),
                          "ram_total", (json_int_t)num(ev, "ram_total"), "transferred",
                          (json_int_t)sent, "total_ms", ms, "downtime_ms",
                          num(ev, "downtime_ms"), "average_rate",
                          ms > 0 ? sent / (ms / 1000.0) : 0.0);
    /* a later dry run's forecast takes the link rate from these two */
    if (f)
        json_object_set_new(f, "target", json_string(target));
    if (f)
        json_object_set_new(f, "bandwidth", json_real(num(ev, "bandwidth")));
    if (f && json_object_get(ev, "downtime"))
        json_object_set(f, "downtime", json_object_get(ev, "downtime"));
    migtask_disks_summary(k, ev, f);
    task_set_figures(k, f);
}

/* What etcd says of the handover now, for a task that took it over from
 * a ternd that may have decided it already (*before then). */
static int adopted_state(struct migtask_run *m, struct etcd_client *c,
                         enum handover_result *res, bool *before, struct err *e)
{
    const struct migtask_plan *p = &m->plan;
    enum handover_state st;
    int rc = handover_state(c, p->vmid, p->source, p->target, m->rev, &st, e);
    *before = !rc && st != HANDOVER_OPEN;
    if (!rc && st == HANDOVER_OPEN)
        return handover_commit(c, p->vmid, p->target, m->rev, res, e);
    *res = rc                         ? HANDOVER_RESULT_UNKNOWN
           : st == HANDOVER_COMMITTED ? HANDOVER_RESULT_COMMITTED
                                      : HANDOVER_RESULT_REFUSED;
    return rc;
}

int migtask_commit_handover(struct task *k, struct migtask_run *m, struct etcd_client *c,
                            bool *committed, struct err *e)
{
    const struct migtask_plan *p = &m->plan;
    enum handover_result res;
    uint64_t t0 = m->pending_ns ? m->pending_ns : clock_mono_ns(), said = 0;
    bool before = false;
    int rc = m->adopted ? adopted_state(m, c, &res, &before, e)
                        : handover_commit(c, p->vmid, p->target, m->rev, &res, e);
    while (res == HANDOVER_RESULT_UNKNOWN) {
        if (!said)
            task_log(k,
                     "%s while committing: vm %u stays paused on both nodes until etcd "
                     "answers",
                     e->msg, p->vmid);
        else if (clock_mono_ns() - said >= SAY_EVERY_NS)
            task_log(k, "vm %u paused %.0f s: waiting for etcd to decide the owner",
                     p->vmid, secs_since(t0));
        if (!said || clock_mono_ns() - said >= SAY_EVERY_NS)
            said = clock_mono_ns();
        sleep(1);
        rc = adopted_state(m, c, &res, &before, e);
    }
    if (said)
        task_log(k, "etcd answered after %.1f s", secs_since(t0));
    *committed = res == HANDOVER_RESULT_COMMITTED;
    if (m->adopted && before) /* the words of migtask_resolve.c: the same event */
        task_log(k,
                 "handover settled from etcd: node '%s' owns it (decided before ternd "
                 "restarted)",
                 *committed ? p->target : p->source);
    if (*committed)
        return 0;
    return rc ? rc : err_set(e, ESTALE, "handover refused");
}

static int tell_vmm(struct task *k, const char *cmd, const char *key, bool yes,
                    struct err *e)
{
    json_t *req = json_pack("{s:s}", "cmd", cmd), *reply = NULL;
    if (key)
        json_object_set_new(req, key, json_boolean(yes));
    int rc = vmm_command(k->ctx->vmms, k->vmid, req, &reply, e);
    json_decref(req);
    json_decref(reply);
    return rc;
}

/* The destination has loaded everything: commit in etcd, tell the source
 * tern-vmm. *done unless the migration goes on (committed: the rest comes
 * as events, "completed", then the source's exit). A cancel taken before
 * this point is honoured (nothing is decided yet); from here on it is
 * refused: etcd decides. */
static int on_commit_pending(struct task *k, struct migtask_run *m, struct etcd_client *c,
                             bool *done, struct err *e)
{
    struct err why;
    if (m->committed) { /* asked twice (an adopted task also polls) */
        *done = false;
        return 0;
    }
    m->pending_ns = clock_mono_ns();
    if (!task_set_cancellable(k, "the handover is being decided: the outcome depends on "
                                 "etcd, cancel cannot change it")) {
        task_log(k, "cancelled before the handover: vm %u resumes on node '%s'", k->vmid,
                 m->plan.source);
        tell_vmm(k, "migrate_commit", "commit", false, &why);
        task_set_cancelled(k);
        return err_set(e, ECANCELED, "migration cancelled");
    }
    task_log(k, "destination loaded everything: etcd decides the handover now");
    test_hold("handover-deciding");
    bool committed = false;
    uint64_t t0 = clock_mono_ns();
    int rc = migtask_commit_handover(k, m, c, &committed, &why);
    /* the rest of the source's commit_ms is the way of the question and
     * the answer through ternd */
    double etcd_ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (committed) {
        char now[160];
        snprintf(now, sizeof(now), "the handover is committed: node '%s' owns vm %u now",
                 m->plan.target, k->vmid);
        task_set_cancellable(k, now);
        task_log(k, "handover committed: node '%s' owns vm %u now (etcd %.1f ms)",
                 m->plan.target, k->vmid, etcd_ms);
        test_hold("handover-committed");
    } else {
        task_log(k, "handover refused (%s): vm %u resumes on node '%s'", why.msg, k->vmid,
                 m->plan.source);
    }
    m->committed = committed;
    int trc = tell_vmm(k, "migrate_commit", "commit", committed, e);
    if (!committed) {
        *e = why;
        return rc ? rc : -ESTALE;
    }
    *done = trc != 0;
    return trc;
}

/* Before stop-and-copy tern-vmm asks whether the VM may pause: only when a
 * fresh (linearizable) read of the owner key answers and still names the
 * source at R. Without quorum the guest runs on in pre-copy. */
static void on_pause_pending(struct task *k, struct migtask_run *m, struct etcd_client *c)
{
    char owner[TERN_NAME_MAX + 1];
    int64_t rev = 0;
    struct err e, ignored;
    /* within the time tern-vmm waits for the answer: a late "yes" would
     * be refused, and the asks of the passes that follow would queue */
    etcd_client_set_timeout(c, GATE_READ_MS);
    int rc = handover_read(c, k->vmid, owner, &rev, &e);
    etcd_client_set_timeout(c, 0);
    bool moved = !rc && (strcmp(owner, m->plan.source) != 0 || rev != m->rev);
    tell_vmm(k, "migrate_pause", "pause", !rc && !moved, &ignored);
    uint64_t now = clock_mono_ns();
    if (moved && !m->cancel_sent) {
        task_log(k, "the owner of vm %u changed in etcd during the migration; cancelling",
                 k->vmid);
        tell_vmm(k, "migrate_cancel", NULL, false, &ignored);
        m->cancel_sent = true;
    } else if (rc && !m->gate_since) {
        task_log(k,
                 "no stop-and-copy without quorum (%s): vm %u keeps running in pre-copy "
                 "until etcd answers",
                 e.msg, k->vmid);
        m->gate_since = m->gate_said = now;
    } else if (rc && now - m->gate_said >= SAY_EVERY_NS) {
        task_log(k,
                 "vm %u in pre-copy %.0f s more: waiting for etcd quorum before the pause",
                 k->vmid, secs_since(m->gate_since));
        m->gate_said = now;
    } else if (!rc && m->gate_since) {
        task_log(k, "etcd answers again after %.0f s: stop-and-copy",
                 secs_since(m->gate_since));
        m->gate_since = 0;
    }
}

/* Before the commit, a target whose ternd stopped answering ends the
 * migration: its node may be going down, and nobody there would settle a
 * handover that went wrong. Two misses in a row, each a probe of at most
 * PROBE_TIMEOUT_MS: a frozen target is given up on within about 7 s. */
static bool target_lost(struct task *k, struct migtask_run *m, struct etcd_client *c)
{
    uint64_t now = clock_mono_ns();
    if (m->committed || m->target_gone || now - m->checked_ns < SEC)
        return false;
    m->checked_ns = now;
    struct err e;
    json_t *ans = NULL;
    long status = 0;
    /* the address once: without quorum a fresh read of the node record
     * would cost the etcd client's whole timeout every second */
    int rc = m->have_target ? 0 : peer_init(&m->target, k->ctx, c, m->plan.target, &e);
    m->have_target = !rc;
    if (!rc) {
        peer_set_timeout(&m->target, PROBE_TIMEOUT_MS);
        rc = peer_call(&m->target, "GET", "/api/v1/version", NULL, &status, &ans, &e);
    }
    json_decref(ans);
    m->misses = rc == -EHOSTUNREACH ? m->misses + 1 : 0;
    if (m->misses == 2) {
        snprintf(m->gone_why, sizeof(m->gone_why), "node '%s' stopped answering (%.300s)",
                 m->plan.target, e.msg);
        task_log(k, "%s: cancelling", m->gone_why);
        m->target_gone = true;
    }
    return m->misses == 2;
}

/* Every second a control request: tern-vmm's watchdog sees this task is
 * alive. Its answer also brings what an event may not have: a decision
 * awaited or a final status reached before this task listened (after a
 * ternd restart), handled as if the event had come. */
static void ping(struct task *k, struct migtask_run *m)
{
    uint64_t now = clock_mono_ns();
    if (now - m->pinged_ns < SEC)
        return;
    m->pinged_ns = now;
    json_t *req = json_pack("{s:s}", "cmd", "query_migrate"), *reply = NULL;
    struct err e;
    int rc = vmm_command(k->ctx->vmms, k->vmid, req, &reply, &e);
    json_decref(req);
    const char *st = rc ? NULL : json_string_value(json_object_get(reply, "status"));
    const char *d = rc ? NULL : json_string_value(json_object_get(reply, "decision"));
    bool final = st &&
                 (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                  strcmp(st, "cancelled") == 0 || strcmp(st, "postcommit-failed") == 0);
    if (d && strcmp(d, "commit") == 0 && m->adopted && !m->committed)
        json_object_set_new(reply, "status", json_string("commit-pending"));
    if ((d && strcmp(d, "commit") == 0 && m->adopted && !m->committed) || final) {
        json_object_set_new(reply, "event", json_string("migration"));
        migtask_on_event(m, reply);
    }
    json_decref(reply);
}

/* What one event of the source tern-vmm means: *done once the migration
 * ended, and then the result is how. */
static int on_event_of(struct task *k, struct migtask_run *m, struct etcd_client *c,
                       json_t *ev, bool *done, struct err *e)
{
    const char *name = json_string_value(json_object_get(ev, "event"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    *done = true;
    if (name && strcmp(name, "exit") == 0)
        return json_is_true(json_object_get(ev, "migrated"))
                   ? 0
                   : err_set(e, EIO, "tern-vmm of vm %u %s during the migration", k->vmid,
                             json_string_value(json_object_get(ev, "reason")));
    *done = false;
    if (!name || strcmp(name, "migration") != 0 || !st)
        return 0;
    if (strcmp(st, "pause-pending") == 0) {
        on_pause_pending(k, m, c);
        return 0;
    }
    *done = true;
    if (strcmp(st, "commit-pending") == 0)
        return on_commit_pending(k, m, c, done, e);
    if (strcmp(st, "completed") == 0) {
        log_figures(k, ev, m->plan.target);
        return 0;
    }
    if (strcmp(st, "cancelled") == 0 && task_cancelled(k))
        task_set_cancelled(k);
    if (strcmp(st, "cancelled") == 0 && m->target_gone)
        return err_set(e, EHOSTUNREACH, "%s; vm %u keeps running on node '%s'", m->gone_why,
                       k->vmid, m->plan.source);
    if (strcmp(st, "cancelled") == 0)
        return err_set(e, ECANCELED, "migration cancelled");
    const char *why = json_string_value(json_object_get(ev, "error")) ?: "";
    /* the source gave up by itself: that, not how the destination then
     * ended, is the reason */
    m->source_abandoned = strncmp(why, "abandoned:", 10) == 0;
    if (strcmp(st, "failed") == 0 || strcmp(st, "postcommit-failed") == 0)
        return err_set(e, EIO, "migration %s: %s", st, why);
    migtask_disks_log(k, &m->disk_log, ev);
    log_progress(k, m, ev);
    *done = false;
    return 0;
}

/* Until the source tern-vmm's migration ends. */
static int follow(struct task *k, struct migtask_run *m, struct etcd_client *c,
                  struct err *e)
{
    for (;;) {
        ping(k, m);
        bool lost = target_lost(k, m, c);
        if ((task_cancelled(k) || lost) && !m->cancel_sent && !m->committed) {
            if (!lost)
                task_log(k, "cancel requested: stopping the migration of vm %u", k->vmid);
            struct err ignored;
            tell_vmm(k, "migrate_cancel", NULL, false, &ignored);
            m->cancel_sent = true;
        }
        json_t *ev = next_event(m, 200);
        if (!ev)
            continue;
        bool done;
        int rc = on_event_of(k, m, c, ev, &done, e);
        json_decref(ev);
        if (done)
            return rc;
    }
}

void migtask_abandon_target(struct task *k, struct migtask_run *m, struct etcd_client *c,
                            struct err *why)
{
    struct peer peer;
    struct err e;
    if (peer_init(&peer, k->ctx, c, m->plan.target, &e) < 0)
        return;
    peer_set_timeout(&peer, ABANDON_TIMEOUT_MS);
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/vms/%u/incoming", k->vmid);
    json_t *ans = NULL;
    long status = 0;
    int rc = peer_call(&peer, "DELETE", path, NULL, &status, &ans, &e);
    const char *last = json_string_value(json_object_get(ans, "last_exit"));
    if (!rc && status == 404 && last && why)
        err_set(why, EIO,
                "target tern-vmm on '%s' exited (%s); vm %u keeps running on '%s'",
                m->plan.target, last, k->vmid, m->plan.source);
    json_decref(ans);
    peer_release(&peer);
}

void migtask_status_back(struct task *k)
{
    json_t *req = json_pack("{s:s}", "cmd", "status"), *reply = NULL;
    struct err e;
    const char *state = "running";
    if (vmm_command(k->ctx->vmms, k->vmid, req, &reply, &e) == 0 &&
        strcmp(json_string_value(json_object_get(reply, "state")) ?: "", "paused") == 0)
        state = "paused";
    vmm_set_status(k->ctx->vmms, k->vmid, state);
    json_decref(req);
    json_decref(reply);
}

int migtask_follow_to_end(struct task *k, struct migtask_run *m, struct etcd_client *c,
                          struct err *e)
{
    task_set_cancellable(k, NULL);
    int rc = follow(k, m, c, e);
    /* a destination that never got its VM (connect refused, cancelled,
     * failed before the commit) must not wait there for ever, holding the
     * VM's place on that node; one that stopped answering is not asked */
    if (rc && !m->committed && !m->target_gone)
        migtask_abandon_target(k, m, c, rc == -ECANCELED || m->source_abandoned ? NULL : e);
    vmm_set_listener(k->ctx->vmms, k->vmid, NULL, NULL);
    if (rc && !m->committed)
        migtask_status_back(k);
    if (rc && m->committed)
        task_log(k, "vm %u belongs to node '%s' now; this node will not run it again",
                 k->vmid, m->plan.target);
    return rc;
}
