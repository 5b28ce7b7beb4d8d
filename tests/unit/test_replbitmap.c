/* Unit tests for src/storage/replbitmap.c: the replication bitmap file
 * (docs/replication.md), its round trip and every refusal; and the
 * replication bits that virtio-blk's writes mark (blk_dirty.repl). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "devices/blk_dirty.h"
#include "storage/replbitmap.h"

#define MIB (1ULL << 20)

/* A 100 MiB + 1 byte disk at 64 KiB a bit: 1601 bits, the last partial. */
static void sample(struct replbm *b, struct buf *out)
{
    assert_int_equal(replbm_init(b, 100 * MIB + 1, 16), 0);
    assert_int_equal(b->nbits, 1601);
    b->bits[0] = 0x5;
    b->bits[25] = 1ULL; /* bit 1600, the partial last block */
    b->count = 3;
    b->clean = true;
    b->syncs = 7;
    b->last_sync_ms = 1796206896273ULL;
    buf_init(out);
    replbm_encode(b, out);
    assert_int_equal(out->len, REPLBM_HEADER + 26 * 8 + 4);
}

static void round_trip(void **state)
{
    (void)state;
    struct replbm b, c;
    struct buf out;
    struct err e = {""};
    sample(&b, &out);
    assert_int_equal(replbm_decode(out.data, out.len, &c, &e), 0);
    assert_int_equal(c.size, b.size);
    assert_int_equal(c.shift, 16);
    assert_int_equal(c.count, 3);
    assert_true(c.clean);
    assert_int_equal(c.syncs, 7);
    assert_int_equal(c.last_sync_ms, b.last_sync_ms);
    assert_memory_equal(c.bits, b.bits, 26 * 8);
    replbm_release(&c);
    replbm_release(&b);
    buf_release(&out);
}

/* Re-seals the header after a change, so that the check after the CRC is
 * the one that refuses. */
static void reseal(struct buf *out)
{
    uint32_t crc = crc32c(0, out->data, REPLBM_HEADER - 4);
    memcpy(out->data + REPLBM_HEADER - 4, &crc, 4);
}

static void refuse(struct buf *out, const char *want)
{
    struct replbm c;
    struct err e = {""};
    assert_int_equal(replbm_decode(out->data, out->len, &c, &e), -EINVAL);
    if (!strstr(e.msg, want))
        fail_msg("'%s' does not say '%s'", e.msg, want);
    replbm_release(&c);
}

static void refusals(void **state)
{
    (void)state;
    struct replbm b;
    struct buf out;
    sample(&b, &out);
    struct buf t = {.data = malloc(out.len + 8), .len = out.len, .cap = out.len + 8};
    uint32_t v;
#define FRESH() memcpy(t.data, out.data, out.len), t.len = out.len
    FRESH(), t.len = 10, refuse(&t, "shorter than its header");
    FRESH(), t.data[0] = 'X', refuse(&t, "bad magic");
    FRESH(), t.data[20] ^= 1, refuse(&t, "header checksum");
    FRESH(), v = 2, memcpy(t.data + 8, &v, 4), reseal(&t), refuse(&t, "version 2");
    FRESH(), v = 3, memcpy(t.data + 12, &v, 4), reseal(&t), refuse(&t, "unknown flags");
    FRESH(), t.data[28] = 1, reseal(&t), refuse(&t, "reserved");
    FRESH(), v = 8, memcpy(t.data + 24, &v, 4), reseal(&t), refuse(&t, "granularity");
    FRESH(), v = 31, memcpy(t.data + 24, &v, 4), reseal(&t), refuse(&t, "granularity");
    FRESH(), memset(t.data + 16, 0, 8), reseal(&t), refuse(&t, "disk size");
    FRESH(), t.len--, refuse(&t, "its header says");
    FRESH(), t.data[t.len++] = 0, refuse(&t, "its header says");
    FRESH(), t.data[REPLBM_HEADER + 3] ^= 0x10, refuse(&t, "bitmap checksum");
    /* a huge disk with a short file: refused before any allocation */
    FRESH(), memset(t.data + 16, 0xff, 5), reseal(&t), refuse(&t, "its header says");
#undef FRESH
    /* bits past the end, and a wrong count, with a valid bitmap CRC */
    b.bits[25] |= 2; /* bit 1601: past the disk */
    b.count = 4;
    buf_reset(&t);
    replbm_encode(&b, &t);
    refuse(&t, "past the end");
    b.bits[25] = 1;
    b.count = 4;
    buf_reset(&t);
    replbm_encode(&b, &t);
    refuse(&t, "bit count");
    buf_release(&t);
    buf_release(&out);
    replbm_release(&b);
}

static void save_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/tern-replbm.XXXXXX", path[64], tmp[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/disk0.repl", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct replbm b, c;
    struct buf out;
    struct err e = {""};
    assert_int_equal(replbm_load(path, &c, &e), -ENOENT);
    replbm_release(&c);
    sample(&b, &out);
    assert_int_equal(replbm_save(path, &b, &e), 0);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed into place */
    assert_int_equal(replbm_load(path, &c, &e), 0);
    assert_int_equal(c.count, 3);
    assert_true(c.clean);
    replbm_release(&c);
    FILE *f = fopen(path, "r+"); /* one flipped bit on disk */
    fseek(f, REPLBM_HEADER + 8, SEEK_SET);
    fputc(0x40, f);
    fclose(f);
    assert_int_equal(replbm_load(path, &c, &e), -EINVAL);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "bitmap checksum"));
    replbm_release(&c);
    unlink(path);
    rmdir(dir);
    buf_release(&out);
    replbm_release(&b);
}

/* The replication bits follow every write, also in active mode, and stay
 * apart from the mirror's bits. */
static void repl_bits(void **state)
{
    (void)state;
    struct blk_dirty d;
    struct replbm b;
    assert_int_equal(blk_dirty_init(&d, 10 * MIB, 16), 0);
    assert_int_equal(replbm_init(&b, 10 * MIB, 16), 0);
    blk_dirty_repl_mark_locked(&d, 0, 4096); /* not replicated: nothing */
    assert_int_equal(d.repl_count, 0);
    d.repl = b.bits;
    blk_dirty_repl_mark_locked(&d, 64 * 1024 - 1, 2);
    blk_dirty_repl_mark_locked(&d, 11 * MIB, 1); /* past the end */
    assert_int_equal(d.repl_count, 2);
    assert_int_equal(b.bits[0], 3);
    assert_int_equal(d.count, 0);
    blk_dirty_release(&d);
    replbm_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(refusals),
        cmocka_unit_test(save_load),
        cmocka_unit_test(repl_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
