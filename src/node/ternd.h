/* One node daemon: its etcd member (started and restarted here), its
 * membership (registered once etcd is quorate, re-registered by the
 * heartbeat thread after a lost lease) and its REST API. */
#ifndef TERN_NODE_TERND_H
#define TERN_NODE_TERND_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/node.h"
#include "cluster/server.h"
#include "node/api.h"
#include "node/config.h"
#include "node/secrets.h"

struct ternd {
    struct ternd_config cfg;
    struct secrets secrets;
    struct etcd_server etcd;
    struct etcd_client client;     /* the main thread's */
    struct node node;
    bool registered;
    struct api api;
    /* etcd restarts: back off when the member keeps dying */
    unsigned etcd_deaths;          /* in a row, each within a minute of its start */
    time_t etcd_started, etcd_restart_at;
    time_t register_at;            /* next registration attempt */
    char last_register_err[sizeof(struct err)];   /* log a repeated failure only once */
    pthread_mutex_t lock;          /* guards what API threads read below */
    /* what nodes present to each other's API (docs/api.md); "" until
     * read from the cluster */
    char cluster_token[TERND_TOKEN_LEN + 1];
};

void ternd_init(struct ternd *t);
/* Config loaded into t->cfg first. Secrets, etcd member, API. */
int ternd_start(struct ternd *t, struct err *e);
/* Supervises until SIGTERM, SIGINT or SIGHUP (blocked by the caller before
 * ternd_start so that only this loop takes them). Returns the signal. */
int ternd_run(struct ternd *t);
/* Offline at once (lease revoked), API closed, etcd member stopped. */
void ternd_release(struct ternd *t);
/* A copy of the cluster token ("" when not known yet); any thread. */
void ternd_cluster_token(struct ternd *t, char out[TERND_TOKEN_LEN + 1]);

#endif
