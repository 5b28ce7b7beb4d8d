/* VM operations that run on the VM's owner node: start, stop, console
 * (docs/api.md "VMs"); migrate is in migrate_target.c. A request that reaches
 * another node is forwarded to the owner. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "node/api_vmops.h"
#include "node/http.h"
#include "node/task.h"
#include "node/ternd.h"
#include "node/vmops.h"

#define CONSOLE_CHUNK (64 * 1024)
#define STOP_TIMEOUT_MS 10000

bool vmops_route_to_owner(struct api_req *req, struct reply *r, uint32_t *id)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1];
    int rc = keys_vmid_parse(req->args[0], id, &e);
    if (rc == 0)
        rc = vm_owner_of(req->etcd, *id, owner, &e);
    if (rc < 0) {
        reply_errno(r, rc, &e);
        return true;
    }
    if (strcmp(owner, req->t->cfg.name) == 0 && !atomic_load(&req->t->adopted)) {
        /* a VM of this node may run without ternd knowing it yet */
        reply_error(r, 503, "node '%s' is starting: its running VMs are not "
                    "adopted yet; try again", req->t->cfg.name);
        return true;
    }
    if (strcmp(owner, req->t->cfg.name) == 0)
        return false;
    api_forward(req, r, owner);
    return true;
}

/* body(k) with the VM's task lock held (its own etcd client: tasks run in
 * their own threads). */
static int with_vm_lock(struct task *k, int (*body)(struct task *k, struct err *e),
                        struct err *e)
{
    struct etcd_client c;
    int rc = etcd_client_init(&c, k->t->cfg.cluster_address, e);
    if (rc)
        return rc;
    rc = vm_task_lock(k->t, &c, k, e);
    if (rc == 0) {
        rc = body(k, e);
        vm_task_unlock(&c, k);
    }
    etcd_client_release(&c);
    return rc;
}

static int start_body(struct task *k, struct err *e)
{
    struct vmm_spec *spec = k->arg;
    /* the owner was read before the lock: an offline migration may have
     * moved the VM since */
    char owner[TERN_NAME_MAX + 1];
    struct etcd_client c = { .curl = NULL };
    int rc = etcd_client_init(&c, k->t->cfg.cluster_address, e);
    if (rc == 0)
        rc = vm_owner_of(&c, k->vmid, owner, e);
    if (rc == 0 && strcmp(owner, k->t->cfg.name) != 0)
        rc = err_set(e, ESTALE, "vm %u belongs to node '%s' now", k->vmid, owner);
    if (c.curl)
        etcd_client_release(&c);
    if (rc)
        return rc;
    task_log(k, "starting vm %u on node '%s': %llu MiB, %u vcpu(s), %u disk(s)", k->vmid,
             k->t->cfg.name, (unsigned long long)spec->conf.memory_mib, spec->conf.cpus,
             spec->conf.ndisks);
    rc = vmm_start(&k->t->vmms, spec, e);
    struct vmm_info info;
    vmm_info(&k->t->vmms, k->vmid, &info);
    if (rc == 0)
        task_log(k, "vm %u running (tern-vmm pid %d)", k->vmid, (int)info.pid);
    return rc;
}

static int stop_body(struct task *k, struct err *e)
{
    task_log(k, "stopping vm %u on node '%s'", k->vmid, k->t->cfg.name);
    int rc = vmm_stop(&k->t->vmms, k->vmid, STOP_TIMEOUT_MS, e);
    struct vmm_info info;
    vmm_info(&k->t->vmms, k->vmid, &info);
    if (rc == 0)
        task_log(k, "vm %u stopped: tern-vmm %s", k->vmid, info.last_exit);
    /* the task ends once the cluster shows the VM stopped */
    if (rc == 0 && vmm_wait_settled(&k->t->vmms, k->vmid, 5000) < 0)
        task_log(k, "the stopped state is not in etcd yet (no quorum?)");
    return rc;
}

static int run_start(struct task *k, struct err *e)
{
    return with_vm_lock(k, start_body, e);
}

static int run_stop(struct task *k, struct err *e)
{
    return with_vm_lock(k, stop_body, e);
}

static void started(struct reply *r, int rc, const struct err *e, const char *id)
{
    if (rc < 0)
        return reply_errno(r, rc, e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "task", id));
}

static void start_vm(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (vmops_route_to_owner(req, r, &id))
        return;
    struct vmm_info info;
    vmm_info(&req->t->vmms, id, &info);
    if (info.present)
        return reply_error(r, MHD_HTTP_CONFLICT, "vm %u is %s already (pid %d)", id,
                           info.status, (int)info.pid);
    struct vmm_spec *spec = malloc(sizeof(*spec));
    struct err e;
    int rc = spec ? vm_spec_load(req->etcd, id, spec, &e) : err_set(&e, ENOMEM, "out of memory");
    char task[TASK_ID_MAX];
    if (rc == 0)
        rc = task_start(&req->t->tasks, req->t, "start", id, run_start, spec, task, &e);
    else
        free(spec);
    started(r, rc, &e, task);
}

static void stop_vm(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (vmops_route_to_owner(req, r, &id))
        return;
    struct vmm_info info;
    vmm_info(&req->t->vmms, id, &info);
    if (!info.present)
        return reply_error(r, MHD_HTTP_CONFLICT, "vm %u is not running", id);
    struct err e;
    char task[TASK_ID_MAX];
    int rc = task_start(&req->t->tasks, req->t, "stop", id, run_stop, NULL, task, &e);
    started(r, rc, &e, task);
}

/* The console as JSON text: bytes that are not printable ASCII (or
 * newline, tab) become '?', so any guest output is valid UTF-8. */
static json_t *console_text(const char *buf, size_t len)
{
    char *clean = malloc(len + 1);
    if (!clean)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        clean[i] = (ch >= 32 && ch < 127) || ch == '\n' || ch == '\t' ? (char)ch : '?';
    }
    json_t *s = json_stringn(clean, len);
    free(clean);
    return s;
}

static void console(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (vmops_route_to_owner(req, r, &id))
        return;
    const char *off_s = api_query(req, "offset");
    char *end = NULL;
    long long offset = off_s ? strtoll(off_s, &end, 10) : 0;
    if (offset < 0 || (end && *end))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'offset' must be a byte offset >= 0");
    struct vmm_info info;
    vmm_info(&req->t->vmms, id, &info);
    char *data = malloc(CONSOLE_CHUNK);
    int fd = open(info.console, O_RDONLY | O_CLOEXEC);
    ssize_t n = data && fd >= 0 ? pread(fd, data, CONSOLE_CHUNK, offset) : 0;
    if (fd >= 0)
        close(fd);
    n = n < 0 ? 0 : n;
    json_t *text = data ? console_text(data, (size_t)n) : NULL;
    free(data);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:o, s:I, s:b}", "data", text ? text : json_string(""),
                                         "offset", (json_int_t)(offset + n),
                                         "running", info.present));
}

const struct api_route api_routes_vmops[] = {
    {"POST", "/vms/{}/start", start_vm},
    {"POST", "/vms/{}/stop", stop_vm},
    {"GET", "/vms/{}/console", console},
    {NULL, NULL, NULL},
};

int vm_spec_load(struct etcd_client *c, uint32_t id, struct vmm_spec *spec,
                 struct err *e)
{
    memset(spec, 0, sizeof(*spec));
    int rc = vmconf_get(c, id, 0, &spec->conf, e);
    for (unsigned i = 0; rc == 0 && i < spec->conf.ndisks; i++) {
        struct storage_conf s;
        const struct vmconf_disk *d = &spec->conf.disks[i];
        rc = storage_get(c, d->storage, 0, &s, e);
        if (rc == -ENOENT)
            rc = err_set(e, ENOENT, "vm %u: disk %u is on storage '%s', which does not "
                         "exist", id, i, d->storage);
        if (rc == 0)
            rc = storage_volume_path(&s, d->volume, spec->disk[i], e);
        if (rc == 0)
            spec->shared[i] = s.shared;
    }
    return rc;
}

static void vmid_text(uint32_t id, char out[16])
{
    snprintf(out, 16, "%u", id);
}

int vm_task_lock(struct ternd *t, struct etcd_client *c, struct task *k, struct err *e)
{
    char vmid[16], holder[VMLOCK_HOLDER_MAX + 1] = "";
    vmid_text(k->vmid, vmid);
    int64_t lease = node_lease(&t->node);
    if (!lease)
        return err_set(e, ETCD_NOT_QUORATE, ETCD_NOT_QUORATE_MSG);
    int rc = vmlock_acquire(c, vmid, k->id, lease, holder, e);
    if (rc == -EBUSY)
        return err_set(e, EBUSY, "vm %u is locked by task %s", k->vmid, holder);
    return rc;
}

void vm_task_unlock(struct etcd_client *c, struct task *k)
{
    char vmid[16];
    struct err e;
    vmid_text(k->vmid, vmid);
    /* a lock left behind would block every later task on the VM for as long
     * as this node lives (it hangs on the node's lease): try for a while,
     * as long as etcd does not answer (-ENOENT, -EPERM: not ours any more) */
    for (int i = 0; i < 30; i++) {
        int rc = vmlock_release(c, vmid, k->id, &e);
        if (rc == 0 || rc == -ENOENT || rc == -EPERM)
            return;
        if (i == 0)
            task_log(k, "releasing the lock of vm %u: %s; retrying", k->vmid, e.msg);
        sleep(1);
    }
    task_log(k, "the lock of vm %u stays until this node's lease ends", k->vmid);
}

int vm_owner_of(struct etcd_client *c, uint32_t id, char owner[TERN_NAME_MAX + 1],
                struct err *e)
{
    int rc = vmowner_get(c, id, 0, owner, NULL, e);
    return rc == -ENOENT ? err_set(e, ENOENT, "vm %u does not exist", id) : rc;
}
