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

static int run_offline(struct task *k, struct migtask_run *m, struct etcd_client *c,
                       struct err *e)
{
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
