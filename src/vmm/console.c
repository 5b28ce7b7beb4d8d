#include "vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sock.h"

int console_open(struct console *con, const char *spec, struct err *e)
{
    memset(con, 0, sizeof(*con));
    con->out_fd = con->listen_fd = -1;
    for (unsigned i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        con->client[i] = -1;
    pthread_mutex_init(&con->lock, NULL);
    if (strcmp(spec, "stdio") == 0) {
        con->kind = CONSOLE_STDIO;
        con->out_fd = STDOUT_FILENO;
        return 0;
    }
    if (strncmp(spec, "file:", 5) == 0 && spec[5]) {
        con->kind = CONSOLE_FILE;
        snprintf(con->path, sizeof(con->path), "%s", spec + 5);
        con->out_fd = open(con->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (con->out_fd < 0)
            return err_set(e, errno, "console file '%s': %s", con->path, strerror(errno));
        return 0;
    }
    if (strncmp(spec, "unix:", 5) == 0 && spec[5]) {
        con->kind = CONSOLE_UNIX;
        snprintf(con->path, sizeof(con->path), "%s", spec + 5);
        con->listen_fd = sock_listen_unix(con->path);
        if (con->listen_fd < 0)
            return err_set(e, -con->listen_fd, "console socket '%s': %s", con->path,
                           strerror(-con->listen_fd));
        return 0;
    }
    return err_set(e, EINVAL, "console '%s': expected stdio, file:PATH or unix:PATH", spec);
}

void console_release(struct console *con)
{
    for (unsigned i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        if (con->client[i] >= 0)
            close(con->client[i]);
    if (con->kind == CONSOLE_FILE && con->out_fd >= 0)
        close(con->out_fd);
    if (con->listen_fd >= 0) {
        close(con->listen_fd);
        unlink(con->path);
    }
    pthread_mutex_destroy(&con->lock);
}

void console_output(void *ctx, const uint8_t *buf, size_t len)
{
    struct console *con = ctx;
    if (con->out_fd >= 0) {
        /* a console nobody reads must not stop the guest: drop on error */
        if (write(con->out_fd, buf, len) < 0 && errno != EAGAIN)
            con->out_fd = -1;
        return;
    }
    pthread_mutex_lock(&con->lock);
    for (unsigned i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        if (con->client[i] >= 0)
            send(con->client[i], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    pthread_mutex_unlock(&con->lock);
}

static void console_drop_client(struct console *con, struct evloop *loop, int fd)
{
    evloop_remove(loop, fd);
    pthread_mutex_lock(&con->lock);
    for (unsigned i = 0; i < CONSOLE_MAX_CLIENTS; i++)
        if (con->client[i] == fd)
            con->client[i] = -1;
    pthread_mutex_unlock(&con->lock);
    close(fd);
}

static void console_on_input(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct console *con = ctx;
    uint8_t buf[256];
    ssize_t n = (events & EPOLLIN) ? read(fd, buf, sizeof(buf)) : 0;
    if (n <= 0) {
        console_drop_client(con, loop, fd);
        return;
    }
    /* the 16550 FIFO is small: what does not fit is lost, as on hardware */
    serial_input(con->uart, buf, (size_t)n);
}

static void console_on_accept(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct console *con = ctx;
    (void)events;
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0)
        return;
    pthread_mutex_lock(&con->lock);
    unsigned slot = CONSOLE_MAX_CLIENTS;
    for (unsigned i = 0; i < CONSOLE_MAX_CLIENTS && slot == CONSOLE_MAX_CLIENTS; i++)
        if (con->client[i] < 0)
            slot = i;
    if (slot < CONSOLE_MAX_CLIENTS)
        con->client[slot] = client;
    pthread_mutex_unlock(&con->lock);
    if (slot == CONSOLE_MAX_CLIENTS ||
        evloop_add(loop, client, EPOLLIN, console_on_input, con)) {
        log_warn("console", "too many console clients, refusing one");
        console_drop_client(con, loop, client);
    }
}

int console_attach(struct console *con, struct evloop *loop, struct serial *uart)
{
    con->uart = uart;
    if (con->listen_fd < 0)
        return 0;
    return evloop_add(loop, con->listen_fd, EPOLLIN, console_on_accept, con);
}
