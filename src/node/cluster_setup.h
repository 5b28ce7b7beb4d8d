/* `tern cluster create` and `join` on the node (docs/ternd.md): an API
 * thread claims the node (one create or join at a time, only while it is
 * in no cluster), does what needs the network, and hands the start of the
 * etcd member to the main loop, which owns and supervises it. */
#ifndef TERN_NODE_CLUSTER_SETUP_H
#define TERN_NODE_CLUSTER_SETUP_H

#include "common/err.h"
#include "node/http.h"

struct ternd;
struct ternd_cmd;

/* API thread. -EEXIST "node 'n1' is already in cluster 'x'", -EBUSY while
 * another create or join runs, -ESHUTDOWN while ternd stops. */
int setup_claim(struct ternd *t, struct err *e);
/* API thread, after setup_claim: the main loop runs cmd; waits for it.
 * cmd->rc and cmd->e are the result (also returned). */
int setup_run(struct ternd *t, struct ternd_cmd *cmd);
void setup_unclaim(struct ternd *t);

/* Main loop: runs a command that an API thread posted. */
void setup_poll(struct ternd *t);
/* Fails a waiting command and refuses new ones (before the API stops). */
void setup_shutdown(struct ternd *t);

/* Handlers (api_cluster.c routes them; node/api_members.c). */
void api_cluster_create(struct api_req *req, struct reply *r);
void api_cluster_join(struct api_req *req, struct reply *r);
void api_cluster_members_add(struct api_req *req, struct reply *r);
void api_cluster_members_remove(struct api_req *req, struct reply *r);

#endif
