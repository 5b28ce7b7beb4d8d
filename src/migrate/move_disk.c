/* move_disk: a running VM's disk moves to another image file of this host
 * (another storage) with the mirror of a migration (storage/mirror.h): the
 * allocated blocks, the dirty passes, active mode; then the disk switches
 * to the new file between two requests (virtio_blk_switch), with no pause
 * of the vCPUs. One job at a time; progress and the end come as
 * "move-disk" events (docs/control.md). */
#include "migrate/move_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/jsonf.h"
#include "common/log.h"
#include "storage/mirror.h"

struct move_job {
    struct monitor *mon;
    unsigned disk;
    char path[512];
    bool shared;
    int fd;
    pthread_t thread;
    _Atomic bool busy; /* a job runs (or is not joined yet) */
    bool joinable;
    _Atomic bool cancel;
    struct mirror m;
    double last_tick_ms;
};

static struct move_job job = {.fd = -1};

static void post(struct move_job *j, const char *status, const char *error,
                 double switch_ms)
{
    struct mirror_fig f;
    mirror_figures(&j->m, &f);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:f, s:b, s:f}", "status",
                           status, "disk", f.name, "path", j->path, "total",
                           (json_int_t)f.total, "copied", (json_int_t)f.copied, "dirty",
                           (json_int_t)f.dirty, "passes", (int)f.passes, "rate", f.rate,
                           "active", f.active, "sync_ms", f.sync_ms);
    if (error)
        json_object_set_new(ev, "error", json_string(error));
    if (switch_ms >= 0)
        json_object_set_new(ev, "switch_ms", json_real(switch_ms));
    monitor_post_event(j->mon, "move-disk", ev);
}

static void tick(void *ctx)
{
    struct move_job *j = ctx;
    double now = clock_mono_ms();
    if (now - j->last_tick_ms < 250)
        return;
    j->last_tick_ms = now;
    post(j, "active", NULL, -1);
}

static int run(struct move_job *j, double *switch_ms, struct err *e)
{
    struct virtio_blk *blk = &j->mon->vm.disk[j->disk];
    char name[16];
    snprintf(name, sizeof(name), "disk%u", j->disk);
    int rc = mirror_open_file(&j->m, blk, name, j->fd, e);
    j->m.tick = tick;
    j->m.tick_ctx = j;
    if (!rc)
        rc = mirror_seed(&j->m, e);
    if (!rc)
        rc = mirror_sync(&j->m, &j->cancel, e);
    if (!rc && atomic_load(&j->cancel))
        rc = err_set(e, ECANCELED, "move cancelled");
    if (!rc) /* what active mode wrote since: the flush at the switch is short */
        rc = mirror_flush(&j->m, e);
    if (!rc)
        rc = virtio_blk_switch(blk, j->fd, j->path, j->shared, switch_ms, e);
    return rc;
}

static void *move_thread(void *arg)
{
    struct move_job *j = arg;
    struct err e = {""};
    double switch_ms = -1;
    int rc = run(j, &switch_ms, &e);
    mirror_close(&j->m);
    close(j->fd); /* after a switch the disk has its own descriptor of it */
    j->fd = -1;
    if (rc)
        log_error("vmm", "move of disk%u to '%s' failed: %s", j->disk, j->path, e.msg);
    else
        log_info("vmm", "disk%u now on '%s' (writes waited %.2f ms at the switch)", j->disk,
                 j->path, switch_ms);
    post(j, rc ? "failed" : "completed", rc ? e.msg : NULL, switch_ms);
    atomic_store(&j->busy, false);
    return NULL;
}

/* The new image: a regular file of the disk's size that no one else has
 * open for writing (the OFD lock, as every image). */
static int open_target(struct move_job *j, struct virtio_blk *blk, struct err *e)
{
    int fd = open(j->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "move_disk: '%s': %s", j->path, strerror(errno));
    struct stat st;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = err_set(e, EINVAL, "move_disk: '%s' is not a regular file", j->path);
    else if ((uint64_t)st.st_size != blk->capacity * 512)
        rc = err_set(e, EINVAL, "move_disk: '%s' has %lld bytes, disk%u %llu", j->path,
                     (long long)st.st_size, j->disk,
                     (unsigned long long)(blk->capacity * 512));
    else if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
        rc = err_set(e, EBUSY, "move_disk: '%s' is in use by another process (locked)",
                     j->path);
    if (rc)
        close(fd);
    else
        j->fd = fd;
    return rc;
}

static int parse(struct move_job *j, struct monitor *mon, json_t *req, struct err *e)
{
    static const char *const known[] = {"cmd", "id", "disk", "path", "shared", NULL};
    const char *key = jsonf_unknown_key(req, known), *path = NULL;
    uint64_t disk = 0;
    if (key)
        return err_set(e, EINVAL, "unknown parameter '%s'", key);
    int rc = jsonf_uint(req, "disk", true, 0, 7, &disk, NULL, e);
    if (!rc)
        rc = jsonf_string(req, "path", true, &path, NULL, e);
    j->shared = false;
    if (!rc)
        rc = jsonf_bool(req, "shared", false, &j->shared, NULL, e);
    if (rc)
        return rc;
    if (disk >= mon->vm.ndisks)
        return err_set(e, EINVAL, "move_disk: the vm has no disk%llu",
                       (unsigned long long)disk);
    if (path[0] != '/' || strlen(path) >= sizeof(j->path))
        return err_set(e, EINVAL, "move_disk: 'path' must be an absolute path");
    if (mon->vm.disk[disk].readonly)
        return err_set(e, EINVAL, "move_disk: disk%llu is read-only",
                       (unsigned long long)disk);
    j->disk = (unsigned)disk;
    snprintf(j->path, sizeof(j->path), "%s", path);
    return 0;
}

int move_disk_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *mon = ctl->ctx;
    (void)reply;
    if (atomic_load(&job.busy))
        return err_set(e, EBUSY, "move_disk: a move is already running");
    if (job.joinable)
        pthread_join(job.thread, NULL);
    job.joinable = false;
    job.mon = mon;
    int rc = parse(&job, mon, req, e);
    if (!rc)
        rc = open_target(&job, &mon->vm.disk[job.disk], e);
    if (rc)
        return rc;
    atomic_store(&job.cancel, false);
    atomic_store(&job.busy, true);
    job.last_tick_ms = 0;
    rc = pthread_create(&job.thread, NULL, move_thread, &job);
    if (rc) {
        atomic_store(&job.busy, false);
        close(job.fd);
        job.fd = -1;
        return err_set(e, rc, "move_disk: thread: %s", strerror(rc));
    }
    job.joinable = true;
    return 0;
}

int move_disk_cancel_command(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    (void)req;
    (void)reply;
    if (!atomic_load(&job.busy))
        return err_set(e, ENOENT, "move_disk: no move is running");
    atomic_store(&job.cancel, true);
    return 0;
}

bool move_disk_busy(void)
{
    return atomic_load(&job.busy);
}

void move_disk_stop(void)
{
    atomic_store(&job.cancel, true);
    if (job.joinable)
        pthread_join(job.thread, NULL);
    job.joinable = false;
}
