/* The migration task on the source node: prepares the destination through
 * the target's ternd, drives the source tern-vmm, writes the log, and
 * commits the handover in etcd when the destination has loaded everything
 * (cluster/handover.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "common/clock.h"
#include "common/opts.h"
#include "node/ctx.h"
#include "node/migtask.h"
#include "node/migtask_files.h"
#include "node/peer.h"
#include "node/progress.h"
#include "node/task.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define MiB (1024.0 * 1024.0)

#define MIGTASK_EVENTS_MAX 256

struct migtask_run {
    struct migtask_plan plan;
    int64_t rev; /* of the owner key when it began */
    char uri[160];
    char nbd[160]; /* local disks: the destination's NBD listener */
    struct migtask_disk_log disk_log;
    pthread_mutex_t lock; /* guards the event queue */
    pthread_cond_t cond;
    json_t *events[MIGTASK_EVENTS_MAX];
    unsigned nevents;
    unsigned last_pass;
    uint64_t last_line_ns;
    struct progress_meter meter;
    bool committed;
    bool cancel_sent;
    uint64_t checked_ns; /* last look at the target's ternd */
    unsigned misses;
    uint64_t t0;
};

static void on_event(void *ctx, json_t *ev)
{
    struct migtask_run *m = ctx;
    pthread_mutex_lock(&m->lock);
    if (m->nevents < MIGTASK_EVENTS_MAX)
        m->events[m->nevents++] = json_incref(ev);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
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

/* The progress (node/progress.h) for every event; a log line per pass, or
 * per second while a long pass runs. */
static void log_progress(struct task *k, struct migtask_run *m, json_t *ev)
{
    unsigned pass = (unsigned)num(ev, "pass");
    uint64_t now = clock_mono_ns();
    json_t *p = progress_meter_update(&m->meter, ev, now);
    if (!p)
        return;
    if (pass != m->last_pass || now - m->last_line_ns >= 1000000000ULL) {
        char line[400];
        progress_line(p, line, sizeof(line));
        task_log(k, "%s", line);
        m->last_pass = pass;
        m->last_line_ns = now;
    }
    task_set_progress(k, p);
}

static void log_figures(struct task *k, json_t *ev)
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
    if (f && json_object_get(ev, "downtime"))
        json_object_set(f, "downtime", json_object_get(ev, "downtime"));
    migtask_disks_summary(k, ev, f);
    task_set_figures(k, f);
}

/* The etcd side of the handover; loops while the answer is unknown. */
static int commit_handover(struct task *k, struct migtask_run *m, struct etcd_client *c,
                           bool *committed, struct err *e)
{
    const struct migtask_plan *p = &m->plan;
    enum handover_result res;
    bool said = false;
    int rc = handover_commit(c, p->vmid, p->target, m->rev, &res, e);
    while (res == HANDOVER_RESULT_UNKNOWN) {
        if (!said)
            task_log(k,
                     "%s while committing: vm %u stays paused on both nodes until etcd "
                     "answers",
                     e->msg, p->vmid);
        said = true;
        sleep(1);
        enum handover_state st;
        rc = handover_state(c, p->vmid, p->source, p->target, m->rev, &st, e);
        if (!rc && st == HANDOVER_OPEN)
            rc = handover_commit(c, p->vmid, p->target, m->rev, &res, e);
        else if (!rc)
            res = st == HANDOVER_COMMITTED ? HANDOVER_RESULT_COMMITTED
                                           : HANDOVER_RESULT_REFUSED;
    }
    *committed = res == HANDOVER_RESULT_COMMITTED;
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
 * as events, "completed", then the source's exit). */
static int on_commit_pending(struct task *k, struct migtask_run *m, struct etcd_client *c,
                             bool *done, struct err *e)
{
    bool committed = false;
    if (task_cancelled(k))
        task_log(k, "too late to cancel: the destination has loaded everything");
    struct err why;
    int rc = commit_handover(k, m, c, &committed, &why);
    if (committed)
        task_log(k, "handover committed: node '%s' owns vm %u now", m->plan.target,
                 k->vmid);
    if (committed)
        test_hold("handover-committed");
    else
        task_log(k, "handover refused (%s): vm %u resumes on node '%s'", why.msg, k->vmid,
                 m->plan.source);
    m->committed = committed;
    int trc = tell_vmm(k, "migrate_commit", "commit", committed, e);
    if (!committed) {
        *e = why;
        return rc ? rc : -ESTALE;
    }
    *done = trc != 0;
    return trc;
}

/* Before the commit, a target whose ternd stopped answering ends the
 * migration: its node may be going down, and nobody there would settle a
 * handover that went wrong. Two misses in a row, a second apart. */
static bool target_lost(struct task *k, struct migtask_run *m, struct etcd_client *c)
{
    uint64_t now = clock_mono_ns();
    if (m->committed || now - m->checked_ns < 1000000000ULL)
        return false;
    m->checked_ns = now;
    struct peer peer;
    struct err e;
    json_t *ans = NULL;
    long status = 0;
    int rc = peer_init(&peer, k->ctx, c, m->plan.target, &e);
    if (!rc) {
        rc = peer_call(&peer, "GET", "/api/v1/version", NULL, &status, &ans, &e);
        peer_release(&peer);
    }
    json_decref(ans);
    m->misses = rc == -EHOSTUNREACH ? m->misses + 1 : 0;
    if (m->misses == 2)
        task_log(k, "node '%s' stopped answering (%s): cancelling", m->plan.target, e.msg);
    return m->misses == 2;
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
    if (!name || strcmp(name, "migration") != 0 || !st) {
        *done = false;
        return 0;
    }
    if (strcmp(st, "commit-pending") == 0)
        return on_commit_pending(k, m, c, done, e);
    if (strcmp(st, "completed") == 0) {
        log_figures(k, ev);
        return 0;
    }
    if (strcmp(st, "cancelled") == 0)
        return err_set(e, ECANCELED, "migration cancelled");
    if (strcmp(st, "failed") == 0 || strcmp(st, "postcommit-failed") == 0)
        return err_set(e, EIO, "migration %s: %s", st,
                       json_string_value(json_object_get(ev, "error")) ?: "");
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
        bool lost = target_lost(k, m, c);
        if ((task_cancelled(k) || lost) && !m->cancel_sent && !m->committed) {
            if (!lost)
                task_log(k, "cancel requested");
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

/* Asks the target's ternd for a destination; m->uri, *tls_dir filled. */
static int prepare_target(struct task *k, struct migtask_run *m, struct etcd_client *c,
                          char tls_dir[MIGTASK_TLS_DIR_MAX], struct err *e)
{
    struct peer peer;
    int rc = peer_init(&peer, k->ctx, c, m->plan.target, e);
    if (rc)
        return rc;
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    json_t *req = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:I}", "source", m->plan.source,
                            "task", k->id, "owner_revision", (json_int_t)m->rev, "address",
                            m->plan.address, "migration_type", m->plan.type, "cert",
                            k->ctx->secrets->cert_pem, "started", (json_int_t)info.started);
    if (migtask_disks_local(&m->plan)) { /* the target makes fresh volumes */
        json_t *bytes = json_array();
        for (unsigned i = 0; i < m->plan.spec.conf.ndisks; i++)
            json_array_append_new(bytes, json_integer((json_int_t)m->plan.disk_bytes[i]));
        json_object_set_new(req, "local_disks", json_true());
        json_object_set_new(req, "disk_bytes", bytes);
        if (!m->plan.running) /* built paused for the copy: stopped once there */
            json_object_set_new(req, "offline", json_true());
    }
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/vms/%u/incoming", k->vmid);
    json_t *ans = NULL;
    long status = 0;
    rc = peer_call(&peer, "POST", path, req, &status, &ans, e);
    peer_release(&peer);
    json_decref(req);
    const char *uri = json_string_value(json_object_get(ans, "uri"));
    const char *cert = json_string_value(json_object_get(ans, "cert"));
    if (!rc && (status != 200 || !uri || !cert))
        rc = err_set(e, EREMOTEIO, "node '%s' cannot receive vm %u: %s", m->plan.target,
                     k->vmid,
                     json_string_value(json_object_get(ans, "error")) ?: "bad answer");
    if (!rc)
        snprintf(m->uri, sizeof(m->uri), "%s", uri);
    const char *nbd = json_string_value(json_object_get(ans, "nbd"));
    if (!rc && migtask_disks_local(&m->plan) && !nbd)
        rc = err_set(e, EREMOTEIO, "node '%s' gave no nbd address for the local disks",
                     m->plan.target);
    if (!rc && nbd)
        snprintf(m->nbd, sizeof(m->nbd), "%s", nbd);
    tls_dir[0] = '\0';
    if (!rc && strcmp(m->plan.type, "secure") == 0)
        rc = migtask_tls_dir(k->ctx, k->vmid, "tls-out", cert, tls_dir, e);
    json_decref(ans);
    return rc;
}

/* Stops the destination; when it had ended already, *why (may be NULL)
 * says how: "target tern-vmm on 'n3' exited (killed by signal 9 (Killed))". */
static void abandon_target(struct task *k, struct migtask_run *m, struct etcd_client *c,
                           struct err *why)
{
    struct peer peer;
    struct err e;
    if (peer_init(&peer, k->ctx, c, m->plan.target, &e) < 0)
        return;
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

static int start_source(struct task *k, struct migtask_run *m, const char *tls_dir,
                        struct err *e)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:i}", "cmd", "migrate", "uri", m->uri,
                            "commit", "external", "downtime_limit_ms",
                            (int)m->plan.downtime_ms);
    if (m->plan.bwlimit_mib)
        json_object_set_new(req, "max_bandwidth",
                            json_integer((json_int_t)m->plan.bwlimit_mib << 20));
    if (tls_dir[0]) {
        json_object_set_new(req, "tls", json_true());
        json_object_set_new(req, "tls_dir", json_string(tls_dir));
    }
    if (m->nbd[0])
        json_object_set_new(req, "nbd", json_string(m->nbd));
    json_t *reply = NULL;
    vmm_set_listener(k->ctx->vmms, k->vmid, on_event, m);
    int rc = vmm_command(k->ctx->vmms, k->vmid, req, &reply, e);
    json_decref(req);
    json_decref(reply);
    return rc;
}

static void log_start(struct task *k, const struct migtask_plan *p)
{
    char bw[48] = "unlimited";
    if (p->bwlimit_mib)
        snprintf(bw, sizeof(bw), "%llu MiB/s", (unsigned long long)p->bwlimit_mib);
    task_log(k, "starting migration of vm %u from node '%s' to node '%s' (%s)", p->vmid,
             p->source, p->target, p->address);
    task_log(k, "migration type %s, downtime limit %u ms, bandwidth %s", p->type,
             p->downtime_ms, bw);
}

static int run_online(struct task *k, struct migtask_run *m, struct etcd_client *c,
                      struct err *e)
{
    char tls_dir[MIGTASK_TLS_DIR_MAX];
    log_start(k, &m->plan);
    vmm_set_status(k->ctx->vmms, k->vmid, "migrating");
    int rc = prepare_target(k, m, c, tls_dir, e);
    if (!rc)
        task_log(k, "destination ready on node '%s': %s", m->plan.target, m->uri);
    if (!rc) {
        rc = start_source(k, m, tls_dir, e);
        if (rc)
            abandon_target(k, m, c, NULL);
    }
    if (!rc) {
        rc = follow(k, m, c, e);
        /* a destination that never got its VM (connect refused, cancelled,
         * failed before the commit) must not wait there for ever, holding
         * the VM's place on that node */
        if (rc && !m->committed)
            abandon_target(k, m, c, rc == -ECANCELED ? NULL : e);
    }
    vmm_set_listener(k->ctx->vmms, k->vmid, NULL, NULL);
    if (rc && !m->committed)
        vmm_set_status(k->ctx->vmms, k->vmid, "running");
    if (rc && m->committed)
        task_log(k, "vm %u belongs to node '%s' now; this node will not run it again",
                 k->vmid, m->plan.target);
    return rc;
}

/* After the offline copy: the VM arrived paused on the target, whose ternd
 * stops it (the request said "offline"); the task waits until the cluster
 * shows it stopped. */
static int stopped_on_target(struct task *k, struct migtask_run *m, struct etcd_client *c,
                             struct err *e)
{
    for (int i = 0; i < 150; i++) { /* 30 s */
        struct vmrec_state st;
        struct err ignored;
        int s = vmrec_state_get(c, k->vmid, 0, &st, &ignored);
        if (s == -ENOENT || (!s && strcmp(st.status, "stopped") == 0)) {
            task_log(k, "vm %u stopped on node '%s', its disks there", k->vmid,
                     m->plan.target);
            return 0;
        }
        usleep(200000);
    }
    return err_set(e, ETIMEDOUT, "vm %u arrived on node '%s' but is not stopped there",
                   k->vmid, m->plan.target);
}

/* A stopped VM with local disks: built here paused (the guest never runs)
 * and migrated, so that its disks go by the mirror with every guarantee of
 * a live migration (no orphan volume, the source untouched before the
 * commit); then stopped on the target. */
static int run_offline_disks(struct task *k, struct migtask_run *m, struct etcd_client *c,
                             struct err *e)
{
    task_log(k,
             "vm %u is stopped: its %u local disk(s) go by a migration of the vm built "
             "paused on node '%s' (the guest never runs)",
             k->vmid, migtask_disks_local(&m->plan), m->plan.source);
    struct migtask_handover h = {.rev = m->rev};
    snprintf(h.source, sizeof(h.source), "%s", m->plan.source);
    snprintf(h.target, sizeof(h.target), "%s", m->plan.target);
    struct vmm_spec spec = m->plan.spec;
    spec.paused = true;
    int rc = migtask_handover_write(k->ctx, k->vmid, "source", &h, e);
    if (!rc)
        rc = vmm_start(k->ctx->vmms, &spec, e);
    if (!rc)
        rc = run_online(k, m, c, e);
    struct err ignored;
    if (rc && !m->committed && vmm_stop(k->ctx->vmms, k->vmid, 5000, &ignored) == 0)
        vmm_wait_settled(k->ctx->vmms, k->vmid, 5000);
    if (!rc)
        rc = stopped_on_target(k, m, c, e);
    return rc;
}

static int run_offline(struct task *k, struct migtask_run *m, struct etcd_client *c,
                       struct err *e)
{
    if (migtask_disks_local(&m->plan))
        return run_offline_disks(k, m, c, e);
    task_log(k, "vm %u is stopped: offline migration from node '%s' to node '%s'", k->vmid,
             m->plan.source, m->plan.target);
    bool committed = false;
    int rc = commit_handover(k, m, c, &committed, e);
    if (committed)
        task_log(k,
                 "node '%s' owns vm %u now; its disks are on shared storage, nothing "
                 "to copy",
                 m->plan.target, k->vmid);
    return rc;
}

/* With the VM's lock held. */
static int migrate_locked(struct task *k, struct etcd_client *c, struct err *e)
{
    struct migtask_run *m = k->arg;
    char owner[TERN_NAME_MAX + 1];
    int rc = handover_read(c, k->vmid, owner, &m->rev, e);
    if (!rc && strcmp(owner, m->plan.source) != 0)
        rc = err_set(e, ESTALE, "vm %u belongs to node '%s', not '%s'", k->vmid, owner,
                     m->plan.source);
    /* the checks ran before the lock: a start or stop may have come between */
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    if (!rc && info.present != m->plan.running)
        rc = err_set(e, ESTALE, "vm %u was %s while the checks ran; nothing moved", k->vmid,
                     info.present ? "started" : "stopped");
    struct migtask_handover h = {.rev = m->rev};
    snprintf(h.source, sizeof(h.source), "%s", m->plan.source);
    snprintf(h.target, sizeof(h.target), "%s", m->plan.target);
    if (!rc && m->plan.running)
        rc = migtask_handover_write(k->ctx, k->vmid, "source", &h, e);
    if (!rc)
        rc = m->plan.running ? run_online(k, m, c, e) : run_offline(k, m, c, e);
    if (!rc && migtask_disks_local(&m->plan))
        migtask_disks_done(k, &m->plan);
    double s = (double)(clock_mono_ns() - m->t0) / 1e9;
    if (!rc)
        task_log(k, "migration finished successfully (duration %02d:%02d:%02d)",
                 (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    return rc;
}

/* The events no one took (the source's exit after "completed"). */
static void drop_events(struct migtask_run *m)
{
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < m->nevents; i++)
        json_decref(m->events[i]);
    m->nevents = 0;
    pthread_mutex_unlock(&m->lock);
}

static int run_migrate(struct task *k, struct err *e)
{
    struct migtask_run *m = k->arg;
    m->t0 = clock_mono_ns();
    int rc = vmops_task_locked(k, migrate_locked, e);
    drop_events(m);
    return rc;
}

int migtask_start(struct node_ctx *x, struct migtask_plan *p, char id[TASK_ID_MAX],
                  struct err *e)
{
    struct migtask_run *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->plan = *p;
    p->checks = NULL;
    json_decref(m->plan.checks);
    m->plan.checks = NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    int rc = task_start(x->tasks, x, "migrate", p->vmid, run_migrate, m, id, e);
    if (rc)
        free(m); /* no events yet, and the plan's checks went above */
    return rc;
}
