#include "node/api.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cluster/node.h"
#include "cluster/quorum.h"
#include "common/log.h"
#include "node/info.h"

#define API_PREFIX "/api/" TERN_API_VERSION

/* What a handler produces: an HTTP status and a JSON body. */
struct reply {
    unsigned status;
    json_t *body;
};

static void reply_error(struct reply *r, unsigned status, const char *msg)
{
    r->status = status;
    r->body = json_pack("{s:s}", "error", msg);
}

/* -ENOLINK is etcd's "cluster not quorate": the one error a client may wait
 * out, so it gets its own status (503) instead of a generic 500. */
static void reply_errno(struct reply *r, int rc, const struct err *e)
{
    reply_error(r, rc == -ETCD_NOT_QUORATE ? MHD_HTTP_SERVICE_UNAVAILABLE
                                           : MHD_HTTP_INTERNAL_SERVER_ERROR, e->msg);
}

static json_t *member_json(const struct cluster_member *m, uint64_t leader)
{
    char id[20];
    snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->id);
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:I}", "name", m->name, "id", id,
                     "client_url", m->client_url, "reachable", m->reachable,
                     "leader", leader && m->id == leader,
                     "raft_term", (json_int_t)m->raft_term);
}

static void get_status(struct api *a, struct etcd_client *c, struct reply *r)
{
    struct cluster_info info;
    struct err e;
    memset(&info, 0, sizeof(info));
    int rc = cluster_quorate(c, &info, &e);
    json_t *members = json_array();
    for (size_t i = 0; i < info.member_count && i < CLUSTER_MEMBERS_MAX; i++)
        json_array_append_new(members, member_json(&info.members[i], info.leader_id));
    r->status = MHD_HTTP_OK;
    r->body = json_pack("{s:s, s:b, s:o, s:I, s:I, s:s?, s:I, s:s}",
                        "node", a->cfg->name, "quorate", rc == 1, "members", members,
                        "member_count", (json_int_t)info.member_count,
                        "members_reachable", (json_int_t)info.members_reachable,
                        "leader", info.leader_id ? info.leader_name : NULL,
                        "raft_term", (json_int_t)info.raft_term,
                        "etcd_version", info.version);
    if (rc != 1 && r->body)
        json_object_set_new(r->body, "reason", json_string(e.msg));
}

static json_t *node_json(const struct node_entry *n)
{
    json_t *info = json_loads(n->info ? n->info : "{}", 0, NULL);
    return json_pack("{s:s, s:b, s:o}", "name", n->name, "online", n->online,
                     "info", info ? info : json_null());
}

/* Linearizable first; without quorum the local member's copy, marked stale
 * (the issue: reads of the local view still work). */
static void get_nodes(struct etcd_client *c, struct reply *r)
{
    struct node_entries l;
    struct err e;
    bool stale = false;
    node_entries_init(&l);
    int rc = node_list(c, 0, &l, &e);
    if (rc == -ETCD_NOT_QUORATE) {
        stale = true;
        node_entries_release(&l);
        node_entries_init(&l);
        rc = node_list(c, ETCD_SERIALIZABLE, &l, &e);
    }
    if (rc < 0) {
        reply_errno(r, rc, &e);
    } else {
        json_t *nodes = json_array();
        for (size_t i = 0; i < l.count; i++)
            json_array_append_new(nodes, node_json(&l.items[i]));
        r->status = MHD_HTTP_OK;
        r->body = json_pack("{s:b, s:o}", "stale", stale, "nodes", nodes);
    }
    node_entries_release(&l);
}

static void get_version(struct api *a, struct reply *r)
{
    r->status = MHD_HTTP_OK;
    r->body = json_pack("{s:s, s:s, s:s}", "version", TERN_VERSION,
                        "api", TERN_API_VERSION, "node", a->cfg->name);
}

static void route(struct api *a, const char *method, const char *url, struct reply *r)
{
    enum { STATUS, NODES, VERSION, NONE } which = NONE;
    if (strcmp(url, API_PREFIX "/cluster/status") == 0)
        which = STATUS;
    else if (strcmp(url, API_PREFIX "/nodes") == 0)
        which = NODES;
    else if (strcmp(url, API_PREFIX "/version") == 0)
        which = VERSION;
    char msg[300];
    if (which == NONE) {
        snprintf(msg, sizeof(msg), "no such endpoint '%.200s'", url);
        return reply_error(r, MHD_HTTP_NOT_FOUND, msg);
    }
    if (strcmp(method, "GET") != 0) {
        snprintf(msg, sizeof(msg), "method '%.20s' not allowed on '%.200s'", method, url);
        return reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, msg);
    }
    if (which == VERSION)
        return get_version(a, r);
    struct etcd_client c;
    struct err e;
    if (etcd_client_init_copy(&c, &a->proto, &e) < 0)
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, e.msg);
    if (which == STATUS)
        get_status(a, &c, r);
    else
        get_nodes(&c, r);
    etcd_client_release(&c);
}

/* Constant time, so the token cannot be guessed byte by byte from timing. */
static bool authorized(const struct api *a, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) != TERND_TOKEN_LEN)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < TERND_TOKEN_LEN; i++)
        diff |= (unsigned char)(h[7 + i] ^ a->secrets->token[i]);
    return diff == 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct reply *r)
{
    if (!r->body) {
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->body = json_pack("{s:s}", "error", "out of memory");
    }
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload_data;
    struct api *a = cls;
    static int seen;
    if (!*state) {
        /* first call: headers only; answer on the second, after any body */
        *state = &seen;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;   /* no endpoint of v1 takes a body yet */
        return MHD_YES;
    }
    struct reply r = {0, NULL};
    if (!authorized(a, conn))
        reply_error(&r, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
    else
        route(a, method, url, &r);
    if (r.status >= 400)
        log_info("api", "%s %s: %u", method, url, r.status);
    return send_reply(conn, &r);
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

int api_start(struct api *a, const struct ternd_config *cfg,
              const struct secrets *secrets, struct err *e)
{
    a->cfg = cfg;
    a->secrets = secrets;
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
        MHD_OPTION_HTTPS_MEM_KEY, secrets->key_pem,
        MHD_OPTION_HTTPS_MEM_CERT, secrets->cert_pem,
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
