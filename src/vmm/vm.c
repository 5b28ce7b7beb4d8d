#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/vmstate.h"

#define KVM_TSS_ADDR 0xfffbd000ULL
/* ISA lines free for virtio-mmio devices (not PIT, keyboard, COM, RTC...). */
static const unsigned virtio_irqs[VM_MAX_DISKS] = {5, 6, 7, 9, 10, 11, 14, 15};

static int vm_open_kvm(struct vm *vm, struct err *e)
{
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return err_set(e, errno, "cannot open /dev/kvm: %s", strerror(errno));
    if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return err_set(e, ENOTSUP, "/dev/kvm: unsupported KVM API version");
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return err_set(e, errno, "KVM_CREATE_VM: %s", strerror(errno));
    int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0)
        return err_set(e, errno, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    vm->run_size = (size_t)mmap_size;
    vm->dirty_manual = dirty_log_enable_manual(vm->vm_fd);
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0)
        log_warn("vmm", "KVM_SET_TSS_ADDR: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return err_set(e, errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
    struct kvm_pit_config pit = {.flags = 0};
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return err_set(e, errno, "KVM_CREATE_PIT2: %s", strerror(errno));
    return 0;
}

static uint64_t host_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
}

static int vm_set_slot(struct vm *vm, unsigned slot, const struct guest_ram_region *r,
                       struct err *e)
{
    struct kvm_userspace_memory_region mr = {
        .slot = slot,
        .guest_phys_addr = r->gpa,
        .memory_size = r->size,
        .userspace_addr = (uint64_t)(uintptr_t)r->host,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
        return err_set(e, errno, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
    return 0;
}

int vm_ram_create(uint64_t size, bool prealloc, int *fd, struct err *e)
{
    *fd = memfd_create("tern-guest-ram", MFD_CLOEXEC);
    if (*fd < 0 || ftruncate(*fd, (off_t)size))
        return err_set(e, errno, "guest ram: %s", strerror(errno));
    if (!prealloc)
        return 0;
    /* allocating and zeroing every page up front costs time now and saves a
     * page fault (and, on nested hosts, a much dearer first touch of the
     * page) on each later use; shmem's fallocate would defer the zeroing */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    int rc = p == MAP_FAILED ? -errno : 0;
    if (!rc && madvise(p, size, MADV_POPULATE_WRITE))
        rc = -errno;
    if (p != MAP_FAILED)
        munmap(p, size);
    return rc ? err_set(e, -rc, "preallocate %lluM of guest ram: %s",
                        (unsigned long long)(size >> 20), strerror(-rc))
              : 0;
}

/* Anonymous RAM gets transparent huge pages where shmem's are off (THP
 * "madvise", Debian's default), but measured here it made pre-copy of a
 * dirtying guest twice as long (dirty logging over huge pages) and bulk
 * receiving no faster (docs/tern-vmm.md): a memfd stays the default. */
enum vm_ram_backing vm_ram_backing(void)
{
    const char *env = getenv("TERN_RAM_BACKING");
    return env && strcmp(env, "anon") == 0 ? VM_RAM_ANON : VM_RAM_MEMFD;
}

static int vm_map_ram(struct vm *vm, uint64_t size, struct err *e)
{
    if (vm->config.ram_fd >= 0) {
        vm->mem_fd = vm->config.ram_fd; /* preallocated while waiting */
    } else if (vm_ram_backing() == VM_RAM_MEMFD) {
        int rc = vm_ram_create(size, vm->config.prealloc, &vm->mem_fd, e);
        if (rc)
            return rc;
    }
    if (vm->mem_fd >= 0)
        vm->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                       vm->mem_fd, 0);
    else
        vm->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED) {
        vm->mem = NULL;
        return err_set(e, errno, "guest ram mmap: %s", strerror(errno));
    }
    /* effective where the host allows huge pages for this kind of memory:
     * first touches of guest RAM then fault 2 MiB at a time */
    madvise(vm->mem, size, MADV_HUGEPAGE);
    if (vm->mem_fd < 0 && vm->config.prealloc &&
        madvise(vm->mem, size, MADV_POPULATE_WRITE))
        return err_set(e, errno, "preallocate %lluM of guest ram: %s",
                       (unsigned long long)(size >> 20), strerror(errno));
    return 0;
}

/* RAM is a memfd mapped shared (another process, a migration helper or a
 * debugger, can map the very same pages), or anonymous memory on request
 * (vm_ram_backing). */
static int vm_setup_memory(struct vm *vm, struct err *e)
{
    uint64_t size = vm->config.memory;
    if (size < VM_MIN_MEMORY || size % (2ULL << 20))
        return err_set(e, EINVAL,
                       "memory %llu bytes: must be a multiple of 2M "
                       "and at least 16M",
                       (unsigned long long)size);
    if (size > host_memory_bytes())
        return err_set(e, ENOMEM, "memory %lluM is more than the host has (%lluM)",
                       (unsigned long long)(size >> 20),
                       (unsigned long long)(host_memory_bytes() >> 20));
    int rc = vm_map_ram(vm, size, e);
    if (rc)
        return rc;
    if (guest_ram_init(&vm->ram, vm->mem, size))
        return err_set(e, ENOMEM, "guest ram bitmap: out of memory");
    for (unsigned i = 0; !rc && i < vm->ram.nregions; i++)
        rc = vm_set_slot(vm, i, &vm->ram.region[i], e);
    return rc;
}

static void vm_irq_set(void *ctx, unsigned gsi, int level)
{
    struct vm *vm = ctx;
    struct kvm_irq_level irq = {.irq = gsi, .level = (uint32_t)level};
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        log_warn("vmm", "KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static void vm_power_off(void *ctx)
{
    vm_request_exit(ctx, VM_EXIT_POWEROFF, "guest powered off");
}

static int vm_open_disks(struct vm *vm, struct err *e)
{
    for (unsigned i = 0; i < vm->config.ndisks; i++) {
        const struct vm_disk_config *d = &vm->config.disk[i];
        int rc = vm->config.incoming
                     ? virtio_blk_open_incoming(&vm->disk[i], d->path, d->readonly,
                                                d->shared, e)
                     : virtio_blk_open(&vm->disk[i], d->path, d->readonly, d->shared, e);
        if (rc)
            return rc;
        vm->ndisks++;
    }
    return 0;
}

static int vm_setup_devices(struct vm *vm, struct err *e)
{
    bus_init(&vm->pio, "pio");
    bus_init(&vm->mmio, "mmio");
    struct irq_line com1 = {vm_irq_set, vm, SERIAL_COM1_IRQ, 0};
    serial_init(&vm->uart, com1, vm->console_output, vm->console_ctx);
    i8042_init(&vm->kbd, vm_power_off, vm);
    int rc = bus_add(&vm->pio, "serial", SERIAL_COM1_PORT, 8, &serial_ops, &vm->uart);
    if (!rc)
        rc = bus_add(&vm->pio, "i8042", I8042_DATA_PORT, 5, &i8042_ops, &vm->kbd);
    for (unsigned i = 0; !rc && i < vm->ndisks; i++) {
        uint64_t base = VM_VIRTIO_BASE + i * VIRTIO_MMIO_SIZE;
        struct irq_line irq = {vm_irq_set, vm, virtio_irqs[i], 0};
        virtio_blk_attach(&vm->disk[i], base, &vm->ram, irq);
        rc = bus_add(&vm->mmio, "virtio-blk", base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops,
                     &vm->disk[i].mmio);
    }
    if (rc)
        return err_set(e, -rc, "device bus: %s", strerror(-rc));
    return vm_nets_attach(vm, vm_irq_set, e);
}

/* Section order in the stream follows registration: vCPUs, irqchip, PIT,
 * clock, then the devices. */
int vm_register_sections(struct devstate_registry *reg, struct vm *vm, unsigned ncpus,
                         unsigned ndisks, unsigned nnets, struct err *e)
{
    devstate_registry_init(reg);
    int rc = vmstate_register(reg, vm, ncpus);
    if (!rc)
        rc = devstate_register(reg, &serial_state_ops, 0, vm ? &vm->uart : NULL);
    for (unsigned i = 0; !rc && i < ndisks; i++)
        rc = devstate_register(reg, &virtio_blk_state_ops, i, vm ? &vm->disk[i] : NULL);
    for (unsigned i = 0; !rc && i < nnets; i++)
        rc = devstate_register(reg, &virtio_net_state_ops, i, vm ? &vm->net[i] : NULL);
    return rc ? err_set(e, -rc, "state registry: %s", strerror(-rc)) : 0;
}

static int vm_register_state(struct vm *vm, struct err *e)
{
    int rc = vmstate_probe(vm, e);
    return rc ? rc
              : vm_register_sections(&vm->devstate, vm, vm->ncpus, vm->ndisks, vm->nnets,
                                     e);
}

static int read_file(const char *what, const char *path, uint8_t **buf, size_t *size,
                     struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "%s '%s': %s", what, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        rc = err_set(e, EINVAL, "%s '%s': not a regular file", what, path);
    else if (st.st_size == 0)
        rc = err_set(e, ENOEXEC, "%s '%s': file is empty", what, path);
    if (!rc) {
        *size = (size_t)st.st_size;
        *buf = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*buf == MAP_FAILED)
            rc = err_set(e, errno, "%s '%s': %s", what, path, strerror(errno));
    }
    close(fd);
    return rc;
}

/* Kernel command line = the user's, then one virtio_mmio.device= per device,
 * the way Linux's virtio-mmio driver discovers devices without ACPI. */
static char *vm_kernel_cmdline(struct vm *vm)
{
    size_t cap = strlen(vm->config.cmdline ? vm->config.cmdline : "") +
                 64 * (VM_MAX_DISKS + VM_MAX_NETS) + 1;
    char *line = malloc(cap);
    if (!line)
        return NULL;
    size_t n = (size_t)snprintf(line, cap, "%s",
                                vm->config.cmdline ? vm->config.cmdline : "");
    for (unsigned i = 0; i < vm->ndisks; i++) {
        if (n)
            line[n++] = ' ';
        n += (size_t)virtio_mmio_cmdline(&vm->disk[i].mmio, line + n, (unsigned)(cap - n));
    }
    for (unsigned i = 0; i < vm->nnets; i++) {
        if (n)
            line[n++] = ' ';
        n += (size_t)virtio_mmio_cmdline(&vm->net[i].mmio, line + n, (unsigned)(cap - n));
    }
    line[n] = '\0';
    return line;
}

static int vm_load_kernel(struct vm *vm, struct boot_image *img, struct err *e)
{
    uint8_t *file;
    size_t size;
    int rc = read_file("kernel", vm->config.kernel, &file, &size, e);
    if (rc)
        return rc;
    rc = boot_load_elf(&vm->ram, file, size, img, e);
    munmap(file, size);
    if (rc && e) {
        char msg[sizeof(e->msg)];
        snprintf(msg, sizeof(msg), "%s", e->msg);
        snprintf(e->msg, sizeof(e->msg), "kernel '%.200s': %.280s", vm->config.kernel, msg);
    }
    if (rc || !vm->config.initrd)
        return rc;
    rc = read_file("initrd", vm->config.initrd, &file, &size, e);
    if (rc)
        return rc;
    rc = boot_load_initrd(&vm->ram, file, size, img, e);
    munmap(file, size);
    return rc;
}

static int vm_create_vcpus(struct vm *vm, struct err *e)
{
    for (unsigned i = 0; i < vm->ncpus; i++) {
        int rc = vcpu_init(&vm->vcpu[i], vm, i, e);
        if (rc)
            return rc;
    }
    return vm_register_state(vm, e);
}

static int vm_load(struct vm *vm, struct err *e)
{
    if (vm->config.incoming)
        return 0; /* RAM and state arrive from the source */
    struct boot_image img;
    int rc = vm_load_kernel(vm, &img, e);
    if (rc)
        return rc;
    char *cmdline = vm_kernel_cmdline(vm);
    if (!cmdline)
        return err_set(e, ENOMEM, "out of memory");
    rc = boot_setup_memory(&vm->ram, &img, cmdline, e);
    free(cmdline);
    if (rc)
        return rc;
    uint8_t *ebda = guest_ram_ptr(&vm->ram, BOOT_EBDA_ADDR, 0x400);
    if (mptable_build(ebda, 0x400, BOOT_EBDA_ADDR, vm->ncpus) < 0)
        return err_set(e, EINVAL, "mp table for %u cpus does not fit", vm->ncpus);
    return vcpu_setup_boot(&vm->vcpu[0], img.entry, e);
}

static int vm_open_exit_eventfd(struct vm *vm, struct err *e)
{
    vm->exit_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return vm->exit_eventfd < 0 ? err_set(e, errno, "eventfd: %s", strerror(errno)) : 0;
}

/* An incoming VM runs on the source's CPUID, a new one on its model's. */
static int vm_setup_cpuid(struct vm *vm, struct err *e)
{
    return vm->config.cpuid
               ? cpuid_copy(vm->config.cpuid, &vm->cpuid, e)
               : cpuid_for_model(vm->kvm_fd, vm->config.cpu_model, &vm->cpuid, e);
}

/* vm_init in order; vm_release undoes whatever of it was done. */
static int (*const vm_init_steps[])(struct vm *vm, struct err *e) = {
    vm_open_exit_eventfd, vm_open_disks,    vm_nets_open,    vm_open_kvm, vm_setup_memory,
    vm_setup_cpuid,       vm_setup_devices, vm_create_vcpus, vm_load,
};

int vm_init(struct vm *vm, const struct vm_config *config,
            void (*console_output)(void *, const uint8_t *, size_t), void *console_ctx,
            struct err *e)
{
    memset(vm, 0, sizeof(*vm));
    vm->config = *config;
    vm->kvm_fd = vm->vm_fd = vm->mem_fd = vm->exit_eventfd = -1;
    vm->ncpus = config->cpus;
    vm->console_output = console_output;
    vm->console_ctx = console_ctx;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    if (vm->ncpus == 0 || vm->ncpus > VM_MAX_CPUS)
        return err_set(e, EINVAL, "cpus %u: must be 1 to %d", vm->ncpus, VM_MAX_CPUS);
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof(vm_init_steps) / sizeof(vm_init_steps[0]); i++)
        rc = vm_init_steps[i](vm, e);
    return rc;
}

void vm_release(struct vm *vm)
{
    vm_stop(vm);
    vm_throttle_set(vm, 0);
    if (vm->dirty.active)
        dirty_log_stop(vm);
    free(vm->msr_index);
    free(vm->clock_pending);
    for (unsigned i = 0; i < vm->ncpus; i++)
        vcpu_release(&vm->vcpu[i]);
    for (unsigned i = 0; i < vm->ndisks; i++)
        virtio_blk_release(&vm->disk[i]);
    for (unsigned i = 0; i < vm->nnets; i++)
        virtio_net_release(&vm->net[i]);
    serial_release(&vm->uart);
    free(vm->cpuid);
    guest_ram_release(&vm->ram);
    if (vm->mem)
        munmap(vm->mem, vm->config.memory);
    int fds[] = {vm->mem_fd, vm->vm_fd, vm->kvm_fd, vm->exit_eventfd};
    for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_cond_destroy(&vm->cond);
    pthread_mutex_destroy(&vm->lock);
}

int vm_start(struct vm *vm, struct err *e)
{
    clock_gettime(CLOCK_MONOTONIC, &vm->started_at);
    pthread_mutex_lock(&vm->lock);
    vm->state = vm->pause_requested ? VM_PAUSED : VM_RUNNING;
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        int rc = vcpu_start(&vm->vcpu[i]);
        if (rc)
            return err_set(e, -rc, "vcpu %u thread: %s", i, strerror(-rc));
    }
    return 0;
}

static unsigned vm_started_cpus(const struct vm *vm)
{
    unsigned n = 0;
    for (unsigned i = 0; i < vm->ncpus; i++)
        n += vm->vcpu[i].started;
    return n;
}

int vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->state == VM_SHUTDOWN) {
        pthread_mutex_unlock(&vm->lock);
        return -ESRCH;
    }
    vm->pause_requested = true;
    for (unsigned i = 0; i < vm->ncpus; i++)
        vcpu_kick(&vm->vcpu[i]);
    while (vm->parked < vm_started_cpus(vm) && !vm->stopping)
        pthread_cond_wait(&vm->cond, &vm->lock);
    if (vm->state == VM_RUNNING || vm->state == VM_CREATED)
        vm->state = VM_PAUSED;
    pthread_mutex_unlock(&vm->lock);
    /* a paused VM writes nothing into its RAM: receive stops too */
    for (unsigned i = 0; i < vm->nnets; i++)
        virtio_net_pause(&vm->net[i]);
    return 0;
}

int vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    int rc = 0;
    if (vm->handed_over) {
        rc = -EPERM;
    } else if (vm->state == VM_SHUTDOWN || vm->exit_reason != VM_EXIT_NONE) {
        rc = -ESRCH;
    } else {
        vm->pause_requested = false;
        vm->state = VM_RUNNING;
        pthread_cond_broadcast(&vm->cond);
    }
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; !rc && i < vm->nnets; i++)
        virtio_net_resume(&vm->net[i]);
    return rc;
}

void vm_stop(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    vm->stopping = true;
    vm->state = VM_SHUTDOWN;
    pthread_cond_broadcast(&vm->cond);
    for (unsigned i = 0; i < vm->ncpus; i++)
        vcpu_kick(&vm->vcpu[i]);
    pthread_mutex_unlock(&vm->lock);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if (vm->vcpu[i].started)
            pthread_join(vm->vcpu[i].thread, NULL);
        vm->vcpu[i].started = false;
    }
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
{
    pthread_mutex_lock(&vm->lock);
    if (vm->exit_reason == VM_EXIT_NONE) {
        vm->exit_reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->exit_message, sizeof(vm->exit_message), fmt, ap);
        va_end(ap);
        /* park everyone: nothing may run after the guest chose to stop */
        vm->pause_requested = true;
        for (unsigned i = 0; i < vm->ncpus; i++)
            vcpu_kick(&vm->vcpu[i]);
        uint64_t one = 1;
        if (write(vm->exit_eventfd, &one, sizeof(one)) < 0)
            log_error("vmm", "exit eventfd: %s", strerror(errno));
    }
    pthread_mutex_unlock(&vm->lock);
}

enum vm_state vm_get_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state s = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return s;
}

const char *vm_state_name(enum vm_state state)
{
    static const char *const names[] = {"created", "running", "paused", "shutdown"};
    return names[state];
}

static void vm_set_handed_over(struct vm *vm, bool handed_over)
{
    pthread_mutex_lock(&vm->lock);
    vm->handed_over = handed_over;
    pthread_mutex_unlock(&vm->lock);
}

void vm_hand_over(struct vm *vm)
{
    vm_set_handed_over(vm, true);
}

void vm_take_back(struct vm *vm)
{
    vm_set_handed_over(vm, false);
}

bool vm_handed_over(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    bool h = vm->handed_over;
    pthread_mutex_unlock(&vm->lock);
    return h;
}

int vm_post_load(struct vm *vm, struct err *e)
{
    for (unsigned i = 0; i < vm->devstate.count; i++) {
        const struct devstate_entry *d = &vm->devstate.entry[i];
        if (d->ops->post_load) {
            int rc = d->ops->post_load(d->opaque, e);
            if (rc)
                return rc;
        }
    }
    return vmstate_apply_clock(vm, e);
}

/* Kicks every vCPU each 10 ms slice; each then sleeps its share in
 * vcpu_throttle_point(). Guests that never exit are throttled too. */
static void *vm_throttle_thread(void *arg)
{
    struct vm *vm = arg;
    pthread_mutex_lock(&vm->lock);
    while (vm->throttle_pct && !vm->stopping) {
        for (unsigned i = 0; i < vm->ncpus; i++)
            vcpu_kick(&vm->vcpu[i]);
        pthread_mutex_unlock(&vm->lock);
        usleep(10000);
        pthread_mutex_lock(&vm->lock);
    }
    pthread_mutex_unlock(&vm->lock);
    return NULL;
}

void vm_throttle_set(struct vm *vm, unsigned pct)
{
    pthread_mutex_lock(&vm->lock);
    vm->throttle_pct = pct > 99 ? 99 : pct;
    bool start = pct && !vm->throttle_running;
    bool join = !pct && vm->throttle_running;
    if (start)
        vm->throttle_running = !pthread_create(&vm->throttle_thread, NULL,
                                               vm_throttle_thread, vm);
    if (join)
        vm->throttle_running = false;
    pthread_mutex_unlock(&vm->lock);
    if (join)
        pthread_join(vm->throttle_thread, NULL);
}

double vm_uptime(struct vm *vm)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - vm->started_at.tv_sec) +
           (double)(now.tv_nsec - vm->started_at.tv_nsec) / 1e9;
}
