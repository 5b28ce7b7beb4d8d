/* tern-guest: shared declarations.
 *
 * Two worlds live in this kernel: a little CPL0 code (emulated, slow on
 * kvm_pvm) that sets up the CPU and serves the int 0x80 gate, and the CPL3
 * code that does all real work at native speed.  Functions meant for CPL0
 * only are marked in the comments below; everything else runs at CPL3.
 */
#ifndef TERN_GUEST_H
#define TERN_GUEST_H

#define MAX_CPUS 32
#define KSTACK_SIZE 8192
#define USTACK_SIZE 16384
#define PAGE_SIZE 4096u
#define MAX_MEM_REGIONS 128
#define CMDLINE_MAX 4096
#define MAX_VIRTIO_MMIO 32

#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_MSEC 1000000ull

/* GDT layout (boot.S relies on the first three). */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_KCODE32 0x18
#define SEL_UDATA 0x23
#define SEL_UCODE 0x2b
#define GDT_TSS_FIRST 6 /* two slots per TSS */

/* Gate (int $0x80) function numbers: rax = function, rdi/rsi = args. */
#define GATE_CONSOLE_WRITE 1 /* rdi = buffer, rsi = length */
#define GATE_POWEROFF 2
#define GATE_SEND_INIT 3    /* INIT IPI to all but self */
#define GATE_SEND_SIPI 4    /* rdi = vector (page number) */
#define GATE_MMIO_READ32 5  /* rdi = address -> rax */
#define GATE_MMIO_WRITE32 6 /* rdi = address, rsi = value */
#define GATE_CONSOLE_READ 7 /* rdi = buffer, rsi = capacity -> msr << 32 | n */

#define E820_RAM 1

#define AP_TRAMPOLINE_ADDR 0x8000

#ifndef __ASSEMBLER__
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mem_region {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

/* What the boot entry copied out of the loader's structures. */
struct boot_info {
    char cmdline[CMDLINE_MAX];
    uint32_t nregions;
    struct mem_region regions[MAX_MEM_REGIONS];
    uint64_t rsdp;
};

struct pvclock_time_info {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
};

/* Per-CPU state shared by CPL0 and CPL3; cache-line sized pieces so that
 * one CPU's counters do not bounce another's line. */
struct cpu {
    _Alignas(64) struct pvclock_time_info clock;
    uint32_t index;
    volatile uint32_t up;
    _Alignas(64) volatile uint64_t pages_written;
};

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

extern struct boot_info boot_info;
extern struct cpu cpus[MAX_CPUS];
extern uint8_t user_stacks[MAX_CPUS][USTACK_SIZE];
extern char _image_start[], _image_end[];
extern char ap_trampoline_start[], ap_trampoline_end[];

/* boot.S */
void enter_user(void (*entry)(uint32_t), uint64_t stack_top, uint32_t arg)
    __attribute__((noreturn));

/* cpu.c (CPL0) */
void cpu_init_local(uint32_t index);
void map_high_ram(void);
void trap_dispatch(struct trap_frame *f);
void kputs0(const char *s); /* CPL0 console write, for fatal paths */
void power_off0(void) __attribute__((noreturn));

/* boot.c (CPL0) */
void linux_main(uint64_t boot_params);
void pvh_main(uint64_t start_info);
void ap_kernel_main(uint32_t index);

/* lib.c */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int format(char *buf, size_t cap, const char *fmt, va_list ap);
int snformat(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
uint64_t gate_call(uint64_t fn, uint64_t a, uint64_t b);
void power_off(void) __attribute__((noreturn));
/* A pointer to a fixed physical address (identity-mapped).  The empty asm
 * hides the constant from gcc's array-bounds checks on small addresses. */
static inline void *phys(uint64_t addr)
{
    __asm__("" : "+r"(addr));
    return (void *)addr;
}
static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* clock.c */
uint64_t clock_ns(void); /* kvmclock of the calling CPU */
uint32_t this_cpu(void);
void delay_ns(uint64_t ns);

/* cmdline.c */
struct options {
    uint64_t hb_ms;
    uint64_t ws_mib;
    uint64_t rate_mibps;
    uint64_t verify_ms;
    bool smp;
    uint64_t disk_mib;
    uint64_t exit_ms;
    uint64_t mmio_reads;  /* tern.mmio=N: time N MMIO exits at boot */
    uint64_t touch_words; /* tern.touch=N: words written per page, 0 = all */
    bool hb_clock;        /* tern.hbclock=1: HB lines carry the guest clock */
    uint32_t ip;          /* tern.ip=A.B.C.D/N, host order */
    uint32_t ip_prefix;   /* N, 0: no network */
    uint64_t netstat_ms;  /* tern.netstat=S: NET counters line every S */
    uint64_t netbad;      /* tern.netbad=N: post N malformed transmit chains */
    uint32_t nvirtio;
    uint64_t virtio_base[MAX_VIRTIO_MMIO];
};
extern struct options opts;
void parse_cmdline(const char *cmdline);
void report_cmdline_problems(void);
bool parse_u64(const char *s, size_t n, uint64_t *out);

/* smp.c */
extern uint32_t ncpus;
uint32_t firmware_cpu_count(void);
void start_aps(uint32_t expected, void (*print_banner)(uint32_t));
void ap_user_main(uint32_t index) __attribute__((noreturn));
extern volatile uint32_t workload_ready;

/* dirtier.c */
bool dirtier_setup(uint32_t nworkers);
void dirtier_step(uint32_t cpu, uint64_t now);
uint64_t dirtier_total_pages(void);

/* disk.c */
void disk_setup(void);
void disk_step(uint64_t now);

/* console.c: serial input (echoed lines) and the power-button request */
void console_step(uint64_t now);

/* virtio_net.c */
bool vnet_init(uint8_t *mac);
uint32_t vnet_poll_rx(void (*fn)(const uint8_t *frame, uint32_t len));
bool vnet_send(const void *frame, uint32_t len);
bool vnet_announce_requested(void);
void vnet_post_malformed(uint32_t kind);

/* net.c */
void net_setup(void);
void net_step(uint64_t now);

/* virtio_blk.c */
struct vblk;
struct vblk *vblk_find(void);
uint64_t vblk_capacity_bytes(struct vblk *d);
enum vblk_op { VBLK_READ, VBLK_WRITE, VBLK_FLUSH };
enum vblk_result { VBLK_PENDING, VBLK_DONE, VBLK_ERROR };
bool vblk_submit(struct vblk *d, enum vblk_op op, uint64_t block, void *buf);
enum vblk_result vblk_poll(struct vblk *d);
bool vblk_sync(struct vblk *d, enum vblk_op op, uint64_t block, void *buf);

#endif /* __ASSEMBLER__ */
#endif
