/* kvmclock, read at CPL3 (rdtsc is native there), and CPU identity. */
#include "guest.h"

struct cpu cpus[MAX_CPUS];

/* Each CPU runs CPL3 code on its own stack in user_stacks[], so the stack
 * pointer says which CPU we are: no segment base or MSR needed. */
uint32_t this_cpu(void)
{
    uint64_t sp;
    __asm__("mov %%rsp, %0" : "=r"(sp));
    return (uint32_t)((sp - (uint64_t)user_stacks) / USTACK_SIZE);
}

uint64_t clock_ns(void)
{
    const volatile struct pvclock_time_info *c = &cpus[this_cpu()].clock;
    uint32_t version, mul;
    uint64_t tsc, stamp, system_time;
    int8_t shift;

    do {
        version = c->version;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        tsc = rdtsc();
        stamp = c->tsc_timestamp;
        system_time = c->system_time;
        mul = c->tsc_to_system_mul;
        shift = c->tsc_shift;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((version & 1) || version != c->version);

    uint64_t delta = tsc - stamp;
    if (shift < 0)
        delta >>= -shift;
    else
        delta <<= shift;
    return system_time + (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

void delay_ns(uint64_t ns)
{
    uint64_t start = clock_ns();
    while (clock_ns() - start < ns)
        cpu_relax();
}
