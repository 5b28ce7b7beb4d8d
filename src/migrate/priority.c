#include "migrate/priority.h"

#include <sched.h>

#include "common/log.h"

/* The lowest real-time priority: above every SCHED_OTHER thread (all
 * that matters here), below anything an administrator set up. */
#define MIG_FIFO_PRIO 1

bool mig_priority_raise(struct mig_priority *p, pthread_t thread)
{
    if (p->raised)
        return true;
    struct sched_param sp;
    p->thread = thread;
    if (pthread_getschedparam(thread, &p->policy, &sp))
        return false;
    p->prio = sp.sched_priority;
    if (p->policy == SCHED_FIFO || p->policy == SCHED_RR)
        return false; /* already real-time: keep what was chosen */
    struct sched_param fifo = {.sched_priority = MIG_FIFO_PRIO};
    int rc = pthread_setschedparam(thread, SCHED_FIFO, &fifo);
    if (rc) {
        log_debug("migrate", "downtime threads stay at normal priority (errno %d)", rc);
        return false;
    }
    p->raised = true;
    return true;
}

void mig_priority_lower(struct mig_priority *p)
{
    if (!p->raised)
        return;
    struct sched_param sp = {.sched_priority = p->prio};
    pthread_setschedparam(p->thread, p->policy, &sp);
    p->raised = false;
}
