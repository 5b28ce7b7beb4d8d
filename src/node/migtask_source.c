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
#include "node/migtask_run.h"
#include "node/peer.h"
#include "node/progress.h"
#include "node/replsync.h"
#include "node/task.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define PREPARE_TIMEOUT_MS 15000

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
        m->replica_delta = m->plan.running &&
                           replsync_delta_ready(k->ctx, c, &m->plan.spec, m->plan.target);
        if (m->replica_delta) {
            json_object_set_new(req, "replica_delta", json_true());
            task_log(k,
                     "node '%s' holds the replica of the last sync: the local disks "
                     "start from it and only the blocks written since are mirrored",
                     m->plan.target);
        }
    }
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/vms/%u/incoming", k->vmid);
    json_t *ans = NULL;
    long status = 0;
    /* the target starts its tern-vmm (up to 10 s) before it answers */
    peer_set_timeout(&peer, PREPARE_TIMEOUT_MS);
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

static int start_source(struct task *k, struct migtask_run *m, const char *tls_dir,
                        struct err *e)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b}", "cmd", "migrate", "uri",
                            m->uri, "commit", "external", "downtime_limit_ms",
                            (int)m->plan.downtime_ms, "watchdog_ms", MIGTASK_WATCHDOG_MS,
                            "pause_gate", 1);
    if (m->plan.bwlimit_mib)
        json_object_set_new(req, "max_bandwidth",
                            json_integer((json_int_t)m->plan.bwlimit_mib << 20));
    if (tls_dir[0]) {
        json_object_set_new(req, "tls", json_true());
        json_object_set_new(req, "tls_dir", json_string(tls_dir));
    }
    if (m->nbd[0])
        json_object_set_new(req, "nbd", json_string(m->nbd));
    if (m->replica_delta)
        json_object_set_new(req, "nbd_delta", json_true());
    json_t *reply = NULL;
    vmm_set_listener(k->ctx->vmms, k->vmid, migtask_on_event, m);
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
    task_set_cancellable(k, NULL);
    int rc = prepare_target(k, m, c, tls_dir, e);
    if (!rc)
        task_log(k, "destination ready on node '%s': %s", m->plan.target, m->uri);
    if (!rc && task_cancelled(k)) {
        task_set_cancelled(k);
        rc = err_set(e, ECANCELED, "migration cancelled before it began");
    }
    if (!rc)
        rc = start_source(k, m, tls_dir, e);
    if (rc) {
        if (m->uri[0])
            migtask_abandon_target(k, m, c, NULL);
        vmm_set_listener(k->ctx->vmms, k->vmid, NULL, NULL);
        migtask_status_back(k);
        return rc;
    }
    rc = migtask_follow_to_end(k, m, c, e);
    if (!rc && m->plan.spec.conf.nnets)
        migtask_log_network(k, k->ctx, c, m->plan.target, k->vmid);
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
    int rc = migtask_commit_handover(k, m, c, &committed, e);
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

static int run_migrate(struct task *k, struct err *e)
{
    struct migtask_run *m = k->arg;
    m->t0 = clock_mono_ns();
    int rc = vmops_task_locked(k, migrate_locked, e);
    migtask_run_release(m);
    return rc;
}

int migtask_start(struct node_ctx *x, struct migtask_plan *p, char id[TASK_ID_MAX],
                  struct err *e)
{
    struct migtask_run *m = migtask_run_new();
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->plan = *p;
    p->checks = NULL;
    json_decref(m->plan.checks);
    m->plan.checks = NULL;
    int rc = task_start(x->tasks, x, "migrate", p->vmid, run_migrate, m, id, e);
    if (rc)
        free(m); /* no events yet, and the plan's checks went above */
    return rc;
}
