/* What ternd's parts below the daemon share. The API's handlers, the tasks
 * and the migrations get this, never the daemon itself (node/ternd.h), so
 * that src/node reads top to bottom: api -> tasks -> vm supervision and
 * migration -> cluster. ternd.c owns what it points at and fills it in
 * before the API starts. */
#ifndef TERN_NODE_CTX_H
#define TERN_NODE_CTX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cluster/keys.h"
#include "node/config.h"
#include "node/secrets.h"

struct node;
struct setup_cmd;
struct task_table;
struct vmm_table;

struct node_ctx {
    const struct ternd_config *cfg; /* name, addresses, data dir */
    const struct secrets *secrets;  /* admin token, this node's key and certificate */
    struct node *node;              /* its registration: the lease VM locks hang on */
    struct vmm_table *vmms;         /* this node's tern-vmm processes (node/vmm.h) */
    struct task_table *tasks;       /* (node/task.h) */
    /* left-over tern-vmm processes looked for: until then no VM operation
     * may run here */
    _Atomic bool adopted;
    pthread_mutex_t lock; /* guards what API threads read below */
    /* false while the node is in no cluster (no etcd data, no
     * initial_cluster): no etcd runs until a create or join; only the main
     * thread changes it */
    bool in_cluster;
    char cluster_name[TERN_NAME_MAX + 1]; /* "" until known */
    /* what nodes present to each other's API (docs/api.md); "" until read
     * from the cluster */
    char cluster_token[TERND_TOKEN_LEN + 1];
    /* a cluster create or join on its way from an API thread to the main
     * loop (node/cluster_setup.h) */
    bool stopping;         /* no more commands: ternd is going */
    bool cmd_claimed;      /* an API thread is creating or joining */
    struct setup_cmd *cmd; /* posted for the main loop, NULL if none */
    bool cmd_done;
    pthread_cond_t cmd_cond; /* with lock: cmd_done set */
};

void node_ctx_init(struct node_ctx *x);
/* A copy of the cluster token ("" when not known yet); any thread. */
void node_ctx_cluster_token(struct node_ctx *x, char out[TERND_TOKEN_LEN + 1]);
/* Whether the node is in a cluster, and its name ("" when not known);
 * any thread. */
bool node_ctx_in_cluster(struct node_ctx *x, char name[TERN_NAME_MAX + 1]);
/* Main thread: the cluster's name and token once known (NULL: as before). */
void node_ctx_cluster_known(struct node_ctx *x, const char *name, const char *token);
/* Main thread: the node is in a cluster from now on. */
void node_ctx_joined(struct node_ctx *x);
/* Main thread: the node left its cluster (name and token forgotten). */
void node_ctx_left(struct node_ctx *x);

#endif
