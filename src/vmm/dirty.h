/* Dirty-page tracking for live migration: KVM's dirty log for guest writes,
 * OR-ed with the VMM-side bitmap of the VMM's own writes (common/guest_ram).
 * Bitmaps here are indexed by RAM page (offset in guest RAM / 4096). */
#ifndef TERN_VMM_DIRTY_H
#define TERN_VMM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

struct vm;

struct dirty_log {
    bool active;
    bool manual; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 in use */
    uint64_t npages;
    uint64_t nwords;   /* u64 words in a bitmap of npages bits */
    uint64_t *scratch; /* per-slot KVM bitmaps land here */
};

/* Turns on dirty logging for every RAM slot. With manual protect, every page
 * starts dirty and stays writable until cleared, so starting costs nothing. */
int dirty_log_start(struct vm *vm, struct err *e);
/* ORs the pages dirtied since the last sync into bitmap. Without manual
 * protect the sync also re-protects them. */
int dirty_log_sync(struct vm *vm, uint64_t *bitmap, struct err *e);
/* Re-arms tracking of pages [first, first + 64 * nwords) whose bits are set
 * in bits (a slice of a sync bitmap); call before reading those pages. */
int dirty_log_clear(struct vm *vm, uint64_t first_word, uint64_t nwords,
                    const uint64_t *bits, struct err *e);
void dirty_log_stop(struct vm *vm);
/* Counts the distinct pages dirtied (by the guest and by the VMM) during
 * window_ms of the running VM, with a dirty log of its own: -EBUSY while a
 * migration tracks. Blocks the caller for the window. */
int dirty_log_measure(struct vm *vm, unsigned window_ms, uint64_t *pages, double *secs,
                      struct err *e);
/* Enables manual protect at VM creation; false where KVM lacks it. */
bool dirty_log_enable_manual(int vm_fd);

#endif
