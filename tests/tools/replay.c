/* replay: plays a recorded migration stream into a destination.
 * `replay [-t SECONDS] UNIX_PATH FILE` connects to a `tern-vmm --incoming
 * unix:PATH`, writes FILE's bytes (FILE "-" is stdin) while reading what
 * comes back, and prints one line per message received ("HELLO_ACK",
 * "LOADED", "RUNNING", "ERROR: text"; ACKs are read but not printed), then
 * "closed" or "timeout".
 * Exits once the peer has closed, after RUNNING, or at the timeout
 * (default 60 s). Status: 0 after RUNNING, 1 after an ERROR, 3 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/sock.h"
#include "migrate/protocol.h"

static uint8_t *read_all(const char *path, size_t *len)
{
    int fd = strcmp(path, "-") ? open(path, O_RDONLY) : 0;
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf)
            return NULL;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (fd)
        close(fd);
    *len = n;
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double timeout = 60;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-t") == 0) {
        timeout = atof(argv[2]);
        i = 3;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: replay [-t SECONDS] UNIX_PATH FILE\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    size_t len;
    uint8_t *data = read_all(argv[i + 1], &len);
    if (!data) {
        fprintf(stderr, "replay: %s: %s\n", argv[i + 1], strerror(errno));
        return 2;
    }
    int fd = -1;
    double deadline = now_s() + timeout;
    /* the destination may still be starting: retry for a moment */
    while ((fd = sock_connect_unix(argv[i])) < 0 && now_s() < deadline &&
           now_s() < deadline - timeout + 10)
        usleep(20000);
    if (fd < 0) {
        fprintf(stderr, "replay: connect to %s: %s\n", argv[i], strerror(-fd));
        return 2;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    size_t sent = 0;
    bool writing = true;
    static uint8_t in[8192];
    size_t inlen = 0;
    int status = 3;
    bool closed = false;
    while (!closed) {
        int ms = (int)((deadline - now_s()) * 1000);
        if (ms <= 0) {
            puts("timeout");
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (writing ? POLLOUT : 0)};
        if (poll(&p, 1, ms) < 0 && errno != EINTR)
            break;
        if (writing && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                writing = false; /* the peer stopped reading */
            if (sent == len) {
                writing = false;
                shutdown(fd, SHUT_WR);
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in + inlen, sizeof(in) - inlen);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0) {
                closed = true;
            } else {
                inlen += (size_t)n;
            }
            /* print every complete message */
            for (;;) {
                if (inlen < MIG_HDR_SIZE)
                    break;
                struct mig_hdr h;
                memcpy(&h, in, sizeof(h));
                if (h.magic != MIG_MAGIC || h.length > sizeof(in) - MIG_HDR_SIZE) {
                    puts("garbage from the peer");
                    closed = true;
                    break;
                }
                if (inlen < MIG_HDR_SIZE + h.length)
                    break;
                if (h.type == MIG_ERROR) {
                    printf("ERROR: %.*s\n", (int)h.length, (char *)in + MIG_HDR_SIZE);
                    status = 1;
                } else if (h.type == MIG_ACK) {
                    /* acknowledgements of a stream that offered them: not news */
                } else {
                    printf("%s\n", mig_type_name(h.type));
                }
                if (h.type == MIG_RUNNING) {
                    status = 0;
                    closed = true;
                }
                size_t used = MIG_HDR_SIZE + h.length;
                memmove(in, in + used, inlen - used);
                inlen -= used;
            }
            if (closed && status != 0)
                puts("closed");
        }
    }
    fflush(stdout);
    fprintf(stderr, "replay: sent %zu of %zu bytes\n", sent, len);
    close(fd);
    free(data);
    return status;
}
