/* The source's RAM senders, one per channel (MIG_F_CHANNELS): channel 0's
 * runs in the migration thread, every other one in a thread of its own,
 * and all work through the same pass over one dirty bitmap, each on the
 * chunks of its channel. With one channel it is a plain ram_sender. */
#ifndef TERN_MIGRATE_RAM_POOL_H
#define TERN_MIGRATE_RAM_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/protocol.h"
#include "migrate/ram.h"

struct ram_pool {
    unsigned n;
    uint64_t *dirty; /* pages to send this pass, one bit each */
    uint64_t nwords;
    struct ram_sender rs[MIG_CHANNELS_MAX];
    pthread_t thread[MIG_CHANNELS_MAX];
    unsigned nthreads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned gen;  /* passes started; a worker runs when it changes */
    unsigned busy; /* workers still in the current pass */
    bool first_pass, quit;
    int rc[MIG_CHANNELS_MAX];
    struct err err[MIG_CHANNELS_MAX];
};

/* ch[i] carries channel i of n (1..MIG_CHANNELS_MAX). */
int ram_pool_init(struct ram_pool *p, struct vm *vm, struct mig_channel *const *ch,
                  unsigned n, bool page_crc, struct err *e);
/* Stops the workers; safe on a pool that was only zeroed. */
void ram_pool_release(struct ram_pool *p);
/* One pass over p->dirty on every channel; returns when all are done,
 * with the first channel's error if any failed. */
int ram_pool_pass(struct ram_pool *p, bool first_pass, struct err *e);
/* Pages handled so far in the current pass (any thread). */
uint64_t ram_pool_done(struct ram_pool *p);
/* The senders' figures added up (between passes). */
void ram_pool_stats(const struct ram_pool *p, struct ram_stats *sum);

#endif
