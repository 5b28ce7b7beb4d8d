/* The forecast of a dry run (docs/api.md, "POST /vms/ID/migrate"): the
 * VM's tern-vmm measures its dirty rate and plays the pre-copy passes with
 * the engine's own rule (control command migrate_forecast, docs/control.md);
 * ternd supplies the link rate: the bandwidth the last migration from this
 * node to the same target measured, capped by the bandwidth limit, or a
 * default. A dirty rate measured in the last 2 s is reused. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cluster/keys.h"
#include "common/clock.h"
#include "node/ctx.h"
#include "node/migtask.h"

#define MIB (1024.0 * 1024.0)
#define MEASURE_KEEP_NS 2000000000ULL /* a dirty rate this fresh is reused */

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

/* The last measurement, shared: the migrate dialog asks for every node at
 * once, and each measurement holds the VM's monitor loop for its window;
 * one within MEASURE_KEEP_NS serves them all (and they agree). The lock is
 * held across the measurement, so the others wait for it. */
static struct {
    pthread_mutex_t lock;
    uint32_t vmid;
    uint64_t at_ns;
    double rate, window_ms;
} last = {.lock = PTHREAD_MUTEX_INITIALIZER};

static json_t *request(const struct migtask_plan *p, double link, bool reuse)
{
    json_t *req = json_pack("{s:s, s:I, s:i}", "cmd", "migrate_forecast", "bandwidth",
                            (json_int_t)link, "downtime_limit_ms", (int)p->downtime_ms);
    if (req && reuse)
        json_object_set_new(req, "dirty_rate", json_integer((json_int_t)last.rate));
    return req;
}

/* The VM's tern-vmm's forecast, measuring unless a fresh rate is known. */
static int ask(struct node_ctx *x, const struct migtask_plan *p, double link,
               json_t **reply, double *window_ms, struct err *e)
{
    pthread_mutex_lock(&last.lock);
    uint64_t now = clock_mono_ns();
    bool reuse = last.vmid == p->vmid && now - last.at_ns < MEASURE_KEEP_NS;
    json_t *req = request(p, link, reuse);
    int rc = req ? vmm_command(x->vmms, p->vmid, req, reply, e) : -ENOMEM;
    json_decref(req);
    if (!rc && !reuse) {
        last.vmid = p->vmid;
        last.at_ns = clock_mono_ns();
        last.rate = num(*reply, "dirty_rate");
        last.window_ms = num(*reply, "window_ms");
    }
    *window_ms = last.window_ms;
    pthread_mutex_unlock(&last.lock);
    return rc;
}

static json_t *shape(json_t *reply, double window_ms, double link, const char *basis,
                     const char *task)
{
    json_t *f = json_object_get(reply, "forecast");
    json_t *o = json_pack(
        "{s:f, s:f, s:f, s:f, s:i, s:s, s:O, s:O, s:O, s:f, s:f}", "total_ms",
        num(f, "total_ms"), "downtime_ms", num(f, "downtime_ms"), "dirty_rate_mib_s",
        num(reply, "dirty_rate") / MIB, "link_mib_s", link / MIB, "passes",
        (int)num(f, "passes"), "basis", basis, "converges", json_object_get(f, "converges"),
        "stop_reason", json_object_get(f, "stop_reason"), "throttle_pct",
        json_object_get(f, "throttle_pct"), "window_ms", window_ms, "first_pass_mib",
        num(reply, "first_bytes") / MIB);
    if (o && task[0])
        json_object_set_new(o, "basis_task", json_string(task));
    return o;
}

int migtask_forecast(struct node_ctx *x, struct etcd_client *c,
                     const struct migtask_plan *p, json_t **out, struct err *e)
{
    const char *basis;
    char task[TASK_ID_MAX];
    double link = link_rate(c, p, &basis, task), window_ms = 0;
    json_t *reply = NULL;
    int rc = ask(x, p, link, &reply, &window_ms, e);
    if (!rc && !(*out = shape(reply, window_ms, link, basis, task)))
        rc = err_set(e, ENOMEM, "out of memory");
    json_decref(reply);
    return rc;
}
