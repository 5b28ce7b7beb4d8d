#include "common/guest_ram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void add_region(struct guest_ram *ram, uint64_t gpa, uint64_t size, uint64_t offset)
{
    struct guest_ram_region *r = &ram->region[ram->nregions++];
    r->gpa = gpa;
    r->size = size;
    r->host = ram->base + offset;
    r->page_offset = offset >> GUEST_PAGE_SHIFT;
}

int guest_ram_init(struct guest_ram *ram, uint8_t *base, uint64_t size)
{
    memset(ram, 0, sizeof(*ram));
    ram->base = base;
    ram->size = size;
    ram->npages = size >> GUEST_PAGE_SHIFT;
    uint64_t low = size < GUEST_RAM_LOW_MAX ? size : GUEST_RAM_LOW_MAX;
    add_region(ram, 0, low, 0);
    if (size > low)
        add_region(ram, GUEST_RAM_HIGH_START, size - low, low);
    size_t words = (ram->npages + 63) / 64;
    ram->vmm_dirty = calloc(words ? words : 1, sizeof(uint64_t));
    return ram->vmm_dirty ? 0 : -ENOMEM;
}

void guest_ram_release(struct guest_ram *ram)
{
    free((void *)ram->vmm_dirty);
    memset(ram, 0, sizeof(*ram));
}

static const struct guest_ram_region *find_region(const struct guest_ram *ram, uint64_t gpa,
                                                  uint64_t len)
{
    for (unsigned i = 0; i < ram->nregions; i++) {
        const struct guest_ram_region *r = &ram->region[i];
        /* written so that gpa + len cannot overflow */
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

void *guest_ram_ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    const struct guest_ram_region *r = find_region(ram, gpa, len);
    if (!r || (len == 0 && gpa - r->gpa == r->size))
        return NULL;
    return r->host + (gpa - r->gpa);
}

int64_t guest_ram_offset(const struct guest_ram *ram, uint64_t gpa)
{
    const struct guest_ram_region *r = find_region(ram, gpa, 1);
    if (!r)
        return -1;
    return (int64_t)((uint64_t)(r->host - ram->base) + (gpa - r->gpa));
}

void guest_ram_mark_dirty(struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return;
    int64_t off = guest_ram_offset(ram, gpa);
    if (off < 0)
        return;
    uint64_t first = (uint64_t)off >> GUEST_PAGE_SHIFT;
    uint64_t last = ((uint64_t)off + len - 1) >> GUEST_PAGE_SHIFT;
    if (last >= ram->npages)
        last = ram->npages - 1;
    for (uint64_t p = first; p <= last; p++)
        atomic_fetch_or_explicit(&ram->vmm_dirty[p / 64], 1ULL << (p % 64),
                                 memory_order_relaxed);
}

int guest_ram_write(struct guest_ram *ram, uint64_t gpa, const void *src, uint64_t len)
{
    void *dst = guest_ram_ptr(ram, gpa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    guest_ram_mark_dirty(ram, gpa, len);
    return 0;
}

int guest_ram_read(const struct guest_ram *ram, uint64_t gpa, void *dst, uint64_t len)
{
    const void *src = guest_ram_ptr(ram, gpa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

void guest_ram_collect_dirty(struct guest_ram *ram, uint64_t first_word, uint64_t nwords,
                             uint64_t *out)
{
    uint64_t total = (ram->npages + 63) / 64;
    for (uint64_t i = 0; i < nwords && first_word + i < total; i++)
        out[i] |= atomic_exchange_explicit(&ram->vmm_dirty[first_word + i], 0,
                                           memory_order_relaxed);
}
