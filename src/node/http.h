/* The request/reply shape every REST handler of ternd sees (docs/api.md),
 * and the route tables the handler files export. api.c owns the HTTP side
 * (libmicrohttpd, TLS, the token, bodies); a handler file only turns one
 * parsed request into one JSON reply. A handler file per part of the API
 * (docs/api.md): api_cluster.c, api_members.c, api_vm.c, api_vmops.c,
 * api_migrate.c, api_task.c; each exports its route table. */
#ifndef TERN_NODE_HTTP_H
#define TERN_NODE_HTTP_H

#include <jansson.h>
#include <stdbool.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/vmconf.h"
#include "common/err.h"

struct node_ctx;

#define API_ARGS_MAX 2
#define API_BODY_MAX (256 * 1024)

struct api_req {
    const char *method;                    /* "GET", "POST", "PUT", "DELETE" */
    const char *url;                       /* whole path, "/api/v1/vms/100/start" */
    const char *path;                      /* after "/api/v1", "/vms/100/start" */
    char args[API_ARGS_MAX][TERN_KEY_MAX]; /* what the pattern's {} matched */
    json_t *body;                          /* parsed JSON body; NULL when none */
    void *conn;                            /* struct MHD_Connection *, for queries */
    struct node_ctx *ctx;                  /* this node (node/ctx.h) */
    struct etcd_client *etcd;              /* this request's own client */
    bool from_node;                        /* authenticated with the cluster token */
    /* POST /cluster/members only: a bearer that is neither token, which
     * the handler takes as a one-time join token (or refuses); else NULL */
    const char *join_token;
};

struct reply {
    unsigned status;
    json_t *body;
    char cookie[200]; /* Set-Cookie value, "" for none (node/web.c) */
    void *response;   /* a struct MHD_Response * of the handler's own
                       * (the event stream): sent instead of body */
};

/* ?name=value of the URL; NULL when absent. */
const char *api_query(const struct api_req *r, const char *name);

void reply_json(struct reply *r, unsigned status, json_t *body);
void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps -errno to a status: ENOLINK 503 (not quorate), ENOENT 404, EEXIST
 * EBUSY ESTALE 409, EINVAL ERANGE 400, EPERM EACCES 403, others 500; the
 * body is {"error": e->msg}. */
void reply_errno(struct reply *r, int rc, const struct err *e);

/* The request as it is, to node's ternd (cluster token, its key pinned),
 * and its answer as this request's reply. Used when another node owns the
 * VM or ran the task. */
void api_forward(struct api_req *req, struct reply *r, const char *node);
/* true, with a 400 "request body: <missing>", when the request came
 * without a body. */
bool api_no_body(struct api_req *req, struct reply *r, const char *missing);
/* true, with a 503, while this node has not yet looked for the tern-vmm
 * processes an earlier ternd left running: a VM of this node may run
 * without ternd knowing it yet, so no VM operation may start. */
bool api_adopting(struct api_req *req, struct reply *r);

struct api_route {
    const char *method;
    const char *pattern; /* after "/api/v1"; "{}" matches one segment */
    void (*handle)(struct api_req *req, struct reply *r);
};

/* The route for req->method and req->path (args filled), NULL when none;
 * *path_known: some route has that path (a 405, not a 404). */
const struct api_route *api_route_find(struct api_req *req, bool *path_known);
/* The body as req->body (a JSON object; none when len is 0); -1 with a
 * 400 or 413 in r otherwise. len over API_BODY_MAX: too big. */
int api_body_parse(const char *data, size_t len, struct api_req *req, struct reply *r);

/* Each ends with an entry whose method is NULL. */
extern const struct api_route api_routes_cluster[]; /* api_cluster.c */
extern const struct api_route api_routes_members[]; /* api_members.c */
/* api_vm.c: the files of c's disks from index from on, made sparse on
 * their storages (*made: the index after the last one made); and their
 * removal after a failure. */
int api_vm_disks_create(struct api_req *req, const struct vmconf *c, unsigned from,
                        char (*paths)[VMCONF_PATH_MAX], unsigned *made, struct err *e);
void api_vm_disks_remove(char (*paths)[VMCONF_PATH_MAX], unsigned from, unsigned to);

extern const struct api_route api_routes_vm[];       /* api_vm.c */
extern const struct api_route api_routes_vmops[];    /* api_vmops.c */
extern const struct api_route api_routes_vmlife[];   /* api_vmlife.c */
extern const struct api_route api_routes_migrate[];  /* api_migrate.c */
extern const struct api_route api_routes_movedisk[]; /* api_movedisk.c */
extern const struct api_route api_routes_task[];     /* api_task.c */
extern const struct api_route api_routes_leave[];    /* api_leave.c */
extern const struct api_route api_routes_ha[];       /* ha_api.c */
extern const struct api_route api_routes_maint[];    /* maintenance.c */
extern const struct api_route api_routes_web[];      /* web.c */
extern const struct api_route api_routes_events[];   /* events.c */
extern const struct api_route api_routes_repl[];     /* api_repl.c */

#endif
