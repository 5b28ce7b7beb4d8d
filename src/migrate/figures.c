/* The figures of a source migration as JSON: what query_migrate answers
 * and every "migration" event carries (docs/control.md), and the names of
 * its statuses. */
#include <jansson.h>

#include "migrate/migration.h"

const char *mig_status_name(enum mig_status s)
{
    static const char *const names[] = {
        "none",   "setup",     "active",
        "device", "handover",  "completed",
        "failed", "cancelled", "postcommit-failed",
    };
    return names[s];
}

json_t *mig_figures_json(const struct mig_figures *f)
{
    json_t *j = json_pack(
        "{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i, s:f}", "status",
        mig_status_name(f->status), "pass", (int)f->pass, "ram_total",
        (json_int_t)f->ram_total, "transferred", (json_int_t)f->transferred, "remaining",
        (json_int_t)f->remaining, "pages", (json_int_t)f->pages, "zero_pages",
        (json_int_t)f->zero_pages, "skipped_pages", (json_int_t)f->skipped, "dirty_rate",
        f->dirty_rate, "bandwidth", f->bandwidth, "expected_downtime_ms",
        f->expected_downtime_ms, "throttle_pct", (int)f->throttle_pct, "sync_ms",
        f->sync_ms);
    if (f->status >= MIG_STATUS_COMPLETED || f->total_ms > 0) {
        json_t *d = json_pack(
            "{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "pause_ms", f->pause_ms,
            "last_pages_ms", f->last_pages_ms, "state_save_ms", f->state_save_ms,
            "transfer_ms", f->transfer_ms, "load_ms", f->load_ms, "commit_ms", f->commit_ms,
            "resume_ms", f->resume_ms, "total_ms", f->downtime_ms);
        json_object_set_new(j, "total_ms", json_real(f->total_ms));
        json_object_set_new(j, "setup_ms", json_real(f->setup_ms));
        json_object_set_new(j, "downtime_ms", json_real(f->downtime_ms));
        if (f->disks_ms > 0)
            json_object_set_new(d, "disks_ms", json_real(f->disks_ms));
        json_object_set_new(j, "downtime", d);
        if (f->paused_at_us)
            json_object_set_new(j, "paused_at_us",
                                json_integer((json_int_t)f->paused_at_us));
        json_object_set_new(j, "state_bytes", json_integer((json_int_t)f->state_bytes));
    }
    if (f->resume_dest_ms > 0)
        json_object_set_new(j, "resume_dest_ms", json_real(f->resume_dest_ms));
    if (f->acked) {
        json_object_set_new(j, "acked", json_integer((json_int_t)f->acked));
        json_object_set_new(j, "catch_up_ms", json_real(f->catch_up_ms));
    }
    if (f->stop_reason[0]) {
        json_object_set_new(j, "stop_reason", json_string(f->stop_reason));
        json_object_set_new(j, "predicted_downtime_ms",
                            json_real(f->predicted_downtime_ms));
    }
    if (f->error[0])
        json_object_set_new(j, "error", json_string(f->error));
    return j;
}
