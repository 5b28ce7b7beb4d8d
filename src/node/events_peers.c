/* The cluster half of the hub (node/events.h): one thread looks at the
 * node list and the quorum every second and turns changes into node-up,
 * node-down and quorum events (each node observes them itself, so they
 * are never passed on between nodes); and for every other online node one
 * thread keeps that node's ?scope=node stream open and adds its events
 * here, resuming with Last-Event-ID after a break. */
#include "node/events.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/node.h"
#include "common/log.h"
#include "common/textbuf.h"
#include "node/ctx.h"
#include "node/info.h"
#include "node/peer.h"

#define PEERS_MAX 16
#define LOOK_EVERY_MS 1000
#define SILENT_S 25 /* no byte (not even a keepalive) for this long: reconnect */
#define FRAME_MAX (256u << 10)

struct sub {
    char node[TERN_NAME_MAX + 1]; /* "" for a free slot */
    bool running, wanted;
    char last_id[EVENTS_ID_MAX]; /* of the node's stream; "" before any */
    pthread_t thread;
};

struct seen {
    char node[TERN_NAME_MAX + 1];
    bool online;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, stop;
    struct node_ctx *ctx;
    pthread_t thread;
    struct sub subs[PEERS_MAX];
    struct seen seen[PEERS_MAX];
    size_t n_seen;
    int quorate; /* -1 not known yet */
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .quorate = -1};

static bool stopping(void)
{
    pthread_mutex_lock(&P.lock);
    bool stop = P.stop;
    pthread_mutex_unlock(&P.lock);
    return stop;
}

static bool sub_wanted(struct sub *s)
{
    pthread_mutex_lock(&P.lock);
    bool w = s->wanted && !P.stop;
    pthread_mutex_unlock(&P.lock);
    return w;
}

/* What one stream has received and not yet taken apart into frames. */
struct sse_in {
    struct sub *sub;
    struct textbuf in;
};

/* One frame ("id: ...\ndata: {...}"): its event into the hub. A resync
 * from the node means its events since our last id are gone: our clients
 * must resync too. */
static void take_frame(struct sse_in *rd, char *f)
{
    char *id = NULL, *data = NULL;
    for (char *line = strtok(f, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "id: ", 4) == 0)
            id = line + 4;
        else if (strncmp(line, "data: ", 6) == 0)
            data = line + 6;
    }
    json_t *o = data ? json_loads(data, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (type && strcmp(type, "resync") == 0) {
        char why[160];
        snprintf(why, sizeof(why), "events of node '%s' were lost", rd->sub->node);
        events_add(events_hub(), "resync", json_pack("{s:s}", "reason", why), false);
        json_decref(o);
    } else if (type) {
        events_add(events_hub(), type, o, false);
    } else {
        json_decref(o);
    }
    if (id && strlen(id) < EVENTS_ID_MAX) {
        pthread_mutex_lock(&P.lock);
        snprintf(rd->sub->last_id, sizeof(rd->sub->last_id), "%s", id);
        pthread_mutex_unlock(&P.lock);
    }
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sse_in *rd = arg;
    if (textbuf_append(&rd->in, data, size * nmemb) < 0)
        return 0;
    char *text = (char *)textbuf_text(&rd->in), *end;
    size_t used = 0;
    while ((end = strstr(text + used, "\n\n"))) {
        *end = '\0';
        take_frame(rd, text + used);
        used = (size_t)(end - text) + 2;
    }
    if (used) {
        char *rest = strdup(text + used);
        textbuf_reset(&rd->in);
        if (rest && textbuf_append(&rd->in, rest, strlen(rest)) < 0)
            size = 0;
        free(rest);
    }
    return size * nmemb;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return !sub_wanted(((struct sse_in *)arg)->sub);
}

/* Until the stream breaks or is not wanted any more. */
static void follow(struct sub *s, struct peer *p)
{
    char url[400], auth[TERND_TOKEN_LEN + 32], last[EVENTS_ID_MAX + 32];
    snprintf(url, sizeof(url), "%s/api/" TERN_API_VERSION "/events?scope=node", p->base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->token);
    pthread_mutex_lock(&P.lock);
    snprintf(last, sizeof(last), "Last-Event-ID: %s", s->last_id);
    bool resume = s->last_id[0];
    pthread_mutex_unlock(&P.lock);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    if (resume)
        h = curl_slist_append(h, last);
    struct sse_in rd = {.sub = s};
    textbuf_init(&rd.in, FRAME_MAX);
    CURL *curl = p->curl;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    /* the pin is the trust, as in peer.c */
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, p->pin);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)SILENT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &rd);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &rd);
    CURLcode cc = curl_easy_perform(curl);
    if (cc != CURLE_ABORTED_BY_CALLBACK)
        log_debug("events", "stream of node '%s': %s", s->node, curl_easy_strerror(cc));
    curl_slist_free_all(h);
    textbuf_release(&rd.in);
}

static void nap(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&P.lock);
    if (!P.stop)
        pthread_cond_timedwait(&P.wake, &P.lock, &ts);
    pthread_mutex_unlock(&P.lock);
}

static void *sub_main(void *arg)
{
    struct sub *s = arg;
    struct etcd_client c;
    struct err e;
    bool have = etcd_client_init(&c, P.ctx->cfg->cluster_address, &e) == 0;
    while (have && sub_wanted(s)) {
        struct peer p;
        if (peer_init(&p, P.ctx, &c, s->node, &e) == 0) {
            follow(s, &p);
            peer_release(&p);
        }
        nap(1000);
    }
    if (have)
        etcd_client_release(&c);
    pthread_mutex_lock(&P.lock);
    s->running = false;
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

/* With P.lock held: node's subscription wanted or not; a wanted one whose
 * thread ended (it was not wanted for a while) starts again. */
static void want(const char *node, bool wanted)
{
    struct sub *s = NULL, *free_slot = NULL;
    for (unsigned i = 0; i < PEERS_MAX; i++) {
        if (strcmp(P.subs[i].node, node) == 0)
            s = &P.subs[i];
        else if (!P.subs[i].node[0] && !free_slot)
            free_slot = &P.subs[i];
    }
    if (!s && (!wanted || !free_slot))
        return;
    if (!s) {
        s = free_slot;
        snprintf(s->node, sizeof(s->node), "%s", node);
    }
    s->wanted = wanted;
    if (wanted && !s->running) {
        if (s->thread)
            pthread_join(s->thread, NULL);
        s->thread = 0;
        s->running = pthread_create(&s->thread, NULL, sub_main, s) == 0;
    }
}

/* With P.lock held: node-up and node-down for what changed since the last
 * look (none at the first: that is how things are, not a change). */
static void compare(const struct node_entries *l, bool first)
{
    struct seen now[PEERS_MAX];
    size_t n = l->count < PEERS_MAX ? l->count : PEERS_MAX;
    for (size_t i = 0; i < n; i++) {
        snprintf(now[i].node, sizeof(now[i].node), "%s", l->items[i].name);
        now[i].online = l->items[i].online;
        bool before = false, known = false;
        for (size_t j = 0; j < P.n_seen; j++)
            if (strcmp(P.seen[j].node, now[i].node) == 0)
                known = true, before = P.seen[j].online;
        if (!first && (!known || before != now[i].online))
            events_add(events_hub(), now[i].online ? "node-up" : "node-down",
                       json_pack("{s:s}", "name", now[i].node), false);
        bool peer = now[i].online && strcmp(now[i].node, P.ctx->cfg->name) != 0;
        want(now[i].node, peer);
    }
    for (size_t j = 0; j < P.n_seen; j++) {
        bool still = false;
        for (size_t i = 0; i < n; i++)
            still = still || strcmp(P.seen[j].node, now[i].node) == 0;
        if (!still)
            want(P.seen[j].node, false);
    }
    memcpy(P.seen, now, n * sizeof(now[0]));
    P.n_seen = n;
}

static void look(struct etcd_client *c, bool first)
{
    struct node_entries l;
    struct err e;
    node_entries_init(&l);
    int rc = node_list(c, 0, &l, &e);
    int quorate = rc == 0;
    if (rc == -ETCD_NOT_QUORATE) {
        node_entries_release(&l);
        node_entries_init(&l);
        rc = node_list(c, ETCD_SERIALIZABLE, &l, &e);
    }
    pthread_mutex_lock(&P.lock);
    if (P.quorate >= 0 && P.quorate != quorate)
        events_add(events_hub(), "quorum", json_pack("{s:b}", "quorate", quorate), false);
    P.quorate = quorate;
    if (!rc)
        compare(&l, first);
    pthread_mutex_unlock(&P.lock);
    node_entries_release(&l);
}

static void *observer_main(void *arg)
{
    (void)arg;
    struct etcd_client c;
    struct err e;
    if (etcd_client_init(&c, P.ctx->cfg->cluster_address, &e) < 0) {
        log_warn("events", "no cluster events: %s", e.msg);
        return NULL;
    }
    etcd_client_set_timeout(&c, 2000);
    bool first = true;
    char cluster[TERN_NAME_MAX + 1];
    while (!stopping()) {
        if (node_ctx_in_cluster(P.ctx, cluster)) {
            look(&c, first);
            first = false;
        }
        nap(LOOK_EVERY_MS);
    }
    etcd_client_release(&c);
    return NULL;
}

int events_peers_start(struct node_ctx *x, struct err *e)
{
    pthread_mutex_lock(&P.lock);
    P.ctx = x;
    P.stop = false;
    P.quorate = -1;
    int rc = pthread_create(&P.thread, NULL, observer_main, NULL);
    P.started = rc == 0;
    pthread_mutex_unlock(&P.lock);
    return rc ? err_set(e, rc, "events thread: %s", strerror(rc)) : 0;
}

void events_peers_stop(void)
{
    pthread_mutex_lock(&P.lock);
    bool started = P.started;
    P.stop = true;
    P.started = false;
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.lock);
    if (started)
        pthread_join(P.thread, NULL);
    for (unsigned i = 0; i < PEERS_MAX; i++) {
        if (P.subs[i].thread)
            pthread_join(P.subs[i].thread, NULL);
        memset(&P.subs[i], 0, sizeof(P.subs[i]));
    }
}
