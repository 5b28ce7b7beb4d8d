/* The destination's side of a cluster migration, in the target's ternd:
 * a tern-vmm waiting on the migration address (with --commit external, so
 * a lost source is settled from etcd, never guessed). */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "cluster/vmconf.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/migtask.h"
#include "node/migtask_files.h"
#include "node/migtask_volumes.h"
#include "node/replica_host.h"
#include "node/vmnet.h"
#include "node/vmops.h"

#define PORTS 100

#define PORT_HELD_S 30

/* Ports handed out lately: free now, but a tern-vmm is about to listen on
 * each. Without this, two migrations to this node at once (a maintenance
 * evacuation, two operators) were both given the same port. */
static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t port_handed[PORTS];

static bool port_held(unsigned base, unsigned p)
{
    return p - base < PORTS && time(NULL) - port_handed[p - base] < PORT_HELD_S;
}

static int free_port_locked(const char *address, unsigned base, unsigned *port,
                            struct err *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    for (unsigned p = base; p < base + PORTS && p <= 65535; p++) {
        if (port_held(base, p))
            continue;
        char service[8];
        struct addrinfo *ai;
        snprintf(service, sizeof(service), "%u", p);
        if (getaddrinfo(address, service, &hints, &ai) != 0)
            return err_set(e, EINVAL, "migration address '%s' is not an ip address",
                           address);
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        bool ok = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        if (ok) {
            *port = p;
            return 0;
        }
    }
    return err_set(e, EADDRINUSE, "no free migration port on %s in %u..%u", address, base,
                   base + PORTS - 1);
}

/* A port from migration_address's port on that is free on address now. */
static int free_port(const char *address, unsigned base, unsigned *port, struct err *e)
{
    pthread_mutex_lock(&ports_lock);
    int rc = free_port_locked(address, base, port, e);
    if (!rc)
        port_handed[*port - base] = time(NULL);
    pthread_mutex_unlock(&ports_lock);
    return rc;
}

static unsigned base_port(const struct ternd_config *cfg)
{
    const char *colon = strrchr(cfg->migration_address, ':');
    unsigned p = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    return p ? p : 7000;
}

static int check_request(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                         json_t *req, int64_t *rev, struct err *e)
{
    const char *source = json_string_value(json_object_get(req, "source"));
    json_t *r = json_object_get(req, "owner_revision");
    if (!source || !json_is_integer(r) ||
        !json_string_value(json_object_get(req, "address")) ||
        !json_string_value(json_object_get(req, "cert")))
        return err_set(e, EINVAL,
                       "incoming: 'source', 'owner_revision', 'address' and 'cert' "
                       "are required");
    char owner[TERN_NAME_MAX + 1];
    int rc = handover_read(c, vmid, owner, rev, e);
    if (!rc && (strcmp(owner, source) != 0 || *rev != json_integer_value(r)))
        rc = err_set(e, ESTALE, "vm %u: the owner changed since the migration began", vmid);
    struct vmm_info info;
    vmm_info(x->vmms, vmid, &info);
    if (!rc && info.present)
        rc = err_set(e, EBUSY, "vm %u already has a tern-vmm on node '%s' (%s)", vmid,
                     x->cfg->name, info.status);
    return rc;
}

static int check_disks(struct node_ctx *x, const struct vmm_spec *spec, struct err *e)
{
    for (unsigned i = 0; i < spec->conf.ndisks; i++)
        if (access(spec->disk[i], R_OK | W_OK) < 0)
            return err_set(e, ENOENT, "vm %u: disk '%s' is not on node '%s': %s",
                           spec->conf.id, spec->disk[i], x->cfg->name, strerror(errno));
    return 0;
}

struct dest_watch {
    struct node_ctx *x;
    uint32_t vmid;
    struct migtask_handover h;
    struct migtask_volumes vols; /* local disks: made here, for this migration */
    bool ran;                    /* the VM resumed here */
    bool offline;                /* a stopped VM's disks: stop it once here */
};

/* The offline copy arrived: the VM stops here (in its own thread: the
 * watch thread that called must go on to see the exit). */
struct stop_req {
    struct node_ctx *x;
    uint32_t vmid;
};

static void *stop_thread(void *arg)
{
    struct stop_req *s = arg;
    struct err e;
    if (vmm_stop(s->x->vmms, s->vmid, 5000, &e) < 0)
        log_error("migrate", "vm %u: offline copy arrived, but it did not stop: %s",
                  s->vmid, e.msg);
    free(s);
    return NULL;
}

/* The destination's events: a lost source is settled from etcd. Called by
 * the process's watch thread, which calls it last with "exit". */
static void on_destination_event(void *ctx, json_t *ev)
{
    struct dest_watch *w = ctx;
    const char *name = json_string_value(json_object_get(ev, "event"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    if (st && strcmp(st, "commit-unknown") == 0)
        migtask_resolve_start(w->x, w->vmid);
    if (st && strcmp(st, "completed") == 0) {
        w->ran = true;
        pthread_t th;
        struct stop_req *s = w->offline ? malloc(sizeof(*s)) : NULL;
        if (s)
            *s = (struct stop_req){w->x, w->vmid};
        if (s && pthread_create(&th, NULL, stop_thread, s) == 0)
            pthread_detach(th);
        else
            free(s);
    }
    if (name && strcmp(name, "exit") == 0) {
        if (!w->ran) /* no orphan volume: unless the commit won */
            migtask_volumes_settle(w->x, w->vmid, &w->h, &w->vols);
        free(w);
    }
}

int migtask_target_prepare(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                           json_t *req, json_t **answer, struct err *e)
{
    struct migtask_handover h = {.rev = 0};
    struct vmm_spec spec;
    struct dest_watch *w = calloc(1, sizeof(*w));
    int rc = w ? check_request(x, c, vmid, req, &h.rev, e)
               : err_set(e, ENOMEM, "out of memory");
    if (!rc)
        rc = vmops_spec_load(c, vmid, x->cfg->name, &spec, e);
    bool local = json_is_true(json_object_get(req, "local_disks"));
    if (!rc && local)
        rc = migtask_volumes_create(&spec, json_object_get(req, "disk_bytes"), &w->vols, e);
    bool delta = json_is_true(json_object_get(req, "replica_delta"));
    for (unsigned i = 0; !rc && local && delta && i < spec.conf.ndisks; i++)
        if (!spec.shared[i] && (rc = replica_fill(spec.disk[i], e)) != 0)
            migtask_volumes_remove(&w->vols, "its replica could not be copied");
    if (!rc)
        rc = check_disks(x, &spec, e);
    if (!rc)
        rc = vmnet_check(&spec.conf, x->cfg->name, e);
    const char *address = json_string_value(json_object_get(req, "address"));
    const char *type = json_string_value(json_object_get(req, "migration_type"));
    unsigned port = 0;
    if (!rc)
        rc = free_port(address, base_port(x->cfg), &port, e);
    unsigned nbd_port = 0; /* above the stream's: both are bound only by tern-vmm */
    if (!rc && local)
        rc = free_port(address, port + 1, &nbd_port, e);
    if (!rc && local)
        snprintf(spec.nbd_listen, sizeof(spec.nbd_listen),
                 strchr(address, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u", address, nbd_port);
    char tls_dir[MIGTASK_TLS_DIR_MAX] = "";
    bool secure = !type || strcmp(type, "insecure") != 0;
    if (!rc && secure)
        rc = migtask_tls_dir(x, vmid, "tls-in",
                             json_string_value(json_object_get(req, "cert")), tls_dir, e);
    if (!rc) { /* check_request made sure "source" is there */
        snprintf(h.source, sizeof(h.source), "%s",
                 json_string_value(json_object_get(req, "source")));
        snprintf(h.target, sizeof(h.target), "%s", x->cfg->name);
        rc = migtask_handover_write(x, vmid, "destination", &h, e);
    }
    char uri[160] = "";
    if (!rc) /* address is checked (not NULL) once rc is 0 */
        snprintf(uri, sizeof(uri), strchr(address, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u",
                 address, port);
    if (!rc)
        rc = vmm_start_incoming(x->vmms, &spec, uri, secure ? tls_dir : NULL, e);
    if (rc && w) {
        migtask_volumes_remove(&w->vols, "the destination could not be prepared");
        free(w);
    }
    if (!rc) {
        w->x = x;
        w->vmid = vmid;
        w->h = h;
        w->offline = json_is_true(json_object_get(req, "offline"));
        /* the guest's uptime goes on across the migration */
        json_t *st = json_object_get(req, "started");
        if (json_is_integer(st) && json_integer_value(st) > 0)
            vmm_set_started(x->vmms, vmid, (time_t)json_integer_value(st));
        vmm_set_listener(x->vmms, vmid, on_destination_event, w);
        *answer = json_pack("{s:s, s:s}", "uri", uri, "cert", x->secrets->cert_pem);
        if (local)
            json_object_set_new(*answer, "nbd", json_string(spec.nbd_listen));
    }
    return rc;
}

/* Whether pid is dead but not reaped, or has a SIGKILL on its way: its
 * end is certain, only not yet seen by the watch thread (a big guest's
 * memory takes a while to free on a loaded host). */
static bool proc_dying(pid_t pid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    bool dying = false;
    unsigned long long mask;
    char state;
    while (!dying && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "State: %c", &state) == 1)
            dying = state == 'Z' || state == 'X';
        else if (sscanf(line, "ShdPnd: %llx", &mask) == 1 ||
                 sscanf(line, "SigPnd: %llx", &mask) == 1)
            dying = mask & (1ULL << (SIGKILL - 1));
    }
    fclose(f);
    return dying;
}

int migtask_target_abandon(struct node_ctx *x, uint32_t vmid, char last_exit[256],
                           struct err *e)
{
    struct vmm_info info;
    vmm_info(x->vmms, vmid, &info);
    /* a destination that broke the migration by dying may not be reaped
     * yet: a moment for it (longer when it is certainly going), so that
     * the source can say how it ended */
    if (info.present && info.role == VMM_INCOMING &&
        (vmm_wait_exit(x->vmms, vmid, 1000) == 0 ||
         (proc_dying(info.pid) && vmm_wait_exit(x->vmms, vmid, 10000) == 0)))
        vmm_info(x->vmms, vmid, &info);
    if (last_exit)
        snprintf(last_exit, 256, "%s", info.present ? "" : info.last_exit);
    if (!info.present || info.role != VMM_INCOMING)
        return err_set(e, ENOENT, "vm %u has no incoming migration on node '%s'", vmid,
                       x->cfg->name);
    return vmm_stop(x->vmms, vmid, 2000, e);
}
