#include "migrate/forecast.h"

#include <errno.h>
#include <sys/stat.h>

#include "common/guest_ram.h"
#include "common/jsonf.h"
#include "migrate/converge.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

/* The engine's auto-converge step (migration.c, src_throttle): from pass 2,
 * while the guest dirties more than half the link and the rest does not
 * fit the limit, 20 %, then 10 % more each pass, at most 99 %. */
static unsigned throttle_step(const struct mig_forecast_input *in, const struct converge *c,
                              double pass_rate, unsigned pct)
{
    if (!in->auto_converge || pass_rate <= in->bandwidth / 2 ||
        c->expected_ms <= c->limit_ms)
        return pct;
    pct = pct ? pct + 10 : 20;
    return pct > 99 ? 99 : pct;
}

/* Each pass sends what the previous one left, at the link's rate; the
 * guest meanwhile dirties at its (throttled) rate, each page written
 * counted as a new one, so a working set smaller than rate x pass time
 * makes the forecast pessimistic. */
int mig_forecast_run(const struct mig_forecast_input *in, struct mig_forecast *out)
{
    if (!(in->bandwidth > 0))
        return -EINVAL;
    struct converge c;
    converge_init(&c, in->limit_ms, in->max_ms);
    *out = (struct mig_forecast){.stop_reason = ""};
    double elapsed_ms = 0, send = (double)in->first_bytes;
    for (unsigned pass = 1; pass <= MIG_FORECAST_MAX_PASSES; pass++) {
        double secs = send / in->bandwidth;
        elapsed_ms += secs * 1e3;
        double rate = in->paused ? 0 : in->dirty_rate * (100 - out->throttle_pct) / 100;
        double dirty = rate * secs;
        if (dirty > (double)in->ram_bytes)
            dirty = (double)in->ram_bytes;
        struct converge_pass p = {
            .remaining = (uint64_t)dirty,
            .bandwidth = in->bandwidth,
            .dirty_rate = secs > 0 ? dirty / secs : rate,
            .elapsed_ms = elapsed_ms,
            .vm_paused = in->paused,
        };
        enum converge_verdict v = converge_judge(&c, &p);
        out->passes = pass;
        if (v == CONVERGE_STOP) {
            out->converges = true;
            out->stop_reason = c.reason;
            out->downtime_ms = c.expected_ms + MIG_FORECAST_FIXED_MS;
            out->total_ms = MIG_FORECAST_SETUP_MS + elapsed_ms + out->downtime_ms;
            return 0;
        }
        if (v == CONVERGE_GIVE_UP)
            break;
        if (pass >= 2)
            out->throttle_pct = throttle_step(in, &c, p.dirty_rate, out->throttle_pct);
        send = dirty;
    }
    out->stop_reason = "gives-up";
    out->downtime_ms = 0;
    out->total_ms = MIG_FORECAST_SETUP_MS + elapsed_ms;
    return 0;
}

json_t *mig_forecast_json(const struct mig_forecast *f)
{
    return json_pack("{s:f, s:f, s:i, s:i, s:b, s:s}", "total_ms", f->total_ms,
                     "downtime_ms", f->downtime_ms, "passes", (int)f->passes,
                     "throttle_pct", (int)f->throttle_pct, "converges", f->converges,
                     "stop_reason", f->stop_reason);
}

/* What pass 1 would send: the memfd's allocated bytes (holes are skipped;
 * zero pages among them cost only a marker, so this is an upper bound). */
static uint64_t first_pass_bytes(struct vm *vm)
{
    struct stat st;
    if (vm->mem_fd < 0 || fstat(vm->mem_fd, &st) < 0)
        return vm->ram.size;
    uint64_t bytes = (uint64_t)st.st_blocks * 512;
    return bytes < vm->ram.size ? bytes : vm->ram.size;
}

static int parse(json_t *req, struct mig_forecast_input *in, uint64_t *window,
                 struct err *e)
{
    static const char *const known[] = {"cmd",        "id",
                                        "bandwidth",  "dirty_rate",
                                        "window_ms",  "downtime_limit_ms",
                                        "max_time_s", "auto_converge",
                                        NULL};
    const char *key = jsonf_unknown_key(req, known);
    char quoted[JSONF_PRINTABLE_MAX];
    uint64_t bw = 0, limit = 100, max_s = 600, rate = UINT64_MAX;
    int rc = key ? err_set(e, EINVAL, "unknown parameter '%s'",
                           jsonf_printable(key, quoted))
                 : 0;
    if (!rc)
        rc = jsonf_uint(req, "bandwidth", true, 1, 1ULL << 40, &bw, NULL, e);
    if (!rc && json_object_get(req, "dirty_rate"))
        rc = jsonf_uint(req, "dirty_rate", true, 0, 1ULL << 40, &rate, NULL, e);
    if (!rc)
        rc = jsonf_uint(req, "window_ms", false, 50, 1000, window, NULL, e);
    if (!rc)
        rc = jsonf_uint(req, "downtime_limit_ms", false, 1, 60000, &limit, NULL, e);
    if (!rc)
        rc = jsonf_uint(req, "max_time_s", false, 1, 86400, &max_s, NULL, e);
    in->auto_converge = true;
    if (!rc)
        rc = jsonf_bool(req, "auto_converge", false, &in->auto_converge, NULL, e);
    in->bandwidth = (double)bw;
    in->dirty_rate = rate == UINT64_MAX ? -1 : (double)rate;
    in->limit_ms = (double)limit;
    in->max_ms = (double)max_s * 1e3;
    return rc;
}

int mig_forecast_command(struct vm *vm, json_t *req, json_t *reply, struct err *e)
{
    struct mig_forecast_input in = {0};
    uint64_t window = 300, pages = 0;
    double secs = 0;
    int rc = parse(req, &in, &window, e);
    in.paused = vm_get_state(vm) != VM_RUNNING; /* nothing dirties its RAM */
    bool measure = in.dirty_rate < 0;
    /* the monitor's loop waits for the window: at most 1 s, on request */
    if (!rc && measure && !in.paused)
        rc = dirty_log_measure(vm, (unsigned)window, &pages, &secs, e);
    if (rc)
        return rc;
    if (measure)
        in.dirty_rate = secs > 0 ? (double)pages * GUEST_PAGE_SIZE / secs : 0;
    in.first_bytes = first_pass_bytes(vm);
    in.ram_bytes = vm->ram.size;
    struct mig_forecast f;
    rc = mig_forecast_run(&in, &f);
    if (rc)
        return err_set(e, -rc, "bandwidth must be positive");
    json_object_set_new(reply, "dirty_rate", json_real(in.dirty_rate));
    json_object_set_new(reply, "measured", json_boolean(measure && !in.paused));
    json_object_set_new(reply, "dirty_pages", json_integer((json_int_t)pages));
    json_object_set_new(reply, "window_ms", json_real(secs * 1e3));
    json_object_set_new(reply, "ram_bytes", json_integer((json_int_t)in.ram_bytes));
    json_object_set_new(reply, "first_bytes", json_integer((json_int_t)in.first_bytes));
    json_object_set_new(reply, "forecast", mig_forecast_json(&f));
    return 0;
}
