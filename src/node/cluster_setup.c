/* The main-loop half of `tern cluster create` / `join`: an API thread
 * posts one command and waits; the main loop, which owns the etcd member
 * (it restarts it when it dies), starts it, so no two threads ever touch
 * struct etcd_server. It also must be the main thread that forks etcd:
 * PR_SET_PDEATHSIG fires when the forking thread ends, and an API thread
 * ends with its connection. A member that does not come up is stopped and
 * its data dir removed: the node is then in no cluster again, as before. */
#include "node/cluster_setup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/pki.h"
#include "node/ternd.h"

#define SETUP_SERVE_WAIT_MS 20000
/* a new one-member cluster elects itself within an election timeout or
 * two; the records are written as soon as it has */
#define SETUP_QUORUM_WAIT_MS 15000
#define SETUP_STOP_GRACE_MS 5000

int setup_claim(struct node_ctx *x, struct err *e)
{
    int rc = 0;
    pthread_mutex_lock(&x->lock);
    if (x->stopping)
        rc = err_set(e, ESHUTDOWN, "ternd is shutting down");
    else if (x->in_cluster && x->cluster_name[0])
        rc = err_set(e, EEXIST, "node '%s' is already in cluster '%s'", x->cfg->name,
                     x->cluster_name);
    else if (x->in_cluster)
        rc = err_set(e, EEXIST, "node '%s' is already in a cluster", x->cfg->name);
    else if (x->cmd_claimed)
        rc = err_set(e, EBUSY, "node '%s': a cluster create or join is already running",
                     x->cfg->name);
    else
        x->cmd_claimed = true;
    pthread_mutex_unlock(&x->lock);
    return rc;
}

void setup_cmd_release(struct setup_cmd *cmd)
{
    if (cmd->key_pem)
        explicit_bzero(cmd->key_pem, strlen(cmd->key_pem));
    free(cmd->key_pem);
    free(cmd->pub_pem);
    explicit_bzero(cmd->token, sizeof(cmd->token));
    cmd->key_pem = cmd->pub_pem = NULL;
}

int setup_claim_leave(struct node_ctx *x, struct err *e)
{
    int rc = 0;
    pthread_mutex_lock(&x->lock);
    if (x->stopping)
        rc = err_set(e, ESHUTDOWN, "ternd is shutting down");
    else if (!x->in_cluster)
        rc = err_set(e, ENOENT, "node '%s' is in no cluster", x->cfg->name);
    else if (x->cmd_claimed)
        rc = err_set(e, EBUSY, "node '%s': a cluster create, join or leave is running",
                     x->cfg->name);
    else
        x->cmd_claimed = true;
    pthread_mutex_unlock(&x->lock);
    return rc;
}

void setup_unclaim(struct node_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    x->cmd_claimed = false;
    pthread_mutex_unlock(&x->lock);
}

int setup_run(struct node_ctx *x, struct setup_cmd *cmd)
{
    pthread_mutex_lock(&x->lock);
    if (x->stopping) {
        cmd->rc = err_set(&cmd->e, ESHUTDOWN, "ternd is shutting down");
    } else {
        x->cmd = cmd;
        x->cmd_done = false;
        while (!x->cmd_done)
            pthread_cond_wait(&x->cmd_cond, &x->lock);
        x->cmd = NULL;
    }
    pthread_mutex_unlock(&x->lock);
    return cmd->rc;
}

/* With x->lock held: the API thread waiting for cmd gets rc. */
static void cmd_finish(struct node_ctx *x, struct setup_cmd *cmd, int rc)
{
    cmd->rc = rc;
    x->cmd_done = true;
    pthread_cond_broadcast(&x->cmd_cond);
}

void setup_shutdown(struct node_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    x->stopping = true;
    if (x->cmd && !x->cmd_done)
        cmd_finish(x, x->cmd, err_set(&x->cmd->e, ESHUTDOWN, "ternd is shutting down"));
    pthread_mutex_unlock(&x->lock);
}

/* Back to "in no cluster": no member, no data. */
static void member_undo(struct ternd *t)
{
    struct err e;
    etcd_server_stop(&t->etcd, SETUP_STOP_GRACE_MS);
    if (etcd_server_wipe(&t->etcd, &e) < 0)
        log_error("ternd", "%s", e.msg);
}

static int member_start(struct ternd *t, const char *initial, const char *state,
                        const char *token, struct err *e)
{
    struct etcd_server *s = &t->etcd;
    if (strlen(initial) >= sizeof(s->initial_cluster) ||
        strlen(token) >= sizeof(s->cluster_token))
        return err_set(e, ENAMETOOLONG,
                       "initial cluster '%.60s' or cluster name "
                       "'%.60s' too long",
                       initial, token);
    snprintf(s->initial_cluster, sizeof(s->initial_cluster), "%s", initial);
    snprintf(s->initial_state, sizeof(s->initial_state), "%s", state);
    /* the cluster's name: etcd derives the member ids of a new cluster
     * from it, so two clusters made from the same URLs still differ */
    snprintf(s->cluster_token, sizeof(s->cluster_token), "%s", token);
    log_info("ternd",
             "starting etcd member %s: --initial-cluster %s "
             "--initial-cluster-state %s",
             s->name, initial, state);
    int rc = ternd_etcd_launch(t, e);
    if (!rc)
        rc = etcd_server_wait_serving(s, SETUP_SERVE_WAIT_MS, e);
    if (rc < 0)
        member_undo(t);
    return rc;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* The CA of a new cluster and this node's certificate, in DATA_DIR/pki
 * before etcd starts with them; the CA goes into etcd once it runs. */
static int pki_create(struct ternd *t, const char *cluster, char **ca_cert, char **ca_key,
                      struct err *e)
{
    char *key = NULL, *pub = NULL, *cert = NULL;
    const char *urls[] = {t->cfg.cluster_address, t->cfg.peer_address};
    int rc = pki_ca_make(cluster, ca_cert, ca_key, e);
    if (!rc)
        rc = pki_key_make(&key, &pub, e);
    if (!rc)
        rc = pki_sign(*ca_cert, *ca_key, pub, t->cfg.name, urls, 2, &cert, e);
    if (!rc)
        rc = pki_write(&t->secrets.pki, *ca_cert, cert, key, e);
    if (key)
        explicit_bzero(key, strlen(key));
    free(key);
    free(pub);
    free(cert);
    return rc;
}

static int create_records(struct ternd *t, const char *name, const char *ca_cert,
                          const char *ca_key, char token[CLUSTER_TOKEN_LEN + 1],
                          struct err *e)
{
    char got[TERN_NAME_MAX + 1];
    for (long waited = 0;; waited += 500) {
        int rc = cluster_layout_init(&t->client, e);
        if (!rc)
            rc = cluster_record_ensure(&t->client, name, t->cfg.name, got, e);
        if (!rc)
            rc = cluster_token_ensure(&t->client, token, e);
        if (!rc && ca_cert)
            rc = cluster_ca_store(&t->client, ca_cert, ca_key, e);
        /* a store that answered "not quorate" may have been applied */
        if (rc == -EEXIST && waited > 0)
            rc = 0;
        if (rc != -ETCD_NOT_QUORATE || waited >= SETUP_QUORUM_WAIT_MS)
            return rc;
        sleep_ms(500);
    }
}

static int do_create(struct ternd *t, struct setup_cmd *cmd)
{
    char initial[CLUSTER_INITIAL_MAX], token[CLUSTER_TOKEN_LEN + 1];
    char *ca_cert = NULL, *ca_key = NULL;
    snprintf(initial, sizeof(initial), "%s=%s", t->cfg.name, t->cfg.peer_address);
    log_info("ternd", "creating cluster '%s' with node %s", cmd->cluster_name, t->cfg.name);
    int rc = t->cfg.etcd_tls ? pki_create(t, cmd->cluster_name, &ca_cert, &ca_key, &cmd->e)
                             : 0;
    if (!rc)
        rc = member_start(t, initial, "new", cmd->cluster_name, &cmd->e);
    if (!rc) {
        rc = create_records(t, cmd->cluster_name, ca_cert, ca_key, token, &cmd->e);
        if (rc < 0)
            member_undo(t);
    }
    if (ca_key)
        explicit_bzero(ca_key, strlen(ca_key));
    free(ca_key);
    free(ca_cert);
    if (rc < 0 && t->cfg.etcd_tls)
        pki_remove(&t->secrets.pki);
    if (rc < 0) {
        log_error("ternd", "creating cluster '%s': %s", cmd->cluster_name, cmd->e.msg);
        return rc;
    }
    ternd_joined(t, cmd->cluster_name, token);
    explicit_bzero(token, sizeof(token));
    return 0;
}

static int do_join(struct ternd *t, struct setup_cmd *cmd)
{
    log_info("ternd", "joining cluster '%s' as node %s", cmd->cluster_name, t->cfg.name);
    int rc = member_start(t, cmd->initial_cluster, "existing", cmd->cluster_name, &cmd->e);
    if (rc < 0 && t->cfg.etcd_tls)
        pki_remove(&t->secrets.pki);
    if (rc < 0) {
        log_error("ternd", "joining cluster '%s': %s", cmd->cluster_name, cmd->e.msg);
        return rc;
    }
    ternd_joined(t, cmd->cluster_name, cmd->token);
    return 0;
}

/* A client on the other members: this node's own member goes away with
 * the removal, and the answer must still come. */
static int others_client(struct ternd *t, struct etcd_client *c, struct err *e)
{
    struct etcd_member_info list[16];
    size_t n;
    char urls[16 * 130] = "";
    int rc = etcd_member_list(&t->client, list, 16, &n, e);
    for (size_t i = 0; !rc && i < n; i++)
        if (strcmp(list[i].name, t->cfg.name) != 0 && list[i].client_url[0])
            snprintf(urls + strlen(urls), sizeof(urls) - strlen(urls), "%s%s",
                     urls[0] ? "," : "", list[i].client_url);
    if (!rc && !urls[0])
        rc = err_set(e, EBUSY,
                     "node '%s' is the only member of its cluster: leaving would end "
                     "the cluster",
                     t->cfg.name);
    return rc ? rc : etcd_client_init(c, urls, e);
}

/* Offline first (the lease revoked: heartbeat and locks go), then the etcd
 * member removed and the record deleted through the others; then this
 * node's member stops, and its data and certificate go. If the removal
 * fails, the main loop registers the node again. */
static int do_leave(struct ternd *t, struct setup_cmd *cmd)
{
    struct etcd_client others;
    uint64_t id;
    int rc = others_client(t, &others, &cmd->e);
    if (rc < 0)
        return rc;
    node_release(&t->node);
    node_init(&t->node);
    t->registered = false;
    t->register_at = 0;
    rc = cluster_member_remove(&others, t->cfg.name, &id, &cmd->e);
    struct err e;
    if (!rc && node_forget(&others, t->cfg.name, &e) < 0)
        log_warn("ternd", "node %s left, but its record stays: %s", t->cfg.name, e.msg);
    etcd_client_release(&others);
    if (rc < 0) {
        log_error("ternd", "leaving the cluster: %s", cmd->e.msg);
        return rc;
    }
    member_undo(t);
    pki_remove(&t->secrets.pki);
    node_ctx_left(&t->ctx);
    log_info("ternd", "node %s left the cluster (etcd member %016llx removed)", t->cfg.name,
             (unsigned long long)id);
    return 0;
}

void setup_poll(struct ternd *t)
{
    struct node_ctx *x = &t->ctx;
    pthread_mutex_lock(&x->lock);
    struct setup_cmd *cmd = x->cmd && !x->cmd_done ? x->cmd : NULL;
    pthread_mutex_unlock(&x->lock);
    if (!cmd)
        return;
    /* the poster waits until cmd_done, so cmd stays valid meanwhile */
    int rc = cmd->kind == SETUP_CREATE ? do_create(t, cmd)
             : cmd->kind == SETUP_JOIN ? do_join(t, cmd)
                                       : do_leave(t, cmd);
    pthread_mutex_lock(&x->lock);
    cmd_finish(x, cmd, rc);
    pthread_mutex_unlock(&x->lock);
}
