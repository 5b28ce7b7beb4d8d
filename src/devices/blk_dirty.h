/* Write tracking of a disk: a dirty bitmap (one bit per 64 KiB by default)
 * fed by every guest write of virtio-blk, like the RAM dirty log
 * (docs/design.md, invariant 4). A mirror job (storage/mirror.c) clears the
 * bits of what it copied; in active mode each guest write also goes to the
 * mirror's target before it completes.
 *
 * The lock orders a guest write against a mirror copy of the same range:
 * both hold it across reading or writing the image and writing the target,
 * so the target never gets old data after new. */
#ifndef TERN_DEVICES_BLK_DIRTY_H
#define TERN_DEVICES_BLK_DIRTY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLK_DIRTY_SHIFT_DEFAULT 16 /* 64 KiB */

/* Writes iov (total len bytes) at off into the mirror's target: 0 or -errno. */
typedef int (*blk_dirty_write_fn)(void *ctx, const struct iovec *iov, int niov,
                                  uint64_t off, uint64_t len);

struct blk_dirty {
    pthread_mutex_t lock;
    uint64_t *bits;
    uint64_t nbits;
    unsigned shift;
    uint64_t count; /* bits set */
    uint64_t size;  /* bytes of the disk */
    /* active mode: set by the mirror; a failed write turns it off and is
     * marked dirty instead (the mirror sees active_error and fails) */
    blk_dirty_write_fn active;
    void *active_ctx;
    void *mirror; /* the one mirror job on this disk, NULL when none */
    int active_error;
    uint64_t active_writes, active_bytes;
    /* replication (migrate/repl.c): the blocks written since the last sync,
     * marked by every guest write, also in active mode; the geometry of
     * bits; NULL when the disk is not replicated. Not owned. */
    uint64_t *repl;
    uint64_t repl_count;
};

/* A bitmap for size bytes at 2^shift bytes a bit: 0 or -ENOMEM. */
int blk_dirty_init(struct blk_dirty *d, uint64_t size, unsigned shift);
void blk_dirty_release(struct blk_dirty *d);
/* Caller holds d->lock. Marks [off, off+len). */
void blk_dirty_mark_locked(struct blk_dirty *d, uint64_t off, uint64_t len);
/* Caller holds d->lock. Clears bits [first, first+n). */
void blk_dirty_clear_locked(struct blk_dirty *d, uint64_t first, uint64_t n);
/* Caller holds d->lock. The first run of set bits at or after *bit, at most
 * max long: *bit its start, return its length (0: none left). */
uint64_t blk_dirty_next_locked(const struct blk_dirty *d, uint64_t *bit, uint64_t max);
/* Caller holds d->lock. Marks [off, off+len) in the replication bitmap,
 * if the disk has one. */
void blk_dirty_repl_mark_locked(struct blk_dirty *d, uint64_t off, uint64_t len);
/* Caller holds d->lock. Sets or clears every bit. */
void blk_dirty_fill_locked(struct blk_dirty *d, bool set);

#endif
