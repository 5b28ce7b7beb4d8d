#include "vmm/dirty.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "common/log.h"
#include "vmm/vm.h"

bool dirty_log_enable_manual(int vm_fd)
{
    int caps = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
    if (caps <= 0)
        return false;
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
        .args[0] = (uint64_t)caps &
                   (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET),
    };
    return ioctl(vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

static int set_slot_logging(struct vm *vm, unsigned slot, bool on)
{
    const struct guest_ram_region *r = &vm->ram.region[slot];
    struct kvm_userspace_memory_region mr = {
        .slot = slot,
        .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uint64_t)(uintptr_t)r->host,
    };
    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ? -errno : 0;
}

int dirty_log_start(struct vm *vm, struct err *e)
{
    struct dirty_log *dl = &vm->dirty;
    if (dl->active)
        return err_set(e, EBUSY, "dirty logging already active");
    dl->npages = vm->ram.npages;
    dl->nwords = (dl->npages + 63) / 64;
    dl->scratch = calloc(dl->nwords, sizeof(uint64_t));
    if (!dl->scratch)
        return err_set(e, ENOMEM, "dirty bitmap: out of memory");
    dl->manual = vm->dirty_manual;
    for (unsigned i = 0; i < vm->ram.nregions; i++) {
        int rc = set_slot_logging(vm, i, true);
        if (rc) {
            dirty_log_stop(vm);
            return err_set(e, -rc, "enable dirty log on slot %u: %s", i, strerror(-rc));
        }
    }
    /* what the VMM wrote before now is covered by the first full pass */
    uint64_t *discard = dl->scratch;
    guest_ram_collect_dirty(&vm->ram, 0, dl->nwords, discard);
    memset(discard, 0, dl->nwords * sizeof(uint64_t));
    dl->active = true;
    return 0;
}

int dirty_log_sync(struct vm *vm, uint64_t *bitmap, struct err *e)
{
    struct dirty_log *dl = &vm->dirty;
    for (unsigned i = 0; i < vm->ram.nregions; i++) {
        const struct guest_ram_region *r = &vm->ram.region[i];
        uint64_t first_word = r->page_offset / 64;
        uint64_t words = (r->size / GUEST_PAGE_SIZE + 63) / 64;
        memset(dl->scratch, 0, words * sizeof(uint64_t));
        struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = dl->scratch};
        if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
            return err_set(e, errno, "KVM_GET_DIRTY_LOG slot %u: %s", i, strerror(errno));
        for (uint64_t w = 0; w < words; w++)
            bitmap[first_word + w] |= dl->scratch[w];
    }
    guest_ram_collect_dirty(&vm->ram, 0, dl->nwords, bitmap);
    return 0;
}

/* Which slot holds RAM page `page`; slots start at multiples of 64 pages. */
static int slot_of(const struct vm *vm, uint64_t page, uint64_t *slot_first)
{
    for (unsigned i = 0; i < vm->ram.nregions; i++) {
        const struct guest_ram_region *r = &vm->ram.region[i];
        if (page >= r->page_offset && page - r->page_offset < r->size / GUEST_PAGE_SIZE) {
            *slot_first = r->page_offset;
            return (int)i;
        }
    }
    return -1;
}

int dirty_log_clear(struct vm *vm, uint64_t first_word, uint64_t nwords,
                    const uint64_t *bits, struct err *e)
{
    if (!vm->dirty.manual)
        return 0;
    for (uint64_t w = 0; w < nwords; w++) {
        if (!bits[w])
            continue;
        uint64_t page = (first_word + w) * 64, slot_first;
        int slot = slot_of(vm, page, &slot_first);
        if (slot < 0)
            continue;
        /* one call per run of non-empty words in the same slot */
        uint64_t run = 1;
        uint64_t dummy;
        while (w + run < nwords && bits[w + run] &&
               slot_of(vm, (first_word + w + run) * 64, &dummy) == slot)
            run++;
        uint64_t slot_pages = vm->ram.region[slot].size / GUEST_PAGE_SIZE;
        uint64_t num = run * 64;
        if (page - slot_first + num > slot_pages)
            num = slot_pages - (page - slot_first);
        struct kvm_clear_dirty_log clr = {
            .slot = (uint32_t)slot,
            .num_pages = (uint32_t)num,
            .first_page = page - slot_first,
            .dirty_bitmap = (void *)&bits[w],
        };
        if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clr) < 0)
            return err_set(e, errno, "KVM_CLEAR_DIRTY_LOG: %s", strerror(errno));
        w += run - 1;
    }
    return 0;
}

void dirty_log_stop(struct vm *vm)
{
    struct dirty_log *dl = &vm->dirty;
    for (unsigned i = 0; dl->active && i < vm->ram.nregions; i++)
        if (set_slot_logging(vm, i, false))
            log_warn("vmm", "disable dirty log on slot %u failed", i);
    free(dl->scratch);
    memset(dl, 0, sizeof(*dl));
}

static uint64_t count_bits(const uint64_t *bits, uint64_t nwords)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < nwords; w++)
        n += (uint64_t)__builtin_popcountll(bits[w]);
    return n;
}

/* The start of the window: whatever the log holds (with manual protect
 * every page is dirty at first) is read, dropped and re-armed. */
static int measure_arm(struct vm *vm, uint64_t *bits, struct err *e)
{
    int rc = dirty_log_sync(vm, bits, e);
    if (!rc)
        rc = dirty_log_clear(vm, 0, vm->dirty.nwords, bits, e);
    memset(bits, 0, vm->dirty.nwords * sizeof(uint64_t));
    return rc;
}

int dirty_log_measure(struct vm *vm, unsigned window_ms, uint64_t *pages, double *secs,
                      struct err *e)
{
    int rc = dirty_log_start(vm, e);
    if (rc)
        return rc == -EBUSY ? err_set(e, EBUSY, "a migration tracks dirty pages now") : rc;
    uint64_t *bits = calloc(vm->dirty.nwords, sizeof(uint64_t));
    rc = bits ? measure_arm(vm, bits, e)
              : err_set(e, ENOMEM, "dirty bitmap: out of memory");
    struct timespec t0, t1, nap = {window_ms / 1000, (long)(window_ms % 1000) * 1000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc)
        nanosleep(&nap, NULL);
    if (!rc)
        rc = dirty_log_sync(vm, bits, e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *pages = rc ? 0 : count_bits(bits, vm->dirty.nwords);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    free(bits);
    dirty_log_stop(vm);
    return rc;
}
