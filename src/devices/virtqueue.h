/* Split virtqueue (virtio 1.x) walked with every guest value checked: the
 * guest owns the rings, so indexes, addresses, lengths and chains are hostile
 * until proven otherwise. */
#ifndef TERN_DEVICES_VIRTQUEUE_H
#define TERN_DEVICES_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/guest_ram.h"

#define VIRTQ_MAX_SIZE 256
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/* Migratable queue state: guest-set configuration plus our cursors. */
struct virtq {
    uint16_t num; /* size chosen by the driver, power of two */
    uint8_t ready;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail; /* next avail ring slot to consume */
    uint16_t used_idx;   /* next used ring slot to fill */
};

struct virtq_seg {
    uint64_t gpa;
    uint32_t len;
    bool writable;
};

struct virtq_chain {
    uint16_t head;
    uint16_t nseg;
    uint32_t readable_len, writable_len;
    struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

/* Checks num and the three ring areas against guest RAM. 0 or -EINVAL. */
int virtq_validate(const struct virtq *vq, const struct guest_ram *ram);
/* Takes the next available chain: 0 with *popped true (chain filled) or
 * false (nothing available), -EINVAL when the guest broke the rules
 * (out-of-range index or address, loop, readable after writable, indirect);
 * the message names the fault. */
int virtq_pop(struct virtq *vq, const struct guest_ram *ram, struct virtq_chain *chain,
              bool *popped, char *why, unsigned why_len);
/* Returns a chain to the driver with `written` bytes written into it. The
 * used ring write goes through guest_ram_write so the page is marked dirty. */
int virtq_push(struct virtq *vq, struct guest_ram *ram, uint16_t head, uint32_t written);
/* Driver asked not to be interrupted (avail flags bit 0). */
bool virtq_no_interrupt(const struct virtq *vq, const struct guest_ram *ram);

#endif
