/* Migration endpoints (docs/api.md): POST /vms/{id}/migrate on the VM's
 * owner, the source, and the node-to-node /vms/{id}/incoming with which a
 * source prepares (or drops) its destination. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "cluster/vmconf.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/migtask.h"
#include "node/task.h"

/* A live migration's dry run also has the forecast, or why there is none
 * (forecast null, forecast_error its line). */
static void dry_run_reply(struct api_req *req, struct reply *r, struct migtask_plan *p)
{
    char plan[600];
    migtask_plan_describe(p, plan, sizeof(plan));
    json_t *o = json_pack("{s:b, s:s, s:b, s:s, s:s, s:O, s:s}", "dry_run", 1, "target",
                          p->target, "online", p->running, "address", p->address,
                          "migration_type", p->type, "checks", p->checks, "plan", plan);
    json_t *forecast = NULL;
    struct err e;
    if (o && p->running && migtask_forecast(req->ctx, req->etcd, p, &forecast, &e) < 0)
        json_object_set_new(o, "forecast_error", json_string(e.msg));
    if (o && p->running)
        json_object_set_new(o, "forecast", forecast ? forecast : json_null());
    reply_json(r, MHD_HTTP_OK, o);
}

/* A failed pre-check: its line (409, whatever the check's errno; 503
 * without quorum), and with dry_run also every check so far. */
static void refused(struct reply *r, struct migtask_plan *p, int rc, const struct err *e)
{
    bool quorum = rc == -ETCD_NOT_QUORATE || rc == -EAGAIN;
    reply_errno(r, quorum ? rc : -EBUSY, e);
    if (p->dry_run && r->body)
        json_object_set(r->body, "checks", p->checks);
}

static void migrate(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (api_route_to_owner(req, r, &id))
        return;
    struct migtask_plan p;
    struct err e;
    migtask_plan_init(&p);
    int rc = migtask_plan_parse(&p, id, req->ctx->cfg->name, req->body, &e);
    bool bad_request = rc != 0; /* 400; what the checks refuse is 409 */
    if (!rc)
        rc = migtask_plan_check(&p, req->ctx, req->etcd, &e);
    char task[TASK_ID_MAX];
    if (bad_request)
        reply_errno(r, rc, &e);
    else if (rc)
        refused(r, &p, rc, &e);
    else if (p.dry_run)
        dry_run_reply(req, r, &p);
    else if ((rc = migtask_start(req->ctx, &p, task, &e)) < 0)
        reply_errno(r, rc, &e);
    else
        reply_json(r, MHD_HTTP_OK,
                   json_pack("{s:s, s:s}", "task", task, "target", p.target));
    migtask_plan_release(&p);
}

static bool node_only(struct api_req *req, struct reply *r, uint32_t *id)
{
    struct err e;
    if (!req->from_node) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "only other nodes of the cluster may call '%s'",
                    req->url);
        return false;
    }
    if (keys_vmid_parse(req->args[0], id, &e) < 0) {
        reply_errno(r, -EINVAL, &e);
        return false;
    }
    return !api_adopting(req, r);
}

static void incoming(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (!node_only(req, r, &id))
        return;
    json_t *answer = NULL;
    struct err e;
    int rc = migtask_target_prepare(req->ctx, req->etcd, id, req->body, &answer, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, answer);
}

static void abandon(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (!node_only(req, r, &id))
        return;
    struct err e;
    char last_exit[256];
    int rc = migtask_target_abandon(req->ctx, id, last_exit, &e);
    if (rc == -ENOENT && last_exit[0]) /* the source names how it ended */
        return reply_json(r, MHD_HTTP_NOT_FOUND,
                          json_pack("{s:s, s:s}", "error", e.msg, "last_exit", last_exit));
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:i, s:b}", "id", (int)id, "abandoned", 1));
}

/* What the destination's NICs did since the state load (migtask_net.c). */
static void nics(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (!node_only(req, r, &id))
        return;
    json_t *answer = NULL;
    struct err e;
    int rc = migtask_target_nics(req->ctx, id, &answer, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, answer);
}

const struct api_route api_routes_migrate[] = {
    {"POST", "/vms/{}/migrate", migrate},
    {"POST", "/vms/{}/incoming", incoming},
    {"DELETE", "/vms/{}/incoming", abandon},
    {"GET", "/vms/{}/incoming", nics},
    {NULL, NULL, NULL},
};
