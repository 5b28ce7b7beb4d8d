/* Registry of migratable state. Each device (and each piece of VM state such
 * as a vCPU or the irqchip) registers a name, an instance number, a version
 * and its own save/load, kept next to its emulation. The migration stream
 * walks the registry; adding a device changes no central struct. */
#ifndef TERN_COMMON_DEVSTATE_H
#define TERN_COMMON_DEVSTATE_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define DEVSTATE_NAME_MAX 32
#define DEVSTATE_MAX 64

struct devstate_ops {
    const char *name;
    uint32_t version; /* the version save() writes; load() takes <= it */
    int (*save)(void *opaque, struct buf *out, struct err *e);
    /* Must check every length, index and count before use and leave the
     * device untouched on failure (docs/design.md, invariant 3). */
    int (*load)(void *opaque, struct reader *in, uint32_t version, struct err *e);
    /* Optional: after every section is loaded, right before the VM resumes
     * (re-assert interrupt lines, take over locks). */
    int (*post_load)(void *opaque, struct err *e);
};

struct devstate_entry {
    const struct devstate_ops *ops;
    uint32_t instance;
    void *opaque;
};

struct devstate_registry {
    unsigned count;
    struct devstate_entry entry[DEVSTATE_MAX];
};

void devstate_registry_init(struct devstate_registry *reg);
/* 0, -EEXIST for a duplicate (name, instance), -ENOSPC when full. */
int devstate_register(struct devstate_registry *reg, const struct devstate_ops *ops,
                      uint32_t instance, void *opaque);
const struct devstate_entry *devstate_find(const struct devstate_registry *reg,
                                           const char *name, uint32_t instance);

#endif
