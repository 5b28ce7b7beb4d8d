/* The REST API of ternd (docs/api.md): HTTPS with libmicrohttpd, a bearer
 * token on every request, JSON bodies via jansson. One thread per
 * connection, each request with its own etcd client (a client is one curl
 * handle and belongs to one thread at a time; an idle one is taken from a
 * pool, its connection to etcd still open), so a slow quorum check on one
 * connection never stalls another. The endpoints are in the route tables
 * of node/http.h. */
#ifndef TERN_NODE_API_H
#define TERN_NODE_API_H

#include "cluster/etcd.h"
#include "common/err.h"

struct node_ctx;

struct api {
    struct node_ctx *ctx;
    struct etcd_client proto; /* endpoints to copy; never used for calls */
    struct etcd_pool pool;    /* the requests' clients, kept between requests */
    void *daemon;             /* struct MHD_Daemon * */
};

void api_init(struct api *a);
/* Listens on x->cfg->api_address at once; answers from its own threads. */
int api_start(struct api *a, struct node_ctx *x, struct err *e);
void api_release(struct api *a);

#endif
