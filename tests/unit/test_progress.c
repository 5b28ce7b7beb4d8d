/* Unit tests for a migration's progress as ternd reports it
 * (src/node/progress.c): the share done never falls, and each mirrored
 * local disk gets its own figures, 100 % only once in sync. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "node/progress.h"

#define MIB (1024 * 1024)

static json_int_t field(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Without disks there is no "disks" array. */
static void ram_only(void **state)
{
    (void)state;
    struct progress_meter pm;
    progress_meter_init(&pm);
    json_t *ev = json_pack("{s:i, s:i, s:i, s:i}", "ram_total", 100 * MIB, "transferred",
                           40 * MIB, "remaining", 60 * MIB, "pass", 1);
    json_t *p = progress_meter_update(&pm, ev, 1000000000ULL);
    assert_non_null(p);
    assert_int_equal(field(p, "percent"), 40);
    assert_null(json_object_get(p, "disks"));
    json_decref(p);
    json_decref(ev);
}

/* A disk copying (a quarter left) and one in sync. */
static void disks_each_their_own(void **state)
{
    (void)state;
    struct progress_meter pm;
    progress_meter_init(&pm);
    json_t *ev = json_pack(
        "{s:i, s:i, s:i, s:i, s:[{s:s, s:i, s:i, s:i, s:i, s:b, s:f}, "
        "{s:s, s:i, s:i, s:i, s:i, s:b, s:f}]}",
        "ram_total", 100 * MIB, "transferred", 0, "remaining", 100 * MIB, "pass", 0,
        "disks", "name", "disk0", "total", 20 * MIB, "copied", 15 * MIB, "dirty", 5 * MIB,
        "rate", 10 * MIB, "active", 0, "sync_ms", 0.0, "name", "disk1", "total", 8 * MIB,
        "copied", 9 * MIB, "dirty", 0, "rate", 12 * MIB, "active", 1, "sync_ms", 812.5);
    json_t *p = progress_meter_update(&pm, ev, 1000000000ULL);
    json_t *d = json_object_get(p, "disks");
    assert_int_equal(json_array_size(d), 2);
    json_t *d0 = json_array_get(d, 0), *d1 = json_array_get(d, 1);
    assert_string_equal(json_string_value(json_object_get(d0, "name")), "disk0");
    assert_int_equal(field(d0, "done"), 15 * MIB);
    assert_int_equal(field(d0, "percent"), 75);
    assert_false(json_is_true(json_object_get(d0, "synced")));
    assert_int_equal(field(d1, "done"), 8 * MIB);
    assert_int_equal(field(d1, "percent"), 100);
    assert_true(json_is_true(json_object_get(d1, "synced")));
    assert_true(json_is_true(json_object_get(d1, "active")));
    json_decref(p);
    json_decref(ev);
}

/* Nothing dirty but not yet in sync (the final pass still to come): 99 %. */
static void not_synced_is_not_done(void **state)
{
    (void)state;
    struct progress_meter pm;
    progress_meter_init(&pm);
    json_t *ev = json_pack("{s:i, s:[{s:s, s:i, s:i, s:i, s:f}]}", "ram_total", 100 * MIB,
                           "disks", "name", "disk0", "total", 4 * MIB, "copied", 4 * MIB,
                           "dirty", 0, "sync_ms", 0.0);
    json_t *p = progress_meter_update(&pm, ev, 1);
    assert_int_equal(field(json_array_get(json_object_get(p, "disks"), 0), "percent"), 99);
    json_decref(p);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ram_only),
        cmocka_unit_test(disks_each_their_own),
        cmocka_unit_test(not_synced_is_not_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
