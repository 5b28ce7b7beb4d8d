/* The source's pre-copy: passes over the dirty pages, the rate the
 * destination applies, convergence and auto-converge. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/ram.h"
#include "migrate/source.h"
#include "migrate/source_chan.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#define MIN_BANDWIDTH_SAMPLE (1 << 20)
/* Longest wait for the destination to apply what was sent; a destination
 * that does not acknowledge by then is no longer waited for. */
#define CATCH_UP_TIMEOUT_MS 5000

struct pass_result {
    double ms;
    double xmit_ms; /* in send calls or waiting for ACKs: moving bytes */
    uint64_t sent;
    uint64_t dirty; /* pages dirtied while the pass ran */
};

/* Mid-pass figures: what has gone and what of this pass is left. */
static void src_progress(void *ctx, uint64_t pages_done)
{
    struct source_run *r = ctx;
    struct migration *m = r->m;
    if (r->nchan > 1)
        pages_done = ram_pool_done(&r->pool);
    pthread_mutex_lock(&m->lock);
    m->fig.pass = r->pass_now; /* the pass under way */
    m->fig.transferred = mig_channels_bytes_out(r->ch, r->nchan);
    if (r->nchan == 1)
        m->fig.pages = r->pool.rs[0].stats.pages;
    m->fig.remaining = (r->pass_pages > pages_done ? r->pass_pages - pages_done : 0) *
                       GUEST_PAGE_SIZE;
    pthread_mutex_unlock(&m->lock);
    src_post_figures(m);
}

/* Waits until the destination has applied everything sent: the pass then
 * ends when its pages are in the destination's RAM (its time gives the
 * rate the destination applies), and a pause after it holds no backlog. */
static int src_catch_up(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    if (!r->catch_up)
        return 0;
    double t = clock_mono_ms();
    int rc = 0;
    for (unsigned i = 0; !rc && i < r->nchan; i++)
        rc = mig_ack_wait(r->ch[i], atomic_load(&r->ch[i]->bytes_out), CATCH_UP_TIMEOUT_MS,
                          e);
    if (rc == -ETIMEDOUT) {
        log_warn("migrate",
                 "destination did not acknowledge within %d ms; no longer "
                 "waiting for it",
                 CATCH_UP_TIMEOUT_MS);
        r->catch_up = false;
        rc = 0;
    }
    pthread_mutex_lock(&m->lock);
    m->fig.catch_up_ms = clock_mono_ms() - t;
    m->fig.acked = 0;
    for (unsigned i = 0; i < r->nchan; i++)
        m->fig.acked += r->ch[i]->acked;
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int src_pass(struct source_run *r, unsigned pass, struct pass_result *res,
                    struct err *e)
{
    struct migration *m = r->m;
    double t = clock_mono_ms();
    r->pass_pages = ram_count_dirty(r->pool.dirty, r->pool.nwords);
    r->pass_now = pass;
    r->pool.rs[0].progress = src_progress;
    r->pool.rs[0].progress_ctx = r;
    uint64_t before = mig_channels_bytes_out(r->ch, r->nchan);
    double send0 = mig_channels_send_ms(r->ch, r->nchan);
    int rc = ram_pool_pass(&r->pool, pass == 1, e);
    if (!rc)
        rc = src_catch_up(r, e);
    res->xmit_ms = r->catch_up
                       ? mig_channels_send_ms(r->ch, r->nchan) - send0 + m->fig.catch_up_ms
                       : 0;
    double ts = clock_mono_ms();
    if (!rc)
        rc = dirty_log_sync(m->vm, r->pool.dirty, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    m->fig.sync_ms = clock_mono_ms() - ts;
    pthread_mutex_unlock(&m->lock);
    res->ms = clock_mono_ms() - t;
    res->sent = mig_channels_bytes_out(r->ch, r->nchan) - before;
    res->dirty = ram_count_dirty(r->pool.dirty, r->pool.nwords);
    return 0;
}

/* Updates the figures after a pass. */
static void src_account(struct source_run *r, unsigned pass, const struct pass_result *res)
{
    struct migration *m = r->m;
    struct ram_stats st;
    ram_pool_stats(&r->pool, &st);
    pthread_mutex_lock(&m->lock);
    struct mig_figures *f = &m->fig;
    f->pass = pass;
    f->transferred = mig_channels_bytes_out(r->ch, r->nchan);
    f->remaining = res->dirty * GUEST_PAGE_SIZE;
    f->pages = st.pages;
    f->zero_pages = st.zero_pages;
    f->skipped = st.skipped;
    double secs = res->ms > 0.001 ? res->ms / 1e3 : 1e-6;
    /* a pass that moved little says little about the link: keep the old
     * estimate unless this one is better informed */
    /* with ACKs, the time bytes were moving: blocked in send() (the
     * destination's pace once buffers are full) and waiting for it to apply
     * the rest; the source's own pace (reading guest memory, a rate
     * limit's sleeps) is not what the last transfer will meet */
    double rate = res->xmit_ms > 0.01 ? (double)res->sent / (res->xmit_ms / 1e3)
                                      : (double)res->sent / secs;
    if (res->sent >= MIN_BANDWIDTH_SAMPLE || f->bandwidth == 0)
        f->bandwidth = rate;
    if (m->params.max_bandwidth && f->bandwidth > (double)m->params.max_bandwidth)
        f->bandwidth = (double)m->params.max_bandwidth;
    f->dirty_rate = (double)f->remaining / secs;
    f->expected_downtime_ms = f->bandwidth > 0 ? (double)f->remaining / f->bandwidth * 1e3
                                               : 0;
    f->throttle_pct = m->vm->throttle_pct;
    pthread_mutex_unlock(&m->lock);
}

/* Another pass or stop-and-copy (converge.h); a stop is recorded with its
 * reason and the last transfer it expects. */
static enum converge_verdict src_judge(struct source_run *r)
{
    struct migration *m = r->m;
    pthread_mutex_lock(&m->lock);
    struct converge_pass p = {
        .remaining = m->fig.remaining,
        .bandwidth = m->fig.bandwidth,
        .dirty_rate = m->fig.dirty_rate,
        .elapsed_ms = clock_mono_ms() - r->t0,
        .vm_paused = r->was_paused,
    };
    enum converge_verdict v = converge_judge(&r->conv, &p);
    if (v == CONVERGE_STOP) {
        m->fig.predicted_downtime_ms = r->conv.expected_ms;
        snprintf(m->fig.stop_reason, sizeof(m->fig.stop_reason), "%s", r->conv.reason);
    }
    pthread_mutex_unlock(&m->lock);
    return v;
}

/* Auto-converge: the guest dirties faster than half the link can carry, so
 * take away CPU time, more each pass, and say so in the figures. */
static void src_throttle(struct source_run *r)
{
    struct migration *m = r->m;
    pthread_mutex_lock(&m->lock);
    bool behind = m->fig.dirty_rate > m->fig.bandwidth / 2;
    pthread_mutex_unlock(&m->lock);
    /* a dirty set that shrinks to fit the limit needs no throttle */
    if (!m->params.auto_converge || !behind || r->conv.expected_ms <= r->conv.limit_ms)
        return;
    unsigned pct = m->vm->throttle_pct ? m->vm->throttle_pct + 10 : 20;
    vm_throttle_set(m->vm, pct > 99 ? 99 : pct);
    log_info("migrate", "auto-converge: vcpus throttled to %u%%", m->vm->throttle_pct);
}

int src_precopy(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    /* pass 1 covers every page: with manual protect KVM starts all-dirty,
     * without it enabling the log protects everything */
    memset(r->pool.dirty, 0xff, r->pool.nwords * sizeof(uint64_t));
    converge_init(&r->conv, m->params.downtime_limit_ms, m->params.max_time_s * 1e3);
    for (unsigned pass = 1;; pass++) {
        struct pass_result res;
        int rc = src_pass(r, pass, &res, e);
        if (rc)
            return rc;
        src_account(r, pass, &res);
        enum converge_verdict v = src_judge(r);
        src_post_figures(m);
        if (atomic_load(&m->cancel))
            return err_set(e, ECANCELED, "migration cancelled");
        /* no pause on a cluster that could not decide the handover: the
         * guest runs on in pre-copy until ternd says etcd answers */
        bool gated = v == CONVERGE_STOP && m->params.pause_gate && m->hooks.pause_gate &&
                     !m->hooks.pause_gate(m->hooks.ctx);
        if (v == CONVERGE_STOP && !gated)
            return 0;
        if (gated || atomic_load(&m->cancel))
            continue;
        if (v == CONVERGE_GIVE_UP)
            return err_set(e, ETIMEDOUT,
                           "did not converge within %u s (dirty rate "
                           "%.0f MiB/s)",
                           m->params.max_time_s, m->fig.dirty_rate / (1 << 20));
        if (pass >= 2)
            src_throttle(r);
    }
}
