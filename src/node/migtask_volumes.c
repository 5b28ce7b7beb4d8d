/* The target volumes of a migration with local disks, in the target's
 * ternd: made fresh (sparse, the disk's size, never over an existing file)
 * before the destination tern-vmm starts, and removed again when that
 * tern-vmm ends without the VM having become this node's: no failure leaves
 * an orphan volume (docs/cluster.md, "Local disks"). Whether the VM became
 * this node's is what etcd says after a fence, never a guess: a destination
 * killed between the commit and its resume keeps its volumes, since this
 * node owns the VM then and starts it from them. */
#include "node/migtask_volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/vmops.h"

void migtask_volumes_init(struct migtask_volumes *v)
{
    memset(v, 0, sizeof(*v));
}

static int parent_dir(const char *path, char dir[VMCONF_PATH_MAX])
{
    snprintf(dir, VMCONF_PATH_MAX, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return -EINVAL;
    *slash = '\0';
    return 0;
}

/* The free space of dir against what the disk will copy (its allocated
 * bytes on the source: holes stay holes). */
static int check_space(const char *dir, const char *name, uint64_t need, struct err *e)
{
    struct statvfs st;
    if (statvfs(dir, &st) < 0)
        return err_set(e, errno, "cannot look at '%s': %s", dir, strerror(errno));
    uint64_t free_b = (uint64_t)st.f_bavail * st.f_frsize;
    if (free_b < need)
        return err_set(e, ENOSPC,
                       "%s: '%s' has %llu MiB free, the disk needs %llu MiB (its allocated "
                       "blocks)",
                       name, dir, (unsigned long long)(free_b >> 20),
                       (unsigned long long)((need + (1 << 20) - 1) >> 20));
    return 0;
}

static int create_one(const char *path, uint64_t size, struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return err_set(e, EEXIST, "disk file '%s' exists already on this node", path);
    if (fd < 0)
        return err_set(e, errno, "cannot create disk file '%s': %s", path, strerror(errno));
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = err_set(e, errno, "cannot size disk file '%s': %s", path, strerror(errno));
        unlink(path);
    }
    close(fd);
    return rc;
}

int migtask_volumes_create(const struct vmm_spec *spec, json_t *bytes,
                           struct migtask_volumes *v, struct err *e)
{
    int rc = 0;
    for (unsigned i = 0; !rc && i < spec->conf.ndisks; i++) {
        if (spec->shared[i])
            continue;
        char dir[VMCONF_PATH_MAX], name[32];
        snprintf(name, sizeof(name), "vm %u: disk%u", spec->conf.id, i);
        json_t *b = json_array_get(bytes, i);
        uint64_t need = json_is_integer(b) && json_integer_value(b) > 0
                            ? (uint64_t)json_integer_value(b)
                            : spec->conf.disks[i].size_mib << 20;
        rc = parent_dir(spec->disk[i], dir) ? err_set(e, EINVAL, "%s: bad path", name) : 0;
        if (!rc)
            rc = vmops_make_dirs(dir, e);
        if (!rc)
            rc = check_space(dir, name, need, e);
        if (!rc)
            rc = create_one(spec->disk[i], spec->conf.disks[i].size_mib << 20, e);
        if (!rc)
            snprintf(v->path[v->n++], VMCONF_PATH_MAX, "%s", spec->disk[i]);
    }
    if (rc)
        migtask_volumes_remove(v, "the destination could not be prepared");
    return rc;
}

void migtask_volumes_remove(struct migtask_volumes *v, const char *why)
{
    for (unsigned i = 0; i < v->n; i++) {
        if (unlink(v->path[i]) < 0 && errno != ENOENT)
            log_error("migrate", "cannot remove target volume '%s': %s", v->path[i],
                      strerror(errno));
        else
            log_info("migrate", "removed target volume '%s': %s", v->path[i], why);
    }
    v->n = 0;
}

/* Fenced (the VM stays with its source, now for good) or committed. */
static int settle(struct node_ctx *x, uint32_t vmid, const struct migtask_handover *h,
                  bool *fenced, struct err *e)
{
    struct etcd_client c;
    int rc = etcd_client_init(&c, x->cfg->cluster_address, e);
    if (rc)
        return rc;
    for (int tries = 0; tries < 10; tries++) {
        rc = handover_fence(&c, vmid, h->source, h->target, h->rev, fenced, e);
        if (rc != -ENOLINK)
            break;
        sleep(1);
    }
    etcd_client_release(&c);
    return rc;
}

void migtask_volumes_settle(struct node_ctx *x, uint32_t vmid,
                            const struct migtask_handover *h, struct migtask_volumes *v)
{
    if (v->n == 0)
        return;
    bool fenced = false;
    struct err e;
    int rc = settle(x, vmid, h, &fenced, &e);
    if (rc)
        log_error("migrate",
                  "vm %u: the destination ended and etcd does not say whose the vm is "
                  "(%s): its %u target volume(s) are kept",
                  vmid, e.msg, v->n);
    else if (fenced)
        migtask_volumes_remove(v, "the vm stays on its source");
    else
        log_info("migrate", "vm %u: committed to this node: its volumes stay", vmid);
}
