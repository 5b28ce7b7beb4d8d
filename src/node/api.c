#include "node/api.h"

#include "node/api_vmops.h"

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
#include "node/http.h"
#include "node/info.h"
#include "node/ternd.h"

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
    case ETCD_NOT_QUORATE: case EAGAIN: status = MHD_HTTP_SERVICE_UNAVAILABLE; break;
    case ENOENT: status = MHD_HTTP_NOT_FOUND; break;
    case EEXIST: case EBUSY: case ESTALE: status = MHD_HTTP_CONFLICT; break;
    case EINVAL: case ERANGE: status = MHD_HTTP_BAD_REQUEST; break;
    case EPERM: case EACCES: status = MHD_HTTP_FORBIDDEN; break;
    }
    reply_error(r, status, "%s", e->msg);
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
    api_routes_cluster, api_routes_storage, api_routes_vm, api_routes_task,
    api_routes_vmops, api_routes_migrate,
};

static void route(struct api_req *req, struct reply *r)
{
    bool path_known = false;
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const struct api_route *rt = tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, req->path, req))
                continue;
            path_known = true;
            if (strcmp(rt->method, req->method) == 0)
                return rt->handle(req, r);
        }
    if (path_known)
        reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method '%.20s' not allowed on '%.200s'",
                    req->method, req->url);
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
static bool authorized(struct ternd *t, struct MHD_Connection *conn, bool *from_node)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    char cluster[TERND_TOKEN_LEN + 1];
    ternd_cluster_token(t, cluster);
    *from_node = same_token(h + 7, cluster);
    return *from_node || same_token(h + 7, t->secrets.token);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r)
{
    if (!r->body)
        reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    char *text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
    json_decref(r->body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (r->status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int parse_body(struct upload *up, struct api_req *req, struct reply *r)
{
    if (up->too_big) {
        reply_error(r, 413, "request body over %d bytes",
                    API_BODY_MAX);
        return -1;
    }
    if (!up->len)
        return 0;
    json_error_t je;
    req->body = json_loadb(up->data, up->len, 0, &je);
    if (!req->body || !json_is_object(req->body)) {
        reply_error(r, MHD_HTTP_BAD_REQUEST, "request body: %s",
                    req->body ? "not a json object" : je.text);
        return -1;
    }
    return 0;
}

static void serve(struct api *a, struct MHD_Connection *conn, const char *url,
                  const char *method, struct upload *up, struct reply *r)
{
    struct api_req req = { .method = method, .url = url, .conn = conn, .t = a->t };
    if (!authorized(a->t, conn, &req.from_node))
        return reply_error(r, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
    if (strncmp(url, API_PREFIX "/", strlen(API_PREFIX) + 1) != 0)
        return reply_error(r, MHD_HTTP_NOT_FOUND, "no such endpoint '%.200s'", url);
    req.path = url + strlen(API_PREFIX);
    if (parse_body(up, &req, r) < 0)
        return;
    struct etcd_client c;
    struct err e;
    if (etcd_client_init_copy(&c, &a->proto, &e) < 0) {
        json_decref(req.body);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", e.msg);
    }
    req.etcd = &c;
    route(&req, r);
    etcd_client_release(&c);
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
    struct reply r = {0, NULL};
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
    if (rc != 0)
        return err_set(e, EINVAL, "api address '%s': %s", cfg->api_address,
                       gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int api_start(struct api *a, struct ternd *t, struct err *e)
{
    const struct ternd_config *cfg = &t->cfg;
    a->t = t;
    struct sockaddr_storage ss;
    int rc = resolve(cfg, &ss, e);
    if (rc == 0)
        rc = etcd_client_init(&a->proto, cfg->cluster_address, e);
    if (rc < 0)
        return rc;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return err_set(e, ENOTSUP, "libmicrohttpd was built without tls");
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_TLS | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    a->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->api_port, NULL, NULL, handle, a,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, or MHD warns */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_HTTPS_MEM_KEY, t->secrets.key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, t->secrets.cert_pem,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
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
    memset(a, 0, sizeof(*a));
}
