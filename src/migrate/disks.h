/* The local disks of an outgoing migration: mirrors to the destination's
 * NBD exports (storage/mirror.h), driven from the migration thread. */
#ifndef TERN_MIGRATE_DISKS_H
#define TERN_MIGRATE_DISKS_H

#include <jansson.h>
#include <stdatomic.h>

#include "common/err.h"
#include "storage/mirror.h"

struct vm;

struct mig_disks {
    unsigned n;
    _Atomic unsigned shown; /* mirrors ready for another thread's figures */
    struct mirror m[8];
    double t0, final_ms, last_tick_ms;
    void (*progress)(void *ctx); /* after each pass: post the figures */
    void *progress_ctx;
    bool delta; /* seed from the replication bitmaps (repl_seed), not the extents */
};

void mig_disks_init(struct mig_disks *d);
/* Mirrors every writable disk that is not shared to uri's exports
 * disk<index> until each is synchronous (active mode). */
int mig_disks_sync(struct mig_disks *d, struct vm *vm, const char *uri,
                   const _Atomic bool *cancel, struct err *e);
/* A guest write that failed to reach a target since (the migration fails). */
int mig_disks_check(struct mig_disks *d, struct err *e);
/* VM paused: the last blocks and a flush of every target; final_ms. */
int mig_disks_final(struct mig_disks *d, struct err *e);
/* Active mode off and the connections closed (success or failure). */
void mig_disks_close(struct mig_disks *d);
/* [{"name","total","copied","dirty","passes","rate","active","sync_ms",
 *   "active_writes"}] */
json_t *mig_disks_json(struct mig_disks *d);

#endif
