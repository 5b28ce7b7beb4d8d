/* The destination's side of a cluster migration, in the target's ternd:
 * a tern-vmm waiting on the migration address (with --commit external, so
 * a lost source is settled from etcd, never guessed); the settling itself;
 * and the endpoints: POST /vms/{id}/migrate and the node-to-node
 * /vms/{id}/incoming. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "cluster/vmconf.h"
#include "common/log.h"
#include "node/api_vmops.h"
#include "node/http.h"
#include "node/migrate.h"
#include "node/migrate_run.h"
#include "node/ternd.h"
#include "node/vmops.h"

#define PORTS 100

/* A port from migration_address's port on that is free on address now. */
static int free_port(const char *address, unsigned base, unsigned *port, struct err *e)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
    for (unsigned p = base; p < base + PORTS && p <= 65535; p++) {
        char service[8];
        struct addrinfo *ai;
        snprintf(service, sizeof(service), "%u", p);
        if (getaddrinfo(address, service, &hints, &ai) != 0)
            return err_set(e, EINVAL, "migration address '%s' is not an ip address", address);
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

static unsigned base_port(const struct ternd_config *cfg)
{
    const char *colon = strrchr(cfg->migration_address, ':');
    unsigned p = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    return p ? p : 7000;
}

static int check_request(struct ternd *t, struct etcd_client *c, uint32_t vmid, json_t *req,
                         int64_t *rev, struct err *e)
{
    const char *source = json_string_value(json_object_get(req, "source"));
    json_t *r = json_object_get(req, "owner_revision");
    if (!source || !json_is_integer(r) || !json_string_value(json_object_get(req, "address")) ||
        !json_string_value(json_object_get(req, "cert")))
        return err_set(e, EINVAL, "incoming: 'source', 'owner_revision', 'address' and 'cert' "
                       "are required");
    char owner[TERN_NAME_MAX + 1];
    int rc = handover_read(c, vmid, owner, rev, e);
    if (!rc && (strcmp(owner, source) || *rev != json_integer_value(r)))
        rc = err_set(e, ESTALE, "vm %u: the owner changed since the migration began", vmid);
    struct vmm_info info;
    vmm_info(&t->vmms, vmid, &info);
    if (!rc && info.present)
        rc = err_set(e, EBUSY, "vm %u already has a tern-vmm on node '%s' (%s)", vmid,
                     t->cfg.name, info.status);
    return rc;
}

static int check_disks(struct ternd *t, const struct vmm_spec *spec, struct err *e)
{
    for (unsigned i = 0; i < spec->conf.ndisks; i++)
        if (access(spec->disk[i], R_OK | W_OK) < 0)
            return err_set(e, ENOENT, "vm %u: disk '%s' is not on node '%s': %s",
                           spec->conf.id, spec->disk[i], t->cfg.name, strerror(errno));
    return 0;
}

struct dest_watch {
    struct ternd *t;
    uint32_t vmid;
};

/* The destination's events: a lost source is settled from etcd. Called by
 * the process's watch thread, which calls it last with "exit". */
static void on_destination_event(void *ctx, json_t *ev)
{
    struct dest_watch *w = ctx;
    const char *name = json_string_value(json_object_get(ev, "event"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    if (st && !strcmp(st, "commit-unknown"))
        mig_resolve_start(w->t, w->vmid);
    if (name && !strcmp(name, "exit"))
        free(w);
}

int mig_target_prepare(struct ternd *t, struct etcd_client *c, uint32_t vmid,
                       json_t *req, json_t **answer, struct err *e)
{
    int64_t rev = 0;
    struct vmm_spec spec;
    int rc = check_request(t, c, vmid, req, &rev, e);
    if (!rc) rc = vm_spec_load(c, vmid, &spec, e);
    if (!rc) rc = check_disks(t, &spec, e);
    const char *address = json_string_value(json_object_get(req, "address"));
    const char *type = json_string_value(json_object_get(req, "migration_type"));
    unsigned port = 0;
    if (!rc) rc = free_port(address, base_port(&t->cfg), &port, e);
    char tls_dir[VMM_PATH_MAX + 32] = "";
    bool secure = !type || strcmp(type, "insecure") != 0;
    if (!rc && secure)
        rc = mig_tls_dir(t, vmid, "tls-in", json_string_value(json_object_get(req, "cert")),
                         tls_dir, e);
    if (!rc)
        rc = mig_handover_file_write(t, vmid, "destination",
                                     json_string_value(json_object_get(req, "source")),
                                     t->cfg.name, rev, e);
    char uri[160] = "";
    if (!rc)   /* address is checked (not NULL) once rc is 0 */
        snprintf(uri, sizeof(uri), strchr(address, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u",
                 address, port);
    if (!rc)
        rc = vmm_start_incoming(&t->vmms, &spec, uri, secure ? tls_dir : NULL, e);
    struct dest_watch *w = rc ? NULL : malloc(sizeof(*w));
    if (!rc && !w)
        rc = err_set(e, ENOMEM, "out of memory");
    if (!rc) {
        *w = (struct dest_watch){ t, vmid };
        /* the guest's uptime goes on across the migration */
        json_t *st = json_object_get(req, "started");
        if (json_is_integer(st) && json_integer_value(st) > 0)
            vmm_set_started(&t->vmms, vmid, (time_t)json_integer_value(st));
        vmm_set_listener(&t->vmms, vmid, on_destination_event, w);
        *answer = json_pack("{s:s, s:s}", "uri", uri, "cert", t->secrets.cert_pem);
    }
    return rc;
}

int mig_target_abandon(struct ternd *t, uint32_t vmid, struct err *e)
{
    struct vmm_info info;
    vmm_info(&t->vmms, vmid, &info);
    if (!info.present || info.role != VMM_INCOMING)
        return err_set(e, ENOENT, "vm %u has no incoming migration on node '%s'", vmid,
                       t->cfg.name);
    return vmm_stop(&t->vmms, vmid, 2000, e);
}

/* Settling a handover whose answer was lost, from etcd alone
 * (cluster/handover.h): a destination whose source went silent after
 * LOADED ("commit-unknown"), or a tern-vmm that a restarted ternd found
 * waiting for a decision the old ternd never gave. Until etcd answers,
 * nothing resumes anywhere. */
struct resolve {
    struct ternd *t;
    uint32_t vmid;
    char source[TERN_NAME_MAX + 1], target[TERN_NAME_MAX + 1];
    int64_t rev;
};

static void handover_path(struct ternd *t, uint32_t vmid, char *out, size_t size)
{
    snprintf(out, size, "%s/%u/handover.json", t->vmms.run_dir, vmid);
}

int mig_handover_file_write(struct ternd *t, uint32_t vmid, const char *role,
                            const char *source, const char *target, int64_t rev,
                            struct err *e)
{
    char path[VMM_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%u", t->vmms.run_dir, vmid);
    mkdir(path, 0700);
    handover_path(t, vmid, path, sizeof(path));
    json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "role", role, "source", source,
                          "target", target, "rev", (json_int_t)rev);
    int rc = o && json_dump_file(o, path, JSON_COMPACT) == 0 ? 0
           : err_set(e, EIO, "%s: cannot write", path);
    json_decref(o);
    return rc;
}

static int read_handover(struct resolve *r)
{
    char path[VMM_PATH_MAX + 64];
    handover_path(r->t, r->vmid, path, sizeof(path));
    json_t *o = json_load_file(path, 0, NULL);
    const char *src = json_string_value(json_object_get(o, "source"));
    const char *dst = json_string_value(json_object_get(o, "target"));
    int rc = src && dst ? 0 : -ENOENT;
    if (!rc) {
        snprintf(r->source, sizeof(r->source), "%s", src);
        snprintf(r->target, sizeof(r->target), "%s", dst);
        r->rev = json_integer_value(json_object_get(o, "rev"));
    }
    json_decref(o);
    return rc;
}

/* "commit", "resume" or "" : what the tern-vmm waits for; -errno when it
 * cannot be asked (gone). */
static int awaited(struct resolve *r, char out[16])
{
    json_t *req = json_pack("{s:s}", "cmd", "query_migrate"), *reply = NULL;
    struct err e;
    int rc = vmm_command(&r->t->vmms, r->vmid, req, &reply, &e);
    json_decref(req);
    const char *d = rc ? NULL : json_string_value(json_object_get(reply, "decision"));
    snprintf(out, 16, "%s", d ? d : "");
    json_decref(reply);
    return rc;
}

/* Which side won in etcd: *committed true when the target owns the VM.
 * Whoever asks first fences an open handover, so the answer is final. */
static int settle(struct resolve *r, struct etcd_client *c, bool *committed, struct err *e)
{
    bool fenced = false;
    int rc = handover_fence(c, r->vmid, r->source, r->target, r->rev, &fenced, e);
    *committed = !fenced;
    return rc;
}

static void tell(struct resolve *r, const char *what, bool committed)
{
    bool source = !strcmp(what, "commit");
    json_t *req = json_pack("{s:s, s:b}", "cmd", source ? "migrate_commit" : "incoming_resolve",
                            source ? "commit" : "resume", committed), *reply = NULL;
    struct err e;
    if (vmm_command(&r->t->vmms, r->vmid, req, &reply, &e) < 0)
        log_error("migrate", "vm %u: telling tern-vmm the handover's outcome: %s", r->vmid,
                  e.msg);
    json_decref(req);
    json_decref(reply);
    log_warn("migrate", "vm %u: handover settled from etcd: node '%s' owns it (this node "
             "was the %s)", r->vmid, committed ? r->target : r->source,
             source ? "source" : "destination");
}

/* VMs with a resolver running: one per VM at a time. */
static pthread_mutex_t resolving_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t resolving[VMM_MAX];

static bool resolving_claim(uint32_t vmid, bool claim)
{
    pthread_mutex_lock(&resolving_lock);
    int free_slot = -1, mine = -1;
    for (int i = 0; i < VMM_MAX; i++) {
        if (resolving[i] == vmid)
            mine = i;
        if (!resolving[i] && free_slot < 0)
            free_slot = i;
    }
    bool ok = claim ? mine < 0 && free_slot >= 0 : mine >= 0;
    if (ok)
        resolving[claim ? free_slot : mine] = claim ? vmid : 0;
    pthread_mutex_unlock(&resolving_lock);
    return ok;
}

static void settle_loop(struct resolve *r, struct etcd_client *c, char what[16])
{
    bool said = false;
    struct err e;
    while (awaited(r, what) == 0 && what[0]) {
        bool committed;
        if (task_running_for(&r->t->tasks, r->vmid))
            return;   /* its migration task decides */
        if (settle(r, c, &committed, &e) == 0) {
            tell(r, what, committed);
            return;
        }
        if (!said)
            log_warn("migrate", "vm %u: settling the handover: %s; waiting, nothing resumes",
                     r->vmid, e.msg);
        said = true;
        sleep(1);
    }
}

static void *resolve_main(void *arg)
{
    struct resolve *r = arg;
    struct etcd_client c;
    struct err e;
    char what[16];
    /* most calls (the periodic sweep) find nothing to decide */
    if (awaited(r, what) == 0 && what[0]) {
        if (read_handover(r) < 0)
            log_error("migrate", "vm %u: tern-vmm waits for a handover decision, but "
                      "there is no record of the handover", r->vmid);
        else if (etcd_client_init(&c, r->t->cfg.cluster_address, &e) == 0) {
            settle_loop(r, &c, what);
            etcd_client_release(&c);
        }
    }
    resolving_claim(r->vmid, false);
    free(r);
    return NULL;
}

void mig_resolve_start(struct ternd *t, uint32_t vmid)
{
    if (!resolving_claim(vmid, true))
        return;
    struct resolve *r = calloc(1, sizeof(*r));
    pthread_t th;
    if (r) {
        r->t = t;
        r->vmid = vmid;
    }
    if (!r || pthread_create(&th, NULL, resolve_main, r) != 0) {
        log_error("migrate", "vm %u: no thread to settle the handover", vmid);
        free(r);
        resolving_claim(vmid, false);
        return;
    }
    pthread_detach(th);
}

/* POST /vms/{id}/migrate (docs/api.md), and the node-to-node endpoints
 * with which a source prepares (or drops) its destination. */
static void dry_run_reply(struct reply *r, struct mig_plan *p)
{
    char plan[600];
    mig_plan_describe(p, plan, sizeof(plan));
    reply_json(r, MHD_HTTP_OK,
               json_pack("{s:b, s:s, s:b, s:s, s:s, s:O, s:s}", "dry_run", 1, "target",
                         p->target, "online", p->running, "address", p->address,
                         "migration_type", p->type, "checks", p->checks, "plan", plan));
}

/* A failed check: its line, and with dry_run also every check so far. */
static void refused(struct reply *r, struct mig_plan *p, int rc, const struct err *e)
{
    reply_errno(r, rc == -EPERM || rc == -EHOSTUNREACH || rc == -ENOMEM || rc == -EALREADY ||
                    rc == -EADDRNOTAVAIL ? -EBUSY : rc, e);
    if (p->dry_run && r->body)
        json_object_set(r->body, "checks", p->checks);
}

static void migrate(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (vmops_route_to_owner(req, r, &id))
        return;
    struct mig_plan p;
    struct err e;
    mig_plan_init(&p);
    int rc = mig_plan_parse(&p, id, req->t->cfg.name, req->body, &e);
    if (!rc)
        rc = mig_plan_check(&p, req->t, req->etcd, &e);
    char task[128];
    if (rc)
        refused(r, &p, rc, &e);
    else if (p.dry_run)
        dry_run_reply(r, &p);
    else if ((rc = mig_task_start(req->t, &p, task, &e)) < 0)
        reply_errno(r, rc, &e);
    else
        reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:s}", "task", task, "target", p.target));
    mig_plan_release(&p);
}

static bool node_only(struct api_req *req, struct reply *r, uint32_t *id)
{
    struct err e;
    if (!req->from_node) {
        reply_error(r, MHD_HTTP_FORBIDDEN, "only other nodes of the cluster may call '%s'",
                    req->url);
        return false;
    }
    if (keys_vmid_parse(req->args[0], id, &e) < 0) {
        reply_errno(r, -EINVAL, &e);
        return false;
    }
    if (!atomic_load(&req->t->adopted)) {
        reply_error(r, 503, "node '%s' is starting: its running VMs are not adopted "
                    "yet; try again", req->t->cfg.name);
        return false;
    }
    return true;
}

static void incoming(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (!node_only(req, r, &id))
        return;
    json_t *answer = NULL;
    struct err e;
    int rc = mig_target_prepare(req->t, req->etcd, id, req->body, &answer, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, answer);
}

static void abandon(struct api_req *req, struct reply *r)
{
    uint32_t id;
    if (!node_only(req, r, &id))
        return;
    struct err e;
    int rc = mig_target_abandon(req->t, id, &e);
    if (rc < 0)
        return reply_errno(r, rc, &e);
    reply_json(r, MHD_HTTP_OK, json_pack("{s:i, s:b}", "id", (int)id, "abandoned", 1));
}

const struct api_route api_routes_migrate[] = {
    {"POST", "/vms/{}/migrate", migrate},
    {"POST", "/vms/{}/incoming", incoming},
    {"DELETE", "/vms/{}/incoming", abandon},
    {NULL, NULL, NULL},
};
