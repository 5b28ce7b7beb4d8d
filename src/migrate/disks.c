/* Local disks in a live migration, source side: a mirror per disk that is
 * not shared, to the destination's NBD exports (disk0..disk7). The disks
 * reach sync (active mode) before the RAM pre-copy begins; the last dirty
 * blocks and a flush of the target go inside the pause (`disks_ms` of the
 * downtime); any failure before the commit leaves the source as it was
 * (docs/design.md, invariant 4). */
#include "migrate/disks.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/opts.h"
#include "migrate/repl.h"
#include "vmm/vm.h"

void mig_disks_init(struct mig_disks *d)
{
    memset(d, 0, sizeof(*d));
}

static void tick_cb(void *ctx)
{
    struct mig_disks *d = ctx;
    double now = clock_mono_ms();
    if (now - d->last_tick_ms < 250) /* figures, not a flood of events */
        return;
    d->last_tick_ms = now;
    if (d->progress)
        d->progress(d->progress_ctx);
}

static int open_all(struct mig_disks *d, struct vm *vm, const char *uri, struct err *e)
{
    for (unsigned i = 0; i < vm->ndisks; i++) {
        if (vm->disk[i].shared || vm->disk[i].readonly)
            continue;
        char name[16];
        snprintf(name, sizeof(name), "disk%u", i);
        struct mirror *m = &d->m[d->n++];
        int rc = mirror_open(m, &vm->disk[i], name, uri, e);
        m->tick = tick_cb;
        m->tick_ctx = d;
        if (!rc)
            rc = d->delta ? repl_seed(m, i, e) : mirror_seed(m, e);
        if (rc)
            return rc;
        atomic_store(&d->shown, d->n);
        log_info("migrate", "%s: mirror to %s, %llu bytes allocated", name, uri,
                 (unsigned long long)m->fig.total);
    }
    return 0;
}

static void tick(struct mig_disks *d)
{
    if (d->progress)
        d->progress(d->progress_ctx);
}

static int sync_one(struct mig_disks *d, struct mirror *m, const _Atomic bool *cancel,
                    struct err *e)
{
    int rc = mirror_sync(m, cancel, e);
    tick(d);
    struct mirror_fig f;
    if (!rc) {
        mirror_figures(m, &f);
        log_info("migrate",
                 "%s: synchronous after %.0f ms, %u passes, %llu bytes copied (%.1f MiB/s)",
                 f.name, f.sync_ms, f.passes, (unsigned long long)f.copied,
                 f.rate / 1048576);
    }
    return rc;
}

int mig_disks_sync(struct mig_disks *d, struct vm *vm, const char *uri,
                   const _Atomic bool *cancel, struct err *e)
{
    d->t0 = clock_mono_ms();
    int rc = open_all(d, vm, uri, e);
    /* one after the other: they share the link, and a disk in active mode
     * costs the guest a round trip per write, so the first waits least */
    for (unsigned i = 0; !rc && i < d->n; i++)
        rc = sync_one(d, &d->m[i], cancel, e);
    if (!rc && d->n)
        test_hold("disks-synced");
    return rc;
}

int mig_disks_check(struct mig_disks *d, struct err *e)
{
    int rc = 0;
    for (unsigned i = 0; !rc && i < d->n; i++)
        rc = mirror_check(&d->m[i], e);
    return rc;
}

int mig_disks_final(struct mig_disks *d, struct err *e)
{
    double t = clock_mono_ms();
    int rc = 0;
    for (unsigned i = 0; !rc && i < d->n; i++)
        rc = mirror_finish(&d->m[i], e);
    d->final_ms = clock_mono_ms() - t;
    return rc;
}

void mig_disks_close(struct mig_disks *d)
{
    for (unsigned i = 0; i < d->n; i++)
        mirror_close(&d->m[i]);
}

json_t *mig_disks_json(struct mig_disks *d)
{
    json_t *a = json_array();
    unsigned n = atomic_load(&d->shown);
    for (unsigned i = 0; i < n; i++) {
        struct mirror_fig f;
        mirror_figures(&d->m[i], &f);
        json_array_append_new(
            a, json_pack("{s:s, s:I, s:I, s:I, s:i, s:f, s:b, s:f, s:I}", "name", f.name,
                         "total", (json_int_t)f.total, "copied", (json_int_t)f.copied,
                         "dirty", (json_int_t)f.dirty, "passes", (int)f.passes, "rate",
                         f.rate, "active", f.active, "sync_ms", f.sync_ms, "active_writes",
                         (json_int_t)f.active_writes));
    }
    return a;
}
