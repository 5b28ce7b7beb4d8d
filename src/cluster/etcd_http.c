/* The transport of struct etcd_client: POST JSON to the gateway of one
 * member after another until one answers, within one deadline per call. */
#include "cluster/codec.h"
#include "cluster/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

/* A member that accepted the connection but stays silent gets at most its
 * share of the deadline, but never less than this: a loaded host with a
 * healthy cluster still answers well within it. */
#define ETCD_ATTEMPT_MIN_MS 1000
#define ETCD_CONNECT_MAX_MS 1000
#define ETCD_BODY_MAX (64u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_global_rc;
/* The TLS sessions of every client of the process: an API request's new
 * client resumes one instead of a full handshake. (Not the connections:
 * libcurl's shared connection cache is not thread-safe, its known bug
 * 11.11.) */
static CURLSH *sessions;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void sessions_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
    (void)h, (void)a, (void)arg;
    pthread_mutex_lock(&share_locks[d]);
}

static void sessions_unlock(CURL *h, curl_lock_data d, void *arg)
{
    (void)h, (void)arg;
    pthread_mutex_unlock(&share_locks[d]);
}

/* curl_global_init is not thread-safe; every client goes through here. */
static void curl_global_once(void)
{
    curl_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    sessions = curl_global_rc == CURLE_OK ? curl_share_init() : NULL;
    if (sessions) {
        for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
            pthread_mutex_init(&share_locks[i], NULL);
        curl_share_setopt(sessions, CURLSHOPT_LOCKFUNC, sessions_lock);
        curl_share_setopt(sessions, CURLSHOPT_UNLOCKFUNC, sessions_unlock);
        curl_share_setopt(sessions, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
}

static struct {
    char ca[320], cert[320], key[320];
} tls;

int etcd_tls_configure(const char *ca_file, const char *cert_file, const char *key_file,
                       struct err *e)
{
    int n[3] = {snprintf(tls.ca, sizeof(tls.ca), "%s", ca_file),
                snprintf(tls.cert, sizeof(tls.cert), "%s", cert_file),
                snprintf(tls.key, sizeof(tls.key), "%s", key_file)};
    for (int i = 0; i < 3; i++)
        if (n[i] < 0 || (size_t)n[i] >= sizeof(tls.ca)) {
            memset(&tls, 0, sizeof(tls));
            return err_set(e, ENAMETOOLONG, "etcd tls: a path is too long");
        }
    return 0;
}

void etcd_tls_apply(void *curl)
{
    if (!tls.cert[0])
        return;
    /* the members' certificates chain to the cluster CA and name their
     * host; only TLS 1.2 and later */
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls.ca);
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.cert);
    curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.key);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (sessions)
        curl_easy_setopt(curl, CURLOPT_SHARE, sessions);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int client_add_endpoint(struct etcd_client *c, const char *url, size_t len,
                               struct err *e)
{
    if (len == 0)
        return err_set(e, EINVAL, "etcd: empty endpoint in the list");
    if (c->n_endpoints == ETCD_ENDPOINTS_MAX)
        return err_set(e, EINVAL, "etcd: more than %d endpoints", ETCD_ENDPOINTS_MAX);
    bool https = strncmp(url, "https://", 8) == 0;
    if (strncmp(url, "http://", 7) != 0 && !https)
        return err_set(e, EINVAL, "etcd: endpoint %.*s: not an http:// or https:// url",
                       (int)len, url);
    if (https && !tls.cert[0])
        return err_set(e, EINVAL,
                       "etcd: endpoint %.*s: https without a cluster certificate "
                       "(etcd_tls_configure)",
                       (int)len, url);
    char *copy = strndup(url, len);
    if (!copy)
        return err_set(e, ENOMEM, "etcd: out of memory");
    while (len > 0 && copy[len - 1] == '/')
        copy[--len] = '\0'; /* paths are appended with their own '/' */
    c->endpoints[c->n_endpoints++] = copy;
    return 0;
}

int etcd_global_init(struct err *e)
{
    pthread_once(&curl_once, curl_global_once);
    if (curl_global_rc != CURLE_OK)
        return err_set(e, EIO, "etcd: curl_global_init: %s",
                       curl_easy_strerror(curl_global_rc));
    return 0;
}

static int client_setup(struct etcd_client *c, struct err *e)
{
    int rc = etcd_global_init(e);
    if (rc)
        return rc;
    c->curl = curl_easy_init();
    if (!c->curl)
        return err_set(e, ENOMEM, "etcd: curl_easy_init failed");
    c->timeout_ms = ETCD_TIMEOUT_MS_DEFAULT;
    textbuf_init(&c->body, ETCD_BODY_MAX);
    return 0;
}

int etcd_client_init(struct etcd_client *c, const char *endpoints, struct err *e)
{
    memset(c, 0, sizeof(*c));
    for (const char *p = endpoints; p && *p;) {
        size_t len = strcspn(p, ",");
        int rc = client_add_endpoint(c, p, len, e);
        if (rc) {
            etcd_client_release(c);
            return rc;
        }
        p += len + (p[len] == ',');
    }
    if (c->n_endpoints == 0)
        return err_set(e, EINVAL, "etcd: no endpoint given");
    int rc = client_setup(c, e);
    if (rc)
        etcd_client_release(c);
    return rc;
}

int etcd_client_init_copy(struct etcd_client *c, const struct etcd_client *from,
                          struct err *e)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < from->n_endpoints; i++) {
        const char *url = from->endpoints[i];
        int rc = client_add_endpoint(c, url, strlen(url), e);
        if (rc) {
            etcd_client_release(c);
            return rc;
        }
    }
    int rc = client_setup(c, e);
    if (rc)
        etcd_client_release(c);
    else
        c->timeout_ms = from->timeout_ms;
    return rc;
}

void etcd_client_release(struct etcd_client *c)
{
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    textbuf_release(&c->body);
    memset(c, 0, sizeof(*c));
}

void etcd_client_set_timeout(struct etcd_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : ETCD_TIMEOUT_MS_DEFAULT;
}

const char *etcd_client_detail(const struct etcd_client *c)
{
    return c->detail;
}

static void detail_add(struct etcd_client *c, const char *url, const char *what)
{
    size_t used = strlen(c->detail);
    snprintf(c->detail + used, sizeof(c->detail) - used, "%s%s: %s", used ? "; " : "", url,
             what);
}

enum attempt_result { ATTEMPT_OK, ATTEMPT_NEXT, ATTEMPT_FAIL };

/* A gateway answer other than 200: etcd's own error. Quorum-type errors
 * move on to the next member; anything else is final. */
static enum attempt_result attempt_http_error(struct etcd_client *c, const char *url,
                                              long status, int *rc, struct err *e)
{
    json_t *j = json_loads(textbuf_text(&c->body), 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "message"));
    int code = (int)json_integer_value(json_object_get(j, "code"));
    char what[256];
    snprintf(what, sizeof(what), "%s", msg ? msg : "no etcd error in the answer");
    json_decref(j);
    if (!msg) {
        *rc = err_set(e, EPROTO, "etcd %s: http status %ld: %s", url, status, what);
        return ATTEMPT_FAIL;
    }
    int quorum;
    *rc = codec_grpc_errno(code, what, &quorum);
    if (!quorum) {
        err_set(e, -*rc, "etcd %s: %s", url, what);
        return ATTEMPT_FAIL;
    }
    /* "no leader" is refused before it is proposed; the others may not be */
    if (!strstr(what, "no leader"))
        c->maybe_applied = true;
    detail_add(c, url, what);
    return ATTEMPT_NEXT;
}

static enum attempt_result attempt(struct etcd_client *c, size_t ep, const char *path,
                                   const char *req, long timeout_ms, json_t **resp, int *rc,
                                   struct err *e)
{
    const char *url = c->endpoints[ep];
    char full[256];
    snprintf(full, sizeof(full), "%s%s", url, path);
    textbuf_reset(&c->body);
    CURL *curl = c->curl;
    curl_easy_setopt(curl, CURLOPT_URL, full);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < ETCD_CONNECT_MAX_MS ? timeout_ms : ETCD_CONNECT_MAX_MS);
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        long sent = 0;
        curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &sent);
        if (sent > 0 && cc != CURLE_COULDNT_CONNECT)
            c->maybe_applied = true;
        detail_add(c, url, curl_easy_strerror(cc));
        return ATTEMPT_NEXT;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return attempt_http_error(c, url, status, rc, e);
    json_error_t jerr;
    *resp = json_loads(textbuf_text(&c->body), 0, &jerr);
    if (!*resp) {
        *rc = err_set(e, EPROTO, "etcd %s%s: answer is not json: %s", url, path, jerr.text);
        return ATTEMPT_FAIL;
    }
    return ATTEMPT_OK;
}

static void curl_prepare(struct etcd_client *c, struct curl_slist *headers)
{
    CURL *curl = c->curl;
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, textbuf_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never via http_proxy */
    etcd_tls_apply(curl);
}

int etcd_client_call(struct etcd_client *c, const char *path, json_t *req, json_t **resp,
                     struct err *e)
{
    *resp = NULL;
    c->maybe_applied = false;
    c->detail[0] = '\0';
    char *text = json_dumps(req, JSON_COMPACT);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!text || !headers) {
        free(text);
        curl_slist_free_all(headers);
        return err_set(e, ENOMEM, "etcd %s: out of memory", path);
    }
    curl_prepare(c, headers);
    int64_t deadline = now_ms() + c->timeout_ms;
    size_t start = c->current;
    int rc = -ETCD_NOT_QUORATE;
    enum attempt_result r = ATTEMPT_NEXT;
    for (size_t i = 0; i < c->n_endpoints && r == ATTEMPT_NEXT; i++) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        long share = (long)(left / (int64_t)(c->n_endpoints - i));
        if (share < ETCD_ATTEMPT_MIN_MS)
            share = left < ETCD_ATTEMPT_MIN_MS ? (long)left : ETCD_ATTEMPT_MIN_MS;
        size_t ep = (start + i) % c->n_endpoints;
        r = attempt(c, ep, path, text, share, resp, &rc, e);
        /* the next call starts at the member that answered, else the next one */
        c->current = r == ATTEMPT_NEXT ? (ep + 1) % c->n_endpoints : ep;
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    free(text);
    if (r == ATTEMPT_OK)
        return 0;
    if (r == ATTEMPT_NEXT) {
        log_debug("etcd", "%s: not quorate: %s", path, c->detail);
        return err_set(e, ETCD_NOT_QUORATE, ETCD_NOT_QUORATE_MSG);
    }
    return rc;
}

int etcd_pool_init(struct etcd_pool *p, struct err *e)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_t *m = malloc(sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "etcd: out of memory");
    pthread_mutex_init(m, NULL);
    p->lock = m;
    return 0;
}

int etcd_pool_take(struct etcd_pool *p, const struct etcd_client *proto,
                   struct etcd_client **out, struct err *e)
{
    pthread_mutex_lock(p->lock);
    *out = p->n_idle ? p->idle[--p->n_idle] : NULL;
    pthread_mutex_unlock(p->lock);
    if (*out) {
        etcd_client_set_timeout(*out, proto->timeout_ms);
        return 0;
    }
    struct etcd_client *c = malloc(sizeof(*c));
    int rc = c ? etcd_client_init_copy(c, proto, e)
               : err_set(e, ENOMEM, "etcd: out of memory");
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void etcd_pool_give(struct etcd_pool *p, struct etcd_client *c)
{
    pthread_mutex_lock(p->lock);
    bool kept = p->n_idle < ETCD_POOL_MAX;
    if (kept)
        p->idle[p->n_idle++] = c;
    pthread_mutex_unlock(p->lock);
    if (!kept) {
        etcd_client_release(c);
        free(c);
    }
}

void etcd_pool_release(struct etcd_pool *p)
{
    for (size_t i = 0; i < p->n_idle; i++) {
        etcd_client_release(p->idle[i]);
        free(p->idle[i]);
    }
    if (p->lock) {
        pthread_mutex_destroy(p->lock);
        free(p->lock);
    }
    memset(p, 0, sizeof(*p));
}
