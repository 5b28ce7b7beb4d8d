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

#endif
