/* Unit tests for src/devices/blk_dirty.c: the dirty bitmap of a disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/blk_dirty.h"

#define KIB 1024ULL

static void mark_ranges(void **state)
{
    (void)state;
    struct blk_dirty d;
    /* 1 MiB + 1 byte: the last block is partial and still a bit */
    assert_int_equal(blk_dirty_init(&d, (1 << 20) + 1, 16), 0);
    assert_int_equal(d.nbits, 17);
    blk_dirty_mark_locked(&d, 0, 1);
    blk_dirty_mark_locked(&d, 64 * KIB - 1, 2); /* straddles blocks 0 and 1 */
    assert_int_equal(d.count, 2);
    blk_dirty_mark_locked(&d, 1 << 20, 1); /* the partial block */
    assert_int_equal(d.count, 3);
    blk_dirty_mark_locked(&d, 1 << 21, 4096); /* past the end: ignored */
    blk_dirty_mark_locked(&d, 0, 0);          /* empty: ignored */
    assert_int_equal(d.count, 3);
    blk_dirty_clear_locked(&d, 1, 100); /* clears 1..16, nothing past the end */
    assert_int_equal(d.count, 1);
    blk_dirty_release(&d);
}

static void next_runs(void **state)
{
    (void)state;
    struct blk_dirty d;
    assert_int_equal(blk_dirty_init(&d, 300 * 64 * KIB, 16), 0);
    blk_dirty_mark_locked(&d, 5 * 64 * KIB, 3 * 64 * KIB); /* 5,6,7 */
    blk_dirty_mark_locked(&d, 130 * 64 * KIB, 64 * KIB);   /* 130 (another word) */
    blk_dirty_mark_locked(&d, 299 * 64 * KIB, 1);          /* the last */
    uint64_t bit = 0;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 16), 3);
    assert_int_equal(bit, 5);
    bit = 6;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 1), 1); /* max 1 */
    assert_int_equal(bit, 6);
    bit = 8;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 16), 1);
    assert_int_equal(bit, 130);
    bit = 131;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 16), 1);
    assert_int_equal(bit, 299);
    bit = 300;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 16), 0);
    blk_dirty_fill_locked(&d, true);
    assert_int_equal(d.count, 300);
    blk_dirty_fill_locked(&d, false);
    assert_int_equal(d.count, 0);
    bit = 0;
    assert_int_equal(blk_dirty_next_locked(&d, &bit, 16), 0);
    blk_dirty_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mark_ranges),
        cmocka_unit_test(next_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
