#include "devices/virtqueue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static uint64_t desc_bytes(uint16_t num)
{
    return 16ULL * num;
}
static uint64_t avail_bytes(uint16_t num)
{
    return 6ULL + 2ULL * num;
}
static uint64_t used_bytes(uint16_t num)
{
    return 6ULL + 8ULL * num;
}

int virtq_validate(const struct virtq *vq, const struct guest_ram *ram)
{
    if (vq->num == 0 || vq->num > VIRTQ_MAX_SIZE || (vq->num & (vq->num - 1)))
        return -EINVAL;
    if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
        return -EINVAL;
    if (!guest_ram_ptr(ram, vq->desc_gpa, desc_bytes(vq->num)) ||
        !guest_ram_ptr(ram, vq->avail_gpa, avail_bytes(vq->num)) ||
        !guest_ram_ptr(ram, vq->used_gpa, used_bytes(vq->num)))
        return -EINVAL;
    return 0;
}

static int chain_fail(char *why, unsigned why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && why_len)
        vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static uint16_t load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Adds descriptor `d` to the chain after checking it. */
static int chain_add(struct virtq_chain *chain, const struct guest_ram *ram,
                     const struct virtq_desc *d, char *why, unsigned why_len)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    if (d->flags & VIRTQ_DESC_F_INDIRECT)
        return chain_fail(why, why_len, "indirect descriptor not negotiated");
    if (d->len && !guest_ram_ptr(ram, d->addr, d->len))
        return chain_fail(why, why_len, "descriptor 0x%llx+%u outside guest ram",
                          (unsigned long long)d->addr, d->len);
    /* by segment, not by writable_len: a zero-length writable descriptor
     * would otherwise let readable ones follow it */
    if (!writable && chain->nseg && chain->seg[chain->nseg - 1].writable)
        return chain_fail(why, why_len, "readable descriptor after writable");
    uint32_t *total = writable ? &chain->writable_len : &chain->readable_len;
    if (*total + d->len < *total)
        return chain_fail(why, why_len, "chain length overflows");
    *total += d->len;
    chain->seg[chain->nseg++] = (struct virtq_seg){d->addr, d->len, writable};
    return 0;
}

/* Follows the chain from chain->head: 0 at its last descriptor, or -EINVAL. */
static int chain_walk(struct virtq *vq, const struct guest_ram *ram,
                      struct virtq_chain *chain, char *why, unsigned why_len)
{
    const struct virtq_desc *table = guest_ram_ptr(ram, vq->desc_gpa, desc_bytes(vq->num));
    uint16_t i = chain->head;
    for (;;) {
        if (i >= vq->num)
            return chain_fail(why, why_len, "descriptor index %u >= queue size %u", i,
                              vq->num);
        if (chain->nseg == vq->num)
            return chain_fail(why, why_len, "descriptor chain loops");
        struct virtq_desc d;
        memcpy(&d, &table[i], sizeof(d)); /* one snapshot: the guest may race */
        int rc = chain_add(chain, ram, &d, why, why_len);
        if (rc)
            return rc;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

int virtq_pop(struct virtq *vq, const struct guest_ram *ram, struct virtq_chain *chain,
              bool *popped, char *why, unsigned why_len)
{
    *popped = false;
    const uint8_t *avail = guest_ram_ptr(ram, vq->avail_gpa, avail_bytes(vq->num));
    if (!vq->ready || !avail || !guest_ram_ptr(ram, vq->desc_gpa, desc_bytes(vq->num)))
        return chain_fail(why, why_len, "queue not set up");
    uint16_t avail_idx = load_u16(avail + 2);
    atomic_thread_fence(memory_order_acquire);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > vq->num)
        return chain_fail(why, why_len, "avail index %u runs %u ahead of %u", avail_idx,
                          pending, vq->last_avail);
    chain->head = load_u16(avail + 4 + 2 * (vq->last_avail % vq->num));
    chain->nseg = 0;
    chain->readable_len = chain->writable_len = 0;
    int rc = chain_walk(vq, ram, chain, why, why_len);
    if (rc)
        return rc;
    vq->last_avail++;
    *popped = true;
    return 0;
}

int virtq_push(struct virtq *vq, struct guest_ram *ram, uint16_t head, uint32_t written)
{
    uint32_t elem[2] = {head, written};
    uint64_t slot = vq->used_gpa + 4 + 8ULL * (vq->used_idx % vq->num);
    int rc = guest_ram_write(ram, slot, elem, sizeof(elem));
    if (rc)
        return rc;
    vq->used_idx++;
    /* the element must be visible before the index that publishes it */
    atomic_thread_fence(memory_order_release);
    return guest_ram_write(ram, vq->used_gpa + 2, &vq->used_idx, sizeof(vq->used_idx));
}

bool virtq_no_interrupt(const struct virtq *vq, const struct guest_ram *ram)
{
    const uint8_t *avail = guest_ram_ptr(ram, vq->avail_gpa, 2);
    return avail && (load_u16(avail) & 1);
}
