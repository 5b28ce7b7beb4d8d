/* Unit tests for src/migrate/channel.c: message framing and the checks made
 * on a header before any payload byte is read, ERROR messages from the peer,
 * timeouts, the bandwidth limit, cancellation from another thread, and the
 * tcp:/unix:/fd: URIs. Everything runs over socketpairs and loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "migrate/channel.h"

struct pair {
    struct mig_channel tx, rx;
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    int sv[2];
    if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        free(p);
        return -1;
    }
    mig_channel_init(&p->tx, sv[0]);
    mig_channel_init(&p->rx, sv[1]);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    mig_channel_release(&p->tx);
    mig_channel_release(&p->rx);
    free(p);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Writes a raw header (crc computed unless bad_crc) and extra bytes. */
static void write_raw(int fd, uint32_t magic, uint16_t type, uint16_t flags,
                      uint32_t length, bool bad_crc, const void *extra, size_t n)
{
    uint8_t h[16 + 64];
    memcpy(h, &magic, 4);
    memcpy(h + 4, &type, 2);
    memcpy(h + 6, &flags, 2);
    memcpy(h + 8, &length, 4);
    uint32_t crc = crc32c(0, h, 12) ^ (bad_crc ? 0x100 : 0);
    memcpy(h + 12, &crc, 4);
    assert_true(n <= 64);
    if (n)
        memcpy(h + 16, extra, n);
    assert_int_equal(write(fd, h, 16 + n), (ssize_t)(16 + n));
}

/* Bytes waiting in the socket, without consuming them. */
static ssize_t pending(int fd, void *buf, size_t len)
{
    return recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
}

#define assert_msg_has(e, text)                                   \
    do {                                                          \
        if (!strstr((e).msg, (text)))                             \
            fail_msg("message '%s' lacks '%s'", (e).msg, (text)); \
    } while (0)

/* ---- framing ---- */

static void send_header_bytes(void **state)
{
    struct pair *p = *state;
    struct err e = {""};
    assert_int_equal(mig_send_buf(&p->tx, MIG_HELLO, "abc", 3, &e), 0);
    uint8_t raw[19];
    assert_int_equal(read(p->rx.fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
    static const uint8_t want[12] = {'T', 'R', 'N', 'M', 1, 0, 0, 0, 3, 0, 0, 0};
    assert_memory_equal(raw, want, 12);
    uint32_t crc;
    memcpy(&crc, raw + 12, 4);
    assert_int_equal(crc, crc32c(0, raw, 12));
    assert_memory_equal(raw + 16, "abc", 3);
    assert_int_equal(p->tx.bytes_out, 19);

    /* empty message: header only */
    assert_int_equal(mig_send_buf(&p->tx, MIG_END, NULL, 0, &e), 0);
    uint8_t end[16];
    assert_int_equal(read(p->rx.fd, end, sizeof(end)), 16);
    assert_int_equal(end[4], MIG_END);
    assert_int_equal(end[8] | end[9] | end[10] | end[11], 0);
    char c;
    assert_int_equal(pending(p->rx.fd, &c, 1), -1); /* nothing more */
}

static void send_recv_round_trip(void **state)
{
    struct pair *p = *state;
    struct err e = {""};
    assert_int_equal(mig_send_buf(&p->tx, MIG_LOADED, "12345678", 8, &e), 0);
    struct mig_hdr h;
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), 0);
    assert_int_equal(h.magic, MIG_MAGIC);
    assert_int_equal(h.type, MIG_LOADED);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.length, 8);
    char buf[8];
    assert_int_equal(mig_recv(&p->rx, buf, 8, &e), 0);
    assert_memory_equal(buf, "12345678", 8);
    assert_int_equal(p->rx.bytes_in, 24);
    assert_int_equal(p->tx.bytes_out, 24);

    /* mig_recv_msg: whole message, NUL-terminated copy */
    assert_int_equal(mig_send_buf(&p->tx, MIG_RUNNING, "xyz", 3, &e), 0);
    uint8_t *msg = NULL;
    uint32_t len = 0;
    assert_int_equal(mig_recv_msg(&p->rx, MIG_RUNNING, &msg, &len, 1000, &e), 0);
    assert_non_null(msg);
    assert_int_equal(len, 3);
    assert_string_equal((char *)msg, "xyz");
    free(msg);

    /* empty payload through mig_recv_msg, no timeout */
    assert_int_equal(mig_send_buf(&p->tx, MIG_COMMIT, NULL, 0, &e), 0);
    assert_int_equal(mig_recv_msg(&p->rx, MIG_COMMIT, &msg, &len, -1, &e), 0);
    assert_non_null(msg);
    assert_int_equal(len, 0);
    free(msg);
}

/* More iovecs than the stack array and more than one sendmsg takes. */
static void send_many_iovecs(void **state)
{
    struct pair *p = *state;
    enum { N = 1500 };
    struct iovec *iov = calloc(N, sizeof(*iov));
    uint8_t *data = malloc(N * 3);
    assert_non_null(iov);
    assert_non_null(data);
    for (int i = 0; i < N * 3; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    for (int i = 0; i < N; i++)
        iov[i] = (struct iovec){data + i * 3, 3};
    struct err e = {""};
    assert_int_equal(mig_send(&p->tx, MIG_SECTION, iov, N, &e), 0);
    uint8_t *msg;
    uint32_t len;
    assert_int_equal(mig_recv_msg(&p->rx, MIG_SECTION, &msg, &len, 1000, &e), 0);
    assert_int_equal(len, N * 3);
    assert_memory_equal(msg, data, N * 3);
    free(msg);
    /* the caller's iovecs are left as they were */
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(iov[i].iov_base, data + i * 3);
        assert_int_equal(iov[i].iov_len, 3);
    }
    /* and a receive into many iovecs */
    assert_int_equal(mig_send(&p->tx, MIG_SECTION, iov, N, &e), 0);
    struct mig_hdr h;
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), 0);
    uint8_t *back = calloc(N, 3);
    assert_non_null(back);
    struct iovec *riov = calloc(N, sizeof(*riov));
    assert_non_null(riov);
    for (int i = 0; i < N; i++)
        riov[i] = (struct iovec){back + i * 3, 3};
    assert_int_equal(mig_recv_iov(&p->rx, riov, N, &e), 0);
    assert_memory_equal(back, data, N * 3);
    free(riov);
    free(back);
    free(iov);
    free(data);
}

static void send_refuses_oversize(void **state)
{
    struct pair *p = *state;
    struct err e = {""};
    char *big = calloc(1, 4097);
    assert_non_null(big);
    assert_int_equal(mig_send_buf(&p->tx, MIG_ERROR, big, 4097, &e), -EMSGSIZE);
    assert_msg_has(e, "ERROR message of 4097 bytes is too long");
    assert_int_equal(mig_send_buf(&p->tx, MIG_ERROR, big, 4096, &e), 0);
    assert_int_equal(mig_send_buf(&p->tx, MIG_END, big, 1, &e), -EMSGSIZE);
    assert_msg_has(e, "END message");
    assert_int_equal(mig_send_buf(&p->tx, MIG_HELLO_ACK, big, 65, &e), -EMSGSIZE);
    /* summed over the iovecs */
    struct iovec iov[3] = {{big, 30}, {big, 30}, {big, 5}};
    assert_int_equal(mig_send(&p->tx, MIG_LOADED, iov, 3, &e), -EMSGSIZE);
    /* unknown types carry nothing */
    assert_int_equal(mig_send_buf(&p->tx, 42, big, 1, &e), -EMSGSIZE);
    free(big);
    /* only the one good message went out */
    assert_int_equal(p->tx.bytes_out, 16 + 4096);
    struct mig_hdr h;
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), 0);
    assert_int_equal(h.type, MIG_ERROR);
    assert_int_equal(h.length, 4096);
    uint8_t sink[4096];
    assert_int_equal(mig_recv(&p->rx, sink, sizeof(sink), &e), 0);
    char c;
    assert_int_equal(pending(p->rx.fd, &c, 1), -1);
}

/* ---- header checks ---- */

static void header_refusals(void **state)
{
    struct pair *p = *state;
    int fd = p->tx.fd;
    struct err e = {""};
    struct mig_hdr h;
    uint8_t marker[4] = {0xaa, 0xbb, 0xcc, 0xdd}, peek[4];

    /* bad crc */
    write_raw(fd, MIG_MAGIC, MIG_LOADED, 0, 4, true, marker, 4);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
    assert_msg_has(e, "header crc mismatch");
    assert_int_equal(pending(p->rx.fd, peek, 4), 4); /* payload not read */
    assert_memory_equal(peek, marker, 4);
    assert_int_equal(read(p->rx.fd, peek, 4), 4);

    /* bad magic (with a crc that matches it) */
    write_raw(fd, 0x4d4e5255, MIG_LOADED, 0, 0, false, NULL, 0);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
    assert_msg_has(e, "bad message magic");
    write_raw(fd, 0x5452 /* "RT\0\0" */, MIG_LOADED, 0, 0, false, NULL, 0);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
    assert_msg_has(e, "bad message magic");

    /* unknown types (10 is ACK, feature ACKS) */
    static const uint16_t types[] = {0, MIG_TYPE_MAX + 1, 42, 0xffff};
    for (size_t i = 0; i < 4; i++) {
        write_raw(fd, MIG_MAGIC, types[i], 0, 0, false, NULL, 0);
        assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
        char want[64];
        snprintf(want, sizeof(want), "unknown message type %u", types[i]);
        assert_msg_has(e, want);
    }

    /* over each type's limit: refused before a payload byte is read */
    for (uint16_t t = 1; t <= MIG_TYPE_MAX; t++) {
        uint32_t max = mig_max_length(t);
        write_raw(fd, MIG_MAGIC, t, 0, max + 1, false, marker, 4);
        assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
        char want[128];
        snprintf(want, sizeof(want), "%s message of %u bytes exceeds the limit of %u",
                 mig_type_name(t), max + 1, max);
        assert_msg_has(e, want);
        assert_int_equal(pending(p->rx.fd, peek, 4), 4);
        assert_memory_equal(peek, marker, 4);
        assert_int_equal(read(p->rx.fd, peek, 4), 4);
    }
    write_raw(fd, MIG_MAGIC, MIG_SECTION, 0, UINT32_MAX, false, NULL, 0);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPROTO);
    assert_msg_has(e, "exceeds the limit");

    /* exactly at the limit is fine, and flags are ignored */
    write_raw(fd, MIG_MAGIC, MIG_LOADED, 0x8001, 64, false, NULL, 0);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), 0);
    assert_int_equal(h.flags, 0x8001);
    assert_int_equal(h.length, 64);

    /* a header cut short by the peer closing */
    uint8_t half[7] = {'T', 'R', 'N', 'M', 1, 0, 0};
    assert_int_equal(write(fd, half, sizeof(half)), (ssize_t)sizeof(half));
    shutdown(fd, SHUT_WR);
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), -EPIPE);
    assert_msg_has(e, "connection closed by peer");
}

static void hdr_check_in_memory(void **state)
{
    (void)state;
    struct err e = {""};
    struct mig_hdr h = {MIG_MAGIC, MIG_RAM, 0, mig_max_length(MIG_RAM), 0};
    h.crc = crc32c(0, &h, 12);
    assert_int_equal(mig_hdr_check(&h, &e), 0);
    h.crc ^= 1;
    assert_int_equal(mig_hdr_check(&h, &e), -EPROTO);
    /* each of the first 12 bytes is covered by the crc */
    for (int i = 0; i < 12; i++) {
        struct mig_hdr g = {MIG_MAGIC, MIG_RAM, 0, 100, 0};
        g.crc = crc32c(0, &g, 12);
        ((uint8_t *)&g)[i] ^= 0x01;
        assert_int_equal(mig_hdr_check(&g, &e), -EPROTO);
    }
    assert_string_equal(mig_type_name(MIG_HELLO), "HELLO");
    assert_string_equal(mig_type_name(MIG_ERROR), "ERROR");
    assert_string_equal(mig_type_name(0), "?");
    assert_string_equal(mig_type_name(MIG_ACK), "ACK");
    assert_string_equal(mig_type_name(MIG_TYPE_MAX + 1), "?");
    assert_string_equal(mig_type_name(0xffff), "?");
}

/* ---- mig_recv_msg ---- */

static void recv_msg_peer_error(void **state)
{
    struct pair *p = *state;
    struct err e = {""};
    mig_send_error(&p->tx, "disk image is on fire");
    uint8_t *msg = (uint8_t *)&e;
    uint32_t len;
    assert_int_equal(mig_recv_msg(&p->rx, MIG_LOADED, &msg, &len, 1000, &e), -EREMOTEIO);
    assert_null(msg);
    assert_string_equal(e.msg, "peer: disk image is on fire");

    /* asking for ERROR gets it as a message */
    mig_send_error(&p->tx, "plain");
    assert_int_equal(mig_recv_msg(&p->rx, MIG_ERROR, &msg, &len, 1000, &e), 0);
    assert_int_equal(len, 5);
    assert_string_equal((char *)msg, "plain");
    free(msg);

    /* another type than the expected one */
    assert_int_equal(mig_send_buf(&p->tx, MIG_RUNNING, "r", 1, &e), 0);
    assert_int_equal(mig_recv_msg(&p->rx, MIG_LOADED, &msg, &len, 1000, &e), -EPROTO);
    assert_null(msg);
    assert_msg_has(e, "expected LOADED, got RUNNING");

    /* long error text: sent cut at 4000 bytes, message bounded */
    char *text = malloc(5001);
    assert_non_null(text);
    memset(text, 'x', 5000);
    text[5000] = '\0';
    mig_send_error(&p->tx, text);
    free(text);
    struct mig_hdr h;
    assert_int_equal(mig_recv_hdr(&p->rx, &h, &e), 0);
    assert_int_equal(h.type, MIG_ERROR);
    assert_int_equal(h.length, 4000);
    uint8_t sink[4000];
    assert_int_equal(mig_recv(&p->rx, sink, sizeof(sink), &e), 0);
    mig_send_error(&p->tx, "");
    assert_int_equal(mig_recv_msg(&p->rx, MIG_END, &msg, &len, 1000, &e), -EREMOTEIO);
    assert_string_equal(e.msg, "peer: ");

    /* header refusals come through mig_recv_msg too */
    write_raw(p->tx.fd, MIG_MAGIC, MIG_END, 0, 1, false, "z", 1);
    assert_int_equal(mig_recv_msg(&p->rx, MIG_END, &msg, &len, 1000, &e), -EPROTO);
    assert_null(msg);
    assert_msg_has(e, "exceeds the limit");
}

static void recv_msg_timeout(void **state)
{
    struct pair *p = *state;
    struct err e = {""};
    uint8_t *msg = (uint8_t *)&e;
    uint32_t len;
    double t0 = now_s();
    assert_int_equal(mig_recv_msg(&p->rx, MIG_LOADED, &msg, &len, 150, &e), -ETIMEDOUT);
    double dt = now_s() - t0;
    assert_null(msg);
    assert_msg_has(e, "no LOADED from the peer within 150 ms");
    assert_true(dt >= 0.12);
    assert_true(dt < 3.0);
    assert_int_equal(mig_wait_readable(&p->rx, 0), -ETIMEDOUT);
    assert_int_equal(mig_send_buf(&p->tx, MIG_LOADED, NULL, 0, &e), 0);
    assert_int_equal(mig_wait_readable(&p->rx, 1000), 0);
    assert_int_equal(mig_recv_msg(&p->rx, MIG_LOADED, &msg, &len, 0, &e), 0);
    free(msg);

    /* payload cut short by the peer closing */
    write_raw(p->tx.fd, MIG_MAGIC, MIG_LOADED, 0, 8, false, "abc", 3);
    shutdown(p->tx.fd, SHUT_WR);
    assert_int_equal(mig_recv_msg(&p->rx, MIG_LOADED, &msg, &len, 1000, &e), -EPIPE);
    assert_null(msg);
    assert_msg_has(e, "connection closed by peer");
}

/* ---- bandwidth ---- */

struct drain {
    struct mig_channel *ch;
    unsigned want;
    unsigned got;
    uint64_t bytes;
    int rc;
};

static void *drain_thread(void *arg)
{
    struct drain *d = arg;
    struct err e = {""};
    while (d->got < d->want) {
        uint8_t *msg;
        uint32_t len;
        d->rc = mig_recv_msg(d->ch, MIG_SECTION, &msg, &len, 10000, &e);
        if (d->rc)
            break;
        d->bytes += len;
        free(msg);
        d->got++;
    }
    return NULL;
}

static void bandwidth_limit(void **state)
{
    struct pair *p = *state;
    enum { CHUNK = 256 << 10, COUNT = 16 }; /* 4 MiB in all */
    uint8_t *data = calloc(1, CHUNK);
    assert_non_null(data);
    struct drain d = {&p->rx, COUNT, 0, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drain_thread, &d), 0);
    struct err e = {""};
    double t0 = now_s();
    mig_channel_set_bandwidth(&p->tx, 20 << 20); /* 20 MiB/s: 0.2 s */
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(mig_send_buf(&p->tx, MIG_SECTION, data, CHUNK, &e), 0);
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.got, COUNT);
    assert_int_equal(d.bytes, (uint64_t)CHUNK * COUNT);
    if (dt < 0.18 || dt > 5.0)
        fail_msg("4 MiB at 20 MiB/s took %.3f s", dt);
    free(data);
}

/* ---- cancellation ---- */

struct blocked {
    struct mig_channel *ch;
    bool send;
    int rc;
    double returned_at;
    struct err e;
};

static void *blocked_thread(void *arg)
{
    struct blocked *b = arg;
    if (b->send) {
        size_t n = 16 << 20; /* more than both socket buffers hold */
        uint8_t *big = calloc(1, n);
        b->rc = big ? mig_send_buf(b->ch, MIG_SECTION, big, (uint32_t)n, &b->e) : -ENOMEM;
        free(big);
    } else {
        uint8_t buf[16];
        b->rc = mig_recv(b->ch, buf, sizeof(buf), &b->e);
    }
    b->returned_at = now_s();
    return NULL;
}

static void join_within(pthread_t th, double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)seconds + 1;
    int rc = pthread_timedjoin_np(th, NULL, &ts);
    if (rc)
        fail_msg("thread still blocked after cancel");
}

static void cancel_blocked_recv(void **state)
{
    struct pair *p = *state;
    struct blocked b = {.ch = &p->rx, .send = false};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_thread, &b), 0);
    sleep_ms(150);
    double t0 = now_s();
    mig_channel_cancel(&p->rx);
    join_within(th, 2);
    assert_int_equal(b.rc, -ECANCELED);
    assert_string_equal(b.e.msg, "migration cancelled");
    assert_true(b.returned_at - t0 < 1.0);
    /* and everything after it fails the same way */
    struct err e = {""};
    assert_int_equal(mig_send_buf(&p->rx, MIG_END, NULL, 0, &e), -ECANCELED);
    uint8_t *msg;
    uint32_t len;
    assert_int_equal(mig_recv_msg(&p->rx, MIG_END, &msg, &len, 1000, &e), -ECANCELED);
    assert_null(msg);
}

static void cancel_blocked_send(void **state)
{
    struct pair *p = *state;
    struct blocked b = {.ch = &p->tx, .send = true};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_thread, &b), 0);
    sleep_ms(200);
    double t0 = now_s();
    mig_channel_cancel(&p->tx);
    join_within(th, 2);
    assert_int_equal(b.rc, -ECANCELED);
    assert_msg_has(b.e, "cancelled");
    assert_true(b.returned_at - t0 < 1.0);
}

/* ---- URIs ---- */

static void exchange(int a, int b)
{
    struct mig_channel ca, cb;
    mig_channel_init(&ca, a);
    mig_channel_init(&cb, b);
    struct err e = {""};
    assert_int_equal(mig_send_buf(&ca, MIG_HELLO, "ping", 4, &e), 0);
    uint8_t *msg;
    uint32_t len;
    if (mig_recv_msg(&cb, MIG_HELLO, &msg, &len, 2000, &e))
        fail_msg("%s", e.msg);
    assert_string_equal((char *)msg, "ping");
    free(msg);
    assert_int_equal(mig_send_buf(&cb, MIG_HELLO_ACK, "pong", 4, &e), 0);
    assert_int_equal(mig_recv_msg(&ca, MIG_HELLO_ACK, &msg, &len, 2000, &e), 0);
    assert_string_equal((char *)msg, "pong");
    free(msg);
    mig_channel_release(&ca);
    mig_channel_release(&cb);
}

static void uri_unix(void **state)
{
    (void)state;
    char dir[] = "/tmp/tern-test-channel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char uri[128];
    snprintf(uri, sizeof(uri), "unix:%s/mig.sock", dir);
    struct err e = {""};
    int lfd = -1, cfd = -1, afd = -1;
    if (mig_uri_listen(uri, &lfd, &e))
        fail_msg("%s", e.msg);
    assert_true(lfd >= 0);
    /* nobody connected yet: accept times out */
    assert_int_equal(mig_accept(lfd, 100, &afd, &e), -ETIMEDOUT);
    assert_msg_has(e, "no source connected");
    if (mig_uri_connect(uri, &cfd, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(mig_accept(lfd, 2000, &afd, &e), 0);
    exchange(cfd, afd);
    close(lfd);
    /* listening again on the same path replaces the stale socket */
    assert_int_equal(mig_uri_listen(uri, &lfd, &e), 0);
    close(lfd);
    char path[128];
    snprintf(path, sizeof(path), "%s/mig.sock", dir);
    unlink(path);
    /* nothing there any more */
    assert_true(mig_uri_connect(uri, &cfd, &e) < 0);
    assert_msg_has(e, "connect to unix:");
    /* a regular file in the way is not removed */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mig_uri_listen(uri, &lfd, &e), -EEXIST);
    assert_msg_has(e, "listen on unix:");
    unlink(path);
    rmdir(dir);
    /* a path longer than sun_path */
    char longuri[200] = "unix:/tmp/";
    memset(longuri + 10, 'p', 150);
    longuri[160] = '\0';
    assert_int_equal(mig_uri_listen(longuri, &lfd, &e), -ENAMETOOLONG);
    assert_msg_has(e, "unix:/tmp/ppp");
    assert_int_equal(mig_uri_connect(longuri, &cfd, &e), -ENAMETOOLONG);
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void uri_tcp(void **state)
{
    (void)state;
    struct err e = {""};
    int lfd = -1, cfd = -1, afd = -1;
    /* port 0: the kernel picks a free one */
    if (mig_uri_listen("tcp:127.0.0.1:0", &lfd, &e))
        fail_msg("%s", e.msg);
    int port = local_port(lfd);
    assert_true(port > 0);
    char uri[64];
    snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", port);
    if (mig_uri_connect(uri, &cfd, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(mig_accept(lfd, 2000, &afd, &e), 0);
    exchange(cfd, afd);
    /* "localhost" resolves too */
    snprintf(uri, sizeof(uri), "tcp:localhost:%d", port);
    if (mig_uri_connect(uri, &cfd, &e) == 0) {
        assert_int_equal(mig_accept(lfd, 2000, &afd, &e), 0);
        exchange(cfd, afd);
    }
    close(lfd);
    /* the listener is gone: refused, with the address in the message */
    snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", port);
    assert_true(mig_uri_connect(uri, &cfd, &e) < 0);
    char want[64];
    snprintf(want, sizeof(want), "connect to tcp:127.0.0.1:%d", port);
    assert_msg_has(e, want);
}

static void uri_tcp6(void **state)
{
    (void)state;
    struct err e = {""};
    int lfd = -1, cfd = -1, afd = -1;
    if (mig_uri_listen("tcp:[::1]:0", &lfd, &e)) {
        print_message("# no IPv6 loopback here: %s\n", e.msg);
        skip();
    }
    char uri[64];
    snprintf(uri, sizeof(uri), "tcp:[::1]:%d", local_port(lfd));
    if (mig_uri_connect(uri, &cfd, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(mig_accept(lfd, 2000, &afd, &e), 0);
    exchange(cfd, afd);
    close(lfd);
}

static void uri_fd(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char uri[32];
    struct err e = {""};
    int fd = -1, lfd = 0, afd = -1;
    snprintf(uri, sizeof(uri), "fd:%d", sv[0]);
    assert_int_equal(mig_uri_connect(uri, &fd, &e), 0);
    assert_int_equal(fd, sv[0]);
    snprintf(uri, sizeof(uri), "fd:%d", sv[1]);
    assert_int_equal(mig_uri_listen(uri, &lfd, &e), 0);
    assert_true(lfd <= -2); /* "already connected" */
    assert_int_equal(mig_accept(lfd, 0, &afd, &e), 0);
    assert_int_equal(afd, sv[1]);
    exchange(fd, afd);
    /* fd 0 is a valid descriptor number too */
    assert_int_equal(mig_uri_listen("fd:0", &lfd, &e), 0);
    assert_int_equal(lfd, -2);
    assert_int_equal(mig_accept(lfd, 0, &afd, &e), 0);
    assert_int_equal(afd, 0);
}

static void uri_refusals(void **state)
{
    (void)state;
    /* a descriptor number that was just closed */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    close(pfd[0]);
    close(pfd[1]);
    char closed[32];
    snprintf(closed, sizeof(closed), "fd:%d", pfd[0]);
    static const struct {
        const char *uri, *want;
        int err;
    } bad[] = {
        {"udp:x", "expected tcp:HOST:PORT, unix:PATH or fd:N", EINVAL},
        {"", "expected tcp:HOST:PORT", EINVAL},
        {"TCP:127.0.0.1:1", "expected tcp:HOST:PORT", EINVAL},
        {"tcp:noport", "uri 'tcp:noport': expected tcp:HOST:PORT", EINVAL},
        {"tcp:host:", "expected tcp:HOST:PORT", EINVAL},
        {"tcp::80", "expected tcp:HOST:PORT", EINVAL},
        {"tcp:", "expected tcp:HOST:PORT", EINVAL},
        {"tcp:127.0.0.1:99999999999999999", "expected tcp:HOST:PORT", EINVAL},
        {"fd:abc", "uri 'fd:abc': not an open file descriptor", EBADF},
        {"fd:999999", "uri 'fd:999999': not an open file descriptor", EBADF},
        {"fd:", "not an open file descriptor", EBADF},
        {"fd:-1", "not an open file descriptor", EBADF},
        {"fd:3x", "not an open file descriptor", EBADF},
        {"fd:4294967299", "not an open file descriptor", EBADF},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        for (int listening = 0; listening < 2; listening++) {
            struct err e = {""};
            int fd = 12345;
            int rc = listening ? mig_uri_listen(bad[i].uri, &fd, &e)
                               : mig_uri_connect(bad[i].uri, &fd, &e);
            if (rc != -bad[i].err || !strstr(e.msg, bad[i].want))
                fail_msg("%s '%s': rc %d, message '%s'", listening ? "listen" : "connect",
                         bad[i].uri, rc, e.msg);
            if (listening && strncmp(bad[i].uri, "fd:", 3) == 0)
                assert_int_equal(fd, -1);
        }
    }
    for (int listening = 0; listening < 2; listening++) {
        struct err e = {""};
        int fd;
        int rc = listening ? mig_uri_listen(closed, &fd, &e)
                           : mig_uri_connect(closed, &fd, &e);
        assert_int_equal(rc, -EBADF);
        assert_msg_has(e, "not an open file descriptor");
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(send_header_bytes),      T(send_recv_round_trip),
        T(send_many_iovecs),       T(send_refuses_oversize),
        T(header_refusals),        cmocka_unit_test(hdr_check_in_memory),
        T(recv_msg_peer_error),    T(recv_msg_timeout),
        T(bandwidth_limit),        T(cancel_blocked_recv),
        T(cancel_blocked_send),    cmocka_unit_test(uri_unix),
        cmocka_unit_test(uri_tcp), cmocka_unit_test(uri_tcp6),
        cmocka_unit_test(uri_fd),  cmocka_unit_test(uri_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
