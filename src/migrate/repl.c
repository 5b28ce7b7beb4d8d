/* The persistent replication bitmaps of tern-vmm (migrate/repl.h,
 * docs/replication.md): loaded at start, marked by every guest write
 * (blk_dirty.repl), saved clean only at a clean stop. The sync itself is in
 * repl_sync.c. */
#include "migrate/repl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonf.h"
#include "common/log.h"
#include "migrate/repl_state.h"

struct repl_state repl_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

int repl_set_bitmap(unsigned disk, const char *path)
{
    struct repl_disk *r = &repl_state.disk[disk];
    if (disk >= VM_MAX_DISKS || path[0] != '/' || strlen(path) >= sizeof(r->path))
        return -EINVAL;
    snprintf(r->path, sizeof(r->path), "%s", path);
    return 0;
}

/* Why the file cannot say what changed since the last sync (in why,
 * naming the file), or false when it can. */
static bool invalid(struct repl_disk *r, int rc, const struct blk_dirty *d, const char *msg,
                    char *why, size_t cap)
{
    const char *reason = NULL;
    if (rc == -ENOENT)
        reason = "no bitmap yet";
    else if (rc)
        snprintf(why, cap, "%s", msg); /* names the file already */
    else if (r->bm.size != d->size || r->bm.shift != d->shift)
        reason = "it is of another disk size or granularity";
    else if (!r->bm.clean)
        reason = "it was not saved cleanly (tern-vmm did not stop cleanly)";
    if (reason)
        snprintf(why, cap, "replication bitmap '%.400s': %s", r->path, reason);
    return rc || reason;
}

/* A bitmap file that is an image of the VM, or another disk's bitmap,
 * would be overwritten by the other: refused. */
static int check_path(struct monitor *m, unsigned i, struct err *e)
{
    const char *path = repl_state.disk[i].path;
    struct stat bm, img;
    bool exists = stat(path, &bm) == 0;
    for (unsigned j = 0; j < m->vm.ndisks; j++) {
        bool same = strcmp(path, m->vm.disk[j].path) == 0 ||
                    (exists && fstat(m->vm.disk[j].fd, &img) == 0 &&
                     img.st_dev == bm.st_dev && img.st_ino == bm.st_ino);
        if (same)
            return err_set(e, EINVAL,
                           "disk%u: replication bitmap '%s' is the image of disk%u", i,
                           path, j);
        if (j != i && repl_state.disk[j].path[0] &&
            strcmp(path, repl_state.disk[j].path) == 0)
            return err_set(e, EINVAL, "disk%u: replication bitmap '%s' is disk%u's too", i,
                           path, j);
    }
    return 0;
}

static int attach(struct repl_disk *r, unsigned i, struct blk_dirty *d, struct err *e)
{
    struct err le = {""};
    char why[sizeof(le.msg) + 64];
    int rc = replbm_load(r->path, &r->bm, &le);
    if (invalid(r, rc, d, le.msg, why, sizeof(why))) {
        uint64_t syncs = rc ? 0 : r->bm.syncs, last = rc ? 0 : r->bm.last_sync_ms;
        replbm_release(&r->bm);
        if (replbm_init(&r->bm, d->size, d->shift))
            return err_set(e, ENOMEM, "disk%u: replication bitmap: out of memory", i);
        r->bm.syncs = syncs;
        r->bm.last_sync_ms = last;
        atomic_store(&r->full, true);
        log_warn("vmm", "disk%u: %s: the next sync is full", i, why);
    }
    /* from here on a crash must invalidate it: the file says so before
     * the guest can write */
    r->bm.clean = false;
    rc = replbm_save(r->path, &r->bm, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&d->lock);
    d->repl = r->bm.bits;
    d->repl_count = r->bm.count;
    pthread_mutex_unlock(&d->lock);
    r->attached = true;
    log_info("vmm", "disk%u: replication bitmap '%s': %llu bytes to sync%s", i, r->path,
             (unsigned long long)(r->bm.count << r->bm.shift),
             atomic_load(&r->full) ? " (full sync)" : "");
    return 0;
}

int repl_start(struct monitor *m, struct err *e)
{
    repl_state.mon = m;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        struct repl_disk *r = &repl_state.disk[i];
        if (!r->path[0])
            continue;
        if (i >= m->vm.ndisks)
            return err_set(e, EINVAL, "disk%u: a replication bitmap for a missing disk", i);
        int rc = check_path(m, i, e);
        if (!rc)
            rc = attach(r, i, &m->vm.disk[i].dirty, e);
        if (rc)
            return rc;
    }
    return 0;
}

void repl_stop(struct monitor *m)
{
    repl_sync_stop();
    enum vm_exit_reason why = m->vm.exit_reason;
    bool clean = why == VM_EXIT_POWEROFF || why == VM_EXIT_QUIT || why == VM_EXIT_CRASH;
    if (clean) /* no guest write may come after the bitmap is saved */
        vm_stop(&m->vm);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        struct repl_disk *r = &repl_state.disk[i];
        if (!r->attached)
            continue;
        struct blk_dirty *d = &m->vm.disk[i].dirty;
        struct err e = {""};
        pthread_mutex_lock(&d->lock);
        d->repl = NULL;
        r->bm.count = d->repl_count;
        pthread_mutex_unlock(&d->lock);
        r->attached = false;
        /* a pending full sync stays pending: the file stays "not clean" */
        r->bm.clean = clean && !atomic_load(&r->full);
        if (replbm_save(r->path, &r->bm, &e))
            log_error("vmm", "disk%u: %s", i, e.msg);
        else if (clean)
            log_info("vmm", "disk%u: replication bitmap saved (%llu bytes to sync)", i,
                     (unsigned long long)(r->bm.count << r->bm.shift));
        replbm_release(&r->bm);
    }
}

static json_t *disk_status(struct repl_disk *r, unsigned i, struct blk_dirty *d)
{
    pthread_mutex_lock(&d->lock);
    uint64_t dirty = d->repl_count << d->shift;
    pthread_mutex_unlock(&d->lock);
    char name[8];
    snprintf(name, sizeof(name), "disk%u", i);
    pthread_mutex_lock(&repl_state.lock);
    json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:I, s:I}", "disk", name, "bitmap", r->path,
                          "dirty_bytes", (json_int_t)dirty, "full_needed",
                          atomic_load(&r->full), "syncs", (json_int_t)r->bm.syncs,
                          "last_sync_ms", (json_int_t)r->bm.last_sync_ms);
    pthread_mutex_unlock(&repl_state.lock);
    return o;
}

int repl_status_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)req;
    (void)e;
    json_t *disks = json_array();
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (repl_state.disk[i].attached)
            json_array_append_new(
                disks, disk_status(&repl_state.disk[i], i, &m->vm.disk[i].dirty));
    json_object_set_new(reply, "disks", disks);
    json_object_set_new(reply, "busy", json_boolean(atomic_load(&repl_state.busy)));
    pthread_mutex_lock(&repl_state.lock);
    json_object_set_new(reply, "last",
                        repl_state.last ? json_deep_copy(repl_state.last) : json_null());
    pthread_mutex_unlock(&repl_state.lock);
    return 0;
}

int repl_invalidate_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    (void)req;
    (void)reply;
    if (atomic_load(&repl_state.busy))
        return err_set(e, EBUSY, "repl_invalidate: a sync is running");
    unsigned n = 0;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (repl_state.disk[i].attached) {
            atomic_store(&repl_state.disk[i].full, true);
            n++;
        }
    if (n == 0)
        return err_set(e, ENOENT, "repl_invalidate: no disk of this vm is replicated");
    log_info("vmm", "replication: the next sync is full (invalidated)");
    return 0;
}

int repl_seed(struct mirror *m, unsigned disk, struct err *e)
{
    struct repl_disk *r = &repl_state.disk[disk];
    struct blk_dirty *d = &m->blk->dirty;
    if (disk >= VM_MAX_DISKS || !r->attached || atomic_load(&r->full))
        return err_set(e, EINVAL,
                       "disk%u: no valid replication bitmap: the delta to its replica is "
                       "not known",
                       disk);
    uint64_t words = replbm_words(r->bm.nbits);
    pthread_mutex_lock(&d->lock);
    blk_dirty_fill_locked(d, false);
    memcpy(d->bits, d->repl, words * 8);
    d->count = 0;
    for (uint64_t i = 0; i < words; i++)
        d->count += (uint64_t)__builtin_popcountll(d->bits[i]);
    m->fig.total = d->count << d->shift;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* Prefixes a refusal with the command's name. */
static int refused(const char *cmd, int rc, struct err *e)
{
    char why[sizeof(e->msg)];
    snprintf(why, sizeof(why), "%s", e->msg);
    return err_set(e, -rc, "%s: %s", cmd, why);
}

static int disk_param(json_t *req, const char *const known[], uint64_t *disk, struct err *e)
{
    const char *key = jsonf_unknown_key(req, known);
    if (key)
        return err_set(e, EINVAL, "unknown parameter '%s'", key);
    int rc = jsonf_uint(req, "disk", true, 0, VM_MAX_DISKS - 1, disk, NULL, e);
    if (!rc && *disk >= repl_state.mon->vm.ndisks)
        rc = err_set(e, EINVAL, "the vm has no disk%llu", (unsigned long long)*disk);
    if (!rc && atomic_load(&repl_state.busy))
        rc = err_set(e, EBUSY, "a sync is running");
    return rc;
}

/* A running VM's disk becomes replicated: the writes before now were not
 * tracked, so its first sync is full whatever the file says. */
int repl_attach_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    static const char *const known[] = {"cmd", "id", "disk", "bitmap", NULL};
    struct monitor *m = ctl->ctx;
    const char *path = NULL;
    uint64_t i = 0;
    (void)reply;
    int rc = disk_param(req, known, &i, e);
    if (!rc)
        rc = jsonf_string(req, "bitmap", true, &path, NULL, e);
    if (!rc && repl_state.disk[i].attached)
        rc = err_set(e, EEXIST, "disk%llu is replicated already", (unsigned long long)i);
    if (!rc && repl_set_bitmap((unsigned)i, path))
        rc = err_set(e, EINVAL, "'bitmap' must be an absolute path");
    if (rc)
        return refused("repl_attach", rc, e);
    atomic_store(&repl_state.disk[i].full, true);
    rc = check_path(m, (unsigned)i, e);
    if (!rc)
        rc = attach(&repl_state.disk[i], (unsigned)i, &m->vm.disk[i].dirty, e);
    if (rc)
        repl_state.disk[i].path[0] = '\0';
    return rc;
}

/* The disk is no longer replicated: its bitmap file goes. */
int repl_detach_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    static const char *const known[] = {"cmd", "id", "disk", NULL};
    struct monitor *m = ctl->ctx;
    uint64_t i = 0;
    (void)reply;
    int rc = disk_param(req, known, &i, e);
    struct repl_disk *r = &repl_state.disk[i];
    if (!rc && !r->attached)
        rc = err_set(e, ENOENT, "disk%llu is not replicated", (unsigned long long)i);
    if (rc)
        return refused("repl_detach", rc, e);
    struct blk_dirty *d = &m->vm.disk[i].dirty;
    pthread_mutex_lock(&d->lock);
    d->repl = NULL;
    pthread_mutex_unlock(&d->lock);
    r->attached = false;
    replbm_release(&r->bm);
    if (unlink(r->path) < 0 && errno != ENOENT)
        log_warn("vmm", "disk%llu: cannot remove '%s': %s", (unsigned long long)i, r->path,
                 strerror(errno));
    log_info("vmm", "disk%llu: no longer replicated", (unsigned long long)i);
    r->path[0] = '\0';
    return 0;
}

const struct control_command repl_commands[] = {
    {"repl_sync", repl_sync_command},
    {"repl_status", repl_status_command},
    {"repl_invalidate", repl_invalidate_command},
    {"repl_attach", repl_attach_command},
    {"repl_detach", repl_detach_command},
    {NULL, NULL},
};
