/* tern-replica: the receiving end of one replication sync on the target
 * node (docs/replication.md). It makes the side file of each replica,
 * exports the side files over NBD (storage/nbd_server.c) to the source's
 * tern-vmm, and when every export's connection ended cleanly (a flush,
 * nothing written after it, NBD_CMD_DISC) renames each side file over its
 * replica. Any other end (a connection cut, the source killed, a timeout,
 * SIGTERM) removes the side files: the previous replica stays intact.
 * Exit 0 committed, 1 not. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/version.h"
#include "migrate/channel.h"
#include "storage/nbd.h"
#include "storage/replica.h"

static const char usage_text[] =
    "usage: tern-replica --listen URI --export NAME=PATH[,size=BYTES] [options]\n"
    "  --listen URI         tcp:HOST:PORT or unix:PATH (the NBD server)\n"
    "  --export NAME=PATH[,size=BYTES]\n"
    "                       replica PATH exported as NAME (disk0..disk7) through\n"
    "                       its side file PATH.sync; size needed for a new one;\n"
    "                       repeatable (up to 8)\n"
    "  --fresh              full sync: the side files start empty (sparse)\n"
    "  --timeout-ms N       give up when the sync has not ended after N ms\n"
    "                       (default 600000)\n";

struct replica_export {
    char name[16];
    const char *path;
    uint64_t size;
    int fd;
};

struct replica_cli {
    const char *listen;
    struct replica_export ex[NBD_EXPORTS_MAX];
    unsigned n;
    bool fresh;
    uint64_t timeout_ms;
};

static void parse_export(struct replica_cli *c, const char *text)
{
    if (c->n == NBD_EXPORTS_MAX)
        die("--export: at most %d", NBD_EXPORTS_MAX);
    struct replica_export *x = &c->ex[c->n++];
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof(x->name))
        die("--export '%s': expected NAME=PATH[,size=BYTES]", text);
    memcpy(x->name, text, (size_t)(eq - text));
    x->fd = -1;
    char *path = strdup(eq + 1), *comma = strchr(path, ',');
    if (comma) {
        *comma = '\0';
        if (strncmp(comma + 1, "size=", 5) != 0 || opts_parse_size(comma + 6, &x->size))
            die("--export '%s': bad size '%s'", text, comma + 1);
    }
    if (path[0] != '/')
        die("--export '%s': the path must be absolute", text);
    x->path = path;
}

static void parse_options(int argc, char **argv, struct replica_cli *c)
{
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"export", required_argument, NULL, 'e'},
                                             {"fresh", no_argument, NULL, 'f'},
                                             {"timeout-ms", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    c->timeout_ms = 600000;
    int o;
    while ((o = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (o) {
        case 'l': c->listen = optarg; break;
        case 'e': parse_export(c, optarg); break;
        case 'f': c->fresh = true; break;
        case 't':
            if (opts_parse_uint(optarg, 1, 86400000, &c->timeout_ms))
                die("--timeout-ms '%s': expected 1..86400000", optarg);
            break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': puts("tern-replica " TERN_VERSION); exit(0);
        case ':': die("option '%s' needs a value (see --help)", argv[optind - 1]);
        default: die("unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (!c->listen || c->n == 0)
        die("--listen URI and at least one --export are required (see --help)");
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Until every export had a clean connection (1), one ended unclean, a
 * signal or the timeout (0). */
static bool wait_sync(struct nbd_server *s, const struct replica_cli *c, const char **why)
{
    double deadline = clock_mono_ms() + (double)c->timeout_ms;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        unsigned clean = 0, unclean = s->ended_unclean;
        for (unsigned i = 0; i < s->nexports; i++)
            clean += s->exports[i].ended_clean > 0;
        pthread_mutex_unlock(&s->lock);
        if (unclean)
            *why = "a connection ended without its flush and disconnect";
        else if (stop_signal)
            *why = "stopped by a signal";
        else if (clock_mono_ms() > deadline)
            *why = "timed out";
        else if (clean == s->nexports)
            return true;
        else {
            nanosleep(&(struct timespec){0, 20000000}, NULL);
            continue;
        }
        return false;
    }
}

static int prepare(struct replica_cli *c, struct nbd_server *s, struct err *e)
{
    for (unsigned i = 0; i < c->n; i++) {
        struct replica_export *x = &c->ex[i];
        uint64_t copied;
        int rc = replica_prepare(x->path, c->fresh, &x->size, &x->fd, &copied, e);
        if (!rc)
            rc = nbd_server_add(s, x->name, x->fd, x->size, e);
        if (rc)
            return rc;
        log_info("replica", "%s: side file of '%s' ready (%s, %llu bytes copied)", x->name,
                 x->path, c->fresh ? "full sync" : "delta", (unsigned long long)copied);
    }
    return 0;
}

static int finish(struct replica_cli *c, bool commit, struct err *e)
{
    int rc = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (commit && !rc && c->ex[i].fd >= 0)
            rc = replica_commit(c->ex[i].path, c->ex[i].fd, e);
        else
            replica_abort(c->ex[i].path);
        if (c->ex[i].fd >= 0)
            close(c->ex[i].fd);
    }
    return rc;
}

int main(int argc, char **argv)
{
    die_set_prog("tern-replica");
    struct replica_cli c = {0};
    parse_options(argc, argv, &c);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct nbd_server s;
    struct err e = {""};
    int lfd = -1;
    nbd_server_init(&s);
    /* the port first: a source that connects during the copy waits */
    int rc = mig_uri_listen(c.listen, &lfd, &e);
    if (!rc) {
        nbd_server_set_listener(&s, lfd);
        rc = prepare(&c, &s, &e);
    }
    if (!rc)
        rc = nbd_server_start(&s, &e);
    const char *why = e.msg;
    bool ok = false;
    if (!rc) {
        printf("ready\n");
        fflush(stdout);
        ok = wait_sync(&s, &c, &why);
    }
    nbd_server_stop(&s);
    if (ok && finish(&c, true, &e)) {
        ok = false;
        why = e.msg;
    } else if (!ok) {
        finish(&c, false, &e);
    }
    nbd_server_release(&s);
    if (!ok) {
        log_error("replica", "sync not committed, the replica stays as it was: %s", why);
        return 1;
    }
    log_info("replica", "sync committed: %llu bytes written",
             (unsigned long long)s.bytes_written);
    printf("committed %llu\n", (unsigned long long)s.bytes_written);
    return 0;
}
