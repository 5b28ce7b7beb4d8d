/* The downtime's threads ahead of the host's other work. From the pause
 * to RUNNING every step is microseconds of work between wake-ups (the
 * vCPUs parking, LOADED, COMMIT, RUNNING read); on a busy host each
 * wake-up can wait a time slice for a CPU, and those waits were most of
 * the downtime (bench/README.md). A thread on the downtime's path runs
 * SCHED_FIFO for that window only: it blocks on sockets and condition
 * variables and works for milliseconds, and the kernel's real-time
 * throttling bounds it anyway. Without the privilege (CAP_SYS_NICE or
 * RLIMIT_RTPRIO) nothing changes. */
#ifndef TERN_MIGRATE_PRIORITY_H
#define TERN_MIGRATE_PRIORITY_H

#include <pthread.h>
#include <stdbool.h>

struct mig_priority {
    bool raised;
    pthread_t thread;
    int policy; /* the thread's own, restored by mig_priority_lower */
    int prio;
};

/* Raises thread to SCHED_FIFO; false when not allowed or already
 * real-time. p starts zeroed; raising it again while raised keeps the
 * policy it saved first (a second PAUSING from a peer must not make the
 * real-time priority look like the thread's own, never to be lowered). */
bool mig_priority_raise(struct mig_priority *p, pthread_t thread);
/* Puts the thread back as it was (no-op when not raised). */
void mig_priority_lower(struct mig_priority *p);

#endif
