/* Unit tests for src/devices/virtio_blk.c and the virtio-mmio transport, driven
 * through the MMIO register interface the way a guest driver would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_blk.h"

/* virtio 1.x MMIO register offsets (spec 4.2.2) */
enum {
    MAGIC = 0x000,
    VERSION = 0x004,
    DEVICE_ID = 0x008,
    VENDOR_ID = 0x00c,
    DEVICE_FEATURES = 0x010,
    DEVICE_FEATURES_SEL = 0x014,
    DRIVER_FEATURES = 0x020,
    DRIVER_FEATURES_SEL = 0x024,
    QUEUE_SEL = 0x030,
    QUEUE_NUM_MAX = 0x034,
    QUEUE_NUM = 0x038,
    QUEUE_READY = 0x044,
    QUEUE_NOTIFY = 0x050,
    INTERRUPT_STATUS = 0x060,
    INTERRUPT_ACK = 0x064,
    STATUS = 0x070,
    QUEUE_DESC_LOW = 0x080,
    QUEUE_DESC_HIGH = 0x084,
    QUEUE_DRIVER_LOW = 0x090,
    QUEUE_DRIVER_HIGH = 0x094,
    QUEUE_DEVICE_LOW = 0x0a0,
    QUEUE_DEVICE_HIGH = 0x0a4,
    CONFIG_GENERATION = 0x0fc,
    CONFIG = 0x100,
};

#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_INDIRECT_DESC 28
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define RAM_SIZE (1ULL << 20)
#define IMAGE_SIZE (1ULL << 20)
#define SECTORS (IMAGE_SIZE / 512)
#define QSIZE 16
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA 0x3000ULL
#define HDR_GPA 0x10000ULL
#define DATA_GPA 0x20000ULL
#define STATUS_GPA 0x30000ULL
#define MMIO_BASE 0xd0000000ULL
#define GSI 5

struct irq_rec {
    int level;
    unsigned raises;
    unsigned gsi;
};

static void irq_set(void *ctx, unsigned gsi, int level)
{
    struct irq_rec *r = ctx;
    if (level && !r->level)
        r->raises++;
    r->level = level;
    r->gsi = gsi;
}

struct fixture {
    char path[64];
    int fd; /* test's own fd on the image */
    uint8_t *mem;
    struct guest_ram ram;
    struct irq_rec irq;
    struct virtio_blk blk;
    bool open;
    uint16_t avail_idx;
    uint16_t next_desc;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
    uint32_t v = 0xdeadbeef;
    virtio_mmio_ops.read(&f->blk.mmio, off, &v, 4);
    return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(&f->blk.mmio, off, &v, 4);
}

static int open_blk(struct fixture *f, bool readonly)
{
    struct err e = {""};
    int rc = virtio_blk_open(&f->blk, f->path, readonly, false, &e);
    if (rc)
        return rc;
    struct irq_line line = {irq_set, &f->irq, GSI, 0};
    virtio_blk_attach(&f->blk, MMIO_BASE, &f->ram, line);
    f->open = true;
    return 0;
}

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    snprintf(f->path, sizeof(f->path), "/tmp/tern-blk-XXXXXX");
    f->fd = mkstemp(f->path);
    if (f->fd < 0 || ftruncate(f->fd, IMAGE_SIZE))
        goto fail;
    f->mem = aligned_alloc(GUEST_PAGE_SIZE, RAM_SIZE);
    if (!f->mem || guest_ram_init(&f->ram, f->mem, RAM_SIZE))
        goto fail;
    memset(f->mem, 0, RAM_SIZE);
    return f;
fail:
    if (f->fd >= 0) {
        close(f->fd);
        unlink(f->path);
    }
    free(f->mem);
    free(f);
    return NULL;
}

static void fixture_free(struct fixture *f)
{
    if (f->open)
        virtio_blk_release(&f->blk);
    guest_ram_release(&f->ram);
    free(f->mem);
    close(f->fd);
    unlink(f->path);
    free(f);
}

static int setup_rw(void **state)
{
    struct fixture *f = fixture_new();
    if (!f || open_blk(f, false)) {
        if (f)
            fixture_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_ro(void **state)
{
    struct fixture *f = fixture_new();
    if (!f || open_blk(f, true)) {
        if (f)
            fixture_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

/* The driver side of virtio-mmio initialisation (spec 3.1.1, 4.2.3.2). */
static void driver_init(struct fixture *f, uint64_t features)
{
    wr(f, STATUS, 0);
    wr(f, STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(f, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(f, DRIVER_FEATURES_SEL, 0);
    wr(f, DRIVER_FEATURES, (uint32_t)features);
    wr(f, DRIVER_FEATURES_SEL, 1);
    wr(f, DRIVER_FEATURES, (uint32_t)(features >> 32));
    uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                  VIRTIO_STATUS_FEATURES_OK;
    wr(f, STATUS, st);
    assert_int_equal(rd(f, STATUS), st);
    wr(f, QUEUE_SEL, 0);
    assert_int_equal(rd(f, QUEUE_READY), 0);
    wr(f, QUEUE_NUM, QSIZE);
    wr(f, QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
    wr(f, QUEUE_DESC_HIGH, 0);
    wr(f, QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
    wr(f, QUEUE_DRIVER_HIGH, 0);
    wr(f, QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
    wr(f, QUEUE_DEVICE_HIGH, 0);
    wr(f, QUEUE_READY, 1);
    assert_int_equal(rd(f, QUEUE_READY), 1);
    wr(f, STATUS, st | VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(rd(f, STATUS), st | VIRTIO_STATUS_DRIVER_OK);
    f->avail_idx = 0;
    f->next_desc = 0;
}

static void driver_init_default(struct fixture *f)
{
    driver_init(f, VIRTIO_F_VERSION_1 | (1ULL << F_FLUSH) | (1ULL << F_BLK_SIZE));
}

/* ---- request building ---- */

struct seg {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

static void put_desc(struct fixture *f, uint16_t i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    uint8_t *d = f->mem + DESC_GPA + 16 * (uint64_t)i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void offer(struct fixture *f, uint16_t head)
{
    memcpy(f->mem + AVAIL_GPA + 4 + 2 * (f->avail_idx % QSIZE), &head, 2);
    f->avail_idx++;
    memcpy(f->mem + AVAIL_GPA + 2, &f->avail_idx, 2);
}

/* Builds a chain from consecutive descriptors, offers it, returns the head. */
static uint16_t submit(struct fixture *f, const struct seg *segs, unsigned n)
{
    uint16_t head = f->next_desc;
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = (uint16_t)((head + i) % QSIZE);
        uint16_t flags = (uint16_t)((segs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
        put_desc(f, idx, segs[i].gpa, segs[i].len, flags, (uint16_t)((idx + 1) % QSIZE));
    }
    f->next_desc = (uint16_t)((head + n) % QSIZE);
    offer(f, head);
    return head;
}

static void put_hdr(struct fixture *f, uint32_t type, uint64_t sector)
{
    uint32_t reserved = 0;
    memcpy(f->mem + HDR_GPA, &type, 4);
    memcpy(f->mem + HDR_GPA + 4, &reserved, 4);
    memcpy(f->mem + HDR_GPA + 8, &sector, 8);
}

static uint16_t used_idx(struct fixture *f)
{
    uint16_t v;
    memcpy(&v, f->mem + USED_GPA + 2, 2);
    return v;
}

static void used_elem(struct fixture *f, uint16_t slot, uint32_t *id, uint32_t *len)
{
    const uint8_t *p = f->mem + USED_GPA + 4 + 8 * (slot % QSIZE);
    memcpy(id, p, 4);
    memcpy(len, p + 4, 4);
}

static void notify(struct fixture *f)
{
    wr(f, QUEUE_NOTIFY, 0);
}

/* Standard 3-descriptor request; returns the status byte and checks the used
 * element. */
static uint8_t do_request(struct fixture *f, uint32_t type, uint64_t sector,
                          uint32_t data_len, bool data_writable, uint32_t want_used_len)
{
    put_hdr(f, type, sector);
    f->mem[STATUS_GPA] = 0xff;
    struct seg segs[3] = {
        {HDR_GPA, 16, false},
        {DATA_GPA, data_len, data_writable},
        {STATUS_GPA, 1, true},
    };
    uint16_t before = used_idx(f);
    uint16_t head = data_len ? submit(f, segs, 3)
                             : submit(f, (struct seg[]){segs[0], segs[2]}, 2);
    notify(f);
    assert_int_equal(used_idx(f), (uint16_t)(before + 1));
    uint32_t id, len;
    used_elem(f, before, &id, &len);
    assert_int_equal(id, head);
    assert_int_equal(len, want_used_len);
    assert_int_equal(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
    return f->mem[STATUS_GPA];
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* ---- tests ---- */

static void identity_registers(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, MAGIC), 0x74726976); /* "virt" */
    assert_int_equal(rd(f, VERSION), 2);
    assert_int_equal(rd(f, DEVICE_ID), VIRTIO_ID_BLOCK);
    assert_int_equal(rd(f, DEVICE_ID), 2);
    assert_int_not_equal(rd(f, VENDOR_ID), 0);
    wr(f, DEVICE_FEATURES_SEL, 0);
    uint32_t lo = rd(f, DEVICE_FEATURES);
    assert_true(lo & (1U << F_FLUSH));
    assert_true(lo & (1U << F_BLK_SIZE));
    assert_false(lo & (1U << F_RO));
    assert_false(lo & (1U << F_INDIRECT_DESC));
    wr(f, DEVICE_FEATURES_SEL, 1);
    uint32_t hi = rd(f, DEVICE_FEATURES);
    assert_int_equal(hi, 1); /* VERSION_1 = bit 32 only */
    wr(f, DEVICE_FEATURES_SEL, 2);
    assert_int_equal(rd(f, DEVICE_FEATURES), 0);
    assert_int_equal(rd(f, STATUS), 0);
    assert_int_equal(rd(f, INTERRUPT_STATUS), 0);
    assert_int_equal(rd(f, QUEUE_NUM_MAX), VIRTQ_MAX_SIZE);
    /* a queue that does not exist reports size 0 */
    wr(f, QUEUE_SEL, 1);
    assert_int_equal(rd(f, QUEUE_NUM_MAX), 0);
    wr(f, QUEUE_SEL, 0);
    /* unaligned or narrow register reads give zeros, not garbage */
    uint32_t v = 0xffffffff;
    virtio_mmio_ops.read(&f->blk.mmio, MAGIC + 1, &v, 4);
    assert_int_equal(v, 0);
    uint16_t v16 = 0xffff;
    virtio_mmio_ops.read(&f->blk.mmio, MAGIC, &v16, 2);
    assert_int_equal(v16, 0);
    /* the kernel command line fragment */
    char buf[80];
    virtio_mmio_cmdline(&f->blk.mmio, buf, sizeof(buf));
    assert_string_equal(buf, "virtio_mmio.device=4K@0xd0000000:5");
}

static void config_space(void **state)
{
    struct fixture *f = *state;
    uint64_t cap = 0;
    virtio_mmio_ops.read(&f->blk.mmio, CONFIG, &cap, 8);
    assert_int_equal(cap, SECTORS);
    assert_int_equal(f->blk.capacity, SECTORS);
    uint32_t lo = rd(f, CONFIG), hi = rd(f, CONFIG + 4);
    assert_int_equal(((uint64_t)hi << 32) | lo, SECTORS);
    assert_int_equal(rd(f, CONFIG + 20), 512); /* blk_size */
    /* past the end of config space: zeros, no overrun */
    assert_int_equal(rd(f, CONFIG + 24), 0);
    assert_int_equal(rd(f, CONFIG + 0xefc), 0);
    uint64_t big = 0x1234;
    virtio_mmio_ops.read(&f->blk.mmio, CONFIG + 20, &big, 8);
    assert_int_equal(big, 0);
    /* config writes are ignored */
    wr(f, CONFIG, 7);
    assert_int_equal(rd(f, CONFIG), (uint32_t)SECTORS);
}

static void readonly_feature(void **state)
{
    struct fixture *f = *state;
    wr(f, DEVICE_FEATURES_SEL, 0);
    assert_true(rd(f, DEVICE_FEATURES) & (1U << F_RO));
    assert_true(f->blk.readonly);
}

static void features_ok_needs_version_1(void **state)
{
    struct fixture *f = *state;
    uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
    wr(f, STATUS, st);
    wr(f, DRIVER_FEATURES_SEL, 0);
    wr(f, DRIVER_FEATURES, 1U << F_FLUSH);
    wr(f, DRIVER_FEATURES_SEL, 1);
    wr(f, DRIVER_FEATURES, 0); /* legacy driver */
    wr(f, STATUS, st | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(f, STATUS), st); /* FEATURES_OK did not stick */

    /* asking for a feature the device does not offer */
    wr(f, DRIVER_FEATURES_SEL, 1);
    wr(f, DRIVER_FEATURES, 1);
    wr(f, DRIVER_FEATURES_SEL, 0);
    wr(f, DRIVER_FEATURES, (1U << F_FLUSH) | (1U << F_INDIRECT_DESC));
    wr(f, STATUS, st | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(f, STATUS), st);

    /* a subset including VERSION_1 is accepted */
    wr(f, DRIVER_FEATURES, 1U << F_FLUSH);
    wr(f, STATUS, st | VIRTIO_STATUS_FEATURES_OK);
    assert_int_equal(rd(f, STATUS), st | VIRTIO_STATUS_FEATURES_OK);
    /* features are frozen after FEATURES_OK */
    wr(f, DRIVER_FEATURES, (1U << F_FLUSH) | (1U << F_INDIRECT_DESC));
    assert_int_equal(f->blk.mmio.regs.driver_features,
                     VIRTIO_F_VERSION_1 | (1ULL << F_FLUSH));
}

static void queue_setup_registers(void **state)
{
    struct fixture *f = *state;
    wr(f, QUEUE_SEL, 0);
    wr(f, QUEUE_NUM, 64);
    assert_int_equal(rd(f, QUEUE_NUM), 64);
    wr(f, QUEUE_DESC_LOW, 0x12345000);
    wr(f, QUEUE_DESC_HIGH, 0x1);
    wr(f, QUEUE_DRIVER_LOW, 0x6000);
    wr(f, QUEUE_DEVICE_LOW, 0x7000);
    assert_int_equal(rd(f, QUEUE_DESC_LOW), 0x12345000);
    assert_int_equal(rd(f, QUEUE_DESC_HIGH), 1);
    assert_int_equal(rd(f, QUEUE_DRIVER_LOW), 0x6000);
    assert_int_equal(rd(f, QUEUE_DEVICE_LOW), 0x7000);
    assert_int_equal(f->blk.mmio.regs.queue[0].desc_gpa, 0x112345000ULL);
    /* larger than QUEUE_NUM_MAX is dropped to 0 */
    wr(f, QUEUE_NUM, VIRTQ_MAX_SIZE * 2);
    assert_int_equal(rd(f, QUEUE_NUM), 0);

    /* the whole sequence, then registers are frozen while ready */
    driver_init_default(f);
    wr(f, QUEUE_NUM, 4);
    wr(f, QUEUE_DESC_LOW, 0x5000);
    assert_int_equal(rd(f, QUEUE_NUM), QSIZE);
    assert_int_equal(rd(f, QUEUE_DESC_LOW), DESC_GPA);
}

static void queue_ready_refused_outside_ram(void **state)
{
    struct fixture *f = *state;
    wr(f, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(f, QUEUE_SEL, 0);
    wr(f, QUEUE_NUM, QSIZE);
    wr(f, QUEUE_DESC_LOW, 0);
    wr(f, QUEUE_DESC_HIGH, 0x10); /* 64 GiB: not RAM */
    wr(f, QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
    wr(f, QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
    wr(f, QUEUE_READY, 1);
    assert_int_equal(rd(f, QUEUE_READY), 0);
    assert_true(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(f->irq.level, 1); /* config change interrupt */
    assert_true(rd(f, INTERRUPT_STATUS) & 2);
    /* non-power-of-two size likewise */
    wr(f, STATUS, 0);
    assert_int_equal(rd(f, STATUS), 0);
    assert_int_equal(f->irq.level, 0);
    wr(f, QUEUE_NUM, 3);
    wr(f, QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
    wr(f, QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
    wr(f, QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
    wr(f, QUEUE_READY, 1);
    assert_int_equal(rd(f, QUEUE_READY), 0);
    assert_true(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The section "virtio-blk" version 1 byte by byte, as docs/protocol.md
 * gives it, and a load of it saves the same bytes again. */
static void saved_state_layout(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    put_hdr(f, T_FLUSH, 0);
    assert_int_equal(do_request(f, T_FLUSH, 0, 0, false, 1), S_OK);
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(virtio_blk_state_ops.save(&f->blk, &b, &e), 0);
    const uint8_t *p = b.data;
    assert_int_equal(b.len, 8 + 1 + 4 * 3 + 8 + 4 * 3 + 4 + (2 + 1 + 8 * 3 + 2 + 2));
    assert_int_equal(le(p, 8), SECTORS);
    assert_int_equal(p[8], 0); /* readonly */
    p += 9;
    assert_int_equal(le(p, 4), rd(f, STATUS));
    assert_int_equal(le(p + 4, 4), 0); /* device_features_sel */
    assert_int_equal(le(p + 8, 4), 1); /* driver_features_sel */
    assert_int_equal(le(p + 12, 8),
                     VIRTIO_F_VERSION_1 | (1ULL << F_FLUSH) | (1ULL << F_BLK_SIZE));
    assert_int_equal(le(p + 20, 4), 0); /* queue_sel */
    assert_int_equal(le(p + 24, 4), 1); /* interrupt_status */
    assert_int_equal(le(p + 28, 4), rd(f, CONFIG_GENERATION));
    assert_int_equal(le(p + 32, 4), 1); /* queues */
    p += 36;
    assert_int_equal(le(p, 2), QSIZE);
    assert_int_equal(p[2], 1); /* ready */
    assert_int_equal(le(p + 3, 8), DESC_GPA);
    assert_int_equal(le(p + 11, 8), AVAIL_GPA);
    assert_int_equal(le(p + 19, 8), USED_GPA);
    assert_int_equal(le(p + 27, 2), 1); /* last_avail */
    assert_int_equal(le(p + 29, 2), 1); /* used_idx */

    struct reader r;
    reader_init(&r, b.data, b.len);
    assert_int_equal(virtio_blk_state_ops.load(&f->blk, &r, 1, &e), 0);
    struct buf again;
    buf_init(&again);
    assert_int_equal(virtio_blk_state_ops.save(&f->blk, &again, &e), 0);
    assert_int_equal(again.len, b.len);
    assert_memory_equal(again.data, b.data, b.len);
    /* one byte short: refused, the device keeps its state */
    reader_init(&r, b.data, b.len - 1);
    assert_int_not_equal(virtio_blk_state_ops.load(&f->blk, &r, 1, &e), 0);
    assert_int_equal(rd(f, QUEUE_READY), 1);
    buf_release(&again);
    buf_release(&b);
}

static void write_then_read(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    uint8_t pattern[512];
    fill_pattern(pattern, sizeof(pattern), 1);
    memcpy(f->mem + DATA_GPA, pattern, 512);

    assert_int_equal(do_request(f, T_OUT, 3, 512, false, 1), S_OK);
    uint8_t file[512];
    assert_int_equal(pread(f->fd, file, 512, 3 * 512), 512);
    assert_memory_equal(file, pattern, 512);
    /* neighbours untouched */
    uint8_t zero[512] = {0};
    assert_int_equal(pread(f->fd, file, 512, 2 * 512), 512);
    assert_memory_equal(file, zero, 512);
    assert_int_equal(pread(f->fd, file, 512, 4 * 512), 512);
    assert_memory_equal(file, zero, 512);
    assert_int_equal(f->blk.writes, 1);

    /* the interrupt was raised; ACK lowers it */
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(f->irq.gsi, GSI);
    assert_int_equal(rd(f, INTERRUPT_STATUS), 1);
    wr(f, INTERRUPT_ACK, 1);
    assert_int_equal(rd(f, INTERRUPT_STATUS), 0);
    assert_int_equal(f->irq.level, 0);

    /* read it back into guest RAM, with a clean dirty log first */
    memset(f->mem + DATA_GPA, 0, 512);
    uint64_t bits[4] = {0};
    guest_ram_collect_dirty(&f->ram, 0, 4, bits);
    memset(bits, 0, sizeof(bits));
    assert_int_equal(do_request(f, T_IN, 3, 512, true, 513), S_OK);
    assert_memory_equal(f->mem + DATA_GPA, pattern, 512);
    assert_int_equal(f->blk.reads, 1);
    guest_ram_collect_dirty(&f->ram, 0, 4, bits);
    uint64_t dpage = DATA_GPA / 4096, spage = STATUS_GPA / 4096, upage = USED_GPA / 4096;
    assert_true(bits[dpage / 64] >> (dpage % 64) & 1);
    assert_true(bits[spage / 64] >> (spage % 64) & 1);
    assert_true(bits[upage / 64] >> (upage % 64) & 1);
    /* the header page was only read */
    uint64_t hpage = HDR_GPA / 4096;
    assert_false(bits[hpage / 64] >> (hpage % 64) & 1);
    assert_int_equal(f->blk.inflight, 0);
}

/* Every guest write sets the bits of its 64 KiB blocks; reads set none. */
static void write_tracking(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    struct blk_dirty *d = &f->blk.dirty;
    assert_int_equal(d->shift, 16);
    assert_int_equal(d->nbits, IMAGE_SIZE >> 16);
    assert_int_equal(d->count, 0);
    assert_int_equal(do_request(f, T_IN, 0, 512, true, 513), S_OK);
    assert_int_equal(d->count, 0);
    /* sector 127 is the last of block 0, 128 the first of block 1: a
     * 1024-byte write there touches both */
    assert_int_equal(do_request(f, T_OUT, 127, 1024, false, 1), S_OK);
    assert_int_equal(d->count, 2);
    assert_int_equal(d->bits[0] & 3, 3);
    assert_int_equal(do_request(f, T_OUT, 128, 512, false, 1), S_OK);
    assert_int_equal(d->count, 2);
}

static int fail_target(void *ctx, const struct iovec *iov, int niov, uint64_t off,
                       uint64_t len)
{
    (void)ctx;
    (void)iov;
    (void)niov;
    (void)off;
    (void)len;
    return -EIO;
}

static uint64_t active_seen;
static int count_target(void *ctx, const struct iovec *iov, int niov, uint64_t off,
                        uint64_t len)
{
    (void)ctx;
    (void)iov;
    (void)niov;
    (void)off;
    active_seen += len;
    return 0;
}

/* Active mode: a write goes to the target too and marks nothing; a failing
 * target never fails the guest's write: active mode ends, the block stays
 * dirty, and active_error says why. */
static void active_mode(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    struct blk_dirty *d = &f->blk.dirty;
    d->active = count_target;
    active_seen = 0;
    assert_int_equal(do_request(f, T_OUT, 0, 1024, false, 1), S_OK);
    assert_int_equal(active_seen, 1024);
    assert_int_equal(d->count, 0);
    assert_int_equal(d->active_writes, 1);
    d->active = fail_target;
    assert_int_equal(do_request(f, T_OUT, 256, 512, false, 1), S_OK);
    assert_null(d->active);
    assert_int_equal(d->active_error, -EIO);
    assert_int_equal(d->count, 1);
    assert_int_equal(d->bits[0], 1ULL << 2);
    assert_int_equal(f->blk.errors, 0);
}

static void read_file_contents(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    uint8_t pattern[2048];
    fill_pattern(pattern, sizeof(pattern), 9);
    assert_int_equal(pwrite(f->fd, pattern, sizeof(pattern), (SECTORS - 4) * 512),
                     (ssize_t)sizeof(pattern));
    /* the last four sectors of the disk in one request */
    assert_int_equal(do_request(f, T_IN, SECTORS - 4, 2048, true, 2049), S_OK);
    assert_memory_equal(f->mem + DATA_GPA, pattern, sizeof(pattern));
}

static void split_segments(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    /* header split 8+8, data split 100+412 in scattered pages */
    put_hdr(f, T_OUT, 7);
    memcpy(f->mem + 0x40000, f->mem + HDR_GPA, 8);
    memcpy(f->mem + 0x41000, f->mem + HDR_GPA + 8, 8);
    uint8_t pattern[512];
    fill_pattern(pattern, sizeof(pattern), 3);
    memcpy(f->mem + 0x50000, pattern, 100);
    memcpy(f->mem + 0x52000, pattern + 100, 412);
    struct seg segs[] = {
        {0x40000, 8, false},   {0x41000, 8, false},   {0x50000, 100, false},
        {0x52000, 412, false}, {STATUS_GPA, 1, true},
    };
    f->mem[STATUS_GPA] = 0xff;
    submit(f, segs, 5);
    notify(f);
    assert_int_equal(f->mem[STATUS_GPA], S_OK);
    uint8_t file[512];
    assert_int_equal(pread(f->fd, file, 512, 7 * 512), 512);
    assert_memory_equal(file, pattern, 512);

    /* read back into data + status sharing one 513-byte descriptor */
    put_hdr(f, T_IN, 7);
    struct seg in[] = {{HDR_GPA, 16, false}, {0x60000, 513, true}};
    f->mem[0x60000 + 512] = 0xff;
    submit(f, in, 2);
    notify(f);
    assert_memory_equal(f->mem + 0x60000, pattern, 512);
    assert_int_equal(f->mem[0x60000 + 512], S_OK);
    uint32_t id, len;
    used_elem(f, 1, &id, &len);
    assert_int_equal(len, 513);
}

static void flush(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    assert_int_equal(do_request(f, T_FLUSH, 0, 0, false, 1), S_OK);
    assert_int_equal(f->blk.flushes, 1);
}

static void get_id(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    memset(f->mem + DATA_GPA, 0xee, 64);
    assert_int_equal(do_request(f, T_GET_ID, 0, 20, true, 21), S_OK);
    char *base = basename(f->path);
    size_t blen = strlen(base); /* "tern-blk-XXXXXX": 15 bytes */
    assert_true(blen < 20);
    assert_memory_equal(f->mem + DATA_GPA, base, blen);
    for (size_t i = blen; i < 20; i++)
        assert_int_equal(f->mem[DATA_GPA + i], 0); /* NUL padded */
    assert_int_equal(f->mem[DATA_GPA + 20], 0xee); /* nothing past 20 */

    /* a 10-byte buffer gets the first 10 bytes only */
    memset(f->mem + DATA_GPA, 0xee, 64);
    assert_int_equal(do_request(f, T_GET_ID, 0, 10, true, 11), S_OK);
    assert_memory_equal(f->mem + DATA_GPA, base, 10);
    assert_int_equal(f->mem[DATA_GPA + 10], 0xee);
}

static void out_of_range(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    assert_int_equal(do_request(f, T_OUT, SECTORS - 1, 512, false, 1), S_OK);
    assert_int_equal(do_request(f, T_OUT, SECTORS, 512, false, 1), S_IOERR);
    assert_int_equal(do_request(f, T_OUT, SECTORS - 1, 1024, false, 1), S_IOERR);
    assert_int_equal(do_request(f, T_IN, SECTORS, 512, true, 1), S_IOERR);
    assert_int_equal(do_request(f, T_IN, UINT64_MAX, 512, true, 1), S_IOERR);
    assert_int_equal(do_request(f, T_IN, UINT64_MAX / 512 + 1, 512, true, 1), S_IOERR);
    /* not a whole number of sectors */
    assert_int_equal(do_request(f, T_OUT, 0, 100, false, 1), S_IOERR);
    assert_int_equal(do_request(f, T_IN, 0, 511, true, 1), S_IOERR);
    assert_int_equal(f->blk.errors, 7);
    /* the file did not grow */
    assert_int_equal(lseek(f->fd, 0, SEEK_END), (off_t)IMAGE_SIZE);
}

static void unsupported_type(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    assert_int_equal(do_request(f, 99, 0, 512, false, 1), S_UNSUPP);
    assert_int_equal(do_request(f, 11 /* WRITE_ZEROES */, 0, 512, false, 1), S_UNSUPP);
    /* still works afterwards */
    assert_int_equal(do_request(f, T_FLUSH, 0, 0, false, 1), S_OK);
}

static void readonly_refuses_out(void **state)
{
    struct fixture *f = *state;
    driver_init(f, VIRTIO_F_VERSION_1 | (1ULL << F_RO));
    uint8_t pattern[512];
    fill_pattern(pattern, sizeof(pattern), 5);
    assert_int_equal(pwrite(f->fd, pattern, 512, 0), 512);
    memset(f->mem + DATA_GPA, 0x77, 512);
    assert_int_equal(do_request(f, T_OUT, 0, 512, false, 1), S_IOERR);
    uint8_t file[512];
    assert_int_equal(pread(f->fd, file, 512, 0), 512);
    assert_memory_equal(file, pattern, 512); /* unchanged */
    assert_int_equal(f->blk.writes, 0);
    /* reads still work */
    assert_int_equal(do_request(f, T_IN, 0, 512, true, 513), S_OK);
    assert_memory_equal(f->mem + DATA_GPA, pattern, 512);
}

static void expect_needs_reset(struct fixture *f, uint16_t used_before)
{
    assert_true(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(rd(f, INTERRUPT_STATUS) & 2);
    assert_int_equal(f->irq.level, 1);
    assert_int_equal(used_idx(f), used_before); /* nothing completed */
    assert_int_equal(f->blk.inflight, 0);
    /* the device stays stopped: a good request is not served */
    uint8_t st = f->mem[STATUS_GPA] = 0xff;
    put_hdr(f, T_FLUSH, 0);
    submit(f, (struct seg[]){{HDR_GPA, 16, false}, {STATUS_GPA, 1, true}}, 2);
    notify(f);
    assert_int_equal(used_idx(f), used_before);
    assert_int_equal(f->mem[STATUS_GPA], st);
    /* the driver cannot clear NEEDS_RESET except by resetting */
    wr(f, STATUS, rd(f, STATUS) & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET);
    assert_true(rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    /* reset */
    wr(f, STATUS, 0);
    assert_int_equal(rd(f, STATUS), 0);
    assert_int_equal(rd(f, INTERRUPT_STATUS), 0);
    assert_int_equal(f->irq.level, 0);
    wr(f, QUEUE_SEL, 0);
    assert_int_equal(rd(f, QUEUE_READY), 0);
    assert_int_equal(rd(f, QUEUE_NUM), 0);
    assert_int_equal(rd(f, QUEUE_DESC_LOW), 0);
    /* and it works again after a fresh initialisation */
    memset(f->mem + DESC_GPA, 0, 0x3000);
    driver_init_default(f);
    assert_int_equal(do_request(f, T_FLUSH, 0, 0, false, 1), S_OK);
}

static void malformed_no_status(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    put_hdr(f, T_OUT, 0);
    submit(f, (struct seg[]){{HDR_GPA, 16, false}, {DATA_GPA, 512, false}}, 2);
    notify(f);
    expect_needs_reset(f, 0);
}

static void malformed_loop(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    put_hdr(f, T_IN, 0);
    put_desc(f, 0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    put_desc(f, 1, DATA_GPA, 512, VIRTQ_DESC_F_NEXT, 0); /* 0 -> 1 -> 0 */
    offer(f, 0);
    f->next_desc = 2;
    notify(f);
    expect_needs_reset(f, 0);
}

static void malformed_short_header(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    put_hdr(f, T_OUT, 0);
    submit(f, (struct seg[]){{HDR_GPA, 8, false}, {STATUS_GPA, 1, true}}, 2);
    notify(f);
    expect_needs_reset(f, 0);
}

static void malformed_status_outside_ram(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    put_hdr(f, T_FLUSH, 0);
    submit(f, (struct seg[]){{HDR_GPA, 16, false}, {RAM_SIZE - 1, 2, true}}, 2);
    notify(f);
    expect_needs_reset(f, 0);
}

static void malformed_after_good(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    /* one good request, then a broken one in the same notify */
    put_hdr(f, T_FLUSH, 0);
    f->mem[STATUS_GPA] = 0xff;
    submit(f, (struct seg[]){{HDR_GPA, 16, false}, {STATUS_GPA, 1, true}}, 2);
    put_desc(f, 5, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 40); /* next >= size */
    offer(f, 5);
    notify(f);
    assert_int_equal(used_idx(f), 1);
    assert_int_equal(f->mem[STATUS_GPA], S_OK);
    expect_needs_reset(f, 1);
}

static void notify_before_driver_ok(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    wr(f, STATUS, 0);
    /* queue configured and ready, but DRIVER_OK not set */
    wr(f, STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(f, QUEUE_NUM, QSIZE);
    wr(f, QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
    wr(f, QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
    wr(f, QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
    wr(f, QUEUE_READY, 1);
    f->avail_idx = 0;
    put_hdr(f, T_FLUSH, 0);
    submit(f, (struct seg[]){{HDR_GPA, 16, false}, {STATUS_GPA, 1, true}}, 2);
    notify(f);
    assert_int_equal(used_idx(f), 0);
    wr(f, QUEUE_NOTIFY, 3); /* queue that does not exist: ignored */
    assert_int_equal(used_idx(f), 0);
}

static void interrupt_suppressed(void **state)
{
    struct fixture *f = *state;
    driver_init_default(f);
    uint16_t flags = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    memcpy(f->mem + AVAIL_GPA, &flags, 2);
    assert_int_equal(do_request(f, T_FLUSH, 0, 0, false, 1), S_OK);
    assert_int_equal(f->irq.level, 0);
    assert_int_equal(f->irq.raises, 0);
}

static void image_lock(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    assert_non_null(f);
    assert_int_equal(open_blk(f, false), 0);
    struct virtio_blk *other = calloc(1, sizeof(*other));
    assert_non_null(other);
    struct err e = {""};
    assert_int_equal(virtio_blk_open(other, f->path, false, false, &e), -EBUSY);
    assert_non_null(strstr(e.msg, "locked"));
    assert_int_equal(other->fd, -1);
    /* a reader cannot share with a writer either */
    e.msg[0] = '\0';
    assert_int_equal(virtio_blk_open(other, f->path, true, false, &e), -EBUSY);
    assert_non_null(strstr(e.msg, "locked"));
    /* once released, the image is free */
    virtio_blk_release(&f->blk);
    f->open = false;
    assert_int_equal(virtio_blk_open(other, f->path, false, false, &e), 0);
    virtio_blk_release(other);
    /* two readers share */
    struct virtio_blk *third = calloc(1, sizeof(*third));
    assert_non_null(third);
    assert_int_equal(virtio_blk_open(other, f->path, true, false, &e), 0);
    assert_int_equal(virtio_blk_open(third, f->path, true, false, &e), 0);
    e.msg[0] = '\0';
    assert_int_equal(open_blk(f, false), -EBUSY);
    virtio_blk_release(third);
    virtio_blk_release(other);
    free(third);
    free(other);
    fixture_free(f);
}

static void open_errors(void **state)
{
    (void)state;
    struct virtio_blk *blk = calloc(1, sizeof(*blk));
    assert_non_null(blk);
    struct err e = {""};
    assert_int_equal(virtio_blk_open(blk, "/nonexistent/tern/disk.img", false, false, &e),
                     -ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/tern/disk.img"));
    assert_int_equal(blk->fd, -1);
    e.msg[0] = '\0';
    assert_int_equal(virtio_blk_open(blk, "/tmp", true, false, &e) < 0, 1);
    assert_true(e.msg[0] != '\0');
    free(blk);
}

/* Random requests, many malformed: the device must never crash, never grow
 * the image, and either complete a request with a valid status or stop with
 * NEEDS_RESET. */
static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static void random_requests(void **state)
{
    struct fixture *f = *state;
    static const uint32_t types[] = {T_IN, T_OUT, T_FLUSH, T_GET_ID, 2, 99, UINT32_MAX};
    static const uint32_t lens[] = {0,  1,   8,   15,   16,   17,
                                    20, 512, 513, 1024, 4096, UINT32_MAX};
    unsigned served = 0, stopped = 0;
    driver_init_default(f);
    for (unsigned iter = 0; iter < 3000; iter++) {
        uint64_t sectors[] = {0,    1, SECTORS - 2, SECTORS - 1, SECTORS, rng() % SECTORS,
                              rng()};
        put_hdr(f, types[rng() % 7], sectors[rng() % 7]);
        struct seg segs[6];
        unsigned n = 1 + (unsigned)(rng() % 5);
        bool writable = false;
        for (unsigned i = 0; i < n; i++) {
            uint64_t r = rng() % 16;
            segs[i].gpa = i == 0 && r < 12 ? HDR_GPA
                          : r < 14         ? 0x40000 + (rng() % 0x40000)
                          : r == 14        ? RAM_SIZE - (rng() % 64)
                                           : rng();
            segs[i].len = rng() % 2 ? lens[rng() % 12] : (uint32_t)(rng() % 2048);
            /* mostly well ordered, sometimes not */
            if (rng() % 8 == 0)
                writable = !writable;
            else if (i == n - 1 || rng() % 3 == 0)
                writable = writable || i > 0;
            segs[i].writable = writable;
        }
        uint16_t before = used_idx(f);
        submit(f, segs, n);
        notify(f);
        assert_int_equal(f->blk.inflight, 0);
        if (rd(f, STATUS) & VIRTIO_STATUS_NEEDS_RESET) {
            stopped++;
            assert_int_equal(used_idx(f), before);
            wr(f, STATUS, 0);
            assert_int_equal(f->irq.level, 0);
            driver_init_default(f);
            memset(f->mem + USED_GPA, 0, 0x1000);
            memset(f->mem + AVAIL_GPA, 0, 0x1000);
            continue;
        }
        served++;
        assert_int_equal(used_idx(f), (uint16_t)(before + 1));
        const struct seg *last = &segs[n - 1];
        assert_true(last->writable && last->len > 0);
        uint8_t status = f->mem[last->gpa + last->len - 1];
        assert_true(status <= S_UNSUPP);
        uint32_t id, len;
        used_elem(f, before, &id, &len);
        uint64_t wtotal = 0;
        for (unsigned i = 0; i < n; i++)
            if (segs[i].writable)
                wtotal += segs[i].len;
        assert_true(len >= 1 && len <= wtotal);
        wr(f, INTERRUPT_ACK, 1);
    }
    assert_int_equal(lseek(f->fd, 0, SEEK_END), (off_t)IMAGE_SIZE);
    assert_true(served > 50);
    assert_true(stopped > 50);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the device's warnings are expected here */
#define RW(fn) cmocka_unit_test_setup_teardown(fn, setup_rw, teardown)
#define RO(fn) cmocka_unit_test_setup_teardown(fn, setup_ro, teardown)
    const struct CMUnitTest tests[] = {
        RW(identity_registers),
        RW(config_space),
        RO(readonly_feature),
        RW(features_ok_needs_version_1),
        RW(queue_setup_registers),
        RW(queue_ready_refused_outside_ram),
        RW(write_then_read),
        RW(write_tracking),
        RW(active_mode),
        RW(read_file_contents),
        RW(split_segments),
        RW(flush),
        RW(get_id),
        RW(out_of_range),
        RW(unsupported_type),
        RO(readonly_refuses_out),
        RW(malformed_no_status),
        RW(malformed_loop),
        RW(malformed_short_header),
        RW(malformed_status_outside_ram),
        RW(malformed_after_good),
        RW(notify_before_driver_ok),
        RW(interrupt_suppressed),
        RW(random_requests),
        RW(saved_state_layout),
        cmocka_unit_test(image_lock),
        cmocka_unit_test(open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
