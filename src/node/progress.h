/* The figures an operator sees of a running migration, worked out by ternd
 * from tern-vmm's events: tern-vmm reports the bandwidth of a finished
 * pass only (0 all through the first, usually the longest), and its bytes
 * count every pass, so they pass the size of the RAM. */
#ifndef TERN_NODE_PROGRESS_H
#define TERN_NODE_PROGRESS_H

#include <jansson.h>
#include <stdint.h>

struct progress_meter {
    uint64_t t_ns; /* of the last sample */
    double sent;   /* bytes sent at the last sample */
    double rate;   /* bytes/s, smoothed */
    double done;   /* share of the job done so far, 0..1, never falls */
};

void progress_meter_init(struct progress_meter *pm);
/* One event of the source tern-vmm ("migration", status active) at now_ns:
 * returns the task's progress object, or NULL when out of memory:
 * {"total", "transferred", "remaining", "rate", "dirty_rate", "pass",
 *  "throttle_pct", "percent", "eta_s", "ram_ratio", "expected_downtime_ms"}
 * and, while local disks are mirrored, "disks": [{"name", "total", "done",
 * "copied", "rate", "synced", "active", "percent"}]. eta_s is null until a
 * rate is known. */
json_t *progress_meter_update(struct progress_meter *pm, const json_t *ev, uint64_t now_ns);
/* The log line of it: "pass 2: 97% done, 344.4 MiB sent (1.3× the RAM
 * after 2 passes), 8.0 MiB left, 610.3 MiB/s, dirty 1.2 MiB/s, throttle 0%,
 * eta 1 s". */
void progress_line(const json_t *p, char *out, size_t size);

#endif
