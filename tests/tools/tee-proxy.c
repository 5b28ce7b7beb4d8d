/* tee-proxy: records a migration stream. `tee-proxy LISTEN_UNIX_PATH
 * CONNECT_URI OUTFILE` accepts one connection on a unix socket, connects
 * onward (unix:PATH or tcp:HOST:PORT), forwards both directions until both
 * are closed, and writes every byte of the first direction (the accepted
 * peer -> the onward peer, i.e. source -> destination) to OUTFILE. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sock.h"

static int connect_uri(const char *uri)
{
    if (strncmp(uri, "unix:", 5) == 0)
        return sock_connect_unix(uri + 5);
    if (strncmp(uri, "tcp:", 4) != 0)
        return -EINVAL;
    char host[256];
    const char *spec = uri + 4, *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -EINVAL;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res))
        return -EINVAL;
    int fd = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen))
            break;
        if (fd >= 0)
            close(fd);
        fd = -errno;
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: tee-proxy LISTEN_UNIX_PATH CONNECT_URI OUTFILE\n");
        return 2;
    }
    int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        fprintf(stderr, "tee-proxy: %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    int lfd = sock_listen_unix(argv[1]);
    if (lfd < 0) {
        fprintf(stderr, "tee-proxy: listen on %s: %s\n", argv[1], strerror(-lfd));
        return 1;
    }
    int a = accept(lfd, NULL, NULL);
    close(lfd);
    unlink(argv[1]);
    if (a < 0) {
        fprintf(stderr, "tee-proxy: accept: %s\n", strerror(errno));
        return 1;
    }
    int b = connect_uri(argv[2]);
    if (b < 0) {
        fprintf(stderr, "tee-proxy: connect to %s: %s\n", argv[2], strerror(-b));
        return 1;
    }
    /* fds[0]: a -> b (recorded), fds[1]: b -> a */
    int src[2] = {a, b}, dst[2] = {b, a};
    int open_dir[2] = {1, 1};
    unsigned long long recorded = 0;
    static char buf[1 << 16];
    while (open_dir[0] || open_dir[1]) {
        struct pollfd p[2];
        int n = 0, which[2];
        for (int d = 0; d < 2; d++)
            if (open_dir[d]) {
                p[n] = (struct pollfd){.fd = src[d], .events = POLLIN};
                which[n++] = d;
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int d = which[i];
            ssize_t got = read(src[d], buf, sizeof(buf));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                open_dir[d] = 0;
                if (d == 0) {
                    /* the recording is complete: make it durable now, the
                     * other direction may stay open until we are killed */
                    fsync(out);
                    fprintf(stderr, "tee-proxy: recorded %llu bytes\n", recorded);
                }
                shutdown(dst[d], SHUT_WR);
                continue;
            }
            if (d == 0) {
                if (sock_write_all(out, buf, (size_t)got) < 0) {
                    fprintf(stderr, "tee-proxy: write %s: %s\n", argv[3], strerror(errno));
                    return 1;
                }
                recorded += (unsigned long long)got;
            }
            if (sock_write_all(dst[d], buf, (size_t)got) < 0) {
                /* the other side is gone: stop this direction */
                open_dir[d] = 0;
                shutdown(src[d], SHUT_RD);
            }
        }
    }
    close(out);
    close(a);
    close(b);
    return 0;
}
