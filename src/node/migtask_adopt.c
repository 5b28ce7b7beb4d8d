/* The tasks a ternd that died left "running" in etcd, taken over by the
 * next ternd of the node: no task stays running without a live owner.
 * A migration whose source tern-vmm is still migrating (or waits for the
 * commit decision) is followed to its end as the same task, its log
 * continued; every other one ends at once in `TASK ERROR: interrupted
 * (ternd restarted)` with what became of the VM. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/keys.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/migtask.h"
#include "node/migtask_files.h"
#include "node/migtask_run.h"
#include "node/vmops.h"

/* What an orphan's task is told: why it cannot be followed. */
struct orphan {
    char why[300];
};

/* Where the VM is now, in words: "vm 100 is running on node 'n1'". */
static void vm_whereabouts(struct task *k, struct etcd_client *c, char *out, size_t size)
{
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    char owner[TERN_NAME_MAX + 1];
    struct err e;
    if (info.present)
        snprintf(out, size, "vm %u is %s on node '%s'", k->vmid, info.status,
                 k->ctx->cfg->name);
    else if (vmops_owner(c, k->vmid, owner, &e) == 0)
        snprintf(out, size,
                 "vm %u does not run on node '%s'; etcd names node '%s' its owner", k->vmid,
                 k->ctx->cfg->name, owner);
    else
        snprintf(out, size, "vm %u does not run on node '%s' (%.150s)", k->vmid,
                 k->ctx->cfg->name, e.msg);
}

static int run_interrupted(struct task *k, struct err *e)
{
    struct orphan *o = k->arg;
    struct etcd_client c;
    char where[300] = "";
    if (etcd_client_init(&c, k->table->etcd_url, e) == 0) {
        vm_whereabouts(k, &c, where, sizeof(where));
        etcd_client_release(&c);
    }
    task_log(k, "the task cannot be followed: %s", o->why);
    if (where[0])
        task_log(k, "%s", where);
    return err_set(e, EINTR, "interrupted (ternd restarted)%s%s", where[0] ? "; " : "",
                   where);
}

static int adopted_locked(struct task *k, struct etcd_client *c, struct err *e)
{
    struct migtask_run *m = k->arg;
    task_log(k,
             "following the migration of vm %u from node '%s' to node '%s' that its "
             "tern-vmm kept running",
             k->vmid, m->plan.source, m->plan.target);
    vmm_set_status(k->ctx->vmms, k->vmid, "migrating");
    vmm_set_listener(k->ctx->vmms, k->vmid, migtask_on_event, m);
    int rc = migtask_follow_to_end(k, m, c, e);
    if (!rc)
        task_log(k, "migration finished successfully");
    return rc;
}

static int run_adopted(struct task *k, struct err *e)
{
    struct migtask_run *m = k->arg;
    int rc = vmops_task_locked(k, adopted_locked, e);
    migtask_run_release(m);
    return rc;
}

/* The source tern-vmm of vm id still migrates (or waits for the commit
 * decision): *why empty; else *why says what it does instead. */
static bool still_migrating(struct node_ctx *x, uint32_t id, char *why, size_t size)
{
    json_t *req = json_pack("{s:s}", "cmd", "query_migrate"), *reply = NULL;
    struct err e;
    int rc = vmm_command(x->vmms, id, req, &reply, &e);
    json_decref(req);
    const char *st = rc ? "" : json_string_value(json_object_get(reply, "status")) ?: "";
    const char *err = rc ? "" : json_string_value(json_object_get(reply, "error")) ?: "";
    bool live = !rc && (strcmp(st, "setup") == 0 || strcmp(st, "active") == 0 ||
                        strcmp(st, "device") == 0 || strcmp(st, "handover") == 0 ||
                        json_is_string(json_object_get(reply, "decision")));
    if (rc)
        snprintf(why, size, "its tern-vmm does not answer (%.200s)", e.msg);
    else if (!live)
        snprintf(why, size, "the migration had ended: %s%s%s", st, err[0] ? ": " : "", err);
    json_decref(reply);
    return live;
}

/* A migration task to follow, or NULL with *why. */
static struct migtask_run *followable(struct node_ctx *x, uint32_t id, char *why,
                                      size_t size)
{
    struct migtask_handover h;
    if (!still_migrating(x, id, why, size))
        return NULL;
    if (migtask_handover_read(x, id, &h) < 0 || strcmp(h.source, x->cfg->name) != 0) {
        snprintf(why, size, "no record of the handover in the run directory of vm %u", id);
        return NULL;
    }
    struct migtask_run *m = migtask_run_new();
    if (!m) {
        snprintf(why, size, "out of memory");
        return NULL;
    }
    migtask_plan_init(&m->plan);
    migtask_plan_release(&m->plan); /* no checks: they ran before */
    m->plan.vmid = id;
    m->plan.running = true;
    snprintf(m->plan.source, sizeof(m->plan.source), "%s", h.source);
    snprintf(m->plan.target, sizeof(m->plan.target), "%s", h.target);
    m->rev = h.rev;
    m->adopted = true;
    return m;
}

static void adopt_one(struct node_ctx *x, json_t *rec)
{
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *type = json_string_value(json_object_get(rec, "type"));
    json_int_t vmid = json_integer_value(json_object_get(rec, "vmid"));
    time_t start = (time_t)json_integer_value(json_object_get(rec, "start"));
    if (!id || !type || vmid < TERN_VMID_MIN || vmid > TERN_VMID_MAX)
        return;
    struct orphan *o = calloc(1, sizeof(*o));
    struct migtask_run *m = NULL;
    if (!o)
        return;
    if (strcmp(type, "migrate") == 0)
        m = followable(x, (uint32_t)vmid, o->why, sizeof(o->why));
    else
        snprintf(o->why, sizeof(o->why), "a %s task is not resumed after a restart", type);
    struct err e;
    int rc = m ? task_adopt(x->tasks, x, id, type, (uint32_t)vmid, start, run_adopted, m,
                            &e)
               : task_adopt(x->tasks, x, id, type, (uint32_t)vmid, start, run_interrupted,
                            o, &e);
    if (rc)
        log_warn("task", "task %s left by the ternd before: %s", id, e.msg);
    else
        log_info("task", "task %s left running by the ternd before: %s", id,
                 m ? "following it" : "ending it");
    if (rc || m)
        free(o);
    if (rc)
        free(m);
}

int migtask_adopt_tasks(struct node_ctx *x, struct etcd_client *c)
{
    char prefix[TERN_KEY_MAX + TERN_NAME_MAX];
    snprintf(prefix, sizeof(prefix), TERN_PREFIX_TASKS "UPID:%s:", x->cfg->name);
    struct etcd_kvs kvs;
    struct err e;
    etcd_kvs_init(&kvs);
    int rc = etcd_get_prefix(c, prefix, 0, &kvs, &e);
    for (size_t i = 0; !rc && i < kvs.count; i++) {
        json_t *rec = json_loads(kvs.items[i].value ? kvs.items[i].value : "", 0, NULL);
        const char *status = json_string_value(json_object_get(rec, "status"));
        const char *id = json_string_value(json_object_get(rec, "id"));
        /* running per etcd, and not one of this ternd's own */
        json_t *mine = id ? task_json(x->tasks, id) : NULL;
        if (status && strcmp(status, "running") == 0 && id && !mine)
            adopt_one(x, rec);
        json_decref(mine);
        json_decref(rec);
    }
    etcd_kvs_release(&kvs);
    return rc;
}
