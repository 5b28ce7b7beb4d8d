/* Physical limits of this machine, measured next to each benchmark run:
 *   memcpy   one thread copying 256 MiB buffers, best of 5 rounds (GB/s)
 *   tcp      one loopback TCP stream between two processes, 4 MiB writes,
 *            2 GiB sent (GB/s as seen by the receiver)
 *   fresh    one thread writing 512 MiB of never-touched memory, best of 3,
 *            each round on a new mapping (what a migration receiver pays
 *            for the first touch of every page): anonymous memory with
 *            4 KiB pages (MADV_NOHUGEPAGE), anonymous memory with
 *            MADV_HUGEPAGE (transparent huge pages if the host's
 *            transparent_hugepage/enabled allows), and a memfd (shmem, as
 *            tern-vmm's guest RAM; huge only if shmem_enabled allows)
 * Prints one JSON object. Build: cc -O2 -o limits limits.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

enum fresh_kind { FRESH_4K, FRESH_THP, FRESH_MEMFD };

#define FRESH_BYTES (512ul << 20)
#define HUGE_2M (2ul << 20)

/* kB of the named field (AnonHugePages, ShmemPmdMapped) summed over the
 * process: tells whether the huge pages asked for were given. */
static long smaps_kb(const char *field)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            kb = atol(line + n + 1);
    if (f)
        fclose(f);
    return kb;
}

/* One round: map, write every byte once, unmap.  *huge_share = fraction
 * of the region that was mapped with huge pages. */
static double fresh_round(enum fresh_kind kind, double *huge_share)
{
    size_t len = FRESH_BYTES + HUGE_2M;
    int fd = -1;
    char *raw;
    if (kind == FRESH_MEMFD) {
        fd = memfd_create("limits", 0);
        if (fd < 0 || ftruncate(fd, (off_t)len))
            return 0;
        raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } else {
        raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (raw == MAP_FAILED)
        return 0;
    char *p = raw;
    if (kind != FRESH_MEMFD)
        p = (char *)(((unsigned long)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
    madvise(p, FRESH_BYTES, kind == FRESH_4K ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
    double t = now();
    memset(p, 0x5a, FRESH_BYTES);
    t = now() - t;
    long kb = smaps_kb(kind == FRESH_MEMFD ? "ShmemPmdMapped" : "AnonHugePages");
    *huge_share = kb < 0 ? 0 : kb * 1024.0 / FRESH_BYTES;
    munmap(raw, len);
    if (fd >= 0)
        close(fd);
    return FRESH_BYTES / t / 1e9;
}

static double fresh_gbps(enum fresh_kind kind, double *huge_share)
{
    double best = 0, share = 0;
    *huge_share = 0;
    for (int i = 0; i < 3; i++) {
        double g = fresh_round(kind, &share);
        if (g > best) {
            best = g;
            *huge_share = share;
        }
    }
    return best;
}

/* The [selected] word of a /sys/kernel/mm/transparent_hugepage file. */
static void thp_setting(const char *file, char *out, size_t cap)
{
    char path[128], buf[256];
    snprintf(path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/%s", file);
    snprintf(out, cap, "unknown");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(buf, sizeof(buf), f)) {
        char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b)
            snprintf(out, cap, "%.*s", (int)(b - a - 1), a + 1);
    }
    fclose(f);
}

int main(void)
{
    double m = memcpy_gbps();
    double t = tcp_gbps();
    double s4k, sthp, smfd;
    double f4k = fresh_gbps(FRESH_4K, &s4k);
    double fthp = fresh_gbps(FRESH_THP, &sthp);
    double fmfd = fresh_gbps(FRESH_MEMFD, &smfd);
    char thp[32], shmem[32];
    thp_setting("enabled", thp, sizeof(thp));
    thp_setting("shmem_enabled", shmem, sizeof(shmem));
    printf("{\"memcpy_GBps\": %.2f, \"tcp_loopback_GBps\": %.2f, "
           "\"fresh_4k_GBps\": %.2f, \"fresh_thp_GBps\": %.2f, \"fresh_thp_huge_share\": "
           "%.2f, "
           "\"fresh_memfd_GBps\": %.2f, \"fresh_memfd_huge_share\": %.2f, "
           "\"thp_enabled\": \"%s\", \"thp_shmem_enabled\": \"%s\"}\n",
           m, t, f4k, fthp, sthp, fmfd, smfd, thp, shmem);
    return 0;
}
