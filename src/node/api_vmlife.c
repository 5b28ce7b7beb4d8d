/* The rest of a VM's life on its owner node (docs/api.md "VMs"): a
 * graceful shutdown that falls back to a hard stop, reboot, pause and
 * resume, and keys for its console. tern-guest has no ACPI: tern-vmm's
 * `powerdown` raises its power button (docs/tern-vmm.md). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/task.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define SHUTDOWN_TIMEOUT_S 60
#define SHUTDOWN_TIMEOUT_MAX_S 3600
#define STOP_TIMEOUT_MS 10000
#define CONSOLE_INPUT_MAX 4096

/* A shutdown's or a reboot's: how long the guest has, and (reboot) what
 * to start again. */
struct life_arg {
    int timeout_s;
    struct vmm_spec spec;
};

static int vmm_simple(struct node_ctx *x, uint32_t id, const char *cmd, json_t **reply,
                      struct err *e)
{
    json_t *req = json_pack("{s:s}", "cmd", cmd);
    int rc = vmm_command(x->vmms, id, req, reply, e);
    json_decref(req);
    return rc;
}

static int shutdown_body(struct task *k, struct etcd_client *c, struct err *e)
{
    (void)c;
    struct life_arg *a = k->arg;
    struct node_ctx *x = k->ctx;
    json_t *reply = NULL;
    task_log(k, "asking vm %u to power off (power button), waiting up to %d s", k->vmid,
             a->timeout_s);
    int rc = vmm_simple(x, k->vmid, "powerdown", &reply, e);
    json_decref(reply);
    if (rc)
        return rc;
    struct vmm_info info;
    if (vmm_wait_exit(x->vmms, k->vmid, a->timeout_s * 1000) == 0) {
        vmm_info(x->vmms, k->vmid, &info);
        task_log(k, "vm %u shut down: tern-vmm %s", k->vmid, info.last_exit);
    } else {
        task_log(k, "vm %u did not power off in %d s: stopping it hard", k->vmid,
                 a->timeout_s);
        if ((rc = vmm_stop(x->vmms, k->vmid, STOP_TIMEOUT_MS, e)))
            return rc;
        vmm_info(x->vmms, k->vmid, &info);
        task_log(k, "vm %u stopped hard: tern-vmm %s", k->vmid, info.last_exit);
    }
    if (vmm_wait_settled(x->vmms, k->vmid, 5000) < 0)
        task_log(k, "the stopped state is not in etcd yet (no quorum?)");
    return 0;
}

static int reboot_body(struct task *k, struct etcd_client *c, struct err *e)
{
    struct life_arg *a = k->arg;
    int rc = shutdown_body(k, c, e);
    if (rc)
        return rc;
    task_log(k, "starting vm %u again", k->vmid);
    rc = vmm_start(k->ctx->vmms, &a->spec, e);
    struct vmm_info info;
    vmm_info(k->ctx->vmms, k->vmid, &info);
    if (!rc)
        task_log(k, "vm %u running again (tern-vmm pid %d)", k->vmid, (int)info.pid);
    return rc;
}

static int run_shutdown(struct task *k, struct err *e)
{
    return vmops_task_locked(k, shutdown_body, e);
}

static int run_reboot(struct task *k, struct err *e)
{
    return vmops_task_locked(k, reboot_body, e);
}

/* The VM of the request runs here as a VM (not a destination, not
 * migrating); true when the reply is done instead. */
static bool running_here(struct api_req *req, struct reply *r, uint32_t *id)
{
    if (api_route_to_owner(req, r, id))
        return true;
    struct vmm_info info;
    vmm_info(req->ctx->vmms, *id, &info);
    if (!info.present)
        reply_error(r, MHD_HTTP_CONFLICT, "vm %u is not running", *id);
    else if (info.role != VMM_RUN || strcmp(info.status, "migrating") == 0)
        reply_error(r, MHD_HTTP_CONFLICT, "vm %u is %s: wait until it is running", *id,
                    info.status);
    return !info.present || info.role != VMM_RUN || strcmp(info.status, "migrating") == 0;
}

static int timeout_of(json_t *body, int *out, struct err *e)
{
    json_t *t = json_object_get(body, "timeout_s");
    *out = SHUTDOWN_TIMEOUT_S;
    if (!t)
        return 0;
    if (!json_is_integer(t) || json_integer_value(t) < 1 ||
        json_integer_value(t) > SHUTDOWN_TIMEOUT_MAX_S)
        return err_set(e, EINVAL, "'timeout_s' must be 1..%d", SHUTDOWN_TIMEOUT_MAX_S);
    *out = (int)json_integer_value(t);
    return 0;
}

static void life_task(struct api_req *req, struct reply *r, const char *type,
                      int (*run)(struct task *k, struct err *e))
{
    uint32_t id;
    if (running_here(req, r, &id))
        return;
    struct life_arg *a = calloc(1, sizeof(*a));
    struct err e;
    int rc = a ? timeout_of(req->body, &a->timeout_s, &e)
               : err_set(&e, ENOMEM, "out of memory");
    if (!rc && strcmp(type, "reboot") == 0)
        rc = vmops_spec_load(req->etcd, id, &a->spec, &e);
    char task[TASK_ID_MAX];
    if (!rc)
        rc = task_start(req->ctx->tasks, req->ctx, type, id, run, a, task, &e);
    if (rc) {
        free(a);
        return reply_errno(r, rc, &e);
    }
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "task", task));
}

static void shutdown_vm(struct api_req *req, struct reply *r)
{
    life_task(req, r, "shutdown", run_shutdown);
}

static void reboot_vm(struct api_req *req, struct reply *r)
{
    life_task(req, r, "reboot", run_reboot);
}

static void pause_resume(struct api_req *req, struct reply *r, const char *cmd)
{
    uint32_t id;
    if (running_here(req, r, &id))
        return;
    json_t *reply = NULL;
    struct err e;
    int rc = vmm_simple(req->ctx, id, cmd, &reply, &e);
    json_decref(reply);
    if (rc)
        return reply_error(r, MHD_HTTP_CONFLICT, "%s", e.msg);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:i, s:s}", "id", (int)id, "status",
                         strcmp(cmd, "pause") == 0 ? "paused" : "running"));
}

static void pause_vm(struct api_req *req, struct reply *r)
{
    pause_resume(req, r, "pause");
}

static void resume_vm(struct api_req *req, struct reply *r)
{
    pause_resume(req, r, "resume");
}

/* Keys for the guest's serial input: {"data": "..."} -> {"accepted": n};
 * what does not fit the UART's FIFO now is for the client to send again. */
static void console_input(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (running_here(req, r, &id))
        return;
    json_t *data = json_object_get(req->body, "data");
    if (!json_is_string(data) || json_string_length(data) > CONSOLE_INPUT_MAX)
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "'data' must be a string of at most %d bytes",
                           CONSOLE_INPUT_MAX);
    json_t *req_vmm = json_pack("{s:s, s:O}", "cmd", "console_input", "data", data);
    json_t *reply = NULL;
    struct err e;
    int rc = vmm_command(req->ctx->vmms, id, req_vmm, &reply, &e);
    json_decref(req_vmm);
    json_t *n = json_object_get(reply, "accepted");
    if (!rc)
        reply_json(
            r, MHD_HTTP_OK,
            json_pack("{s:I}", "accepted", json_is_integer(n) ? json_integer_value(n) : 0));
    else
        reply_error(r, MHD_HTTP_CONFLICT, "%s", e.msg);
    json_decref(reply);
}

/* The body of PUT /vms/ID/config on the config now: only the keys a
 * stopped VM may change; the result is checked as a create is. */
static int merge_config(const struct vmconf *old, json_t *body, struct vmconf *out,
                        struct err *e)
{
    static const char *const keys[] = {"memory_mib", "cpus", "name",
                                       "cmdline",    "nets", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool ok = false;
        for (unsigned i = 0; keys[i] && !ok; i++)
            ok = strcmp(keys[i], key) == 0;
        if (!ok)
            return err_set(e, EINVAL,
                           "vm %u: '%s' cannot be set (only memory_mib, cpus, "
                           "name, cmdline, nets)",
                           old->id, key);
    }
    json_t *j = vmconf_to_json(old);
    if (!j)
        return err_set(e, ENOMEM, "out of memory");
    json_object_update(j, body);
    if (json_is_null(json_object_get(j, "name")))
        json_object_del(j, "name");
    int rc = vmconf_from_json(j, out, e);
    json_decref(j);
    return rc;
}

/* PUT /vms/ID/config: a stopped VM's memory, cpus, name or command line,
 * under the VM's lock so that no start comes between. */
static void set_config(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (api_route_to_owner(req, r, &id))
        return;
    if (!json_is_object(req->body) || json_object_size(req->body) == 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "a body with what to change is missing");
    char holder[VMLOCK_HOLDER_MAX + 1];
    snprintf(holder, sizeof(holder), "%s set", req->ctx->cfg->name);
    struct err e;
    int rc = vmops_lock(req->ctx, req->etcd, id, holder, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    struct vmconf old, conf;
    struct vmm_info info;
    vmm_info(req->ctx->vmms, id, &info);
    if (info.present)
        rc = err_set(&e, EBUSY, "vm %u is %s on node '%s'; stop it first", id, info.status,
                     req->ctx->cfg->name);
    if (!rc)
        rc = vmconf_get(req->etcd, id, 0, &old, &e);
    if (!rc)
        rc = merge_config(&old, req->body, &conf, &e);
    if (!rc)
        rc = vmconf_update(req->etcd, &conf, req->ctx->cfg->name, &e);
    struct err le;
    vmops_unlock(req->etcd, id, holder, &le);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:i, s:o}", "id", (int)id, "config", vmconf_to_json(&conf)));
}

const struct api_route api_routes_vmlife[] = {
    {"PUT", "/vms/{}/config", set_config},
    {"POST", "/vms/{}/shutdown", shutdown_vm},
    {"POST", "/vms/{}/reboot", reboot_vm},
    {"POST", "/vms/{}/pause", pause_vm},
    {"POST", "/vms/{}/resume", resume_vm},
    {"POST", "/vms/{}/console", console_input},
    {NULL, NULL, NULL},
};
