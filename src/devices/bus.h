/* Port I/O and MMIO dispatch from vCPU exits to device emulation. */
#ifndef TERN_DEVICES_BUS_H
#define TERN_DEVICES_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
    void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
    void (*write)(void *opaque, uint64_t offset, const void *data, unsigned size);
};

struct bus_range {
    const char *name;
    uint64_t base;
    uint64_t len;
    const struct bus_ops *ops;
    void *opaque;
};

#define BUS_MAX_RANGES 32

struct bus {
    const char *name; /* "pio" or "mmio", for messages */
    unsigned count;
    struct bus_range range[BUS_MAX_RANGES];
};

void bus_init(struct bus *bus, const char *name);
/* 0, -EEXIST when it overlaps a range already added, -ENOSPC when full. */
int bus_add(struct bus *bus, const char *name, uint64_t base, uint64_t len,
            const struct bus_ops *ops, void *opaque);
/* false when no device claims addr; reads then return all ones. */
bool bus_read(const struct bus *bus, uint64_t addr, void *data, unsigned size);
bool bus_write(const struct bus *bus, uint64_t addr, const void *data, unsigned size);

/* Level of one interrupt line of the irqchip, provided by the VMM. */
struct irq_line {
    void (*set)(void *ctx, unsigned gsi, int level);
    void *ctx;
    unsigned gsi;
    int level; /* last level set; KVM starts every line at 0 */
};

/* Only changes reach KVM: an irqchip ioctl costs far more than a compare,
 * and devices recompute their line after every register access. */
static inline void irq_line_set(struct irq_line *irq, int level)
{
    if (irq->set && level != irq->level) {
        irq->level = level;
        irq->set(irq->ctx, irq->gsi, level);
    }
}

#endif
