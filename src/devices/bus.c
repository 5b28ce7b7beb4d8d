#include "devices/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
    memset(bus, 0, sizeof(*bus));
    bus->name = name;
}

int bus_add(struct bus *bus, const char *name, uint64_t base, uint64_t len,
            const struct bus_ops *ops, void *opaque)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    for (unsigned i = 0; i < bus->count; i++) {
        const struct bus_range *r = &bus->range[i];
        if (base < r->base + r->len && r->base < base + len)
            return -EEXIST;
    }
    if (bus->count == BUS_MAX_RANGES)
        return -ENOSPC;
    bus->range[bus->count++] = (struct bus_range){name, base, len, ops, opaque};
    return 0;
}

static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, unsigned size)
{
    for (unsigned i = 0; i < bus->count; i++) {
        const struct bus_range *r = &bus->range[i];
        if (addr >= r->base && addr - r->base < r->len && size <= r->len - (addr - r->base))
            return r;
    }
    return NULL;
}

bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned size)
{
    const struct bus_range *r = bus_find(bus, addr, size);
    if (!r || !r->ops->read) {
        memset(data, 0xff, size);
        return r != NULL;
    }
    r->ops->read(r->opaque, addr - r->base, data, size);
    return true;
}

bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned size)
{
    const struct bus_range *r = bus_find(bus, addr, size);
    if (!r)
        return false;
    if (r->ops->write)
        r->ops->write(r->opaque, addr - r->base, data, size);
    return true;
}
