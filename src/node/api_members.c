/* Cluster membership endpoints (docs/api.md, "Cluster membership"):
 * create a cluster, join one, and the other side of a join (add the etcd
 * member, or remove it again when the joining node's etcd did not start). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/members.h"
#include "common/log.h"
#include "node/cluster_setup.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/info.h"
#include "node/peer.h"
#include "node/pki.h"

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

/* A cluster made at run time runs etcd with TLS and client certificates
 * only: a node whose config has http:// addresses can be in a static
 * cluster (initial_cluster) but neither create nor join one. */
static bool tls_configured(struct api_req *req, struct reply *r, const char *what)
{
    const struct ternd_config *cfg = req->ctx->cfg;
    if (cfg->etcd_tls)
        return true;
    reply_error(r, MHD_HTTP_CONFLICT,
                "node '%s' cannot %s: its cluster_address '%s' is plain http, and a "
                "cluster made at run time runs etcd with TLS and client certificates "
                "(use https:// addresses in its config)",
                cfg->name, what, cfg->cluster_address);
    return false;
}

static void create_cluster(struct api_req *req, struct reply *r)
{
    const char *name;
    struct err e;
    if (!admin_only(req, r, "creating a cluster") || !need_string(req, r, "name", &name))
        return;
    if (name_check(name, "cluster name", &e) < 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", e.msg);
    if (!tls_configured(req, r, "create a cluster"))
        return;
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

static bool pem_valid(const char *pem)
{
    return pem && strlen(pem) < PKI_PEM_MAX &&
           strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0;
}

/* The other node's 200 answer into cmd and DATA_DIR/pki; false with a 502
 * (or the write's error) in r when something is missing. */
static bool join_take(struct api_req *req, struct reply *r, const char *address,
                      json_t *ans, struct setup_cmd *cmd)
{
    const char *initial = json_string_value(json_object_get(ans, "initial_cluster"));
    const char *token = json_string_value(json_object_get(ans, "cluster_token"));
    const char *name = json_string_value(json_object_get(ans, "cluster_name"));
    const char *ca = json_string_value(json_object_get(ans, "ca"));
    const char *cert = json_string_value(json_object_get(ans, "cert"));
    struct err e;
    int rc;
    if (!initial || strlen(initial) >= sizeof(cmd->initial_cluster) ||
        !cluster_token_valid(token) || !name || strlen(name) > TERN_NAME_MAX)
        reply_error(r, MHD_HTTP_BAD_GATEWAY,
                    "node at %s answered without a valid "
                    "initial_cluster, cluster_token and cluster_name",
                    address);
    else if (!pem_valid(ca) || !pem_valid(cert))
        reply_error(r, MHD_HTTP_BAD_GATEWAY,
                    "node at %s answered without the cluster CA and a certificate for "
                    "node '%s'",
                    address, req->ctx->cfg->name);
    else if ((rc = pki_write(&req->ctx->secrets->pki, ca, cert, cmd->key_pem, &e)) < 0)
        reply_errno(r, rc, &e);
    else {
        snprintf(cmd->initial_cluster, sizeof(cmd->initial_cluster), "%s", initial);
        snprintf(cmd->token, sizeof(cmd->token), "%s", token);
        snprintf(cmd->cluster_name, sizeof(cmd->cluster_name), "%s", name);
        return true;
    }
    return false;
}

/* Asks the node at address to add this node's etcd member and sign its
 * certificate; fills cmd and DATA_DIR/pki. */
static bool join_ask(struct api_req *req, struct reply *r, struct peer *p,
                     const char *address, struct setup_cmd *cmd)
{
    const struct ternd_config *cfg = req->ctx->cfg;
    json_t *ask = json_pack("{s:s, s:s, s:s, s:s}", "name", cfg->name, "peer_url",
                            cfg->peer_address, "client_url", cfg->cluster_address,
                            "public_key", cmd->pub_pem);
    json_t *ans = NULL;
    long status = 0;
    struct err e;
    int rc = peer_call(p, "POST", "/api/" TERN_API_VERSION "/cluster/members", ask, &status,
                       &ans, &e);
    json_decref(ask);
    bool ok = false;
    if (rc < 0)
        reply_error(r, rc == -ENOMEM ? 500 : MHD_HTTP_BAD_GATEWAY, "%s", e.msg);
    else if (status != MHD_HTTP_OK)
        reply_remote(r, address, status, ans);
    else
        ok = join_take(req, r, address, ans, cmd);
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
    /* with the cluster token: a one-time join token is used up by now */
    snprintf(p->token, sizeof(p->token), "%s", cmd->token);
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
    if (!tls_configured(req, r, "join a cluster"))
        return;
    int rc = setup_claim(req->ctx, &e);
    if (rc < 0)
        return reply_setup_error(r, rc, &e);
    struct peer p;
    struct setup_cmd cmd = {.kind = SETUP_JOIN};
    rc = peer_init_address(&p, address, fingerprint, token, &e);
    if (!rc)
        rc = pki_key_make(&cmd.key_pem, &cmd.pub_pem, &e);
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
    setup_cmd_release(&cmd);
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

/* The joining node's URLs use the scheme of this node's: a plain-http
 * member in a cluster with TLS (or the reverse) could not talk to the
 * others at all, so it is refused with the reason. */
static bool url_valid(struct api_req *req, struct reply *r, const char *what, const char *u)
{
    bool tls = req->ctx->cfg->etcd_tls;
    const char *scheme = tls ? "https://" : "http://";
    size_t n = strlen(scheme);
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        reply_error(r, MHD_HTTP_BAD_REQUEST, "%s '%.120s' is not an https://host:port url",
                    what, u);
    else if (strncmp(u, scheme, n) != 0)
        reply_error(r, MHD_HTTP_CONFLICT,
                    "%s '%.120s': this cluster runs etcd %s, so a member with %s "
                    "addresses cannot join it",
                    what, u, tls ? "with TLS and client certificates" : "without TLS",
                    tls ? "http://" : "https://");
    else if (strlen(u) <= n || strlen(u) >= 120 || strpbrk(u, ", \t="))
        reply_error(r, MHD_HTTP_BAD_REQUEST, "%s '%.120s' is not a %shost:port url", what,
                    u, scheme);
    else
        return true;
    return false;
}

/* The joining node's certificate, signed with the cluster's CA, before
 * its member is added (from then on the cluster may not be quorate until
 * the new member runs). Nothing without TLS. */
static int sign_joiner(struct api_req *req, const char *name, const char *ca,
                       const char *ca_key, char **cert, struct err *e)
{
    const char *urls[] = {body_string(req, "peer_url"), body_string(req, "client_url")};
    *cert = NULL;
    if (!ca)
        return 0;
    return pki_sign(ca, ca_key, body_string(req, "public_key"), name, urls, 2, cert, e);
}

/* A one-time join token instead of the admin or cluster token: used up
 * here, before anything else (a request with a bad body uses it up too),
 * so that it can never serve twice. */
static int take_join_token(struct api_req *req, struct err *e)
{
    if (!req->join_token)
        return 0;
    if (!cluster_token_valid(req->join_token))
        return err_set(e, EACCES, "missing or wrong bearer token");
    char hash[65];
    pki_token_hash(req->join_token, hash);
    int rc = cluster_join_token_take(req->etcd, hash, e);
    if (rc == -EACCES)
        log_warn("api", "a join token was refused: %s", e->msg);
    return rc;
}

static bool member_body(struct api_req *req, struct reply *r, const char **name,
                        const char **peer_url)
{
    struct err e;
    const char *client_url = body_string(req, "client_url");
    if (!need_string(req, r, "name", name) || !need_string(req, r, "peer_url", peer_url))
        return false;
    if (name_check(*name, "node name", &e) < 0) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", e.msg);
        return false;
    }
    if (!url_valid(req, r, "peer_url", *peer_url) ||
        (client_url && !url_valid(req, r, "client_url", client_url)))
        return false;
    if (req->ctx->cfg->etcd_tls &&
        (!client_url || !pki_pub_valid(body_string(req, "public_key")))) {
        reply_error(r, MHD_HTTP_BAD_REQUEST,
                    "request body: 'client_url' and 'public_key' (a PEM public key) are "
                    "needed: this cluster runs etcd with TLS");
        return false;
    }
    return in_cluster(req, r);
}

static void add_member(struct api_req *req, struct reply *r)
{
    const char *name, *peer_url;
    struct err e;
    /* a join token is the authentication: before anything else */
    int rc = take_join_token(req, &e);
    if (rc < 0)
        return rc == -EACCES ? reply_error(r, MHD_HTTP_UNAUTHORIZED, "%s", e.msg)
                             : reply_errno(r, rc, &e);
    if (!member_body(req, r, &name, &peer_url))
        return;
    char cluster[TERN_NAME_MAX + 1], token[CLUSTER_TOKEN_LEN + 1];
    char *cert = NULL, *ca = NULL, *ca_key = NULL;
    struct cluster_join j;
    rc = identity(req, cluster, token, &e);
    if (!rc && req->ctx->cfg->etcd_tls)
        rc = cluster_ca_get(req->etcd, &ca, &ca_key, &e);
    if (!rc)
        rc = sign_joiner(req, name, ca, ca_key, &cert, &e);
    if (!rc)
        rc = cluster_member_add(req->etcd, name, peer_url, &j, &e);
    if (rc < 0) {
        reply_errno(r, rc, &e);
    } else {
        log_info("api", "node %s (%s) joins cluster '%s'%s%s", name, peer_url, cluster,
                 j.again ? " (its member was added before)" : "",
                 cert ? "; its certificate is signed by the cluster CA" : "");
        reply_json(r, MHD_HTTP_OK,
                   json_pack("{s:s, s:s, s:s, s:I, s:s?, s:s?}", "cluster_name", cluster,
                             "initial_cluster", j.initial_cluster, "cluster_token", token,
                             "members", (json_int_t)j.members, "ca", ca, "cert", cert));
    }
    explicit_bzero(token, sizeof(token));
    if (ca_key)
        explicit_bzero(ca_key, strlen(ca_key));
    free(ca_key);
    free(cert);
    free(ca);
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

#define JOIN_TOKEN_TTL_DEFAULT 1800
#define JOIN_TOKEN_TTL_MAX 86400

/* A one-time join token: random, kept in etcd only as its hash, on a
 * lease, so that it expires by itself. */
static void make_join_token(struct api_req *req, struct reply *r)
{
    json_t *ttl_j = json_object_get(req->body, "ttl_s");
    json_int_t ttl = ttl_j ? json_integer_value(ttl_j) : JOIN_TOKEN_TTL_DEFAULT;
    if (!admin_only(req, r, "making a join token") || !in_cluster(req, r))
        return;
    if ((ttl_j && !json_is_integer(ttl_j)) || ttl < 60 || ttl > JOIN_TOKEN_TTL_MAX)
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'ttl_s' must be 60..%d seconds",
                           JOIN_TOKEN_TTL_MAX);
    char token[CLUSTER_TOKEN_LEN + 1], hash[65];
    struct err e;
    int rc = cluster_token_make(token, &e);
    if (!rc) {
        pki_token_hash(token, hash);
        rc = cluster_join_token_add(req->etcd, hash, req->ctx->cfg->name, (int)ttl, &e);
    }
    if (rc < 0)
        reply_errno(r, rc, &e);
    else
        reply_json(r, MHD_HTTP_OK,
                   json_pack("{s:s, s:I, s:s, s:s, s:s}", "token", token, "expires",
                             (json_int_t)time(NULL) + ttl, "node", req->ctx->cfg->name,
                             "address", req->ctx->cfg->api_address, "fingerprint",
                             req->ctx->secrets->pin));
    explicit_bzero(token, sizeof(token));
}

const struct api_route api_routes_members[] = {
    {"POST", "/cluster/join-tokens", make_join_token},
    {"POST", "/cluster", create_cluster},
    {"POST", "/cluster/join", join_cluster},
    {"POST", "/cluster/members", add_member},
    {"POST", "/cluster/members/remove", remove_member},
    {NULL, NULL, NULL},
};
