/* Minimal modern virtio-blk over virtio-mmio (version 2), polled: one split
 * virtqueue, one request in flight, no interrupts.  Runs at CPL3 and
 * touches the MMIO registers directly (the pages are user-mapped). */
#include "guest.h"
#include "virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8

#define F_BLK_FLUSH (1u << 9)
#define F_VERSION_1_HI (1u << 0) /* feature bit 32 */

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1

#define QUEUE_SIZE 16
#define SECTORS_PER_BLOCK (PAGE_SIZE / 512)
#define REQUEST_TIMEOUT_NS (10 * NSEC_PER_SEC)

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[QUEUE_SIZE];
    uint16_t used_event;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct {
        uint32_t id;
        uint32_t len;
    } ring[QUEUE_SIZE];
    uint16_t avail_event;
};

struct blk_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct vblk {
    _Alignas(4096) struct vring_desc desc[QUEUE_SIZE];
    _Alignas(64) struct vring_avail avail;
    _Alignas(64) volatile struct vring_used used;
    _Alignas(64) struct blk_header header;
    volatile uint8_t status;
    uint64_t base;
    uint64_t capacity_bytes;
    uint32_t queue_size;
    uint16_t next_avail;
    uint16_t last_used;
    bool has_flush;
    bool in_flight;
    bool done_without_device;
    uint64_t submitted_ns;
};

static struct vblk device;

static uint32_t reg_read(const struct vblk *d, uint32_t reg)
{
    return *(const volatile uint32_t *)phys(d->base + reg);
}

static void reg_write(const struct vblk *d, uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)phys(d->base + reg) = v;
}

static void reg_write64(const struct vblk *d, uint32_t reg, uint64_t v)
{
    reg_write(d, reg, (uint32_t)v);
    reg_write(d, reg + 4, (uint32_t)(v >> 32));
}

static bool negotiate_features(struct vblk *d)
{
    reg_write(d, REG_DEV_FEAT_SEL, 1);
    if (!(reg_read(d, REG_DEV_FEATURES) & F_VERSION_1_HI))
        return false;
    reg_write(d, REG_DEV_FEAT_SEL, 0);
    d->has_flush = (reg_read(d, REG_DEV_FEATURES) & F_BLK_FLUSH) != 0;
    reg_write(d, REG_DRV_FEAT_SEL, 0);
    reg_write(d, REG_DRV_FEATURES, d->has_flush ? F_BLK_FLUSH : 0);
    reg_write(d, REG_DRV_FEAT_SEL, 1);
    reg_write(d, REG_DRV_FEATURES, F_VERSION_1_HI);
    reg_write(d, REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    return (reg_read(d, REG_STATUS) & STATUS_FEATURES_OK) != 0;
}

static bool setup_queue(struct vblk *d)
{
    reg_write(d, REG_QUEUE_SEL, 0);
    uint32_t max = reg_read(d, REG_QUEUE_NUM_MAX);
    if (max == 0)
        return false;
    d->queue_size = max < QUEUE_SIZE ? max : QUEUE_SIZE;
    d->avail.flags = AVAIL_F_NO_INTERRUPT;
    reg_write(d, REG_QUEUE_NUM, d->queue_size);
    reg_write64(d, REG_QUEUE_DESC, (uint64_t)d->desc);
    reg_write64(d, REG_QUEUE_DRIVER, (uint64_t)&d->avail);
    reg_write64(d, REG_QUEUE_DEVICE, (uint64_t)&d->used);
    reg_write(d, REG_QUEUE_READY, 1);
    return true;
}

static bool init_device(struct vblk *d)
{
    reg_write(d, REG_STATUS, 0);
    reg_write(d, REG_STATUS, STATUS_ACKNOWLEDGE);
    reg_write(d, REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    if (!negotiate_features(d) || !setup_queue(d))
        return false;
    reg_write(d, REG_STATUS,
              STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    uint64_t sectors = reg_read(d, REG_CONFIG) | (uint64_t)reg_read(d, REG_CONFIG + 4)
                                                     << 32;
    d->capacity_bytes = sectors * 512;
    return true;
}

/* First virtio-blk among the virtio_mmio.device= transports. */
struct vblk *vblk_find(void)
{
    for (uint32_t i = 0; i < opts.nvirtio; i++) {
        device.base = opts.virtio_base[i];
        if (reg_read(&device, REG_MAGIC) != VIRTIO_MAGIC ||
            reg_read(&device, REG_VERSION) != 2 ||
            reg_read(&device, REG_DEVICE_ID) != VIRTIO_ID_BLOCK)
            continue;
        if (init_device(&device))
            return &device;
        print("virtio-blk at 0x%lx: init failed", (unsigned long)device.base);
    }
    return NULL;
}

uint64_t vblk_capacity_bytes(struct vblk *d)
{
    return d->capacity_bytes;
}

static void set_desc(struct vblk *d, int i, const volatile void *addr, uint32_t len,
                     uint16_t flags)
{
    d->desc[i].addr = (uint64_t)addr;
    d->desc[i].len = len;
    d->desc[i].flags = flags;
    d->desc[i].next = (uint16_t)(i + 1);
}

/* Queue one request (header, optional 4 KiB buffer, status) and notify.
 * Only one request is in flight at a time; vblk_poll reports its end. */
bool vblk_submit(struct vblk *d, enum vblk_op op, uint64_t block, void *buf)
{
    static const uint32_t types[] = {VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH};
    uint32_t type = types[op];
    if (d->in_flight)
        return false;
    d->in_flight = true;
    d->submitted_ns = clock_ns();
    if (op == VBLK_FLUSH && !d->has_flush) {
        d->done_without_device = true;
        return true;
    }
    d->header.type = type;
    d->header.reserved = 0;
    d->header.sector = block * SECTORS_PER_BLOCK;
    d->status = 0xff;
    int n = 0;
    set_desc(d, n++, &d->header, sizeof(d->header), DESC_F_NEXT);
    if (op != VBLK_FLUSH)
        set_desc(d, n++, buf, PAGE_SIZE,
                 DESC_F_NEXT | (op == VBLK_READ ? DESC_F_WRITE : 0));
    set_desc(d, n++, &d->status, 1, DESC_F_WRITE);

    d->avail.ring[d->next_avail % d->queue_size] = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    d->avail.idx = ++d->next_avail;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    reg_write(d, REG_QUEUE_NOTIFY, 0);
    return true;
}

/* VBLK_PENDING, VBLK_DONE or VBLK_ERROR for the request in flight. */
enum vblk_result vblk_poll(struct vblk *d)
{
    if (!d->in_flight)
        return VBLK_ERROR;
    if (d->done_without_device) {
        d->done_without_device = d->in_flight = false;
        return VBLK_DONE;
    }
    if (d->used.idx == d->last_used) {
        if (clock_ns() - d->submitted_ns > REQUEST_TIMEOUT_NS)
            fatal("virtio-blk request timed out");
        return VBLK_PENDING;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    d->last_used++;
    d->in_flight = false;
    return d->status == 0 ? VBLK_DONE : VBLK_ERROR;
}

/* Blocking form, for the few places that can wait. */
bool vblk_sync(struct vblk *d, enum vblk_op op, uint64_t block, void *buf)
{
    enum vblk_result r;
    if (!vblk_submit(d, op, block, buf))
        return false;
    while ((r = vblk_poll(d)) == VBLK_PENDING)
        cpu_relax();
    return r == VBLK_DONE;
}
