/* Local disks in `tern vm migrate`: the pre-check (refused without
 * --with-local-disks, with the hint) and what each disk will copy. A disk
 * is named disk0..disk7 after its index in the VM config, here as in the
 * CLI, the API and the task log. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "node/ctx.h"
#include "node/migtask.h"
#include "node/task.h"

int migtask_disk_allocated(const char *path, uint64_t *bytes, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "disk '%s': %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) ? err_set(e, errno, "disk '%s': %s", path, strerror(errno)) : 0;
    *bytes = 0;
    /* the same walk the mirror makes (storage/mirror.c): data extents only */
    for (off_t off = 0; !rc && off < st.st_size;) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;
        off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
        if (data < 0 || hole < 0)
            rc = err_set(e, errno, "disk '%s': %s", path, strerror(errno));
        else {
            *bytes += (uint64_t)(hole - data);
            off = hole;
        }
    }
    close(fd);
    return rc;
}

static void mib_text(uint64_t bytes, char *out, size_t size)
{
    snprintf(out, size, "%.1f MiB", (double)bytes / (1 << 20));
}

/* "disk0 on 'local': 12.0 MiB allocated of 64 MiB; ..." into detail. */
static int local_plan(struct migtask_plan *p, char *detail, size_t size, struct err *e)
{
    size_t n = 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < p->spec.conf.ndisks; i++) {
        if (p->spec.shared[i])
            continue;
        int rc = migtask_disk_allocated(p->spec.disk[i], &p->disk_bytes[i], e);
        if (rc)
            return rc;
        char alloc[32];
        mib_text(p->disk_bytes[i], alloc, sizeof(alloc));
        total += p->disk_bytes[i];
        if (n < size)
            n += (size_t)snprintf(detail + n, size - n,
                                  "%sdisk%u on '%s': %s allocated of %llu MiB",
                                  n ? "; " : "", i, p->spec.conf.disks[i].storage, alloc,
                                  (unsigned long long)p->spec.conf.disks[i].size_mib);
    }
    char all[32];
    mib_text(total, all, sizeof(all));
    if (n < size)
        snprintf(detail + n, size - n, "; %s to copy to node '%s'", all, p->target);
    return 0;
}

static int refuse(char *detail, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(char *detail, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, size, fmt, ap);
    va_end(ap);
    return rc;
}

int migtask_disks_check(struct migtask_plan *p, char *detail, size_t size, struct err *e)
{
    int first = -1;
    for (unsigned i = 0; i < p->spec.conf.ndisks && first < 0; i++)
        if (!p->spec.shared[i])
            first = (int)i;
    if (first < 0)
        return refuse(detail, size, 0, "%u disk(s), all on shared storage",
                      p->spec.conf.ndisks);
    const char *storage = p->spec.conf.disks[first].storage;
    if (!p->with_local_disks)
        return refuse(detail, size, -EPERM,
                      "vm %u: disk%d is on storage '%s', which is not shared: "
                      "add --with-local-disks to copy it to node '%s'",
                      p->vmid, first, storage, p->target);
    int rc = local_plan(p, detail, size, e);
    return rc ? refuse(detail, size, rc, "%s", e->msg) : 0;
}

unsigned migtask_disks_local(const struct migtask_plan *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->spec.conf.ndisks; i++)
        n += !p->spec.shared[i];
    return n;
}

static double jnum(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* "disk0: 12.0 of 36.0 MiB copied, 610.2 MiB/s, eta 0 s, pass 1" */
static void log_copying(struct task *k, json_t *d)
{
    double total = jnum(d, "total"), copied = jnum(d, "copied"), rate = jnum(d, "rate");
    double left = total > copied ? total - copied : jnum(d, "dirty");
    task_log(k, "%s: %.1f of %.1f MiB copied, %.1f MiB/s, eta %.0f s, pass %d",
             json_string_value(json_object_get(d, "name")), copied / (1 << 20),
             total / (1 << 20), rate / (1 << 20), rate > 0 ? left / rate : 0.0,
             (int)jnum(d, "passes") + 1);
}

void migtask_disks_log(struct task *k, struct migtask_disk_log *l, json_t *ev)
{
    size_t i;
    json_t *d;
    uint64_t now = clock_mono_ns();
    json_array_foreach(json_object_get(ev, "disks"), i, d) {
        if (i >= VMCONF_DISKS_MAX || l->synced[i])
            continue;
        if (jnum(d, "sync_ms") > 0) {
            l->synced[i] = true;
            task_log(k,
                     "%s: synchronous after %.2f s, %.1f MiB copied at %.1f MiB/s in %d "
                     "pass(es); guest writes now reach both copies",
                     json_string_value(json_object_get(d, "name")),
                     jnum(d, "sync_ms") / 1e3, jnum(d, "copied") / (1 << 20),
                     jnum(d, "rate") / (1 << 20), (int)jnum(d, "passes"));
        } else if (now - l->last_ns[i] >= 1000000000ULL) {
            l->last_ns[i] = now;
            log_copying(k, d);
        }
    }
}

void migtask_disks_summary(struct task *k, json_t *ev, json_t *figures)
{
    json_t *disks = json_object_get(ev, "disks"), *d;
    size_t i;
    if (!json_array_size(disks))
        return;
    json_array_foreach(disks, i, d)
        task_log(k,
                 "%s: %.1f MiB copied, synchronous after %.2f s at %.1f MiB/s, %lld guest "
                 "write(s) mirrored",
                 json_string_value(json_object_get(d, "name")),
                 jnum(d, "copied") / (1 << 20), jnum(d, "sync_ms") / 1e3,
                 jnum(d, "rate") / (1 << 20), (long long)jnum(d, "active_writes"));
    task_log(k, "disks in the downtime: %.1f ms (last blocks and flush of the targets)",
             jnum(json_object_get(ev, "downtime"), "disks_ms"));
    if (figures)
        json_object_set(figures, "disks", disks);
}

void migtask_disks_done(struct task *k, const struct migtask_plan *p)
{
    for (unsigned i = 0; i < p->spec.conf.ndisks; i++) {
        if (p->spec.shared[i])
            continue;
        if (p->keep_source)
            task_log(k, "disk%u: source volume '%s' kept (--keep-source)", i,
                     p->spec.disk[i]);
        else if (unlink(p->spec.disk[i]) < 0)
            task_log(k, "disk%u: cannot remove source volume '%s': %s", i, p->spec.disk[i],
                     strerror(errno));
        else
            task_log(k, "disk%u: source volume '%s' removed (node '%s' has the disk now)",
                     i, p->spec.disk[i], p->target);
        /* its replication bitmap, of no use without it: once tern-vmm ended,
         * which writes it at its exit */
        char bm[VMCONF_PATH_MAX + 80];
        if (p->keep_source || !p->spec.repl_target[0] ||
            snprintf(bm, sizeof(bm), "%s.repl-%s", p->spec.disk[i], p->spec.repl_target) >=
                (int)sizeof(bm))
            continue;
        vmm_wait_exit(k->ctx->vmms, k->vmid, 5000);
        unlink(bm);
    }
}
