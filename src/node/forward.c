/* api_forward: a request for a VM or task of another node goes to that
 * node's ternd, authenticated with the cluster token; the other node's
 * certificate is pinned to the public key it published in its node info,
 * so no CA is needed between nodes. */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/http.h"
#include "node/peer.h"
#include "node/ternd.h"

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
    if (req->from_node)   /* never twice: the views of two nodes disagree */
        return reply_error(r, MHD_HTTP_CONFLICT, "node '%s' sent this request here, "
                           "but it belongs to node '%s'", req->t->cfg.name, node);
    struct peer p;
    struct err e;
    int rc = peer_init(&p, req->t, req->etcd, node, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    struct query_buf q = { .len = 0, .curl = p.curl };
    q.text[0] = '\0';
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_query, &q);
    char path[1400];
    snprintf(path, sizeof(path), "%s%s", req->url, q.text);
    long status = 0;
    json_t *body = NULL;
    rc = peer_call(&p, req->method, path, req->body, &status, &body, &e);
    peer_release(&p);
    if (rc < 0)
        return reply_error(r, MHD_HTTP_BAD_GATEWAY, "node '%s': %s", node, e.msg);
    reply_json(r, (unsigned)status, body);
}
