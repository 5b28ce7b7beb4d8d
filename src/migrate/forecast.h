/* The forecast of a live migration before it starts: the pre-copy passes
 * played with the engine's own stop rule (converge.h) and auto-converge
 * step, from a dirty rate measured on the running VM and a link rate the
 * caller knows (ternd: the last migration between the two nodes, or the
 * bandwidth limit). docs/control.md, "migrate_forecast". */
#ifndef TERN_MIGRATE_FORECAST_H
#define TERN_MIGRATE_FORECAST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/control.h"

/* The part of the downtime that is not the last pages: pause, vCPU and
 * device state, its load, the commit and the resume. About 3-6 ms was
 * measured for small VMs on the development hosts (docs/design.md). */
#define MIG_FORECAST_FIXED_MS 5.0
/* HELLO and the destination's setup before pass 1. */
#define MIG_FORECAST_SETUP_MS 20.0
/* More passes than this is a guest that never converges in practice. */
#define MIG_FORECAST_MAX_PASSES 100000

struct mig_forecast_input {
    uint64_t first_bytes; /* what pass 1 sends: the RAM that holds data */
    uint64_t ram_bytes;   /* the whole RAM: no dirty set is larger */
    double dirty_rate;    /* bytes/s the running guest dirties */
    double bandwidth;     /* bytes/s the link carries */
    double limit_ms;      /* downtime_limit_ms */
    double max_ms;        /* max_time_s in ms */
    bool auto_converge;
    bool paused; /* the VM is paused: one pass */
};

struct mig_forecast {
    double total_ms;    /* setup, passes and downtime */
    double downtime_ms; /* last pages (remaining / bandwidth) and the fixed part */
    unsigned passes;
    unsigned throttle_pct; /* auto-converge at the end */
    bool converges;        /* false: the engine would give up at max_time */
    const char *stop_reason;
};

/* Plays the passes; -EINVAL for a bandwidth that is not positive. */
int mig_forecast_run(const struct mig_forecast_input *in, struct mig_forecast *out);
/* The forecast as JSON (total_ms, downtime_ms, passes, throttle_pct,
 * converges, stop_reason). */
json_t *mig_forecast_json(const struct mig_forecast *f);

struct vm;
/* The control command "migrate_forecast" on vm (no migration may run: the
 * caller checks): measures the dirty rate unless given, plays the passes,
 * fills reply. */
int mig_forecast_command(struct vm *vm, json_t *req, json_t *reply, struct err *e);

#endif
