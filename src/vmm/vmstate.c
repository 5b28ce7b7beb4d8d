#include "vmm/vmstate.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "vmm/vm.h"

#define MAX_MSRS 1024
#define MAX_XSAVE (1U << 20)
#define CLOCK_MAX_ADVANCE_NS (3600ULL * 1000000000ULL)

/* kvm_msrs with room for MAX_MSRS entries; a union, because a struct with
 * a flexible array member may not sit inside another struct in ISO C */
union msr_list {
    struct kvm_msrs hdr;
    uint8_t room[sizeof(struct kvm_msrs) + MAX_MSRS * sizeof(struct kvm_msr_entry)];
};

/* Keeps the MSRs KVM lists for save/restore that this vCPU can actually
 * read: the index list includes some that fail on a given host. */
static int probe_msrs(struct vm *vm, struct err *e)
{
    union {
        struct kvm_msr_list hdr;
        uint8_t room[sizeof(struct kvm_msr_list) + MAX_MSRS * sizeof(uint32_t)];
    } list;
    list.hdr.nmsrs = MAX_MSRS;
    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
        return err_set(e, errno, "KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
    vm->msr_index = calloc(list.hdr.nmsrs, sizeof(uint32_t));
    if (!vm->msr_index)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < list.hdr.nmsrs; i++) {
        union {
            struct kvm_msrs hdr;
            uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
        } one = {.hdr.nmsrs = 1};
        one.hdr.entries[0].index = list.hdr.indices[i];
        if (ioctl(vm->vcpu[0].fd, KVM_GET_MSRS, &one) == 1)
            vm->msr_index[vm->nmsrs++] = list.hdr.indices[i];
    }
    return 0;
}

static int probe_xsave(struct vm *vm)
{
    int size = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    vm->xsave_size = size > (int)sizeof(struct kvm_xsave) ? (size_t)size
                                                          : sizeof(struct kvm_xsave);
    return 0;
}

/* ---- one vCPU ---- */

struct cpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
    struct kvm_debugregs debug;
    uint32_t xsave_len;
    uint8_t *xsave;
    union msr_list msrs; /* last: clang counts it as variable-sized */
};

static int cpu_get(struct vcpu *v, struct cpu_state *s)
{
    struct vm *vm = v->vm;
    unsigned long xsave_req = vm->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2
                                                                        : KVM_GET_XSAVE;
    s->msrs.hdr.nmsrs = vm->nmsrs;
    for (unsigned i = 0; i < vm->nmsrs; i++)
        s->msrs.hdr.entries[i] = (struct kvm_msr_entry){.index = vm->msr_index[i]};
    if (ioctl(v->fd, KVM_GET_REGS, &s->regs) < 0 ||
        ioctl(v->fd, KVM_GET_SREGS, &s->sregs) < 0 ||
        ioctl(v->fd, xsave_req, s->xsave) < 0 || ioctl(v->fd, KVM_GET_XCRS, &s->xcrs) < 0 ||
        ioctl(v->fd, KVM_GET_LAPIC, &s->lapic) < 0 ||
        ioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events) < 0 ||
        ioctl(v->fd, KVM_GET_MP_STATE, &s->mp) < 0 ||
        ioctl(v->fd, KVM_GET_DEBUGREGS, &s->debug) < 0)
        return -errno;
    int n = ioctl(v->fd, KVM_GET_MSRS, &s->msrs);
    if (n != (int)vm->nmsrs)
        return n < 0 ? -errno : -EIO;
    return 0;
}

static int cpu_save(void *opaque, struct buf *out, struct err *e)
{
    struct vcpu *v = opaque;
    struct cpu_state *s = calloc(1, sizeof(*s));
    uint8_t *xsave = calloc(1, v->vm->xsave_size);
    int rc = (!s || !xsave) ? -ENOMEM : 0;
    if (!rc) {
        s->xsave = xsave;
        rc = cpu_get(v, s);
    }
    if (rc) {
        free(s);
        free(xsave);
        return err_set(e, -rc, "vcpu %u state: %s", v->index, strerror(-rc));
    }
    buf_put(out, &s->regs, sizeof(s->regs));
    buf_put(out, &s->sregs, sizeof(s->sregs));
    buf_put_blob(out, xsave, (uint32_t)v->vm->xsave_size);
    buf_put(out, &s->xcrs, sizeof(s->xcrs));
    buf_put(out, &s->lapic, sizeof(s->lapic));
    buf_put(out, &s->events, sizeof(s->events));
    buf_put_u32(out, s->mp.mp_state);
    buf_put(out, &s->debug, sizeof(s->debug));
    buf_put_u32(out, s->msrs.hdr.nmsrs);
    for (unsigned i = 0; i < s->msrs.hdr.nmsrs; i++) {
        buf_put_u32(out, s->msrs.hdr.entries[i].index);
        buf_put_u64(out, s->msrs.hdr.entries[i].data);
    }
    free(s);
    free(xsave);
    return 0;
}

static bool msr_known(const struct vm *vm, uint32_t index)
{
    for (unsigned i = 0; i < vm->nmsrs; i++)
        if (vm->msr_index[i] == index)
            return true;
    return false;
}

static int cpu_parse(struct vcpu *v, struct reader *in, struct cpu_state *s, struct err *e)
{
    reader_copy(in, &s->regs, sizeof(s->regs));
    reader_copy(in, &s->sregs, sizeof(s->sregs));
    const uint8_t *xsave = reader_blob(in, MAX_XSAVE, &s->xsave_len);
    if (xsave && s->xsave_len != v->vm->xsave_size)
        return err_set(e, EINVAL, "xsave area of %u bytes, this host uses %zu",
                       s->xsave_len, v->vm->xsave_size);
    s->xsave = (uint8_t *)xsave;
    reader_copy(in, &s->xcrs, sizeof(s->xcrs));
    reader_copy(in, &s->lapic, sizeof(s->lapic));
    reader_copy(in, &s->events, sizeof(s->events));
    s->mp.mp_state = reader_u32(in);
    reader_copy(in, &s->debug, sizeof(s->debug));
    uint32_t n = reader_u32(in);
    if (n > MAX_MSRS)
        return err_set(e, EINVAL, "%u msrs, at most %d", n, MAX_MSRS);
    s->msrs.hdr.nmsrs = n;
    for (uint32_t i = 0; i < n && !in->bad; i++) {
        s->msrs.hdr.entries[i] = (struct kvm_msr_entry){.index = reader_u32(in)};
        s->msrs.hdr.entries[i].data = reader_u64(in);
        if (!in->bad && !msr_known(v->vm, s->msrs.hdr.entries[i].index))
            return err_set(e, EINVAL, "msr 0x%x cannot be restored on this host",
                           s->msrs.hdr.entries[i].index);
    }
    if (reader_finish(in))
        return err_set(e, EINVAL, "truncated or oversized vcpu state");
    if (s->mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD || s->xcrs.nr_xcrs > KVM_MAX_XCRS)
        return err_set(e, EINVAL, "bad mp state %u or xcr count %u", s->mp.mp_state,
                       s->xcrs.nr_xcrs);
    return 0;
}

static int cpu_apply(struct vcpu *v, struct cpu_state *s, struct err *e)
{
    const char *step = "regs";
    if (ioctl(v->fd, KVM_SET_REGS, &s->regs) < 0)
        goto fail;
    step = "xsave";
    if (ioctl(v->fd, KVM_SET_XSAVE, s->xsave) < 0)
        goto fail;
    step = "xcrs";
    if (ioctl(v->fd, KVM_SET_XCRS, &s->xcrs) < 0)
        goto fail;
    step = "sregs";
    if (ioctl(v->fd, KVM_SET_SREGS, &s->sregs) < 0)
        goto fail;
    int n = ioctl(v->fd, KVM_SET_MSRS, &s->msrs);
    if (n != (int)s->msrs.hdr.nmsrs)
        return err_set(e, EINVAL, "vcpu %u: msr 0x%x refused", v->index,
                       n >= 0 && n < (int)s->msrs.hdr.nmsrs ? s->msrs.hdr.entries[n].index
                                                            : 0);
    step = "mp state";
    if (ioctl(v->fd, KVM_SET_MP_STATE, &s->mp) < 0)
        goto fail;
    step = "lapic";
    if (ioctl(v->fd, KVM_SET_LAPIC, &s->lapic) < 0)
        goto fail;
    step = "events";
    if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
        goto fail;
    step = "debug registers";
    if (ioctl(v->fd, KVM_SET_DEBUGREGS, &s->debug) < 0)
        goto fail;
    return 0;
fail:
    return err_set(e, errno, "vcpu %u: kvm refused %s: %s", v->index, step,
                   strerror(errno));
}

static int cpu_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct vcpu *v = opaque;
    (void)version;
    struct cpu_state *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    int rc = cpu_parse(v, in, s, e);
    if (!rc)
        rc = cpu_apply(v, s, e);
    free(s);
    return rc;
}

static const struct devstate_ops cpu_ops = {"cpu", 1, cpu_save, cpu_load, NULL};

/* ---- irqchip: PIC master, PIC slave, IOAPIC ---- */

static int irqchip_save(void *opaque, struct buf *out, struct err *e)
{
    struct vm *vm = opaque;
    for (uint32_t id = 0; id < 3; id++) {
        struct kvm_irqchip chip = {.chip_id = id};
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
            return err_set(e, errno, "KVM_GET_IRQCHIP %u: %s", id, strerror(errno));
        buf_put(out, &chip, sizeof(chip));
    }
    return 0;
}

static int irqchip_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct vm *vm = opaque;
    struct kvm_irqchip chip[3];
    (void)version;
    for (uint32_t id = 0; id < 3; id++)
        reader_copy(in, &chip[id], sizeof(chip[id]));
    if (reader_finish(in))
        return err_set(e, EINVAL, "irqchip state has the wrong size");
    for (uint32_t id = 0; id < 3; id++) {
        if (chip[id].chip_id != id)
            return err_set(e, EINVAL, "irqchip %u carries chip id %u", id,
                           chip[id].chip_id);
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip[id]) < 0)
            return err_set(e, errno, "KVM_SET_IRQCHIP %u: %s", id, strerror(errno));
    }
    return 0;
}

static const struct devstate_ops irqchip_ops = {"irqchip", 1, irqchip_save, irqchip_load,
                                                NULL};

/* ---- PIT ---- */

static int pit_save(void *opaque, struct buf *out, struct err *e)
{
    struct vm *vm = opaque;
    struct kvm_pit_state2 pit;
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return err_set(e, errno, "KVM_GET_PIT2: %s", strerror(errno));
    buf_put(out, &pit, sizeof(pit));
    return 0;
}

static int pit_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct vm *vm = opaque;
    struct kvm_pit_state2 pit;
    (void)version;
    reader_copy(in, &pit, sizeof(pit));
    if (reader_finish(in))
        return err_set(e, EINVAL, "pit state has the wrong size");
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
        return err_set(e, errno, "KVM_SET_PIT2: %s", strerror(errno));
    return 0;
}

static const struct devstate_ops pit_ops = {"pit", 1, pit_save, pit_load, NULL};

/* ---- kvmclock ---- */

static int clock_save(void *opaque, struct buf *out, struct err *e)
{
    struct vm *vm = opaque;
    struct kvm_clock_data data = {0};
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &data) < 0)
        return err_set(e, errno, "KVM_GET_CLOCK: %s", strerror(errno));
    buf_put_u64(out, data.clock);
    buf_put_u32(out, data.flags);
    buf_put_u64(out, clock_real_ns());
    return 0;
}

static int clock_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct vm *vm = opaque;
    struct vm_clock_state c;
    (void)version;
    c.clock = reader_u64(in);
    c.flags = reader_u32(in);
    c.realtime_ns = reader_u64(in);
    if (reader_finish(in))
        return err_set(e, EINVAL, "kvmclock state has the wrong size");
    if (!vm->clock_pending && !(vm->clock_pending = malloc(sizeof(c))))
        return err_set(e, ENOMEM, "out of memory");
    *vm->clock_pending = c;
    return 0;
}

static const struct devstate_ops clock_ops = {"kvmclock", 1, clock_save, clock_load, NULL};

int vmstate_apply_clock(struct vm *vm, struct err *e)
{
    if (!vm->clock_pending)
        return 0;
    const struct vm_clock_state *c = vm->clock_pending;
    uint64_t now = clock_real_ns();
    /* the guest clock moves on by the real time the VM spent in transit; a
     * source clock ahead of ours (or far behind) adds nothing */
    uint64_t advance = now > c->realtime_ns && now - c->realtime_ns < CLOCK_MAX_ADVANCE_NS
                           ? now - c->realtime_ns
                           : 0;
    struct kvm_clock_data data = {.clock = c->clock + advance};
    if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &data) < 0)
        return err_set(e, errno, "KVM_SET_CLOCK: %s", strerror(errno));
    log_debug("vmm", "kvmclock restored, advanced by %llu us",
              (unsigned long long)(advance / 1000));
    free(vm->clock_pending);
    vm->clock_pending = NULL;
    return 0;
}

int vmstate_probe(struct vm *vm, struct err *e)
{
    int rc = probe_msrs(vm, e);
    if (!rc)
        probe_xsave(vm);
    return rc;
}

int vmstate_register(struct devstate_registry *reg, struct vm *vm, unsigned ncpus)
{
    int rc = 0;
    for (unsigned i = 0; i < ncpus && !rc; i++)
        rc = devstate_register(reg, &cpu_ops, i, vm ? &vm->vcpu[i] : NULL);
    if (!rc)
        rc = devstate_register(reg, &irqchip_ops, 0, vm);
    if (!rc)
        rc = devstate_register(reg, &pit_ops, 0, vm);
    if (!rc)
        rc = devstate_register(reg, &clock_ops, 0, vm);
    return rc;
}
