/* The control socket of tern-vmm: JSON lines over a unix stream socket.
 * Requests {"cmd":"status"}; replies {"ok":true,...} or {"ok":false,
 * "error":"..."}; events {"event":"paused",...} go to every client.
 * docs/control.md is the reference. */
#ifndef TERN_VMM_CONTROL_H
#define TERN_VMM_CONTROL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/err.h"
#include "common/evloop.h"
#include "common/jsonl.h"

#define CONTROL_MAX_CLIENTS 16

struct control;

/* A command fills `reply` (ok is added by the caller) or fails with e. */
struct control_command {
    const char *name;
    int (*run)(struct control *ctl, json_t *request, json_t *reply, struct err *e);
};

struct control_client {
    int fd;
    struct jsonl_buf in; /* requests, at most JSONL_LINE_MAX a line */
};

struct control {
    char path[256];
    int listen_fd;
    struct evloop *loop;
    const struct control_command *commands;
    void *ctx;
    struct control_client client[CONTROL_MAX_CLIENTS];
    _Atomic uint64_t last_request_ns; /* CLOCK_MONOTONIC; any client, any command */
};

int control_init(struct control *ctl, const char *path, struct evloop *loop,
                 const struct control_command *commands, void *ctx, struct err *e);
void control_release(struct control *ctl);
/* Milliseconds since the last request of any client (since control_init
 * when none came): how a migration tells that nobody watches it any more.
 * Any thread. */
uint64_t control_idle_ms(struct control *ctl);
/* Sends {"event":name, ...fields} to every client; takes ownership of fields
 * (may be NULL). */
void control_event(struct control *ctl, const char *name, json_t *fields);

#endif
