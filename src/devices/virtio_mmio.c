#include "devices/virtio_mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

enum {
    REG_MAGIC = 0x000,
    REG_VERSION = 0x004,
    REG_DEVICE_ID = 0x008,
    REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010,
    REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020,
    REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM_MAX = 0x034,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = VIRTIO_MMIO_QUEUE_NOTIFY,
    REG_INTERRUPT_STATUS = 0x060,
    REG_INTERRUPT_ACK = 0x064,
    REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080,
    REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090,
    REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0,
    REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_CONFIG_GENERATION = 0x0fc,
    REG_CONFIG = 0x100,
};
#define VIRTIO_MMIO_MAGIC 0x74726976
#define VIRTIO_VENDOR_TERN 0x4e524554 /* "TERN" */
#define INT_USED 1
#define INT_CONFIG 2

void virtio_mmio_init(struct virtio_mmio *dev, const struct virtio_device_ops *ops,
                      uint64_t features, uint64_t base, struct guest_ram *ram,
                      struct irq_line irq, void *backend)
{
    memset(dev, 0, sizeof(*dev));
    pthread_mutex_init(&dev->lock, NULL);
    dev->ops = ops;
    dev->device_features = features | VIRTIO_F_VERSION_1;
    dev->base = base;
    dev->ram = ram;
    dev->irq = irq;
    dev->backend = backend;
}

void virtio_mmio_release(struct virtio_mmio *dev)
{
    pthread_mutex_destroy(&dev->lock);
}

static void virtio_mmio_update_irq(struct virtio_mmio *dev)
{
    irq_line_set(&dev->irq, dev->regs.interrupt_status != 0);
}

void virtio_mmio_signal_used(struct virtio_mmio *dev, unsigned queue)
{
    if (virtq_no_interrupt(&dev->regs.queue[queue], dev->ram))
        return;
    dev->regs.interrupt_status |= INT_USED;
    virtio_mmio_update_irq(dev);
}

void virtio_mmio_config_changed(struct virtio_mmio *dev)
{
    dev->regs.config_generation++;
    dev->regs.interrupt_status |= INT_CONFIG;
    virtio_mmio_update_irq(dev);
}

void virtio_mmio_fail(struct virtio_mmio *dev, const char *why)
{
    if (!(dev->regs.status & VIRTIO_STATUS_NEEDS_RESET))
        log_warn("virtio", "%s at 0x%llx: %s; device stopped until reset", dev->ops->name,
                 (unsigned long long)dev->base, why);
    dev->regs.status |= VIRTIO_STATUS_NEEDS_RESET;
    dev->regs.interrupt_status |= INT_CONFIG;
    virtio_mmio_update_irq(dev);
}

static void virtio_mmio_reset(struct virtio_mmio *dev)
{
    memset(&dev->regs, 0, sizeof(dev->regs));
    if (dev->ops->reset)
        dev->ops->reset(dev);
    virtio_mmio_update_irq(dev);
}

static struct virtq *selected_queue(struct virtio_mmio *dev)
{
    if (dev->regs.queue_sel >= dev->ops->nqueues)
        return NULL;
    return &dev->regs.queue[dev->regs.queue_sel];
}

static uint32_t read_queue_reg(struct virtio_mmio *dev, uint64_t off)
{
    struct virtq *q = selected_queue(dev);
    if (!q)
        return 0;
    switch (off) {
    case REG_QUEUE_NUM_MAX: return dev->ops->queue_max;
    case REG_QUEUE_NUM: return q->num;
    case REG_QUEUE_READY: return q->ready;
    case REG_QUEUE_DESC_LOW: return (uint32_t)q->desc_gpa;
    case REG_QUEUE_DESC_HIGH: return (uint32_t)(q->desc_gpa >> 32);
    case REG_QUEUE_DRIVER_LOW: return (uint32_t)q->avail_gpa;
    case REG_QUEUE_DRIVER_HIGH: return (uint32_t)(q->avail_gpa >> 32);
    case REG_QUEUE_DEVICE_LOW: return (uint32_t)q->used_gpa;
    case REG_QUEUE_DEVICE_HIGH: return (uint32_t)(q->used_gpa >> 32);
    default: return 0;
    }
}

static uint32_t read_reg(struct virtio_mmio *dev, uint64_t off)
{
    struct virtio_mmio_regs *r = &dev->regs;
    switch (off) {
    case REG_MAGIC: return VIRTIO_MMIO_MAGIC;
    case REG_VERSION: return 2;
    case REG_DEVICE_ID: return dev->ops->device_id;
    case REG_VENDOR_ID: return VIRTIO_VENDOR_TERN;
    case REG_DEVICE_FEATURES:
        return r->device_features_sel > 1
                   ? 0
                   : (uint32_t)(dev->device_features >> (32 * r->device_features_sel));
    case REG_INTERRUPT_STATUS: return r->interrupt_status;
    case REG_STATUS: return r->status;
    case REG_CONFIG_GENERATION: return r->config_generation;
    default: return read_queue_reg(dev, off);
    }
}

static void virtio_mmio_read(void *opaque, uint64_t off, void *data, unsigned size)
{
    struct virtio_mmio *dev = opaque;
    memset(data, 0, size);
    pthread_mutex_lock(&dev->lock);
    if (off >= REG_CONFIG) {
        if (dev->ops->config_read)
            dev->ops->config_read(dev, off - REG_CONFIG, data, size);
    } else if (size == 4 && !(off & 3)) {
        uint32_t v = read_reg(dev, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&dev->lock);
}

static void set_half(uint64_t *field, uint32_t v, bool high)
{
    if (high)
        *field = (*field & 0xffffffffULL) | ((uint64_t)v << 32);
    else
        *field = (*field & ~0xffffffffULL) | v;
}

/* Queue registers may only change while the queue is not ready. */
static void write_queue_reg(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
    struct virtq *q = selected_queue(dev);
    if (!q)
        return;
    if (off == REG_QUEUE_READY) {
        q->ready = v & 1;
        if (q->ready && virtq_validate(q, dev->ram)) {
            q->ready = 0;
            virtio_mmio_fail(dev, "queue rings outside guest ram or bad size");
        }
        return;
    }
    if (q->ready)
        return;
    switch (off) {
    case REG_QUEUE_NUM: q->num = (uint16_t)(v <= dev->ops->queue_max ? v : 0); break;
    case REG_QUEUE_DESC_LOW: set_half(&q->desc_gpa, v, false); break;
    case REG_QUEUE_DESC_HIGH: set_half(&q->desc_gpa, v, true); break;
    case REG_QUEUE_DRIVER_LOW: set_half(&q->avail_gpa, v, false); break;
    case REG_QUEUE_DRIVER_HIGH: set_half(&q->avail_gpa, v, true); break;
    case REG_QUEUE_DEVICE_LOW: set_half(&q->used_gpa, v, false); break;
    case REG_QUEUE_DEVICE_HIGH: set_half(&q->used_gpa, v, true); break;
    }
}

static void write_status(struct virtio_mmio *dev, uint32_t v)
{
    if (v == 0) {
        virtio_mmio_reset(dev);
        return;
    }
    /* FEATURES_OK sticks only if the driver asked for a subset we offer and
     * for VERSION_1: this transport has no legacy mode */
    if ((v & VIRTIO_STATUS_FEATURES_OK) &&
        ((dev->regs.driver_features & ~dev->device_features) ||
         !(dev->regs.driver_features & VIRTIO_F_VERSION_1)))
        v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    dev->regs.status = v | (dev->regs.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void write_reg(struct virtio_mmio *dev, uint64_t off, uint32_t v)
{
    struct virtio_mmio_regs *r = &dev->regs;
    switch (off) {
    case REG_DEVICE_FEATURES_SEL: r->device_features_sel = v; break;
    case REG_DRIVER_FEATURES_SEL: r->driver_features_sel = v; break;
    case REG_DRIVER_FEATURES:
        if (r->driver_features_sel <= 1 && !(r->status & VIRTIO_STATUS_FEATURES_OK))
            set_half(&r->driver_features, v, r->driver_features_sel == 1);
        break;
    case REG_QUEUE_SEL: r->queue_sel = v; break;
    case REG_QUEUE_NOTIFY:
        if (v < dev->ops->nqueues && (r->status & VIRTIO_STATUS_DRIVER_OK) &&
            !(r->status & VIRTIO_STATUS_NEEDS_RESET) && r->queue[v].ready)
            dev->ops->notify(dev, v);
        break;
    case REG_INTERRUPT_ACK:
        r->interrupt_status &= ~v;
        virtio_mmio_update_irq(dev);
        break;
    case REG_STATUS: write_status(dev, v); break;
    default: write_queue_reg(dev, off, v); break;
    }
}

static void virtio_mmio_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
    struct virtio_mmio *dev = opaque;
    if (off >= REG_CONFIG || size != 4 || (off & 3))
        return; /* config space of our devices is read-only */
    uint32_t v;
    memcpy(&v, data, 4);
    pthread_mutex_lock(&dev->lock);
    write_reg(dev, off, v);
    pthread_mutex_unlock(&dev->lock);
}

int virtio_mmio_cmdline(const struct virtio_mmio *dev, char *buf, unsigned len)
{
    return snprintf(buf, len, "virtio_mmio.device=4K@0x%llx:%u",
                    (unsigned long long)dev->base, dev->irq.gsi);
}

const struct bus_ops virtio_mmio_ops = {virtio_mmio_read, virtio_mmio_write};

/* The transport's part of a section (docs/protocol.md, virtio-blk): the
 * registers, the queue count, then each queue. */
static const struct buf_field regs_fields[] = {
    BUF_FIELD(struct virtio_mmio_regs, status),
    BUF_FIELD(struct virtio_mmio_regs, device_features_sel),
    BUF_FIELD(struct virtio_mmio_regs, driver_features_sel),
    BUF_FIELD(struct virtio_mmio_regs, driver_features),
    BUF_FIELD(struct virtio_mmio_regs, queue_sel),
    BUF_FIELD(struct virtio_mmio_regs, interrupt_status),
    BUF_FIELD(struct virtio_mmio_regs, config_generation),
};
static const struct buf_field queue_fields[] = {
    BUF_FIELD(struct virtq, num),      BUF_FIELD(struct virtq, ready),
    BUF_FIELD(struct virtq, desc_gpa), BUF_FIELD(struct virtq, avail_gpa),
    BUF_FIELD(struct virtq, used_gpa), BUF_FIELD(struct virtq, last_avail),
    BUF_FIELD(struct virtq, used_idx),
};

void virtio_mmio_save(struct virtio_mmio *dev, struct buf *out)
{
    pthread_mutex_lock(&dev->lock);
    buf_put_fields(out, &dev->regs, BUF_FIELDS(regs_fields));
    buf_put_u32(out, dev->ops->nqueues);
    for (unsigned i = 0; i < dev->ops->nqueues; i++)
        buf_put_fields(out, &dev->regs.queue[i], BUF_FIELDS(queue_fields));
    pthread_mutex_unlock(&dev->lock);
}

static int load_queue(struct virtio_mmio *dev, struct reader *in, struct virtq *q,
                      unsigned i, struct err *e)
{
    reader_fields(in, q, BUF_FIELDS(queue_fields));
    if (in->bad)
        return err_set(e, EINVAL, "%s: truncated queue %u", dev->ops->name, i);
    if (q->ready > 1 || q->num > dev->ops->queue_max ||
        (q->ready && virtq_validate(q, dev->ram)))
        return err_set(e, EINVAL, "%s: queue %u (size %u) does not fit guest ram",
                       dev->ops->name, i, q->num);
    return 0;
}

int virtio_mmio_load(struct virtio_mmio *dev, struct reader *in, struct err *e)
{
    struct virtio_mmio_regs r = {0};
    reader_fields(in, &r, BUF_FIELDS(regs_fields));
    uint32_t nqueues = reader_u32(in);
    if (in->bad || nqueues != dev->ops->nqueues)
        return err_set(e, EINVAL, "%s: %u queues, this device has %u", dev->ops->name,
                       nqueues, dev->ops->nqueues);
    if (r.driver_features & ~dev->device_features)
        return err_set(e, EINVAL, "%s: driver features 0x%llx not offered here",
                       dev->ops->name, (unsigned long long)r.driver_features);
    for (unsigned i = 0; i < nqueues; i++) {
        int rc = load_queue(dev, in, &r.queue[i], i, e);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&dev->lock);
    dev->regs = r;
    pthread_mutex_unlock(&dev->lock);
    return 0;
}

void virtio_mmio_post_load(struct virtio_mmio *dev)
{
    pthread_mutex_lock(&dev->lock);
    virtio_mmio_update_irq(dev);
    pthread_mutex_unlock(&dev->lock);
}
