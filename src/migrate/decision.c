#include "migrate/decision.h"

#include <errno.h>
#include <time.h>

void mig_decision_init(struct mig_decision *d)
{
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->waiting = d->given = d->yes = false;
}

void mig_decision_release(struct mig_decision *d)
{
    /* a thread still waiting for the answer ends with the process */
    if (mig_decision_pending(d))
        return;
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->cond);
}

void mig_decision_expect(struct mig_decision *d)
{
    pthread_mutex_lock(&d->lock);
    d->waiting = true;
    d->given = false;
    pthread_mutex_unlock(&d->lock);
}

bool mig_decision_wait(struct mig_decision *d)
{
    pthread_mutex_lock(&d->lock);
    while (!d->given)
        pthread_cond_wait(&d->cond, &d->lock);
    bool yes = d->yes;
    d->waiting = false;
    pthread_mutex_unlock(&d->lock);
    return yes;
}

int mig_decision_wait_ms(struct mig_decision *d, int timeout_ms, bool *yes)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    until.tv_sec += timeout_ms / 1000 + until.tv_nsec / 1000000000;
    until.tv_nsec %= 1000000000;
    pthread_mutex_lock(&d->lock);
    while (!d->given && pthread_cond_timedwait(&d->cond, &d->lock, &until) == 0)
        ;
    bool given = d->given;
    *yes = given && d->yes;
    d->waiting = false;
    pthread_mutex_unlock(&d->lock);
    return given ? 0 : -ETIMEDOUT;
}

int mig_decision_give(struct mig_decision *d, bool yes, const char *what, struct err *e)
{
    pthread_mutex_lock(&d->lock);
    bool waiting = d->waiting && !d->given;
    if (waiting) {
        d->given = true;
        d->yes = yes;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return waiting ? 0 : err_set(e, ENOENT, "no %s decision is awaited", what);
}

bool mig_decision_pending(struct mig_decision *d)
{
    pthread_mutex_lock(&d->lock);
    bool pending = d->waiting && !d->given;
    pthread_mutex_unlock(&d->lock);
    return pending;
}
