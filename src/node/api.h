/* The REST API of ternd (docs/api.md): HTTPS with libmicrohttpd, a bearer
 * token on every request, JSON bodies via jansson. One thread per
 * connection, each request with its own etcd client (a client is one curl
 * handle and belongs to one thread), so a slow quorum check on one
 * connection never stalls another. */
#ifndef TERN_NODE_API_H
#define TERN_NODE_API_H

#include "cluster/etcd.h"
#include "common/err.h"
#include "node/config.h"
#include "node/secrets.h"

struct api {
    const struct ternd_config *cfg;
    const struct secrets *secrets;
    struct etcd_client proto;   /* endpoints to copy; never used for calls */
    void *daemon;               /* struct MHD_Daemon * */
};

void api_init(struct api *a);
/* Listens on cfg->api_address at once; answers from its own threads. */
int api_start(struct api *a, const struct ternd_config *cfg,
              const struct secrets *secrets, struct err *e);
void api_release(struct api *a);

#endif
