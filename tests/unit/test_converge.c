/* Unit tests for the stop decision of pre-copy (src/migrate/converge.c):
 * the downtime limit is a ceiling, passes go on while they shrink the dirty
 * set, a plateau stops once it fits, max_time is respected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "migrate/converge.h"

#define MB 1000000ULL
#define GBPS 1e9

static enum converge_verdict judge(struct converge *c, uint64_t remaining, double rate,
                                   double elapsed_ms)
{
    struct converge_pass p = {.remaining = remaining,
                              .bandwidth = GBPS,
                              .dirty_rate = rate,
                              .elapsed_ms = elapsed_ms};
    return converge_judge(c, &p);
}

/* 50 MB left = 50 ms at 1 GB/s fits a 100 ms limit, but a shrinking dirty
 * set is worth another pass: the limit is not a target. */
static void fits_the_limit_but_keeps_shrinking(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    assert_int_equal(judge(&c, 50 * MB, 50e6, 500), CONVERGE_CONTINUE);
    assert_true(c.expected_ms > 49 && c.expected_ms < 51);
    assert_int_equal(judge(&c, 5 * MB, 50e6, 560), CONVERGE_CONTINUE);
    assert_int_equal(judge(&c, MB / 2, 50e6, 570), CONVERGE_STOP);
    assert_string_equal(c.reason, "small");
}

static void nothing_left_stops(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    assert_int_equal(judge(&c, 0, 0, 20), CONVERGE_STOP);
    assert_string_equal(c.reason, "small");
    assert_true(c.expected_ms == 0);
}

/* The dirty set stops shrinking: two flat passes make a plateau. */
static void plateau_stops_when_it_fits(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    assert_int_equal(judge(&c, 20 * MB, 10e6, 100), CONVERGE_CONTINUE);
    assert_int_equal(judge(&c, 18 * MB, 10e6, 120), CONVERGE_CONTINUE);
    assert_false(c.plateau);
    assert_int_equal(judge(&c, 19 * MB, 10e6, 140), CONVERGE_STOP);
    assert_string_equal(c.reason, "plateau");
}

/* The guest dirties as fast as the destination applies: at once. */
static void rate_plateau(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    assert_int_equal(judge(&c, 30 * MB, 0.95 * GBPS, 100), CONVERGE_STOP);
    assert_string_equal(c.reason, "plateau");
}

/* A plateau above the limit goes on (auto-converge may help), and the
 * time limit gives up only when the rest does not fit. */
static void plateau_above_limit(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 10, 1000);
    assert_int_equal(judge(&c, 30 * MB, 0.95 * GBPS, 100), CONVERGE_CONTINUE);
    assert_true(c.plateau);
    assert_int_equal(judge(&c, 30 * MB, 0.95 * GBPS, 1000), CONVERGE_GIVE_UP);
    converge_init(&c, 100, 1000);
    assert_int_equal(judge(&c, 50 * MB, 10e6, 600), CONVERGE_CONTINUE);
    assert_int_equal(judge(&c, 30 * MB, 10e6, 1001), CONVERGE_STOP);
    assert_string_equal(c.reason, "max-time");
}

/* A limit below the "small" threshold is the threshold. */
static void tiny_limit(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 0.5, 600000);
    assert_int_equal(judge(&c, 800000, 1e6, 100), CONVERGE_CONTINUE);
    assert_int_equal(judge(&c, 400000, 1e6, 110), CONVERGE_STOP);
}

static void paused_vm_stops_after_one_pass(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    struct converge_pass p = {.remaining = 500 * MB, .bandwidth = GBPS, .vm_paused = true};
    assert_int_equal(converge_judge(&c, &p), CONVERGE_STOP);
    assert_string_equal(c.reason, "paused");
}

static void no_bandwidth_yet(void **state)
{
    (void)state;
    struct converge c;
    converge_init(&c, 100, 600000);
    struct converge_pass p = {.remaining = MB, .bandwidth = 0};
    assert_int_equal(converge_judge(&c, &p), CONVERGE_CONTINUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fits_the_limit_but_keeps_shrinking),
        cmocka_unit_test(nothing_left_stops),
        cmocka_unit_test(plateau_stops_when_it_fits),
        cmocka_unit_test(rate_plateau),
        cmocka_unit_test(plateau_above_limit),
        cmocka_unit_test(tiny_limit),
        cmocka_unit_test(paused_vm_stops_after_one_pass),
        cmocka_unit_test(no_bandwidth_yet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
