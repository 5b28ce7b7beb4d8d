/* Storage and cluster option endpoints (docs/api.md "Storage" and "GET
 * /cluster/options"). Definitions live in etcd (cluster/vmconf.h); nothing
 * here touches a disk: VM creation makes the directories and files. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <string.h>

#include "cluster/vmconf.h"
#include "node/http.h"
#include "node/ternd.h"

static void get_storage(struct api_req *req, struct reply *r)
{
    struct storage_confs l;
    struct err e;
    bool stale = false;
    int rc = storage_list(req->etcd, 0, &l, &e);
    if (rc == -ETCD_NOT_QUORATE) {   /* the local member's copy, marked so */
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

static void post_storage(struct api_req *req, struct reply *r)
{
    struct storage_conf s;
    struct err e;
    if (!req->body)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: a storage definition "
                           "{\"name\", \"path\", \"shared\"} is missing");
    int rc = storage_conf_from_json(req->body, &s, &e);
    if (rc == 0)
        rc = storage_put_new(req->etcd, &s, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_CREATED, storage_conf_to_json(&s));
}

static void delete_storage(struct api_req *req, struct reply *r)
{
    struct err e;
    const char *name = req->args[0];
    int rc = keys_check_name(name, "storage name", &e);
    if (rc == 0)
        rc = storage_delete(req->etcd, name, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
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
    if (!req->body)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: options "
                           "{\"migration\": {...}} are missing");
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

const struct api_route api_routes_storage[] = {
    {"GET", "/storage", get_storage},
    {"POST", "/storage", post_storage},
    {"DELETE", "/storage/{}", delete_storage},
    {"GET", "/cluster/options", get_options},
    {"PUT", "/cluster/options", put_options},
    {NULL, NULL, NULL},
};
