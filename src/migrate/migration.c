/* The source side of a live migration: setup, pre-copy passes with
 * convergence and auto-converge, stop-and-copy, handover. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/opts.h"
#include "migrate/converge.h"
#include "migrate/decision.h"
#include "migrate/hello.h"
#include "migrate/migration.h"
#include "migrate/ram.h"
#include "migrate/ram_pool.h"
#include "migrate/source_chan.h"
#include "migrate/state.h"
#include "migrate/tls.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#define HANDSHAKE_TIMEOUT_MS 30000
#define HANDOVER_TIMEOUT_MS 60000
#define MIN_BANDWIDTH_SAMPLE (1 << 20)
/* Longest wait for the destination to apply what was sent; a destination
 * that does not acknowledge by then is no longer waited for. */
#define CATCH_UP_TIMEOUT_MS 5000

struct source_run {
    struct migration *m;
    struct ram_pool pool;
    struct mig_hello_ack ack;                 /* the destination's choices */
    struct mig_channel *ch[MIG_CHANNELS_MAX]; /* ch[0] = &m->ch */
    unsigned nchan;
    uint64_t pass_pages; /* dirty pages when the current pass began */
    unsigned pass_now;   /* the pass under way, for mid-pass figures */
    double t0, t_pause;
    double t_state_sent; /* first state byte sent: transfer starts */
    bool was_paused, paused_by_us, committed;
    bool catch_up; /* wait for the destination's ACKs after a pass */
    uint64_t features;
    struct converge conv;
};

void mig_params_default(struct mig_params *p)
{
    memset(p, 0, sizeof(*p));
    p->downtime_limit_ms = 100;
    p->auto_converge = true;
    p->max_time_s = 600;
    p->page_crc = true;
    p->channels = 1;
}

void migration_init(struct migration *m, struct vm *vm, struct mig_hooks hooks)
{
    memset(m, 0, sizeof(*m));
    m->vm = vm;
    m->hooks = hooks;
    m->ch.fd = -1;
    pthread_mutex_init(&m->lock, NULL);
    mig_decision_init(&m->commit);
    mig_decision_init(&m->pause);
}

static void set_status(struct migration *m, enum mig_status s)
{
    pthread_mutex_lock(&m->lock);
    m->fig.status = s;
    pthread_mutex_unlock(&m->lock);
}

/* The figures and, with local disks, each mirror's. */
static json_t *figures_json(struct migration *m)
{
    pthread_mutex_lock(&m->lock);
    json_t *f = mig_figures_json(&m->fig);
    pthread_mutex_unlock(&m->lock);
    if (atomic_load(&m->disks.shown))
        json_object_set_new(f, "disks", mig_disks_json(&m->disks));
    return f;
}

static void post_figures(struct migration *m)
{
    json_t *f = figures_json(m);
    if (m->hooks.event)
        m->hooks.event(m->hooks.ctx, f);
    else
        json_decref(f);
}

/* ---- setup ---- */

static int src_handshake(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    struct buf hello;
    buf_init(&hello);
    uint64_t offer = (m->params.page_crc ? MIG_F_PAGE_CRC : 0) | MIG_F_ACKS;
    /* extra connections go to the same address: tcp: only */
    if (m->params.channels > 1 && strncmp(m->params.uri, "tcp:", 4) == 0)
        offer |= MIG_F_CHANNELS;
    int rc = hello_encode(m->vm, r->was_paused, offer, &hello, e);
    if (!rc)
        rc = mig_send_buf(&m->ch, MIG_HELLO, hello.data, (uint32_t)hello.len, e);
    buf_release(&hello);
    uint8_t *ack;
    uint32_t len;
    if (!rc)
        rc = mig_recv_msg(&m->ch, MIG_HELLO_ACK, &ack, &len, HANDSHAKE_TIMEOUT_MS, e);
    if (rc)
        return rc;
    rc = hello_ack_decode(ack, len, offer, &r->ack, e);
    free(ack);
    r->features = r->ack.features;
    m->ch.acks = r->catch_up = r->features & MIG_F_ACKS;
    return rc;
}

static int src_connect(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    r->ch[0] = &m->ch;
    r->nchan = 1;
    int fd;
    int rc = mig_uri_connect(m->params.uri, &fd, e);
    if (rc)
        return rc;
    mig_channel_init(&m->ch, fd);
    if (atomic_load(&m->cancel))
        return err_set(e, ECANCELED, "migration cancelled");
    if (m->params.tls) {
        rc = mig_tls_connect(&m->ch, m->params.tls_dir, e);
        if (rc)
            return rc;
    }
    rc = src_handshake(r, e);
    if (!rc && (r->features & MIG_F_CHANNELS))
        rc = mig_source_channels(m, &r->ack, r->catch_up, r->ch, &r->nchan, e);
    mig_channels_set_bandwidth(r->ch, r->nchan, m->params.max_bandwidth);
    return rc;
}

/* ---- pre-copy ---- */

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
    post_figures(m);
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

static int src_precopy(struct source_run *r, struct err *e)
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
        post_figures(m);
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

/* ---- stop-and-copy ---- */

static int src_pause(struct source_run *r, struct err *e)
{
    struct vm *vm = r->m->vm;
    r->t_pause = clock_mono_ms();
    r->m->fig.paused_at_us = clock_real_ns() / 1000;
    /* the state at this moment is what goes: from now on no "resume" may
     * run the guest here (also one that came during pre-copy of a VM that
     * was paused then), until the handover is provably off (src_fail) */
    r->paused_by_us = vm_get_state(vm) == VM_RUNNING;
    vm_pause(vm);
    vm_hand_over(vm);
    vm_throttle_set(vm, 0);
    /* vCPUs are parked and block requests run in vCPU threads, so nothing is
     * in flight; make what was written durable for the destination
     * (docs/design.md, invariant 4) */
    for (unsigned i = 0; i < vm->ndisks; i++) {
        int rc = virtio_blk_flush(&vm->disk[i], e);
        if (rc)
            return rc;
    }
    /* local disks: the blocks still dirty and a flush of each target */
    int rc = r->m->disks.n ? mig_disks_final(&r->m->disks, e) : 0;
    pthread_mutex_lock(&r->m->lock);
    r->m->fig.disks_ms = r->m->disks.final_ms;
    pthread_mutex_unlock(&r->m->lock);
    return rc;
}

static void src_time(struct migration *m, double *field, double since)
{
    pthread_mutex_lock(&m->lock);
    *field = clock_mono_ms() - since;
    pthread_mutex_unlock(&m->lock);
}

static int src_stop_and_copy(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    set_status(m, MIG_STATUS_DEVICE);
    /* the limit protects the network while the guest runs; once it is
     * paused, every millisecond is downtime */
    mig_channels_set_bandwidth(r->ch, r->nchan, 0);
    int rc = src_pause(r, e);
    src_time(m, &m->fig.pause_ms, r->t_pause);
    double t = clock_mono_ms();
    if (!rc)
        rc = dirty_log_sync(m->vm, r->pool.dirty, e);
    if (!rc)
        rc = ram_pool_pass(&r->pool, false, e);
    /* every channel's last pages are sent: the extra ones end here */
    for (unsigned i = 1; !rc && i < r->nchan; i++)
        rc = mig_send_buf(r->ch[i], MIG_END, NULL, 0, e);
    src_time(m, &m->fig.last_pages_ms, t);
    struct buf saved;
    buf_init(&saved);
    t = clock_mono_ms();
    if (!rc)
        rc = state_save_all(&m->vm->devstate, &saved, e);
    src_time(m, &m->fig.state_save_ms, t);
    r->t_state_sent = clock_mono_ms();
    if (!rc)
        rc = state_send_saved(&saved, &m->ch, e);
    if (!rc)
        rc = mig_send_buf(&m->ch, MIG_END, NULL, 0, e);
    pthread_mutex_lock(&m->lock);
    m->fig.state_bytes = saved.len;
    pthread_mutex_unlock(&m->lock);
    buf_release(&saved);
    return rc;
}

/* ---- handover ---- */

static int src_wait_loaded(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    uint8_t *msg;
    uint32_t len;
    int rc = mig_recv_msg(&m->ch, MIG_LOADED, &msg, &len, HANDOVER_TIMEOUT_MS, e);
    if (rc)
        return rc;
    uint64_t load_ns;
    rc = loaded_decode(msg, len, &load_ns, e);
    free(msg);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    m->fig.load_ms = (double)load_ns / 1e6;
    m->fig.transfer_ms = clock_mono_ms() - r->t_state_sent - m->fig.load_ms;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* Anything from the destination now (an ERROR, or its end of the
 * connection) means it will not run the VM: stop before committing. */
static int src_check_destination(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    int rc = mig_ack_poll(&m->ch, e);
    if (rc)
        return rc;
    if (mig_wait_readable(&m->ch, 0))
        return 0;
    uint8_t *msg = NULL;
    uint32_t len;
    rc = mig_recv_msg(&m->ch, MIG_COMMIT, &msg, &len, 0, e);
    free(msg);
    return rc ? rc : err_set(e, EPROTO, "destination sent COMMIT");
}

static void disks_lock(struct vm *vm, bool give_up)
{
    for (unsigned i = 0; i < vm->ndisks; i++) {
        if (give_up)
            virtio_blk_unlock(&vm->disk[i]);
        else if (virtio_blk_relock(&vm->disk[i]))
            log_error("migrate", "disk '%s': could not take its lock back",
                      vm->disk[i].path);
    }
}

/* Gives up the VM (docs/design.md, invariant 2). Under a cluster the commit
 * hook decides (and from then on the destination owns the VM even if it
 * never hears COMMIT); standalone the decision is the delivery of COMMIT: a
 * destination that never got it can never run the VM, so a failed send
 * still lets the source resume. */
static int src_commit(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    test_hold("loaded");
    double t = clock_mono_ms();
    set_status(m, MIG_STATUS_HANDOVER);
    if (atomic_load(&m->cancel))
        return err_set(e, ECANCELED, "migration cancelled");
    bool decided = false;
    int rc = src_check_destination(r, e);
    if (!rc && m->hooks.commit)
        rc = m->hooks.commit(m->hooks.ctx, &decided, e);
    if (rc)
        return rc;
    r->committed = decided;
    disks_lock(m->vm, true);
    rc = mig_send_buf(&m->ch, MIG_COMMIT, NULL, 0, e);
    if (rc && !r->committed) {
        disks_lock(m->vm, false);
        return rc; /* src_fail takes the VM back */
    }
    r->committed = true;
    src_time(m, &m->fig.commit_ms, t);
    test_hold("committed");
    return rc;
}

static int src_wait_running(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    double t = clock_mono_ms();
    uint8_t *msg;
    uint32_t len;
    int rc = mig_recv_msg(&m->ch, MIG_RUNNING, &msg, &len, HANDOVER_TIMEOUT_MS, e);
    if (rc)
        return rc;
    /* the destination's own share of resume: COMMIT read to vCPUs released */
    struct mig_running run;
    rc = running_decode(msg, len, &run, e);
    free(msg);
    if (rc)
        return rc;
    uint64_t dest_ns = run.dest_ns;
    pthread_mutex_lock(&m->lock);
    m->fig.resume_ms = clock_mono_ms() - t;
    m->fig.resume_dest_ms = (double)dest_ns / 1e6;
    m->fig.downtime_ms = clock_mono_ms() - r->t_pause;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* ---- the thread ---- */

static void src_fail(struct source_run *r, const struct err *why)
{
    struct migration *m = r->m;
    /* abandoned by the watchdog: a failure that says so, not a cancel */
    struct err abandoned;
    const struct err *e = why;
    if (atomic_load(&m->abandoned) && !r->committed) {
        err_set(&abandoned, ECANCELED, "%s", mig_watchdog_reason(m));
        e = &abandoned;
    }
    bool cancelled = atomic_load(&m->cancel) && e == why;
    if (r->committed) {
        /* the destination may be running: never resume here */
        set_status(m, MIG_STATUS_POSTCOMMIT_FAILED);
        log_error("migrate",
                  "after commit: %s; the source stays paused and will "
                  "not resume",
                  e->msg);
    } else {
        set_status(m, cancelled ? MIG_STATUS_CANCELLED : MIG_STATUS_FAILED);
        if (m->ch.fd >= 0)
            mig_send_error(&m->ch, e->msg);
        vm_throttle_set(m->vm, 0);
        if (m->vm->dirty.active)
            dirty_log_stop(m->vm);
        vm_take_back(m->vm);
        if (r->paused_by_us)
            vm_resume(m->vm);
        log_error("migrate", "%s%s; the vm %s on the source",
                  cancelled ? "" : "failed: ", e->msg,
                  r->was_paused ? "stays paused" : "keeps running");
    }
    pthread_mutex_lock(&m->lock);
    snprintf(m->fig.error, sizeof(m->fig.error), "%s", e->msg);
    m->fig.total_ms = clock_mono_ms() - r->t0;
    pthread_mutex_unlock(&m->lock);
}

static void src_done(struct source_run *r)
{
    struct migration *m = r->m;
    pthread_mutex_lock(&m->lock);
    struct mig_figures *f = &m->fig;
    f->status = MIG_STATUS_COMPLETED;
    f->total_ms = clock_mono_ms() - r->t0;
    f->transferred = mig_channels_bytes_out(r->ch, r->nchan);
    f->remaining = 0;
    log_info("migrate",
             "completed: total %.1f ms, downtime %.1f ms, predicted %.2f ms "
             "(stopped: %s) (pause %.2f, last "
             "pages %.2f, state save %.2f, transfer %.2f, load %.2f, commit %.2f, "
             "resume %.2f), %llu bytes, %u passes, %llu pages, %llu zero",
             f->total_ms, f->downtime_ms, f->predicted_downtime_ms, f->stop_reason,
             f->pause_ms, f->last_pages_ms, f->state_save_ms, f->transfer_ms, f->load_ms,
             f->commit_ms, f->resume_ms, (unsigned long long)f->transferred, f->pass,
             (unsigned long long)f->pages, (unsigned long long)f->zero_pages);
    pthread_mutex_unlock(&m->lock);
}

static void disks_progress(void *ctx)
{
    post_figures(ctx);
}

static int src_setup(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    int rc = src_connect(r, e);
    src_time(m, &m->fig.setup_ms, r->t0);
    /* the disks first: in sync (active mode) before RAM pre-copy begins,
     * so that nothing of them is left for the pause but a flush */
    m->disks.progress = disks_progress;
    m->disks.progress_ctx = m;
    m->disks.delta = m->params.nbd_delta;
    if (!rc && m->params.nbd[0])
        rc = mig_disks_sync(&m->disks, m->vm, m->params.nbd, &m->cancel, e);
    if (!rc)
        rc = dirty_log_start(m->vm, e);
    if (!rc)
        rc = ram_pool_init(&r->pool, m->vm, r->ch, r->nchan, r->features & MIG_F_PAGE_CRC,
                           e);
    set_status(m, MIG_STATUS_ACTIVE);
    return rc;
}

/* The source's side of docs/protocol.md, in order. */
static int (*const src_phases[])(struct source_run *r, struct err *e) = {
    src_setup,       src_precopy, src_stop_and_copy,
    src_wait_loaded, src_commit,  src_wait_running,
};

static int src_run(struct source_run *r, struct err *e)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(src_phases) / sizeof(src_phases[0]); i++)
        rc = src_phases[i](r, e);
    return rc;
}

static void *migration_thread(void *arg)
{
    struct migration *m = arg;
    struct source_run r = {.m = m, .t0 = clock_mono_ms()};
    r.was_paused = vm_get_state(m->vm) == VM_PAUSED;
    struct err e = {""};
    int rc = mig_watchdog_start(m, &e);
    log_info("migrate", "to %s%s: %lluM, downtime limit %u ms%s", m->params.uri,
             m->params.tls ? " (tls)" : "",
             (unsigned long long)(m->vm->config.memory >> 20), m->params.downtime_limit_ms,
             r.was_paused ? ", vm paused" : "");
    if (!rc)
        rc = src_run(&r, &e);
    if (rc)
        src_fail(&r, &e);
    else
        src_done(&r);
    mig_disks_close(&m->disks);
    mig_watchdog_join(m);
    ram_pool_release(&r.pool);
    post_figures(m);
    mig_channel_release(&m->ch);
    for (unsigned i = 0; i < atomic_load(&m->nextra); i++)
        mig_channel_release(&m->extra[i]);
    atomic_store(&m->nextra, 0);
    if (!rc && m->hooks.completed)
        m->hooks.completed(m->hooks.ctx);
    return NULL;
}

int migration_start(struct migration *m, const struct mig_params *p, struct err *e)
{
    pthread_mutex_lock(&m->lock);
    enum mig_status s = m->fig.status;
    pthread_mutex_unlock(&m->lock);
    if (s == MIG_STATUS_SETUP || s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE ||
        s == MIG_STATUS_HANDOVER)
        return err_set(e, EBUSY, "a migration is already running");
    if (s == MIG_STATUS_COMPLETED || s == MIG_STATUS_POSTCOMMIT_FAILED)
        return err_set(e, EPERM, "the vm was handed over to a destination");
    if (vm_handed_over(m->vm)) /* a destination still receiving its RAM */
        return err_set(e, EBUSY, "the vm is still arriving from its source");
    if (m->thread_running)
        pthread_join(m->thread, NULL);
    m->thread_running = false;
    m->params = *p;
    memset(&m->fig, 0, sizeof(m->fig));
    mig_disks_init(&m->disks);
    m->fig.status = MIG_STATUS_SETUP;
    m->fig.ram_total = m->vm->config.memory;
    atomic_store(&m->cancel, false);
    m->ch.fd = -1;
    int rc = pthread_create(&m->thread, NULL, migration_thread, m);
    if (rc)
        return err_set(e, rc, "migration thread: %s", strerror(rc));
    m->thread_running = true;
    return 0;
}

void migration_cancel_channels(struct migration *m)
{
    mig_channel_cancel(&m->ch);
    for (unsigned i = 0; i < atomic_load(&m->nextra); i++)
        mig_channel_cancel(&m->extra[i]);
}

int migration_cancel(struct migration *m, struct err *e)
{
    pthread_mutex_lock(&m->lock);
    enum mig_status s = m->fig.status;
    pthread_mutex_unlock(&m->lock);
    if (s != MIG_STATUS_SETUP && s != MIG_STATUS_ACTIVE && s != MIG_STATUS_DEVICE &&
        s != MIG_STATUS_HANDOVER)
        return err_set(e, ESRCH, "no migration is running");
    atomic_store(&m->cancel, true);
    /* a committed migration cannot be taken back; the thread checks that */
    if (s != MIG_STATUS_HANDOVER)
        migration_cancel_channels(m);
    return 0;
}

void migration_release(struct migration *m)
{
    /* a thread waiting for the cluster's commit decision is left to end
     * with the process, as in a crash: no answer here could be right (an
     * abort might undo a commit that etcd already has) */
    if (m->thread_running && !mig_decision_pending(&m->commit)) {
        atomic_store(&m->cancel, true);
        migration_cancel_channels(m);
        pthread_join(m->thread, NULL);
        m->thread_running = false;
    }
    mig_decision_release(&m->commit);
    mig_decision_release(&m->pause);
}

json_t *migration_query(struct migration *m)
{
    return figures_json(m);
}
