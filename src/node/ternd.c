#include "node/ternd.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cluster/keys.h"
#include "common/log.h"
#include "node/cluster_setup.h"
#include "node/events.h"
#include "node/info.h"
#include "node/maintenance.h"
#include "node/migtask.h"
#include "node/replsync.h"
#include "node/vmnet.h"
#include "node/web.h"

#define ETCD_SERVE_WAIT_MS 20000
#define ETCD_STOP_GRACE_MS 5000
#define ETCD_BACKOFF_MAX_S 30
#define TICK_MS 250
#define SETTLE_EVERY_S 5
#define INFO_REFRESH_S 10

_Static_assert(TERND_TOKEN_LEN == CLUSTER_TOKEN_LEN, "one token format for both");

void ternd_init(struct ternd *t)
{
    memset(t, 0, sizeof(*t));
    ternd_config_init(&t->cfg);
    secrets_init(&t->secrets);
    etcd_server_init(&t->etcd);
    node_init(&t->node);
    api_init(&t->api);
    vmm_table_init(&t->vmms);
    task_table_init(&t->tasks);
    node_ctx_init(&t->ctx);
    ha_manager_init(&t->ha);
    t->vmms.fence_ms = ha_fence_budget;
    t->vmms.fence_ctx = &t->ha;
    t->ctx.cfg = &t->cfg;
    t->ctx.secrets = &t->secrets;
    t->ctx.node = &t->node;
    t->ctx.vmms = &t->vmms;
    t->ctx.tasks = &t->tasks;
}

/* The signals that end ternd: blocked before any thread exists, so every
 * thread inherits the mask and only ternd_run's sigtimedwait takes them. */
static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

static int etcd_configure(struct ternd *t, struct err *e)
{
    struct etcd_server *s = &t->etcd;
    const struct ternd_config *c = &t->cfg;
    int n[5] = {
        snprintf(s->name, sizeof(s->name), "%s", c->name),
        snprintf(s->client_url, sizeof(s->client_url), "%s", c->cluster_address),
        snprintf(s->peer_url, sizeof(s->peer_url), "%s", c->peer_address),
        snprintf(s->data_dir, sizeof(s->data_dir), "%s/etcd", c->data_dir),
        snprintf(s->log_path, sizeof(s->log_path), "%s/etcd.log", c->data_dir),
    };
    /* etcd reads it only for a new data dir; a member with data (or one
     * created or joined at run time) still needs a well-formed value */
    int m = c->initial_cluster[0] ? snprintf(s->initial_cluster, sizeof(s->initial_cluster),
                                             "%s", c->initial_cluster)
                                  : snprintf(s->initial_cluster, sizeof(s->initial_cluster),
                                             "%s=%s", c->name, c->peer_address);
    for (int i = 0; i < 5; i++)
        if (n[i] >= 128 || m >= (int)sizeof(s->initial_cluster))
            return err_set(e, ENAMETOOLONG, "etcd member %s: a path or url is too long",
                           c->name);
    s->election_ms = c->etcd_election_ms;
    /* a ternd killed with SIGKILL must not leave an etcd behind that holds
     * the ports its restart needs: etcd dies with the main thread */
    s->die_with_parent = true;
    if (c->etcd_tls) {
        const struct pki_paths *p = &t->secrets.pki;
        _Static_assert(sizeof(s->tls_key) >= sizeof(p->key), "pki paths fit");
        snprintf(s->tls_ca, sizeof(s->tls_ca), "%s", p->ca);
        snprintf(s->tls_cert, sizeof(s->tls_cert), "%s", p->cert);
        snprintf(s->tls_key, sizeof(s->tls_key), "%s", p->key);
        return etcd_tls_configure(p->ca, p->cert, p->key, e);
    }
    return 0;
}

int ternd_etcd_launch(struct ternd *t, struct err *e)
{
    int rc = etcd_server_start(&t->etcd, e);
    if (!rc)
        t->etcd_started = time(NULL);
    return rc;
}

/* A member with https:// addresses needs its certificate; one without
 * runs etcd open to anyone who reaches its ports, which is said once. A
 * plain-http member's data never runs with TLS (docs/cluster.md, "Clusters
 * from before TLS"): its peers still talk http, and what it held was
 * readable by anyone. */
static int check_tls(struct ternd *t, bool has_data, struct err *e)
{
    const struct pki_paths *p = &t->secrets.pki;
    if (!t->cfg.etcd_tls) {
        log_warn("ternd",
                 "etcd without TLS (http:// addresses): anyone who reaches %s can "
                 "read and change the cluster state",
                 t->cfg.cluster_address);
        return 0;
    }
    if (pki_present(p))
        return 0;
    if (has_data)
        return err_set(e, EPROTO,
                       "etcd data in %s but no cluster certificate in %s: a member "
                       "of a cluster without TLS cannot switch to https in place "
                       "(docs/cluster.md, 'Clusters from before TLS')",
                       t->etcd.data_dir, p->dir);
    return err_set(e, ENOENT,
                   "initial_cluster with https:// addresses needs the cluster CA and "
                   "this node's certificate in %s (ca.pem, node.pem, node.key)",
                   p->dir);
}

/* The three ways to start (docs/ternd.md): a member's data in
 * DATA_DIR/etcd (a restart), initial_cluster (a static bootstrap), or
 * neither: in no cluster until `tern cluster create` or `join`. */
static int choose_mode(struct ternd *t, bool *in_cluster, struct err *e)
{
    char member[sizeof(t->etcd.data_dir) + 8];
    struct stat st;
    snprintf(member, sizeof(member), "%s/member", t->etcd.data_dir);
    *in_cluster = true;
    if (stat(member, &st) == 0) {
        log_info("ternd", "etcd data in %s: starting the member", t->etcd.data_dir);
        return check_tls(t, true, e);
    }
    if (t->cfg.initial_cluster[0]) {
        log_info("ternd", "no etcd data yet: bootstrapping from initial_cluster");
        return check_tls(t, false, e);
    }
    *in_cluster = false;
    log_info("ternd",
             "node %s is in no cluster: waiting for 'tern cluster create' "
             "or 'tern cluster join'",
             t->cfg.name);
    return 0;
}

int ternd_start(struct ternd *t, struct err *e)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = secrets_load(&t->secrets, &t->cfg, e);
    if (!rc)
        rc = vmnet_check_node(t->cfg.bridges, t->cfg.tap_prefix, e);
    snprintf(t->vmms.tap_prefix, sizeof(t->vmms.tap_prefix), "%s", t->cfg.tap_prefix);
    if (!rc)
        rc = vmm_table_setup(&t->vmms, t->cfg.data_dir, t->cfg.vmm_binary, t->cfg.name, e);
    if (!rc)
        rc = task_table_setup(&t->tasks, t->cfg.data_dir, t->cfg.name,
                              t->cfg.cluster_address, (unsigned)t->cfg.task_records, e);
    if (!rc)
        rc = etcd_configure(t, e);
    if (!rc)
        rc = etcd_client_init(&t->client, t->cfg.cluster_address, e);
    if (!rc) /* no API thread runs yet */
        rc = choose_mode(t, &t->ctx.in_cluster, e);
    if (!rc && t->ctx.in_cluster)
        rc = ternd_etcd_launch(t, e);
    if (!rc && t->ctx.in_cluster)
        rc = etcd_server_wait_serving(&t->etcd, ETCD_SERVE_WAIT_MS, e);
    if (!rc) {
        events_hub_setup(t->cfg.name);
        web_setup(t->cfg.session_ttl_s);
        rc = api_start(&t->api, &t->ctx, e);
    }
    if (!rc)
        rc = events_peers_start(&t->ctx, e);
    return rc;
}

static void describe_exit(int status, char *out, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/* Reaps the member here rather than through etcd_server_running, which
 * would swallow the wait status: the log must say why etcd went. */
static void supervise_etcd(struct ternd *t)
{
    time_t now = time(NULL);
    if (t->etcd.pid) {
        int status;
        if (waitpid(t->etcd.pid, &status, WNOHANG) != t->etcd.pid)
            return;
        char why[96];
        describe_exit(status, why, sizeof(why));
        t->etcd_deaths = now - t->etcd_started < 60 ? t->etcd_deaths + 1 : 1;
        unsigned delay = t->etcd_deaths < 6 ? 1u << (t->etcd_deaths - 1)
                                            : ETCD_BACKOFF_MAX_S;
        if (delay > ETCD_BACKOFF_MAX_S)
            delay = ETCD_BACKOFF_MAX_S;
        log_warn("etcd", "member %s (pid %d) %s; restarting in %u s (see %s)", t->etcd.name,
                 (int)t->etcd.pid, why, delay, t->etcd.log_path);
        t->etcd.pid = 0;
        t->etcd_restart_at = now + delay;
        return;
    }
    if (now < t->etcd_restart_at)
        return;
    struct err e;
    if (ternd_etcd_launch(t, &e) < 0) {
        log_error("etcd", "%s; trying again in %d s", e.msg, ETCD_BACKOFF_MAX_S);
        t->etcd_restart_at = now + ETCD_BACKOFF_MAX_S;
    }
}

static void register_failed(struct ternd *t, const struct err *e)
{
    if (strcmp(t->last_register_err, e->msg) != 0)
        log_warn("node", "registering node %s: %s; retrying", t->cfg.name, e->msg);
    snprintf(t->last_register_err, sizeof(t->last_register_err), "%s", e->msg);
}

/* The node's info as it is now; "registered" stays the time of the first
 * registration of this run, "updated" says how fresh the rest is. */
static char *info_now(struct ternd *t)
{
    char *text = node_info_json(&t->cfg, t->secrets.pin);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!o)
        return NULL;
    time_t now = time(NULL);
    json_object_set_new(o, "registered",
                        json_integer(t->registered_at ? t->registered_at : now));
    json_object_set_new(o, "updated", json_integer(now));
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* The token every node presents to the others and the cluster's name:
 * whichever node of a bootstrapped cluster gets here first makes them
 * (create-if-absent), so all agree; a created cluster has them already. */
static int cluster_identity(struct ternd *t, struct err *e)
{
    char token[CLUSTER_TOKEN_LEN + 1], name[TERN_NAME_MAX + 1];
    int rc = cluster_layout_init(&t->client, e);
    if (!rc)
        rc = cluster_token_ensure(&t->client, token, e);
    if (!rc)
        rc = cluster_record_ensure(&t->client, CLUSTER_NAME_DEFAULT, t->cfg.name, name, e);
    if (!rc)
        node_ctx_cluster_known(&t->ctx, name, token);
    explicit_bzero(token, sizeof(token));
    return rc;
}

/* Needs a majority: until then the API answers "not quorate" and the node
 * simply does not show as online. -EEXIST (our own lease from before a
 * crash still runs) also ends by itself within the TTL. */
static void try_register(struct ternd *t)
{
    time_t now = time(NULL);
    if (now < t->register_at || !t->etcd.pid)
        return;
    t->register_at = now + 1;
    struct err e;
    char *info = info_now(t);
    int rc = info ? cluster_identity(t, &e)
                  : err_set(&e, ENOMEM, "node info: out of memory");
    if (!rc)
        rc = node_register(&t->node, &t->client, t->cfg.name, info, t->cfg.heartbeat_ttl_s,
                           &e);
    free(info);
    if (!rc) {
        t->registered = true;
        t->registered_at = t->registered_at ? t->registered_at : now;
        t->info_at = now;
        return;
    }
    register_failed(t, &e);
    node_release(&t->node); /* undoes a partial setup */
    node_init(&t->node);
}

void ternd_joined(struct ternd *t, const char *cluster_name, const char *token)
{
    node_ctx_joined(&t->ctx);
    node_ctx_cluster_known(&t->ctx, cluster_name, token);
    t->etcd_deaths = 0;
    t->register_at = 0;
    try_register(t);
}

/* Free memory changes: the record follows it. Only while the heartbeat
 * holds (quorate), so a lost majority does not stall this loop. */
static void refresh_info(struct ternd *t)
{
    time_t now = time(NULL);
    if (now < t->info_at + INFO_REFRESH_S || !node_online(&t->node))
        return;
    t->info_at = now;
    struct err e;
    char *info = info_now(t);
    int rc = info ? node_update_info(&t->node, &t->client, info, &e)
                  : err_set(&e, ENOMEM, "node info: out of memory");
    free(info);
    if (rc < 0)
        log_debug("node", "refreshing the info of node %s: %s", t->cfg.name, e.msg);
}

/* A tern-vmm may wait for a handover decision that nobody is giving (the
 * ternd before this one died, or its event was missed): settle it. */
static void settle_waiting(struct ternd *t)
{
    uint32_t ids[VMM_MAX];
    unsigned n = vmm_list(&t->vmms, ids);
    /* a migration task of this node decides its own handover */
    for (unsigned i = 0; i < n; i++)
        if (!task_running_for(&t->tasks, ids[i]))
            migtask_resolve_start(&t->ctx, ids[i]);
}

/* The VMs of this node: states into etcd, crashed ones back; once, the
 * tern-vmm processes an earlier ternd left running. */
static void supervise_vms(struct ternd *t)
{
    if (!t->ctx.adopted) {
        vmm_adopt(&t->vmms, &t->client);
        t->ctx.adopted = true;
        struct err e;
        /* after the adoption: an adopted HA VM is fenced by this node now */
        if (ha_manager_start(&t->ha, &t->ctx, &e) < 0)
            log_error("ha", "%s: no HA on this node", e.msg);
        maint_resume(&t->ctx, &t->client);
    }
    if (!t->tasks_adopted) /* the tasks the ternd before left running */
        t->tasks_adopted = migtask_adopt_tasks(&t->ctx, &t->client) == 0;
    /* a decision event can be missed (ternd restarted, a reconnect): look
     * at every process now and then */
    time_t now = time(NULL);
    if (now >= t->settle_at) {
        settle_waiting(t);
        t->settle_at = now + SETTLE_EVERY_S;
    }
    vmm_tick(&t->vmms, &t->client, node_lease(&t->node));
    task_tick(&t->tasks, &t->client);
    replsync_tick(&t->ctx, &t->client);
}

int ternd_run(struct ternd *t)
{
    sigset_t set;
    stop_signals(&set);
    struct timespec tick = {0, TICK_MS * 1000000L};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig > 0) {
            log_info("ternd", "signal %d: shutting down", sig);
            setup_shutdown(&t->ctx);
            return sig;
        }
        setup_poll(t);
        if (!t->ctx.in_cluster) /* only this thread changes it */
            continue;
        supervise_etcd(t);
        if (!t->registered)
            try_register(t);
        else
            refresh_info(t);
        if (t->registered)
            supervise_vms(t);
    }
}

void ternd_release(struct ternd *t)
{
    ha_manager_release(&t->ha);    /* it starts tasks */
    task_table_release(&t->tasks); /* tasks end first: they use the rest */
    vmm_table_release(&t->vmms);   /* the VMs keep running */
    setup_shutdown(&t->ctx);       /* no API thread may wait for this loop now */
    node_release(&t->node);        /* revokes the lease: offline at once */
    events_peers_stop();
    events_stop(events_hub()); /* event streams end, or the api waits for them */
    api_release(&t->api);
    if (t->client.curl)
        etcd_client_release(&t->client);
    etcd_server_stop(&t->etcd, ETCD_STOP_GRACE_MS);
    secrets_release(&t->secrets);
}
