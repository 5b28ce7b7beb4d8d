/* `tern cluster create` and `join` on the node (docs/ternd.md): an API
 * thread claims the node (one create or join at a time, only while it is
 * in no cluster), does what needs the network, and hands the start of the
 * etcd member to the main loop, which owns and supervises it. The hand-off
 * is in struct node_ctx, under its lock. */
#ifndef TERN_NODE_CLUSTER_SETUP_H
#define TERN_NODE_CLUSTER_SETUP_H

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/members.h"
#include "common/err.h"
#include "node/ctx.h"

struct ternd;

enum setup_kind { SETUP_CREATE, SETUP_JOIN, SETUP_LEAVE };

/* A cluster create or join that an API thread hands to the main loop:
 * the etcd member is the main loop's (it starts and supervises it), so
 * only the main loop starts it. */
struct setup_cmd {
    enum setup_kind kind;
    char cluster_name[TERN_NAME_MAX + 1];
    char initial_cluster[CLUSTER_INITIAL_MAX]; /* join: from the other node */
    char token[TERND_TOKEN_LEN + 1];           /* join: the cluster token */
    char *key_pem, *pub_pem; /* join: this node's new key (setup_cmd_release) */
    int rc;                  /* the result, with e */
    struct err e;
};

void setup_cmd_release(struct setup_cmd *cmd);

/* API thread. -EEXIST "node 'n1' is already in cluster 'x'", -EBUSY while
 * another create or join runs, -ESHUTDOWN while ternd stops. */
int setup_claim(struct node_ctx *x, struct err *e);
/* The same for `tern cluster leave`: only while the node is in a cluster
 * (-ENOENT otherwise). */
int setup_claim_leave(struct node_ctx *x, struct err *e);
/* API thread, after setup_claim: the main loop runs cmd; waits for it.
 * cmd->rc and cmd->e are the result (also returned). */
int setup_run(struct node_ctx *x, struct setup_cmd *cmd);
void setup_unclaim(struct node_ctx *x);

/* Main loop: runs a command that an API thread posted. */
void setup_poll(struct ternd *t);
/* Fails a waiting command and refuses new ones (before the API stops). */
void setup_shutdown(struct node_ctx *x);

#endif
