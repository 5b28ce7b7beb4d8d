/* The forecast of a dry run (docs/api.md, "POST /vms/ID/migrate"): the
 * VM's tern-vmm measures its dirty rate and plays the pre-copy passes with
 * the engine's own rule (control command migrate_forecast, docs/control.md);
 * ternd supplies the link rate: the bandwidth the last migration from this
 * node to the same target measured, capped by the bandwidth limit, or a
 * default. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/keys.h"
#include "node/ctx.h"
#include "node/migtask.h"

#define MIB (1024.0 * 1024.0)

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* The newest successful migration from this node to target that measured
 * a bandwidth: its rate, and its id in task. */
static double last_bandwidth(struct etcd_client *c, const struct migtask_plan *p,
                             char task[TASK_ID_MAX])
{
    char prefix[TERN_KEY_MAX];
    snprintf(prefix, sizeof(prefix), TERN_PREFIX_TASKS "UPID:%s:", p->source);
    struct etcd_kvs kvs;
    struct err e;
    etcd_kvs_init(&kvs);
    double rate = 0;
    json_int_t newest = -1;
    if (etcd_get_prefix(c, prefix, ETCD_SERIALIZABLE, &kvs, &e) < 0)
        kvs.count = 0;
    for (size_t i = 0; i < kvs.count; i++) {
        json_t *t = json_loads(kvs.items[i].value ? kvs.items[i].value : "", 0, NULL);
        json_t *f = json_object_get(t, "figures");
        const char *to = json_string_value(json_object_get(f, "target"));
        json_int_t start = json_integer_value(json_object_get(t, "start"));
        const char *id = json_string_value(json_object_get(t, "id"));
        if (to && id && strcmp(to, p->target) == 0 && num(f, "bandwidth") > 0 &&
            start > newest) {
            newest = start;
            rate = num(f, "bandwidth");
            snprintf(task, TASK_ID_MAX, "%s", id);
        }
        json_decref(t);
    }
    etcd_kvs_release(&kvs);
    return rate;
}

/* The link rate (bytes/s) and what it rests on. */
static double link_rate(struct etcd_client *c, const struct migtask_plan *p,
                        const char **basis, char task[TASK_ID_MAX])
{
    task[0] = '\0';
    double rate = last_bandwidth(c, p, task);
    *basis = rate > 0 ? "last-migration" : "default";
    if (rate <= 0)
        rate = MIGTASK_FORECAST_LINK_MIB * MIB;
    if (p->bwlimit_mib && (double)p->bwlimit_mib * MIB < rate) {
        rate = (double)p->bwlimit_mib * MIB;
        *basis = "bwlimit";
    }
    return rate;
}

static json_t *shape(json_t *reply, double link, const char *basis, const char *task)
{
    json_t *f = json_object_get(reply, "forecast");
    json_t *o = json_pack(
        "{s:f, s:f, s:f, s:f, s:i, s:s, s:O, s:O, s:O, s:f, s:f}", "total_ms",
        num(f, "total_ms"), "downtime_ms", num(f, "downtime_ms"), "dirty_rate_mib_s",
        num(reply, "dirty_rate") / MIB, "link_mib_s", link / MIB, "passes",
        (int)num(f, "passes"), "basis", basis, "converges", json_object_get(f, "converges"),
        "stop_reason", json_object_get(f, "stop_reason"), "throttle_pct",
        json_object_get(f, "throttle_pct"), "window_ms", num(reply, "window_ms"),
        "first_pass_mib", num(reply, "first_bytes") / MIB);
    if (o && task[0])
        json_object_set_new(o, "basis_task", json_string(task));
    return o;
}

int migtask_forecast(struct node_ctx *x, struct etcd_client *c,
                     const struct migtask_plan *p, json_t **out, struct err *e)
{
    const char *basis;
    char task[TASK_ID_MAX];
    double link = link_rate(c, p, &basis, task);
    json_t *req = json_pack("{s:s, s:I, s:i}", "cmd", "migrate_forecast", "bandwidth",
                            (json_int_t)link, "downtime_limit_ms", (int)p->downtime_ms);
    json_t *reply = NULL;
    int rc = req ? vmm_command(x->vmms, p->vmid, req, &reply, e) : -ENOMEM;
    json_decref(req);
    if (!rc && !(*out = shape(reply, link, basis, task)))
        rc = err_set(e, ENOMEM, "out of memory");
    json_decref(reply);
    return rc;
}
