/* GET /vms/ID/console/stream: a VM's console output as server-sent events
 * (docs/api.md, "Console stream"), from any node. The stream follows the
 * VM: where it runs here, from its console file; elsewhere, from its
 * owner's GET /vms/ID/console (the cluster token, as forwarding does);
 * after a migration it starts over from the new node's file, saying so.
 * It counts among the event streams of this node (events.c). */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/keys.h"
#include "node/api_vmops.h"
#include "node/ctx.h"
#include "node/events.h"
#include "node/http.h"
#include "node/peer.h"
#include "node/vmm.h"
#include "node/vmops.h"
#include "node/web.h"

#define CHUNK (16 * 1024)  /* of output per event */
#define POLL_MS 200        /* between looks at a quiet console */
#define OWNER_EVERY 10     /* looks between two reads of the owner key */
#define KEEPALIVE_LOOKS 50 /* quiet looks before a keepalive comment */

struct console_stream {
    struct node_ctx *ctx;
    uint32_t vmid;
    struct etcd_client etcd; /* the stream's own: it outlives the request */
    bool have_etcd;
    struct peer peer; /* to the owner, while it is another node */
    bool have_peer;
    char owner[TERN_NAME_MAX + 1]; /* where the offset counts */
    unsigned looks;                /* since the owner was read */
    long long offset;
    char session[WEB_SID_LEN + 1];
    struct sse_out out;
};

/* Output from s->offset on, from this node's file: {"data", "offset",
 * "running"}. */
static json_t *read_local(struct console_stream *s)
{
    struct vmm_info info;
    vmm_info(s->ctx->vmms, s->vmid, &info);
    char *buf = malloc(CHUNK);
    int fd = info.console[0] ? open(info.console, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = buf && fd >= 0 ? pread(fd, buf, CHUNK, s->offset) : 0;
    if (fd >= 0)
        close(fd);
    json_t *text = buf ? api_console_text(buf, n > 0 ? (size_t)n : 0) : NULL;
    free(buf);
    return json_pack("{s:o, s:I, s:b}", "data", text ? text : json_string(""), "offset",
                     (json_int_t)(s->offset + (n > 0 ? n : 0)), "running", info.present);
}

/* The owner's GET /vms/ID/console over one connection kept for the stream
 * (its thread is always the same: MHD runs a connection in one thread);
 * dropped on a failure or when the owner changes. */
static json_t *read_remote(struct console_stream *s, struct err *e)
{
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/vms/%u/console?offset=%lld", s->vmid, s->offset);
    long status = 0;
    json_t *body = NULL;
    if (s->have_peer && strcmp(s->peer.node, s->owner) != 0) {
        peer_release(&s->peer);
        s->have_peer = false;
    }
    int rc = s->have_peer ? 0 : peer_init(&s->peer, s->ctx, &s->etcd, s->owner, e);
    if (!rc && !s->have_peer) {
        s->have_peer = true;
        peer_set_timeout(&s->peer, 5000);
    }
    if (!rc)
        rc = peer_call(&s->peer, "GET", path, NULL, &status, &body, e);
    if (!rc && status != 200)
        rc = err_set(e, EIO, "node '%s' answered %ld", s->owner, status);
    if (rc && s->have_peer) {
        peer_release(&s->peer);
        s->have_peer = false;
    }
    if (rc)
        json_decref(body);
    return rc ? NULL : body;
}

/* The owner, read again now and then: a migrated VM's output goes on in
 * another file, from 0 ("reset"). */
static bool owner_moved(struct console_stream *s)
{
    char now[TERN_NAME_MAX + 1];
    struct err e;
    if (s->looks++ % OWNER_EVERY != 0 || !s->have_etcd ||
        vmops_owner(&s->etcd, s->vmid, now, &e) < 0 || strcmp(now, s->owner) == 0)
        return false;
    bool first = !s->owner[0];
    snprintf(s->owner, sizeof(s->owner), "%s", now);
    if (!first)
        s->offset = 0;
    return !first;
}

/* id: NODE:OFFSET, so that a reconnect resumes where it was. */
static char *frame(struct console_stream *s, json_t *o)
{
    json_object_set_new(o, "node", json_string(s->owner));
    char *data = json_dumps(o, JSON_COMPACT), *out = NULL;
    if (data && asprintf(&out, "id: %s:%lld\ndata: %s\n\n", s->owner, s->offset, data) < 0)
        out = NULL;
    free(data);
    return out;
}

static bool ending(struct console_stream *s)
{
    struct events *ev = events_hub();
    pthread_mutex_lock(&ev->lock);
    bool stopping = ev->stopping;
    pthread_mutex_unlock(&ev->lock);
    return stopping || (s->session[0] && !web_session_live(s->session));
}

/* The next frame: output, a reset, a keepalive, or NULL at the end. */
static char *next_frame(void *ctx)
{
    struct console_stream *s = ctx;
    struct timespec nap = {0, POLL_MS * 1000000L};
    for (unsigned quiet = 0; quiet < KEEPALIVE_LOOKS; quiet++) {
        if (ending(s))
            return NULL;
        bool reset = owner_moved(s);
        struct err e;
        bool here = strcmp(s->owner, s->ctx->cfg->name) == 0;
        json_t *o = here ? read_local(s) : read_remote(s, &e);
        const char *data = json_string_value(json_object_get(o, "data"));
        if (o && (reset || (data && data[0]))) {
            json_int_t to = json_integer_value(json_object_get(o, "offset"));
            s->offset = to >= s->offset ? to : s->offset;
            if (reset)
                json_object_set_new(o, "reset", json_true());
            char *out = frame(s, o);
            json_decref(o);
            return out;
        }
        json_decref(o);
        nanosleep(&nap, NULL);
    }
    return strdup(": keepalive\n\n");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct console_stream *s = cls;
    long n = sse_out_read(&s->out, next_frame, s, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct console_stream *s = cls;
    if (s->have_peer)
        peer_release(&s->peer);
    if (s->have_etcd)
        etcd_client_release(&s->etcd);
    free(s->out.pending);
    events_stream_close(s);
}

/* Where to start: ?offset=N, or Last-Event-ID NODE:OFFSET of the same
 * owner (another node's offset counts in another file: from 0). */
static int start_offset(struct api_req *req, const char *owner, long long *offset)
{
    const char *last = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                   "Last-Event-ID");
    const char *q = api_query(req, "offset");
    char *end = NULL;
    *offset = 0;
    if (last) {
        const char *colon = strrchr(last, ':');
        bool same = colon && (size_t)(colon - last) == strlen(owner) &&
                    strncmp(last, owner, strlen(owner)) == 0;
        *offset = same ? strtoll(colon + 1, &end, 10) : 0;
        return 0;
    }
    if (q)
        *offset = strtoll(q, &end, 10);
    return *offset < 0 || (end && *end) ? -EINVAL : 0;
}

static struct console_stream *stream_new(struct api_req *req, struct reply *r)
{
    struct console_stream *s = events_stream_open(req, r, sizeof(*s));
    if (!s)
        return NULL;
    struct err e;
    s->ctx = req->ctx;
    s->have_etcd = etcd_client_init(&s->etcd, req->ctx->cfg->cluster_address, &e) == 0;
    if (!s->have_etcd) {
        stream_free(s);
        reply_errno(r, -EAGAIN, &e);
        return NULL;
    }
    web_session_of(req->conn, s->session);
    return s;
}

void events_console_stream(struct api_req *req, struct reply *r)
{
    uint32_t id;
    struct err e;
    char owner[TERN_NAME_MAX + 1];
    long long offset = 0;
    int rc = keys_vmid_parse(req->args[0], &id, &e);
    if (!rc)
        rc = vmops_owner(req->etcd, id, owner, &e);
    if (rc)
        return reply_errno(r, rc, &e);
    if (start_offset(req, owner, &offset))
        return reply_error(r, MHD_HTTP_BAD_REQUEST, "'offset' must be a byte offset >= 0");
    struct console_stream *s = stream_new(req, r);
    if (!s)
        return;
    s->vmid = id;
    s->offset = offset;
    s->looks = 1; /* the owner was just read */
    snprintf(s->owner, sizeof(s->owner), "%s", owner);
    if (asprintf(&s->out.pending, "retry: 2000\n: console of vm %u\n\n", id) > 0)
        s->out.len = strlen(s->out.pending);
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->status = MHD_HTTP_OK;
    r->response = resp;
}
