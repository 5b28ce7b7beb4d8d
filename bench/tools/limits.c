/* Physical limits of this machine, measured next to each benchmark run:
 *   memcpy   one thread copying 256 MiB buffers, best of 5 rounds (GB/s)
 *   tcp      one loopback TCP stream between two processes, 4 MiB writes,
 *            2 GiB sent (GB/s as seen by the receiver)
 * Prints one JSON object. Build: cc -O2 -o limits limits.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double memcpy_gbps(void)
{
    size_t n = 256u << 20;
    char *a = malloc(n), *b = malloc(n);
    if (!a || !b)
        return 0;
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 0;
    for (int i = 0; i < 5; i++) {
        double t = now();
        memcpy(b, a, n);
        t = now() - t;
        __asm__ volatile("" ::"r"(b) : "memory");
        if (n / t / 1e9 > best)
            best = n / t / 1e9;
    }
    free(a);
    free(b);
    return best;
}

static double tcp_gbps(void)
{
    const size_t chunk = 4u << 20;
    const size_t total = 2048ull << 20;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (ls < 0 || bind(ls, (void *)&sa, sizeof(sa)) || listen(ls, 1) ||
        getsockname(ls, (void *)&sa, &sl))
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (void *)&sa, sizeof(sa)))
            _exit(1);
        char *buf = malloc(chunk);
        memset(buf, 0x5a, chunk);
        for (size_t sent = 0; sent < total;) {
            ssize_t w = write(s, buf, chunk);
            if (w <= 0)
                _exit(1);
            sent += (size_t)w;
        }
        close(s);
        _exit(0);
    }
    int c = accept(ls, NULL, NULL);
    char *buf = malloc(chunk);
    size_t got = 0;
    double t = now();
    for (;;) {
        ssize_t r = read(c, buf, chunk);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    t = now() - t;
    close(c);
    close(ls);
    waitpid(pid, NULL, 0);
    return got / t / 1e9;
}

int main(void)
{
    double m = memcpy_gbps();
    double t = tcp_gbps();
    printf("{\"memcpy_GBps\": %.2f, \"tcp_loopback_GBps\": %.2f}\n", m, t);
    return 0;
}
