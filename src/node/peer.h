/* Calls from this ternd to another node's API: the address and pinned key
 * from the node's record in etcd, the cluster token as bearer. Used to
 * forward requests (api_forward) and by migration tasks (preparing the
 * destination). One struct peer per thread and call sequence. */
#ifndef TERN_NODE_PEER_H
#define TERN_NODE_PEER_H

#include <jansson.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "common/err.h"
#include "node/secrets.h"

struct node_ctx;

struct peer {
    char node[TERN_NAME_MAX + 1];
    char base[160]; /* https://host:port */
    char pin[TERND_PIN_LEN + 1];
    char token[TERND_TOKEN_LEN + 1];
    void *curl;     /* CURL * */
    int timeout_ms; /* of each call; PEER_TIMEOUT_MS unless set */
};

#define PEER_TIMEOUT_MS 30000

/* -ENOENT: no such node; -EHOSTUNREACH: it registered no API address or
 * pin; -ENOLINK: not quorate and no local copy. */
int peer_init(struct peer *p, struct node_ctx *x, struct etcd_client *c, const char *node,
              struct err *e);
/* Reaches ADDRESS (host:port) directly, pinning pin, with token: for
 * joining a cluster, before the node records exist. */
int peer_init_address(struct peer *p, const char *address, const char *pin,
                      const char *token, struct err *e);
/* method path (with "/api/v1") and an optional JSON body; 0 with *status
 * and *body (never NULL on 0) for any answer in JSON, -errno when the node
 * could not be reached, its key did not match or it did not answer JSON. */
int peer_call(struct peer *p, const char *method, const char *path, json_t *req,
              long *status, json_t **body, struct err *e);
/* A shorter (or longer) limit for the calls that follow: a liveness probe
 * must not wait as long as a request that starts a process. */
void peer_set_timeout(struct peer *p, int timeout_ms);
void peer_release(struct peer *p);

#endif
