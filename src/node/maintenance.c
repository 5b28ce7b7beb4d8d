/* Maintenance mode: the endpoint, the task that empties the node, and the
 * one that brings its VMs back (node/maintenance.h). */
#include "node/maintenance.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/ha.h"
#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "common/jsonf.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/migtask.h"
#include "node/peer.h"

#define POLL_MS 500

struct maint_arg {
    bool resumed;
    json_t *back; /* for a return: [{"vmid","node"}] */
};

struct moving {
    uint32_t vmid;
    char task[TASK_ID_MAX];
    char node[TERN_NAME_MAX + 1]; /* the target (evacuate), the owner (return) */
};

/* Runs moves[] to their end, starting queue[] items with start(), at most
 * MAINT_PARALLEL at once; done() for each that ended. */
struct mover {
    struct task *k;
    struct etcd_client *c;
    int (*start)(struct mover *mv, json_t *item, struct moving *m, struct err *e);
    void (*status)(struct mover *mv, const struct moving *m, char *out, size_t size);
    json_t *failed, *moved;
    const char *verb; /* "migrating to", "returning from" */
};

/* The VMs node owns, in id order (vmrec_list is sorted by key). */
static int owned_vms(struct etcd_client *c, const char *node, json_t **ids, struct err *e)
{
    struct vmrecs l;
    vmrecs_init(&l);
    int rc = vmrec_list(c, 0, &l, e);
    *ids = json_array();
    for (size_t i = 0; !rc && i < l.count; i++)
        if (strcmp(l.items[i].owner, node) == 0)
            json_array_append_new(*ids, json_integer(l.items[i].conf.id));
    vmrecs_release(&l);
    return rc;
}

/* One VM's live (or, stopped, offline) migration to the auto target,
 * started here; 0 with m filled, or why not. */
static int move_one(struct task *k, struct etcd_client *c, uint32_t vmid, struct moving *m,
                    struct err *e)
{
    struct migtask_plan p;
    migtask_plan_init(&p);
    json_t *body = json_pack("{s:s, s:b}", "target", "auto", "online", 1);
    int rc = migtask_plan_parse(&p, vmid, k->ctx->cfg->name, body, e);
    if (!rc)
        rc = migtask_plan_check(&p, k->ctx, c, e);
    m->vmid = vmid;
    snprintf(m->node, sizeof(m->node), "%s", p.target);
    if (!rc)
        rc = migtask_start(k->ctx, &p, m->task, e);
    json_decref(body);
    migtask_plan_release(&p);
    return rc;
}

/* "running", or how the task ended ("OK", "ERROR: ..."). */
static void task_status(struct task_table *tt, const char *id, char *out, size_t size)
{
    json_t *o = task_json(tt, id);
    const char *s = json_string_value(json_object_get(o, "status"));
    snprintf(out, size, "%s", s ? s : "ERROR: task lost");
    json_decref(o);
}

static void add_failed(json_t *failed, uint32_t vmid, const char *why)
{
    char line[300];
    snprintf(line, sizeof(line), "vm %u (%.250s)", vmid, why);
    json_array_append_new(failed, json_string(line));
}

/* Records the VMs moved away in the maintenance record (for a return). */
static void record_moved(struct etcd_client *c, const char *me, json_t *moved)
{
    bool on;
    json_t *rec = NULL;
    struct err e;
    if (ha_maint_get(c, me, 0, &on, &rec, &e) == 0 && on) {
        json_t *all = json_object_get(rec, "moved");
        if (!json_is_array(all))
            json_object_set_new(rec, "moved", all = json_array());
        json_array_extend(all, moved);
        ha_maint_put(c, me, rec, &e);
    }
    json_decref(rec);
}

static int finish(struct task *k, json_t *failed, const char *what, struct err *e)
{
    if (json_array_size(failed) == 0)
        return 0;
    char list[600] = "";
    size_t i, len = 0;
    json_t *v;
    json_array_foreach(failed, i, v)
        if (len < sizeof(list))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? "; " : "",
                                    json_string_value(v));
    (void)k;
    return err_set(e, EBUSY, "%zu vm(s) %s: %s", json_array_size(failed), what, list);
}

static bool stopping(struct node_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    bool going = x->stopping;
    pthread_mutex_unlock(&x->lock);
    return going;
}

/* Ends early (what runs is waited for) when the task is cancelled or ternd
 * stops: a stop must not wait for a whole evacuation. */
static void drive(struct mover *mv, json_t *queue)
{
    struct moving run[MAINT_PARALLEL];
    unsigned nrun = 0;
    size_t next = 0;
    while ((next < json_array_size(queue) && !stopping(mv->k->ctx)) || nrun) {
        if (task_cancelled(mv->k) && !nrun)
            break;
        while (nrun < MAINT_PARALLEL && next < json_array_size(queue) &&
               !stopping(mv->k->ctx)) {
            json_t *item = json_array_get(queue, next++);
            struct err e;
            struct moving *m = &run[nrun];
            if (mv->start(mv, item, m, &e) < 0) {
                task_log(mv->k, "vm %u: cannot move: %s", m->vmid, e.msg);
                add_failed(mv->failed, m->vmid, e.msg);
                continue;
            }
            task_log(mv->k, "vm %u: %s '%s' (task %s)", m->vmid, mv->verb, m->node,
                     m->task);
            nrun++;
        }
        usleep(POLL_MS * 1000);
        for (unsigned i = 0; i < nrun; i++) {
            char status[400];
            mv->status(mv, &run[i], status, sizeof(status));
            if (strcmp(status, "running") == 0)
                continue;
            if (strcmp(status, "OK") == 0) {
                task_log(mv->k, "vm %u: done (%s)", run[i].vmid, run[i].node);
                json_array_append_new(mv->moved, json_integer(run[i].vmid));
            } else {
                task_log(mv->k, "vm %u: cannot move: %s", run[i].vmid, status);
                add_failed(mv->failed, run[i].vmid, status);
            }
            run[i--] = run[--nrun];
        }
    }
}

static void local_status(struct mover *mv, const struct moving *m, char *out, size_t size)
{
    task_status(mv->k->table, m->task, out, size);
}

static int evac_start(struct mover *mv, json_t *item, struct moving *m, struct err *e)
{
    return move_one(mv->k, mv->c, (uint32_t)json_integer_value(item), m, e);
}

static int evacuate_body(struct task *k, struct etcd_client *c, struct err *e)
{
    const struct maint_arg *a = k->arg;
    const char *me = k->ctx->cfg->name;
    if (a->resumed)
        task_log(k, "ternd restarted: the maintenance of node '%s' goes on", me);
    json_t *ids;
    int rc = owned_vms(c, me, &ids, e);
    if (rc)
        return rc;
    task_log(k, "node '%s' in maintenance: %zu vm(s) to move away, at most %d at a time",
             me, json_array_size(ids), MAINT_PARALLEL);
    struct mover mv = {
        k, c, evac_start, local_status, json_array(), json_array(), "migrating to"};
    drive(&mv, ids);
    record_moved(c, me, mv.moved);
    rc = task_cancelled(k) ? err_set(e, ECANCELED, "cancelled") : 0;
    if (!rc && stopping(k->ctx))
        rc = err_set(e, EINTR, "interrupted: ternd is stopping; the next ternd goes on");
    if (!rc)
        rc = finish(k, mv.failed, "could not move", e);
    if (!rc)
        task_log(k, "node '%s' holds no vms: ready for maintenance", me);
    json_decref(ids);
    json_decref(mv.failed);
    json_decref(mv.moved);
    return rc;
}

/* A VM moved away comes back: the migration is the owner's task. */
static int back_start(struct mover *mv, json_t *item, struct moving *m, struct err *e)
{
    m->vmid = (uint32_t)json_integer_value(item);
    m->task[0] = '\0';
    int rc = vmowner_get(mv->c, m->vmid, 0, m->node, NULL, e);
    if (!rc && strcmp(m->node, mv->k->ctx->cfg->name) == 0)
        rc = err_set(e, EALREADY, "it is on '%s' already", m->node);
    struct peer p;
    if (rc || (rc = peer_init(&p, mv->k->ctx, mv->c, m->node, e)) < 0)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/vms/%u/migrate", m->vmid);
    json_t *req = json_pack("{s:s, s:b}", "target", mv->k->ctx->cfg->name, "online", 1);
    json_t *ans = NULL;
    long status = 0;
    rc = peer_call(&p, "POST", path, req, &status, &ans, e);
    const char *task = json_string_value(json_object_get(ans, "task"));
    if (!rc && (status != 200 || !task)) {
        const char *why = json_string_value(json_object_get(ans, "error"));
        rc = err_set(e, EBUSY, "%s", why ? why : "refused");
    }
    if (!rc)
        snprintf(m->task, sizeof(m->task), "%s", task);
    json_decref(req);
    json_decref(ans);
    peer_release(&p);
    return rc;
}

static void remote_status(struct mover *mv, const struct moving *m, char *out, size_t size)
{
    struct peer p;
    struct err e;
    json_t *ans = NULL;
    long status = 0;
    char path[TASK_ID_MAX + 32];
    snprintf(path, sizeof(path), "/api/v1/tasks/%s", m->task);
    snprintf(out, size, "running"); /* a node that does not answer: ask again */
    if (peer_init(&p, mv->k->ctx, mv->c, m->node, &e) < 0)
        return;
    const char *s = NULL;
    if (peer_call(&p, "GET", path, NULL, &status, &ans, &e) == 0 && status == 200 &&
        (s = json_string_value(json_object_get(ans, "status"))))
        snprintf(out, size, "%s", s);
    json_decref(ans);
    peer_release(&p);
}

static int return_body(struct task *k, struct etcd_client *c, struct err *e)
{
    struct maint_arg *a = k->arg;
    task_log(k,
             "node '%s' out of maintenance: %zu vm(s) to bring back, at most %d at a "
             "time",
             k->ctx->cfg->name, json_array_size(a->back), MAINT_PARALLEL);
    struct mover mv = {
        k, c, back_start, remote_status, json_array(), json_array(), "coming back from"};
    drive(&mv, a->back);
    int rc = finish(k, mv.failed, "did not come back", e);
    json_decref(mv.failed);
    json_decref(mv.moved);
    return rc;
}

static int return_run(struct task *k, struct err *e);

static int with_client(struct task *k,
                       int (*body)(struct task *, struct etcd_client *, struct err *),
                       struct err *e)
{
    struct etcd_client c;
    int rc = etcd_client_init(&c, k->table->etcd_url, e);
    if (!rc) {
        rc = body(k, &c, e);
        etcd_client_release(&c);
    }
    struct maint_arg *a = k->arg;
    json_decref(a->back);
    a->back = NULL;
    return rc;
}

static int evacuate_run(struct task *k, struct err *e)
{
    return with_client(k, evacuate_body, e);
}

int maint_evacuate_start(struct node_ctx *x, bool resumed, char id[TASK_ID_MAX],
                         struct err *e)
{
    struct maint_arg *a = calloc(1, sizeof(*a));
    if (!a)
        return err_set(e, ENOMEM, "out of memory");
    a->resumed = resumed;
    int rc = task_start(x->tasks, x, "maintenance", 0, evacuate_run, a, id, e);
    if (rc)
        free(a);
    return rc;
}

static int return_run(struct task *k, struct err *e)
{
    return with_client(k, return_body, e);
}

/* POST /nodes/{name}/maintenance {"enable": bool, "return": bool} */
static int maint_change(struct api_req *req, bool enable, bool back, char task[TASK_ID_MAX],
                        struct err *e)
{
    const char *me = req->ctx->cfg->name;
    bool on;
    json_t *rec = NULL;
    int rc = ha_maint_get(req->etcd, me, 0, &on, &rec, e);
    if (!rc && enable) {
        if (!on)
            rec = json_object();
        json_object_set_new(rec, "since", json_integer(time(NULL)));
        rc = ha_maint_put(req->etcd, me, rec, e);
        if (!rc)
            rc = maint_evacuate_start(req->ctx, false, task, e);
    } else if (!rc) {
        rc = on ? ha_maint_put(req->etcd, me, NULL, e)
                : err_set(e, EALREADY, "node '%s' is not in maintenance", me);
        struct maint_arg *a = back && !rc ? calloc(1, sizeof(*a)) : NULL;
        if (a) {
            a->back = json_incref(json_object_get(rec, "moved"));
            if (!json_is_array(a->back))
                a->back = (json_decref(a->back), json_array());
            rc = task_start(req->ctx->tasks, req->ctx, "maintreturn", 0, return_run, a,
                            task, e);
            if (rc) {
                json_decref(a->back);
                free(a);
            }
        }
    }
    json_decref(rec);
    return rc;
}

static void post_maintenance(struct api_req *req, struct reply *r)
{
    if (strcmp(req->args[0], req->ctx->cfg->name) != 0)
        return api_forward(req, r, req->args[0]);
    struct err e;
    bool enable = false, back = false;
    static const char *const known[] = {"enable", "return", NULL};
    const char *key = req->body ? jsonf_unknown_key(req->body, known) : NULL;
    int rc = api_no_body(req, r, "{\"enable\": true|false} is missing") ? 1 : 0;
    if (rc)
        return;
    rc = key ? err_set(&e, EINVAL, "maintenance: unknown key '%s'", key) : 0;
    if (!rc)
        rc = jsonf_bool(req->body, "enable", true, &enable, "maintenance", &e);
    if (!rc)
        rc = jsonf_bool(req->body, "return", false, &back, "maintenance", &e);
    if (!rc && enable && back)
        rc = err_set(&e, EINVAL, "maintenance: 'return' goes with enable false only");
    char task[TASK_ID_MAX] = "";
    if (!rc)
        rc = maint_change(req, enable, back, task, &e);
    if (rc == -EALREADY) /* 409, not 500 */
        rc = -EBUSY;
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:s, s:b, s:s?}", "node", req->ctx->cfg->name, "maintenance",
                         enable, "task", task[0] ? task : NULL));
}

const struct api_route api_routes_maint[] = {
    {"POST", "/nodes/{}/maintenance", post_maintenance},
    {NULL, NULL, NULL},
};

void maint_resume(struct node_ctx *x, struct etcd_client *c)
{
    bool on = false;
    json_t *ids = NULL;
    struct err e;
    char id[TASK_ID_MAX];
    if (ha_maint_get(c, x->cfg->name, 0, &on, NULL, &e) == 0 && on &&
        owned_vms(c, x->cfg->name, &ids, &e) == 0 && json_array_size(ids) &&
        maint_evacuate_start(x, true, id, &e) == 0)
        log_info("maint", "node %s is in maintenance with vms left: task %s", x->cfg->name,
                 id);
    json_decref(ids);
}
