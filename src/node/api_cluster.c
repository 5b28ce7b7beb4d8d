/* Cluster-wide endpoints (docs/api.md): status, nodes, version, storage
 * and options. The membership endpoints are in node/api_members.c. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/members.h"
#include "cluster/node.h"
#include "cluster/quorum.h"
#include "cluster/vmconf.h"
#include "node/ctx.h"
#include "node/events.h"
#include "node/http.h"
#include "node/info.h"

static json_t *member_json(const struct cluster_member *m, uint64_t leader)
{
    char id[20];
    snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->id);
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:I}", "name", m->name, "id", id,
                     "client_url", m->client_url, "reachable", m->reachable, "leader",
                     leader && m->id == leader, "raft_term", (json_int_t)m->raft_term);
}

#define NO_CLUSTER                                               \
    "this node is in no cluster: 'tern cluster create NAME' or " \
    "'tern cluster join ADDRESS'"

/* The same fields as in a cluster, so that clients need no second shape. */
static json_t *status_no_cluster(const struct node_ctx *x)
{
    return json_pack("{s:s, s:b, s:b, s:n, s:s, s:[], s:i, s:i, s:n, s:i, s:s, s:s}",
                     "node", x->cfg->name, "in_cluster", 0, "quorate", 0, "cluster_name",
                     "fingerprint", x->secrets->pin, "members", "member_count", 0,
                     "members_reachable", 0, "leader", "raft_term", 0, "etcd_version", "",
                     "reason", NO_CLUSTER);
}

/* Cached once registered; before that this member's copy (it never
 * changes, so a stale read is as good). NULL when unknown. */
static json_t *cluster_name_json(struct api_req *req)
{
    char name[TERN_NAME_MAX + 1];
    struct err e;
    node_ctx_in_cluster(req->ctx, name);
    if (!name[0] && cluster_name_get(req->etcd, ETCD_SERIALIZABLE, name, &e) < 0)
        return json_null();
    return json_string(name);
}

static void get_status(struct api_req *req, struct reply *r)
{
    if (!node_ctx_in_cluster(req->ctx, NULL))
        return reply_json(r, MHD_HTTP_OK, status_no_cluster(req->ctx));
    struct cluster_info info;
    struct err e;
    memset(&info, 0, sizeof(info));
    int rc = cluster_quorate(req->etcd, &info, &e);
    json_t *members = json_array();
    for (size_t i = 0; i < info.member_count && i < CLUSTER_MEMBERS_MAX; i++)
        json_array_append_new(members, member_json(&info.members[i], info.leader_id));
    r->status = MHD_HTTP_OK;
    r->body = json_pack("{s:s, s:b, s:b, s:o, s:s, s:o, s:I, s:I, s:s?, s:I, s:s}", "node",
                        req->ctx->cfg->name, "in_cluster", 1, "quorate", !rc,
                        "cluster_name", cluster_name_json(req), "fingerprint",
                        req->ctx->secrets->pin, "members", members, "member_count",
                        (json_int_t)info.member_count, "members_reachable",
                        (json_int_t)info.members_reachable, "leader",
                        info.leader_id ? info.leader_name : NULL, "raft_term",
                        (json_int_t)info.raft_term, "etcd_version", info.version);
    if (rc && r->body)
        json_object_set_new(r->body, "reason", json_string(e.msg));
}

static json_t *node_json(const struct node_entry *n)
{
    json_t *info = json_loads(n->info ? n->info : "{}", 0, NULL);
    return json_pack("{s:s, s:b, s:o}", "name", n->name, "online", n->online, "info",
                     info ? info : json_null());
}

/* Linearizable first; without quorum the local member's copy, marked stale
 * (the issue: reads of the local view still work). */
static void get_nodes(struct api_req *req, struct reply *r)
{
    struct node_entries l;
    struct err e;
    bool stale = false;
    if (!node_ctx_in_cluster(req->ctx, NULL))
        return reply_error(r, MHD_HTTP_CONFLICT, NO_CLUSTER);
    node_entries_init(&l);
    int rc = node_list(req->etcd, 0, &l, &e);
    if (rc == -ETCD_NOT_QUORATE) {
        stale = true;
        node_entries_release(&l);
        node_entries_init(&l);
        rc = node_list(req->etcd, ETCD_SERIALIZABLE, &l, &e);
    }
    if (rc < 0) {
        reply_errno(r, rc, &e);
    } else {
        json_t *nodes = json_array();
        struct vmrecs vms;
        struct err ignored;
        bool counted = vmrec_list(req->etcd, stale ? ETCD_SERIALIZABLE : 0, &vms,
                                  &ignored) == 0;
        for (size_t i = 0; i < l.count; i++) {
            json_t *n = node_json(&l.items[i]);
            json_int_t owned = 0;
            for (size_t k = 0; counted && k < vms.count; k++)
                owned += strcmp(vms.items[k].owner, l.items[i].name) == 0;
            json_object_set_new(n, "vms", counted ? json_integer(owned) : json_null());
            json_array_append_new(nodes, n);
        }
        if (counted)
            vmrecs_release(&vms);
        r->status = MHD_HTTP_OK;
        r->body = json_pack("{s:b, s:o}", "stale", stale, "nodes", nodes);
    }
    node_entries_release(&l);
}

static void get_version(struct api_req *req, struct reply *r)
{
    r->status = MHD_HTTP_OK;
    r->body = json_pack("{s:s, s:s, s:s}", "version", TERN_VERSION, "api", TERN_API_VERSION,
                        "node", req->ctx->cfg->name);
}

/* Storage and cluster option endpoints (docs/api.md "Storage" and "GET
 * /cluster/options"). Definitions live in etcd (cluster/vmconf.h); nothing
 * here touches a disk: VM creation makes the directories and files. */
static void get_storage(struct api_req *req, struct reply *r)
{
    struct storage_confs l;
    struct err e;
    bool stale = false;
    int rc = storage_list(req->etcd, 0, &l, &e);
    if (rc == -ETCD_NOT_QUORATE) { /* the local member's copy, marked so */
        stale = true;
        rc = storage_list(req->etcd, ETCD_SERIALIZABLE, &l, &e);
    }
    if (rc < 0)
        return reply_errno(r, rc, &e);
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(items, storage_conf_to_json(&l.items[i]));
    storage_confs_release(&l);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:b, s:o}", "stale", stale, "storage", items));
}

/* The path as the storage will use it, checked on this node: a shared one
 * must be a directory here already (the same files on every node); a
 * local one is made on a node when its first disk is, so the nearest
 * existing parent must be a directory ternd can write. Other nodes check
 * theirs when a disk is made there. */
static int check_storage_path(const struct storage_conf *s, const char *node, struct err *e)
{
    struct stat st;
    if (s->shared) {
        if (stat(s->path, &st) < 0)
            return err_set(e, EINVAL,
                           "storage '%s': shared path '%s' does not exist on node "
                           "'%s': %s",
                           s->name, s->path, node, strerror(errno));
        if (!S_ISDIR(st.st_mode))
            return err_set(e, EINVAL,
                           "storage '%s': shared path '%s' on node '%s' is not a "
                           "directory",
                           s->name, s->path, node);
        return 0;
    }
    char dir[sizeof(s->path)];
    snprintf(dir, sizeof(dir), "%s", s->path);
    while (stat(dir, &st) < 0 && strrchr(dir, '/') && dir[1])
        *(strrchr(dir, '/') == dir ? dir + 1 : strrchr(dir, '/')) = '\0';
    if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0)
        return err_set(e, EINVAL,
                       "storage '%s': local path '%s' cannot be made on node '%s' "
                       "('%s' is not a writable directory)",
                       s->name, s->path, node, dir);
    return 0;
}

static void post_storage(struct api_req *req, struct reply *r)
{
    struct storage_conf s;
    struct err e;
    if (api_no_body(req, r,
                    "a storage definition {\"name\", \"path\", \"shared\"} "
                    "is missing"))
        return;
    int rc = storage_conf_from_json(req->body, &s, &e);
    if (!rc)
        rc = check_storage_path(&s, req->ctx->cfg->name, &e);
    if (!rc)
        rc = storage_put_new(req->etcd, &s, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    events_publish("storage-added", json_pack("{s:s}", "name", s.name));
    reply_json(r, MHD_HTTP_CREATED, storage_conf_to_json(&s));
}

static void delete_storage(struct api_req *req, struct reply *r)
{
    struct err e;
    const char *name = req->args[0];
    int rc = name_check(name, "storage name", &e);
    if (!rc)
        rc = storage_delete(req->etcd, name, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    events_publish("storage-removed", json_pack("{s:s}", "name", name));
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "name", name, "removed", 1));
}

/* The options object with "stale" beside "migration". */
static json_t *options_json(const struct cluster_options *o, bool stale)
{
    json_t *j = cluster_options_to_json(o);
    if (j)
        json_object_set_new(j, "stale", json_boolean(stale));
    return j;
}

static void get_options(struct api_req *req, struct reply *r)
{
    struct cluster_options o;
    struct err e;
    bool stale = false;
    int rc = cluster_options_get(req->etcd, 0, &o, &e);
    if (rc == -ETCD_NOT_QUORATE) {
        stale = true;
        rc = cluster_options_get(req->etcd, ETCD_SERIALIZABLE, &o, &e);
    }
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, options_json(&o, stale));
}

static void put_options(struct api_req *req, struct reply *r)
{
    struct cluster_options o;
    struct err e;
    if (api_no_body(req, r, "options {\"migration\": {...}} are missing"))
        return;
    /* "stale" as GET shows it may come back: it is not an option */
    json_t *body = json_deep_copy(req->body);
    if (body)
        json_object_del(body, "stale");
    int rc = body ? cluster_options_change(req->etcd, body, &o, &e)
                  : err_set(&e, ENOMEM, "out of memory");
    json_decref(body);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, options_json(&o, false));
}

const struct api_route api_routes_cluster[] = {
    {"GET", "/cluster/status", get_status},
    {"GET", "/nodes", get_nodes},
    {"GET", "/version", get_version},
    {"GET", "/storage", get_storage},
    {"POST", "/storage", post_storage},
    {"DELETE", "/storage/{}", delete_storage},
    {"GET", "/cluster/options", get_options},
    {"PUT", "/cluster/options", put_options},
    {NULL, NULL, NULL},
};
