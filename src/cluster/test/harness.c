#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct etcd_server servers[MEMBERS];
char endpoints[512];
static int failures;

int checks_failed(void)
{
    return failures;
}

void check(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - ", cond ? "ok" : "not ok");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!cond)
        failures++;
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L},
              NULL);
}

long long wait_quorate(struct etcd_client *c, long long limit_ms)
{
    long long t0 = now_ms();
    struct err e;
    while (now_ms() - t0 < limit_ms) {
        struct etcd_kv kv;
        etcd_kv_init(&kv);
        int rc = etcd_get(c, "/tern/version", 0, &kv, &e);
        etcd_kv_release(&kv);
        if (!rc || rc == -ENOENT)
            return now_ms() - t0;
        sleep_ms(100);
    }
    return -1;
}

static struct node_entry *find_node(struct node_entries *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

int node_state(struct etcd_client *c, const char *name)
{
    struct node_entries l;
    struct err e;
    if (node_list(c, 0, &l, &e) < 0)
        return -1;
    struct node_entry *ne = find_node(&l, name);
    int state = ne ? ne->online : -1;
    node_entries_release(&l);
    return state;
}
