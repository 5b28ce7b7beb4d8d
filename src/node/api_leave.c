/* Nodes leaving the cluster (docs/api.md, "Leaving the cluster"): this
 * node leaves (POST /cluster/leave, the main loop does it: it owns the
 * etcd member), or a dead node is removed by another (DELETE
 * /nodes/{name}). Both refuse while the node owns VMs, naming them: a VM
 * must never belong to a node that is no longer there. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "cluster/members.h"
#include "cluster/node.h"
#include "cluster/vmconf.h"
#include "common/log.h"
#include "node/cluster_setup.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/vmm.h"

#define VM_LIST_MAX 400

/* The ids of the VMs node owns, "100, 101" into list; *n how many. */
static int owned_vms(struct api_req *req, const char *node, char list[VM_LIST_MAX],
                     unsigned *n, struct err *e)
{
    struct vmrecs vms;
    *n = 0;
    list[0] = '\0';
    int rc = vmrec_list(req->etcd, 0, &vms, e);
    if (rc)
        return rc;
    size_t used = 0;
    for (size_t i = 0; i < vms.count; i++) {
        if (strcmp(vms.items[i].owner, node) != 0)
            continue;
        if (used + 16 < VM_LIST_MAX)
            used += (size_t)snprintf(list + used, VM_LIST_MAX - used, "%s%u",
                                     *n ? ", " : "", vms.items[i].conf.id);
        else if (!strstr(list, "..."))
            used += (size_t)snprintf(list + used, VM_LIST_MAX - used, ", ...");
        (*n)++;
    }
    vmrecs_release(&vms);
    return 0;
}

/* 409 naming the VMs while node owns any (or 503 without quorum). */
static bool owns_nothing(struct api_req *req, struct reply *r, const char *node)
{
    char list[VM_LIST_MAX];
    unsigned n;
    struct err e;
    int rc = owned_vms(req, node, list, &n, &e);
    if (rc < 0)
        reply_errno(r, rc, &e);
    else if (n)
        reply_error(r, MHD_HTTP_CONFLICT,
                    "node '%s' owns %s %s: migrate %s to another node or destroy %s "
                    "first",
                    node, n == 1 ? "vm" : "vms", list, n == 1 ? "it" : "them",
                    n == 1 ? "it" : "them");
    return !rc && !n;
}

/* tern-vmm processes this node still supervises (an incoming migration,
 * a VM whose owner key moved but whose process did not end yet). */
static bool no_vmm_here(struct api_req *req, struct reply *r)
{
    uint32_t ids[VMM_MAX];
    unsigned n = vmm_list(req->ctx->vmms, ids);
    if (!n)
        return true;
    reply_error(r, MHD_HTTP_CONFLICT,
                "node '%s' still runs tern-vmm for vm %u%s: stop it first",
                req->ctx->cfg->name, ids[0], n > 1 ? " and others" : "");
    return false;
}

static bool admin(struct api_req *req, struct reply *r, const char *what)
{
    if (!req->from_node)
        return true;
    reply_error(r, MHD_HTTP_FORBIDDEN, "%s needs the admin token of node '%s'", what,
                req->ctx->cfg->name);
    return false;
}

static void leave(struct api_req *req, struct reply *r)
{
    char cluster[TERN_NAME_MAX + 1];
    struct err e;
    const char *me = req->ctx->cfg->name;
    if (!admin(req, r, "leaving the cluster"))
        return;
    if (!node_ctx_in_cluster(req->ctx, cluster))
        return reply_error(r, MHD_HTTP_CONFLICT, "node '%s' is in no cluster", me);
    if (!owns_nothing(req, r, me) || !no_vmm_here(req, r))
        return;
    int rc = setup_claim_leave(req->ctx, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    struct setup_cmd cmd = {.kind = SETUP_LEAVE};
    rc = setup_run(req->ctx, &cmd);
    setup_unclaim(req->ctx);
    if (rc < 0)
        return reply_errno(r, rc, &cmd.e);
    reply_json(
        r, MHD_HTTP_OK,
        json_pack("{s:s, s:s, s:b}", "node", me, "cluster_name", cluster, "left", 1));
}

/* A node is removed by another only while it is offline: a node that runs
 * leaves by itself, so that it also stops its etcd and forgets the CA. */
static int offline_node(struct api_req *req, const char *name, bool *known, struct err *e)
{
    struct node_entries l;
    node_entries_init(&l);
    int rc = node_list(req->etcd, 0, &l, e);
    *known = false;
    for (size_t i = 0; !rc && i < l.count; i++) {
        if (strcmp(l.items[i].name, name) != 0)
            continue;
        *known = true;
        if (l.items[i].online)
            rc = err_set(e, EBUSY,
                         "node '%s' is online: run 'tern cluster leave' on it (or stop "
                         "its ternd first)",
                         name);
    }
    node_entries_release(&l);
    return rc;
}

static void remove_node(struct api_req *req, struct reply *r)
{
    const char *name = req->args[0];
    struct err e;
    bool known;
    uint64_t id = 0;
    if (!admin(req, r, "removing a node"))
        return;
    if (name_check(name, "node name", &e) < 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", e.msg);
    if (strcmp(name, req->ctx->cfg->name) == 0)
        return reply_error(r, MHD_HTTP_CONFLICT,
                           "node '%s' is this node: use 'tern cluster leave' here", name);
    int rc = offline_node(req, name, &known, &e);
    if (rc < 0 || !owns_nothing(req, r, name))
        return rc < 0 ? reply_errno(r, rc, &e) : (void)0;
    /* the member first: a retry after a failure in between still finds
     * the record and removes it */
    rc = cluster_member_remove(req->etcd, name, &id, &e);
    if (rc == -ENOENT && known)
        rc = 0; /* a record without a member: a join that never finished */
    if (!rc)
        rc = node_forget(req->etcd, name, &e);
    if (rc == -ENOENT && id)
        rc = 0; /* a member that never registered */
    if (rc < 0)
        return reply_errno(r, rc, &e);
    log_info("api", "node %s removed from the cluster (etcd member %016llx)", name,
             (unsigned long long)id);
    char hex[20];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)id);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:s, s:b, s:s?}", "node", name, "removed", 1, "etcd_member",
                         id ? hex : NULL));
}

const struct api_route api_routes_leave[] = {
    {"POST", "/cluster/leave", leave},
    {"DELETE", "/nodes/{}", remove_node},
    {NULL, NULL, NULL},
};
