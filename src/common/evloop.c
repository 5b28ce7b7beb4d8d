#include "common/evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int evloop_init(struct evloop *loop)
{
    memset(loop, 0, sizeof(*loop));
    for (unsigned i = 0; i < EVLOOP_MAX_WATCHES; i++)
        loop->watch[i].fd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    return loop->epfd < 0 ? -errno : 0;
}

void evloop_release(struct evloop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn *fn, void *ctx)
{
    for (unsigned i = 0; i < EVLOOP_MAX_WATCHES; i++) {
        struct evloop_watch *w = &loop->watch[i];
        if (w->fd >= 0)
            continue;
        struct epoll_event ev = {.events = events, .data.u32 = i};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
        *w = (struct evloop_watch){fd, fn, ctx};
        return 0;
    }
    return -ENOSPC;
}

void evloop_remove(struct evloop *loop, int fd)
{
    for (unsigned i = 0; i < EVLOOP_MAX_WATCHES; i++) {
        if (loop->watch[i].fd == fd) {
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
            loop->watch[i].fd = -1;
        }
    }
}

int evloop_run(struct evloop *loop, int timeout_ms, void (*tick)(struct evloop *, void *),
               void *tick_ctx)
{
    struct epoll_event ev[16];
    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, ev, 16, timeout_ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n && !loop->stop; i++) {
            struct evloop_watch *w = &loop->watch[ev[i].data.u32];
            /* a callback earlier in this batch may have removed this one */
            if (w->fd >= 0)
                w->fn(loop, w->fd, ev[i].events, w->ctx);
        }
        if (tick && !loop->stop)
            tick(loop, tick_ctx);
    }
    return 0;
}

void evloop_stop(struct evloop *loop)
{
    loop->stop = true;
}
