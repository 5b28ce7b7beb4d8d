/* A small epoll loop: file descriptors with callbacks, run until stopped. */
#ifndef TERN_COMMON_EVLOOP_H
#define TERN_COMMON_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
typedef void evloop_fn(struct evloop *loop, int fd, uint32_t events, void *ctx);

struct evloop_watch {
    int fd;
    evloop_fn *fn;
    void *ctx;
};

#define EVLOOP_MAX_WATCHES 64

struct evloop {
    int epfd;
    bool stop;
    struct evloop_watch watch[EVLOOP_MAX_WATCHES];
};

int evloop_init(struct evloop *loop);
void evloop_release(struct evloop *loop);
/* events: EPOLLIN etc. 0, -ENOSPC or -errno. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn *fn, void *ctx);
void evloop_remove(struct evloop *loop, int fd);
/* Runs callbacks until evloop_stop(); timeout_ms < 0 waits forever per turn,
 * tick (may be NULL) runs after every turn. */
int evloop_run(struct evloop *loop, int timeout_ms, void (*tick)(struct evloop *, void *),
               void *tick_ctx);
void evloop_stop(struct evloop *loop);

#endif
