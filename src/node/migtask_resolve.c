/* Settling a handover whose answer was lost, from etcd alone
 * (cluster/handover.h): a destination whose source went silent after
 * LOADED ("commit-unknown"), or a tern-vmm that a restarted ternd found
 * waiting for a decision the old ternd never gave. Until etcd answers,
 * nothing resumes anywhere. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "common/log.h"
#include "node/ctx.h"
#include "node/migtask.h"
#include "node/migtask_files.h"
#include "node/task.h"
#include "node/vmm.h"

struct resolve {
    struct node_ctx *x;
    uint32_t vmid;
    struct migtask_handover h;
};

/* "commit", "resume" or "" : what the tern-vmm waits for; -errno when it
 * cannot be asked (gone). */
static int awaited(struct resolve *r, char out[16])
{
    json_t *req = json_pack("{s:s}", "cmd", "query_migrate"), *reply = NULL;
    struct err e;
    int rc = vmm_command(r->x->vmms, r->vmid, req, &reply, &e);
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
    int rc = handover_fence(c, r->vmid, r->h.source, r->h.target, r->h.rev, &fenced, e);
    *committed = !fenced;
    return rc;
}

static void tell(struct resolve *r, const char *what, bool committed)
{
    bool source = strcmp(what, "commit") == 0;
    json_t *req = json_pack("{s:s, s:b}", "cmd",
                            source ? "migrate_commit" : "incoming_resolve",
                            source ? "commit" : "resume", committed),
           *reply = NULL;
    struct err e;
    if (vmm_command(r->x->vmms, r->vmid, req, &reply, &e) < 0)
        log_error("migrate", "vm %u: telling tern-vmm the handover's outcome: %s", r->vmid,
                  e.msg);
    json_decref(req);
    json_decref(reply);
    log_warn("migrate",
             "vm %u: handover settled from etcd: node '%s' owns it (this node "
             "was the %s)",
             r->vmid, committed ? r->h.target : r->h.source,
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
        if (task_running_for(r->x->tasks, r->vmid))
            return; /* its migration task decides */
        if (settle(r, c, &committed, &e) == 0) {
            tell(r, what, committed);
            return;
        }
        if (!said)
            log_warn("migrate",
                     "vm %u: settling the handover: %s; waiting, nothing resumes", r->vmid,
                     e.msg);
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
        if (migtask_handover_read(r->x, r->vmid, &r->h) < 0)
            log_error("migrate",
                      "vm %u: tern-vmm waits for a handover decision, but "
                      "there is no record of the handover",
                      r->vmid);
        else if (etcd_client_init(&c, r->x->cfg->cluster_address, &e) == 0) {
            settle_loop(r, &c, what);
            etcd_client_release(&c);
        }
    }
    resolving_claim(r->vmid, false);
    free(r);
    return NULL;
}

void migtask_resolve_start(struct node_ctx *x, uint32_t vmid)
{
    if (!resolving_claim(vmid, true))
        return;
    struct resolve *r = calloc(1, sizeof(*r));
    pthread_t th;
    if (r) {
        r->x = x;
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
