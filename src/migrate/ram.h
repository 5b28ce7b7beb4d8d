/* Guest RAM over the migration stream: batches of up to 1024 pages, zero
 * pages as markers only, page data gathered straight from guest memory and
 * received straight into it. */
#ifndef TERN_MIGRATE_RAM_H
#define TERN_MIGRATE_RAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"
#include "migrate/channel.h"

struct vm;

struct ram_stats {
    uint64_t pages;      /* pages whose data was sent */
    uint64_t zero_pages; /* zero markers sent */
    uint64_t skipped;    /* first pass: holes and zero pages never sent */
    uint64_t bytes;      /* message bytes */
};

struct ram_sender {
    struct vm *vm;
    struct mig_channel *ch;
    bool page_crc;
    uint64_t *dirty; /* pages to send this pass, one bit each (not owned) */
    uint64_t nwords;
    unsigned lane, lanes; /* sends the chunks of channel `lane` of `lanes` */
    struct ram_stats stats;
    /* the batch being built */
    uint32_t count, nonzero;
    uint64_t entry[MIG_RAM_MAX_PAGES];
    uint64_t zero[MIG_RAM_MAX_PAGES]; /* zero markers, appended at flush */
    uint32_t crc[MIG_RAM_MAX_PAGES];
    const void *data[MIG_RAM_MAX_PAGES];
    void *copy[MIG_RAM_MAX_PAGES];
    uint8_t *bounce; /* with page crcs: the batch's pages, copied */
    struct iovec iov[MIG_RAM_MAX_PAGES + 4];
    /* called between batches, at most once a second (figures, events) */
    void (*progress)(void *ctx, uint64_t pages_done);
    void *progress_ctx;
    _Atomic uint64_t pass_done; /* pages handled in the current pass */
    double progress_at;
    /* first pass: a memfd extent known to hold data (for the pass), one
     * known to be a hole (until the next re-arm) */
    uint64_t data_start, data_end, hole_start, hole_end;
    /* first pass on anonymous RAM: /proc/self/pagemap entries of a window */
    int pagemap_fd;
    uint64_t pm_first, pm_count;
    uint64_t *pm;
};

/* A sender of the pages of channel lane of lanes (MIG_CHANNEL_SPAN pages
 * each in turn) from the bitmap dirty. */
int ram_sender_init(struct ram_sender *rs, struct vm *vm, struct mig_channel *ch,
                    bool page_crc, uint64_t *dirty, unsigned lane, unsigned lanes,
                    struct err *e);
void ram_sender_release(struct ram_sender *rs);
/* Sends every page of its lane set in rs->dirty and clears those bits. The
 * first pass skips what the destination already has: holes in the RAM
 * memfd and pages of zeros (its fresh RAM reads as zero). */
int ram_send_pass(struct ram_sender *rs, bool first_pass, struct err *e);
/* Number of pages set in a bitmap. */
uint64_t ram_count_dirty(const uint64_t *bitmap, uint64_t nwords);

/* Checks a batch's page table: every page inside the guest, no unknown
 * flags, data pages before zero markers, and the message length matching
 * (8 + 12 * count + 4096 * data pages). Sets *nonzero. */
int ram_batch_check(const uint64_t *entry, uint32_t count, uint64_t npages, uint32_t length,
                    uint32_t *nonzero, struct err *e);

/* A RAM message as a receiver takes it, up to its page data. */
struct ram_batch {
    uint32_t head[2];                  /* count, flags */
    uint64_t entry[MIG_RAM_MAX_PAGES]; /* data pages first, then zero markers */
    uint32_t crc[MIG_RAM_MAX_PAGES];
    uint32_t count, nonzero;
};

/* Reads the next n bytes of the message into dst. */
typedef int ram_read_fn(void *ctx, void *dst, size_t n, struct err *e);

/* The receiver's checks of a RAM message of length bytes, in the order its
 * bytes come (the destination and the offline check of a stream alike):
 * the head (1..1024 pages, no flags), the page table fitting the message,
 * then ram_batch_check against a guest of npages. Everything but the page
 * data is read through take. */
int ram_batch_read(struct ram_batch *b, uint32_t length, uint64_t npages, ram_read_fn *take,
                   void *ctx, struct err *e);
/* With MIG_F_PAGE_CRC: the crc32c of data pages first..first+n-1 of the
 * batch (page[j] holds page first+j) against the batch's table. */
int ram_batch_check_crc(const struct ram_batch *b, uint32_t first, uint32_t n,
                        const void *const *page, struct err *e);

/* The destination's receiver of RAM batches on one channel. */
struct ram_receiver {
    struct vm *vm;
    struct mig_channel *ch;
    bool page_crc;
    unsigned lane, lanes; /* takes the pages of channel lane of lanes only */
    struct ram_stats stats;
    struct ram_batch b;
    uint8_t *stage; /* memfd RAM: pages on their way in */
    struct iovec iov[MIG_RAM_MAX_PAGES];
    const void *page[MIG_RAM_MAX_PAGES];
};

int ram_receiver_init(struct ram_receiver *rr, struct vm *vm, struct mig_channel *ch,
                      bool page_crc, unsigned lane, unsigned lanes, struct err *e);
void ram_receiver_release(struct ram_receiver *rr);
/* Reads the payload of one RAM message whose header is h into guest RAM:
 * only the pages its checked table names are written, and with page crcs
 * a memfd-backed page is written only once its crc matched. */
int ram_recv_batch(struct ram_receiver *rr, const struct mig_hdr *h, struct err *e);

#endif
