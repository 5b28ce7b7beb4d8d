#include "node/ternd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster/keys.h"
#include "common/log.h"
#include "node/info.h"

#define ETCD_SERVE_WAIT_MS 20000
#define ETCD_STOP_GRACE_MS 5000
#define ETCD_BACKOFF_MAX_S 30
#define TICK_MS 250

void ternd_init(struct ternd *t)
{
    memset(t, 0, sizeof(*t));
    ternd_config_init(&t->cfg);
    secrets_init(&t->secrets);
    etcd_server_init(&t->etcd);
    node_init(&t->node);
    api_init(&t->api);
    pthread_mutex_init(&t->lock, NULL);
}

void ternd_cluster_token(struct ternd *t, char out[TERND_TOKEN_LEN + 1])
{
    pthread_mutex_lock(&t->lock);
    memcpy(out, t->cluster_token, TERND_TOKEN_LEN + 1);
    pthread_mutex_unlock(&t->lock);
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
    int m = snprintf(s->initial_cluster, sizeof(s->initial_cluster), "%s",
                     c->initial_cluster);
    for (int i = 0; i < 5; i++)
        if (n[i] >= 128 || m >= (int)sizeof(s->initial_cluster))
            return err_set(e, ENAMETOOLONG, "etcd member %s: a path or url is too long",
                           c->name);
    s->election_ms = c->etcd_election_ms;
    /* a ternd killed with SIGKILL must not leave an etcd behind that holds
     * the ports its restart needs: etcd dies with the main thread */
    s->die_with_parent = true;
    return 0;
}

static int etcd_launch(struct ternd *t, struct err *e)
{
    int rc = etcd_server_start(&t->etcd, e);
    if (rc == 0)
        t->etcd_started = time(NULL);
    return rc;
}

int ternd_start(struct ternd *t, struct err *e)
{
    int rc = secrets_load(&t->secrets, &t->cfg, e);
    if (rc == 0)
        rc = etcd_configure(t, e);
    if (rc == 0)
        rc = etcd_client_init(&t->client, t->cfg.cluster_address, e);
    if (rc == 0)
        rc = etcd_launch(t, e);
    if (rc == 0)
        rc = etcd_server_wait_serving(&t->etcd, ETCD_SERVE_WAIT_MS, e);
    if (rc == 0)
        rc = api_start(&t->api, t, e);
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
        unsigned delay = t->etcd_deaths < 6 ? 1u << (t->etcd_deaths - 1) : ETCD_BACKOFF_MAX_S;
        if (delay > ETCD_BACKOFF_MAX_S)
            delay = ETCD_BACKOFF_MAX_S;
        log_warn("etcd", "member %s (pid %d) %s; restarting in %u s (see %s)",
                 t->etcd.name, (int)t->etcd.pid, why, delay, t->etcd.log_path);
        t->etcd.pid = 0;
        t->etcd_restart_at = now + delay;
        return;
    }
    if (now < t->etcd_restart_at)
        return;
    struct err e;
    if (etcd_launch(t, &e) < 0) {
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
    char *info = node_info_json(&t->cfg, t->secrets.pin);
    int rc = info ? cluster_layout_init(&t->client, &e)
                  : err_set(&e, ENOMEM, "node info: out of memory");
    if (rc == 0)
        rc = node_register(&t->node, &t->client, t->cfg.name, info,
                           t->cfg.heartbeat_ttl_s, &e);
    free(info);
    if (rc == 0) {
        t->registered = true;
        return;
    }
    register_failed(t, &e);
    node_release(&t->node);   /* undoes a partial setup */
    node_init(&t->node);
}

int ternd_run(struct ternd *t)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    struct timespec tick = {0, TICK_MS * 1000000L};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig > 0) {
            log_info("ternd", "signal %d: shutting down", sig);
            return sig;
        }
        supervise_etcd(t);
        if (!t->registered)
            try_register(t);
    }
}

void ternd_release(struct ternd *t)
{
    node_release(&t->node);   /* revokes the lease: offline at once */
    api_release(&t->api);
    if (t->client.curl)
        etcd_client_release(&t->client);
    etcd_server_stop(&t->etcd, ETCD_STOP_GRACE_MS);
    secrets_release(&t->secrets);
}
