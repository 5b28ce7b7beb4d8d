/* One KVM virtual machine: guest RAM, vCPU threads, devices, run state. */
#ifndef TERN_VMM_VM_H
#define TERN_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/devstate.h"
#include "common/err.h"
#include "common/guest_ram.h"
#include "devices/bus.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "vmm/dirty.h"
#include "vmm/mptable.h"
#include "vmm/vcpu.h"

#define VM_MAX_CPUS MPTABLE_MAX_CPUS
#define VM_MAX_DISKS 8
#define VM_MAX_NETS 4
#define VM_VIRTIO_BASE 0xd0000000ULL
#define VM_MIN_MEMORY (16ULL << 20)

struct vm_disk_config {
    const char *path;
    bool readonly;
    bool shared;
};

struct vm_net_config {
    const char *tap;
    uint8_t mac[VIRTIO_NET_MAC_LEN];
    bool mac_given;   /* else derived from the name, or the source's */
    bool no_announce; /* announce=off: no RARP, no ANNOUNCE bit after a migration */
};

struct vm_config {
    const char *name;
    const char *kernel;
    const char *cmdline;
    const char *initrd;
    const char *cpu_model;
    uint64_t memory;
    unsigned cpus;
    unsigned ndisks;
    struct vm_disk_config disk[VM_MAX_DISKS];
    unsigned nnets;
    struct vm_net_config net[VM_MAX_NETS];
    /* Incoming migration: no kernel is loaded, shared disks are opened
     * without their lock, and the vCPUs get the source's CPUID. */
    bool incoming;
    const struct kvm_cpuid2 *cpuid;
    bool prealloc; /* allocate all guest RAM at start */
    int ram_fd;    /* RAM memfd made beforehand, or -1 */
};

enum vm_state { VM_CREATED, VM_RUNNING, VM_PAUSED, VM_SHUTDOWN };

/* Why the VM stopped; decides tern-vmm's exit status. */
enum vm_exit_reason {
    VM_EXIT_NONE,
    VM_EXIT_POWEROFF, /* guest powered off: status 0 */
    VM_EXIT_QUIT,     /* control command quit: status 0 */
    VM_EXIT_CRASH,    /* triple fault, emulation failure: status 3 */
    VM_EXIT_MIGRATED, /* handed over to a destination: status 0 */
    VM_EXIT_FAILED,   /* incoming migration failed: status 1 */
};

struct vm {
    struct vm_config config;
    int kvm_fd, vm_fd;
    int mem_fd;
    uint8_t *mem;
    size_t run_size;
    struct guest_ram ram;
    struct kvm_cpuid2 *cpuid;
    bool dirty_manual;
    struct dirty_log dirty;
    struct devstate_registry devstate;
    unsigned nmsrs;
    uint32_t *msr_index; /* MSRs a migration carries, probed at init */
    size_t xsave_size;
    struct vm_clock_state *clock_pending; /* loaded, applied at resume */
    unsigned ncpus;
    struct vcpu vcpu[VM_MAX_CPUS];
    struct bus pio, mmio;
    struct serial uart;
    struct i8042 kbd;
    unsigned ndisks;
    struct virtio_blk disk[VM_MAX_DISKS];
    unsigned nnets;
    struct virtio_net net[VM_MAX_NETS];
    void (*console_output)(void *ctx, const uint8_t *buf, size_t len);
    void *console_ctx;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum vm_state state;
    bool pause_requested;
    bool stopping;
    bool handed_over; /* committed to a destination: never resumes */
    unsigned parked;
    unsigned throttle_pct; /* auto-converge: share of time vCPUs sleep */
    pthread_t throttle_thread;
    bool throttle_running;
    int exit_eventfd; /* becomes readable once exit_reason is set */
    enum vm_exit_reason exit_reason;
    char exit_message[256];
    struct timespec started_at;
};

/* What backs guest RAM: a memfd (vm->mem_fd) or anonymous memory (-1). */
enum vm_ram_backing { VM_RAM_MEMFD, VM_RAM_ANON };
/* A memfd, unless TERN_RAM_BACKING=anon is in the environment. */
enum vm_ram_backing vm_ram_backing(void);
/* The memfd that holds guest RAM; with prealloc every page is allocated. */
int vm_ram_create(uint64_t size, bool prealloc, int *fd, struct err *e);
/* Builds the VM paused at the kernel entry: KVM objects, RAM, devices,
 * loaded kernel. Nothing runs until vm_start(). */
int vm_init(struct vm *vm, const struct vm_config *config,
            void (*console_output)(void *, const uint8_t *, size_t), void *console_ctx,
            struct err *e);
void vm_release(struct vm *vm);
int vm_start(struct vm *vm, struct err *e);
/* Stops every vCPU at an instruction boundary; returns when all are parked. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* Stops and joins all vCPU threads for good. */
void vm_stop(struct vm *vm);
/* Records why the VM ends (first reason wins) and wakes the main loop. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum vm_state vm_get_state(struct vm *vm);
/* Marks the VM as given away: from now on vm_resume() refuses. */
void vm_hand_over(struct vm *vm);
bool vm_handed_over(struct vm *vm);
/* Undoes vm_hand_over when the handover provably did not happen. */
void vm_take_back(struct vm *vm);
/* Every section a VM of ncpus vCPUs, ndisks disks and nnets NICs sends and
 * takes, in stream order: its own (vmstate.c), then the serial port, the
 * disks and the NICs.
 * vm_init registers them in vm->devstate; with vm NULL the entries have no
 * owner, the list a recorded stream is checked against without KVM
 * (migrate/verify.c). */
int vm_register_sections(struct devstate_registry *reg, struct vm *vm, unsigned ncpus,
                         unsigned ndisks, unsigned nnets, struct err *e);
/* vm_init's steps for the NICs (vm_net.c): open each --net TAP; place the
 * devices on the MMIO bus with their interrupt lines. 0 or -errno, e set. */
int vm_nets_open(struct vm *vm, struct err *e);
int vm_nets_attach(struct vm *vm, void (*irq_set)(void *, unsigned, int), struct err *e);
/* Runs every section's post_load hook and restores kvmclock. */
int vm_post_load(struct vm *vm, struct err *e);
/* Auto-converge: vCPUs sleep pct% of each 10 ms slice (0 turns it off). */
void vm_throttle_set(struct vm *vm, unsigned pct);
const char *vm_state_name(enum vm_state state);
double vm_uptime(struct vm *vm);

#endif
