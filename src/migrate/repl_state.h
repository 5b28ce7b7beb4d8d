/* What repl.c (bitmaps, status) and repl_sync.c (the sync) share inside
 * tern-vmm; not for other modules. */
#ifndef TERN_MIGRATE_REPL_STATE_H
#define TERN_MIGRATE_REPL_STATE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "storage/mirror.h"
#include "storage/replbitmap.h"
#include "vmm/monitor.h"

struct repl_disk {
    char path[512];   /* the bitmap file; "" when the disk is not replicated */
    struct replbm bm; /* bm.bits is the disk's blk_dirty.repl while attached */
    bool attached;
    /* the next sync must copy every allocated block (the file was not
     * valid, or a sync failed after its point in time) */
    _Atomic bool full;
    uint64_t *snap; /* during a sync: the bits it copies, to give back on failure */
    struct mirror m;
};

struct repl_state {
    struct monitor *mon;
    struct repl_disk disk[VM_MAX_DISKS];
    pthread_t thread;
    bool joinable;
    _Atomic bool busy, cancel;
    char uri[256];
    bool full;            /* the running sync */
    pthread_mutex_t lock; /* last, bm.syncs and bm.last_sync_ms */
    json_t *last;         /* the last sync's "repl-sync" event, NULL before one */
};

extern struct repl_state repl_state;

/* Cancels a running sync and waits for its thread. */
void repl_sync_stop(void);

#endif
