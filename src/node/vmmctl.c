#include "node/vmmctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/sock.h"

int vmmctl_open(struct vmmctl_conn *c, const char *path, struct err *e)
{
    c->len = 0;
    c->buf = malloc(VMMCTL_LINE_MAX);
    c->fd = c->buf ? sock_connect_unix(path) : -ENOMEM;
    if (c->fd < 0) {
        int rc = c->fd;
        free(c->buf);
        c->buf = NULL;
        return err_set(e, -rc, "control socket %s: %s", path, strerror(-rc));
    }
    return 0;
}

void vmmctl_close(struct vmmctl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

static int take_line(struct vmmctl_conn *c, json_t **line, struct err *e)
{
    char *nl = memchr(c->buf, '\n', c->len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - c->buf);
    *line = json_loadb(c->buf, n, 0, NULL);
    memmove(c->buf, nl + 1, c->len - n - 1);
    c->len -= n + 1;
    return *line ? 1 : err_set(e, EPROTO, "control socket: a line that is not json");
}

int vmmctl_read(struct vmmctl_conn *c, int timeout_ms, json_t **line, struct err *e)
{
    uint64_t deadline = clock_mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;
    for (;;) {
        int rc = take_line(c, line, e);
        if (rc)
            return rc < 0 ? rc : 0;
        if (c->len == VMMCTL_LINE_MAX)
            return err_set(e, EPROTO, "control socket: line over %d bytes", VMMCTL_LINE_MAX);
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = clock_mono_ns();
            if (now >= deadline)
                return err_set(e, ETIMEDOUT, "control socket: no answer in %d ms", timeout_ms);
            wait = (int)((deadline - now) / 1000000) + 1;
        }
        struct pollfd p = { c->fd, POLLIN, 0 };
        if (poll(&p, 1, wait) < 0 && errno != EINTR)
            return err_set(e, errno, "control socket: %s", strerror(errno));
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(c->fd, c->buf + c->len, VMMCTL_LINE_MAX - c->len);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return err_set(e, EPIPE, "control socket closed");
        if (n > 0)
            c->len += (size_t)n;
    }
}

int vmmctl_send(struct vmmctl_conn *c, json_t *req, struct err *e)
{
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text)
        return err_set(e, ENOMEM, "control request: out of memory");
    size_t len = strlen(text);
    text[len] = '\n';   /* the NUL becomes the line end: len + 1 bytes go out */
    int rc = sock_write_all(c->fd, text, len + 1);
    free(text);
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
        json_decref(line);   /* an event */
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
