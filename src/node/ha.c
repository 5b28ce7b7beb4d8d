/* The HA manager's thread: moving the fences of this node's HA VMs on
 * after each lease renewal, fencing them when the budget is gone, and a
 * decision pass about once a second (node/ha.h). */
#include "node/ha.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/node.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/ctx.h"

#define TICK_MS 200
#define DECIDE_EVERY 5 /* ticks */

void ha_manager_init(struct ha_manager *h)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
    h->wd_fd = -1;
}

int ha_fence_budget(void *ctx, int64_t lease)
{
    struct ha_manager *h = ctx;
    uint64_t sent;
    int64_t now = node_lease_renewed(h->ctx->node, &sent);
    if (!now || !sent || (lease && lease != now))
        return 0;
    h->renewed_ns = sent; /* for the log of a fence, once it is gone */
    int64_t left = (int64_t)(sent / 1000000) + h->ttl_ms - h->slack_ms -
                   (int64_t)(clock_mono_ns() / 1000000);
    return left > 0 ? (int)left : 0;
}

static bool is_ha(const struct ha_conf *confs, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (confs[i].id == id)
            return true;
    return false;
}

/* The budget is gone (lease not renewed in time): whatever tern-vmm's own
 * deadline did or does, end the VMs armed last pass here now, and say so
 * in a task per VM. */
static void fence_all(struct ha_manager *h)
{
    uint64_t sent = h->renewed_ns;
    for (unsigned i = 0; i < h->narmed; i++) {
        uint32_t id = h->armed[i];
        char lines[800];
        int len = snprintf(lines, sizeof(lines),
                           "node '%s': lease not renewed for %lld ms (ttl %d ms): fencing "
                           "vm %u before the lease can expire\n",
                           h->ctx->cfg->name,
                           sent ? (long long)((clock_mono_ns() - sent) / 1000000) : -1LL,
                           h->ttl_ms, id);
        struct vmm_info info;
        vmm_info(h->ctx->vmms, id, &info);
        if (info.present) {
            kill(info.pid, SIGKILL);
            snprintf(lines + len, sizeof(lines) - (size_t)len,
                     "vm %u: tern-vmm pid %d killed", id, (int)info.pid);
        } else {
            snprintf(lines + len, sizeof(lines) - (size_t)len,
                     "vm %u: its tern-vmm had fenced itself: %.300s", id,
                     info.last_exit[0] ? info.last_exit : "gone");
        }
        log_warn("ha", "vm %u: fenced (lease not renewed in time)", id);
        ha_task_note(h, "hafence", id, lines, "");
    }
}

static void fence_command(struct ha_manager *h, uint32_t id, int ms, bool *ok)
{
    json_t *req = json_pack("{s:s, s:i}", "cmd", "fence", "ms", ms), *reply = NULL;
    struct err e;
    *ok = vmm_command(h->ctx->vmms, id, req, &reply, &e) == 0;
    json_decref(req);
    json_decref(reply);
    if (!ms && *ok)
        log_info("ha", "vm %u: not HA any more: fence disarmed", id);
}

static bool was_armed(struct ha_manager *h, uint32_t id)
{
    for (unsigned i = 0; i < h->narmed; i++)
        if (h->armed[i] == id)
            return true;
    return false;
}

/* One pass over this node's processes: the fence of each HA VM moved on
 * to the budget left now (measured for each, so that a slow answer does
 * not stretch the next one's deadline); armed[] is what got it. A VM that
 * is HA no more is disarmed. When the budget is gone, or the lease is not
 * the one the VMs were armed under (it expired, and the node registered
 * again), the VMs armed last pass are fenced here and never armed again:
 * a tern-vmm that was frozen past its deadline must not be given a new
 * one before its own fence thread ran. */
static void pet(struct ha_manager *h, const struct ha_conf *confs, size_t nconfs)
{
    uint32_t ids[VMM_MAX], armed[HA_VMS_MAX], fenced[HA_VMS_MAX];
    unsigned n = vmm_list(h->ctx->vmms, ids), narmed = 0, nfenced = 0;
    uint64_t sent;
    int64_t lease = node_lease_renewed(h->ctx->node, &sent);
    if (h->narmed && (lease != h->pet_lease || ha_fence_budget(h, 0) <= 0)) {
        fence_all(h);
        memcpy(fenced, h->armed, h->narmed * sizeof(fenced[0]));
        nfenced = h->narmed;
    }
    h->pet_lease = lease;
    bool ok;
    for (unsigned i = 0; i < n; i++) {
        bool skip = false;
        for (unsigned j = 0; j < nfenced; j++)
            skip = skip || fenced[j] == ids[i];
        if (skip)
            continue;
        if (!is_ha(confs, nconfs, ids[i])) {
            if (was_armed(h, ids[i]))
                fence_command(h, ids[i], 0, &ok);
            continue;
        }
        int budget = ha_fence_budget(h, 0);
        if (budget <= 0)
            continue;
        fence_command(h, ids[i], budget, &ok);
        if (ok)
            armed[narmed++] = ids[i];
    }
    ha_watchdog_pet(h, ha_fence_budget(h, 0), narmed > 0);
    pthread_mutex_lock(&h->lock);
    memcpy(h->armed, armed, narmed * sizeof(armed[0]));
    h->narmed = narmed;
    pthread_mutex_unlock(&h->lock);
}

static void *ha_thread(void *arg)
{
    struct ha_manager *h = arg;
    struct ha_conf *confs = NULL;
    size_t nconfs = 0;
    for (unsigned tick = 0; !h->stop; tick++) {
        struct ha_conf *fresh;
        size_t n;
        struct err e;
        /* the local member's copy: petting needs no quorum, and an HA VM
         * added a moment ago is armed by the next pass anyway */
        if (ha_conf_list(&h->client, ETCD_SERIALIZABLE, &fresh, &n, &e) == 0) {
            free(confs);
            confs = fresh;
            nconfs = n;
        }
        pet(h, confs, nconfs);
        if (tick % DECIDE_EVERY == 0)
            ha_decide(h);
        usleep(TICK_MS * 1000);
    }
    free(confs);
    return NULL;
}

int ha_manager_start(struct ha_manager *h, struct node_ctx *ctx, struct err *e)
{
    h->ctx = ctx;
    h->ttl_ms = ctx->cfg->heartbeat_ttl_s * 1000;
    h->slack_ms = h->ttl_ms / 4 > 500 ? h->ttl_ms / 4 : 500;
    h->margin_ms = 2 * h->slack_ms + 500;
    struct err we;
    /* opt-in: without it HA still fences by the tern-vmm deadline */
    if (ha_watchdog_open(h, ctx->cfg->ha_watchdog, &we) < 0)
        log_error("ha", "%s: going on without it", we.msg);
    int rc = etcd_client_init(&h->client, ctx->cfg->cluster_address, e);
    if (rc)
        return rc;
    /* a pass must not hold the fences up for long (node/ha.h) */
    etcd_client_set_timeout(&h->client, 1000);
    rc = pthread_create(&h->thread, NULL, ha_thread, h);
    if (rc) {
        etcd_client_release(&h->client);
        return err_set(e, rc, "ha thread: %s", strerror(rc));
    }
    h->started = true;
    log_info("ha",
             "manager started: fence %d ms before the lease (ttl %d ms) can expire, "
             "recovery %d ms after a node is seen offline",
             h->slack_ms, h->ttl_ms, h->margin_ms);
    return 0;
}

void ha_manager_release(struct ha_manager *h)
{
    if (!h->started)
        return;
    h->stop = true;
    pthread_join(h->thread, NULL);
    etcd_client_release(&h->client);
    ha_watchdog_close(h);
    if (h->narmed)
        node_keep_lease(h->ctx->node);
    h->started = false;
}
