#include "node/events.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "node/ctx.h"
#include "node/http.h"
#include "node/web.h"

#define KEEPALIVE_MS 10000 /* a comment this often: proxies and MHD see life */
#define RETRY_MS 2000      /* what EventSource waits before reconnecting */

static struct events hub;
static pthread_once_t hub_once = PTHREAD_ONCE_INIT;

static void hub_init(void)
{
    events_init(&hub, "");
}

struct events *events_hub(void)
{
    pthread_once(&hub_once, hub_init);
    return &hub;
}

void events_hub_setup(const char *node)
{
    struct events *ev = events_hub();
    pthread_mutex_lock(&ev->lock);
    snprintf(ev->node, sizeof(ev->node), "%s", node);
    pthread_mutex_unlock(&ev->lock);
}

void events_init(struct events *ev, const char *node)
{
    memset(ev, 0, sizeof(*ev));
    pthread_mutex_init(&ev->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cond, &ca);
    pthread_condattr_destroy(&ca);
    ev->next = 1;
    snprintf(ev->node, sizeof(ev->node), "%s", node);
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ev;
    snprintf(ev->epoch, sizeof(ev->epoch), "%016" PRIx64, r);
}

void events_release(struct events *ev)
{
    for (unsigned i = 0; i < EVENTS_RING; i++)
        free(ev->ring[i].text);
    pthread_mutex_destroy(&ev->lock);
    pthread_cond_destroy(&ev->cond);
    memset(ev, 0, sizeof(*ev));
}

void events_stop(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    ev->stopping = true;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void events_add(struct events *ev, const char *type, json_t *data, bool local)
{
    json_t *o = json_is_object(data) ? data : json_object();
    if (o != data)
        json_decref(data);
    if (!o)
        return;
    json_object_set_new(o, "type", json_string(type));
    if (!json_object_get(o, "time")) /* one from another node keeps its own */
        json_object_set_new(o, "time", json_integer(now_ms()));
    pthread_mutex_lock(&ev->lock);
    if (!json_object_get(o, "node"))
        json_object_set_new(o, "node", json_string(ev->node));
    char *text = json_dumps(o, JSON_COMPACT);
    if (text) {
        struct event_entry *slot = &ev->ring[ev->next % EVENTS_RING];
        free(slot->text);
        slot->text = text;
        slot->seq = ev->next++;
        slot->local = local;
        pthread_cond_broadcast(&ev->cond);
    }
    pthread_mutex_unlock(&ev->lock);
    json_decref(o);
}

void events_publish(const char *type, json_t *data)
{
    events_add(events_hub(), type, data, true);
}

void events_publish_task(const char *type, json_t *task)
{
    json_t *o = json_object();
    if (o && task)
        json_object_set(o, "task", task);
    json_decref(task);
    events_publish(type, o);
}

void events_publish_vm(uint32_t vmid, const char *state)
{
    json_t *o = state ? json_loads(state, 0, NULL) : NULL;
    if (!o)
        o = json_pack("{s:s}", "status", "stopped");
    if (o)
        json_object_set_new(o, "vmid", json_integer(vmid));
    events_publish("vm-state", o);
}

/* Progress comes with every chunk a migration sends (tens a second): a
 * client wants a few a second, and the ring must keep minutes, not
 * seconds, of history. */
#define PROGRESS_EVERY_MS 250
#define PROGRESS_SLOTS 16

/* The first progress of each pass always goes: a client charts what each
 * pass had to send. */
void events_publish_progress(const char *task, json_t *data)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        char id[128];
        int64_t at;
        json_int_t pass;
    } last[PROGRESS_SLOTS];
    json_int_t pass = json_integer_value(
        json_object_get(json_object_get(data, "progress"), "pass"));
    int64_t now = now_ms();
    unsigned pick = 0;
    bool due = true;
    pthread_mutex_lock(&lock);
    for (unsigned i = 0; i < PROGRESS_SLOTS; i++) {
        if (strncmp(last[i].id, task, sizeof(last[i].id) - 1) == 0) {
            pick = i;
            due = now - last[i].at >= PROGRESS_EVERY_MS || pass != last[i].pass;
            break;
        }
        if (last[i].at < last[pick].at)
            pick = i;
    }
    if (due) {
        snprintf(last[pick].id, sizeof(last[pick].id), "%s", task);
        last[pick].at = now;
        last[pick].pass = pass;
    }
    pthread_mutex_unlock(&lock);
    if (due)
        events_publish_task("task-progress", data);
    else
        json_decref(data);
}

void events_id(const struct events *ev, uint64_t seq, char out[EVENTS_ID_MAX])
{
    snprintf(out, EVENTS_ID_MAX, "%s-%" PRIu64, ev->epoch, seq);
}

/* With ev->lock held: the oldest seq the ring still has. */
static uint64_t oldest(const struct events *ev)
{
    return ev->next > EVENTS_RING ? ev->next - EVENTS_RING : 1;
}

int events_resume(struct events *ev, const char *id, uint64_t *cursor)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t newest = ev->next - 1, seq = 0;
    size_t n = strlen(ev->epoch);
    char *end = NULL;
    bool ours = id && strncmp(id, ev->epoch, n) == 0 && id[n] == '-';
    if (ours) {
        errno = 0;
        seq = strtoull(id + n + 1, &end, 10);
        ours = errno == 0 && end != id + n + 1 && *end == '\0' && seq <= newest;
    }
    int rc = 0;
    if (!id)
        *cursor = newest;
    else if (!ours || seq + 1 < oldest(ev))
        rc = -ESTALE, *cursor = newest;
    else
        *cursor = seq;
    pthread_mutex_unlock(&ev->lock);
    return rc;
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int events_next(struct events *ev, uint64_t *cursor, bool local_only, int wait_ms,
                char **text)
{
    struct timespec until;
    deadline_in(&until, wait_ms);
    pthread_mutex_lock(&ev->lock);
    int rc = -ETIMEDOUT;
    for (;;) {
        if (ev->stopping) {
            rc = -ECANCELED;
            break;
        }
        if (*cursor + 1 < oldest(ev)) {
            *cursor = ev->next - 1;
            rc = -ESTALE;
            break;
        }
        while (*cursor + 1 < ev->next && rc == -ETIMEDOUT) {
            const struct event_entry *en = &ev->ring[(*cursor + 1) % EVENTS_RING];
            ++*cursor;
            if (local_only && !en->local)
                continue;
            *text = strdup(en->text);
            rc = *text ? 0 : -ENOMEM;
        }
        if (rc != -ETIMEDOUT ||
            pthread_cond_timedwait(&ev->cond, &ev->lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&ev->lock);
    return rc;
}

/* One open stream: where it is in the ring, and what it was opened with. */
struct stream {
    struct events *ev;
    uint64_t cursor;
    bool local_only;
    bool resync;                   /* the first frame says resync */
    char session[WEB_SID_LEN + 1]; /* "" with a bearer token */
    struct sse_out out;
};

static char *frame(struct stream *s, uint64_t seq, const char *data)
{
    char id[EVENTS_ID_MAX];
    events_id(s->ev, seq, id);
    char *out = NULL;
    if (asprintf(&out, "id: %s\ndata: %s\n\n", id, data) < 0)
        return NULL;
    return out;
}

/* A resync carries the id of the newest event: a client that reloads its
 * state now and resumes from there misses nothing. Not kept in the ring:
 * it concerns this client only. */
static char *resync_frame(struct stream *s, const char *why)
{
    pthread_mutex_lock(&s->ev->lock);
    s->cursor = s->ev->next - 1;
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", "resync", "node", s->ev->node,
                          "reason", why);
    pthread_mutex_unlock(&s->ev->lock);
    char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = data ? frame(s, s->cursor, data) : NULL;
    free(data);
    return out;
}

/* The next frame to send: an event, a resync, a keepalive, or NULL at the
 * end (ternd stops, the session ended). */
static char *next_frame(void *ctx)
{
    struct stream *s = ctx;
    if (s->resync) {
        s->resync = false;
        return resync_frame(s, "events since the given id are gone");
    }
    if (s->session[0] && !web_session_live(s->session))
        return NULL;
    char *text = NULL;
    int rc = events_next(s->ev, &s->cursor, s->local_only, KEEPALIVE_MS, &text);
    if (rc == -ETIMEDOUT)
        return strdup(": keepalive\n\n");
    if (rc == -ESTALE)
        return resync_frame(s, "this client fell behind");
    if (rc < 0)
        return NULL;
    char *out = frame(s, s->cursor, text);
    free(text);
    return out;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *s = cls;
    long n = sse_out_read(&s->out, next_frame, s, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    free(s->out.pending);
    events_stream_close(s);
}

void *events_stream_open(struct api_req *req, struct reply *r, size_t size)
{
    struct events *ev = events_hub();
    void *s = calloc(1, size);
    pthread_mutex_lock(&ev->lock);
    bool full = ev->streams >= EVENTS_STREAMS_MAX, stopping = ev->stopping;
    if (s && !full && !stopping)
        ev->streams++;
    pthread_mutex_unlock(&ev->lock);
    if (s && !full && !stopping)
        return s;
    free(s);
    reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "node '%s': %s", req->ctx->cfg->name,
                stopping ? "ternd is stopping" : "too many event streams open");
    return NULL;
}

void events_stream_close(void *s)
{
    struct events *ev = events_hub();
    pthread_mutex_lock(&ev->lock);
    ev->streams--;
    pthread_mutex_unlock(&ev->lock);
    free(s);
}

static struct stream *stream_new(struct api_req *req, struct reply *r)
{
    struct stream *s = events_stream_open(req, r, sizeof(*s));
    if (!s)
        return NULL;
    s->ev = events_hub();
    web_session_of(req->conn, s->session);
    return s;
}

static void get_events(struct api_req *req, struct reply *r)
{
    const char *scope = api_query(req, "scope");
    if (scope && strcmp(scope, "node") != 0 && strcmp(scope, "cluster") != 0)
        return reply_error(r, MHD_HTTP_BAD_REQUEST,
                           "scope '%.40s': not 'cluster' or 'node'", scope);
    const char *last = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                   "Last-Event-ID");
    if (!last)
        last = api_query(req, "last_event_id");
    struct stream *s = stream_new(req, r);
    if (!s)
        return;
    s->local_only = scope && strcmp(scope, "node") == 0;
    s->resync = events_resume(s->ev, last, &s->cursor) == -ESTALE;
    if (asprintf(&s->out.pending, "retry: %d\n: events of %s\n\n", RETRY_MS,
                 s->local_only ? "this node" : "the cluster") > 0)
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

const struct api_route api_routes_events[] = {
    {"GET", "/events", get_events},
    {"GET", "/vms/{}/console/stream", events_console_stream}, /* events_console.c */
    {NULL, NULL, NULL},
};

long sse_out_read(struct sse_out *o, char *(*next)(void *ctx), void *ctx, char *buf,
                  size_t max)
{
    if (!o->pending) {
        o->pending = next(ctx);
        o->len = o->pending ? strlen(o->pending) : 0;
        o->off = 0;
        if (!o->pending)
            return -1;
    }
    size_t n = o->len - o->off < max ? o->len - o->off : max;
    memcpy(buf, o->pending + o->off, n);
    o->off += n;
    if (o->off == o->len) {
        free(o->pending);
        o->pending = NULL;
    }
    return (long)n;
}
