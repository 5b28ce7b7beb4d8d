#include "node/api.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/info.h"
#include "node/peer.h"
#include "node/web.h"

#define API_PREFIX "/api/" TERN_API_VERSION

/* One request in flight: its body as it arrives. */
struct upload {
    char *data;
    size_t len;
    bool too_big;
};

const char *api_query(const struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void reply_json(struct reply *r, unsigned status, json_t *body)
{
    r->status = status;
    r->body = body;
}

void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(r->body);
    reply_json(r, status, json_pack("{s:s}", "error", msg));
}

void reply_errno(struct reply *r, int rc, const struct err *e)
{
    unsigned status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    switch (-rc) {
    case ETCD_NOT_QUORATE:
    case EAGAIN: status = MHD_HTTP_SERVICE_UNAVAILABLE; break;
    case ENOENT: status = MHD_HTTP_NOT_FOUND; break;
    case EEXIST:
    case EBUSY:
    case ESTALE: status = MHD_HTTP_CONFLICT; break;
    case EINVAL:
    case ERANGE: status = MHD_HTTP_BAD_REQUEST; break;
    case EPERM:
    case EACCES: status = MHD_HTTP_FORBIDDEN; break;
    }
    reply_error(r, status, "%s", e->msg);
}

bool api_no_body(struct api_req *req, struct reply *r, const char *missing)
{
    if (req->body)
        return false;
    reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: %s", missing);
    return true;
}

bool api_adopting(struct api_req *req, struct reply *r)
{
    if (atomic_load(&req->ctx->adopted))
        return false;
    reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                "node '%s' is starting: its running VMs "
                "are not adopted yet; try again",
                req->ctx->cfg->name);
    return true;
}

/* api_forward: a request for a VM or task of another node goes to that
 * node's ternd, authenticated with the cluster token; the other node's
 * certificate is pinned to the public key it published in its node info,
 * so no CA is needed between nodes. */
struct query_buf {
    char text[1024];
    size_t len;
    CURL *curl;
};

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    struct query_buf *q = cls;
    char *k = curl_easy_escape(q->curl, key, 0);
    char *v = value ? curl_easy_escape(q->curl, value, 0) : NULL;
    if (k && q->len < sizeof(q->text))
        q->len += (size_t)snprintf(q->text + q->len, sizeof(q->text) - q->len, "%c%s%s%s",
                                   q->len ? '&' : '?', k, v ? "=" : "", v ? v : "");
    curl_free(k);
    curl_free(v);
    return MHD_YES;
}

void api_forward(struct api_req *req, struct reply *r, const char *node)
{
    if (req->from_node) /* never twice: the views of two nodes disagree */
        return reply_error(r, MHD_HTTP_CONFLICT,
                           "node '%s' sent this request here, "
                           "but it belongs to node '%s'",
                           req->ctx->cfg->name, node);
    struct peer p;
    struct err e;
    int rc = peer_init(&p, req->ctx, req->etcd, node, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    struct query_buf q = {.len = 0, .curl = p.curl};
    q.text[0] = '\0';
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_query, &q);
    char path[1400];
    snprintf(path, sizeof(path), "%s%s", req->url, q.text);
    long status = 0;
    json_t *body = NULL;
    rc = peer_call(&p, req->method, path, req->body, &status, &body, &e);
    peer_release(&p);
    if (rc == -EHOSTUNREACH) /* the message names the node already */
        return reply_error(r, MHD_HTTP_BAD_GATEWAY, "%s", e.msg);
    if (rc < 0)
        return reply_error(r, MHD_HTTP_BAD_GATEWAY, "node '%s': %s", node, e.msg);
    reply_json(r, (unsigned)status, body);
}
/* "/vms/{}/start" against "/vms/100/start"; {} takes one non-empty
 * segment into args. */
static bool match(const char *pattern, const char *path, struct api_req *req)
{
    unsigned n = 0;
    while (*pattern && *path) {
        if (strncmp(pattern, "{}", 2) == 0) {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= TERN_KEY_MAX || n >= API_ARGS_MAX)
                return false;
            memcpy(req->args[n], path, len);
            req->args[n++][len] = '\0';
            path += len;
            pattern += 2;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

static const struct api_route *const tables[] = {
    api_routes_cluster, api_routes_members, api_routes_vm,       api_routes_task,
    api_routes_vmops,   api_routes_migrate, api_routes_movedisk, api_routes_vmlife,
    api_routes_leave,   api_routes_ha,      api_routes_maint,    api_routes_web,
    api_routes_events,  api_routes_repl,
};

const struct api_route *api_route_find(struct api_req *req, bool *path_known)
{
    *path_known = false;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const struct api_route *rt = tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, req->path, req))
                continue;
            *path_known = true;
            if (strcmp(rt->method, req->method) == 0)
                return rt;
        }
    return NULL;
}

static void route(struct api_req *req, struct reply *r)
{
    bool path_known;
    const struct api_route *rt = api_route_find(req, &path_known);
    if (rt)
        rt->handle(req, r);
    else if (path_known)
        reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                    "method '%.20s' not allowed on '%.200s'", req->method, req->url);
    else
        reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint '%.200s'", req->url);
}

static bool same_token(const char *given, const char *token)
{
    if (!token[0] || strlen(given) != TERND_TOKEN_LEN)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < TERND_TOKEN_LEN; i++)
        diff |= (unsigned char)(given[i] ^ token[i]);
    return diff == 0;
}

/* Constant time, so a token cannot be guessed byte by byte from timing.
 * The admin token is this node's; the cluster token is what nodes use with
 * each other (docs/api.md). */
static bool authorized(struct node_ctx *x, struct MHD_Connection *conn, bool *from_node)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    char cluster[TERND_TOKEN_LEN + 1];
    node_ctx_cluster_token(x, cluster);
    *from_node = same_token(h + 7, cluster);
    return *from_node || same_token(h + 7, x->secrets->token);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r)
{
    if (r->response) { /* the handler's own (node/events.c) */
        enum MHD_Result ret = MHD_queue_response(conn, r->status, r->response);
        MHD_destroy_response(r->response);
        return ret;
    }
    if (!r->body)
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    char *text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
    json_decref(r->body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (r->status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->cookie);
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

int api_body_parse(const char *data, size_t len, struct api_req *req, struct reply *r)
{
    if (len > API_BODY_MAX) {
        reply_error(r, 413, "request body over %d bytes", API_BODY_MAX);
        return -1;
    }
    if (!len)
        return 0;
    json_error_t je;
    req->body = json_loadb(data, len, 0, &je);
    if (!req->body || !json_is_object(req->body)) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: %s",
                    req->body ? "not a json object" : je.text);
        json_decref(req->body);
        req->body = NULL;
        return -1;
    }
    return 0;
}

static void serve(struct api *a, struct MHD_Connection *conn, const char *url,
                  const char *method, struct upload *up, struct reply *r)
{
    struct api_req req = {.method = method, .url = url, .conn = conn, .ctx = a->ctx};
    /* a browser's session cookie stands for the admin token (node/web.h) */
    if (!web_public(method, url) && !authorized(a->ctx, conn, &req.from_node) &&
        !web_authorized(conn, method, r)) {
        if (r->body) /* a session without its csrf token: 403 */
            return;
        /* a joining node may bring a one-time join token instead */
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncmp(h, "Bearer ", 7) != 0 || strcmp(method, "POST") != 0 ||
            strcmp(url, API_PREFIX "/cluster/members") != 0)
            return reply_error(r, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
        req.join_token = h + 7;
    }
    if (strncmp(url, API_PREFIX "/", strlen(API_PREFIX) + 1) != 0)
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint '%.200s'", url);
    req.path = url + strlen(API_PREFIX);
    if (api_body_parse(up->data, up->too_big ? API_BODY_MAX + 1 : up->len, &req, r) < 0)
        return;
    struct etcd_client *c;
    struct err e;
    if (etcd_pool_take(&a->pool, &a->proto, &c, &e) < 0) {
        json_decref(req.body);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", e.msg);
    }
    req.etcd = c;
    route(&req, r);
    etcd_pool_give(&a->pool, c);
    json_decref(req.body);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    struct api *a = cls;
    struct upload *up = *state;
    if (!up) {
        /* first call: headers only; answer after the whole body */
        up = calloc(1, sizeof(*up));
        *state = up;
        return up ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        if (up->len + *upload_size > API_BODY_MAX) {
            up->too_big = true;
        } else if (!up->too_big) {
            char *grown = realloc(up->data, up->len + *upload_size);
            if (!grown)
                return MHD_NO;
            memcpy(grown + up->len, upload_data, *upload_size);
            up->data = grown;
            up->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    enum MHD_Result ret;
    if (web_static(conn, method, url, &ret)) /* the web UI's files: no token */
        return ret;
    struct reply r = {0, NULL, "", NULL};
    serve(a, conn, url, method, up, &r);
    if (r.status >= 400)
        log_info("api", "%s %s: %u", method, url, r.status);
    return send_reply(conn, &r);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct upload *up = *state;
    if (up)
        free(up->data);
    free(up);
    *state = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("api", "%s", msg);
}

void api_init(struct api *a)
{
    memset(a, 0, sizeof(*a));
}

static int resolve(const struct ternd_config *cfg, struct sockaddr_storage *ss,
                   struct err *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->api_port);
    int rc = getaddrinfo(cfg->api_host, port, &hints, &res);
    if (rc)
        return err_set(e, EINVAL, "api address '%s': %s", cfg->api_address,
                       gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int api_start(struct api *a, struct node_ctx *x, struct err *e)
{
    const struct ternd_config *cfg = x->cfg;
    a->ctx = x;
    struct sockaddr_storage ss;
    int rc = resolve(cfg, &ss, e);
    if (!rc)
        rc = etcd_client_init(&a->proto, cfg->cluster_address, e);
    if (!rc)
        rc = etcd_pool_init(&a->pool, e);
    if (rc < 0)
        return rc;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return err_set(e, ENOTSUP, "libmicrohttpd was built without tls");
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_TLS | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    a->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->api_port, NULL, NULL, handle, a, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, /* first, or MHD warns */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_HTTPS_MEM_KEY,
        x->secrets->key_pem, MHD_OPTION_HTTPS_MEM_CERT, x->secrets->cert_pem,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!a->daemon)
        return err_set(e, EADDRNOTAVAIL, "api: cannot serve https on %s (see log)",
                       cfg->api_address);
    log_info("api", "serving https://%s" API_PREFIX "/", cfg->api_address);
    return 0;
}

void api_release(struct api *a)
{
    if (a->daemon)
        MHD_stop_daemon(a->daemon);
    if (a->proto.curl)
        etcd_client_release(&a->proto);
    etcd_pool_release(&a->pool);
    memset(a, 0, sizeof(*a));
}
