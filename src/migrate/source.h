/* The source thread's run (migration.c) and its phases: pre-copy
 * (source_precopy.c), stop-and-copy and handover (source_handover.c).
 * Internal to src/migrate. */
#ifndef TERN_MIGRATE_SOURCE_H
#define TERN_MIGRATE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/converge.h"
#include "migrate/hello.h"
#include "migrate/migration.h"
#include "migrate/priority.h"
#include "migrate/ram_pool.h"

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
    struct mig_priority prio;                        /* raised from the pause to the end */
    struct mig_priority pool_prio[MIG_CHANNELS_MAX]; /* pool.thread[1..] */
};

/* Figures under m->lock, and the event that shows them. */
void src_set_status(struct migration *m, enum mig_status s);
void src_post_figures(struct migration *m);
/* *field = milliseconds since 'since', under m->lock. */
void src_time(struct migration *m, double *field, double since);

/* The phases after setup, in the order of docs/protocol.md. */
int src_precopy(struct source_run *r, struct err *e);
int src_stop_and_copy(struct source_run *r, struct err *e);
int src_wait_loaded(struct source_run *r, struct err *e);
int src_commit(struct source_run *r, struct err *e);
int src_wait_running(struct source_run *r, struct err *e);
/* After a failed phase: the VM back to how it was (docs/design.md,
 * invariant 2), unless committed; the figures say why. */
void src_fail(struct source_run *r, const struct err *why);

#endif
