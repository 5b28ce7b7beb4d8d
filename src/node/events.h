/* The event stream of ternd (docs/api.md, "Events"): what happens in the
 * cluster as JSON objects, kept in a ring so that a client that reconnects
 * with Last-Event-ID gets what it missed (or a "resync" event when that is
 * gone), and served as server-sent events on GET /api/v1/events.
 *
 * Each ternd has one ring, the hub. It holds the events of this node (its
 * tasks, its VMs' run states: published here with events_publish) and
 * those of the other nodes, which events_peers.c brings in from their own
 * streams (?scope=node), plus what this node observes of the cluster
 * itself (nodes up and down, quorum). So a client of any node sees the
 * whole cluster, each event once, with ids of the node it talks to. */
#ifndef TERN_NODE_EVENTS_H
#define TERN_NODE_EVENTS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/keys.h"
#include "common/err.h"

#define EVENTS_RING 1024
#define EVENTS_ID_MAX 48 /* "<epoch>-<seq>" */

struct node_ctx;

struct event_entry {
    uint64_t seq; /* 0: empty slot */
    bool local;   /* happened on this node: goes to the other nodes too */
    char *text;   /* the event, JSON */
};

struct events {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* with lock: an event was added, or stopping */
    struct event_entry ring[EVENTS_RING];
    uint64_t next;  /* seq of the next event; the first is 1 */
    char epoch[17]; /* this run of ternd, hex: ids of another run mean nothing */
    char node[TERN_NAME_MAX + 1];
    bool stopping;    /* streams end */
    unsigned streams; /* open streams */
};

void events_init(struct events *ev, const char *node);
void events_release(struct events *ev);
/* Adds {"type": type, "node": origin or this node, "time": ms, ...data}
 * (data taken, may be NULL); local: this node's own event. */
void events_add(struct events *ev, const char *type, json_t *data, bool local);
/* Streams end; no new one starts. */
void events_stop(struct events *ev);

/* The next event after *cursor (local ones only with local_only) within
 * wait_ms: 0 with *text (malloc'd), *cursor moved on; -ETIMEDOUT;
 * -ESTALE when events after *cursor are gone (the ring wrapped; *cursor is
 * then moved to the newest); -ECANCELED when stopping. */
int events_next(struct events *ev, uint64_t *cursor, bool local_only, int wait_ms,
                char **text);
/* Where a stream that says Last-Event-ID id (NULL: none) starts: 0 with
 * *cursor; -ESTALE when what came after id is gone or id is of another run
 * of ternd (*cursor then is the newest event: the client must resync). */
int events_resume(struct events *ev, const char *id, uint64_t *cursor);
/* The id of the event seq, "<epoch>-<seq>". */
void events_id(const struct events *ev, uint64_t seq, char out[EVENTS_ID_MAX]);

/* The hub of this process; events_hub_setup names its node. */
struct events *events_hub(void);
void events_hub_setup(const char *node);
/* One event of this node into the hub (data taken): the one-line call of
 * the places where something happens (task.c, vmm_tick.c). */
void events_publish(const char *type, json_t *data);
/* {"task": task} (taken): task-started, task-ended. */
void events_publish_task(const char *type, json_t *task);
/* task-progress of a running task (data: the task, taken): at most 4 a
 * second per task. */
void events_publish_progress(const char *task, json_t *data);
/* A VM's run state as published to etcd (state: its vmrec_state JSON,
 * NULL when it stopped). */
void events_publish_vm(uint32_t vmid, const char *state);

/* Event streams a node serves at once (of MHD's 64 connections), console
 * streams included. */
#define EVENTS_STREAMS_MAX 32

/* A server-sent-events stream's frame being sent: a frame may take
 * several reads of the HTTP library's buffer. */
struct sse_out {
    char *pending; /* a frame not yet wholly sent, malloc'd */
    size_t len, off;
};
/* Copies up to max bytes of the pending frame to buf, first taking the
 * next one from next(ctx) when none is pending (NULL: the stream ends,
 * -1 returned). */
long sse_out_read(struct sse_out *o, char *(*next)(void *ctx), void *ctx, char *buf,
                  size_t max);

struct api_req;
struct reply;
/* A stream of size bytes (zeroed), counted against EVENTS_STREAMS_MAX;
 * NULL with a 503 in r when full or stopping. events_stream_close uncounts
 * and frees it. */
void *events_stream_open(struct api_req *req, struct reply *r, size_t size);
void events_stream_close(void *s);
/* events_console.c: GET /vms/ID/console/stream, a VM's console as
 * server-sent events from any node (docs/api.md). */
void events_console_stream(struct api_req *req, struct reply *r);

/* events_peers.c: a thread that watches the node list and the quorum
 * (node-up, node-down, quorum events) and keeps one stream open to each
 * other online node, adding its events to the hub. */
int events_peers_start(struct node_ctx *x, struct err *e);
void events_peers_stop(void);

#endif
