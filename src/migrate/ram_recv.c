/* The destination's side of RAM batches: the checks that the receiver and
 * the offline check of a stream (verify.c) share, and the receive into
 * guest memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "migrate/ram.h"
#include "vmm/vm.h"

#define PAGE GUEST_PAGE_SIZE
/* memfd RAM: pages are read into a small buffer, checked, then written into
 * the memfd. A write() into a hole of shmem allocates the page without
 * zeroing it; a first touch through the mapping zeroes it and the data then
 * overwrites it. The buffer stays in the cache between the read and the
 * write. */
#define STAGE_PAGES 32

int ram_receiver_init(struct ram_receiver *rr, struct vm *vm, struct mig_channel *ch,
                      bool page_crc, unsigned lane, unsigned lanes, struct err *e)
{
    memset(rr, 0, sizeof(*rr));
    rr->vm = vm;
    rr->ch = ch;
    rr->page_crc = page_crc;
    rr->lane = lane;
    rr->lanes = lanes;
    rr->stage = aligned_alloc(PAGE, STAGE_PAGES * PAGE);
    if (!rr->stage)
        return err_set(e, ENOMEM, "migration buffers: out of memory");
    return 0;
}

void ram_receiver_release(struct ram_receiver *rr)
{
    free(rr->stage);
    rr->stage = NULL;
}

int ram_batch_check(const uint64_t *entry, uint32_t count, uint64_t npages, uint32_t length,
                    uint32_t *nonzero, struct err *e)
{
    *nonzero = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t flags = entry[i] & ~(MIG_RAM_PFN_MASK | MIG_RAM_ZERO);
        uint64_t page = entry[i] & MIG_RAM_PFN_MASK;
        if (flags || page >= npages)
            return err_set(e, EPROTO,
                           "ram: page entry 0x%llx out of range "
                           "(guest has %llu pages)",
                           (unsigned long long)entry[i], (unsigned long long)npages);
        bool zero = entry[i] & MIG_RAM_ZERO;
        if (!zero && *nonzero != i)
            return err_set(e, EPROTO, "ram: data page after a zero marker");
        *nonzero += !zero;
    }
    if (length != 8 + (uint64_t)count * 12 + (uint64_t)*nonzero * PAGE)
        return err_set(e, EPROTO, "ram: length %u does not match %u data pages", length,
                       *nonzero);
    return 0;
}

int ram_batch_read(struct ram_batch *b, uint32_t length, uint64_t npages, ram_read_fn *take,
                   void *ctx, struct err *e)
{
    if (length < sizeof(b->head))
        return err_set(e, EPROTO, "ram: message of %u bytes is truncated", length);
    int rc = take(ctx, b->head, sizeof(b->head), e);
    if (rc)
        return rc;
    b->count = b->head[0];
    if (b->count == 0 || b->count > MIG_RAM_MAX_PAGES || b->head[1])
        return err_set(e, EPROTO, "ram: batch of %u pages (flags 0x%x) out of range",
                       b->count, b->head[1]);
    if (length < sizeof(b->head) + (uint64_t)b->count * 12)
        return err_set(e, EPROTO, "ram: %u entries do not fit %u bytes", b->count, length);
    rc = take(ctx, b->entry, b->count * sizeof(b->entry[0]), e);
    if (!rc)
        rc = take(ctx, b->crc, b->count * sizeof(b->crc[0]), e);
    if (!rc)
        rc = ram_batch_check(b->entry, b->count, npages, length, &b->nonzero, e);
    return rc;
}

int ram_batch_check_crc(const struct ram_batch *b, uint32_t first, uint32_t n,
                        const void *const *page, struct err *e)
{
    uint32_t crc[STAGE_PAGES];
    for (uint32_t done = 0; done < n;) {
        uint32_t k = n - done < STAGE_PAGES ? n - done : STAGE_PAGES;
        crc32c_pages(page + done, k, crc);
        for (uint32_t i = 0; i < k; i++)
            if (crc[i] != b->crc[first + done + i])
                return err_set(
                    e, EPROTO, "ram: crc mismatch on page 0x%llx",
                    (unsigned long long)(b->entry[first + done + i] & MIG_RAM_PFN_MASK));
        done += k;
    }
    return 0;
}

static int channel_read(void *ctx, void *dst, size_t n, struct err *e)
{
    return mig_recv(ctx, dst, n, e);
}

static uint8_t *page_ptr(const struct ram_receiver *rr, uint64_t entry)
{
    return rr->vm->ram.base + (entry & MIG_RAM_PFN_MASK) * PAGE;
}

/* Faulting RAM pages in one at a time (as readv into fresh memory would)
 * is several times slower on nested hosts than populating runs of them in
 * one call. Failures only lose the speed-up. */
static void ram_preallocate(struct ram_receiver *rr)
{
    const struct ram_batch *b = &rr->b;
    for (uint32_t i = 0; i < b->nonzero;) {
        uint64_t first = b->entry[i] & MIG_RAM_PFN_MASK, len = 1;
        while (i + len < b->nonzero &&
               (b->entry[i + len] & MIG_RAM_PFN_MASK) == first + len)
            len++;
        madvise(page_ptr(rr, first), len * PAGE, MADV_POPULATE_WRITE);
        i += (uint32_t)len;
    }
}

/* Anonymous RAM: straight into the named pages, crc checked there. */
static int recv_in_place(struct ram_receiver *rr, struct err *e)
{
    const struct ram_batch *b = &rr->b;
    for (uint32_t i = 0; i < b->nonzero; i++) {
        rr->iov[i] = (struct iovec){page_ptr(rr, b->entry[i]), PAGE};
        rr->page[i] = rr->iov[i].iov_base;
    }
    ram_preallocate(rr);
    int rc = mig_recv_iov(rr->ch, rr->iov, (int)b->nonzero, e);
    if (!rc && rr->page_crc)
        rc = ram_batch_check_crc(b, 0, b->nonzero, rr->page, e);
    return rc;
}

/* Writes staged pages first..first+n-1 to the memfd, a run of consecutive
 * pages per call. */
static int write_staged(struct ram_receiver *rr, uint32_t first, uint32_t n, struct err *e)
{
    const struct ram_batch *b = &rr->b;
    for (uint32_t i = 0; i < n;) {
        uint64_t pfn = b->entry[first + i] & MIG_RAM_PFN_MASK;
        uint32_t len = 1;
        while (i + len < n && (b->entry[first + i + len] & MIG_RAM_PFN_MASK) == pfn + len)
            len++;
        const uint8_t *src = rr->stage + (size_t)i * PAGE;
        size_t left = (size_t)len * PAGE;
        off_t off = (off_t)(pfn * PAGE);
        while (left) {
            ssize_t w = pwrite(rr->vm->mem_fd, src, left, off);
            if (w <= 0)
                return err_set(e, w < 0 ? errno : EIO, "ram: write to guest memory: %s",
                               strerror(w < 0 ? errno : EIO));
            src += w;
            off += w;
            left -= (size_t)w;
        }
        i += len;
    }
    return 0;
}

/* memfd RAM: STAGE_PAGES at a time through the stage buffer; a page whose
 * crc does not match never reaches guest memory. */
static int recv_staged(struct ram_receiver *rr, struct err *e)
{
    const struct ram_batch *b = &rr->b;
    for (uint32_t i = 0; i < b->nonzero;) {
        uint32_t n = b->nonzero - i < STAGE_PAGES ? b->nonzero - i : STAGE_PAGES;
        int rc = mig_recv(rr->ch, rr->stage, (size_t)n * PAGE, e);
        for (uint32_t k = 0; !rc && rr->page_crc && k < n; k++)
            rr->page[k] = rr->stage + (size_t)k * PAGE;
        if (!rc && rr->page_crc)
            rc = ram_batch_check_crc(b, i, n, rr->page, e);
        if (!rc)
            rc = write_staged(rr, i, n, e);
        if (rc)
            return rc;
        i += n;
    }
    return 0;
}

/* The ordering rule of several channels: a page always travels on the
 * same one, so the last version sent is the last one applied. */
static int check_lane(const struct ram_receiver *rr, struct err *e)
{
    for (uint32_t i = 0; rr->lanes > 1 && i < rr->b.count; i++) {
        uint64_t page = rr->b.entry[i] & MIG_RAM_PFN_MASK;
        unsigned lane = (unsigned)(page / MIG_CHANNEL_SPAN % rr->lanes);
        if (lane != rr->lane)
            return err_set(e, EPROTO,
                           "ram: page 0x%llx on channel %u belongs to channel %u",
                           (unsigned long long)page, rr->lane, lane);
    }
    return 0;
}

int ram_recv_batch(struct ram_receiver *rr, const struct mig_hdr *h, struct err *e)
{
    struct ram_batch *b = &rr->b;
    int rc = ram_batch_read(b, h->length, rr->vm->ram.npages, channel_read, rr->ch, e);
    if (!rc)
        rc = check_lane(rr, e);
    if (!rc)
        rc = rr->vm->mem_fd >= 0 ? recv_staged(rr, e) : recv_in_place(rr, e);
    if (rc)
        return rc;
    for (uint32_t i = b->nonzero; i < b->count; i++)
        memset(page_ptr(rr, b->entry[i]), 0, PAGE);
    rr->stats.pages += b->nonzero;
    rr->stats.zero_pages += b->count - b->nonzero;
    rr->stats.bytes += MIG_HDR_SIZE + h->length;
    return 0;
}
