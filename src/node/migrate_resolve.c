/* Settling a handover whose answer was lost, from etcd alone
 * (cluster/handover.h): a destination whose source went silent after
 * LOADED ("commit-unknown"), or a tern-vmm that a restarted ternd found
 * waiting for a decision the old ternd never gave. Until etcd answers,
 * nothing resumes anywhere. */
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "common/log.h"
#include "node/migrate.h"
#include "node/migrate_run.h"
#include "node/ternd.h"

struct resolve {
    struct ternd *t;
    uint32_t vmid;
    char role[16];
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
    const char *role = json_string_value(json_object_get(o, "role"));
    const char *src = json_string_value(json_object_get(o, "source"));
    const char *dst = json_string_value(json_object_get(o, "target"));
    int rc = role && src && dst ? 0 : -ENOENT;
    if (!rc) {
        snprintf(r->role, sizeof(r->role), "%s", role);
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

static void *resolve_main(void *arg)
{
    struct resolve *r = arg;
    struct etcd_client c;
    struct err e;
    char what[16];
    bool said = false;
    if (read_handover(r) < 0 || etcd_client_init(&c, r->t->cfg.cluster_address, &e) < 0) {
        log_error("migrate", "vm %u: a handover to settle, but no record of it", r->vmid);
        free(r);
        return NULL;
    }
    while (awaited(r, what) == 0 && what[0]) {
        bool committed;
        if (settle(r, &c, &committed, &e) == 0) {
            tell(r, what, committed);
            break;
        }
        if (!said)
            log_warn("migrate", "vm %u: settling the handover: %s; waiting, nothing resumes",
                     r->vmid, e.msg);
        said = true;
        sleep(1);
    }
    etcd_client_release(&c);
    free(r);
    return NULL;
}

void mig_resolve_start(struct ternd *t, uint32_t vmid)
{
    struct resolve *r = calloc(1, sizeof(*r));
    pthread_t th;
    if (!r)
        return;
    r->t = t;
    r->vmid = vmid;
    if (pthread_create(&th, NULL, resolve_main, r) != 0) {
        log_error("migrate", "vm %u: no thread to settle the handover", vmid);
        free(r);
        return;
    }
    pthread_detach(th);
}
