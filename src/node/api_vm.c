/* VM endpoints: list, show, create, destroy (docs/api.md "VMs"). A VM is
 * created on the node that gets the request (it becomes the owner) and
 * destroyed by its owner; the disk files are made and removed here, the
 * records in one etcd transaction each (cluster/vmconf.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/ha.h"
#include "cluster/node.h"
#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/events.h"
#include "node/http.h"
#include "node/vmm.h"
#include "node/vmops.h"

/* --- the VM object */

static bool node_is_online(const struct node_entries *nodes, const char *name)
{
    for (size_t i = 0; i < nodes->count; i++)
        if (strcmp(nodes->items[i].name, name) == 0)
            return nodes->items[i].online;
    return false;
}

/* Without a published state the VM is stopped, if its owner is online to
 * say so; otherwise nobody knows. */
static json_t *entry_json(const struct vmrec *v, bool owner_online, bool with_config)
{
    const char *status = v->has_state   ? v->state.status
                         : owner_online ? "stopped"
                                        : "unknown";
    bool running = v->has_state && strcmp(status, "running") == 0;
    json_t *uptime = json_null();
    if (running) {
        int64_t up = (int64_t)time(NULL) -
                     (v->state.started ? v->state.started : v->state.since);
        uptime = json_integer(up > 0 ? up : 0);
    }
    json_t *j = json_pack(
        "{s:I, s:s?, s:s?, s:s, s:o, s:o, s:I, s:I, s:s?, s:n}", "id",
        (json_int_t)v->conf.id, "name", v->conf.name[0] ? v->conf.name : NULL, "node",
        v->owner[0] ? v->owner : NULL, "status", status, "pid",
        v->has_state && v->state.pid > 0 ? json_integer(v->state.pid) : json_null(),
        "uptime_s", uptime, "memory_mib", (json_int_t)v->conf.memory_mib, "cpus",
        (json_int_t)v->conf.cpus, "lock", v->lock[0] ? v->lock : NULL, "last_exit");
    if (j && with_config)
        json_object_set_new(j, "config", vmconf_to_json(&v->conf));
    return j;
}

/* --- reads: linearizable, or the local member's copy marked stale */

static void get_vms(struct api_req *req, struct reply *r)
{
    struct vmrecs l;
    struct node_entries nodes;
    struct err e;
    unsigned flags = 0;
    node_entries_init(&nodes);
    int rc = vmrec_list(req->etcd, flags, &l, &e);
    if (rc == -ETCD_NOT_QUORATE) {
        flags = ETCD_SERIALIZABLE;
        rc = vmrec_list(req->etcd, flags, &l, &e);
    }
    if (!rc && (rc = node_list(req->etcd, flags, &nodes, &e)) < 0)
        vmrecs_release(&l);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(
            items,
            entry_json(&l.items[i], node_is_online(&nodes, l.items[i].owner), false));
    vmrecs_release(&l);
    node_entries_release(&nodes);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:o}", "stale", flags != 0, "vms", items));
}

static void get_vm(struct api_req *req, struct reply *r)
{
    struct vmrec v;
    struct node_entries nodes;
    struct err e;
    uint32_t id;
    unsigned flags = 0;
    node_entries_init(&nodes);
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc && (rc = vmrec_get(req->etcd, id, flags, &v, &e)) == -ETCD_NOT_QUORATE) {
        flags = ETCD_SERIALIZABLE;
        rc = vmrec_get(req->etcd, id, flags, &v, &e);
    }
    if (!rc)
        rc = node_list(req->etcd, flags, &nodes, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    bool online = node_is_online(&nodes, v.owner);
    node_entries_release(&nodes);
    /* the owner knows how the VM's last process ended: ask it */
    bool mine = strcmp(v.owner, req->ctx->cfg->name) == 0;
    if (!mine && online && !req->from_node && flags == 0)
        return api_forward(req, r, v.owner);
    json_t *j = entry_json(&v, online, true);
    struct vmm_info info;
    vmm_info(req->ctx->vmms, id, &info);
    if (j && mine && info.last_exit[0])
        json_object_set_new(j, "last_exit", json_string(info.last_exit));
    if (j)
        json_object_set_new(j, "stale", json_boolean(flags != 0));
    reply_json(r, MHD_HTTP_OK, j);
}

/* --- disk files */

/* mkdir -p: a local storage's directory appears on first use on each node. */
static int make_dirs(const char *path, struct err *e)
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

/* A sparse raw file of the disk's size; never one that exists already. */
static int create_disk(const struct storage_conf *s, const struct vmconf_disk *d,
                       char path[VMCONF_PATH_MAX], struct err *e)
{
    struct stat st;
    int rc = storage_volume_path(s, d->volume, path, e);
    if (!rc && !s->shared)
        rc = make_dirs(s->path, e);
    if (rc < 0)
        return rc;
    if (stat(s->path, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, ENOTDIR,
                       "storage '%s': '%s' is not a directory on this "
                       "node",
                       s->name, s->path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return err_set(e, EEXIST, "disk file '%s' exists already", path);
    if (fd < 0)
        return err_set(e, errno, "cannot create disk file '%s': %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)(d->size_mib << 20)) < 0) {
        rc = err_set(e, errno, "cannot size disk file '%s': %s", path, strerror(errno));
        unlink(path);
    }
    close(fd);
    return rc;
}

static void remove_files(char (*paths)[VMCONF_PATH_MAX], unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (unlink(paths[i]) < 0)
            log_warn("api", "cannot remove '%s': %s", paths[i], strerror(errno));
}

/* --- create */

/* Each disk's storage, read now (must exist: 400 naming the disk). */
static int disk_storages(struct api_req *req, const struct vmconf *c,
                         struct storage_conf *st, struct err *e)
{
    for (unsigned i = 0; i < c->ndisks; i++) {
        int rc = storage_get(req->etcd, c->disks[i].storage, 0, &st[i], e);
        if (rc == -ENOENT)
            return err_set(e, EINVAL,
                           "vm %" PRIu32 ": disks[%u]: storage '%s' does "
                           "not exist",
                           c->id, i, c->disks[i].storage);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The volume names are ternd's (vm-<id>-disk-<n>.raw), not the client's. */
/* The kernel is read where the VM starts: on its owner, this node. */
static int check_kernel(const struct vmconf *c, const char *node, struct err *e)
{
    struct stat st;
    if (stat(c->kernel, &st) < 0)
        return err_set(e, EINVAL,
                       "vm %" PRIu32 ": kernel '%s' is not on node '%s' (its owner): %s",
                       c->id, c->kernel, node, strerror(errno));
    if (!S_ISREG(st.st_mode) || access(c->kernel, R_OK) < 0)
        return err_set(e, EINVAL,
                       "vm %" PRIu32 ": kernel '%s' on node '%s' is not a readable file",
                       c->id, c->kernel, node);
    return 0;
}

static int check_body(json_t *body, struct vmconf *c, const char *node, struct err *e)
{
    int rc = vmconf_from_json(body, c, e);
    json_t *disks = json_object_get(body, "disks");
    for (size_t i = 0; !rc && i < json_array_size(disks); i++)
        if (json_object_get(json_array_get(disks, i), "volume"))
            rc = err_set(e, EINVAL,
                         "vm %" PRIu32 ": disks[%zu]: 'volume' is chosen by "
                         "ternd, do not give it",
                         c->id, i);
    if (!rc)
        rc = check_kernel(c, node, e);
    return rc;
}

static int create_vm(struct api_req *req, const struct vmconf *c, struct err *e)
{
    struct storage_conf st[VMCONF_DISKS_MAX];
    char paths[VMCONF_DISKS_MAX][VMCONF_PATH_MAX];
    struct vmconf old;
    unsigned made = 0;
    bool maint = false;
    int rc = ha_maint_get(req->etcd, req->ctx->cfg->name, 0, &maint, NULL, e);
    if (!rc && maint)
        rc = err_set(e, EBUSY, "node '%s' is in maintenance: create the vm on another node",
                     req->ctx->cfg->name);
    if (rc)
        return rc;
    rc = vmconf_get(req->etcd, c->id, 0, &old, e);
    if (rc != -ENOENT) /* a clear answer before any file is made */
        return rc < 0 ? rc : err_set(e, EEXIST, "vm %" PRIu32 " exists", c->id);
    rc = disk_storages(req, c, st, e);
    for (; !rc && made < c->ndisks; made++) {
        rc = create_disk(&st[made], &c->disks[made], paths[made], e);
        if (rc < 0)
            break;
    }
    if (!rc)
        rc = vmconf_create(req->etcd, c, req->ctx->cfg->name, e);
    if (rc == -ENOENT) /* a storage went meanwhile: still the body's fault */
        rc = -EINVAL;
    /* quorum lost with the create in flight: it may yet be applied, and a
     * VM without its disk files is worse than files without a VM */
    if (rc == -ETCD_NOT_QUORATE && req->etcd->maybe_applied)
        log_warn("api",
                 "vm %" PRIu32 ": create may or may not be applied; its disk "
                 "files are kept",
                 c->id);
    else if (rc < 0)
        remove_files(paths, made);
    return rc;
}

static void post_vms(struct api_req *req, struct reply *r)
{
    struct vmrec v;
    struct err e;
    memset(&v, 0, sizeof(v));
    if (api_no_body(req, r, "a vm config is missing"))
        return;
    int rc = check_body(req->body, &v.conf, req->ctx->cfg->name, &e);
    if (!rc)
        rc = create_vm(req, &v.conf, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    snprintf(v.owner, sizeof(v.owner), "%s", req->ctx->cfg->name);
    events_publish("vm-created", json_pack("{s:I}", "vmid", (json_int_t)v.conf.id));
    reply_json(r, MHD_HTTP_CREATED, entry_json(&v, true, true));
}

/* --- destroy */

/* 409 unless stopped: a VM that runs (or migrates) keeps its disks. */
static int check_stopped(struct api_req *req, uint32_t id, struct err *e)
{
    struct vmrec_state s;
    int rc = vmrec_state_get(req->etcd, id, 0, &s, e);
    if (rc == -ENOENT || (!rc && strcmp(s.status, "stopped") == 0))
        return 0;
    if (rc < 0)
        return rc;
    return err_set(e, EBUSY, "vm %" PRIu32 " is %s on node '%s'; stop it first", id,
                   s.status, s.node);
}

static int remove_disks(struct api_req *req, const struct vmconf *c, struct err *e)
{
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct storage_conf s;
        char path[VMCONF_PATH_MAX];
        int rc = storage_get(req->etcd, c->disks[i].storage, 0, &s, e);
        if (!rc)
            rc = storage_volume_path(&s, c->disks[i].volume, path, e);
        if (rc < 0)
            return rc;
        if (unlink(path) < 0 && errno != ENOENT)
            return err_set(e, errno, "vm %" PRIu32 ": cannot remove disk file '%s': %s",
                           c->id, path, strerror(errno));
    }
    return 0;
}

/* Under the VM's lock, so that no start or migration begins meanwhile. */
static int destroy_locked(struct api_req *req, const struct vmrec *v, struct err *e)
{
    char holder[VMLOCK_HOLDER_MAX + 1];
    const char *me = req->ctx->cfg->name;
    snprintf(holder, sizeof(holder), "%s destroy", me);
    int rc = vmops_lock(req->ctx, req->etcd, v->conf.id, holder, e);
    if (rc < 0)
        return rc;
    rc = check_stopped(req, v->conf.id, e);
    if (!rc)
        rc = remove_disks(req, &v->conf, e);
    if (!rc)
        rc = vmconf_delete(req->etcd, v->conf.id, me, e);
    struct err le;
    if (vmops_unlock(req->etcd, v->conf.id, holder, &le) < 0)
        log_warn("api", "vm %" PRIu32 ": %s", v->conf.id, le.msg);
    return rc;
}

static void delete_vm(struct api_req *req, struct reply *r)
{
    struct vmrec v;
    struct err e;
    uint32_t id;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc)
        rc = vmrec_get(req->etcd, id, 0, &v, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    if (v.owner[0] && strcmp(v.owner, req->ctx->cfg->name) != 0)
        return api_forward(req, r, v.owner);
    if (api_adopting(req, r))
        return;
    struct vmm_info info;
    vmm_info(req->ctx->vmms, id, &info);
    if (info.present)
        return reply_error(r, MHD_HTTP_CONFLICT,
                           "vm %" PRIu32 " is %s on node '%s'; "
                           "stop it first",
                           id, info.status, req->ctx->cfg->name);
    if (v.has_state && strcmp(v.state.status, "stopped") != 0)
        return reply_error(r, MHD_HTTP_CONFLICT,
                           "vm %" PRIu32 " is %s on node '%s'; "
                           "stop it first",
                           id, v.state.status, v.state.node);
    char holder[VMLOCK_HOLDER_MAX + 8];
    vmops_holder_text(v.lock, holder, sizeof(holder));
    if (v.lock[0])
        return reply_error(r, MHD_HTTP_CONFLICT, "vm %" PRIu32 " is locked by %s", id,
                           holder);
    rc = destroy_locked(req, &v, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    events_publish("vm-destroyed", json_pack("{s:I}", "vmid", (json_int_t)id));
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:I, s:b}", "id", (json_int_t)id, "destroyed", 1));
}

/* Kept last: the start, stop, console and migrate routes join this table. */
const struct api_route api_routes_vm[] = {
    {"GET", "/vms", get_vms},   {"POST", "/vms", post_vms},
    {"GET", "/vms/{}", get_vm}, {"DELETE", "/vms/{}", delete_vm},
    {NULL, NULL, NULL},
};
