/* A replication sync (docs/replication.md): the blocks written since the
 * last sync (or, for a full one, every allocated block) go to the replica's
 * side file on the target over NBD with the mirror of a migration
 * (storage/mirror.h): passes, then active mode on every disk, until the
 * target equals the disks. Then, under every disk's lock at once, active
 * mode ends and the replication bitmaps are cleared: that instant is the
 * replica's point in time, the same for all disks. A flush and NBD_CMD_DISC
 * follow, on which tern-replica swaps the side files in. */
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/jsonf.h"
#include "common/log.h"
#include "migrate/repl.h"
#include "migrate/repl_state.h"

static uint64_t popcount(const uint64_t *w, uint64_t n)
{
    uint64_t c = 0;
    for (uint64_t i = 0; i < n; i++)
        c += (uint64_t)__builtin_popcountll(w[i]);
    return c;
}

/* Takes the bits to copy out of the replication bitmap: a guest write from
 * now on marks them again. */
static int take_bits(struct repl_disk *r, struct blk_dirty *d, bool full)
{
    uint64_t words = replbm_words(r->bm.nbits);
    r->snap = malloc(words * 8);
    if (!r->snap)
        return -ENOMEM;
    pthread_mutex_lock(&d->lock);
    memcpy(r->snap, d->repl, words * 8);
    memset(d->repl, 0, words * 8);
    d->repl_count = 0;
    if (!full) {
        blk_dirty_fill_locked(d, false);
        memcpy(d->bits, r->snap, words * 8);
        d->count = popcount(d->bits, words);
        r->m.fig.total = d->count << d->shift;
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* A sync that failed before its point in time: the bits go back. */
static void give_back(struct repl_disk *r, struct blk_dirty *d)
{
    uint64_t words = replbm_words(r->bm.nbits);
    pthread_mutex_lock(&d->lock);
    for (uint64_t i = 0; i < words; i++)
        d->repl[i] |= r->snap[i];
    d->repl_count = popcount(d->repl, words);
    pthread_mutex_unlock(&d->lock);
}

/* One disk up to active mode with nothing dirty. */
static int sync_disk(struct repl_disk *r, unsigned i, struct err *e)
{
    struct virtio_blk *blk = &repl_state.mon->vm.disk[i];
    char name[8];
    snprintf(name, sizeof(name), "disk%u", i);
    int rc = mirror_open(&r->m, blk, name, repl_state.uri, e);
    if (!rc && take_bits(r, &blk->dirty, repl_state.full))
        rc = err_set(e, ENOMEM, "disk%u: out of memory for the sync", i);
    if (!rc && repl_state.full)
        rc = mirror_seed(&r->m, e);
    return rc ? rc : mirror_sync(&r->m, &repl_state.cancel, e);
}

/* The point in time: every disk still in sync, then all leave active mode
 * and their replication bitmaps restart empty, under all the locks. */
static int freeze(struct err *e)
{
    int rc = 0;
    unsigned i;
    struct vm *vm = &repl_state.mon->vm;
    for (i = 0; i < VM_MAX_DISKS; i++)
        if (repl_state.disk[i].attached)
            pthread_mutex_lock(&vm->disk[i].dirty.lock);
    for (i = 0; i < VM_MAX_DISKS && !rc; i++) {
        struct blk_dirty *d = &vm->disk[i].dirty;
        if (repl_state.disk[i].attached &&
            (d->active_ctx != &repl_state.disk[i].m || d->count || d->active_error))
            rc = err_set(e, EIO, "disk%u: not in sync with its replica at the end", i);
    }
    for (i = 0; i < VM_MAX_DISKS; i++) {
        struct blk_dirty *d = &vm->disk[i].dirty;
        if (!repl_state.disk[i].attached)
            continue;
        if (!rc) {
            d->active = NULL;
            d->active_ctx = NULL;
            memset(d->repl, 0, replbm_words(repl_state.disk[i].bm.nbits) * 8);
            d->repl_count = 0;
        }
        pthread_mutex_unlock(&d->lock);
    }
    return rc;
}

static json_t *disk_figures(struct repl_disk *r, uint64_t *bytes)
{
    struct mirror_fig f;
    if (!r->m.blk) /* the sync failed before this disk */
        return json_null();
    mirror_figures(&r->m, &f);
    *bytes += f.copied + f.active_bytes;
    return json_pack("{s:s, s:I, s:I, s:I}", "disk", f.name, "total", (json_int_t)f.total,
                     "copied", (json_int_t)f.copied, "active_bytes",
                     (json_int_t)f.active_bytes);
}

/* Every disk synchronous, the point in time, the flush; *frozen once the
 * bitmaps were cleared (a failure after it makes the next sync full). */
static int run(bool *frozen, struct err *e)
{
    int rc = 0;
    for (unsigned i = 0; i < VM_MAX_DISKS && !rc; i++)
        if (repl_state.disk[i].attached)
            rc = sync_disk(&repl_state.disk[i], i, e);
    if (!rc)
        rc = freeze(e);
    *frozen = !rc;
    for (unsigned i = 0; i < VM_MAX_DISKS && !rc; i++)
        if (repl_state.disk[i].attached) /* what active mode wrote since its flush */
            rc = mirror_flush(&repl_state.disk[i].m, e);
    return rc;
}

static void finish(int rc, bool frozen, const char *error, double ms)
{
    uint64_t bytes = 0;
    json_t *disks = json_array();
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        struct repl_disk *r = &repl_state.disk[i];
        if (!r->attached)
            continue;
        json_array_append_new(disks, disk_figures(r, &bytes));
        if (rc && !frozen && r->snap)
            give_back(r, &repl_state.mon->vm.disk[i].dirty);
        if (rc && frozen)
            atomic_store(&r->full, true);
        if (rc && r->m.nbd) { /* hang up without NBD_CMD_DISC: no commit */
            nbd_close(r->m.nbd);
            r->m.nbd = NULL;
        }
        mirror_close(&r->m); /* after a success NBD_CMD_DISC: the target commits */
        free(r->snap);
        r->snap = NULL;
        pthread_mutex_lock(&repl_state.lock);
        if (!rc) {
            atomic_store(&r->full, false);
            r->bm.syncs++;
            r->bm.last_sync_ms = clock_real_ns() / 1000000;
        }
        pthread_mutex_unlock(&repl_state.lock);
    }
    json_t *ev = json_pack("{s:s, s:b, s:I, s:f, s:o}", "status",
                           rc ? "failed" : "completed", "full", repl_state.full, "bytes",
                           (json_int_t)bytes, "ms", ms, "disks", disks);
    if (rc)
        json_object_set_new(ev, "error", json_string(error));
    pthread_mutex_lock(&repl_state.lock);
    json_decref(repl_state.last);
    repl_state.last = json_deep_copy(ev);
    pthread_mutex_unlock(&repl_state.lock);
    if (rc)
        log_error("vmm", "replication sync failed: %s", error);
    else
        log_info("vmm", "replication sync done: %llu bytes in %.0f ms%s",
                 (unsigned long long)bytes, ms, repl_state.full ? " (full)" : "");
    monitor_post_event(repl_state.mon, "repl-sync", ev);
}

static void *sync_thread(void *arg)
{
    (void)arg;
    struct err e = {""};
    bool frozen = false;
    double t0 = clock_mono_ms();
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) { /* nothing of the last sync */
        memset(&repl_state.disk[i].m, 0, sizeof(repl_state.disk[i].m));
        repl_state.disk[i].m.tfd = -1;
    }
    int rc = run(&frozen, &e);
    finish(rc, frozen, e.msg, clock_mono_ms() - t0);
    atomic_store(&repl_state.busy, false);
    return NULL;
}

static int parse(json_t *req, struct err *e)
{
    static const char *const known[] = {"cmd", "id", "uri", "full", NULL};
    const char *key = jsonf_unknown_key(req, known), *uri = NULL;
    if (key)
        return err_set(e, EINVAL, "unknown parameter '%s'", key);
    int rc = jsonf_string(req, "uri", true, &uri, NULL, e);
    repl_state.full = false;
    if (!rc)
        rc = jsonf_bool(req, "full", false, &repl_state.full, NULL, e);
    if (rc)
        return rc;
    if (strlen(uri) >= sizeof(repl_state.uri))
        return err_set(e, EINVAL, "repl_sync: 'uri' is too long");
    snprintf(repl_state.uri, sizeof(repl_state.uri), "%s", uri);
    unsigned n = 0;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        struct repl_disk *r = &repl_state.disk[i];
        n += r->attached;
        if (r->attached && atomic_load(&r->full) && !repl_state.full)
            return err_set(e, EINVAL,
                           "repl_sync: disk%u needs a full sync ('full': true): its bitmap "
                           "is not valid",
                           i);
    }
    return n ? 0 : err_set(e, ENOENT, "repl_sync: no disk of this vm is replicated");
}

int repl_sync_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)reply;
    if (atomic_load(&repl_state.busy))
        return err_set(e, EBUSY, "repl_sync: a sync is already running");
    if (vm_handed_over(&m->vm))
        return err_set(e, EBUSY, "repl_sync: the vm is migrating");
    if (repl_state.joinable)
        pthread_join(repl_state.thread, NULL);
    repl_state.joinable = false;
    int rc = parse(req, e);
    if (rc)
        return rc;
    atomic_store(&repl_state.cancel, false);
    atomic_store(&repl_state.busy, true);
    rc = pthread_create(&repl_state.thread, NULL, sync_thread, NULL);
    if (rc) {
        atomic_store(&repl_state.busy, false);
        return err_set(e, rc, "repl_sync: thread: %s", strerror(rc));
    }
    repl_state.joinable = true;
    return 0;
}

void repl_sync_stop(void)
{
    atomic_store(&repl_state.cancel, true);
    if (repl_state.joinable)
        pthread_join(repl_state.thread, NULL);
    repl_state.joinable = false;
}
