/* virtio-mmio transport, version 2 ("modern") registers of virtio 1.x. */
#ifndef TERN_DEVICES_VIRTIO_MMIO_H
#define TERN_DEVICES_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/guest_ram.h"
#include "devices/bus.h"
#include "devices/virtqueue.h"

#define VIRTIO_MMIO_SIZE 0x1000
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050 /* register offset: the driver's notify */
#define VIRTIO_MMIO_MAX_QUEUES 4
#define VIRTIO_F_VERSION_1 (1ULL << 32)

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

struct virtio_mmio;

/* What a device type plugs into the transport. Called with the lock held. */
struct virtio_device_ops {
    const char *name;
    uint32_t device_id;
    unsigned nqueues;
    uint16_t queue_max;
    void (*notify)(struct virtio_mmio *dev, unsigned queue);
    void (*config_read)(struct virtio_mmio *dev, uint64_t off, void *data, unsigned size);
    void (*reset)(struct virtio_mmio *dev);
};

/* Migratable transport state. */
struct virtio_mmio_regs {
    uint32_t status;
    uint32_t device_features_sel, driver_features_sel;
    uint64_t driver_features;
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t config_generation;
    struct virtq queue[VIRTIO_MMIO_MAX_QUEUES];
};

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_device_ops *ops;
    uint64_t device_features;
    uint64_t base;
    struct guest_ram *ram;
    struct irq_line irq;
    struct virtio_mmio_regs regs;
    void *backend; /* the device type's own state */
};

void virtio_mmio_init(struct virtio_mmio *dev, const struct virtio_device_ops *ops,
                      uint64_t features, uint64_t base, struct guest_ram *ram,
                      struct irq_line irq, void *backend);
void virtio_mmio_release(struct virtio_mmio *dev);
/* Device side: a buffer was used; raises the interrupt unless suppressed. */
void virtio_mmio_signal_used(struct virtio_mmio *dev, unsigned queue);
/* Device side: the config space changed (generation up, config interrupt). */
void virtio_mmio_config_changed(struct virtio_mmio *dev);
/* Device side: the driver broke the rules; the device stops until reset. */
void virtio_mmio_fail(struct virtio_mmio *dev, const char *why);
/* Text for the kernel command line, e.g. "virtio_mmio.device=4K@0xd0000000:5". */
int virtio_mmio_cmdline(const struct virtio_mmio *dev, char *buf, unsigned len);
extern const struct bus_ops virtio_mmio_ops;
/* Transport part of a virtio device's migration section. Load checks every
 * queue against guest RAM (which arrives before device state). */
void virtio_mmio_save(struct virtio_mmio *dev, struct buf *out);
int virtio_mmio_load(struct virtio_mmio *dev, struct reader *in, struct err *e);
/* Re-asserts the interrupt line after a load. */
void virtio_mmio_post_load(struct virtio_mmio *dev);

#endif
