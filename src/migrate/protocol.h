/* The tern migration stream, version 1 (docs/protocol.md is the reference).
 *
 * Every message: a 16-byte little-endian header {magic "TRNM", u16 type,
 * u16 flags, u32 payload length, u32 crc32c of the first 12 bytes}, then
 * the payload. Limits below are checked before any payload byte is read. */
#ifndef TERN_MIGRATE_PROTOCOL_H
#define TERN_MIGRATE_PROTOCOL_H

#include <stdint.h>

#include "common/err.h"

#define MIG_MAGIC 0x4d4e5254U /* "TRNM" */
#define MIG_VERSION_MIN 1
#define MIG_VERSION_MAX 1
#define MIG_HDR_SIZE 16

enum mig_type {
    MIG_HELLO = 1,     /* source -> dest: versions, features, VM config */
    MIG_HELLO_ACK = 2, /* dest -> source: chosen version and features */
    MIG_RAM = 3,       /* source -> dest: a batch of pages */
    MIG_SECTION = 4,   /* source -> dest: one piece of device/VM state */
    MIG_END = 5,       /* source -> dest: all state sent */
    MIG_LOADED = 6,    /* dest -> source: everything loaded, waiting */
    MIG_COMMIT = 7,    /* source -> dest: the handover is decided */
    MIG_RUNNING = 8,   /* dest -> source: resumed (or kept paused) */
    MIG_ERROR = 9,     /* either way: text of what went wrong */
    MIG_ACK = 10,      /* dest -> source: stream bytes applied (feature ACKS) */
    MIG_CHANNEL = 11,  /* source -> dest: opens an extra connection (CHANNELS) */
    MIG_PAUSING = 12,  /* source -> dest: the VM pauses next (PAUSING) */
    MIG_TYPE_MAX = 12,
};

/* Feature bits offered in HELLO and accepted in HELLO_ACK. */
#define MIG_F_PAGE_CRC (1ULL << 0) /* RAM batches carry a crc32c per page */
#define MIG_F_ACKS (1ULL << 1)     /* the destination sends ACK messages */
#define MIG_F_CHANNELS (1ULL << 2) /* RAM over several connections */
#define MIG_F_PAUSING (1ULL << 3)  /* PAUSING before the pause */
#define MIG_F_KNOWN (MIG_F_PAGE_CRC | MIG_F_ACKS | MIG_F_CHANNELS | MIG_F_PAUSING)

/* Connections of one migration with MIG_F_CHANNELS; page p travels on
 * channel (p / MIG_CHANNEL_SPAN) % count, in every pass. */
#define MIG_CHANNELS_MAX 8
#define MIG_CHANNEL_SPAN 4096

#define MIG_RAM_MAX_PAGES 1024
#define MIG_RAM_ZERO (1ULL << 63) /* page entry flag: the page is all zero */
#define MIG_RAM_PFN_MASK ((1ULL << 40) - 1)

#define MIG_SECTION_NAME_MAX 31

struct mig_hdr {
    uint32_t magic;
    uint16_t type;
    uint16_t flags;
    uint32_t length;
    uint32_t crc;
};

/* Largest payload each type may carry. */
static inline uint32_t mig_max_length(uint16_t type)
{
    switch (type) {
    case MIG_HELLO: return 1U << 20;
    case MIG_HELLO_ACK: return 64;
    case MIG_RAM: return 8 + MIG_RAM_MAX_PAGES * (8 + 4 + 4096);
    case MIG_SECTION: return 16U << 20;
    case MIG_END: return 0;
    case MIG_LOADED: return 64;
    case MIG_COMMIT: return 0;
    case MIG_RUNNING: return 64;
    case MIG_ERROR: return 4096;
    case MIG_ACK: return 8;
    case MIG_CHANNEL: return 16;
    case MIG_PAUSING: return 0;
    default: return 0;
    }
}

const char *mig_type_name(uint16_t type);
/* Checks a header: magic, header crc, known type, length limit. */
int mig_hdr_check(const struct mig_hdr *h, struct err *e);

#endif
