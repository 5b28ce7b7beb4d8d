/* HELLO: what the source tells the destination before anything else:
 * protocol version range, features, and the VM's configuration (memory,
 * vCPUs, CPU model and CPUID table, disks, NICs, run state). */
#ifndef TERN_MIGRATE_HELLO_H
#define TERN_MIGRATE_HELLO_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "migrate/protocol.h"

#define HELLO_MAX_DISKS 8
#define HELLO_MAX_NETS 4
#define HELLO_MAX_CPUID 256

struct mig_hello {
    uint16_t version_min, version_max;
    uint64_t features;
    char name[64];
    uint64_t memory;
    unsigned cpus;
    char cpu_model[32];
    bool paused;
    unsigned ndisks;
    struct {
        uint64_t size;
        bool readonly, shared;
    } disk[HELLO_MAX_DISKS];
    unsigned nnets; /* "nets" is optional: a source without NICs may omit it */
    struct {
        uint8_t mac[6];
    } net[HELLO_MAX_NETS];
    struct kvm_cpuid2 *cpuid;
};

struct vm;

int hello_encode(struct vm *vm, bool paused, uint64_t features, struct buf *out,
                 struct err *e);
/* Parses and range-checks everything; names the offending field. */
int hello_decode(const uint8_t *msg, uint32_t len, struct mig_hello *h, struct err *e);
void hello_release(struct mig_hello *h);

/* HELLO_ACK: the destination's choice. */
struct mig_hello_ack {
    uint16_t version;
    uint64_t features; /* a subset of those offered */
    /* with MIG_F_CHANNELS: at most this many connections in all (2..8), and
     * the token each extra connection must present */
    uint32_t channels;
    uint64_t token;
};

void hello_ack_encode(const struct mig_hello_ack *a, struct buf *out);
/* Checks the choice against what the source offered. */
int hello_ack_decode(const uint8_t *msg, uint32_t len, uint64_t offered,
                     struct mig_hello_ack *a, struct err *e);

/* CHANNEL: the first message on each extra connection (MIG_F_CHANNELS). */
struct mig_chan_hello {
    uint64_t token;
    uint32_t index; /* 1..count-1; the first connection is channel 0 */
    uint32_t count; /* connections in all, 2..8 */
};

void chan_hello_encode(const struct mig_chan_hello *c, struct buf *out);
int chan_hello_decode(const uint8_t *msg, uint32_t len, struct mig_chan_hello *c,
                      struct err *e);

/* LOADED: nanoseconds the destination spent loading sections. */
void loaded_encode(uint64_t load_ns, struct buf *out);
int loaded_decode(const uint8_t *msg, uint32_t len, uint64_t *load_ns, struct err *e);

/* RUNNING: the destination's part of resume, and whether the VM stays
 * paused (as it was on the source). */
struct mig_running {
    uint64_t dest_ns;
    bool paused;
};

void running_encode(const struct mig_running *run, struct buf *out);
int running_decode(const uint8_t *msg, uint32_t len, struct mig_running *run,
                   struct err *e);

#endif
