/* Unit tests for the small messages' codecs in src/migrate/hello.c:
 * HELLO_ACK (with and without CHANNELS, and the 16 bytes every earlier
 * destination sends), CHANNEL, LOADED and RUNNING; every prefix, trailing
 * bytes and out-of-range fields are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "migrate/hello.h"
#include "migrate/protocol.h"

#define OFFER (MIG_F_PAGE_CRC | MIG_F_ACKS | MIG_F_CHANNELS)

#define assert_msg_has(e, text)                                   \
    do {                                                          \
        if (!strstr((e).msg, (text)))                             \
            fail_msg("message '%s' lacks '%s'", (e).msg, (text)); \
    } while (0)

/* Decodes from an exactly sized heap copy so ASan sees any over-read. */
static int ack_decode(const void *msg, size_t len, uint64_t offer, struct mig_hello_ack *a,
                      struct err *e)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, msg, len);
    int rc = hello_ack_decode(copy, (uint32_t)len, offer, a, e);
    free(copy);
    return rc;
}

static void ack_round_trip(void **state)
{
    (void)state;
    struct err e = {""};
    struct buf b;
    buf_init(&b);
    struct mig_hello_ack in = {1, MIG_F_ACKS | MIG_F_CHANNELS, 8, 0x1122334455667788ULL},
                         out;
    hello_ack_encode(&in, &b);
    assert_int_equal(b.len, 32);
    assert_int_equal(ack_decode(b.data, b.len, OFFER, &out, &e), 0);
    assert_int_equal(out.version, 1);
    assert_true(out.features == in.features);
    assert_int_equal(out.channels, 8);
    assert_true(out.token == in.token);
    buf_release(&b);
    /* without CHANNELS: the 16 bytes of version 1 as first released */
    buf_init(&b);
    in = (struct mig_hello_ack){1, MIG_F_PAGE_CRC, 5, 7};
    hello_ack_encode(&in, &b);
    assert_int_equal(b.len, 16);
    uint8_t want[16] = {1, 0, 0, 0, 0, 0, 0, 0, MIG_F_PAGE_CRC};
    assert_memory_equal(b.data, want, 16);
    assert_int_equal(ack_decode(b.data, b.len, OFFER, &out, &e), 0);
    assert_int_equal(out.channels, 0);
    buf_release(&b);
}

static void ack_refused(void **state)
{
    (void)state;
    struct err e = {""};
    struct buf b;
    buf_init(&b);
    struct mig_hello_ack in = {1, MIG_F_CHANNELS, 4, 9}, out;
    hello_ack_encode(&in, &b);
    for (size_t n = 0; n < b.len; n++) {
        e.msg[0] = '\0';
        assert_int_equal(ack_decode(b.data, n, OFFER, &out, &e), -EPROTO);
        assert_msg_has(e, "malformed HELLO_ACK");
    }
    uint8_t longer[33];
    memcpy(longer, b.data, 32);
    longer[32] = 0;
    assert_int_equal(ack_decode(longer, 33, OFFER, &out, &e), -EPROTO);
    assert_msg_has(e, "malformed HELLO_ACK (33 bytes)");
    /* a feature the source did not offer */
    assert_int_equal(ack_decode(b.data, b.len, MIG_F_ACKS, &out, &e), -EPROTO);
    assert_msg_has(e, "features 0x4, not offered");
    buf_release(&b);
    uint16_t versions[] = {0, 2, 0xffff};
    for (unsigned i = 0; i < 3; i++) {
        buf_init(&b);
        hello_ack_encode(&(struct mig_hello_ack){versions[i], 0, 0, 0}, &b);
        assert_int_equal(ack_decode(b.data, b.len, OFFER, &out, &e), -EPROTO);
        assert_msg_has(e, "not offered");
        buf_release(&b);
    }
    uint32_t counts[] = {0, 1, MIG_CHANNELS_MAX + 1, 0xffffffff};
    for (unsigned i = 0; i < 4; i++) {
        buf_init(&b);
        hello_ack_encode(&(struct mig_hello_ack){1, MIG_F_CHANNELS, counts[i], 1}, &b);
        assert_int_equal(ack_decode(b.data, b.len, OFFER, &out, &e), -EPROTO);
        assert_msg_has(e, "channels, not 2..8");
        buf_release(&b);
    }
}

static void chan_hello_codec(void **state)
{
    (void)state;
    struct err e = {""};
    struct buf b;
    buf_init(&b);
    struct mig_chan_hello in = {0xabcdefULL, 3, 4}, out;
    chan_hello_encode(&in, &b);
    assert_int_equal(b.len, 16);
    assert_int_equal(chan_hello_decode(b.data, (uint32_t)b.len, &out, &e), 0);
    assert_true(out.token == in.token && out.index == 3 && out.count == 4);
    for (uint32_t n = 0; n < 16; n++) {
        assert_int_equal(chan_hello_decode(b.data, n, &out, &e), -EPROTO);
        assert_msg_has(e, "malformed CHANNEL");
    }
    buf_release(&b);
    static const struct mig_chan_hello bad[] = {
        {1, 0, 2}, {1, 2, 2}, {1, 1, 1}, {1, 1, MIG_CHANNELS_MAX + 1}, {1, 0xffffffff, 4},
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_init(&b);
        chan_hello_encode(&bad[i], &b);
        assert_int_equal(chan_hello_decode(b.data, (uint32_t)b.len, &out, &e), -EPROTO);
        assert_msg_has(e, "out of range");
        buf_release(&b);
    }
}

static void loaded_codec(void **state)
{
    (void)state;
    struct err e = {""};
    struct buf b;
    buf_init(&b);
    loaded_encode(123456789, &b);
    uint64_t ns = 0;
    assert_int_equal(b.len, 8);
    assert_int_equal(loaded_decode(b.data, 8, &ns, &e), 0);
    assert_true(ns == 123456789);
    uint8_t nine[9] = {0};
    assert_int_equal(loaded_decode(nine, 9, &ns, &e), -EPROTO);
    assert_msg_has(e, "malformed LOADED (9 bytes)");
    assert_int_equal(loaded_decode(b.data, 7, &ns, &e), -EPROTO);
    assert_int_equal(loaded_decode(b.data, 0, &ns, &e), -EPROTO);
    buf_release(&b);
}

static void running_codec(void **state)
{
    (void)state;
    struct err e = {""};
    for (int paused = 0; paused < 2; paused++) {
        struct buf b;
        buf_init(&b);
        running_encode(&(struct mig_running){42, paused}, &b);
        assert_int_equal(b.len, 16);
        struct mig_running out;
        assert_int_equal(running_decode(b.data, 16, &out, &e), 0);
        assert_true(out.dest_ns == 42 && out.paused == paused);
        assert_int_equal(running_decode(b.data, 8, &out, &e), -EPROTO);
        assert_msg_has(e, "malformed RUNNING (8 bytes)");
        buf_release(&b);
    }
    uint64_t two[2] = {1, 2};
    struct mig_running out;
    assert_int_equal(running_decode((const uint8_t *)two, 16, &out, &e), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ack_round_trip),   cmocka_unit_test(ack_refused),
        cmocka_unit_test(chan_hello_codec), cmocka_unit_test(loaded_codec),
        cmocka_unit_test(running_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
