#include "cluster/node.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

void node_init(struct node *n)
{
    memset(n, 0, sizeof(*n));
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* waits must not jump when the wall clock is set */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&n->wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* One attempt to take the name under a fresh lease with client c. */
static int node_claim(struct node *n, struct etcd_client *c, int64_t *lease, struct err *e)
{
    char alive[TERN_KEY_MAX], record[TERN_KEY_MAX];
    int rc = keys_build(alive, TERN_PREFIX_ALIVE, n->name, NULL, "node name", e);
    if (!rc)
        rc = keys_build(record, TERN_PREFIX_NODES, n->name, NULL, "node name", e);
    if (!rc)
        rc = etcd_lease_grant(c, n->ttl_s, lease, e);
    if (rc)
        return rc;
    char since[48];
    snprintf(since, sizeof(since), "{\"since\":%lld}", (long long)time(NULL));
    struct etcd_cas op = {
        .key = alive, .cmp = ETCD_CMP_ABSENT, .new_value = since, .lease = *lease};
    bool claimed;
    rc = etcd_cas(c, &op, &claimed, NULL, e);
    if (!rc && !claimed)
        rc = err_set(e, EEXIST,
                     "node %s is already online (a lost node's "
                     "heartbeat ends within its ttl)",
                     n->name);
    if (!rc) {
        /* a copy: the main thread may replace the info meanwhile */
        pthread_mutex_lock(&n->lock);
        char *info = strdup(n->info);
        pthread_mutex_unlock(&n->lock);
        rc = info ? etcd_put(c, record, info, 0, e)
                  : err_set(e, ENOMEM, "node %s: out of memory", n->name);
        free(info);
    }
    if (rc) {
        struct err ignored;
        etcd_lease_revoke(c, *lease, &ignored); /* also drops the heartbeat */
        *lease = 0;
    }
    return rc;
}

/* renewed_ns: when the request that renewed (or granted) the lease was
 * sent; 0 keeps the last one (the lease is not known to be renewed). */
static void node_set(struct node *n, bool online, int64_t lease, uint64_t renewed_ns)
{
    pthread_mutex_lock(&n->lock);
    n->online = online;
    if (lease != n->lease || !lease)
        n->renewed_ns = 0;
    n->lease = lease;
    if (renewed_ns)
        n->renewed_ns = renewed_ns;
    pthread_mutex_unlock(&n->lock);
}

/* One heartbeat: keep the lease alive, or take a new one when it is gone. */
static void node_beat(struct node *n, int64_t lease)
{
    struct err e;
    int rc;
    /* the lease lives at least ttl from the moment the request left */
    uint64_t sent = clock_mono_ns();
    if (lease) {
        rc = etcd_lease_keepalive(&n->client, lease, NULL, &e);
        if (!rc) {
            node_set(n, true, lease, sent);
            return;
        }
        if (rc == -ENOENT) {
            log_warn("cluster", "node %s: lease expired, now offline", n->name);
            node_set(n, false, 0, 0);
        } else {
            /* unknown: it lives until its TTL ends; say offline to be safe */
            log_debug("cluster", "node %s: keepalive: %s", n->name, e.msg);
            node_set(n, false, lease, 0);
        }
        if (rc != -ENOENT)
            return;
    }
    int64_t fresh;
    rc = node_claim(n, &n->client, &fresh, &e);
    if (!rc) {
        pthread_mutex_lock(&n->lock);
        n->registrations++;
        pthread_mutex_unlock(&n->lock);
        node_set(n, true, fresh, sent);
        log_info("cluster", "node %s: online again with a new lease", n->name);
    } else {
        log_debug("cluster", "node %s: register: %s", n->name, e.msg);
    }
}

static void *node_thread(void *arg)
{
    struct node *n = arg;
    long interval_ms = n->ttl_s * 1000L / 3;
    pthread_mutex_lock(&n->lock);
    while (!n->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += interval_ms / 1000;
        until.tv_nsec += (interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!n->stop && pthread_cond_timedwait(&n->wake, &n->lock, &until) == 0)
            ;
        if (n->stop)
            break;
        int64_t lease = n->lease;
        pthread_mutex_unlock(&n->lock);
        node_beat(n, lease);
        pthread_mutex_lock(&n->lock);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

static bool info_is_object(const char *text)
{
    json_t *info = json_loads(text ? text : "", 0, NULL);
    bool object = json_is_object(info);
    json_decref(info);
    return object;
}

static int node_setup(struct node *n, struct etcd_client *c, const char *name,
                      const char *info_json, int ttl_s, struct err *e)
{
    int rc = name_check(name, "node name", e);
    if (rc)
        return rc;
    if (ttl_s < 2)
        return err_set(e, EINVAL, "node %s: ttl %d s is below 2 s", name, ttl_s);
    if (!info_is_object(info_json ? info_json : "{}"))
        return err_set(e, EINVAL, "node %s: info is not a json object", name);
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->info = strdup(info_json ? info_json : "{}");
    n->ttl_s = ttl_s;
    if (!n->info)
        return err_set(e, ENOMEM, "node %s: out of memory", name);
    rc = etcd_client_init_copy(&n->client, c, e);
    if (!rc) {
        /* a keepalive that outlives a third of the TTL is as good as lost */
        int t = ttl_s * 1000 / 2;
        etcd_client_set_timeout(&n->client, t < c->timeout_ms ? t : c->timeout_ms);
    }
    return rc;
}

int node_register(struct node *n, struct etcd_client *c, const char *name,
                  const char *info_json, int ttl_s, struct err *e)
{
    if (n->thread_started)
        return err_set(e, EBUSY, "node %s: already registered", n->name);
    int rc = node_setup(n, c, name, info_json, ttl_s, e);
    int64_t lease = 0;
    uint64_t sent = clock_mono_ns();
    if (!rc)
        rc = node_claim(n, c, &lease, e);
    if (rc)
        return rc;
    node_set(n, true, lease, sent);
    n->registrations = 1;
    rc = pthread_create(&n->thread, NULL, node_thread, n);
    if (rc) {
        struct err ignored;
        etcd_lease_revoke(c, lease, &ignored);
        node_set(n, false, 0, 0);
        return err_set(e, rc, "node %s: heartbeat thread: %s", name, strerror(rc));
    }
    n->thread_started = true;
    log_info("cluster", "node %s: online (lease %lld, ttl %d s)", name, (long long)lease,
             ttl_s);
    return 0;
}

/* What the heartbeat thread changes, read under its lock. */
struct node_view {
    bool online;
    int64_t lease;
    unsigned registrations;
};

static struct node_view node_view(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    struct node_view v = {n->online, n->lease, n->registrations};
    pthread_mutex_unlock(&n->lock);
    return v;
}

bool node_online(struct node *n)
{
    return node_view(n).online;
}

int64_t node_lease(struct node *n)
{
    return node_view(n).lease;
}

int64_t node_lease_renewed(struct node *n, uint64_t *sent_ns)
{
    pthread_mutex_lock(&n->lock);
    int64_t lease = n->lease;
    *sent_ns = n->renewed_ns;
    pthread_mutex_unlock(&n->lock);
    return lease;
}

void node_keep_lease(struct node *n)
{
    pthread_mutex_lock(&n->lock);
    n->keep_lease = true;
    pthread_mutex_unlock(&n->lock);
}

unsigned node_registrations(struct node *n)
{
    return node_view(n).registrations;
}

int node_update_info(struct node *n, struct etcd_client *c, const char *info_json,
                     struct err *e)
{
    if (!n->thread_started)
        return err_set(e, ENOENT, "node is not registered");
    if (!info_is_object(info_json))
        return err_set(e, EINVAL, "node %s: info is not a json object", n->name);
    char record[TERN_KEY_MAX];
    int rc = keys_build(record, TERN_PREFIX_NODES, n->name, NULL, "node name", e);
    char *copy = strdup(info_json);
    if (!rc && !copy)
        rc = err_set(e, ENOMEM, "node %s: out of memory", n->name);
    if (!rc)
        rc = etcd_put(c, record, info_json, 0, e);
    if (rc) {
        free(copy);
        return rc;
    }
    pthread_mutex_lock(&n->lock);
    char *old = n->info;
    n->info = copy;
    pthread_mutex_unlock(&n->lock);
    free(old);
    return 0;
}

void node_release(struct node *n)
{
    if (n->thread_started) {
        pthread_mutex_lock(&n->lock);
        n->stop = true;
        pthread_cond_signal(&n->wake);
        pthread_mutex_unlock(&n->lock);
        pthread_join(n->thread, NULL);
    }
    if (n->lease && n->keep_lease)
        log_info("cluster",
                 "node %s: lease left to expire by its ttl (ha: the fenced "
                 "vms end first)",
                 n->name);
    else if (n->lease && n->client.curl) {
        struct err e;
        if (etcd_lease_revoke(&n->client, n->lease, &e) < 0)
            log_warn("cluster", "node %s: revoking lease: %s (it ends by its ttl)", n->name,
                     e.msg);
    }
    if (n->client.curl)
        etcd_client_release(&n->client);
    free(n->info);
    pthread_cond_destroy(&n->wake);
    pthread_mutex_destroy(&n->lock);
    memset(n, 0, sizeof(*n));
}
