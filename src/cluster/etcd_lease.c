/* Leases, member status and the member list of the etcd gateway. */
#include "cluster/codec.h"
#include "cluster/etcd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int call_json(struct etcd_client *c, const char *path, json_t *req, json_t **resp,
                     struct err *e)
{
    if (!req)
        return err_set(e, ENOMEM, "etcd %s: out of memory", path);
    int rc = etcd_client_call(c, path, req, resp, e);
    json_decref(req);
    return rc;
}

int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *id, struct err *e)
{
    if (ttl_s < 1)
        return err_set(e, EINVAL, "etcd: lease ttl %d s is below 1 s", ttl_s);
    json_t *resp;
    int rc = call_json(c, "/v3/lease/grant", json_pack("{s:i}", "TTL", ttl_s), &resp, e);
    if (rc)
        return rc;
    *id = codec_int64(resp, "ID", 0);
    const char *why = json_string_value(json_object_get(resp, "error"));
    json_decref(resp);
    if (*id == 0)
        return err_set(e, EIO, "etcd: lease grant refused: %s", why ? why : "no id");
    return 0;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int *ttl_left, struct err *e)
{
    json_t *resp;
    int rc = call_json(c, "/v3/lease/keepalive",
                       json_pack("{s:o}", "ID", codec_int64_json(id)), &resp, e);
    if (rc)
        return rc;
    /* a stream with one message: {"result": {..., "TTL": "n"}}; an expired
     * lease answers with no TTL (proto3 leaves out the 0) */
    int64_t ttl = codec_int64(json_object_get(resp, "result"), "TTL", 0);
    json_decref(resp);
    if (ttl_left)
        *ttl_left = (int)ttl;
    if (ttl <= 0)
        return err_set(e, ENOENT, "etcd: lease %lld expired", (long long)id);
    return 0;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct err *e)
{
    json_t *resp;
    int rc = call_json(c, "/v3/lease/revoke",
                       json_pack("{s:o}", "ID", codec_int64_json(id)), &resp, e);
    json_decref(resp);
    return rc;
}

int etcd_status(struct etcd_client *c, struct etcd_status *st, struct err *e)
{
    memset(st, 0, sizeof(*st));
    json_t *resp;
    int rc = call_json(c, "/v3/maintenance/status", json_object(), &resp, e);
    if (rc)
        return rc;
    json_t *hdr = json_object_get(resp, "header");
    st->member_id = codec_uint64(hdr, "member_id", 0);
    st->revision = codec_int64(hdr, "revision", 0);
    /* "leader" is left out when the member has none (proto3 default 0) */
    st->leader_id = codec_uint64(resp, "leader", 0);
    st->raft_term = codec_uint64(resp, "raftTerm", codec_uint64(resp, "raft_term", 0));
    st->raft_index = codec_uint64(resp, "raftIndex", codec_uint64(resp, "raft_index", 0));
    const char *v = json_string_value(json_object_get(resp, "version"));
    snprintf(st->version, sizeof(st->version), "%s", v ? v : "");
    json_decref(resp);
    return 0;
}

static void first_url(json_t *m, const char *field, char *out, size_t size)
{
    const char *u = json_string_value(json_array_get(json_object_get(m, field), 0));
    snprintf(out, size, "%s", u ? u : "");
}

int etcd_member_list(struct etcd_client *c, struct etcd_member_info *out, size_t max,
                     size_t *count, struct err *e)
{
    *count = 0;
    json_t *resp;
    int rc = call_json(c, "/v3/cluster/member/list", json_object(), &resp, e);
    if (rc)
        return rc;
    json_t *members = json_object_get(resp, "members");
    size_t n = json_array_size(members);
    for (size_t i = 0; i < n && *count < max; i++) {
        json_t *m = json_array_get(members, i);
        struct etcd_member_info *mi = &out[(*count)++];
        mi->id = codec_uint64(m, "ID", 0);
        const char *name = json_string_value(json_object_get(m, "name"));
        /* a member added but not yet started has no name yet */
        snprintf(mi->name, sizeof(mi->name), "%s", name ? name : "");
        first_url(m, "clientURLs", mi->client_url, sizeof(mi->client_url));
        first_url(m, "peerURLs", mi->peer_url, sizeof(mi->peer_url));
    }
    json_decref(resp);
    if (n > max)
        return err_set(e, E2BIG, "etcd: %zu members, room for %zu", n, max);
    return 0;
}
