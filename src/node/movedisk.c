/* `tern vm move-disk ID diskN STORAGE [--delete-source]`: the task on the
 * VM's owner. A fresh volume on the new storage; a running VM's tern-vmm
 * mirrors into it and switches between two requests (move_disk,
 * docs/control.md), a stopped VM's file is copied here (data extents only);
 * then the config names the new storage. A failure removes the new volume
 * and leaves the VM on its old one. */
#include "node/movedisk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/vmconf.h"
#include "node/ctx.h"
#include "node/task.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define MiB (1024.0 * 1024.0)

struct movedisk_run {
    unsigned disk;
    char storage[TERN_NAME_MAX + 1];
    bool delete_source;
    char from[VMCONF_PATH_MAX], to[VMCONF_PATH_MAX];
    bool shared;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *last; /* the newest move-disk event, NULL when none */
    bool ended;
};

/* The process's events: the move's, and its exit. */
static void on_event(void *ctx, json_t *ev)
{
    struct movedisk_run *m = ctx;
    const char *name = json_string_value(json_object_get(ev, "event"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    bool move = name && strcmp(name, "move-disk") == 0;
    if (!move && !(name && strcmp(name, "exit") == 0))
        return;
    pthread_mutex_lock(&m->lock);
    if (move) {
        json_decref(m->last);
        m->last = json_incref(ev);
    }
    m->ended = !move || (st && strcmp(st, "active") != 0);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static json_t *wait_event(struct movedisk_run *m, bool *ended)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 1;
    pthread_mutex_lock(&m->lock);
    if (!m->ended)
        pthread_cond_timedwait(&m->cond, &m->lock, &until);
    json_t *ev = json_incref(m->last);
    *ended = m->ended;
    pthread_mutex_unlock(&m->lock);
    return ev;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* Until the tern-vmm's move ends: a progress line a second. */
static int follow(struct task *k, struct movedisk_run *m, struct err *e)
{
    bool ended = false, cancel_sent = false;
    json_t *ev = NULL;
    double shown = -1; /* copied bytes of the last line: a line per change */
    while (!ended) {
        json_decref(ev);
        ev = wait_event(m, &ended);
        if (task_cancelled(k) && !cancel_sent) {
            json_t *req = json_pack("{s:s}", "cmd", "move_disk_cancel"), *reply = NULL;
            struct err ignored;
            vmm_command(k->ctx->vmms, k->vmid, req, &reply, &ignored);
            json_decref(req);
            json_decref(reply);
            cancel_sent = true;
        }
        if (ev && !ended && num(ev, "copied") != shown && (shown = num(ev, "copied")) >= 0)
            task_log(k, "disk%u: %.1f of %.1f MiB copied, %.1f MiB/s%s", m->disk,
                     num(ev, "copied") / MiB, num(ev, "total") / MiB, num(ev, "rate") / MiB,
                     json_is_true(json_object_get(ev, "active")) ? ", synchronous" : "");
    }
    const char *st = ev ? json_string_value(json_object_get(ev, "status")) : NULL;
    int rc = 0;
    if (!st || strcmp(st, "completed") != 0)
        rc = err_set(e, EIO, "disk%u: %s", m->disk,
                     ev ? json_string_value(json_object_get(ev, "error")) ?: "failed"
                        : "tern-vmm ended during the move");
    else
        task_log(
            k,
            "disk%u: %.1f MiB copied at %.1f MiB/s, synchronous after %.2f s; switched "
            "to the new volume (writes waited %.2f ms)",
            m->disk, num(ev, "copied") / MiB, num(ev, "rate") / MiB,
            num(ev, "sync_ms") / 1e3, num(ev, "switch_ms"));
    json_decref(ev);
    return rc;
}

static int move_running(struct task *k, struct movedisk_run *m, struct err *e)
{
    json_t *req = json_pack("{s:s, s:i, s:s, s:b}", "cmd", "move_disk", "disk",
                            (int)m->disk, "path", m->to, "shared", m->shared),
           *reply = NULL;
    vmm_set_listener(k->ctx->vmms, k->vmid, on_event, m);
    int rc = vmm_command(k->ctx->vmms, k->vmid, req, &reply, e);
    json_decref(req);
    json_decref(reply);
    if (!rc)
        rc = follow(k, m, e);
    vmm_set_listener(k->ctx->vmms, k->vmid, NULL, NULL);
    if (!rc)
        vmm_set_disk(k->ctx->vmms, k->vmid, m->disk, m->to, m->shared);
    return rc;
}

/* A stopped VM: the file's data extents, holes stay holes. */
static int copy_stopped(struct task *k, struct movedisk_run *m, struct err *e)
{
    int in = open(m->from, O_RDONLY | O_CLOEXEC), out = open(m->to, O_WRONLY | O_CLOEXEC);
    struct stat st;
    int rc = in < 0 || out < 0 || fstat(in, &st) < 0
                 ? err_set(e, errno, "disk%u: %s", m->disk, strerror(errno))
                 : 0;
    uint64_t copied = 0;
    for (off_t off = 0; !rc && off < st.st_size;) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;
        off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
        for (off_t at = data; !rc && data >= 0 && hole >= 0 && at < hole;) {
            ssize_t n = copy_file_range(in, &at, out, &(off_t){at}, (size_t)(hole - at), 0);
            if (n <= 0)
                rc = err_set(e, n < 0 ? errno : EIO, "disk%u: copy: %s", m->disk,
                             strerror(n < 0 ? errno : EIO));
            copied += n > 0 ? (uint64_t)n : 0;
        }
        if (!rc && (data < 0 || hole < 0))
            rc = err_set(e, errno, "disk%u: %s", m->disk, strerror(errno));
        off = hole;
    }
    if (!rc && fdatasync(out) < 0)
        rc = err_set(e, errno, "disk%u: flush: %s", m->disk, strerror(errno));
    if (!rc)
        task_log(k, "disk%u: %.1f MiB copied (the vm is stopped)", m->disk, copied / MiB);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* The new volume: fresh, sparse, the disk's size. */
static int create_target(struct movedisk_run *m, uint64_t size, struct err *e)
{
    char dir[VMCONF_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", m->to);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    int rc = vmops_make_dirs(dir, e);
    int fd = rc ? -1 : open(m->to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (!rc && fd < 0)
        return err_set(e, errno, "disk%u: cannot create '%s': %s", m->disk, m->to,
                       errno == EEXIST ? "it exists already" : strerror(errno));
    if (!rc && ftruncate(fd, (off_t)size) < 0) {
        rc = err_set(e, errno, "disk%u: cannot size '%s': %s", m->disk, m->to,
                     strerror(errno));
        unlink(m->to);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int plan(struct task *k, struct etcd_client *c, struct movedisk_run *m,
                struct vmconf *conf, struct err *e)
{
    struct vmm_spec spec;
    struct storage_conf s;
    int rc = vmops_spec_load(c, k->vmid, k->ctx->cfg->name, &spec, e);
    if (!rc && m->disk >= spec.conf.ndisks)
        rc = err_set(e, ENOENT, "vm %u has no disk%u", k->vmid, m->disk);
    if (!rc && strcmp(spec.conf.disks[m->disk].storage, m->storage) == 0)
        rc = err_set(e, EINVAL, "vm %u: disk%u is on storage '%s' already", k->vmid,
                     m->disk, m->storage);
    if (!rc)
        rc = storage_get(c, m->storage, 0, &s, e);
    if (!rc)
        rc = storage_volume_path(&s, k->ctx->cfg->name, spec.conf.disks[m->disk].volume,
                                 m->to, e);
    if (rc)
        return rc;
    snprintf(m->from, sizeof(m->from), "%s", spec.disk[m->disk]);
    m->shared = s.shared;
    *conf = spec.conf;
    snprintf(conf->disks[m->disk].storage, sizeof(conf->disks[m->disk].storage), "%s",
             m->storage);
    task_log(k, "moving disk%u of vm %u from '%s' to storage '%s' ('%s')", m->disk, k->vmid,
             m->from, m->storage, m->to);
    return create_target(m, spec.conf.disks[m->disk].size_mib << 20, e);
}

static int move_locked(struct task *k, struct etcd_client *c, struct err *e)
{
    struct movedisk_run *m = k->arg;
    struct vmconf conf;
    int rc = plan(k, c, m, &conf, e);
    if (rc)
        return rc;
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    rc = info.present ? move_running(k, m, e) : copy_stopped(k, m, e);
    if (rc) {
        unlink(m->to);
        task_log(k, "disk%u stays on '%s'; the new volume is removed", m->disk, m->from);
        return rc;
    }
    struct err ue;
    if (vmconf_update(c, &conf, k->ctx->cfg->name, &ue) < 0) {
        /* the VM runs on the new volume; both are kept for the operator */
        return err_set(e, EIO,
                       "disk%u moved to '%s' but the config could not be updated (%s): "
                       "both volumes are kept",
                       m->disk, m->to, ue.msg);
    }
    task_log(k, "vm %u: disk%u is on storage '%s' now", k->vmid, m->disk, m->storage);
    if (m->delete_source && unlink(m->from) < 0)
        task_log(k, "cannot remove the old volume '%s': %s", m->from, strerror(errno));
    else
        task_log(k, "old volume '%s' %s", m->from,
                 m->delete_source ? "removed" : "kept (no --delete-source)");
    return 0;
}

static int run_move(struct task *k, struct err *e)
{
    struct movedisk_run *m = k->arg;
    int rc = vmops_task_locked(k, move_locked, e);
    json_decref(m->last);
    m->last = NULL;
    return rc;
}

int movedisk_start(struct node_ctx *x, uint32_t vmid, unsigned disk, const char *storage,
                   bool delete_source, char id[TASK_ID_MAX], struct err *e)
{
    struct movedisk_run *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->disk = disk;
    snprintf(m->storage, sizeof(m->storage), "%s", storage);
    m->delete_source = delete_source;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    int rc = task_start(x->tasks, x, "move-disk", vmid, run_move, m, id, e);
    if (rc)
        free(m);
    return rc;
}
