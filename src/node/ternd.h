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
#include "node/ctx.h"
#include "node/ha.h"
#include "node/secrets.h"
#include "node/task.h"
#include "node/vmm.h"

struct ternd {
    struct ternd_config cfg;
    struct secrets secrets;
    struct etcd_server etcd;
    struct etcd_client client; /* the main thread's */
    struct node node;
    bool registered;
    struct api api;
    /* etcd restarts: back off when the member keeps dying */
    unsigned etcd_deaths; /* in a row, each within a minute of its start */
    time_t etcd_started, etcd_restart_at;
    time_t register_at;                         /* next registration attempt */
    time_t registered_at;                       /* first registration, kept in the info */
    time_t info_at;                             /* last node info refresh */
    char last_register_err[sizeof(struct err)]; /* log a repeated failure only once */
    /* this node's tern-vmm processes and tasks (node/vmm.h, node/task.h) */
    struct vmm_table vmms;
    struct task_table tasks;
    struct node_ctx ctx; /* what the API, tasks and migrations see of it */
    time_t settle_at;    /* next look for undecided handovers */
    bool tasks_adopted;  /* those the ternd before left running (migtask_adopt.c) */
    /* started once registered and adopted */
    struct ha_manager ha;
};

void ternd_init(struct ternd *t);
/* Config loaded into t->cfg first. Blocks SIGTERM, SIGINT and SIGHUP
 * before any thread exists (so that only ternd_run takes them) and ignores
 * SIGPIPE; then secrets, etcd member, API. */
int ternd_start(struct ternd *t, struct err *e);
/* Supervises until SIGTERM, SIGINT or SIGHUP. Returns the signal. */
int ternd_run(struct ternd *t);
/* Offline at once (lease revoked), API closed, etcd member stopped. */
void ternd_release(struct ternd *t);

/* For node/cluster_setup.c, main thread only: starts the etcd member as
 * configured in t->etcd; then marks the node as in the cluster and
 * registers it at once. */
int ternd_etcd_launch(struct ternd *t, struct err *e);
void ternd_joined(struct ternd *t, const char *cluster_name, const char *token);

#endif
