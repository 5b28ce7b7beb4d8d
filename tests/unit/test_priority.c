/* Unit tests for the downtime's thread priority (src/migrate/priority.c):
 * a raised thread runs SCHED_FIFO and goes back to exactly what it had; a
 * thread that may not be raised, or is real-time already, is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>

#include "migrate/priority.h"

static int policy_of(pthread_t t, int *prio)
{
    int policy;
    struct sched_param sp;
    assert_int_equal(pthread_getschedparam(t, &policy, &sp), 0);
    *prio = sp.sched_priority;
    return policy;
}

/* Real-time scheduling needs CAP_SYS_NICE or an RLIMIT_RTPRIO above 0:
 * without either, raising must fail and change nothing. */
static bool may_raise(void)
{
    struct sched_param sp = {.sched_priority = 1};
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
        return false;
    sp.sched_priority = 0;
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    return true;
}

static void raise_and_lower_restores(void **state)
{
    (void)state;
    int prio;
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_OTHER);
    struct mig_priority p = {0};
    bool allowed = may_raise();
    assert_int_equal(mig_priority_raise(&p, pthread_self()), allowed);
    assert_int_equal(p.raised, allowed);
    assert_int_equal(policy_of(pthread_self(), &prio), allowed ? SCHED_FIFO : SCHED_OTHER);
    if (allowed)
        assert_int_equal(prio, 1);
    mig_priority_lower(&p);
    assert_false(p.raised);
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_OTHER);
    assert_int_equal(prio, 0);
    mig_priority_lower(&p); /* a second lower changes nothing */
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_OTHER);
}

/* Two raises (a peer that sends PAUSING twice) and one lower: the thread
 * is back to its own policy, not left real-time. */
static void raised_twice_lowers_once(void **state)
{
    (void)state;
    if (!may_raise())
        skip();
    struct mig_priority p = {0};
    int prio;
    assert_true(mig_priority_raise(&p, pthread_self()));
    assert_true(mig_priority_raise(&p, pthread_self()));
    mig_priority_lower(&p);
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_OTHER);
    assert_int_equal(prio, 0);
}

static void *parked(void *arg)
{
    pthread_barrier_wait(arg); /* started */
    pthread_barrier_wait(arg); /* checked */
    return NULL;
}

/* Another thread (a vCPU while it parks) is raised and lowered from here. */
static void raises_another_thread(void **state)
{
    (void)state;
    if (!may_raise())
        skip();
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, parked, &b), 0);
    pthread_barrier_wait(&b);
    struct mig_priority p = {0};
    int prio;
    assert_true(mig_priority_raise(&p, t));
    assert_int_equal(policy_of(t, &prio), SCHED_FIFO);
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_OTHER);
    mig_priority_lower(&p);
    assert_int_equal(policy_of(t, &prio), SCHED_OTHER);
    pthread_barrier_wait(&b);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&b);
}

/* A thread an administrator made real-time keeps its own priority. */
static void real_time_already_is_left_alone(void **state)
{
    (void)state;
    if (!may_raise())
        skip();
    struct sched_param sp = {.sched_priority = 5};
    assert_int_equal(pthread_setschedparam(pthread_self(), SCHED_RR, &sp), 0);
    struct mig_priority p = {0};
    int prio;
    assert_false(mig_priority_raise(&p, pthread_self()));
    mig_priority_lower(&p);
    assert_int_equal(policy_of(pthread_self(), &prio), SCHED_RR);
    assert_int_equal(prio, 5);
    sp.sched_priority = 0;
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raise_and_lower_restores),
        cmocka_unit_test(raises_another_thread),
        cmocka_unit_test(raised_twice_lowers_once),
        cmocka_unit_test(real_time_already_is_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
