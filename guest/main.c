/* The boot CPU's CPL3 program: options, banner, APs, then the main loop
 * that interleaves heartbeat, dirtier, verifier, disk and exit timer. */
#include "guest.h"

#define GUEST_VERSION 1

/* Heartbeat state lives in guest RAM, so it survives a live migration. */
static uint64_t hb_seq;
static uint64_t hb_next_ns;

static uint64_t ram_mib(void)
{
    uint64_t bytes = 0;
    for (uint32_t r = 0; r < boot_info.nregions; r++)
        if (boot_info.regions[r].type == E820_RAM)
            bytes += boot_info.regions[r].size;
    return bytes >> 20;
}

static void print_banner(uint32_t n)
{
    print("tern-guest %d cpus=%u mem=%lu", GUEST_VERSION, n, (unsigned long)ram_mib());
    report_cmdline_problems();
}

/* Next deadline from the previous one; missed slots are skipped. */
static void heartbeat(uint64_t now)
{
    uint64_t period = opts.hb_ms * NSEC_PER_MSEC;
    if (!period || now < hb_next_ns)
        return;
    if (opts.hb_clock)
        print("HB %lu %lu %lu", (unsigned long)++hb_seq,
              (unsigned long)dirtier_total_pages(), (unsigned long)(now / 1000));
    else
        print("HB %lu %lu", (unsigned long)++hb_seq, (unsigned long)dirtier_total_pages());
    hb_next_ns += period;
    if (hb_next_ns <= now)
        hb_next_ns += ((now - hb_next_ns) / period + 1) * period;
}

/* tern.mmio=N: the cost of one MMIO exit round trip, measured from CPL3 by
 * reading a register no device claims (0xd00ff000, in the virtio window
 * above any device tern-vmm places): every read exits to the VMM and back. */
static void mmio_probe(void)
{
    if (!opts.mmio_reads)
        return;
    volatile uint32_t *reg = (volatile uint32_t *)0xd00ff000UL;
    uint64_t t0 = clock_ns();
    for (uint64_t i = 0; i < opts.mmio_reads; i++)
        (void)*reg;
    uint64_t ns = clock_ns() - t0;
    print("MMIO %lu reads %lu ns/read", (unsigned long)opts.mmio_reads,
          (unsigned long)(ns / opts.mmio_reads));
}

void user_main(uint32_t cpu)
{
    (void)cpu;
    parse_cmdline(boot_info.cmdline);
    start_aps(firmware_cpu_count(), print_banner);
    if (!dirtier_setup(opts.smp ? ncpus : 1))
        fatal("ws too large");
    disk_setup();
    net_setup();
    mmio_probe();

    uint64_t start = clock_ns();
    uint64_t exit_at = start + opts.exit_ms * NSEC_PER_MSEC;
    hb_next_ns = start;
    workload_ready = 1;
    for (;;) {
        uint64_t now = clock_ns();
        heartbeat(now);
        dirtier_step(0, now);
        disk_step(now);
        net_step(now);
        console_step(now);
        if (opts.exit_ms && now >= exit_at)
            power_off();
    }
}
