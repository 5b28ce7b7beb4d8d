/* The sync task and the end of a replication, on the VM's owner
 * (node/replsync.h). The owner drives both sides: the target's
 * tern-replica through its ternd (POST /replicas/{id}, then .../end for
 * its exit), the source through the VM's tern-vmm. The source cannot see
 * whether the target committed, so a sync that tern-vmm finished but the
 * target did not commit is followed by repl_invalidate: the next one is
 * full (docs/replication.md, "A sync"). */
#include "node/replsync.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/owner.h"
#include "cluster/replication.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/peer.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define MiB (1024.0 * 1024.0)
#define SYNC_WAIT_S 600
#define TICK_EVERY_S 5

struct replsync_run {
    struct repl_job job;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *ev; /* the repl-sync event, NULL until it came */
    bool ended; /* it came, or tern-vmm ended */
    bool full;
    bool built; /* a stopped VM's tern-vmm, built paused for the sync */
    int64_t bytes;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_event(void *ctx, json_t *ev)
{
    struct replsync_run *m = ctx;
    const char *name = json_string_value(json_object_get(ev, "event"));
    bool sync = name && strcmp(name, "repl-sync") == 0;
    if (!sync && !(name && strcmp(name, "exit") == 0))
        return;
    pthread_mutex_lock(&m->lock);
    if (sync && !m->ev)
        m->ev = json_incref(ev);
    m->ended = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static int command(struct task *k, json_t *req, json_t **reply, struct err *e)
{
    json_t *ans = NULL;
    int rc = vmm_command(k->ctx->vmms, k->vmid, req, &ans, e);
    json_decref(req);
    if (reply)
        *reply = ans;
    else
        json_decref(ans);
    return rc;
}

static int bitmap_path(const struct vmm_spec *spec, unsigned i, const char *target,
                       char out[VMCONF_PATH_MAX + 80])
{
    return snprintf(out, VMCONF_PATH_MAX + 80, "%s.repl-%s", spec->disk[i], target) >=
                   VMCONF_PATH_MAX + 80
               ? -ENAMETOOLONG
               : 0;
}

/* Each local disk replicated (repl_attach for one that is not yet: its
 * first sync is full); *full when any needs a full sync. */
static int attach(struct task *k, struct replsync_run *m, const struct vmm_spec *spec,
                  struct err *e)
{
    json_t *st = NULL;
    int rc = command(k, json_pack("{s:s}", "cmd", "repl_status"), &st, e);
    json_t *disks = json_object_get(st, "disks");
    for (unsigned i = 0; !rc && i < spec->conf.ndisks; i++) {
        if (spec->shared[i])
            continue;
        char name[16], bm[VMCONF_PATH_MAX + 80];
        bool found = false;
        size_t j;
        json_t *d;
        snprintf(name, sizeof(name), "disk%u", i);
        json_array_foreach(disks, j, d) {
            const char *dn = json_string_value(json_object_get(d, "disk"));
            if (dn && strcmp(dn, name) == 0) {
                found = true;
                m->full |= json_is_true(json_object_get(d, "full_needed"));
            }
        }
        if (found)
            continue;
        if (bitmap_path(spec, i, m->job.target, bm))
            rc = err_set(e, ENAMETOOLONG, "disk%u: bitmap path too long", i);
        if (!rc)
            rc = command(k,
                         json_pack("{s:s, s:i, s:s}", "cmd", "repl_attach", "disk", (int)i,
                                   "bitmap", bm),
                         NULL, e);
        if (!rc)
            task_log(k,
                     "disk%u: replicated from now on (bitmap '%s'): its first sync is full",
                     i, bm);
        m->full = true;
    }
    json_decref(st);
    return rc;
}

/* One call to the target's ternd; a non-2xx answer becomes its error. */
static int target_call(struct peer *p, const char *method, const char *path, json_t *body,
                       json_t **ans, struct err *e)
{
    long status = 0;
    *ans = NULL;
    int rc = peer_call(p, method, path, body, &status, ans, e);
    json_decref(body);
    if (!rc && (status < 200 || status >= 300)) {
        const char *msg = json_string_value(json_object_get(*ans, "error"));
        rc = err_set(e, EIO, "node '%s': %s", p->node, msg ? msg : "refused");
    }
    return rc;
}

/* The repl-sync event, or an error when tern-vmm ended or the time is up. */
static int wait_sync(struct replsync_run *m, json_t **ev, struct err *e)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SYNC_WAIT_S;
    pthread_mutex_lock(&m->lock);
    while (!m->ended)
        if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
            break;
    *ev = json_incref(m->ev);
    pthread_mutex_unlock(&m->lock);
    if (!*ev)
        return err_set(e, EIO, "tern-vmm ended or did not finish the sync in %d s",
                       SYNC_WAIT_S);
    const char *st = json_string_value(json_object_get(*ev, "status"));
    if (!st || strcmp(st, "completed") != 0) {
        const char *why = json_string_value(json_object_get(*ev, "error"));
        return err_set(e, EIO, "sync failed: %s", why ? why : "no reason given");
    }
    return 0;
}

static void log_disks(struct task *k, json_t *ev)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ev, "disks"), i, d)
        task_log(k, "%s: %.1f MiB %s, %.1f MiB copied",
                 json_string_value(json_object_get(d, "disk")) ?: "disk",
                 json_number_value(json_object_get(d, "total")) / MiB,
                 json_is_true(json_object_get(ev, "full")) ? "allocated" : "marked",
                 json_number_value(json_object_get(d, "copied")) / MiB);
}

/* repl_sync to uri and its end; then the target's verdict. */
static int sync_to(struct task *k, struct replsync_run *m, struct peer *p, const char *path,
                   const char *uri, struct err *e)
{
    vmm_set_listener(k->ctx->vmms, k->vmid, on_event, m);
    int rc = command(
        k, json_pack("{s:s, s:s, s:b}", "cmd", "repl_sync", "uri", uri, "full", m->full),
        NULL, e);
    json_t *ev = NULL, *ans = NULL;
    if (!rc)
        rc = wait_sync(m, &ev, e);
    vmm_set_listener(k->ctx->vmms, k->vmid, NULL, NULL);
    if (!rc) {
        m->bytes = (int64_t)json_integer_value(json_object_get(ev, "bytes"));
        log_disks(k, ev);
        task_log(k, "sync done on this side: %.1f MiB sent in %.0f ms", m->bytes / MiB,
                 json_number_value(json_object_get(ev, "ms")));
    }
    char end[160];
    snprintf(end, sizeof(end), "%s/end", path);
    struct err te;
    int trc = target_call(p, "POST", end, json_pack("{s:b}", "abort", rc != 0), &ans, &te);
    bool committed = !trc && json_is_true(json_object_get(ans, "committed"));
    if (!rc && !committed) {
        const char *why = json_string_value(json_object_get(ans, "error"));
        rc = err_set(e, EIO, "the target did not commit: %s",
                     trc   ? te.msg
                     : why ? why
                           : "?");
    }
    /* a sync tern-vmm reported failed has settled its bitmap itself (bits
     * given back, or full needed); any other end without a commit leaves
     * a replica older than tern-vmm may think: the next sync is full */
    const char *st = json_string_value(json_object_get(ev, "status"));
    if (!rc)
        task_log(k, "committed on node '%s': %.1f MiB written into the replica", p->node,
                 json_number_value(json_object_get(ans, "bytes")) / MiB);
    else if (!(st && strcmp(st, "failed") == 0) &&
             command(k, json_pack("{s:s}", "cmd", "repl_invalidate"), NULL, &te) == 0)
        task_log(k, "the next sync is full: the replica may be older than this side knows");
    json_decref(ev);
    json_decref(ans);
    return rc;
}

/* A stopped VM syncs through a tern-vmm built paused (its vCPUs never
 * run): the same bitmaps and the same sync as a running one. */
static int build_paused(struct task *k, struct replsync_run *m, struct vmm_spec *spec,
                        struct err *e)
{
    spec->paused = true;
    int rc = vmm_start(k->ctx->vmms, spec, e);
    m->built = !rc;
    if (!rc)
        task_log(k,
                 "vm %u is stopped: built paused on node '%s' for the sync (the guest "
                 "never runs)",
                 k->vmid, k->ctx->cfg->name);
    return rc;
}

static int sync_target(struct task *k, struct etcd_client *c, struct replsync_run *m,
                       struct err *e);

static int sync_locked(struct task *k, struct etcd_client *c, struct err *e)
{
    struct replsync_run *m = k->arg;
    struct vmm_spec spec;
    struct vmm_info info;
    int rc = repl_job_get(c, k->vmid, 0, &m->job, e);
    if (!rc)
        rc = vmops_spec_load(c, k->vmid, k->ctx->cfg->name, &spec, e);
    vmm_info(k->ctx->vmms, k->vmid, &info);
    if (!rc && info.present && info.role != VMM_RUN)
        rc = err_set(e, EBUSY, "vm %u is arriving on node '%s' (a migration)", k->vmid,
                     k->ctx->cfg->name);
    if (!rc && strcmp(m->job.target, k->ctx->cfg->name) == 0)
        rc = err_set(e, EINVAL,
                     "vm %u runs on node '%s', its replication target: delete the "
                     "replication and create one to another node",
                     k->vmid, m->job.target);
    if (!rc && !info.present)
        rc = build_paused(k, m, &spec, e);
    if (!rc)
        rc = attach(k, m, &spec, e);
    if (!rc)
        rc = sync_target(k, c, m, e);
    struct err ignored; /* quit: the bitmap is saved clean */
    if (m->built && vmm_stop(k->ctx->vmms, k->vmid, 10000, &ignored) == 0)
        vmm_wait_settled(k->ctx->vmms, k->vmid, 5000);
    if (m->built)
        task_log(k, "vm %u stopped again", k->vmid);
    return rc;
}

/* The target's tern-replica, the sync into it, its verdict. */
static int sync_target(struct task *k, struct etcd_client *c, struct replsync_run *m,
                       struct err *e)
{
    struct peer p;
    json_t *ans = NULL;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/replicas/%u", k->vmid);
    int rc = peer_init(&p, k->ctx, c, m->job.target, e);
    if (rc)
        return rc;
    peer_set_timeout(&p, 60000);
    rc = target_call(&p, "POST", path, json_pack("{s:b}", "fresh", m->full), &ans, e);
    const char *uri = json_string_value(json_object_get(ans, "uri"));
    if (!rc && !uri)
        rc = err_set(e, EPROTO, "node '%s' gave no nbd address", m->job.target);
    if (!rc) {
        task_log(k, "%s sync of vm %u to node '%s' (%s)", m->full ? "full" : "delta",
                 k->vmid, m->job.target, uri);
        rc = sync_to(k, m, &p, path, uri, e);
    }
    json_decref(ans);
    peer_release(&p);
    return rc;
}

/* The outcome into /tern/replstate/<id>, for status and the schedule. */
static void record(struct task *k, struct replsync_run *m, int64_t start, int rc,
                   const struct err *e)
{
    struct etcd_client c;
    struct repl_state st;
    struct err ignored;
    if (etcd_client_init(&c, k->table->etcd_url, &ignored) < 0)
        return;
    repl_state_get(&c, k->vmid, 0, &st, &ignored);
    int64_t now = now_ms();
    if (!rc) {
        st.last_sync_ms = now;
        st.duration_ms = now - start;
        st.bytes = (uint64_t)m->bytes;
        st.full = m->full;
        st.syncs++;
    }
    snprintf(st.error, sizeof(st.error), "%s", rc ? e->msg : "");
    snprintf(st.task, sizeof(st.task), "%s", k->id);
    st.next_run_ms = m->job.schedule_s ? now + (int64_t)m->job.schedule_s * 1000 : 0;
    if (repl_state_put(&c, k->vmid, &st, &ignored) < 0)
        task_log(k, "the sync's state could not be recorded: %s", ignored.msg);
    etcd_client_release(&c);
}

static int run_sync(struct task *k, struct err *e)
{
    struct replsync_run *m = k->arg;
    int64_t start = now_ms();
    int rc = vmops_task_locked(k, sync_locked, e);
    if (m->job.id)
        record(k, m, start, rc, e);
    json_decref(m->ev);
    m->ev = NULL;
    return rc;
}

int replsync_start(struct node_ctx *x, uint32_t vmid, char id[TASK_ID_MAX], struct err *e)
{
    if (task_running_for(x->tasks, vmid))
        return err_set(e, EBUSY, "vm %u: a task works on it now: try again when it ended",
                       vmid);
    struct replsync_run *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    int rc = task_start(x->tasks, x, "replicate", vmid, run_sync, m, id, e);
    if (rc)
        free(m);
    return rc;
}

/* A running VM's tern-vmm forgets each local disk's bitmap (and removes
 * its file); a stopped VM's bitmap files are removed here. */
static void drop_bitmaps(struct node_ctx *x, const struct vmm_spec *spec,
                         const char *target)
{
    struct vmm_info info;
    vmm_info(x->vmms, spec->conf.id, &info);
    for (unsigned i = 0; i < spec->conf.ndisks; i++) {
        char bm[VMCONF_PATH_MAX + 80];
        if (spec->shared[i] || bitmap_path(spec, i, target, bm))
            continue;
        json_t *req = json_pack("{s:s, s:i}", "cmd", "repl_detach", "disk", (int)i),
               *ans = NULL;
        struct err ignored; /* a disk never attached: nothing to detach */
        if (info.present)
            vmm_command(x->vmms, spec->conf.id, req, &ans, &ignored);
        json_decref(req);
        json_decref(ans);
        unlink(bm);
    }
}

int replsync_delete(struct node_ctx *x, struct etcd_client *c, uint32_t vmid, struct err *e)
{
    struct repl_job job;
    struct vmm_spec spec;
    if (task_running_for(x->tasks, vmid))
        return err_set(e, EBUSY, "vm %u: a task works on it now: try again when it ended",
                       vmid);
    int rc = repl_job_get(c, vmid, 0, &job, e);
    if (!rc)
        rc = vmops_spec_load(c, vmid, x->cfg->name, &spec, e);
    if (rc)
        return rc;
    struct peer p;
    json_t *ans = NULL;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/replicas/%u", vmid);
    rc = peer_init(&p, x, c, job.target, e);
    if (!rc) {
        rc = target_call(&p, "DELETE", path, NULL, &ans, e);
        peer_release(&p);
    }
    if (rc) { /* the job stays: a delete again removes what is left */
        char why[sizeof(e->msg)];
        snprintf(why, sizeof(why), "%s", e->msg);
        return err_set(e, -rc, "vm %u: the replica on node '%s' was not removed: %s", vmid,
                       job.target, why);
    }
    log_info("repl", "vm %u: %lld replica file(s) removed on node '%s'", vmid,
             (long long)json_integer_value(json_object_get(ans, "removed")), job.target);
    json_decref(ans);
    drop_bitmaps(x, &spec, job.target);
    return repl_job_remove(c, vmid, e);
}

static bool due(struct node_ctx *x, struct etcd_client *c, const struct repl_job *job,
                int64_t now)
{
    char owner[TERN_NAME_MAX + 1];
    struct repl_state st;
    struct vmm_info info;
    struct err ignored;
    if (!job->schedule_s ||
        vmowner_get(c, job->id, ETCD_SERIALIZABLE, owner, NULL, &ignored) < 0 ||
        strcmp(owner, x->cfg->name) != 0)
        return false;
    vmm_info(x->vmms, job->id, &info);
    if (!info.present || info.role != VMM_RUN || task_running_for(x->tasks, job->id))
        return false;
    int64_t at = repl_state_get(c, job->id, ETCD_SERIALIZABLE, &st, &ignored) == 0
                     ? st.next_run_ms
                     : job->created_ms + (int64_t)job->schedule_s * 1000;
    return now >= at;
}

void replsync_tick(struct node_ctx *x, struct etcd_client *c)
{
    static time_t next;
    time_t t = time(NULL);
    if (t < next)
        return;
    next = t + TICK_EVERY_S;
    struct repl_job *jobs;
    size_t n;
    struct err e;
    if (repl_job_list(c, ETCD_SERIALIZABLE, &jobs, &n, &e) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char id[TASK_ID_MAX];
        if (due(x, c, &jobs[i], now_ms()) && replsync_start(x, jobs[i].id, id, &e) < 0)
            log_error("repl", "vm %u: scheduled sync not started: %s", jobs[i].id, e.msg);
    }
    free(jobs);
}

bool replsync_delta_ready(struct node_ctx *x, struct etcd_client *c,
                          const struct vmm_spec *spec, const char *target)
{
    struct repl_job job;
    struct repl_state st;
    struct err ignored;
    json_t *req = json_pack("{s:s}", "cmd", "repl_status"), *ans = NULL;
    bool ok = repl_job_get(c, spec->conf.id, 0, &job, &ignored) == 0 &&
              strcmp(job.target, target) == 0 &&
              repl_state_get(c, spec->conf.id, 0, &st, &ignored) == 0 && st.syncs > 0 &&
              vmm_command(x->vmms, spec->conf.id, req, &ans, &ignored) == 0;
    json_t *disks = json_object_get(ans, "disks");
    for (unsigned i = 0; ok && i < spec->conf.ndisks; i++) {
        char name[16];
        size_t j;
        json_t *d;
        bool found = false;
        snprintf(name, sizeof(name), "disk%u", i);
        json_array_foreach(disks, j, d) {
            const char *dn = json_string_value(json_object_get(d, "disk"));
            if (dn && strcmp(dn, name) == 0 &&
                !json_is_true(json_object_get(d, "full_needed")))
                found = true;
        }
        ok = spec->shared[i] || found;
    }
    json_decref(req);
    json_decref(ans);
    return ok;
}
