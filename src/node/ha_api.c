/* The HA endpoints (docs/api.md, "HA"): GET /ha, POST /ha/{id} (make a VM
 * HA), DELETE /ha/{id}. Any node answers: the records are in etcd, and the
 * owner's HA manager arms or disarms the VM's fence on its next pass. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/ha.h"
#include "cluster/owner.h"
#include "node/http.h"

static json_t *entry(struct etcd_client *c, const struct ha_conf *conf)
{
    json_t *o = ha_conf_to_json(conf);
    json_object_set_new(o, "vmid", json_integer(conf->id));
    char owner[TERN_NAME_MAX + 1] = "";
    struct ha_state st;
    struct err e;
    vmowner_get(c, conf->id, ETCD_SERIALIZABLE, owner, NULL, &e);
    json_object_set_new(o, "owner", json_string(owner));
    if (ha_state_get(c, conf->id, ETCD_SERIALIZABLE, &st, &e) == 0)
        json_object_set_new(o, "ha_state", ha_state_to_json(&st));
    return o;
}

static void list(struct api_req *req, struct reply *r)
{
    struct ha_conf *confs;
    size_t n;
    struct err e;
    int rc = ha_conf_list(req->etcd, 0, &confs, &n, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, entry(req->etcd, &confs[i]));
    free(confs);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "ha", items));
}

static void add(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct err e;
    struct ha_conf conf;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc) {
        ha_conf_default(&conf, id);
        rc = req->body ? ha_conf_from_json(req->body, &conf, &e) : 0;
    }
    /* "stopped" until the owner's manager has armed the fence of a running
     * VM: only then may another node recover it */
    struct ha_state st = {.state = "stopped", .event = "made HA", .time = time(NULL)};
    if (!rc)
        rc = ha_conf_add(req->etcd, &conf, &st, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_CREATED, entry(req->etcd, &conf));
}

static void del(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct err e;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc)
        rc = ha_conf_remove(req->etcd, id, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:i, s:b}", "vmid", id, "removed", 1));
}

const struct api_route api_routes_ha[] = {
    {"GET", "/ha", list},
    {"POST", "/ha/{}", add},
    {"DELETE", "/ha/{}", del},
    {NULL, NULL, NULL},
};
