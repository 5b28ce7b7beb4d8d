/* virtio-blk on a raw image file. Requests are served synchronously in the
 * vCPU thread that notified, so a paused VM has no request in flight. */
#ifndef TERN_DEVICES_VIRTIO_BLK_H
#define TERN_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2

struct virtio_blk {
    struct virtio_mmio mmio;
    int fd;
    char path[512];
    uint64_t capacity;      /* in 512-byte sectors */
    bool readonly;
    bool shared;
    uint64_t inflight;      /* requests taken from the ring and not yet used */
    uint64_t reads, writes, flushes, errors;
};

/* Opens and locks the image (exclusive unless readonly). */
int virtio_blk_open(struct virtio_blk *blk, const char *path, bool readonly,
                    bool shared, struct err *e);
void virtio_blk_attach(struct virtio_blk *blk, uint64_t base,
                       struct guest_ram *ram, struct irq_line irq);
void virtio_blk_release(struct virtio_blk *blk);

#endif
