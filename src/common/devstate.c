#include "common/devstate.h"

#include <errno.h>
#include <string.h>

void devstate_registry_init(struct devstate_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

int devstate_register(struct devstate_registry *reg, const struct devstate_ops *ops,
                      uint32_t instance, void *opaque)
{
    if (devstate_find(reg, ops->name, instance))
        return -EEXIST;
    if (reg->count == DEVSTATE_MAX || strlen(ops->name) >= DEVSTATE_NAME_MAX)
        return -ENOSPC;
    reg->entry[reg->count++] = (struct devstate_entry){ops, instance, opaque};
    return 0;
}

const struct devstate_entry *devstate_find(const struct devstate_registry *reg,
                                           const char *name, uint32_t instance)
{
    for (unsigned i = 0; i < reg->count; i++)
        if (reg->entry[i].instance == instance &&
            strcmp(reg->entry[i].ops->name, name) == 0)
            return &reg->entry[i];
    return NULL;
}
