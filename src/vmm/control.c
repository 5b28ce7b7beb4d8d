#include "vmm/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/sock.h"

static void client_close(struct control *ctl, struct control_client *c)
{
    evloop_remove(ctl->loop, c->fd);
    close(c->fd);
    jsonl_buf_release(&c->in);
    c->fd = -1;
}

static void reply_error(int fd, json_t *id, const char *msg)
{
    json_t *r = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
    if (id)
        json_object_set(r, "id", id);
    jsonl_send(fd, r);
    json_decref(r);
}

static const struct control_command *find_command(struct control *ctl, const char *name)
{
    for (const struct control_command *c = ctl->commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void handle_line(struct control *ctl, int fd, const char *line)
{
    atomic_store(&ctl->last_request_ns, clock_mono_ns());
    json_error_t jerr;
    json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object(req)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "request is not a json object: %s",
                 req ? "wrong type" : jerr.text);
        reply_error(fd, NULL, msg);
        json_decref(req);
        return;
    }
    json_t *id = json_object_get(req, "id");
    const char *name = json_string_value(json_object_get(req, "cmd"));
    const struct control_command *cmd = name ? find_command(ctl, name) : NULL;
    char msg[600];
    if (!cmd) {
        snprintf(msg, sizeof(msg),
                 name ? "unknown command '%s'" : "request has no string 'cmd'", name);
        reply_error(fd, id, msg);
        json_decref(req);
        return;
    }
    json_t *reply = json_object();
    struct err e = {""};
    if (cmd->run(ctl, req, reply, &e)) {
        snprintf(msg, sizeof(msg), "%s: %s", name, e.msg[0] ? e.msg : "failed");
        reply_error(fd, id, msg);
    } else {
        json_object_set_new(reply, "ok", json_true());
        if (id)
            json_object_set(reply, "id", id);
        jsonl_send(fd, reply);
    }
    json_decref(reply);
    json_decref(req);
}

/* Handles every whole line held; a partial line waits for more. -1 when
 * the client went away meanwhile (an event it could not take). */
static int client_consume(struct control *ctl, struct control_client *c)
{
    char *line;
    while ((line = jsonl_buf_next(&c->in))) {
        if (*line)
            handle_line(ctl, c->fd, line);
        if (c->fd < 0)
            return -1;
    }
    return 0;
}

static void on_client(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct control *ctl = ctx;
    (void)loop;
    struct control_client *c = NULL;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->client[i].fd == fd)
            c = &ctl->client[i];
    if (!c)
        return;
    /* the end of the stream and every read error alike end the client */
    if (!(events & (EPOLLIN | EPOLLHUP)) || jsonl_buf_fill(&c->in, fd)) {
        client_close(ctl, c);
        return;
    }
    if (client_consume(ctl, c))
        return;
    if (jsonl_buf_full(&c->in)) {
        reply_error(fd, NULL, "request line longer than 65536 bytes");
        client_close(ctl, c);
    }
}

static void on_accept(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct control *ctl = ctx;
    (void)events;
    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct control_client *c = &ctl->client[i];
        if (c->fd >= 0)
            continue;
        if (jsonl_buf_init(&c->in))
            break;
        if (!evloop_add(loop, cfd, EPOLLIN, on_client, ctl)) {
            c->fd = cfd;
            return;
        }
        jsonl_buf_release(&c->in);
        break;
    }
    reply_error(cfd, NULL, "too many control clients");
    close(cfd);
}

int control_init(struct control *ctl, const char *path, struct evloop *loop,
                 const struct control_command *commands, void *ctx, struct err *e)
{
    memset(ctl, 0, sizeof(*ctl));
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        ctl->client[i].fd = -1;
    ctl->listen_fd = -1;
    ctl->loop = loop;
    ctl->commands = commands;
    ctl->ctx = ctx;
    atomic_store(&ctl->last_request_ns, clock_mono_ns());
    if (!path)
        return 0;
    snprintf(ctl->path, sizeof(ctl->path), "%s", path);
    ctl->listen_fd = sock_listen_unix(path);
    if (ctl->listen_fd < 0)
        return err_set(e, -ctl->listen_fd, "control socket '%s': %s", path,
                       strerror(-ctl->listen_fd));
    int rc = evloop_add(loop, ctl->listen_fd, EPOLLIN, on_accept, ctl);
    return rc ? err_set(e, -rc, "control socket: %s", strerror(-rc)) : 0;
}

void control_release(struct control *ctl)
{
    if (!ctl->loop)
        return; /* never initialised */
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->client[i].fd >= 0)
            client_close(ctl, &ctl->client[i]);
    if (ctl->listen_fd >= 0) {
        evloop_remove(ctl->loop, ctl->listen_fd);
        close(ctl->listen_fd);
        unlink(ctl->path);
    }
    ctl->listen_fd = -1;
}

uint64_t control_idle_ms(struct control *ctl)
{
    uint64_t now = clock_mono_ns(), last = atomic_load(&ctl->last_request_ns);
    return now > last ? (now - last) / 1000000 : 0;
}

void control_event(struct control *ctl, const char *name, json_t *fields)
{
    json_t *ev = fields ? fields : json_object();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_object_set_new(ev, "event", json_string(name));
    json_object_set_new(ev, "timestamp",
                        json_real((double)ts.tv_sec + (double)ts.tv_nsec / 1e9));
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl->client[i].fd >= 0 && jsonl_send(ctl->client[i].fd, ev))
            client_close(ctl, &ctl->client[i]);
    json_decref(ev);
}
