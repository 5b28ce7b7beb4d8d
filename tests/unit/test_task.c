/* node/task.c without a cluster (its etcd records simply fail): cancel
 * answers what the task did (cancelled; refused with the task's reason;
 * not cancellable; ended first), a refusal that comes after a cancel was
 * taken is refused itself, and an adopted task continues its log. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/task.h"

/* a port nobody listens on: records fail at once */
#define NO_ETCD "http://127.0.0.1:9"

static struct task_table tt;
static char dir[64];
static _Atomic int go;       /* the test lets the task end */
static _Atomic int reached;  /* the task has set what cancel answers */
static _Atomic bool late_ok; /* what a late refusal returned */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/tern-test-task.XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct err e;
    task_table_init(&tt);
    assert_int_equal(task_table_setup(&tt, dir, "t1", NO_ETCD, 10, &e), 0);
    atomic_store(&go, 0);
    atomic_store(&reached, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&go, 1);
    task_table_release(&tt);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void wait_go(void)
{
    while (!atomic_load(&go))
        usleep(1000);
}

/* until cancelled (or the test ends: a failed check must not hang it) */
static void wait_cancel(struct task *k)
{
    atomic_store(&reached, 1);
    while (!task_cancelled(k) && !atomic_load(&go))
        usleep(1000);
}

static int run_honours(struct task *k, struct err *e)
{
    task_set_cancellable(k, NULL);
    wait_cancel(k);
    task_set_cancelled(k);
    return err_set(e, ECANCELED, "migration cancelled");
}

static int run_refuses(struct task *k, struct err *e)
{
    (void)e;
    task_set_cancellable(k, "the handover is being decided");
    atomic_store(&reached, 1);
    wait_go();
    return 0;
}

static int run_plain(struct task *k, struct err *e)
{
    (void)k;
    (void)e;
    atomic_store(&reached, 1);
    wait_go();
    return 0;
}

/* takes the cancel, then reaches a step that would refuse it: too late */
static int run_late(struct task *k, struct err *e)
{
    task_set_cancellable(k, NULL);
    wait_cancel(k);
    atomic_store(&late_ok, task_set_cancellable(k, "too late to refuse"));
    task_set_cancelled(k);
    return err_set(e, ECANCELED, "migration cancelled");
}

/* cancellable, but ends in OK without looking at the cancel */
static int run_ignores(struct task *k, struct err *e)
{
    (void)e;
    task_set_cancellable(k, NULL);
    wait_cancel(k);
    return 0;
}

static void start(int (*run)(struct task *, struct err *), char id[TASK_ID_MAX])
{
    struct err e;
    assert_int_equal(task_start(&tt, NULL, "migrate", 100, run, NULL, id, &e), 0);
    /* its thread writes its record first: up to the etcd client's timeout */
    for (int i = 0; i < 10000 && !atomic_load(&reached); i++)
        usleep(1000);
    assert_true(atomic_load(&reached));
}

static void cancelled(void **state)
{
    (void)state;
    char id[TASK_ID_MAX], status[400];
    struct err e;
    start(run_honours, id);
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), 0);
    assert_string_equal(status, "ERROR: migration cancelled");
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), -EALREADY);
    assert_non_null(strstr(e.msg, "has ended"));
}

static void refused_with_reason(void **state)
{
    (void)state;
    char id[TASK_ID_MAX], status[400];
    struct err e;
    start(run_refuses, id);
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), -EBUSY);
    assert_string_equal(e.msg, "cancel refused: the handover is being decided");
}

static void not_cancellable(void **state)
{
    (void)state;
    char id[TASK_ID_MAX], status[400];
    struct err e;
    start(run_plain, id);
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), -EOPNOTSUPP);
    assert_string_equal(e.msg, "a migrate task cannot be cancelled");
}

static void late_refusal_refused(void **state)
{
    (void)state;
    char id[TASK_ID_MAX], status[400];
    struct err e;
    start(run_late, id);
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), 0);
    assert_false(atomic_load(&late_ok));
}

static void ended_first(void **state)
{
    (void)state;
    char id[TASK_ID_MAX], status[400];
    struct err e;
    start(run_ignores, id);
    assert_int_equal(task_cancel(&tt, id, 5000, status, &e), -EALREADY);
    assert_non_null(strstr(e.msg, "not cancelled"));
    assert_non_null(strstr(e.msg, "ended first: OK"));
}

static void unknown_task(void **state)
{
    (void)state;
    char status[400];
    struct err e;
    assert_int_equal(task_cancel(&tt, "UPID:t1:0:0:0:migrate:100:", 100, status, &e),
                     -ENOENT);
}

static int run_interrupted(struct task *k, struct err *e)
{
    task_log(k, "the task cannot be followed");
    return err_set(e, EINTR, "interrupted (ternd restarted)");
}

static void adopted_log_continues(void **state)
{
    (void)state;
    const char *id = "UPID:t1:00000001:00000001:6B0FC667:migrate:100:";
    char path[TASK_PATH_MAX];
    snprintf(path, sizeof(path), "%s/tasks/%s.log", dir, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("2026-12-02 07:00:00 migrate of vm 100 started on node 't1'\n"
          "2026-12-02 07:00:01 pass 1: 10% done\n",
          f);
    fclose(f);
    struct err e;
    assert_int_equal(
        task_adopt(&tt, NULL, id, "migrate", 100, 0, run_interrupted, NULL, &e), 0);
    assert_int_equal(
        task_adopt(&tt, NULL, id, "migrate", 100, 0, run_interrupted, NULL, &e), -EEXIST);
    assert_int_equal(task_adopt(&tt, NULL, "UPID:t2:1:1:1:migrate:100:", "migrate", 100, 0,
                                run_interrupted, NULL, &e),
                     -EINVAL);
    json_t *log = NULL;
    for (int i = 0; i < 500; i++) {
        json_decref(log);
        log = NULL;
        assert_int_equal(task_read_log(&tt, id, 0, &log, &e), 0);
        if (!json_is_true(json_object_get(log, "running")))
            break;
        usleep(10000);
    }
    json_t *lines = json_object_get(log, "lines");
    assert_int_equal(json_array_size(lines), 5);
    assert_non_null(strstr(json_string_value(json_array_get(lines, 0)), "started on node"));
    assert_non_null(strstr(json_string_value(json_array_get(lines, 2)), "ternd restarted"));
    assert_string_equal(json_string_value(json_array_get(lines, 4)),
                        "TASK ERROR: interrupted (ternd restarted)");
    assert_int_equal(json_integer_value(json_object_get(log, "next")), 5);
    json_decref(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(not_cancellable, setup, teardown),
        cmocka_unit_test_setup_teardown(late_refusal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(ended_first, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_task, setup, teardown),
        cmocka_unit_test_setup_teardown(adopted_log_continues, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
