/* Cluster membership endpoints (docs/api.md, "Cluster membership"):
 * create a cluster, join one, and the other side of a join (add the etcd
 * member, or remove it again when the joining node's etcd did not start). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "cluster/members.h"
#include "common/log.h"
#include "node/cluster_setup.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/info.h"
#include "node/peer.h"

#define B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

static const char *body_string(struct api_req *req, const char *key)
{
    return json_string_value(json_object_get(req->body, key));
}

/* A missing string field: 400 naming it. */
static bool need_string(struct api_req *req, struct reply *r, const char *key,
                        const char **out)
{
    *out = body_string(req, key);
    if (*out && **out)
        return true;
    reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: '%s' (a string) is missing", key);
    return false;
}

static bool admin_only(struct api_req *req, struct reply *r, const char *what)
{
    if (!req->from_node)
        return true;
    reply_error(r, MHD_HTTP_FORBIDDEN, "%s needs the admin token of node '%s'", what,
                req->ctx->cfg->name);
    return false;
}

/* ESHUTDOWN is "try again later", not a failure inside ternd. */
static void reply_setup_error(struct reply *r, int rc, const struct err *e)
{
    if (rc == -ESHUTDOWN)
        reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", e->msg);
    else
        reply_errno(r, rc, e);
}

static void create_cluster(struct api_req *req, struct reply *r)
{
    const char *name;
    struct err e;
    if (!admin_only(req, r, "creating a cluster") || !need_string(req, r, "name", &name))
        return;
    if (name_check(name, "cluster name", &e) < 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", e.msg);
    int rc = setup_claim(req->ctx, &e);
    if (rc < 0)
        return reply_setup_error(r, rc, &e);
    struct setup_cmd cmd = {.kind = SETUP_CREATE};
    snprintf(cmd.cluster_name, sizeof(cmd.cluster_name), "%s", name);
    rc = setup_run(req->ctx, &cmd);
    setup_unclaim(req->ctx);
    if (rc < 0)
        return reply_setup_error(r, rc, &cmd.e);
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:s, s:s}", "cluster_name", name, "node", req->ctx->cfg->name));
}

/* sha256// and the base64 of 32 bytes: 43 characters and one '='. */
static bool fingerprint_valid(const char *f)
{
    if (strlen(f) != TERND_PIN_LEN || strncmp(f, "sha256//", 8) != 0)
        return false;
    return strspn(f + 8, B64) == 43 && f[51] == '=';
}

static bool address_valid(const char *a)
{
    const char *colon = strrchr(a, ':');
    return strlen(a) < 120 && colon && colon != a && colon[1] &&
           strspn(colon + 1, "0123456789") == strlen(colon + 1) && !strpbrk(a, "/ \t@?#");
}

static bool join_body(struct api_req *req, struct reply *r, const char **address,
                      const char **token, const char **fingerprint)
{
    if (!need_string(req, r, "address", address) || !need_string(req, r, "token", token) ||
        !need_string(req, r, "fingerprint", fingerprint))
        return false;
    if (!address_valid(*address))
        reply_error(r, MHD_HTTP_BAD_REQUEST, "address '%.120s' is not host:port", *address);
    else if (!cluster_token_valid(*token))
        reply_error(r, MHD_HTTP_BAD_REQUEST, "token is not %d hex characters",
                    TERND_TOKEN_LEN);
    else if (!fingerprint_valid(*fingerprint))
        reply_error(r, MHD_HTTP_BAD_REQUEST,
                    "fingerprint '%.80s' is not of the form "
                    "sha256//<44 base64 characters>",
                    *fingerprint);
    else
        return true;
    return false;
}

/* A remote error as this reply: its status and text, except that its
 * 401 must not read as a wrong token of this request. */
static void reply_remote(struct reply *r, const char *address, long status, json_t *body)
{
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (status == MHD_HTTP_UNAUTHORIZED)
        return reply_error(r, MHD_HTTP_FORBIDDEN, "node at %s refused the token: %s",
                           address, msg ? msg : "unauthorized");
    if (status < 400 || status > 599)
        status = MHD_HTTP_BAD_GATEWAY;
    if (msg)
        return reply_error(r, (unsigned)status, "%s", msg);
    reply_error(r, (unsigned)status, "node at %s answered http %ld", address, status);
}

/* Asks the node at address to add this node's etcd member; fills cmd. */
static bool join_ask(struct api_req *req, struct reply *r, struct peer *p,
                     const char *address, struct setup_cmd *cmd)
{
    const struct ternd_config *cfg = req->ctx->cfg;
    json_t *ask = json_pack("{s:s, s:s}", "name", cfg->name, "peer_url", cfg->peer_address);
    json_t *ans = NULL;
    long status = 0;
    struct err e;
    int rc = peer_call(p, "POST", "/api/" TERN_API_VERSION "/cluster/members", ask, &status,
                       &ans, &e);
    json_decref(ask);
    bool ok = false;
    const char *initial = json_string_value(json_object_get(ans, "initial_cluster"));
    const char *token = json_string_value(json_object_get(ans, "cluster_token"));
    const char *name = json_string_value(json_object_get(ans, "cluster_name"));
    if (rc < 0)
        reply_error(r, rc == -ENOMEM ? 500 : MHD_HTTP_BAD_GATEWAY, "%s", e.msg);
    else if (status != MHD_HTTP_OK)
        reply_remote(r, address, status, ans);
    else if (!initial || strlen(initial) >= sizeof(cmd->initial_cluster) ||
             !cluster_token_valid(token) || !name || strlen(name) > TERN_NAME_MAX)
        reply_error(r, MHD_HTTP_BAD_GATEWAY,
                    "node at %s answered without a valid "
                    "initial_cluster, cluster_token and cluster_name",
                    address);
    else
        ok = true;
    if (ok) {
        snprintf(cmd->initial_cluster, sizeof(cmd->initial_cluster), "%s", initial);
        snprintf(cmd->token, sizeof(cmd->token), "%s", token);
        snprintf(cmd->cluster_name, sizeof(cmd->cluster_name), "%s", name);
    }
    json_decref(ans);
    return ok;
}

/* etcd did not start here although the cluster now counts this member:
 * take it out again, or the cluster may wait for it forever. */
static void join_undo(struct api_req *req, struct reply *r, struct peer *p,
                      const char *address, const struct setup_cmd *cmd)
{
    const char *peer_url = req->ctx->cfg->peer_address;
    json_t *ask = json_pack("{s:s}", "peer_url", peer_url), *ans = NULL;
    long status = 0;
    struct err e;
    int rc = peer_call(p, "POST", "/api/" TERN_API_VERSION "/cluster/members/remove", ask,
                       &status, &ans, &e);
    json_decref(ask);
    char undo[900];
    const char *msg = json_string_value(json_object_get(ans, "error"));
    if (!rc && status == MHD_HTTP_OK)
        snprintf(undo, sizeof(undo), "the member was removed from the cluster again");
    else
        snprintf(undo, sizeof(undo),
                 "removing the member %s through %s failed too: %s "
                 "(join again once etcd can start, or remove it with etcd member remove)",
                 peer_url, address,
                 rc < 0 ? e.msg
                 : msg  ? msg
                        : "no reason given");
    json_decref(ans);
    log_error("ternd", "joining cluster '%s': etcd did not start: %s; %s",
              cmd->cluster_name, cmd->e.msg, undo);
    reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR,
                "joined cluster '%s' as an etcd member, "
                "but etcd did not start here: %s; %s",
                cmd->cluster_name, cmd->e.msg, undo);
}

static size_t members_in(const char *initial_cluster)
{
    size_t n = 1;
    for (const char *c = initial_cluster; *c; c++)
        n += *c == ',';
    return n;
}

static void join_cluster(struct api_req *req, struct reply *r)
{
    const char *address, *token, *fingerprint;
    if (!admin_only(req, r, "joining a cluster") ||
        !join_body(req, r, &address, &token, &fingerprint))
        return;
    struct err e;
    int rc = setup_claim(req->ctx, &e);
    if (rc < 0)
        return reply_setup_error(r, rc, &e);
    struct peer p;
    struct setup_cmd cmd = {.kind = SETUP_JOIN};
    rc = peer_init_address(&p, address, fingerprint, token, &e);
    if (rc < 0) {
        reply_errno(r, rc, &e);
    } else if (join_ask(req, r, &p, address, &cmd)) {
        if (setup_run(req->ctx, &cmd) < 0)
            join_undo(req, r, &p, address, &cmd);
        else
            reply_json(r, MHD_HTTP_OK,
                       json_pack("{s:s, s:s, s:I}", "cluster_name", cmd.cluster_name,
                                 "node", req->ctx->cfg->name, "members",
                                 (json_int_t)members_in(cmd.initial_cluster)));
    }
    peer_release(&p);
    setup_unclaim(req->ctx);
}

/* Cluster name and token for a joining node: cached once registered,
 * else this member's copy (neither ever changes). */
static int identity(struct api_req *req, char name[TERN_NAME_MAX + 1],
                    char token[CLUSTER_TOKEN_LEN + 1], struct err *e)
{
    node_ctx_in_cluster(req->ctx, name);
    node_ctx_cluster_token(req->ctx, token);
    int rc = 0;
    if (!name[0])
        rc = cluster_name_get(req->etcd, ETCD_SERIALIZABLE, name, e);
    if (!rc && !token[0])
        rc = cluster_token_get(req->etcd, ETCD_SERIALIZABLE, token, e);
    if (rc == -ENOENT)
        rc = err_set(e, EAGAIN, "the cluster has no %s yet: try again in a moment",
                     name[0] ? "token" : "name");
    return rc;
}

static bool in_cluster(struct api_req *req, struct reply *r)
{
    if (node_ctx_in_cluster(req->ctx, NULL))
        return true;
    reply_error(r, MHD_HTTP_CONFLICT, "node '%s' is in no cluster", req->ctx->cfg->name);
    return false;
}

static bool peer_url_valid(const char *u)
{
    return strncmp(u, "http://", 7) == 0 && strlen(u) > 7 && strlen(u) < 120 &&
           !strpbrk(u, ", \t=");
}

static void add_member(struct api_req *req, struct reply *r)
{
    const char *name, *peer_url;
    struct err e;
    if (!need_string(req, r, "name", &name) || !need_string(req, r, "peer_url", &peer_url))
        return;
    if (name_check(name, "node name", &e) < 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", e.msg);
    if (!peer_url_valid(peer_url))
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "peer_url '%.120s' is not an "
                           "http://host:port url",
                           peer_url);
    if (!in_cluster(req, r))
        return;
    char cluster[TERN_NAME_MAX + 1], token[CLUSTER_TOKEN_LEN + 1];
    struct cluster_join j;
    int rc = identity(req, cluster, token, &e);
    if (!rc)
        rc = cluster_member_add(req->etcd, name, peer_url, &j, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    log_info("api", "node %s (%s) joins cluster '%s'%s", name, peer_url, cluster,
             j.again ? " (its member was added before)" : "");
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:s, s:s, s:s, s:I}", "cluster_name", cluster, "initial_cluster",
                         j.initial_cluster, "cluster_token", token, "members",
                         (json_int_t)j.members));
    explicit_bzero(token, sizeof(token));
}

static void remove_member(struct api_req *req, struct reply *r)
{
    const char *peer_url;
    struct err e;
    if (!need_string(req, r, "peer_url", &peer_url) || !in_cluster(req, r))
        return;
    int rc = cluster_member_remove_unstarted(req->etcd, peer_url, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:b}", "peer_url", peer_url, "removed", 1));
}

const struct api_route api_routes_members[] = {
    {"POST", "/cluster", create_cluster},
    {"POST", "/cluster/join", join_cluster},
    {"POST", "/cluster/members", add_member},
    {"POST", "/cluster/members/remove", remove_member},
    {NULL, NULL, NULL},
};
