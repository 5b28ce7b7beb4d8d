/* Unit tests for src/common/crc32c.c: known vectors, incremental use, and the
 * page helpers (3-way interleaved, with a remainder path) against the plain
 * function and a bitwise reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"

#define PAGE 4096
#define MAXN 7

/* Bit at a time, straight from the definition (reflected, poly 0x82f63b78). */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
    }
    return ~crc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint8_t rnd8(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

static void fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = rnd8();
}

static void known_vectors(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
    assert_int_equal(crc32c(0, "", 0), 0);
    assert_int_equal(crc32c(0, NULL, 0), 0);
    /* an empty update leaves any crc unchanged */
    assert_int_equal(crc32c(0xe3069283, "", 0), 0xe3069283);
    uint8_t b[32];
    memset(b, 0, sizeof(b));
    assert_int_equal(crc32c(0, b, sizeof(b)), 0x8a9136aa);
    memset(b, 0xff, sizeof(b));
    assert_int_equal(crc32c(0, b, sizeof(b)), 0x62a8ab43);
    /* RFC 3720 B.4: 32 bytes ascending, 32 bytes descending */
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(crc32c(0, b, sizeof(b)), 0x46dd794e);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(0, b, sizeof(b)), 0x113fdb5c);
    assert_int_equal(crc32c(0, "a", 1), 0xc1d04330);
}

/* Every length 0..200 and every misalignment 0..7 against the reference:
 * covers the 8-byte loop and the byte tail of the hardware path. */
static void matches_reference(void **state)
{
    (void)state;
    uint8_t *buf = malloc(256);
    assert_non_null(buf);
    fill(buf, 256);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 208; len++)
            assert_int_equal(crc32c(0, buf + off, len), crc_ref(0, buf + off, len));
    uint8_t *page = malloc(PAGE);
    assert_non_null(page);
    fill(page, PAGE);
    assert_int_equal(crc32c(0, page, PAGE), crc_ref(0, page, PAGE));
    free(page);
    free(buf);
}

static void incremental_equals_one_shot(void **state)
{
    (void)state;
    size_t n = 3 * PAGE + 13;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    fill(buf, n);
    uint32_t whole = crc32c(0, buf, n);
    /* every split of a short prefix, and a spread of splits over the rest */
    for (size_t k = 0; k <= 64; k++)
        assert_int_equal(crc32c(crc32c(0, buf, k), buf + k, 64 - k), crc32c(0, buf, 64));
    for (size_t k = 0; k <= n; k += 97)
        assert_int_equal(crc32c(crc32c(0, buf, k), buf + k, n - k), whole);
    /* byte at a time */
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++)
        c = crc32c(c, buf + i, 1);
    assert_int_equal(c, whole);
    /* three uneven pieces */
    c = crc32c(0, buf, 5);
    c = crc32c(c, buf + 5, 4091);
    c = crc32c(c, buf + 4096, n - 4096);
    assert_int_equal(c, whole);
    free(buf);
}

struct pages {
    uint8_t *mem; /* MAXN pages, deliberately misaligned by 1 */
    const void *src[MAXN];
};

static void pages_init(struct pages *p)
{
    p->mem = malloc(MAXN * PAGE + 1);
    assert_non_null(p->mem);
    fill(p->mem, MAXN * PAGE + 1);
    /* pages in reverse order in memory so out[i] must follow src[i] */
    for (int i = 0; i < MAXN; i++)
        p->src[i] = p->mem + 1 + (size_t)(MAXN - 1 - i) * PAGE;
    /* one all-zero page and one all-ones page among them */
    memset((void *)p->src[2], 0, PAGE);
    memset((void *)p->src[4], 0xff, PAGE);
}

static void pages_vs_single(void **state)
{
    (void)state;
    struct pages p;
    pages_init(&p);
    uint32_t want[MAXN];
    for (int i = 0; i < MAXN; i++) {
        want[i] = crc32c(0, p.src[i], PAGE);
        assert_int_equal(want[i], crc_ref(0, p.src[i], PAGE));
    }
    for (size_t n = 0; n <= MAXN; n++) {
        uint32_t out[MAXN + 1];
        for (size_t i = 0; i <= MAXN; i++)
            out[i] = 0xdeadbeef;
        crc32c_pages(p.src, n, out);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(out[i], want[i]);
        for (size_t i = n; i <= MAXN; i++)
            assert_int_equal(out[i], 0xdeadbeef); /* nothing past n */
    }
    free(p.mem);
}

static void pages3_vs_single(void **state)
{
    (void)state;
    struct pages p;
    pages_init(&p);
    for (int i = 0; i + 3 <= MAXN; i++) {
        uint32_t out[4] = {0, 0, 0, 0xdeadbeef};
        crc32c_pages3(p.src[i], p.src[i + 1], p.src[i + 2], out);
        for (int k = 0; k < 3; k++)
            assert_int_equal(out[k], crc32c(0, p.src[i + k], PAGE));
        assert_int_equal(out[3], 0xdeadbeef);
    }
    /* the same page three times */
    uint32_t out[3];
    crc32c_pages3(p.src[0], p.src[0], p.src[0], out);
    assert_int_equal(out[0], out[1]);
    assert_int_equal(out[1], out[2]);
    assert_int_equal(out[0], crc32c(0, p.src[0], PAGE));
    free(p.mem);
}

static void copy_pages_exact(void **state)
{
    (void)state;
    struct pages p;
    pages_init(&p);
    /* destination pages with guard bytes either side */
    uint8_t *dmem = malloc(MAXN * (PAGE + 16));
    assert_non_null(dmem);
    void *dst[MAXN];
    for (int i = 0; i < MAXN; i++)
        dst[i] = dmem + (size_t)i * (PAGE + 16) + 8;
    for (size_t n = 0; n <= MAXN; n++) {
        memset(dmem, 0x5a, MAXN * (PAGE + 16));
        uint32_t out[MAXN + 1];
        for (size_t i = 0; i <= MAXN; i++)
            out[i] = 0xdeadbeef;
        crc32c_copy_pages(dst, p.src, n, out);
        for (size_t i = 0; i < n; i++) {
            assert_memory_equal(dst[i], p.src[i], PAGE);
            assert_int_equal(out[i], crc32c(0, p.src[i], PAGE));
            const uint8_t *d = dst[i];
            for (int g = 1; g <= 8; g++) {
                assert_int_equal(d[-g], 0x5a);
                assert_int_equal(d[PAGE + g - 1], 0x5a);
            }
        }
        for (size_t i = n; i < MAXN; i++) {
            const uint8_t *d = dst[i];
            for (size_t k = 0; k < PAGE; k += 509)
                assert_int_equal(d[k], 0x5a); /* untouched */
        }
        for (size_t i = n; i <= MAXN; i++)
            assert_int_equal(out[i], 0xdeadbeef);
    }
    free(dmem);
    free(p.mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_vectors),
        cmocka_unit_test(matches_reference),
        cmocka_unit_test(incremental_equals_one_shot),
        cmocka_unit_test(pages_vs_single),
        cmocka_unit_test(pages3_vs_single),
        cmocka_unit_test(copy_pages_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
