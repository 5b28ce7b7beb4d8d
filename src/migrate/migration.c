/* The source side of a live migration: setup, the thread that runs the
 * phases (source.h), start, cancel and query. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "migrate/hello.h"
#include "migrate/migration.h"
#include "migrate/ram_pool.h"
#include "migrate/source.h"
#include "migrate/source_chan.h"
#include "migrate/tls.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#define HANDSHAKE_TIMEOUT_MS 30000

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

void src_set_status(struct migration *m, enum mig_status s)
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

void src_post_figures(struct migration *m)
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
    uint64_t offer = (m->params.page_crc ? MIG_F_PAGE_CRC : 0) | MIG_F_ACKS | MIG_F_PAUSING;
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

void src_time(struct migration *m, double *field, double since)
{
    pthread_mutex_lock(&m->lock);
    *field = clock_mono_ms() - since;
    pthread_mutex_unlock(&m->lock);
}

/* ---- the thread ---- */

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
    src_post_figures(ctx);
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
    if (m->params.tls) /* the disks are encrypted like the RAM */
        m->disks.tls.dir = m->params.tls_dir;
    m->disks.delta = m->params.nbd_delta;
    if (!rc && m->params.nbd[0])
        rc = mig_disks_sync(&m->disks, m->vm, m->params.nbd, &m->cancel, e);
    if (!rc)
        rc = dirty_log_start(m->vm, e);
    if (!rc)
        rc = ram_pool_init(&r->pool, m->vm, r->ch, r->nchan, r->features & MIG_F_PAGE_CRC,
                           e);
    src_set_status(m, MIG_STATUS_ACTIVE);
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
    mig_priority_lower(&r.prio);
    for (unsigned i = 0; i < MIG_CHANNELS_MAX; i++)
        mig_priority_lower(&r.pool_prio[i]);
    mig_disks_close(&m->disks);
    mig_watchdog_join(m);
    ram_pool_release(&r.pool);
    src_post_figures(m);
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
