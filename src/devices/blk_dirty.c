#include "devices/blk_dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int blk_dirty_init(struct blk_dirty *d, uint64_t size, unsigned shift)
{
    memset(d, 0, sizeof(*d));
    d->shift = shift;
    d->size = size;
    d->nbits = (size + (1ULL << shift) - 1) >> shift;
    d->bits = calloc(d->nbits / 64 + 1, sizeof(uint64_t));
    if (!d->bits)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    return 0;
}

void blk_dirty_release(struct blk_dirty *d)
{
    if (!d->bits)
        return;
    free(d->bits);
    d->bits = NULL;
    pthread_mutex_destroy(&d->lock);
}

static bool test_bit(const struct blk_dirty *d, uint64_t b)
{
    return d->bits[b / 64] & (1ULL << (b % 64));
}

static void mark(const struct blk_dirty *d, uint64_t *bits, uint64_t *count, uint64_t off,
                 uint64_t len)
{
    if (!bits || len == 0 || off >= d->size)
        return;
    uint64_t last = (off + len - 1) >> d->shift;
    for (uint64_t b = off >> d->shift; b <= last && b < d->nbits; b++)
        if (!(bits[b / 64] & (1ULL << (b % 64)))) {
            bits[b / 64] |= 1ULL << (b % 64);
            (*count)++;
        }
}

void blk_dirty_mark_locked(struct blk_dirty *d, uint64_t off, uint64_t len)
{
    mark(d, d->bits, &d->count, off, len);
}

void blk_dirty_repl_mark_locked(struct blk_dirty *d, uint64_t off, uint64_t len)
{
    mark(d, d->repl, &d->repl_count, off, len);
}

void blk_dirty_clear_locked(struct blk_dirty *d, uint64_t first, uint64_t n)
{
    for (uint64_t b = first; b < first + n && b < d->nbits; b++)
        if (test_bit(d, b)) {
            d->bits[b / 64] &= ~(1ULL << (b % 64));
            d->count--;
        }
}

uint64_t blk_dirty_next_locked(const struct blk_dirty *d, uint64_t *bit, uint64_t max)
{
    uint64_t b = *bit;
    while (b < d->nbits) {
        uint64_t w = d->bits[b / 64] >> (b % 64);
        if (w) {
            b += (uint64_t)__builtin_ctzll(w);
            break;
        }
        b = (b / 64 + 1) * 64; /* the rest of this word is clear */
    }
    if (b >= d->nbits)
        return 0;
    *bit = b;
    uint64_t n = 0;
    while (b + n < d->nbits && n < max && test_bit(d, b + n))
        n++;
    return n;
}

void blk_dirty_fill_locked(struct blk_dirty *d, bool set)
{
    memset(d->bits, 0, (d->nbits / 64 + 1) * sizeof(uint64_t));
    d->count = 0;
    if (set)
        blk_dirty_mark_locked(d, 0, d->size);
}
