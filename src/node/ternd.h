/* One node daemon: its etcd member (started and restarted here), its
 * membership (registered once etcd is quorate, re-registered by the
 * heartbeat thread after a lost lease) and its REST API. */
#ifndef TERN_NODE_TERND_H
#define TERN_NODE_TERND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/members.h"
#include "cluster/node.h"
#include "cluster/server.h"
#include "node/api.h"
#include "node/config.h"
#include "node/secrets.h"
#include "node/task.h"
#include "node/vmm.h"

/* A cluster create or join that an API thread hands to the main loop:
 * the etcd member is the main loop's (it starts and supervises it), so
 * only the main loop starts it. */
enum ternd_cmd_kind { TERND_CMD_CREATE, TERND_CMD_JOIN };

struct ternd_cmd {
    enum ternd_cmd_kind kind;
    char cluster_name[TERN_NAME_MAX + 1];
    char initial_cluster[CLUSTER_INITIAL_MAX];   /* join: from the other node */
    char token[TERND_TOKEN_LEN + 1];             /* join: the cluster token */
    int rc;                                      /* the result, with e */
    struct err e;
};

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
    time_t registered_at;          /* first registration, kept in the info */
    time_t info_at;                /* last node info refresh */
    char last_register_err[sizeof(struct err)];   /* log a repeated failure only once */
    pthread_mutex_t lock;          /* guards what API threads read below */
    /* what nodes present to each other's API (docs/api.md); "" until
     * read from the cluster */
    char cluster_token[TERND_TOKEN_LEN + 1];
    /* false while the node is in no cluster (no etcd data, no
     * initial_cluster): no etcd runs until a create or join; only the main
     * thread changes it */
    bool in_cluster;
    char cluster_name[TERN_NAME_MAX + 1];   /* "" until known */
    bool stopping;                 /* no more commands: ternd is going */
    bool cmd_claimed;              /* an API thread is creating or joining */
    struct ternd_cmd *cmd;         /* posted for the main loop, NULL if none */
    bool cmd_done;
    pthread_cond_t cmd_cond;       /* with lock: cmd_done set */
    /* this node's tern-vmm processes and tasks (node/vmm.h, node/task.h) */
    struct vmm_table vmms;
    struct task_table tasks;
    _Atomic bool adopted;          /* left-over tern-vmm processes looked for:
                                    * until then no VM operation may run here */
    time_t settle_at;              /* next look for undecided handovers */
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
/* Whether the node is in a cluster, and its name ("" when not known);
 * any thread. */
bool ternd_in_cluster(struct ternd *t, char name[TERN_NAME_MAX + 1]);

/* For node/cluster_setup.c, main thread only: starts the etcd member as
 * configured in t->etcd; then marks the node as in the cluster and
 * registers it at once. */
int ternd_etcd_launch(struct ternd *t, struct err *e);
void ternd_joined(struct ternd *t, const char *cluster_name, const char *token);

#endif
