/* A decision that another process takes for this one: under ternd the
 * handover is decided by an etcd compare-and-swap, not by tern-vmm. The
 * migration thread posts an event and waits here, without a timeout (only
 * the authority knows the answer; a restarted ternd gives it later); a
 * control command delivers the answer. */
#ifndef TERN_MIGRATE_DECISION_H
#define TERN_MIGRATE_DECISION_H

#include <pthread.h>
#include <stdbool.h>

#include "common/err.h"

struct mig_decision {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool waiting;
    bool given;
    bool yes;
};

/* The source's "commit or abort?" and "may the VM pause now?" before
 * stop-and-copy (the pause gate: ternd reads etcd first) are struct
 * migration's `commit` and `pause`; the destination's "resume or quit?"
 * after it lost its source is struct mig_incoming's `resume`. */
void mig_decision_init(struct mig_decision *d);
void mig_decision_release(struct mig_decision *d);

/* Marks the decision as awaited (before the event is posted, so an answer
 * right after it is not lost). */
void mig_decision_expect(struct mig_decision *d);
/* Waits for the answer to the expected decision. */
bool mig_decision_wait(struct mig_decision *d);
/* The same for at most timeout_ms: 0 with *yes, or -ETIMEDOUT (then the
 * decision is no longer awaited: a late answer is refused). */
int mig_decision_wait_ms(struct mig_decision *d, int timeout_ms, bool *yes);
/* -ENOENT when nothing waits for this decision. */
int mig_decision_give(struct mig_decision *d, bool yes, const char *what, struct err *e);
bool mig_decision_pending(struct mig_decision *d);

#endif
