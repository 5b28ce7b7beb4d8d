/* CPL0 side: descriptor tables, kvmclock registration, the int 0x80 gate,
 * exceptions and power-off.  All of this is emulated on kvm_pvm (about a
 * microsecond per instruction), so it does as little as it can. */
#include "guest.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define CR4_TSD (1ull << 2)
#define CR4_PAE (1ull << 5)
#define CR4_PCIDE (1ull << 17)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE (1ull << 22)
#define LAPIC_BASE 0xfee00000ull
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_ASSERT (1u << 14)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define UART_PORT 0x3f8
#define CONSOLE_WRITE_MAX 4096
#define GATE_VECTOR 0x80

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

struct idt_entry {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};

struct table_pointer {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

_Alignas(16) uint8_t kernel_stacks[MAX_CPUS][KSTACK_SIZE];
_Alignas(64) static struct tss tss[MAX_CPUS];
_Alignas(16) static struct idt_entry idt[256];
_Alignas(4096) static uint64_t high_pd_pool[16][512];

extern uint64_t gdt[];
extern uint64_t pdpt[];
extern const uint64_t exception_stubs[32];
extern const uint64_t gate_stub;

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void cpuid(uint32_t leaf, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(0));
}

static void lapic_write(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

/* One `rep outsb`: a single exit for the whole buffer. */
static void console_out(const void *buf, uint64_t len)
{
    if (len > CONSOLE_WRITE_MAX)
        len = CONSOLE_WRITE_MAX;
    __asm__ volatile("rep outsb" : "+S"(buf), "+c"(len) : "d"(UART_PORT) : "memory");
}

void kputs0(const char *s)
{
    console_out(s, strlen(s));
}

void power_off0(void)
{
    kputs0("POWEROFF\n");
    outb(0x64, 0xfe); /* i8042 reset: tern-vmm treats it as power-off */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static bool kvmclock_present(void)
{
    uint32_t r[4];
    cpuid(0x40000000, r);
    if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d) /* KVMKVMKVM */
        return false;
    cpuid(0x40000001, r);
    return (r[0] & KVM_FEATURE_CLOCKSOURCE2) != 0;
}

static void set_idt_entry(int vec, uint64_t handler, uint8_t dpl)
{
    struct idt_entry *e = &idt[vec];
    e->offset_low = (uint16_t)handler;
    e->selector = SEL_KCODE;
    e->ist = 0;
    e->type_attr = (uint8_t)(0x8e | dpl << 5); /* present interrupt gate */
    e->offset_mid = (uint16_t)(handler >> 16);
    e->offset_high = (uint32_t)(handler >> 32);
    e->reserved = 0;
}

static void build_idt(void)
{
    for (int v = 0; v < 32; v++)
        set_idt_entry(v, exception_stubs[v], 0);
    /* DPL 3 so the gate works where int 0x80 is delivered normally; on
     * kvm_pvm it arrives as #UD and trap_dispatch recognises it. */
    set_idt_entry(GATE_VECTOR, gate_stub, 3);
}

static void load_tss(uint32_t index)
{
    struct tss *t = &tss[index];
    uint64_t base = (uint64_t)t;
    uint64_t limit = sizeof(*t) - 1;
    uint32_t slot = GDT_TSS_FIRST + 2 * index;

    t->rsp[0] = (uint64_t)kernel_stacks[index] + KSTACK_SIZE;
    t->iomap_base = sizeof(*t);
    gdt[slot] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
                ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
    gdt[slot + 1] = base >> 32;
    __asm__ volatile("ltr %w0" : : "r"(slot * 8));
}

static void fix_cr4(void)
{
    uint64_t cr4;
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    /* SMEP/SMAP would stop CPL0 from touching the all-user pages, TSD would
     * trap rdtsc at CPL3. */
    cr4 &= ~(CR4_TSD | CR4_SMEP | CR4_SMAP | CR4_PKE | CR4_PCIDE);
    cr4 |= CR4_PAE;
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
}

/* Per-CPU part of the setup, for the BSP and each AP. */
void cpu_init_local(uint32_t index)
{
    struct table_pointer idtr = {sizeof(idt) - 1, (uint64_t)idt};

    fix_cr4();
    if (index == 0) {
        build_idt();
        if (!kvmclock_present()) {
            kputs0("FATAL no kvmclock\n");
            power_off0();
        }
        lapic_write(LAPIC_SVR, 0x1ff); /* software-enable, spurious 0xff */
    }
    __asm__ volatile("lidt %0" : : "m"(idtr));
    load_tss(index);
    cpus[index].index = index;
    wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&cpus[index].clock | 1);
}

static bool has_1g_pages(void)
{
    uint32_t r[4];
    cpuid(0x80000001, r);
    return (r[3] & (1u << 26)) != 0;
}

static void map_gib(uint64_t gib, bool huge, uint32_t *pool_used)
{
    if (huge) {
        pdpt[gib] = gib << 30 | 0x87;
        return;
    }
    if (*pool_used >= 16)
        return;
    uint64_t *pd = high_pd_pool[(*pool_used)++];
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = gib << 30 | i << 21 | 0x87;
    pdpt[gib] = (uint64_t)pd | 0x7;
}

/* The static tables cover 4 GiB; add RAM above that from the memory map. */
void map_high_ram(void)
{
    bool huge = has_1g_pages();
    uint32_t pool_used = 0;

    for (uint32_t r = 0; r < boot_info.nregions; r++) {
        const struct mem_region *m = &boot_info.regions[r];
        uint64_t end = m->addr + m->size;
        if (m->type != E820_RAM || end <= (4ull << 30))
            continue;
        uint64_t first = m->addr >> 30 < 4 ? 4 : m->addr >> 30;
        for (uint64_t g = first; g < (end + (1ull << 30) - 1) >> 30 && g < 512; g++)
            if (!pdpt[g])
                map_gib(g, huge, &pool_used);
    }
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

static void gate_service(struct trap_frame *f)
{
    uint64_t ret = 0;
    switch (f->rax) {
    case GATE_CONSOLE_WRITE: console_out((const void *)f->rdi, f->rsi); break;
    case GATE_POWEROFF: power_off0();
    case GATE_SEND_INIT:
        lapic_write(LAPIC_ICR_HIGH, 0);
        lapic_write(LAPIC_ICR_LOW, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
        break;
    case GATE_SEND_SIPI:
        lapic_write(LAPIC_ICR_HIGH, 0);
        lapic_write(LAPIC_ICR_LOW,
                    ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (f->rdi & 0xff));
        break;
    case GATE_MMIO_READ32: ret = *(volatile uint32_t *)f->rdi; break;
    case GATE_MMIO_WRITE32: *(volatile uint32_t *)f->rdi = (uint32_t)f->rsi; break;
    default: ret = (uint64_t)-1;
    }
    f->rax = ret;
}

static void fatal_exception(const struct trap_frame *f)
{
    char line[128];
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    snformat(line, sizeof(line), "EXCEPTION %lu rip=0x%lx err=0x%lx cr2=0x%lx\n",
             (unsigned long)f->vector, (unsigned long)f->rip, (unsigned long)f->error,
             (unsigned long)cr2);
    kputs0(line);
    power_off0();
}

static bool is_int80(uint64_t rip)
{
    const volatile uint8_t *p = (const volatile uint8_t *)rip;
    return p[0] == 0xcd && p[1] == GATE_VECTOR;
}

void trap_dispatch(struct trap_frame *f)
{
    if (f->vector == GATE_VECTOR) {
        gate_service(f);
        return;
    }
    /* kvm_pvm turns `int $0x80` at CPL3 into #UD at the instruction. */
    if (f->vector == 6 && (f->cs & 3) == 3 && is_int80(f->rip)) {
        gate_service(f);
        f->rip += 2;
        return;
    }
    fatal_exception(f);
}
