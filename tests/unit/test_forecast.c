/* Unit tests for the forecast of a migration (src/migrate/forecast.c): the
 * passes played with the engine's stop rule and auto-converge step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "migrate/forecast.h"

#define MIB (1024.0 * 1024.0)

static struct mig_forecast_input input(double dirty_mib_s, double link_mib_s)
{
    return (struct mig_forecast_input){
        .first_bytes = 100 * (uint64_t)MIB,
        .ram_bytes = 1024 * (uint64_t)MIB,
        .dirty_rate = dirty_mib_s * MIB,
        .bandwidth = link_mib_s * MIB,
        .limit_ms = 100,
        .max_ms = 600000,
        .auto_converge = true,
    };
}

/* An idle guest: one pass of 100 MiB at 100 MiB/s, nothing left. */
static void idle_guest_one_pass(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(0, 100);
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), 0);
    assert_int_equal(f.passes, 1);
    assert_true(f.converges);
    assert_string_equal(f.stop_reason, "small");
    assert_true(f.downtime_ms >= MIG_FORECAST_FIXED_MS &&
                f.downtime_ms < MIG_FORECAST_FIXED_MS + 1);
    assert_true(f.total_ms > 1000 && f.total_ms < 1100);
}

/* 10 MiB/s against 100 MiB/s: each pass leaves a tenth of the last, so
 * passes go on until the rest is tiny; no throttle. */
static void slow_dirtier_shrinks(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(10, 100);
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), 0);
    assert_true(f.converges);
    assert_true(f.passes >= 3 && f.passes <= 6);
    assert_int_equal(f.throttle_pct, 0);
    assert_true(f.total_ms > 1100 && f.total_ms < 1300);
}

/* Dirtying as fast as the link: a plateau at once; the rest (a pass's
 * worth, 1 s) does not fit 100 ms, so auto-converge throttles until it
 * does. */
static void fast_dirtier_is_throttled(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(100, 100);
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), 0);
    assert_true(f.converges);
    assert_true(f.throttle_pct >= 20);
    assert_true(f.downtime_ms <= 100 + MIG_FORECAST_FIXED_MS);
}

/* Without auto-converge the same guest never fits: the engine gives up at
 * max_time, and so does the forecast. */
static void without_auto_converge_gives_up(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(100, 100);
    in.auto_converge = false;
    in.max_ms = 30000;
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), 0);
    assert_false(f.converges);
    assert_string_equal(f.stop_reason, "gives-up");
    assert_true(f.total_ms >= 30000);
}

static void paused_vm_one_pass(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(500, 100);
    in.paused = true;
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), 0);
    assert_int_equal(f.passes, 1);
    assert_string_equal(f.stop_reason, "paused");
}

static void no_bandwidth_refused(void **state)
{
    (void)state;
    struct mig_forecast_input in = input(10, 0);
    struct mig_forecast f;
    assert_int_equal(mig_forecast_run(&in, &f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_guest_one_pass),
        cmocka_unit_test(slow_dirtier_shrinks),
        cmocka_unit_test(fast_dirtier_is_throttled),
        cmocka_unit_test(without_auto_converge_gives_up),
        cmocka_unit_test(paused_vm_one_pass),
        cmocka_unit_test(no_bandwidth_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
