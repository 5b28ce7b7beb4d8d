/* Unit tests for src/devices/virtio_net*.c on a real TAP: the test process
 * moves into a network namespace of its own (unshare), so the TAPs it
 * creates are nobody else's, and plays both ends: the guest driver through
 * the MMIO registers and guest RAM, and the network through a packet
 * socket on the TAP interface. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_net.h"

enum {
    DRIVER_FEATURES = 0x020,
    DRIVER_FEATURES_SEL = 0x024,
    QUEUE_SEL = 0x030,
    QUEUE_NUM = 0x038,
    QUEUE_READY = 0x044,
    QUEUE_NOTIFY = 0x050,
    INTERRUPT_STATUS = 0x060,
    STATUS = 0x070,
    QUEUE_DESC_LOW = 0x080,
    QUEUE_DRIVER_LOW = 0x090,
    QUEUE_DEVICE_LOW = 0x0a0,
    CONFIG = 0x100,
};

#define RAM_SIZE (1ULL << 20)
#define QSIZE 16
#define RXQ 0
#define TXQ 1
#define CTRLQ 2
#define BUF_GPA 0x20000ULL /* buffers: 4 KiB apart */
#define ETH_TEST 0x88b5    /* IEEE local experimental ethertype */
#define TAP "tnt0"
#define FEATURES                                                      \
    (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF | \
     VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_GUEST_ANNOUNCE)

static const uint8_t test_mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01};

struct fixture {
    uint8_t *mem;
    struct guest_ram ram;
    struct virtio_net net;
    int pkt; /* packet socket on the TAP interface: the network side */
    uint16_t avail[3], used_seen[3], next_desc[3];
};

static uint64_t desc_gpa(unsigned q)
{
    return 0x1000ULL * (1 + 3 * q);
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    virtio_mmio_ops.read(&f->net.mmio, off, &v, 4);
    return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(&f->net.mmio, off, &v, 4);
}

static void set_up(const char *ifname)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
}

static int packet_socket(const char *ifname)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(ifname)};
    if (s < 0 || bind(s, (struct sockaddr *)&sll, sizeof(sll)))
        return -1;
    return s;
}

static void queue_init(struct fixture *f, unsigned q)
{
    wr(f, QUEUE_SEL, q);
    wr(f, QUEUE_NUM, QSIZE);
    wr(f, QUEUE_DESC_LOW, (uint32_t)desc_gpa(q));
    wr(f, QUEUE_DRIVER_LOW, (uint32_t)desc_gpa(q) + 0x1000);
    wr(f, QUEUE_DEVICE_LOW, (uint32_t)desc_gpa(q) + 0x2000);
    wr(f, QUEUE_READY, 1);
    assert_int_equal(rd(f, QUEUE_READY), 1);
    f->avail[q] = f->used_seen[q] = f->next_desc[q] = 0;
}

static void driver_init(struct fixture *f, uint64_t features)
{
    memset(f->mem, 0, 0x20000);
    wr(f, STATUS, 0);
    wr(f, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(f, DRIVER_FEATURES_SEL, 0);
    wr(f, DRIVER_FEATURES, (uint32_t)features);
    wr(f, DRIVER_FEATURES_SEL, 1);
    wr(f, DRIVER_FEATURES, (uint32_t)(features >> 32));
    uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                  VIRTIO_STATUS_FEATURES_OK;
    wr(f, STATUS, st);
    assert_int_equal(rd(f, STATUS), st);
    for (unsigned q = 0; q < 3; q++)
        queue_init(f, q);
    wr(f, STATUS, st | VIRTIO_STATUS_DRIVER_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = {""};
    f->mem = aligned_alloc(GUEST_PAGE_SIZE, RAM_SIZE);
    memset(f->mem, 0, RAM_SIZE);
    if (guest_ram_init(&f->ram, f->mem, RAM_SIZE) ||
        virtio_net_open(&f->net, 0, TAP, test_mac, "unit", &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    struct irq_line irq = {NULL, NULL, 16, 0};
    if (virtio_net_attach(&f->net, 0xd0008000ULL, &f->ram, irq, &e)) {
        print_error("setup: %s\n", e.msg);
        return -1;
    }
    set_up(TAP);
    f->pkt = packet_socket(TAP);
    assert_true(f->pkt >= 0);
    driver_init(f, FEATURES);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_net_release(&f->net);
    close(f->pkt);
    guest_ram_release(&f->ram);
    free(f->mem);
    free(f);
    return 0;
}

static void put_desc(struct fixture *f, unsigned q, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    uint8_t *d = f->mem + desc_gpa(q) + 16 * (uint64_t)i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void offer(struct fixture *f, unsigned q, uint16_t head)
{
    uint8_t *avail = f->mem + desc_gpa(q) + 0x1000;
    memcpy(avail + 4 + 2 * (f->avail[q] % QSIZE), &head, 2);
    f->avail[q]++;
    __atomic_store_n((uint16_t *)(avail + 2), f->avail[q], __ATOMIC_RELEASE);
}

/* One-descriptor buffer on queue q; returns its descriptor index. */
static uint16_t post(struct fixture *f, unsigned q, uint64_t gpa, uint32_t len,
                     bool writable)
{
    uint16_t i = f->next_desc[q]++ % QSIZE;
    put_desc(f, q, i, gpa, len, writable ? VIRTQ_DESC_F_WRITE : 0, 0);
    offer(f, q, i);
    return i;
}

static uint16_t used_idx(struct fixture *f, unsigned q)
{
    return __atomic_load_n((uint16_t *)(f->mem + desc_gpa(q) + 0x2002), __ATOMIC_ACQUIRE);
}

/* Waits up to 2 s for the next used element of queue q. */
static bool next_used(struct fixture *f, unsigned q, uint32_t *id, uint32_t *len)
{
    for (int i = 0; i < 2000 && used_idx(f, q) == f->used_seen[q]; i++)
        usleep(1000);
    if (used_idx(f, q) == f->used_seen[q])
        return false;
    uint8_t *el = f->mem + desc_gpa(q) + 0x2004 + 8 * (f->used_seen[q]++ % QSIZE);
    memcpy(id, el, 4);
    memcpy(len, el + 4, 4);
    return true;
}

static bool needs_reset_within(struct fixture *f, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET)
            return true;
        usleep(1000);
    }
    return false;
}

/* A test frame from the network side: broadcast, ETH_TEST, payload bytes i. */
static void inject(struct fixture *f, uint32_t payload)
{
    uint8_t frame[2048];
    memset(frame, 0xff, 6);
    memcpy(frame + 6, "\x02\x00\x00\x00\x00\x09", 6);
    frame[12] = ETH_TEST >> 8;
    frame[13] = ETH_TEST & 0xff;
    for (uint32_t i = 0; i < payload; i++)
        frame[14 + i] = (uint8_t)i;
    assert_int_equal(send(f->pkt, frame, 14 + payload, 0), (ssize_t)(14 + payload));
}

/* Next frame of `type` the TAP interface received (from the device), or -1. */
static ssize_t catch_frame(struct fixture *f, uint16_t type, uint8_t *buf, size_t len,
                           int ms)
{
    struct pollfd p = {f->pkt, POLLIN, 0};
    while (poll(&p, 1, ms) == 1) {
        ssize_t n = recv(f->pkt, buf, len, 0);
        if (n >= 14 && (buf[12] << 8 | buf[13]) == type)
            return n;
    }
    return -1;
}

/* Receives frames into buffers of `size` until one of ETH_TEST, skipping
 * what the kernel sends on its own; returns the used length, the first
 * buffer's index in *first and how many buffers it took in *nbuf. */
static uint32_t receive_test_frame(struct fixture *f, uint32_t *first, uint16_t *nbuf)
{
    uint32_t id, len;
    for (;;) {
        assert_true(next_used(f, RXQ, &id, &len));
        uint8_t *b = f->mem + BUF_GPA + 0x1000ULL * id;
        memcpy(nbuf, b + 10, 2);
        if (len >= NET_HDR_LEN + 14 &&
            (b[NET_HDR_LEN + 12] << 8 | b[NET_HDR_LEN + 13]) == ETH_TEST) {
            *first = id;
            return len;
        }
        for (uint16_t k = 1; k < *nbuf; k++)
            assert_true(next_used(f, RXQ, &id, &len));
    }
}

/* ---- tests ---- */

static void config_space(void **state)
{
    struct fixture *f = *state;
    uint8_t cfg[8];
    for (unsigned i = 0; i < 8; i++)
        virtio_mmio_ops.read(&f->net.mmio, CONFIG + i, cfg + i, 1);
    assert_memory_equal(cfg, test_mac, 6);
    assert_int_equal(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
    assert_int_equal(rd(f, 0x008), VIRTIO_ID_NET);
}

static void transmit(void **state)
{
    struct fixture *f = *state;
    struct virtio_net_stats st;
    virtio_net_get_stats(&f->net, &st);
    uint64_t before = st.tx_packets;
    uint8_t *b = f->mem + BUF_GPA;
    memset(b, 0, NET_HDR_LEN);
    memset(b + NET_HDR_LEN, 0xff, 6);
    memcpy(b + NET_HDR_LEN + 6, test_mac, 6);
    b[NET_HDR_LEN + 12] = ETH_TEST >> 8;
    b[NET_HDR_LEN + 13] = ETH_TEST & 0xff;
    memcpy(b + NET_HDR_LEN + 14, "tern transmit test", 18);
    post(f, TXQ, BUF_GPA, NET_HDR_LEN + 60, false);
    wr(f, QUEUE_NOTIFY, TXQ);
    uint8_t got[2048];
    assert_int_equal(catch_frame(f, ETH_TEST, got, sizeof(got), 2000), 60);
    assert_memory_equal(got, b + NET_HDR_LEN, 60);
    uint32_t id, len;
    assert_true(next_used(f, TXQ, &id, &len));
    assert_int_equal(id, 0);
    virtio_net_get_stats(&f->net, &st);
    assert_int_equal(st.tx_packets, before + 1);
}

/* A frame lands in the buffer, num_buffers 1, and its page is dirty. */
static void receive_marks_dirty(void **state)
{
    struct fixture *f = *state;
    uint64_t scratch[RAM_SIZE / GUEST_PAGE_SIZE / 64] = {0};
    guest_ram_collect_dirty(&f->ram, 0, RAM_SIZE / GUEST_PAGE_SIZE / 64, scratch);
    for (unsigned i = 0; i < QSIZE; i++)
        post(f, RXQ, BUF_GPA + 0x1000ULL * i, 2048, true);
    wr(f, QUEUE_NOTIFY, RXQ);
    inject(f, 100);
    uint32_t first;
    uint16_t nbuf;
    uint32_t len = receive_test_frame(f, &first, &nbuf);
    assert_int_equal(len, NET_HDR_LEN + 114);
    assert_int_equal(nbuf, 1);
    uint8_t *b = f->mem + BUF_GPA + 0x1000ULL * first;
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(b[NET_HDR_LEN + 14 + i], (uint8_t)i);
    uint64_t dirty[RAM_SIZE / GUEST_PAGE_SIZE / 64] = {0};
    guest_ram_collect_dirty(&f->ram, 0, RAM_SIZE / GUEST_PAGE_SIZE / 64, dirty);
    uint64_t page = (BUF_GPA + 0x1000ULL * first) / GUEST_PAGE_SIZE;
    assert_true(dirty[page / 64] & (1ULL << (page % 64)));
    uint64_t used_page = (desc_gpa(RXQ) + 0x2000) / GUEST_PAGE_SIZE;
    assert_true(dirty[used_page / 64] & (1ULL << (used_page % 64)));
}

/* Mergeable buffers: a 1200-byte frame over 512-byte buffers takes three. */
static void receive_mergeable(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < QSIZE; i++)
        post(f, RXQ, BUF_GPA + 0x1000ULL * i, 512, true);
    wr(f, QUEUE_NOTIFY, RXQ);
    inject(f, 1200);
    uint32_t first, id, len2, len3;
    uint16_t nbuf;
    uint32_t len = receive_test_frame(f, &first, &nbuf);
    assert_int_equal(nbuf, 3);
    assert_int_equal(len, 512);
    assert_true(next_used(f, RXQ, &id, &len2));
    assert_true(next_used(f, RXQ, &id, &len3));
    assert_int_equal(len + len2 + len3, NET_HDR_LEN + 1214);
    uint8_t *last = f->mem + BUF_GPA + 0x1000ULL * id;
    assert_int_equal(last[len3 - 1], (uint8_t)(1199));
}

/* Paused, the device writes nothing into guest RAM; resumed, the frame
 * that waited arrives. */
static void pause_holds_receive(void **state)
{
    struct fixture *f = *state;
    virtio_net_pause(&f->net);
    for (unsigned i = 0; i < QSIZE; i++)
        post(f, RXQ, BUF_GPA + 0x1000ULL * i, 2048, true);
    wr(f, QUEUE_NOTIFY, RXQ);
    inject(f, 64);
    usleep(200000);
    assert_int_equal(used_idx(f, RXQ), 0);
    virtio_net_resume(&f->net);
    uint32_t first;
    uint16_t nbuf;
    assert_int_equal(receive_test_frame(f, &first, &nbuf), NET_HDR_LEN + 78);
}

/* A notify that KVM delivers (an ioeventfd on virtio_net_kick_fd) never
 * reaches the device's notify hook: a frame that found no receive buffer
 * must still go once buffers come with only the eventfd written. */
static void kick_fd_notifies(void **state)
{
    struct fixture *f = *state;
    int kick = virtio_net_kick_fd(&f->net, RXQ);
    uint64_t one = 1;
    assert_int_equal(virtio_net_kick_fd(&f->net, 2), -1);
    assert_int_equal(write(kick, &one, 8), 8); /* the thread sees the driver ready */
    usleep(50000);
    inject(f, 64);
    usleep(100000); /* read, and no buffer for it */
    pthread_mutex_lock(&f->net.mmio.lock);
    bool waiting = f->net.rx_waits_for_buffers;
    pthread_mutex_unlock(&f->net.mmio.lock);
    assert_true(waiting);
    for (unsigned i = 0; i < QSIZE; i++)
        post(f, RXQ, BUF_GPA + 0x1000ULL * i, 2048, true);
    assert_int_equal(write(kick, &one, 8), 8);
    uint32_t first;
    uint16_t nbuf;
    assert_int_equal(receive_test_frame(f, &first, &nbuf), NET_HDR_LEN + 78);
}

static void malformed(struct fixture *f, unsigned q, void (*build)(struct fixture *))
{
    build(f);
    wr(f, QUEUE_NOTIFY, q);
    if (q == RXQ)
        inject(f, 64);
    assert_true(needs_reset_within(f, 2000));
    /* the device stopped, not the thread: after a reset it works again */
    driver_init(f, FEATURES);
    assert_false(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    transmit((void **)&f);
}

static void loop_chain(struct fixture *f)
{
    put_desc(f, TXQ, 0, BUF_GPA, 64, VIRTQ_DESC_F_NEXT, 1);
    put_desc(f, TXQ, 1, BUF_GPA, 64, VIRTQ_DESC_F_NEXT, 0);
    offer(f, TXQ, 0);
}

static void outside_ram(struct fixture *f)
{
    put_desc(f, TXQ, 0, RAM_SIZE - 16, 64, 0, 0);
    offer(f, TXQ, 0);
}

static void huge_length(struct fixture *f)
{
    put_desc(f, TXQ, 0, BUF_GPA, 0xffffffffu, 0, 0);
    offer(f, TXQ, 0);
}

static void tx_writable(struct fixture *f)
{
    post(f, TXQ, BUF_GPA, 64, true);
}

static void rx_readable(struct fixture *f)
{
    post(f, RXQ, BUF_GPA, 2048, false);
}

static void bad_head_index(struct fixture *f)
{
    offer(f, TXQ, QSIZE + 3);
}

static void malformed_descriptors(void **state)
{
    struct fixture *f = *state;
    malformed(f, TXQ, loop_chain);
    malformed(f, TXQ, outside_ram);
    malformed(f, TXQ, huge_length);
    malformed(f, TXQ, tx_writable);
    malformed(f, TXQ, bad_head_index);
    malformed(f, RXQ, rx_readable);
}

/* RARPs at once and on a backoff; the ANNOUNCE bit until the guest acks. */
static void announce(void **state)
{
    struct fixture *f = *state;
    virtio_net_announce(&f->net);
    uint8_t cfg[2];
    virtio_mmio_ops.read(&f->net.mmio, CONFIG + 6, cfg, 2);
    assert_true(cfg[0] & VIRTIO_NET_S_ANNOUNCE);
    assert_true(rd(f, INTERRUPT_STATUS) & 2);
    uint8_t got[128];
    unsigned rarps = 0;
    while (catch_frame(f, 0x8035, got, sizeof(got), 400) > 0) {
        assert_memory_equal(got + 6, test_mac, 6);
        assert_memory_equal(got + 14 + 8, test_mac, 6);
        rarps++;
    }
    assert_int_equal(rarps, VIRTIO_NET_ANNOUNCE_ROUNDS);
    /* the guest's acknowledgement on the control queue */
    uint8_t *cmd = f->mem + BUF_GPA;
    cmd[0] = 3;
    cmd[1] = 0;
    cmd[16] = 0xff;
    put_desc(f, CTRLQ, 0, BUF_GPA, 2, VIRTQ_DESC_F_NEXT, 1);
    put_desc(f, CTRLQ, 1, BUF_GPA + 16, 1, VIRTQ_DESC_F_WRITE, 0);
    offer(f, CTRLQ, 0);
    wr(f, QUEUE_NOTIFY, CTRLQ);
    assert_int_equal(cmd[16], 0);
    virtio_mmio_ops.read(&f->net.mmio, CONFIG + 6, cfg, 2);
    assert_false(cfg[0] & VIRTIO_NET_S_ANNOUNCE);
}

/* A destination at the commit: frames that reached its TAP while the VM
 * still ran on the source are dropped, not delivered (the source may have
 * answered them), and the announce goes out at once. */
static void post_load_drops_early_frames(void **state)
{
    struct fixture *f = *state;
    virtio_net_pause(&f->net); /* an incoming VM is paused until the commit */
    for (unsigned i = 0; i < QSIZE; i++)
        post(f, RXQ, BUF_GPA + 0x1000ULL * i, 2048, true);
    wr(f, QUEUE_NOTIFY, RXQ);
    for (int i = 0; i < 3; i++)
        inject(f, 64);
    usleep(100000);
    struct err e = {""};
    assert_int_equal(virtio_net_state_ops.post_load(&f->net, &e), 0);
    virtio_net_resume(&f->net);
    uint8_t got[128];
    assert_true(catch_frame(f, 0x8035, got, sizeof(got), 1000) > 0);
    usleep(200000);
    struct virtio_net_stats st;
    virtio_net_get_stats(&f->net, &st);
    assert_true(st.rx_flushed >= 3);
    /* nothing of ETH_TEST reached the guest; a frame sent now does */
    for (uint16_t i = 0; i < used_idx(f, RXQ); i++) {
        uint8_t *b = f->mem + BUF_GPA + 0x1000ULL * i;
        assert_false((b[NET_HDR_LEN + 12] << 8 | b[NET_HDR_LEN + 13]) == ETH_TEST);
    }
    inject(f, 64);
    uint32_t first;
    uint16_t nbuf;
    assert_int_equal(receive_test_frame(f, &first, &nbuf), NET_HDR_LEN + 78);
}

/* The TAP is deleted under the device: link down, frames dropped, the
 * device and its thread go on. */
static void tap_vanishes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(system("ip link del " TAP), 0);
    post(f, TXQ, BUF_GPA, NET_HDR_LEN + 60, false);
    wr(f, QUEUE_NOTIFY, TXQ);
    uint32_t id, len;
    assert_true(next_used(f, TXQ, &id, &len));
    struct virtio_net_stats st;
    virtio_net_get_stats(&f->net, &st);
    assert_int_equal(st.tx_dropped, 1);
    uint8_t cfg[2];
    virtio_mmio_ops.read(&f->net.mmio, CONFIG + 6, cfg, 2);
    assert_false(cfg[0] & VIRTIO_NET_S_LINK_UP);
    assert_false(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

/* Save on one device, load on another: the MAC travels; a MAC given on
 * the destination that differs, a truncated or corrupt state are refused. */
static void save_load(void **state)
{
    struct fixture *f = *state;
    struct virtio_net *dst = calloc(1, sizeof(*dst));
    struct err e = {""};
    assert_int_equal(virtio_net_open(dst, 0, "tnt1", NULL, "other", &e), 0);
    struct irq_line irq = {NULL, NULL, 16, 0};
    assert_int_equal(virtio_net_attach(dst, 0xd0008000ULL, &f->ram, irq, &e), 0);
    struct buf b;
    buf_init(&b);
    assert_int_equal(virtio_net_state_ops.save(&f->net, &b, &e), 0);
    struct reader r;
    for (size_t cut = 0; cut < b.len; cut += 7) {
        reader_init(&r, b.data, cut);
        assert_int_not_equal(virtio_net_state_ops.load(dst, &r, 1, &e), 0);
    }
    b.data[0] |= 1; /* multicast */
    reader_init(&r, b.data, b.len);
    assert_int_not_equal(virtio_net_state_ops.load(dst, &r, 1, &e), 0);
    b.data[0] &= (uint8_t)~1;
    reader_init(&r, b.data, b.len);
    assert_int_equal(virtio_net_state_ops.load(dst, &r, 1, &e), 0);
    assert_memory_equal(dst->mac, test_mac, 6);
    assert_int_equal(dst->mmio.regs.driver_features, FEATURES);
    dst->mac_given = true;
    dst->mac[5] ^= 1;
    reader_init(&r, b.data, b.len);
    assert_int_not_equal(virtio_net_state_ops.load(dst, &r, 1, &e), 0);
    assert_non_null(strstr(e.msg, "source mac 52:54:00:aa:bb:01"));
    buf_release(&b);
    virtio_net_release(dst);
    free(dst);
}

static void mac_text(void **state)
{
    (void)state;
    uint8_t mac[6];
    char text[18];
    assert_int_equal(virtio_net_parse_mac("52:54:00:AB:cd:0f", mac), 0);
    virtio_net_format_mac(mac, text);
    assert_string_equal(text, "52:54:00:ab:cd:0f");
    const char *bad[] = {"",
                         "52:54:00:ab:cd",
                         "52:54:00:ab:cd:0f:",
                         "01:00:5e:00:00:01",
                         "00:00:00:00:00:00",
                         "52-54-00-ab-cd-0f",
                         "52:54:00:ab:cd:0g"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(virtio_net_parse_mac(bad[i], mac), -EINVAL);
}

static void open_errors(void **state)
{
    (void)state;
    struct virtio_net *n = calloc(1, sizeof(*n));
    struct err e = {""};
    assert_int_equal(virtio_net_open(n, 0, "bad/name", NULL, "x", &e), -EINVAL);
    assert_non_null(strstr(e.msg, "tap 'bad/name'"));
    virtio_net_release(n);
    assert_int_equal(virtio_net_open(n, 0, "a-name-far-too-long", NULL, "x", &e), -EINVAL);
    virtio_net_release(n);
    free(n);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the device's warnings are expected here */
    /* a namespace of our own: the TAPs made here are nobody else's */
    if (unshare(CLONE_NEWNET)) {
        printf("not ok - test_virtio_net: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return 1;
    }
    int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
    if (fd >= 0) {
        /* no router solicitations from the kernel on the test TAPs */
        if (write(fd, "1", 1) < 0)
            perror("disable_ipv6");
        close(fd);
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(config_space),
        T(transmit),
        T(receive_marks_dirty),
        T(receive_mergeable),
        T(pause_holds_receive),
        T(kick_fd_notifies),
        T(malformed_descriptors),
        T(announce),
        T(post_load_drops_early_frames),
        T(tap_vanishes),
        T(save_load),
        cmocka_unit_test(mac_text),
        cmocka_unit_test(open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
