#include "node/progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MiB (1024.0 * 1024.0)
#define SAMPLE_MIN_NS 200000000ULL /* shorter gaps say little about a rate */
#define RATE_WEIGHT 0.3            /* of a new sample against the past */

void progress_meter_init(struct progress_meter *pm)
{
    memset(pm, 0, sizeof(*pm));
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static void measure_rate(struct progress_meter *pm, double sent, uint64_t now_ns)
{
    if (!pm->t_ns) {
        pm->t_ns = now_ns;
        pm->sent = sent;
        return;
    }
    if (now_ns - pm->t_ns < SAMPLE_MIN_NS || sent < pm->sent)
        return;
    double now = (sent - pm->sent) / ((double)(now_ns - pm->t_ns) / 1e9);
    pm->rate = pm->rate > 0 ? pm->rate * (1 - RATE_WEIGHT) + now * RATE_WEIGHT : now;
    pm->t_ns = now_ns;
    pm->sent = sent;
}

/* Each mirrored disk as tern-vmm reports it (docs/control.md, "disks"):
 * done is what no longer needs copying, 100 % once the disk is in sync. */
static json_t *disks_progress(const json_t *ev)
{
    json_t *out = json_array(), *d;
    size_t i;
    json_array_foreach(json_object_get(ev, "disks"), i, d) {
        double total = num(d, "total"), dirty = num(d, "dirty");
        bool synced = num(d, "sync_ms") > 0;
        double done = total > dirty ? total - dirty : 0;
        int pct = synced ? 100 : total > 0 ? (int)(done / total * 100) : 0;
        json_array_append_new(
            out, json_pack("{s:O, s:I, s:I, s:I, s:I, s:b, s:b, s:i}", "name",
                           json_object_get(d, "name"), "total", (json_int_t)total, "done",
                           (json_int_t)(synced ? total : done), "copied",
                           (json_int_t)num(d, "copied"), "rate", (json_int_t)num(d, "rate"),
                           "synced", synced, "active",
                           json_is_true(json_object_get(d, "active")), "percent",
                           pct > 99 && !synced ? 99 : pct));
    }
    return out;
}

/* "remaining" is what the current pass still has to go through: in pass 1
 * all of the RAM not yet looked at, later the pages dirtied since; so the
 * RAM in place on the destination is the total less it. */
json_t *progress_meter_update(struct progress_meter *pm, const json_t *ev, uint64_t now_ns)
{
    double total = num(ev, "ram_total"), sent = num(ev, "transferred");
    double left = num(ev, "remaining");
    measure_rate(pm, sent, now_ns);
    double done = total > 0 ? (total - left) / total : 0;
    done = done < 0 ? 0 : done > 0.99 ? 0.99 : done; /* 100 % is the end */
    if (done > pm->done)
        pm->done = done;
    json_t *p = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:f}", "total", (json_int_t)total,
        "transferred", (json_int_t)sent, "remaining", (json_int_t)left, "rate",
        (json_int_t)pm->rate, "dirty_rate", (json_int_t)num(ev, "dirty_rate"), "pass",
        (int)num(ev, "pass"), "throttle_pct", (int)num(ev, "throttle_pct"), "percent",
        (int)(pm->done * 100), "ram_ratio", total > 0 ? sent / total : 0.0);
    if (p) /* tern-vmm's: the last pages at the measured bandwidth */
        json_object_set_new(p, "expected_downtime_ms",
                            json_integer((json_int_t)num(ev, "expected_downtime_ms")));
    if (p && json_array_size(json_object_get(ev, "disks")))
        json_object_set_new(p, "disks", disks_progress(ev));
    if (p)
        json_object_set_new(p, "eta_s",
                            pm->rate > 0 ? json_integer((json_int_t)(left / pm->rate + 0.5))
                                         : json_null());
    return p;
}

void progress_line(const json_t *p, char *out, size_t size)
{
    double total = num(p, "total"), sent = num(p, "transferred");
    int pass = (int)num(p, "pass");
    char ratio[64] = "", eta[32] = "eta unknown";
    if (total > 0 && sent > total)
        snprintf(ratio, sizeof(ratio), " (%.1f× the RAM after %d pass%s)", sent / total,
                 pass, pass == 1 ? "" : "es");
    if (json_is_integer(json_object_get(p, "eta_s")))
        snprintf(eta, sizeof(eta), "eta %lld s",
                 (long long)json_integer_value(json_object_get(p, "eta_s")));
    snprintf(out, size,
             "pass %d: %d%% done, %.1f MiB sent%s, %.1f MiB left, %.1f MiB/s, "
             "dirty %.1f MiB/s, throttle %d%%, %s",
             pass, (int)num(p, "percent"), sent / MiB, ratio, num(p, "remaining") / MiB,
             num(p, "rate") / MiB, num(p, "dirty_rate") / MiB, (int)num(p, "throttle_pct"),
             eta);
}
