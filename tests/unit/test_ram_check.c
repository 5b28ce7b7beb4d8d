/* Unit tests for the destination's RAM batch checks in src/migrate/ram.c
 * (ram_batch_check) and the dirty-bitmap count (ram_count_dirty). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/protocol.h"
#include "migrate/ram.h"

#define NPAGES 1000ULL
#define Z MIG_RAM_ZERO

static uint32_t length_for(uint32_t count, uint32_t data)
{
    return 8 + count * 12 + data * 4096;
}

/* Checks on an exactly sized heap copy of the table. */
static int check(const uint64_t *entry, uint32_t count, uint64_t npages, uint32_t length,
                 uint32_t *nonzero, struct err *e)
{
    uint64_t *copy = malloc(count ? count * sizeof(uint64_t) : 1);
    assert_non_null(copy);
    if (count)
        memcpy(copy, entry, count * sizeof(uint64_t));
    int rc = ram_batch_check(copy, count, npages, length, nonzero, e);
    free(copy);
    return rc;
}

#define assert_msg_has(e, text)                                   \
    do {                                                          \
        if (!strstr((e).msg, (text)))                             \
            fail_msg("message '%s' lacks '%s'", (e).msg, (text)); \
    } while (0)

static void accepts_valid(void **state)
{
    (void)state;
    struct err e = {""};
    uint32_t nz = 99;
    /* three data pages, then two zero markers */
    static const uint64_t t1[] = {5, 0, NPAGES - 1, 7 | Z, (NPAGES - 1) | Z};
    assert_int_equal(check(t1, 5, NPAGES, length_for(5, 3), &nz, &e), 0);
    assert_int_equal(nz, 3);
    /* only data */
    static const uint64_t t2[] = {1, 2, 3, 4};
    assert_int_equal(check(t2, 4, NPAGES, length_for(4, 4), &nz, &e), 0);
    assert_int_equal(nz, 4);
    /* only zero markers */
    static const uint64_t t3[] = {9 | Z, 10 | Z};
    assert_int_equal(check(t3, 2, NPAGES, length_for(2, 0), &nz, &e), 0);
    assert_int_equal(nz, 0);
    /* the same page twice is not this function's business */
    static const uint64_t t4[] = {3, 3};
    assert_int_equal(check(t4, 2, NPAGES, length_for(2, 2), &nz, &e), 0);
    /* the largest batch: 1024 data pages, at the message limit */
    uint64_t *big = malloc(MIG_RAM_MAX_PAGES * sizeof(uint64_t));
    assert_non_null(big);
    for (uint32_t i = 0; i < MIG_RAM_MAX_PAGES; i++)
        big[i] = i;
    uint32_t len = length_for(MIG_RAM_MAX_PAGES, MIG_RAM_MAX_PAGES);
    assert_int_equal(len, mig_max_length(MIG_RAM));
    assert_int_equal(check(big, MIG_RAM_MAX_PAGES, 4096, len, &nz, &e), 0);
    assert_int_equal(nz, MIG_RAM_MAX_PAGES);
    /* and the largest page index a 40-bit entry holds */
    big[0] = MIG_RAM_PFN_MASK;
    assert_int_equal(check(big, 1, MIG_RAM_PFN_MASK + 1, length_for(1, 1), &nz, &e), 0);
    free(big);
    /* count 0 (refused earlier by ram_recv_batch) is consistent with 8 bytes */
    assert_int_equal(check(NULL, 0, NPAGES, 8, &nz, &e), 0);
    assert_int_equal(nz, 0);
}

static void refuses_page_out_of_range(void **state)
{
    (void)state;
    struct err e = {""};
    uint32_t nz;
    uint64_t t[3] = {0, 1, NPAGES};
    assert_int_equal(check(t, 3, NPAGES, length_for(3, 3), &nz, &e), -EPROTO);
    assert_msg_has(e, "page entry 0x3e8 out of range (guest has 1000 pages)");
    /* a zero marker outside the guest too */
    t[2] = NPAGES | Z;
    assert_int_equal(check(t, 3, NPAGES, length_for(3, 2), &nz, &e), -EPROTO);
    assert_msg_has(e, "out of range");
    t[2] = MIG_RAM_PFN_MASK | Z;
    assert_int_equal(check(t, 3, NPAGES, length_for(3, 2), &nz, &e), -EPROTO);
    /* in the first entry */
    t[0] = NPAGES + 12345;
    t[2] = 2;
    assert_int_equal(check(t, 3, NPAGES, length_for(3, 3), &nz, &e), -EPROTO);
    /* a guest without pages takes nothing */
    static const uint64_t zero[] = {0};
    assert_int_equal(check(zero, 1, 0, length_for(1, 1), &nz, &e), -EPROTO);
}

static void refuses_unknown_flags(void **state)
{
    (void)state;
    struct err e = {""};
    uint32_t nz;
    /* every bit between the page index and ZERO */
    for (int bit = 40; bit < 63; bit++) {
        uint64_t t[2] = {1, 2 | (1ULL << bit)};
        if (check(t, 2, NPAGES, length_for(2, 2), &nz, &e) != -EPROTO)
            fail_msg("flag bit %d accepted", bit);
        assert_msg_has(e, "out of range");
        /* on a zero marker as well */
        t[1] = 2 | Z | (1ULL << bit);
        if (check(t, 2, NPAGES, length_for(2, 1), &nz, &e) != -EPROTO)
            fail_msg("flag bit %d accepted on a zero marker", bit);
    }
    /* even when the guest is so large that the index would be in range */
    uint64_t t[1] = {1ULL << 40};
    assert_int_equal(check(t, 1, UINT64_MAX, length_for(1, 1), &nz, &e), -EPROTO);
    t[0] = ~0ULL;
    assert_int_equal(check(t, 1, UINT64_MAX, length_for(1, 0), &nz, &e), -EPROTO);
}

static void refuses_data_after_zero(void **state)
{
    (void)state;
    struct err e = {""};
    uint32_t nz;
    static const uint64_t t1[] = {1, 2 | Z, 3};
    assert_int_equal(check(t1, 3, NPAGES, length_for(3, 2), &nz, &e), -EPROTO);
    assert_msg_has(e, "data page after a zero marker");
    static const uint64_t t2[] = {2 | Z, 1};
    assert_int_equal(check(t2, 2, NPAGES, length_for(2, 1), &nz, &e), -EPROTO);
    assert_msg_has(e, "data page after a zero marker");
    static const uint64_t t3[] = {1, 2, 3 | Z, 4 | Z, 5 | Z, 6};
    assert_int_equal(check(t3, 6, NPAGES, length_for(6, 3), &nz, &e), -EPROTO);
    assert_msg_has(e, "data page after a zero marker");
}

static void refuses_length_mismatch(void **state)
{
    (void)state;
    struct err e = {""};
    uint32_t nz;
    static const uint64_t t[] = {1, 2, 3 | Z};
    uint32_t good = length_for(3, 2);
    assert_int_equal(check(t, 3, NPAGES, good, &nz, &e), 0);
    assert_int_equal(check(t, 3, NPAGES, good + 1, &nz, &e), -EPROTO);
    assert_msg_has(e, "does not match 2 data pages");
    assert_int_equal(check(t, 3, NPAGES, good - 1, &nz, &e), -EPROTO);
    assert_msg_has(e, "does not match");
    /* a whole page too few or too many */
    assert_int_equal(check(t, 3, NPAGES, good - 4096, &nz, &e), -EPROTO);
    assert_int_equal(check(t, 3, NPAGES, good + 4096, &nz, &e), -EPROTO);
    /* a zero marker does not carry 4096 bytes */
    assert_int_equal(check(t, 3, NPAGES, length_for(3, 3), &nz, &e), -EPROTO);
    /* nothing makes the sum wrap */
    assert_int_equal(check(t, 3, NPAGES, UINT32_MAX, &nz, &e), -EPROTO);
    assert_int_equal(check(t, 3, NPAGES, 0, &nz, &e), -EPROTO);
    /* 1024 data pages with a length that would match modulo 2^32 */
    uint64_t *big = malloc(MIG_RAM_MAX_PAGES * sizeof(uint64_t));
    assert_non_null(big);
    for (uint32_t i = 0; i < MIG_RAM_MAX_PAGES; i++)
        big[i] = i;
    uint32_t len = length_for(MIG_RAM_MAX_PAGES, MIG_RAM_MAX_PAGES);
    assert_int_equal(check(big, MIG_RAM_MAX_PAGES, 4096, len - 1, &nz, &e), -EPROTO);
    assert_int_equal(check(big, MIG_RAM_MAX_PAGES, 4096, len + 1, &nz, &e), -EPROTO);
    free(big);
}

static void count_dirty(void **state)
{
    (void)state;
    assert_true(ram_count_dirty(NULL, 0) == 0);
    uint64_t w[5] = {0, 0, 0, 0, 0};
    assert_true(ram_count_dirty(w, 5) == 0);
    w[0] = 1;
    w[4] = 1ULL << 63;
    assert_true(ram_count_dirty(w, 5) == 2);
    assert_true(ram_count_dirty(w, 4) == 1); /* only nwords are looked at */
    w[2] = ~0ULL;
    assert_true(ram_count_dirty(w, 5) == 66);
    w[1] = 0x5555555555555555ULL;
    w[3] = 0xf0f0f0f00000000fULL;
    assert_true(ram_count_dirty(w, 5) == 66 + 32 + 16 + 4);
    /* a large map, all set */
    enum { WORDS = 4099 };
    uint64_t *m = malloc(WORDS * sizeof(uint64_t));
    assert_non_null(m);
    memset(m, 0xff, WORDS * sizeof(uint64_t));
    assert_true(ram_count_dirty(m, WORDS) == (uint64_t)WORDS * 64);
    m[WORDS / 2] = 0;
    assert_true(ram_count_dirty(m, WORDS) == (uint64_t)(WORDS - 1) * 64);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid),
        cmocka_unit_test(refuses_page_out_of_range),
        cmocka_unit_test(refuses_unknown_flags),
        cmocka_unit_test(refuses_data_after_zero),
        cmocka_unit_test(refuses_length_mismatch),
        cmocka_unit_test(count_dirty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
