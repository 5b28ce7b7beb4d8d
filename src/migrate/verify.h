/* Offline check of a whole recorded migration stream (source -> destination
 * direction), without KVM, through the destination's own checks: framing
 * (mig_hdr_check), HELLO, RAM batches (ram_batch_read), and the sections
 * admitted against what a VM of the HELLO's size registers
 * (vm_register_sections, state_admit), each exactly once before END
 * (state_intake_complete); the serial port's state is also loaded into a
 * scratch device. Used by tests/tools/streamcheck and the stream fuzzer. */
#ifndef TERN_MIGRATE_VERIFY_H
#define TERN_MIGRATE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/protocol.h"

struct mig_stream_summary {
    uint64_t messages[MIG_TYPE_MAX + 1]; /* count by message type */
    uint64_t pages;                      /* pages with data */
    uint64_t zero_pages;                 /* zero markers */
    uint64_t sections;
    uint64_t bytes;  /* stream bytes walked */
    uint64_t memory; /* from HELLO */
    unsigned cpus, ndisks;
    uint64_t features;
    bool committed; /* ends with COMMIT */
};

/* 0 when data is a complete, valid stream (HELLO ... END COMMIT); else
 * -errno with e naming the message (index, offset) and what is wrong. sum
 * holds what was counted up to the point of failure. */
int mig_stream_verify(const uint8_t *data, size_t len, struct mig_stream_summary *sum,
                      struct err *e);

#endif
