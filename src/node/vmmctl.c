#include "node/vmmctl.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/sock.h"

int vmmctl_open(struct vmmctl_conn *c, const char *path, struct err *e)
{
    int rc = jsonl_buf_init(&c->buf);
    c->fd = rc ? rc : sock_connect_unix(path);
    if (c->fd < 0) {
        rc = c->fd;
        jsonl_buf_release(&c->buf);
        return err_set(e, -rc, "control socket %s: %s", path, strerror(-rc));
    }
    return 0;
}

void vmmctl_close(struct vmmctl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    jsonl_buf_release(&c->buf);
    c->fd = -1;
}

/* A whole line held: *line parsed from it, *got true. */
static int take_line(struct vmmctl_conn *c, json_t **line, bool *got, struct err *e)
{
    char *text = jsonl_buf_next(&c->buf);
    *got = text != NULL;
    if (!text)
        return 0;
    /* the line ends where the next begins: its length, NUL bytes and all */
    size_t len = (size_t)(c->buf.data + c->buf.start - 1 - text);
    *line = json_loadb(text, len, 0, NULL);
    return *line ? 0 : err_set(e, EPROTO, "control socket: a line that is not json");
}

/* Until fd is readable or the deadline (timeout_ms < 0: none) passes. */
static int wait_readable(int fd, int timeout_ms, uint64_t deadline, bool *readable,
                         struct err *e)
{
    int wait = -1;
    if (timeout_ms >= 0) {
        uint64_t now = clock_mono_ns();
        if (now >= deadline)
            return err_set(e, ETIMEDOUT, "control socket: no answer in %d ms", timeout_ms);
        wait = (int)((deadline - now) / 1000000) + 1;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, wait) < 0 && errno != EINTR)
        return err_set(e, errno, "control socket: %s", strerror(errno));
    *readable = p.revents & (POLLIN | POLLHUP | POLLERR);
    return 0;
}

int vmmctl_read(struct vmmctl_conn *c, int timeout_ms, json_t **line, struct err *e)
{
    uint64_t deadline = clock_mono_ns() +
                        (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    for (;;) {
        bool got = false, readable = false;
        int rc = take_line(c, line, &got, e);
        if (rc || got)
            return rc;
        if (c->buf.len - c->buf.start == JSONL_LINE_MAX)
            return err_set(e, EPROTO, "control socket: line over %d bytes", JSONL_LINE_MAX);
        rc = wait_readable(c->fd, timeout_ms, deadline, &readable, e);
        if (rc)
            return rc;
        if (!readable)
            continue;
        rc = jsonl_buf_fill(&c->buf, c->fd);
        if (rc && rc != -EINTR && rc != -EAGAIN)
            return err_set(e, EPIPE, "control socket closed");
    }
}

int vmmctl_send(struct vmmctl_conn *c, json_t *req, struct err *e)
{
    int rc = jsonl_send(c->fd, req);
    if (rc == -ENOMEM)
        return err_set(e, ENOMEM, "control request: out of memory");
    return rc ? err_set(e, -rc, "control socket: %s", strerror(-rc)) : 0;
}

int vmmctl_request(const char *path, json_t *req, json_t **reply, int timeout_ms,
                   struct err *e)
{
    struct vmmctl_conn c;
    int rc = vmmctl_open(&c, path, e);
    if (rc)
        return rc;
    rc = vmmctl_send(&c, req, e);
    json_t *line = NULL;
    while (!rc) {
        rc = vmmctl_read(&c, timeout_ms, &line, e);
        if (rc || json_object_get(line, "ok"))
            break;
        json_decref(line); /* an event */
        line = NULL;
    }
    vmmctl_close(&c);
    if (rc)
        return rc;
    if (!json_is_true(json_object_get(line, "ok"))) {
        const char *why = json_string_value(json_object_get(line, "error"));
        err_set(e, EREMOTEIO, "%s", why ? why : "refused");
        json_decref(line);
        return -EREMOTEIO;
    }
    *reply = line;
    return 0;
}
