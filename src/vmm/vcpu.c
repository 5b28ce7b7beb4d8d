#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void vcpu_kick_handler(int sig)
{
    (void)sig; /* only there to make KVM_RUN return with EINTR */
}

void vcpu_signals_init(void)
{
    struct sigaction sa = {.sa_handler = vcpu_kick_handler};
    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static void set_lvt(struct kvm_lapic_state *lapic, unsigned reg, unsigned mode)
{
    uint32_t v;
    memcpy(&v, &lapic->regs[reg], 4);
    v = (v & ~0x700U) | (mode << 8);
    memcpy(&lapic->regs[reg], &v, 4);
}

/* LINT0 as ExtINT and LINT1 as NMI: the wiring of a PC, which the MP table
 * also describes. */
static int vcpu_setup_lapic(struct vcpu *vcpu)
{
    struct kvm_lapic_state lapic;
    if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
        return -errno;
    set_lvt(&lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    set_lvt(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
    return ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned index, struct err *e)
{
    memset(vcpu, 0, sizeof(*vcpu));
    vcpu->vm = vm;
    vcpu->index = index;
    vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
    if (vcpu->fd < 0)
        return err_set(e, errno, "KVM_CREATE_VCPU %u: %s", index, strerror(errno));
    vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        vcpu->run = NULL;
        return err_set(e, errno, "vcpu %u mmap: %s", index, strerror(errno));
    }
    int rc = cpuid_set_vcpu(vcpu->fd, vm->cpuid, index, vm->ncpus);
    if (rc)
        return err_set(e, -rc, "vcpu %u KVM_SET_CPUID2: %s", index, strerror(-rc));
    rc = vcpu_setup_lapic(vcpu);
    if (rc)
        return err_set(e, -rc, "vcpu %u lapic: %s", index, strerror(-rc));
    return 0;
}

static void set_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
    *s = (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = type,
        .present = 1,
        .dpl = 0,
        .db = code ? 0 : 1,
        .s = 1,
        .l = code ? 1 : 0,
        .g = 1,
    };
}

static int vcpu_setup_sregs(struct vcpu *vcpu)
{
    struct kvm_sregs sregs;
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return -errno;
    set_segment(&sregs.cs, BOOT_SEL_CODE, 0xb, true);
    set_segment(&sregs.ds, BOOT_SEL_DATA, 0x3, false);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.tr = (struct kvm_segment){
        .selector = BOOT_SEL_TSS, .limit = 0x67, .type = 0xb, .present = 1};
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = 6 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80000001 | 0x10 | 0x20; /* PG, PE, ET, NE */
    sregs.cr3 = BOOT_PML4_ADDR;
    sregs.cr4 = 0x20;   /* PAE */
    sregs.efer = 0x500; /* LME, LMA */
    return ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 ? -errno : 0;
}

static int vcpu_setup_msrs_fpu(struct vcpu *vcpu)
{
    union {
        struct kvm_msrs hdr;
        uint8_t bytes[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
    } msrs = {.hdr.nmsrs = 2};
    msrs.hdr.entries[0] = (struct kvm_msr_entry){.index = MSR_IA32_MISC_ENABLE, .data = 1};
    /* MTRRs enabled, default type write-back: without it Linux runs uncached */
    msrs.hdr.entries[1] = (struct kvm_msr_entry){.index = MSR_MTRR_DEF_TYPE,
                                                 .data = (1 << 11) | 6};
    if (ioctl(vcpu->fd, KVM_SET_MSRS, &msrs) != 2)
        log_warn("vmm", "vcpu %u: not all boot msrs accepted", vcpu->index);
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    return ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

int vcpu_setup_boot(struct vcpu *vcpu, uint64_t entry, struct err *e)
{
    int rc = vcpu_setup_sregs(vcpu);
    if (!rc)
        rc = vcpu_setup_msrs_fpu(vcpu);
    if (rc)
        return err_set(e, -rc, "vcpu %u boot state: %s", vcpu->index, strerror(-rc));
    struct kvm_regs regs = {
        .rip = entry,
        .rsi = BOOT_ZERO_PAGE_ADDR,
        .rsp = BOOT_STACK_TOP,
        .rbp = BOOT_STACK_TOP,
        .rflags = 0x2,
    };
    if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
        return err_set(e, errno, "vcpu %u KVM_SET_REGS: %s", vcpu->index, strerror(errno));
    return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
    if (!vcpu->started || !vcpu->run)
        return;
    /* immediate_exit closes the window between the pause check and KVM_RUN */
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
        if (run->io.direction == KVM_EXIT_IO_OUT)
            bus_write(&vcpu->vm->pio, run->io.port, data, run->io.size);
        else
            bus_read(&vcpu->vm->pio, run->io.port, data, run->io.size);
    }
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    unsigned len = run->mmio.len <= 8 ? run->mmio.len : 8;
    bool claimed = run->mmio.is_write ? bus_write(&vcpu->vm->mmio, run->mmio.phys_addr,
                                                  run->mmio.data, len)
                                      : bus_read(&vcpu->vm->mmio, run->mmio.phys_addr,
                                                 run->mmio.data, len);
    if (!claimed)
        log_debug("vmm", "vcpu %u: mmio %s at unassigned 0x%llx", vcpu->index,
                  run->mmio.is_write ? "write" : "read",
                  (unsigned long long)run->mmio.phys_addr);
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
    struct kvm_regs regs;
    return ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ? 0 : regs.rip;
}

static void vcpu_crash(struct vcpu *vcpu, const char *what, unsigned long long detail)
{
    vm_request_exit(vcpu->vm, VM_EXIT_CRASH,
                    "vcpu %u: %s (exit reason %u, detail 0x%llx) at rip=0x%llx",
                    vcpu->index, what, vcpu->run->exit_reason, detail,
                    (unsigned long long)vcpu_rip(vcpu));
}

/* Handles one exit of KVM_RUN; an exit that ends the VM goes through
 * vm_request_exit, which parks this vCPU at its next wait. */
static void vcpu_dispatch(struct vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO: vcpu_handle_io(vcpu); break;
    case KVM_EXIT_MMIO: vcpu_handle_mmio(vcpu); break;
    case KVM_EXIT_INTR: break;
    case KVM_EXIT_SHUTDOWN: vcpu_crash(vcpu, "triple fault", 0); break;
    case KVM_EXIT_HLT: vcpu_crash(vcpu, "halted with no irqchip", 0); break;
    case KVM_EXIT_FAIL_ENTRY:
        vcpu_crash(vcpu, "entry failed", run->fail_entry.hardware_entry_failure_reason);
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        vcpu_crash(vcpu,
                   run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                       ? "emulation failure"
                       : "kvm internal error",
                   run->internal.suberror);
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
            vcpu_crash(vcpu, "guest crash event", run->system_event.type);
        else
            vm_request_exit(vcpu->vm, VM_EXIT_POWEROFF, "guest system event %u",
                            run->system_event.type);
        break;
    default: vcpu_crash(vcpu, "unexpected exit", 0); break;
    }
}

/* Parks while a pause is requested. Returns false once the VM stops. */
static bool vcpu_wait_runnable(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    pthread_mutex_lock(&vm->lock);
    if (vm->pause_requested && !vm->stopping) {
        vm->parked++;
        pthread_cond_broadcast(&vm->cond);
        while (vm->pause_requested && !vm->stopping)
            pthread_cond_wait(&vm->cond, &vm->lock);
        vm->parked--;
    }
    bool go = !vm->stopping;
    pthread_mutex_unlock(&vm->lock);
    return go;
}

#define VCPU_THROTTLE_SLICE_NS 10000000ULL /* the kick period of vm_throttle_thread */

void vcpu_throttle_point(struct vcpu *vcpu)
{
    unsigned pct = __atomic_load_n(&vcpu->vm->throttle_pct, __ATOMIC_RELAXED);
    if (!pct) {
        vcpu->ran_since_ns = 0;
        return;
    }
    uint64_t now = clock_mono_ns();
    /* a run longer than two slices began before the throttle: count two */
    uint64_t ran = now - vcpu->ran_since_ns;
    if (!vcpu->ran_since_ns || ran > 2 * VCPU_THROTTLE_SLICE_NS)
        ran = 2 * VCPU_THROTTLE_SLICE_NS;
    uint64_t sleep_ns = ran * pct / (100 - pct);
    /* sleep in slices: a pause or stop must not wait for a long sleep */
    struct vm *vm = vcpu->vm;
    while (sleep_ns && !__atomic_load_n(&vm->pause_requested, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&vm->stopping, __ATOMIC_RELAXED)) {
        uint64_t step = sleep_ns < VCPU_THROTTLE_SLICE_NS ? sleep_ns
                                                          : VCPU_THROTTLE_SLICE_NS;
        struct timespec ts = {0, (long)step};
        nanosleep(&ts, NULL);
        sleep_ns -= step;
    }
    vcpu->ran_since_ns = clock_mono_ns();
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *vcpu = arg;
    while (vcpu_wait_runnable(vcpu)) {
        int rc = ioctl(vcpu->fd, KVM_RUN, 0);
        if (rc < 0 && (errno == EINTR || errno == EAGAIN)) {
            __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
            vcpu_throttle_point(vcpu);
            continue;
        }
        if (rc < 0) {
            vm_request_exit(vcpu->vm, VM_EXIT_CRASH, "vcpu %u: KVM_RUN: %s", vcpu->index,
                            strerror(errno));
            continue;
        }
        vcpu_dispatch(vcpu);
    }
    return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
    sigset_t all, old;
    sigfillset(&all);
    /* the thread starts with every signal blocked but the kick, so SIGINT and
     * SIGTERM go to the main thread */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    sigset_t mask = all;
    sigdelset(&mask, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    int rc = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return -rc;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
    pthread_setname_np(vcpu->thread, name);
    vcpu->started = true;
    return 0;
}

void vcpu_release(struct vcpu *vcpu)
{
    if (vcpu->run)
        munmap(vcpu->run, vcpu->vm->run_size);
    if (vcpu->fd > 0)
        close(vcpu->fd);
    vcpu->run = NULL;
    vcpu->fd = -1;
}
