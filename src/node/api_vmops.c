/* VM operations that run on the VM's owner node: start, stop, console
 * (docs/api.md "VMs"); migrate is in api_migrate.c. A request that reaches
 * another node is forwarded to the owner. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/vmconf.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/task.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define CONSOLE_CHUNK (64 * 1024)
#define STOP_TIMEOUT_MS 10000

bool api_route_to_owner(struct api_req *req, struct reply *r, uint32_t *id)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1];
    int rc = keys_vmid_parse(req->args[0], id, &e);
    if (!rc)
        rc = vmops_owner(req->etcd, *id, owner, &e);
    if (rc < 0) {
        reply_errno(r, rc, &e);
        return true;
    }
    if (strcmp(owner, req->ctx->cfg->name) == 0)
        return api_adopting(req, r);
    api_forward(req, r, owner);
    return true;
}

static int start_body(struct task *k, struct etcd_client *c, struct err *e)
{
    struct vmm_spec *spec = k->arg;
    const struct node_ctx *x = k->ctx;
    /* the owner was read before the lock: an offline migration may have
     * moved the VM since */
    char owner[TERN_NAME_MAX + 1];
    int rc = vmops_owner(c, k->vmid, owner, e);
    if (!rc && strcmp(owner, x->cfg->name) != 0)
        rc = err_set(e, ESTALE, "vm %u belongs to node '%s' now", k->vmid, owner);
    if (rc)
        return rc;
    task_log(k, "starting vm %u on node '%s': %llu MiB, %u vcpu(s), %u disk(s)", k->vmid,
             x->cfg->name, (unsigned long long)spec->conf.memory_mib, spec->conf.cpus,
             spec->conf.ndisks);
    rc = vmm_start(x->vmms, spec, e);
    struct vmm_info info;
    vmm_info(x->vmms, k->vmid, &info);
    if (!rc)
        task_log(k, "vm %u running (tern-vmm pid %d)", k->vmid, (int)info.pid);
    /* a start that failed ends once the cluster no longer shows the VM
     * starting: a destroy right after it must not find it so */
    if (rc && vmm_wait_settled(x->vmms, k->vmid, 5000) < 0)
        task_log(k, "the stopped state is not in etcd yet (no quorum?)");
    return rc;
}

static int stop_body(struct task *k, struct etcd_client *c, struct err *e)
{
    (void)c;
    const struct node_ctx *x = k->ctx;
    task_log(k, "stopping vm %u on node '%s'", k->vmid, x->cfg->name);
    int rc = vmm_stop(x->vmms, k->vmid, STOP_TIMEOUT_MS, e);
    struct vmm_info info;
    vmm_info(x->vmms, k->vmid, &info);
    if (!rc)
        task_log(k, "vm %u stopped: tern-vmm %s", k->vmid, info.last_exit);
    /* the task ends once the cluster shows the VM stopped */
    if (!rc && vmm_wait_settled(x->vmms, k->vmid, 5000) < 0)
        task_log(k, "the stopped state is not in etcd yet (no quorum?)");
    return rc;
}

static int run_start(struct task *k, struct err *e)
{
    return vmops_task_locked(k, start_body, e);
}

static int run_stop(struct task *k, struct err *e)
{
    return vmops_task_locked(k, stop_body, e);
}

static void started(struct reply *r, int rc, const struct err *e, const char *id)
{
    if (rc < 0)
        return reply_errno(r, rc, e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "task", id));
}

/* The request's VM, when this node owns it, and its process here; true
 * when the reply is done instead. */
static bool owned_here(struct api_req *req, struct reply *r, uint32_t *id,
                       struct vmm_info *info)
{
    if (api_route_to_owner(req, r, id))
        return true;
    vmm_info(req->ctx->vmms, *id, info);
    return false;
}

static void start_vm(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct vmm_info info;
    if (owned_here(req, r, &id, &info))
        return;
    if (info.present)
        return reply_error(r, MHD_HTTP_CONFLICT, "vm %u is %s already (pid %d)", id,
                           info.status, (int)info.pid);
    struct vmm_spec *spec = malloc(sizeof(*spec));
    struct err e;
    int rc = spec ? vmops_spec_load(req->etcd, id, req->ctx->cfg->name, spec, &e)
                  : err_set(&e, ENOMEM, "out of memory");
    char task[TASK_ID_MAX];
    if (!rc)
        rc = task_start(req->ctx->tasks, req->ctx, "start", id, run_start, spec, task, &e);
    if (rc)
        free(spec); /* the task's only once it started */
    started(r, rc, &e, task);
}

static void stop_vm(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct vmm_info info;
    if (owned_here(req, r, &id, &info))
        return;
    if (!info.present)
        return reply_error(r, MHD_HTTP_CONFLICT, "vm %u is not running", id);
    struct err e;
    char task[TASK_ID_MAX];
    int rc = task_start(req->ctx->tasks, req->ctx, "stop", id, run_stop, NULL, task, &e);
    started(r, rc, &e, task);
}

json_t *api_console_text(const char *buf, size_t len)
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
    struct vmm_info info;
    if (owned_here(req, r, &id, &info))
        return;
    const char *off_s = api_query(req, "offset");
    char *end = NULL;
    long long offset = off_s ? strtoll(off_s, &end, 10) : 0;
    if (offset < 0 || (end && *end))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'offset' must be a byte offset >= 0");
    char *data = malloc(CONSOLE_CHUNK);
    int fd = open(info.console, O_RDONLY | O_CLOEXEC);
    ssize_t n = data && fd >= 0 ? pread(fd, data, CONSOLE_CHUNK, offset) : 0;
    if (fd >= 0)
        close(fd);
    n = n < 0 ? 0 : n;
    json_t *text = data ? api_console_text(data, (size_t)n) : NULL;
    free(data);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:o, s:I, s:b}", "data", text ? text : json_string(""), "offset",
                         (json_int_t)(offset + n), "running", info.present));
}

const struct api_route api_routes_vmops[] = {
    {"POST", "/vms/{}/start", start_vm},
    {"POST", "/vms/{}/stop", stop_vm},
    {"GET", "/vms/{}/console", console},
    {NULL, NULL, NULL},
};
