/* The source's stop-and-copy (pause, last pages, device state) and
 * handover (LOADED, the commit, RUNNING). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/opts.h"
#include "migrate/hello.h"
#include "migrate/ram_pool.h"
#include "migrate/source.h"
#include "migrate/source_chan.h"
#include "migrate/state.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#define HANDOVER_TIMEOUT_MS 60000
#define PAUSING_TIMEOUT_MS 1000

/* vm_pause with the vCPU threads raised until they are parked: a vCPU
 * thread waiting for a CPU to leave KVM_RUN held up the pause by tens of
 * milliseconds on a busy host (priority.h). Each goes back to its own
 * priority while parked, before anything could run the guest again. */
static void src_pause_vcpus(struct vm *vm)
{
    struct mig_priority p[VM_MAX_CPUS] = {0};
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (vm->vcpu[i].started)
            mig_priority_raise(&p[i], vm->vcpu[i].thread);
    vm_pause(vm);
    for (unsigned i = 0; i < vm->ncpus; i++)
        mig_priority_lower(&p[i]);
}

/* PAUSING, and with ACKs the wait for its acknowledgement: the
 * destination's thread is then raised (priority.h) and waiting, so its
 * wake-ups in the pause do not wait for a CPU. Before the pause, so the
 * round trip is not downtime; a destination that does not answer in time
 * costs only the speed-up (the migration goes on, and fails where it
 * would have anyway). */
static void src_announce_pause(struct source_run *r)
{
    struct migration *m = r->m;
    if (!(r->features & MIG_F_PAUSING))
        return;
    struct err e;
    double t = clock_mono_ms();
    int rc = mig_send_buf(&m->ch, MIG_PAUSING, NULL, 0, &e);
    if (!rc && r->catch_up)
        rc = mig_ack_wait(&m->ch, atomic_load(&m->ch.bytes_out), PAUSING_TIMEOUT_MS, &e);
    if (rc)
        log_warn("migrate", "pausing without the destination's answer: %s", e.msg);
    src_time(m, &m->fig.announce_ms, t);
}

static int src_pause(struct source_run *r, struct err *e)
{
    struct vm *vm = r->m->vm;
    r->t_pause = clock_mono_ms();
    r->m->fig.paused_at_us = clock_real_ns() / 1000;
    /* the state at this moment is what goes: from now on no "resume" may
     * run the guest here (also one that came during pre-copy of a VM that
     * was paused then), until the handover is provably off (src_fail) */
    r->paused_by_us = vm_get_state(vm) == VM_RUNNING;
    src_pause_vcpus(vm);
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

int src_stop_and_copy(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    src_set_status(m, MIG_STATUS_DEVICE);
    mig_priority_raise(&r->prio, pthread_self());
    /* the senders of the other channels carry their share of the last pages */
    for (unsigned i = 1; i <= r->pool.nthreads; i++)
        mig_priority_raise(&r->pool_prio[i], r->pool.thread[i]);
    src_announce_pause(r);
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

int src_wait_loaded(struct source_run *r, struct err *e)
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
int src_commit(struct source_run *r, struct err *e)
{
    struct migration *m = r->m;
    test_hold("loaded");
    double t = clock_mono_ms();
    src_set_status(m, MIG_STATUS_HANDOVER);
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

int src_wait_running(struct source_run *r, struct err *e)
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

/* ---- failure ---- */

void src_fail(struct source_run *r, const struct err *why)
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
        src_set_status(m, MIG_STATUS_POSTCOMMIT_FAILED);
        log_error("migrate",
                  "after commit: %s; the source stays paused and will "
                  "not resume",
                  e->msg);
    } else {
        src_set_status(m, cancelled ? MIG_STATUS_CANCELLED : MIG_STATUS_FAILED);
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
