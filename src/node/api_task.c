/* Task endpoints (docs/api.md "Tasks"): the list from etcd, one task's
 * record, log and cancel from the node that runs it (forwarded there). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/keys.h"
#include "cluster/node.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/peer.h"
#include "node/task.h"

#define LIST_DEFAULT 50
#define LIST_MAX 1000
/* how long a cancel waits for the task to say what it did: a migration
 * that is told to stop resumes its VM in well under a second, and takes
 * its destination down within a few more */
#define CANCEL_WAIT_MS 20000

static int by_start_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "start"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "start"));
    return x < y ? 1 : x > y ? -1 : 0;
}

static bool wanted(json_t *task, const char *vmid, const char *node)
{
    if (vmid &&
        json_integer_value(json_object_get(task, "vmid")) != strtoll(vmid, NULL, 10))
        return false;
    return !node ||
           strcmp(json_string_value(json_object_get(task, "node")) ?: "", node) == 0;
}

static int read_tasks(struct api_req *req, bool *stale, struct etcd_kvs *kvs, struct err *e)
{
    *stale = false;
    int rc = etcd_get_prefix(req->etcd, TERN_PREFIX_TASKS, 0, kvs, e);
    if (rc == -ETCD_NOT_QUORATE) {
        *stale = true;
        etcd_kvs_release(kvs);
        etcd_kvs_init(kvs);
        rc = etcd_get_prefix(req->etcd, TERN_PREFIX_TASKS, ETCD_SERIALIZABLE, kvs, e);
    }
    return rc;
}

/* A running task's progress, from memory here or from the node that runs
 * it (records in etcd do not carry it: it changes every second). */
static void add_progress(struct api_req *req, json_t *task)
{
    const char *id = json_string_value(json_object_get(task, "id"));
    const char *node = json_string_value(json_object_get(task, "node"));
    if (!id || !node ||
        strcmp(json_string_value(json_object_get(task, "status")) ?: "", "running") != 0)
        return;
    json_t *live = NULL;
    if (strcmp(node, req->ctx->cfg->name) == 0) {
        live = task_json(req->ctx->tasks, id);
    } else {
        struct peer p;
        struct err e;
        char path[TASK_ID_MAX + 32];
        long status = 0;
        snprintf(path, sizeof(path), "/api/v1/tasks/%s", id);
        if (!peer_init(&p, req->ctx, req->etcd, node, &e)) {
            if (peer_call(&p, "GET", path, NULL, &status, &live, &e) || status != 200) {
                json_decref(live);
                live = NULL;
            }
            peer_release(&p);
        }
    }
    json_t *progress = json_object_get(live, "progress");
    if (json_is_object(progress)) {
        json_object_set(task, "progress", progress);
        json_object_set(task, "eta_s", json_object_get(progress, "eta_s") ?: json_null());
    }
    json_decref(live);
}

/* The nodes online now (a lease of their own), NULL when not known. */
static json_t *online_nodes(struct api_req *req, bool stale)
{
    struct node_entries nodes;
    struct err e;
    node_entries_init(&nodes);
    json_t *online = NULL;
    if (node_list(req->etcd, stale ? ETCD_SERIALIZABLE : 0, &nodes, &e) == 0) {
        online = json_object();
        for (size_t i = 0; i < nodes.count; i++)
            if (nodes.items[i].online)
                json_object_set_new(online, nodes.items[i].name, json_true());
    }
    node_entries_release(&nodes);
    return online;
}

/* A task whose node is offline has nobody to end it: say so, as
 * "node_online": false (its status stays what the node last wrote). */
static void mark_offline(json_t *task, json_t *online)
{
    const char *node = json_string_value(json_object_get(task, "node"));
    const char *status = json_string_value(json_object_get(task, "status"));
    if (!online || !node || !status || strcmp(status, "running") != 0)
        return;
    json_object_set_new(task, "node_online", json_boolean(json_object_get(online, node)));
}

static void list_tasks(struct api_req *req, struct reply *r)
{
    const char *vmid = api_query(req, "vmid"), *node = api_query(req, "node");
    const char *limit_s = api_query(req, "limit");
    long limit = limit_s ? strtol(limit_s, NULL, 10) : LIST_DEFAULT;
    if (limit <= 0 || limit > LIST_MAX)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'limit' must be 1..%d", LIST_MAX);
    struct etcd_kvs kvs;
    struct err e;
    bool stale;
    etcd_kvs_init(&kvs);
    int rc = read_tasks(req, &stale, &kvs, &e);
    if (rc < 0) {
        etcd_kvs_release(&kvs);
        return reply_errno(r, rc, &e);
    }
    json_t **all = calloc(kvs.count + 1, sizeof(*all));
    size_t n = 0;
    for (size_t i = 0; all && i < kvs.count; i++) {
        json_t *o = json_loads(kvs.items[i].value ? kvs.items[i].value : "", 0, NULL);
        if (o && wanted(o, vmid, node))
            all[n++] = o;
        else
            json_decref(o);
    }
    etcd_kvs_release(&kvs);
    qsort(all, n, sizeof(*all), by_start_desc);
    json_t *list = json_array(), *online = online_nodes(req, stale);
    for (size_t i = 0; i < n; i++)
        if ((long)i < limit) {
            mark_offline(all[i], online);
            if (!json_is_false(json_object_get(all[i], "node_online")))
                add_progress(req, all[i]);
            json_array_append_new(list, all[i]);
        } else
            json_decref(all[i]);
    free(all);
    json_decref(online);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:o}", "stale", stale, "tasks", list));
}

/* true when the request was forwarded (or refused): the task is elsewhere. */
static bool elsewhere(struct api_req *req, struct reply *r)
{
    char node[TERN_NAME_MAX + 1];
    struct err e;
    int rc = task_id_node(req->args[0], node, &e);
    if (rc < 0) {
        reply_errno(r, rc, &e);
        return true;
    }
    if (strcmp(node, req->ctx->cfg->name) == 0)
        return false;
    api_forward(req, r, node);
    return true;
}

static void get_task(struct api_req *req, struct reply *r)
{
    if (elsewhere(req, r))
        return;
    json_t *o = task_json(req->ctx->tasks, req->args[0]);
    if (o)
        return reply_json(r, MHD_HTTP_OK, o);
    /* ended before a restart of ternd: its record */
    char key[TERN_KEY_MAX + TASK_ID_MAX];
    snprintf(key, sizeof(key), TERN_PREFIX_TASKS "%s", req->args[0]);
    struct etcd_kv kv;
    struct err e;
    etcd_kv_init(&kv);
    int rc = etcd_get(req->etcd, key, ETCD_SERIALIZABLE, &kv, &e);
    o = !rc ? json_loads(kv.value, 0, NULL) : NULL;
    etcd_kv_release(&kv);
    if (o)
        return reply_json(r, MHD_HTTP_OK, o);
    reply_error(r, MHD_HTTP_NOT_FOUND, "no task '%.100s'", req->args[0]);
}

static void get_log(struct api_req *req, struct reply *r)
{
    if (elsewhere(req, r))
        return;
    const char *start_s = api_query(req, "start");
    char *end = NULL;
    long start = start_s ? strtol(start_s, &end, 10) : 0;
    if (start < 0 || (end && *end))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'start' must be a line number >= 0");
    json_t *out = NULL;
    struct err e;
    int rc = task_read_log(req->ctx->tasks, req->args[0], (unsigned)start, &out, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, out);
}

/* The answer says what happened: cancelled (200), or refused with the
 * reason (409: ended first, or a step a cancel cannot undo; 405 a task
 * that cannot be cancelled; 504 still running after CANCEL_WAIT_MS). */
static void cancel(struct api_req *req, struct reply *r)
{
    if (elsewhere(req, r))
        return;
    struct err e;
    char status[400];
    int rc = task_cancel(req->ctx->tasks, req->args[0], CANCEL_WAIT_MS, status, &e);
    if (rc == -EALREADY || rc == -EBUSY)
        return reply_error(r, MHD_HTTP_CONFLICT, "%s", e.msg);
    if (rc == -EOPNOTSUPP)
        return reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "%s", e.msg);
    if (rc == -ETIMEDOUT)
        return reply_error(r, MHD_HTTP_GATEWAY_TIMEOUT, "%s", e.msg);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(
        r, MHD_HTTP_OK,
        json_pack("{s:s, s:b, s:s}", "id", req->args[0], "cancelled", 1, "status", status));
}

const struct api_route api_routes_task[] = {
    {"GET", "/tasks", list_tasks},
    {"GET", "/tasks/{}", get_task},
    {"GET", "/tasks/{}/log", get_log},
    {"POST", "/tasks/{}/cancel", cancel},
    {NULL, NULL, NULL},
};
