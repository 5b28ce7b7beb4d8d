#include "cli/client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/textbuf.h"

#define BODY_MAX (16u << 20)
#define REQUEST_TIMEOUT_MS 30000L /* a status without quorum takes ~6 s */
#define CHANGE_TIMEOUT_MS 120000L

void client_init(struct client *c)
{
    memset(c, 0, sizeof(*c));
}

void client_release(struct client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    memset(c, 0, sizeof(*c));
}

static const char *pick(const char *option, const char *env)
{
    const char *v = getenv(env);
    return option ? option : (v && *v ? v : NULL);
}

/* The two keys of ternd's config that tell where its API is; other keys
 * are ternd's business and skipped. */
static int read_ternd_config(const char *path, char api[256], char dir[256], struct err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, errno, "config %s: %s (give --api and --token-file)", path,
                       strerror(errno));
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        char key[64], value[256];
        if (sscanf(line, " %63[a-z_] = %255s", key, value) != 2)
            continue;
        if (strcmp(key, "api_address") == 0)
            snprintf(api, 256, "%s", value);
        else if (strcmp(key, "data_dir") == 0)
            snprintf(dir, 256, "%s", value);
    }
    fclose(f);
    if (!api[0] || !dir[0])
        return err_set(e, EINVAL, "config %s: missing key '%s'", path,
                       api[0] ? "data_dir" : "api_address");
    return 0;
}

static int read_token(struct client *c, struct err *e)
{
    FILE *f = fopen(c->token_file, "r");
    if (!f)
        return err_set(e, errno, "token file %s: %s", c->token_file, strerror(errno));
    char *ok = fgets(c->token, sizeof(c->token), f);
    fclose(f);
    size_t len = ok ? strcspn(c->token, "\r\n") : 0;
    c->token[len] = '\0';
    if (len == 0)
        return err_set(e, EINVAL, "token file %s: empty", c->token_file);
    return 0;
}

static int resolve(struct client *c, const struct cli_options *o, struct err *e)
{
    const char *api = pick(o->api, "TERN_API");
    const char *token = pick(o->token_file, "TERN_TOKEN_FILE");
    const char *ca = pick(o->ca_file, "TERN_CA_FILE");
    char cfg_api[256] = "", cfg_dir[256] = "";
    if (!api || !token) {
        const char *path = pick(o->config, "TERN_CONFIG");
        int rc = read_ternd_config(path ? path : CLI_CONFIG_DEFAULT, cfg_api, cfg_dir, e);
        if (rc)
            return rc;
        if (!ca && !api) /* ternd's own self-signed certificate */
            snprintf(c->ca_file, sizeof(c->ca_file), "%s/tls/cert.pem", cfg_dir);
    }
    if (!api)
        api = cfg_api;
    bool scheme = strstr(api, "://") != NULL;
    snprintf(c->base, sizeof(c->base), "%s%s", scheme ? "" : "https://", api);
    size_t len = strlen(c->base);
    while (len > 0 && c->base[len - 1] == '/')
        c->base[--len] = '\0';
    if (token)
        snprintf(c->token_file, sizeof(c->token_file), "%s", token);
    else
        snprintf(c->token_file, sizeof(c->token_file), "%s/admin.token", cfg_dir);
    if (ca)
        snprintf(c->ca_file, sizeof(c->ca_file), "%s", ca);
    return 0;
}

int client_setup(struct client *c, const struct cli_options *o, struct err *e)
{
    int rc = resolve(c, o, e);
    if (!rc)
        rc = read_token(c, e);
    if (rc)
        return rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init()))
        return err_set(e, ENOMEM, "libcurl setup failed");
    return 0;
}

static void lower_first(char *s)
{
    if (s[0] && isupper((unsigned char)s[0]) && islower((unsigned char)s[1]))
        s[0] = (char)tolower((unsigned char)s[0]);
}

/* Changes (a join starts an etcd member, a create writes disks) may take
 * longer than a read. */
static long timeout_ms(const char *method)
{
    return strcmp(method, "GET") == 0 ? REQUEST_TIMEOUT_MS : CHANGE_TIMEOUT_MS;
}

static CURLcode perform(struct client *c, const char *method, const char *url,
                        const char *payload, struct textbuf *b, struct curl_slist *headers,
                        char errbuf[CURL_ERROR_SIZE])
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "GET") != 0) {
        /* POSTFIELDS also for DELETE and PUT: libcurl then sends the body
         * (or an empty one with Content-Length: 0) instead of waiting for
         * a read callback. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, textbuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms(method));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* ternd is local: never a proxy */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (c->ca_file[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    return curl_easy_perform(h);
}

static struct curl_slist *make_headers(const struct client *c, bool has_body)
{
    char auth[300];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    explicit_bzero(auth, sizeof(auth));
    headers = curl_slist_append(headers, "Accept: application/json");
    if (has_body)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    /* no "Expect: 100-continue" round trip for small bodies */
    return curl_slist_append(headers, "Expect:");
}

static int unreachable(const struct client *c, CURLcode rc, const char *errbuf,
                       struct err *e)
{
    const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    char copy[CURL_ERROR_SIZE];
    snprintf(copy, sizeof(copy), "%s", msg);
    lower_first(copy);
    return err_set(e, EHOSTUNREACH, "cannot reach ternd at %s: %s", c->base, copy);
}

int client_request(struct client *c, const char *method, const char *path,
                   const json_t *req, long *status, json_t **body, struct err *e)
{
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    if ((size_t)snprintf(url, sizeof(url), "%s%s", c->base, path) >= sizeof(url))
        return err_set(e, ENAMETOOLONG, "url of '%s' too long", path);
    char *payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (req && !payload)
        return err_set(e, ENOMEM, "cannot encode the request to %s", path);
    struct curl_slist *headers = make_headers(c, payload != NULL);
    struct textbuf b;
    textbuf_init(&b, BODY_MAX);
    CURLcode rc = perform(c, method, url, payload, &b, headers, errbuf);
    curl_slist_free_all(headers);
    free(payload);
    *body = NULL;
    if (rc != CURLE_OK) {
        textbuf_release(&b);
        return unreachable(c, rc, errbuf, e);
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    *body = json_loads(textbuf_text(&b), 0, NULL);
    textbuf_release(&b);
    if (!*body)
        return err_set(e, EPROTO, "ternd at %s answered %ld without json", c->base,
                       *status);
    return 0;
}
