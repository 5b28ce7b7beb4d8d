/* Unit tests for src/common/buf.c: the growable writer and the bounds-checked
 * reader every migration decoder is built on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ---- writer ---- */

static void writer_grows(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    for (unsigned i = 0; i < 10000; i++) {
        buf_put_u8(&b, (uint8_t)(i * 7));
        assert_true(b.cap >= b.len);
    }
    assert_false(b.oom);
    assert_int_equal(b.len, 10000);
    for (unsigned i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], (uint8_t)(i * 7));

    /* one put larger than several doublings at once */
    uint8_t *big = malloc(100000);
    assert_non_null(big);
    for (unsigned i = 0; i < 100000; i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    buf_put(&b, big, 100000);
    assert_int_equal(b.len, 110000);
    assert_true(b.cap >= 110000);
    assert_memory_equal(b.data + 10000, big, 100000);
    free(big);

    /* reset keeps the storage, release frees it */
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    buf_put_u32(&b, 0x11223344);
    assert_int_equal(b.len, 4);
    assert_int_equal(b.cap, cap);
    buf_release(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_release(&b); /* twice is harmless */
}

static void writer_exact_boundary(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    uint8_t block[256];
    memset(block, 0xab, sizeof(block));
    buf_put(&b, block, sizeof(block));
    assert_int_equal(b.len, 256);
    assert_int_equal(b.cap, 256); /* filled exactly, no growth yet */
    buf_put_u8(&b, 0xcd);
    assert_int_equal(b.len, 257);
    assert_true(b.cap >= 257);
    assert_int_equal(b.data[255], 0xab);
    assert_int_equal(b.data[256], 0xcd);
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_int_equal(buf_reserve(&b, b.cap - b.len), 0);
    buf_release(&b);
}

static void writer_le_encoding(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_u8(&b, 0x01);
    buf_put_u16(&b, 0x0203);
    buf_put_u32(&b, 0x04050607);
    buf_put_u64(&b, 0x08090a0b0c0d0e0fULL);
    buf_put_u16(&b, 0xffff);
    buf_put_u32(&b, 0);
    buf_put_u64(&b, 0x8000000000000001ULL);
    static const uint8_t want[] = {
        0x01, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04, 0x0f, 0x0e, 0x0d,
        0x0c, 0x0b, 0x0a, 0x09, 0x08, 0xff, 0xff, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    buf_release(&b);
}

static void writer_blobs_and_strings(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    static const uint8_t blob[] = {0xde, 0xad, 0xbe};
    buf_put_blob(&b, blob, sizeof(blob));
    buf_put_str(&b, "hi");
    buf_put_str(&b, "");
    buf_put_blob(&b, NULL, 0);
    static const uint8_t want[] = {
        0x03, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0x02, 0x00, 0x00, 0x00,
        'h',  'i',  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    /* a zero-length put changes nothing */
    buf_put(&b, NULL, 0);
    assert_int_equal(b.len, sizeof(want));
    buf_release(&b);
}

static void writer_oom_is_sticky(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_u32(&b, 0xcafef00d);
    /* an impossible reservation fails without touching the contents */
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_true(b.oom);
    assert_int_equal(b.len, 4);
    /* later puts are dropped while oom is set */
    buf_put_u32(&b, 1);
    buf_put_str(&b, "lost");
    assert_int_equal(b.len, 4);
    assert_int_equal(buf_reserve(&b, 1), -ENOMEM);
    /* reset clears it */
    buf_reset(&b);
    assert_false(b.oom);
    buf_put_u16(&b, 0x1234);
    assert_int_equal(b.len, 2);
    assert_int_equal(b.data[0], 0x34);
    buf_release(&b);
}

/* ---- reader ---- */

static void reader_round_trip(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_u8(&b, 0xfe);
    buf_put_u16(&b, 0xbeef);
    buf_put_u32(&b, 0xdeadbeef);
    buf_put_u64(&b, 0x0123456789abcdefULL);
    buf_put_str(&b, "tern");
    buf_put_blob(&b, "\x00\x01\x02", 3);
    struct reader r;
    reader_init(&r, b.data, b.len);
    assert_int_equal(reader_left(&r), b.len);
    assert_int_equal(reader_u8(&r), 0xfe);
    assert_int_equal(reader_u16(&r), 0xbeef);
    assert_int_equal(reader_u32(&r), 0xdeadbeef);
    assert_true(reader_u64(&r) == 0x0123456789abcdefULL);
    char s[8];
    reader_str(&r, s, sizeof(s));
    assert_string_equal(s, "tern");
    uint32_t len = 99;
    const uint8_t *p = reader_blob(&r, 3, &len);
    assert_non_null(p);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "\x00\x01\x02", 3);
    assert_false(r.bad);
    assert_int_equal(reader_left(&r), 0);
    assert_int_equal(reader_finish(&r), 0);
    buf_release(&b);
}

/* Each getter with one byte too few: returns 0 (not a partial value) and the
 * reader goes bad. The data is on the heap, exactly sized, so a read past the
 * end shows under ASan. */
static void reader_getters_past_end(void **state)
{
    (void)state;
    static const size_t widths[] = {1, 2, 4, 8};
    for (size_t w = 0; w < 4; w++) {
        size_t have = widths[w] - 1;
        uint8_t *data = malloc(have ? have : 1);
        assert_non_null(data);
        memset(data, 0xff, have ? have : 1);
        struct reader r;
        reader_init(&r, data, have);
        uint64_t v = 0;
        switch (widths[w]) {
        case 1: v = reader_u8(&r); break;
        case 2: v = reader_u16(&r); break;
        case 4: v = reader_u32(&r); break;
        case 8: v = reader_u64(&r); break;
        }
        assert_true(v == 0);
        assert_true(r.bad);
        assert_int_equal(reader_left(&r), 0);
        assert_int_equal(reader_finish(&r), -EINVAL);
        free(data);
    }
    /* empty input: everything fails */
    struct reader r;
    reader_init(&r, NULL, 0);
    assert_int_equal(reader_finish(&r), 0);
    assert_int_equal(reader_u8(&r), 0);
    assert_true(r.bad);
    assert_int_equal(reader_finish(&r), -EINVAL);
}

static void reader_stays_bad(void **state)
{
    (void)state;
    static const uint8_t data[5] = {0x11, 0x22, 0x33, 0x44, 0x55};
    struct reader r;
    reader_init(&r, data, sizeof(data));
    assert_true(reader_u64(&r) == 0);
    assert_true(r.bad);
    /* 5 bytes are there, but a bad reader never hands out anything again */
    assert_int_equal(reader_u8(&r), 0);
    assert_int_equal(reader_u16(&r), 0);
    assert_int_equal(reader_u32(&r), 0);
    assert_null(reader_take(&r, 0));
    assert_null(reader_take(&r, 1));
    uint32_t len = 77;
    assert_null(reader_blob(&r, 100, &len));
    assert_int_equal(len, 0);
    uint8_t out[3] = {9, 9, 9};
    reader_copy(&r, out, sizeof(out));
    assert_int_equal(out[0] | out[1] | out[2], 0);
    char s[8] = "xxxxxxx";
    reader_str(&r, s, sizeof(s));
    assert_string_equal(s, "");
    assert_true(r.bad);
    assert_int_equal(reader_left(&r), 0);
    assert_int_equal(reader_finish(&r), -EINVAL);
}

static void reader_partial_then_fail(void **state)
{
    (void)state;
    static const uint8_t data[6] = {1, 2, 3, 4, 5, 6};
    struct reader r;
    reader_init(&r, data, sizeof(data));
    assert_int_equal(reader_u32(&r), 0x04030201);
    assert_int_equal(reader_left(&r), 2);
    assert_int_equal(reader_u32(&r), 0); /* 2 left: not 0x0605 */
    assert_true(r.bad);
    assert_int_equal(reader_left(&r), 0);

    /* reader_copy zero-fills on failure */
    reader_init(&r, data, sizeof(data));
    uint8_t out[8];
    memset(out, 0xee, sizeof(out));
    reader_copy(&r, out, sizeof(out));
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0);
    assert_true(r.bad);

    /* take: huge lengths do not wrap around */
    reader_init(&r, data, sizeof(data));
    assert_non_null(reader_take(&r, 3));
    assert_null(reader_take(&r, SIZE_MAX));
    assert_true(r.bad);
    reader_init(&r, data, sizeof(data));
    assert_non_null(reader_take(&r, 6));
    assert_non_null(reader_take(&r, 0)); /* zero bytes at the end: fine */
    assert_false(r.bad);
    assert_int_equal(reader_finish(&r), 0);
}

static void reader_blob_max(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_blob(&b, "abcde", 5);
    struct reader r;
    uint32_t len;

    reader_init(&r, b.data, b.len);
    const uint8_t *p = reader_blob(&r, 5, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "abcde", 5);
    assert_int_equal(reader_finish(&r), 0);

    reader_init(&r, b.data, b.len);
    len = 1234;
    assert_null(reader_blob(&r, 4, &len));
    assert_int_equal(len, 0);
    assert_true(r.bad);

    reader_init(&r, b.data, b.len);
    assert_null(reader_blob(&r, 0, &len));
    assert_true(r.bad);

    /* the length says more than there is */
    reader_init(&r, b.data, b.len - 1);
    assert_null(reader_blob(&r, 100, &len));
    assert_true(r.bad);

    /* the length itself is cut short */
    reader_init(&r, b.data, 3);
    assert_null(reader_blob(&r, 100, &len));
    assert_int_equal(len, 0);
    assert_true(r.bad);

    /* a length of 0xffffffff with max UINT32_MAX: refused by bounds, no wrap */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 'x'};
    reader_init(&r, huge, sizeof(huge));
    assert_null(reader_blob(&r, UINT32_MAX, &len));
    assert_true(r.bad);

    /* an empty blob is a valid non-NULL pointer */
    buf_reset(&b);
    buf_put_blob(&b, NULL, 0);
    reader_init(&r, b.data, b.len);
    assert_non_null(reader_blob(&r, 0, &len));
    assert_int_equal(len, 0);
    assert_int_equal(reader_finish(&r), 0);
    buf_release(&b);
}

static void reader_str_limits(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_str(&b, "hello");
    struct reader r;
    char s[16];

    /* exactly fits: 5 chars + NUL */
    memset(s, 'X', sizeof(s));
    reader_init(&r, b.data, b.len);
    reader_str(&r, s, 6);
    assert_false(r.bad);
    assert_string_equal(s, "hello");
    assert_int_equal(s[6], 'X'); /* nothing written past cap */

    /* one too small: refused, not truncated, and dst is an empty string */
    memset(s, 'X', sizeof(s));
    reader_init(&r, b.data, b.len);
    reader_str(&r, s, 5);
    assert_true(r.bad);
    assert_int_equal(s[0], '\0');
    assert_int_equal(s[1], 'X');

    /* cap 1: only the empty string fits */
    memset(s, 'X', sizeof(s));
    reader_init(&r, b.data, b.len);
    reader_str(&r, s, 1);
    assert_true(r.bad);
    assert_int_equal(s[0], '\0');

    buf_reset(&b);
    buf_put_str(&b, "");
    reader_init(&r, b.data, b.len);
    memset(s, 'X', sizeof(s));
    reader_str(&r, s, 1);
    assert_false(r.bad);
    assert_string_equal(s, "");

    /* the string is copied as is and always NUL-terminated; an embedded NUL
     * simply ends it early */
    buf_reset(&b);
    buf_put_blob(&b, "ab\0cd", 5);
    reader_init(&r, b.data, b.len);
    memset(s, 'X', sizeof(s));
    reader_str(&r, s, sizeof(s));
    assert_false(r.bad);
    assert_string_equal(s, "ab");
    assert_memory_equal(s, "ab\0cd\0", 6);

    /* string body cut short */
    buf_reset(&b);
    buf_put_str(&b, "truncated");
    reader_init(&r, b.data, b.len - 2);
    memset(s, 'X', sizeof(s));
    reader_str(&r, s, sizeof(s));
    assert_true(r.bad);
    assert_string_equal(s, "");
    buf_release(&b);
}

static void reader_finish_leftover(void **state)
{
    (void)state;
    static const uint8_t data[7] = {1, 0, 0, 0, 2, 0, 3};
    struct reader r;
    reader_init(&r, data, sizeof(data));
    assert_int_equal(reader_finish(&r), -EINVAL); /* nothing read yet */
    assert_int_equal(reader_u32(&r), 1);
    assert_int_equal(reader_left(&r), 3);
    assert_int_equal(reader_finish(&r), -EINVAL);
    assert_int_equal(reader_u16(&r), 2);
    assert_int_equal(reader_left(&r), 1);
    assert_int_equal(reader_finish(&r), -EINVAL);
    assert_false(r.bad); /* leftovers are not "bad" */
    assert_int_equal(reader_u8(&r), 3);
    assert_int_equal(reader_finish(&r), 0);
    /* and reading past the end afterwards turns it into a failure */
    reader_u8(&r);
    assert_int_equal(reader_finish(&r), -EINVAL);
}

struct rec {
    uint16_t a;
    uint8_t pad_here;
    uint64_t b;
    uint8_t tail[3];
    uint32_t not_saved;
};

static const struct buf_field rec_fields[] = {
    BUF_FIELD(struct rec, b),
    BUF_FIELD(struct rec, a),
    BUF_FIELD(struct rec, tail),
};

/* A field table writes the members in table order, little-endian, without
 * padding, and reads them back into the same members only. */
static void fields_round_trip(void **state)
{
    (void)state;
    struct rec in = {0x1234, 0xee, 0x0102030405060708ULL, {9, 10, 11}, 77};
    struct buf b;
    buf_init(&b);
    buf_put_fields(&b, &in, BUF_FIELDS(rec_fields));
    static const uint8_t want[] = {8, 7, 6, 5, 4, 3, 2, 1, 0x34, 0x12, 9, 10, 11};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    struct rec out = {.pad_here = 0x55, .not_saved = 5};
    struct reader r;
    reader_init(&r, b.data, b.len);
    reader_fields(&r, &out, BUF_FIELDS(rec_fields));
    assert_int_equal(reader_finish(&r), 0);
    assert_int_equal(out.a, in.a);
    assert_true(out.b == in.b);
    assert_memory_equal(out.tail, in.tail, 3);
    assert_int_equal(out.pad_here, 0x55);
    assert_int_equal(out.not_saved, 5);
    /* short data: the members past the end read as zero, the reader is bad */
    reader_init(&r, b.data, 9);
    reader_fields(&r, &out, BUF_FIELDS(rec_fields));
    assert_true(r.bad);
    assert_true(out.b == in.b);
    assert_int_equal(out.a, 0);
    assert_memory_equal(out.tail, "\0\0\0", 3);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writer_grows),
        cmocka_unit_test(writer_exact_boundary),
        cmocka_unit_test(writer_le_encoding),
        cmocka_unit_test(writer_blobs_and_strings),
        cmocka_unit_test(writer_oom_is_sticky),
        cmocka_unit_test(reader_round_trip),
        cmocka_unit_test(reader_getters_past_end),
        cmocka_unit_test(reader_stays_bad),
        cmocka_unit_test(reader_partial_then_fail),
        cmocka_unit_test(reader_blob_max),
        cmocka_unit_test(reader_str_limits),
        cmocka_unit_test(reader_finish_leftover),
        cmocka_unit_test(fields_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
