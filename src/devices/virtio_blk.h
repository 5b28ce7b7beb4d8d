/* virtio-blk on a raw image file. Requests are served synchronously in the
 * vCPU thread that notified, so a paused VM has no request in flight. */
#ifndef TERN_DEVICES_VIRTIO_BLK_H
#define TERN_DEVICES_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/devstate.h"
#include "common/err.h"
#include "devices/blk_dirty.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_ID_BLOCK 2

struct virtio_blk {
    struct virtio_mmio mmio;
    int fd;
    char path[512];
    uint64_t capacity; /* in 512-byte sectors */
    bool readonly;
    bool shared;
    bool locked;
    uint64_t inflight; /* requests taken from the ring and not yet used */
    uint64_t reads, writes, flushes, errors;
    struct blk_dirty dirty; /* every guest write, for a mirror */
};

/* Opens and locks the image (exclusive unless readonly). */
int virtio_blk_open(struct virtio_blk *blk, const char *path, bool readonly, bool shared,
                    struct err *e);
/* As virtio_blk_open but for an incoming migration of a shared image: the
 * lock stays with the source until the commit. */
int virtio_blk_open_incoming(struct virtio_blk *blk, const char *path, bool readonly,
                             bool shared, struct err *e);
void virtio_blk_attach(struct virtio_blk *blk, uint64_t base, struct guest_ram *ram,
                       struct irq_line irq);
void virtio_blk_release(struct virtio_blk *blk);
/* Shared images: the source gives up its lock right before the commit, the
 * destination opens without one and takes it when it resumes. */
int virtio_blk_unlock(struct virtio_blk *blk);
/* Takes the lock given up by virtio_blk_unlock again (handover aborted). */
int virtio_blk_relock(struct virtio_blk *blk);
/* move-disk: makes fd (a locked image of the same size, kept equal by a
 * mirror in active mode, nothing dirty) the disk's image, between two
 * requests: writes wait on the bitmap's lock meanwhile, a read in flight
 * finishes on the old file (dup2 replaces the fd number atomically). The
 * old file's lock goes with it. fd stays the caller's to close; *ms the
 * time writes waited. */
int virtio_blk_switch(struct virtio_blk *blk, int fd, const char *path, bool shared,
                      double *ms, struct err *e);
/* Drains and flushes: nothing in flight, everything on stable storage. */
int virtio_blk_flush(struct virtio_blk *blk, struct err *e);
/* Section "virtio-blk" version 1: transport, queues, image size and flags. */
extern const struct devstate_ops virtio_blk_state_ops;

#endif
