/* The replication endpoints (docs/api.md, "Replication"): the jobs (any
 * node: they are in etcd), a sync and the end of a job (on the VM's
 * owner), and the target's side of a sync (/replicas, for nodes only). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/owner.h"
#include "cluster/replication.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/replica_host.h"
#include "node/replsync.h"

#define REPLICA_END_MS 30000

static json_t *entry(struct etcd_client *c, const struct repl_job *job)
{
    json_t *o = repl_job_to_json(job);
    char owner[TERN_NAME_MAX + 1] = "";
    struct repl_state st;
    struct err e;
    json_object_set_new(o, "vmid", json_integer(job->id));
    vmowner_get(c, job->id, ETCD_SERIALIZABLE, owner, NULL, &e);
    json_object_set_new(o, "owner", json_string(owner));
    json_object_set_new(o, "state",
                        repl_state_get(c, job->id, 0, &st, &e) == 0
                            ? repl_state_to_json(&st)
                            : json_null());
    return o;
}

static void list(struct api_req *req, struct reply *r)
{
    struct repl_job *jobs;
    size_t n;
    struct err e;
    int rc = repl_job_list(req->etcd, 0, &jobs, &n, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, entry(req->etcd, &jobs[i]));
    free(jobs);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "replications", items));
}

static void show(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct repl_job job;
    struct err e;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc)
        rc = repl_job_get(req->etcd, id, 0, &job, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, entry(req->etcd, &job));
}

static void create(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct repl_job job = {0};
    struct err e;
    struct timespec ts;
    if (api_no_body(req, r, "'target'"))
        return;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc && json_object_get(req->body, "created_ms"))
        rc = err_set(&e, EINVAL, "replication: unknown key 'created_ms'");
    if (!rc)
        rc = repl_job_from_json(req->body, &job, &e);
    clock_gettime(CLOCK_REALTIME, &ts);
    job.id = id;
    job.created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (!rc)
        rc = repl_job_add(req->etcd, &job, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_CREATED, entry(req->etcd, &job));
}

static void run(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (api_route_to_owner(req, r, &id))
        return;
    struct repl_job job;
    struct err e;
    char task[TASK_ID_MAX];
    int rc = repl_job_get(req->etcd, id, 0, &job, &e);
    if (!rc)
        rc = replsync_start(req->ctx, id, task, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "task", task));
}

static void del(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (api_route_to_owner(req, r, &id))
        return;
    struct err e;
    int rc = replsync_delete(req->ctx, req->etcd, id, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:i, s:b}", "vmid", id, "removed", 1));
}

/* /replicas: only another node's sync task calls these. */
static bool replica_args(struct api_req *req, struct reply *r, uint32_t *id)
{
    struct err e;
    if (!req->from_node) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "/replicas is for the cluster's nodes only");
        return true;
    }
    int rc = keys_vmid_parse(req->args[0], id, &e);
    if (rc)
        reply_errno(r, rc, &e);
    return rc != 0;
}

static void replica_post(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (replica_args(req, r, &id))
        return;
    char uri[128];
    struct err e;
    bool fresh = json_is_true(json_object_get(req->body, "fresh"));
    int rc = replica_start(req->ctx, req->etcd, id, fresh, uri, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "uri", uri));
}

static void replica_finish(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (replica_args(req, r, &id))
        return;
    bool abort = json_is_true(json_object_get(req->body, "abort")), committed = false;
    uint64_t bytes = 0;
    struct err e = {""};
    int rc = replica_end(req->ctx, id, abort ? 0 : REPLICA_END_MS, &committed, &bytes, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:b, s:I, s:s}", "committed", committed, "bytes",
                         (json_int_t)bytes, "error", committed ? "" : e.msg));
}

static void replica_delete(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (replica_args(req, r, &id))
        return;
    unsigned removed = 0;
    struct err e;
    int rc = replica_remove(req->ctx, req->etcd, id, &removed, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:i}", "removed", removed));
}

const struct api_route api_routes_repl[] = {
    {"GET", "/replications", list},
    {"GET", "/replications/{}", show},
    {"POST", "/replications/{}", create},
    {"POST", "/replications/{}/run", run},
    {"DELETE", "/replications/{}", del},
    {"POST", "/replicas/{}", replica_post},
    {"POST", "/replicas/{}/end", replica_finish},
    {"DELETE", "/replicas/{}", replica_delete},
    {NULL, NULL, NULL},
};
