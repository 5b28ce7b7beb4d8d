#include "node/web.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "node/ctx.h"
#include "node/info.h"

#define SESSIONS_MAX 64

struct session {
    char id[WEB_SID_LEN + 1]; /* "" for a free slot */
    char csrf[WEB_SID_LEN + 1];
    time_t expires;
};

static struct {
    pthread_mutex_t lock;
    struct session s[SESSIONS_MAX];
    int ttl_s;
} sessions = {PTHREAD_MUTEX_INITIALIZER, {{"", "", 0}}, WEB_TTL_DEFAULT_S};

void web_setup(int ttl_s)
{
    pthread_mutex_lock(&sessions.lock);
    sessions.ttl_s = ttl_s > 0 ? ttl_s : WEB_TTL_DEFAULT_S;
    pthread_mutex_unlock(&sessions.lock);
}

static int random_hex(char out[WEB_SID_LEN + 1])
{
    unsigned char raw[WEB_SID_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return -EIO;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));
    return 0;
}

/* Constant time, as the bearer token: a session id or CSRF token cannot be
 * guessed byte by byte from timing. */
static bool same(const char *given, const char *want)
{
    size_t n = strlen(want);
    return n && given && strlen(given) == n && CRYPTO_memcmp(given, want, n) == 0;
}

/* With sessions.lock held: the live session sid, NULL when none. Expired
 * ones are freed on the way. */
static struct session *find(const char *sid)
{
    time_t now = time(NULL);
    struct session *found = NULL;
    for (unsigned i = 0; i < SESSIONS_MAX; i++) {
        struct session *s = &sessions.s[i];
        if (s->id[0] && s->expires <= now)
            memset(s, 0, sizeof(*s));
        else if (s->id[0] && same(sid, s->id))
            found = s;
    }
    return found;
}

void web_session_of(void *conn, char sid[WEB_SID_LEN + 1])
{
    const char *c = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, WEB_COOKIE);
    snprintf(sid, WEB_SID_LEN + 1, "%s", c && strlen(c) == WEB_SID_LEN ? c : "");
}

bool web_session_live(const char *sid)
{
    pthread_mutex_lock(&sessions.lock);
    bool live = find(sid) != NULL;
    pthread_mutex_unlock(&sessions.lock);
    return live;
}

static bool only_reads(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

bool web_authorized(struct MHD_Connection *conn, const char *method, struct reply *r)
{
    char sid[WEB_SID_LEN + 1];
    web_session_of(conn, sid);
    if (!sid[0])
        return false;
    const char *csrf = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, WEB_CSRF_HEADER);
    pthread_mutex_lock(&sessions.lock);
    struct session *s = find(sid);
    bool live = s != NULL, csrf_ok = s && same(csrf, s->csrf);
    pthread_mutex_unlock(&sessions.lock);
    if (live && !csrf_ok && !only_reads(method)) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "missing or wrong csrf token (header %s)",
                    WEB_CSRF_HEADER);
        return false;
    }
    return live;
}

bool web_public(const char *method, const char *url)
{
    return strcmp(method, "POST") == 0 &&
           strcmp(url, "/api/" TERN_API_VERSION "/session") == 0;
}

static void set_cookie(struct reply *r, const char *sid, int max_age)
{
    snprintf(r->cookie, sizeof(r->cookie),
             WEB_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; Secure; SameSite=Strict", sid,
             max_age);
}

static json_t *session_json(const struct session *s, const char *node)
{
    return json_pack("{s:s, s:I, s:s}", "csrf", s->csrf, "expires", (json_int_t)s->expires,
                     "node", node);
}

/* With sessions.lock held: a slot for a new session; the one closest to
 * its expiry gives way when all are taken. */
static struct session *new_slot(void)
{
    find(""); /* frees the expired */
    struct session *pick = &sessions.s[0];
    for (unsigned i = 0; i < SESSIONS_MAX; i++) {
        if (!sessions.s[i].id[0])
            return &sessions.s[i];
        if (sessions.s[i].expires < pick->expires)
            pick = &sessions.s[i];
    }
    return pick;
}

static void post_session(struct api_req *req, struct reply *r)
{
    if (api_no_body(req, r, "{\"token\": \"<admin token>\"}"))
        return;
    json_t *t = json_object_get(req->body, "token");
    if (!json_is_string(t))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "token: missing or not a string");
    if (!same(json_string_value(t), req->ctx->secrets->token))
        return reply_error(r, MHD_HTTP_UNAUTHORIZED, "missing or wrong token");
    struct session fresh;
    if (random_hex(fresh.id) < 0 || random_hex(fresh.csrf) < 0)
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "getrandom: %s",
                           strerror(errno));
    pthread_mutex_lock(&sessions.lock);
    int ttl = sessions.ttl_s;
    fresh.expires = time(NULL) + ttl;
    *new_slot() = fresh;
    pthread_mutex_unlock(&sessions.lock);
    set_cookie(r, fresh.id, ttl);
    json_t *o = session_json(&fresh, req->ctx->cfg->name);
    if (o)
        json_object_set_new(o, "ttl_s", json_integer(ttl));
    reply_json(r, MHD_HTTP_CREATED, o);
    explicit_bzero(&fresh, sizeof(fresh));
    log_info("api", "new web session (expires in %d s)", ttl);
}

/* The page asks after a reload: the cookie survived, the CSRF token (in
 * the page's memory) did not. */
static void get_session(struct api_req *req, struct reply *r)
{
    char sid[WEB_SID_LEN + 1];
    web_session_of(req->conn, sid);
    pthread_mutex_lock(&sessions.lock);
    struct session *s = find(sid);
    json_t *o = s ? session_json(s, req->ctx->cfg->name) : NULL;
    pthread_mutex_unlock(&sessions.lock);
    if (!o)
        return reply_error(r, MHD_HTTP_NOT_FOUND,
                           "no session: this request carries no session cookie");
    reply_json(r, MHD_HTTP_OK, o);
}

static void delete_session(struct api_req *req, struct reply *r)
{
    char sid[WEB_SID_LEN + 1];
    web_session_of(req->conn, sid);
    pthread_mutex_lock(&sessions.lock);
    struct session *s = find(sid);
    if (s)
        memset(s, 0, sizeof(*s));
    pthread_mutex_unlock(&sessions.lock);
    if (!s)
        return reply_error(r, MHD_HTTP_NOT_FOUND,
                           "no session: this request carries no session cookie");
    set_cookie(r, "", 0);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "logged_out", 1));
}

const struct api_route api_routes_web[] = {
    {"POST", "/session", post_session},
    {"GET", "/session", get_session},
    {"DELETE", "/session", delete_session},
    {NULL, NULL, NULL},
};

/* ---- the UI's files ---- */

static const struct web_file *file_of(const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/ui/index.html";
    for (const struct web_file *f = web_files; f->path; f++)
        if (strcmp(f->path, url) == 0)
            return f;
    return NULL;
}

/* The page talks to this node only and runs only its own scripts. */
static void add_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; "
                            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    /* revalidated each time (cheap with the ETag): a new ternd's UI is
     * never mixed with an old one's cached modules */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const struct web_file *f)
{
    static const char missing[] = "{\"error\":\"no such file\"}";
    struct MHD_Response *resp;
    if (!f)
        resp = MHD_create_response_from_buffer(sizeof(missing) - 1, (void *)missing,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer(status == MHD_HTTP_OK ? f->size : 0,
                                               (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            f ? f->type : "application/json");
    if (f) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
        add_headers(resp);
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

bool web_static(struct MHD_Connection *conn, const char *method, const char *url,
                enum MHD_Result *ret)
{
    if (!only_reads(method) || (strcmp(url, "/") != 0 && strncmp(url, "/ui/", 4) != 0))
        return false;
    const struct web_file *f = file_of(url);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    unsigned status = !f                                 ? MHD_HTTP_NOT_FOUND
                      : inm && strcmp(inm, f->etag) == 0 ? MHD_HTTP_NOT_MODIFIED
                                                         : MHD_HTTP_OK;
    *ret = answer(conn, status, f);
    return true;
}
