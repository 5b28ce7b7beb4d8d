/* Unit tests for src/common/opts.c: sizes, integers, booleans, key=value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/opts.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static void expect_size(const char *text, uint64_t want)
{
    uint64_t v = SENTINEL;
    int rc = opts_parse_size(text, &v);
    if (rc != 0)
        fail_msg("opts_parse_size(\"%s\") = %d, want 0", text, rc);
    if (v != want)
        fail_msg("opts_parse_size(\"%s\") gave %llu, want %llu", text,
                 (unsigned long long)v, (unsigned long long)want);
}

static void expect_size_fail(const char *text, int want_rc)
{
    uint64_t v = SENTINEL;
    int rc = opts_parse_size(text, &v);
    if (rc != want_rc)
        fail_msg("opts_parse_size(\"%s\") = %d, want %d", text, rc, want_rc);
    assert_int_equal(v, SENTINEL); /* untouched on failure */
}

static void size_units(void **state)
{
    (void)state;
    expect_size("512M", 512ULL << 20);
    expect_size("512m", 512ULL << 20);
    expect_size("1G", 1ULL << 30);
    expect_size("4G", 4ULL << 30);
    expect_size("64K", 64ULL << 10);
    expect_size("64k", 64ULL << 10);
    expect_size("2T", 2ULL << 40);
    expect_size("1GiB", 1ULL << 30);
    expect_size("1gib", 1ULL << 30);
    expect_size("1GB", 1ULL << 30);
    expect_size("16MiB", 16ULL << 20);
}

static void size_bare_bytes(void **state)
{
    (void)state;
    expect_size("0", 0);
    expect_size("4096", 4096);
    expect_size("123456789", 123456789ULL);
    expect_size("18446744073709551615", UINT64_MAX);
}

static void size_overflow(void **state)
{
    (void)state;
    expect_size_fail("99999999999T", -ERANGE);
    expect_size_fail("16777216T", -ERANGE);            /* exactly 2^64 */
    expect_size_fail("18446744073709551616", -ERANGE); /* 2^64 bytes */
    expect_size("16777215T", 16777215ULL << 40);       /* just fits */
    expect_size("17179869183G", 17179869183ULL << 30);
    expect_size_fail("17179869184G", -ERANGE);
}

static void size_junk(void **state)
{
    (void)state;
    expect_size_fail("1X", -EINVAL);
    expect_size_fail("", -EINVAL);
    expect_size_fail("-1", -EINVAL);
    expect_size_fail("-1G", -EINVAL);
    expect_size_fail("+1", -EINVAL);
    expect_size_fail(" 1", -EINVAL);
    expect_size_fail("1 G", -EINVAL);
    expect_size_fail("G", -EINVAL);
    expect_size_fail("1GX", -EINVAL);
    expect_size_fail("1Gi", -EINVAL);
    expect_size_fail("1GiBB", -EINVAL);
    expect_size_fail("1B", -EINVAL);
    expect_size_fail("0x10", -EINVAL);
    expect_size_fail("1.5G", -EINVAL);
    expect_size_fail(NULL, -EINVAL);
}

static void uint_ranges(void **state)
{
    (void)state;
    uint64_t v = SENTINEL;
    assert_int_equal(opts_parse_uint("4", 1, 32, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(opts_parse_uint("1", 1, 32, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(opts_parse_uint("32", 1, 32, &v), 0);
    assert_int_equal(v, 32);
    assert_int_equal(opts_parse_uint("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(opts_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_int_equal(v, UINT64_MAX);

    v = SENTINEL;
    assert_int_equal(opts_parse_uint("0", 1, 32, &v), -ERANGE);
    assert_int_equal(opts_parse_uint("33", 1, 32, &v), -ERANGE);
    assert_int_equal(opts_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    assert_int_equal(opts_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v),
                     -ERANGE);
    assert_int_equal(v, SENTINEL);
}

static void uint_junk(void **state)
{
    (void)state;
    uint64_t v = SENTINEL;
    assert_int_equal(opts_parse_uint("", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("-1", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("+1", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint(" 1", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("1 ", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("1K", 0, 10000, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("0x1", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint("abc", 0, 10, &v), -EINVAL);
    assert_int_equal(opts_parse_uint(NULL, 0, 10, &v), -EINVAL);
    assert_int_equal(v, SENTINEL);
}

static void bools(void **state)
{
    (void)state;
    static const char *const yes[] = {"on", "yes", "true", "1", "ON", "Yes", "TRUE"};
    static const char *const no[] = {"off", "no", "false", "0", "OFF", "No", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        bool b = false;
        assert_int_equal(opts_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        bool b = true;
        assert_int_equal(opts_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    static const char *const bad[] = {"",       "2",   "onn", "y",  "n",
                                      "enable", " on", "on ", "10", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool b = true;
        if (opts_parse_bool(bad[i], &b) != -EINVAL)
            fail_msg("opts_parse_bool(\"%s\") accepted", bad[i]);
        assert_true(b); /* untouched */
    }
    bool b = true;
    assert_int_equal(opts_parse_bool(NULL, &b), -EINVAL);
    assert_true(b);
}

static void kv_disk_style(void **state)
{
    (void)state;
    struct opts_kv kv;
    const char *text = "path=/x,readonly=on,shared";
    assert_int_equal(opts_kv_parse(&kv, text), 0);
    assert_int_equal(kv.count, 3);
    assert_string_equal(kv.key[0], "path");
    assert_string_equal(kv.value[0], "/x");
    assert_string_equal(kv.key[1], "readonly");
    assert_string_equal(kv.value[1], "on");
    assert_string_equal(kv.key[2], "shared");
    assert_null(kv.value[2]);
    assert_string_equal(opts_kv_get(&kv, "path"), "/x");
    assert_string_equal(opts_kv_get(&kv, "readonly"), "on");
    assert_string_equal(opts_kv_get(&kv, "shared"), ""); /* bare word */
    assert_null(opts_kv_get(&kv, "missing"));
    assert_null(opts_kv_get(&kv, "pat"));                    /* no prefix match */
    assert_string_equal(text, "path=/x,readonly=on,shared"); /* input intact */
    opts_kv_release(&kv);
    assert_int_equal(kv.count, 0);
    assert_null(kv.storage);
}

static void kv_values_with_equals_and_empty(void **state)
{
    (void)state;
    struct opts_kv kv;
    assert_int_equal(opts_kv_parse(&kv, "a=b=c,d=,e"), 0);
    assert_int_equal(kv.count, 3);
    assert_string_equal(kv.key[0], "a");
    assert_string_equal(kv.value[0], "b=c");
    assert_string_equal(kv.key[1], "d");
    assert_string_equal(kv.value[1], "");
    assert_string_equal(opts_kv_get(&kv, "d"), "");
    assert_string_equal(kv.key[2], "e");
    opts_kv_release(&kv);

    /* empty input: no pairs */
    assert_int_equal(opts_kv_parse(&kv, ""), 0);
    assert_int_equal(kv.count, 0);
    assert_null(opts_kv_get(&kv, "a"));
    opts_kv_release(&kv);
    assert_int_equal(opts_kv_parse(&kv, NULL), 0);
    assert_int_equal(kv.count, 0);
    opts_kv_release(&kv);

    /* first match wins for a repeated key */
    assert_int_equal(opts_kv_parse(&kv, "k=1,k=2"), 0);
    assert_string_equal(opts_kv_get(&kv, "k"), "1");
    opts_kv_release(&kv);
}

static void kv_empty_key(void **state)
{
    (void)state;
    struct opts_kv kv;
    assert_int_equal(opts_kv_parse(&kv, "=x"), -EINVAL);
    opts_kv_release(&kv);
    assert_int_equal(opts_kv_parse(&kv, "a=1,=2"), -EINVAL);
    opts_kv_release(&kv);
    assert_int_equal(opts_kv_parse(&kv, "="), -EINVAL);
    opts_kv_release(&kv);
}

static void kv_too_many(void **state)
{
    (void)state;
    char text[256] = "";
    for (int i = 0; i < OPTS_KV_MAX; i++) {
        char item[16];
        snprintf(item, sizeof(item), "%sk%d=%d", i ? "," : "", i, i);
        strcat(text, item);
    }
    struct opts_kv kv;
    assert_int_equal(opts_kv_parse(&kv, text), 0); /* exactly the maximum */
    assert_int_equal(kv.count, OPTS_KV_MAX);
    assert_string_equal(opts_kv_get(&kv, "k15"), "15");
    opts_kv_release(&kv);

    strcat(text, ",one_more");
    assert_int_equal(opts_kv_parse(&kv, text), -EINVAL);
    assert_true(kv.count <= OPTS_KV_MAX);
    opts_kv_release(&kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(size_units),
        cmocka_unit_test(size_bare_bytes),
        cmocka_unit_test(size_overflow),
        cmocka_unit_test(size_junk),
        cmocka_unit_test(uint_ranges),
        cmocka_unit_test(uint_junk),
        cmocka_unit_test(bools),
        cmocka_unit_test(kv_disk_style),
        cmocka_unit_test(kv_values_with_equals_and_empty),
        cmocka_unit_test(kv_empty_key),
        cmocka_unit_test(kv_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
