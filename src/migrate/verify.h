/* Offline check of a whole recorded migration stream (source -> destination
 * direction), without KVM: the same framing, HELLO, RAM batch and SECTION
 * checks a destination makes, plus section names, versions and instances
 * against the sections a tern-vmm of this version registers, the message
 * order, and that every section arrives exactly once before END. Used by
 * tests/tools/streamcheck and the stream fuzzer. */
#ifndef TERN_MIGRATE_VERIFY_H
#define TERN_MIGRATE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/protocol.h"

struct mig_stream_summary {
    uint64_t messages[MIG_TYPE_MAX + 1];   /* count by message type */
    uint64_t pages;                        /* pages with data */
    uint64_t zero_pages;                   /* zero markers */
    uint64_t sections;
    uint64_t bytes;                        /* stream bytes walked */
    uint64_t memory;                       /* from HELLO */
    unsigned cpus, ndisks;
    uint64_t features;
    bool committed;                        /* ends with COMMIT */
};

/* 0 when data is a complete, valid stream (HELLO ... END COMMIT); else
 * -errno with e naming the message (index, offset) and what is wrong. sum
 * holds what was counted up to the point of failure. */
int mig_stream_verify(const uint8_t *data, size_t len, struct mig_stream_summary *sum,
                      struct err *e);

/* The known sections and the highest version this build loads. */
struct mig_known_section {
    const char *name;
    uint32_t version;
};
extern const struct mig_known_section mig_known_sections[];

#endif
