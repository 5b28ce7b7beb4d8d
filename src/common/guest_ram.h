/* Guest physical memory as the VMM sees it: the layout of RAM regions, checked
 * translation of guest addresses, and the VMM-side dirty bitmap.
 *
 * Every write the VMM makes into guest RAM goes through guest_ram_write() or is
 * followed by guest_ram_mark_dirty(): KVM's dirty log only sees guest writes,
 * and a migration must also resend pages the VMM wrote (virtio rings, block
 * reads): docs/design.md, invariant 1. Lives in common/ because devices/
 * and vmm/ both need it. */
#ifndef TERN_COMMON_GUEST_RAM_H
#define TERN_COMMON_GUEST_RAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_SIZE 4096ULL
#define GUEST_PAGE_SHIFT 12
#define GUEST_RAM_MAX_REGIONS 2

struct guest_ram_region {
    uint64_t gpa; /* guest physical start */
    uint64_t size;
    uint8_t *host;        /* host mapping of the region */
    uint64_t page_offset; /* index of the region's first page in the bitmap */
};

struct guest_ram {
    uint8_t *base; /* whole RAM, contiguous in the host */
    uint64_t size;
    unsigned nregions;
    struct guest_ram_region region[GUEST_RAM_MAX_REGIONS];
    uint64_t npages;
    _Atomic uint64_t *vmm_dirty; /* one bit per page, RAM offset order */
};

/* Low RAM ends here; the rest of the 4 GiB is the MMIO hole. */
#define GUEST_RAM_LOW_MAX 0xC0000000ULL
#define GUEST_RAM_HIGH_START 0x100000000ULL

/* Describes RAM of `size` bytes mapped at `base` split around the hole. The
 * caller owns the mapping. 0 or -ENOMEM. */
int guest_ram_init(struct guest_ram *ram, uint8_t *base, uint64_t size);
void guest_ram_release(struct guest_ram *ram);

/* Host pointer for [gpa, gpa+len) if the range lies inside one region, else
 * NULL. Never use guest-supplied addresses without it. */
void *guest_ram_ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len);
/* RAM offset (index into base) of gpa, or -1 if not RAM. */
int64_t guest_ram_offset(const struct guest_ram *ram, uint64_t gpa);

int guest_ram_write(struct guest_ram *ram, uint64_t gpa, const void *src, uint64_t len);
int guest_ram_read(const struct guest_ram *ram, uint64_t gpa, void *dst, uint64_t len);
void guest_ram_mark_dirty(struct guest_ram *ram, uint64_t gpa, uint64_t len);
/* Moves the VMM-side dirty bits for pages [first, first+64*nwords) into
 * out (OR-ed) and clears them. */
void guest_ram_collect_dirty(struct guest_ram *ram, uint64_t first_word, uint64_t nwords,
                             uint64_t *out);

#endif
