#include "node/vmops.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/ha.h"
#include "cluster/node.h"
#include "cluster/owner.h"
#include "cluster/replication.h"
#include "cluster/vmconf.h"
#include "node/ctx.h"

int vmops_spec_load(struct etcd_client *c, uint32_t id, const char *node,
                    struct vmm_spec *spec, struct err *e)
{
    memset(spec, 0, sizeof(*spec));
    int rc = vmconf_get(c, id, 0, &spec->conf, e);
    for (unsigned i = 0; !rc && i < spec->conf.ndisks; i++) {
        struct storage_conf s;
        const struct vmconf_disk *d = &spec->conf.disks[i];
        rc = storage_get(c, d->storage, 0, &s, e);
        if (rc == -ENOENT)
            rc = err_set(e, ENOENT,
                         "vm %u: disk %u is on storage '%s', which does not "
                         "exist",
                         id, i, d->storage);
        if (!rc)
            rc = storage_volume_path(&s, node, d->volume, spec->disk[i], e);
        if (!rc)
            spec->shared[i] = s.shared;
    }
    struct repl_job job;
    struct err ignored; /* no job, or etcd did not answer: no bitmap, the
                         * first sync attaches one */
    if (!rc && repl_job_get(c, id, 0, &job, &ignored) == 0)
        snprintf(spec->repl_target, sizeof(spec->repl_target), "%s", job.target);
    struct ha_conf ha;
    int hr = rc ? 0 : ha_conf_get(c, id, 0, &ha, e);
    spec->ha = hr == 0; /* an HA VM starts fenced (node/ha.h) */
    return rc ? rc : hr == -ENOENT ? 0 : hr;
}

/* mkdir -p: a local storage's directory appears on first use on each node. */
int vmops_make_dirs(const char *path, struct err *e)
{
    char buf[VMCONF_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return err_set(e, errno, "cannot make directory '%s': %s", buf,
                           strerror(errno));
        *p = c;
        if (!c)
            return 0;
    }
}

static void vmid_text(uint32_t id, char out[16])
{
    snprintf(out, 16, "%u", id);
}

int vmops_owner(struct etcd_client *c, uint32_t id, char owner[TERN_NAME_MAX + 1],
                struct err *e)
{
    int rc = vmowner_get(c, id, 0, owner, NULL, e);
    return rc == -ENOENT ? err_set(e, ENOENT, "vm %u does not exist", id) : rc;
}

void vmops_holder_text(const char *holder, char *out, size_t size)
{
    if (strncmp(holder, "UPID:", 5) == 0)
        snprintf(out, size, "task %s", holder);
    else
        snprintf(out, size, "'%s'", holder);
}

int vmops_lock(struct node_ctx *x, struct etcd_client *c, uint32_t vmid, const char *holder,
               struct err *e)
{
    char id[16], now[VMLOCK_HOLDER_MAX + 1] = "", who[VMLOCK_HOLDER_MAX + 8];
    vmid_text(vmid, id);
    int64_t lease = node_lease(x->node);
    if (!lease)
        return err_set(e, ETCD_NOT_QUORATE, "node '%s' is not online in the cluster",
                       x->cfg->name);
    int rc = vmlock_acquire(c, id, holder, lease, now, e);
    if (rc == -EBUSY) {
        vmops_holder_text(now, who, sizeof(who));
        return err_set(e, EBUSY, "vm %u is locked by %s", vmid, who);
    }
    return rc;
}

int vmops_unlock(struct etcd_client *c, uint32_t vmid, const char *holder, struct err *e)
{
    char id[16];
    vmid_text(vmid, id);
    return vmlock_release(c, id, holder, e);
}

/* A lock left behind would block every later task on the VM for as long
 * as this node lives (it hangs on the node's lease): try for a while, as
 * long as etcd does not answer (-ENOENT, -EPERM: not ours any more). */
static void task_unlock(struct etcd_client *c, struct task *k)
{
    struct err e;
    for (int i = 0; i < 30; i++) {
        int rc = vmops_unlock(c, k->vmid, k->id, &e);
        if (!rc || rc == -ENOENT || rc == -EPERM)
            return;
        if (i == 0)
            task_log(k, "releasing the lock of vm %u: %s; retrying", k->vmid, e.msg);
        sleep(1);
    }
    task_log(k, "the lock of vm %u stays until this node's lease ends", k->vmid);
}

int vmops_task_locked(struct task *k,
                      int (*body)(struct task *k, struct etcd_client *c, struct err *e),
                      struct err *e)
{
    struct etcd_client c;
    int rc = etcd_client_init(&c, k->table->etcd_url, e);
    if (rc)
        return rc;
    rc = vmops_lock(k->ctx, &c, k->vmid, k->id, e);
    if (!rc) {
        rc = body(k, &c, e);
        task_unlock(&c, k);
    }
    etcd_client_release(&c);
    return rc;
}
