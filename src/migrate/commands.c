#include "migrate/commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/jsonf.h"
#include "common/log.h"
#include "migrate/decision.h"
#include "migrate/forecast.h"
#include "migrate/incoming.h"
#include "migrate/move_disk.h"
#include "migrate/tls.h"

#define PAUSE_GATE_WAIT_MS 2000

static struct migration outgoing;
static struct mig_incoming *incoming; /* with --incoming: the VM arriving */
static const char *default_tls_dir;

void migrate_commands_set_tls_dir(const char *dir)
{
    default_tls_dir = dir;
}

static void hook_event(void *ctx, json_t *fields)
{
    monitor_post_event(ctx, "migration", fields);
}

/* Under ternd: ask it (event "commit-pending") and wait for migrate_commit.
 * A cancel meanwhile changes nothing: only the authority may still abort. */
static int hook_commit(void *ctx, bool *decided, struct err *e)
{
    *decided = outgoing.params.external_commit;
    if (!*decided)
        return 0;
    mig_decision_expect(&outgoing.commit);
    monitor_post_event(
        ctx, "migration",
        json_pack("{s:s, s:s}", "role", "source", "status", "commit-pending"));
    log_info("migrate", "destination loaded; waiting for the commit decision");
    if (!mig_decision_wait(&outgoing.commit))
        return err_set(e, ECANCELED, "handover refused by the cluster");
    return 0;
}

/* Before stop-and-copy: ask ternd (event "pause-pending") whether the VM
 * may pause, and wait up to 2 s for migrate_pause. A "no" (or no answer)
 * means another pre-copy pass; asks come at most every 2 s so a small
 * guest does not spin through passes. */
static bool hook_pause_gate(void *ctx)
{
    uint64_t t0 = clock_mono_ns();
    mig_decision_expect(&outgoing.pause);
    monitor_post_event(
        ctx, "migration",
        json_pack("{s:s, s:s}", "role", "source", "status", "pause-pending"));
    bool yes = false;
    mig_decision_wait_ms(&outgoing.pause, PAUSE_GATE_WAIT_MS, &yes);
    uint64_t spent_us = (clock_mono_ns() - t0) / 1000;
    if (!yes && spent_us < PAUSE_GATE_WAIT_MS * 1000ULL)
        usleep((useconds_t)(PAUSE_GATE_WAIT_MS * 1000ULL - spent_us));
    return yes;
}

static uint64_t hook_idle_ms(void *ctx)
{
    struct monitor *m = ctx;
    return control_idle_ms(&m->control);
}

static void hook_completed(void *ctx)
{
    struct monitor *m = ctx;
    vm_request_exit(&m->vm, VM_EXIT_MIGRATED, "migrated to %s; this process ends",
                    outgoing.params.uri);
}

int migrate_commands_start(struct monitor *m, void *arg, struct err *e)
{
    (void)e;
    incoming = arg;
    struct mig_hooks hooks = {.event = hook_event,
                              .commit = hook_commit,
                              .pause_gate = hook_pause_gate,
                              .idle_ms = hook_idle_ms,
                              .completed = hook_completed,
                              .ctx = m};
    migration_init(&outgoing, &m->vm, hooks);
    return 0;
}

void migrate_commands_stop(struct monitor *m, void *arg)
{
    (void)m;
    (void)arg;
    move_disk_stop();
    migration_release(&outgoing);
}

static int check_keys(json_t *req, struct err *e)
{
    static const char *const known[] = {"cmd",
                                        "id",
                                        "uri",
                                        "max_bandwidth",
                                        "downtime_limit_ms",
                                        "auto_converge",
                                        "max_time_s",
                                        "tls",
                                        "tls_dir",
                                        "page_crc",
                                        "commit",
                                        "watchdog_ms",
                                        "pause_gate",
                                        "nbd",
                                        "nbd_delta",
                                        "channels",
                                        NULL};
    const char *key = jsonf_unknown_key(req, known);
    return key ? err_set(e, EINVAL, "unknown parameter '%s'", key) : 0;
}

int migrate_params_parse(json_t *req, struct mig_params *p, struct err *e)
{
    mig_params_default(p);
    const char *uri = json_string_value(json_object_get(req, "uri"));
    if (!uri || !*uri || strlen(uri) >= sizeof(p->uri))
        return err_set(e, EINVAL, "'uri' (tcp:HOST:PORT, unix:PATH or fd:N) is required");
    snprintf(p->uri, sizeof(p->uri), "%s", uri);
    uint64_t downtime = p->downtime_limit_ms, max_time = p->max_time_s;
    uint64_t channels = p->channels;
    int rc = check_keys(req, e);
    if (!rc)
        rc = jsonf_uint(req, "max_bandwidth", false, 0, 1ULL << 40, &p->max_bandwidth, NULL,
                        e);
    if (!rc)
        rc = jsonf_uint(req, "downtime_limit_ms", false, 1, 60000, &downtime, NULL, e);
    if (!rc)
        rc = jsonf_uint(req, "max_time_s", false, 1, 86400, &max_time, NULL, e);
    uint64_t watchdog = 0;
    if (!rc)
        rc = jsonf_uint(req, "watchdog_ms", false, 0, 3600000, &watchdog, NULL, e);
    p->watchdog_ms = (uint32_t)watchdog;
    if (!rc)
        rc = jsonf_bool(req, "pause_gate", false, &p->pause_gate, NULL, e);
    if (!rc)
        rc = jsonf_uint(req, "channels", false, 1, MIG_CHANNELS_MAX, &channels, NULL, e);
    if (!rc)
        rc = jsonf_bool(req, "auto_converge", false, &p->auto_converge, NULL, e);
    if (!rc)
        rc = jsonf_bool(req, "tls", false, &p->tls, NULL, e);
    /* TLS records are authenticated already: page CRCs only cost a copy */
    p->page_crc = !p->tls;
    if (!rc)
        rc = jsonf_bool(req, "page_crc", false, &p->page_crc, NULL, e);
    if (rc)
        return rc;
    const char *commit = json_string_value(json_object_get(req, "commit"));
    if (json_object_get(req, "commit") &&
        (!commit || (strcmp(commit, "external") != 0 && strcmp(commit, "local") != 0)))
        return err_set(e, EINVAL, "'commit' must be \"local\" or \"external\"");
    p->external_commit = commit && strcmp(commit, "external") == 0;
    p->downtime_limit_ms = (uint32_t)downtime;
    p->max_time_s = (uint32_t)max_time;
    const char *nbd = json_string_value(json_object_get(req, "nbd"));
    if (json_object_get(req, "nbd") &&
        (!nbd || strlen(nbd) >= sizeof(p->nbd) ||
         (strncmp(nbd, "tcp:", 4) != 0 && strncmp(nbd, "unix:", 5) != 0)))
        return err_set(e, EINVAL, "'nbd' must be tcp:HOST:PORT or unix:PATH");
    if (nbd)
        snprintf(p->nbd, sizeof(p->nbd), "%s", nbd);
    p->nbd_delta = json_is_true(json_object_get(req, "nbd_delta"));
    if (p->nbd_delta && !nbd)
        return err_set(e, EINVAL, "'nbd_delta' goes with 'nbd'");
    p->channels = (unsigned)channels;
    const char *dir = json_string_value(json_object_get(req, "tls_dir"));
    dir = dir ? dir : default_tls_dir;
    if (p->tls && !dir)
        return err_set(e, EINVAL,
                       "'tls' needs certificates: start tern-vmm with "
                       "--tls-dir or pass 'tls_dir'");
    if (dir)
        snprintf(p->tls_dir, sizeof(p->tls_dir), "%s", dir);
    return p->tls ? mig_tls_check_dir(p->tls_dir, e) : 0;
}

static int cmd_migrate(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    (void)reply;
    struct mig_params p;
    int rc = migrate_params_parse(req, &p, e);
    if (!rc && move_disk_busy())
        rc = err_set(e, EBUSY, "a disk move is running: migrate when it has ended");
    if (!rc)
        rc = migration_start(&outgoing, &p, e);
    return rc;
}

static int cmd_migrate_cancel(struct control *ctl, json_t *req, json_t *reply,
                              struct err *e)
{
    (void)ctl;
    (void)req;
    (void)reply;
    return migration_cancel(&outgoing, e);
}

static int cmd_query_migrate(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    (void)req;
    (void)e;
    json_t *q = migration_query(&outgoing);
    json_object_update(reply, q);
    json_decref(q);
    /* what a restarted ternd must answer, if anything */
    const char *decision = mig_decision_pending(&outgoing.commit)                ? "commit"
                           : incoming && mig_decision_pending(&incoming->resume) ? "resume"
                                                                                 : NULL;
    json_object_set_new(reply, "decision", decision ? json_string(decision) : json_null());
    return 0;
}

/* A forecast measures with a dirty log of its own: not beside a migration. */
static int cmd_migrate_forecast(struct control *ctl, json_t *req, json_t *reply,
                                struct err *e)
{
    (void)ctl;
    pthread_mutex_lock(&outgoing.lock);
    enum mig_status s = outgoing.fig.status;
    pthread_mutex_unlock(&outgoing.lock);
    if (s == MIG_STATUS_SETUP || s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE ||
        s == MIG_STATUS_HANDOVER || vm_handed_over(outgoing.vm))
        return err_set(e, EBUSY, "migrate_forecast: a migration is running");
    return mig_forecast_command(outgoing.vm, req, reply, e);
}

/* {"<key>": true|false}: ternd's answer to a decision this process waits
 * for. */
static int give_decision(json_t *req, const char *key, struct mig_decision *d,
                         struct err *e)
{
    json_t *v = json_object_get(req, key);
    if (!json_is_boolean(v))
        return err_set(e, EINVAL, "'%s' (true or false) is required", key);
    return mig_decision_give(d, json_is_true(v), key, e);
}

/* {"commit": true|false}: the answer to "commit-pending". */
static int cmd_migrate_commit(struct control *ctl, json_t *req, json_t *reply,
                              struct err *e)
{
    (void)ctl;
    (void)reply;
    return give_decision(req, "commit", &outgoing.commit, e);
}

/* {"pause": true|false}: the answer to "pause-pending". */
static int cmd_migrate_pause(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    (void)reply;
    return give_decision(req, "pause", &outgoing.pause, e);
}

/* {"resume": true|false}: the answer to a destination's "commit-unknown"
 * (it lost its source after loading everything). */
static int cmd_incoming_resolve(struct control *ctl, json_t *req, json_t *reply,
                                struct err *e)
{
    (void)ctl;
    (void)reply;
    if (!incoming)
        return err_set(e, ENOENT, "no resume decision is awaited");
    return give_decision(req, "resume", &incoming->resume, e);
}

/* Not during a migration: its state and its disks are being sent. */
static int cmd_move_disk(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    json_t *q = migration_query(&outgoing);
    const char *st = json_string_value(json_object_get(q, "status"));
    bool moving = st && strcmp(st, "none") != 0 && strcmp(st, "completed") != 0 &&
                  strcmp(st, "failed") != 0 && strcmp(st, "cancelled") != 0;
    json_decref(q);
    if (moving || vm_handed_over(&((struct monitor *)ctl->ctx)->vm))
        return err_set(e, EBUSY, "move_disk: the vm is migrating");
    return move_disk_command(ctl, req, reply, e);
}

const struct control_command migrate_commands[] = {
    {"migrate_commit", cmd_migrate_commit},
    {"migrate_pause", cmd_migrate_pause},
    {"incoming_resolve", cmd_incoming_resolve},
    {"migrate", cmd_migrate},
    {"migrate_cancel", cmd_migrate_cancel},
    {"query_migrate", cmd_query_migrate},
    {"migrate_forecast", cmd_migrate_forecast},
    {"move_disk", cmd_move_disk},
    {"move_disk_cancel", move_disk_cancel_command},
    {NULL, NULL},
};
