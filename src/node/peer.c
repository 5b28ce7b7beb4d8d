#include "node/peer.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/textbuf.h"
#include "node/ctx.h"

#define PEER_BODY_MAX (4u << 20)

int peer_init_address(struct peer *p, const char *address, const char *pin,
                      const char *token, struct err *e)
{
    memset(p, 0, sizeof(*p));
    if (strlen(pin) > TERND_PIN_LEN || strlen(token) > TERND_TOKEN_LEN ||
        strlen(address) > sizeof(p->base) - 9)
        return err_set(e, EINVAL, "address, fingerprint or token too long");
    snprintf(p->node, sizeof(p->node), "%.63s", address);
    snprintf(p->base, sizeof(p->base), "https://%s", address);
    snprintf(p->pin, sizeof(p->pin), "%s", pin);
    snprintf(p->token, sizeof(p->token), "%s", token);
    p->timeout_ms = PEER_TIMEOUT_MS;
    p->curl = curl_easy_init();
    return p->curl ? 0 : err_set(e, ENOMEM, "curl: out of memory");
}

static int node_record(struct etcd_client *c, const char *node, json_t **info,
                       struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build(key, TERN_PREFIX_NODES, node, NULL, "node name", e);
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    if (!rc)
        rc = etcd_get(c, key, 0, &kv, e);
    if (rc == -ETCD_NOT_QUORATE) {
        etcd_kv_release(&kv);
        etcd_kv_init(&kv);
        rc = etcd_get(c, key, ETCD_SERIALIZABLE, &kv, e);
    }
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "no node '%s' in the cluster", node);
    if (!rc && !(*info = json_loads(kv.value, 0, NULL)))
        rc = err_set(e, EPROTO, "node '%s': record is not json", node);
    etcd_kv_release(&kv);
    return rc;
}

int peer_init(struct peer *p, struct node_ctx *x, struct etcd_client *c, const char *node,
              struct err *e)
{
    json_t *info = NULL;
    int rc = node_record(c, node, &info, e);
    if (rc < 0)
        return rc;
    const char *addr = json_string_value(json_object_get(info, "api_address"));
    const char *pin = json_string_value(json_object_get(info, "api_pin"));
    char token[TERND_TOKEN_LEN + 1];
    node_ctx_cluster_token(x, token);
    if (!addr || !pin)
        rc = err_set(e, EHOSTUNREACH, "node '%s' published no api address or key", node);
    else if (!token[0])
        rc = err_set(e, EAGAIN, "node %s is starting: no cluster token yet", x->cfg->name);
    else
        rc = peer_init_address(p, addr, pin, token, e);
    if (!rc)
        snprintf(p->node, sizeof(p->node), "%s", node);
    json_decref(info);
    return rc;
}

static struct curl_slist *headers(const struct peer *p)
{
    char auth[TERND_TOKEN_LEN + 32];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    return curl_slist_append(h, "Content-Type: application/json");
}

static void setup(struct peer *p, const char *method, const char *url, const char *text,
                  struct textbuf *b, struct curl_slist *h)
{
    CURL *curl = p->curl;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (text)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    /* the pin is the trust: self-signed certificates, no CA between nodes */
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, p->pin);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, textbuf_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
}

/* Names the node and its address, not curl's URL, and the limit that
 * applied: "node 'n3' (127.0.0.73:18506) did not answer in 10 s". */
static int unreachable(const struct peer *p, CURLcode cc, struct err *e)
{
    const char *addr = strncmp(p->base, "https://", 8) == 0 ? p->base + 8 : p->base;
    char who[160];
    if (strcmp(p->node, addr) == 0)
        snprintf(who, sizeof(who), "the node at %.100s", addr);
    else
        snprintf(who, sizeof(who), "node '%.63s' (%.80s)", p->node, addr);
    if (cc == CURLE_OPERATION_TIMEDOUT && p->timeout_ms % 1000 == 0)
        return err_set(e, EHOSTUNREACH, "%.100s did not answer in %d s", who,
                       p->timeout_ms / 1000);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return err_set(e, EHOSTUNREACH, "%.100s did not answer in %d ms", who,
                       p->timeout_ms);
    if (cc == CURLE_COULDNT_CONNECT)
        return err_set(e, EHOSTUNREACH,
                       "%.100s refused the connection (is its ternd running?)", who);
    char why[128];
    snprintf(why, sizeof(why), "%s", curl_easy_strerror(cc));
    why[0] = (char)tolower((unsigned char)why[0]);
    return err_set(e, EHOSTUNREACH, "%.100s: %s", who, why);
}

int peer_call(struct peer *p, const char *method, const char *path, json_t *req,
              long *status, json_t **body, struct err *e)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", p->base, path);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    struct textbuf b;
    textbuf_init(&b, PEER_BODY_MAX);
    struct curl_slist *h = headers(p);
    setup(p, method, url, text, &b, h);
    CURLcode cc = curl_easy_perform(p->curl);
    curl_slist_free_all(h);
    free(text);
    int rc = 0;
    if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
        rc = err_set(e, EACCES, "%s: its key does not match the fingerprint %s", p->base,
                     p->pin);
    else if (cc != CURLE_OK)
        rc = unreachable(p, cc, e);
    else if (!(*body = json_loads(textbuf_text(&b), 0, NULL)))
        rc = err_set(e, EPROTO, "%s: answer is not json", p->base);
    if (!rc)
        curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, status);
    textbuf_release(&b);
    return rc;
}

void peer_set_timeout(struct peer *p, int timeout_ms)
{
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : PEER_TIMEOUT_MS;
}

void peer_release(struct peer *p)
{
    if (p->curl)
        curl_easy_cleanup(p->curl);
    p->curl = NULL;
}
