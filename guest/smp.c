/* CPU discovery (Intel MP table) and AP start-up, driven from CPL3; only the
 * IPIs themselves go through the gate. */
#include "guest.h"

#define EBDA_SEGMENT_PTR 0x40e
#define TERN_EBDA 0x9fc00
#define INIT_TO_SIPI_NS (10 * NSEC_PER_MSEC)
#define SIPI_GAP_NS (1 * NSEC_PER_MSEC)
#define WAIT_KNOWN_NS (1000 * NSEC_PER_MSEC)
#define WAIT_UNKNOWN_NS (200 * NSEC_PER_MSEC)

uint32_t ncpus = 1;
volatile uint32_t workload_ready;
static volatile uint32_t aps_arrived;
static volatile uint32_t banner_printed;

static bool checksum_ok(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum == 0;
}

static const uint8_t *find_mp_floating(uint64_t start, uint64_t len)
{
    for (uint64_t a = start; a + 16 <= start + len; a += 16) {
        const uint8_t *p = phys(a);
        if (memcmp(p, "_MP_", 4) == 0 && p[8] >= 1 && checksum_ok(p, 16u * p[8]))
            return p;
    }
    return NULL;
}

static uint32_t count_processors(const uint8_t *cfg)
{
    uint16_t length = (uint16_t)(cfg[4] | cfg[5] << 8);
    uint16_t count = (uint16_t)(cfg[34] | cfg[35] << 8);
    const uint8_t *e = cfg + 44, *end = cfg + length;
    uint32_t cpus_enabled = 0;

    for (uint16_t i = 0; i < count && e < end; i++) {
        if (e[0] == 0) { /* processor: 20 bytes, flags bit 0 = enabled */
            cpus_enabled += e[3] & 1;
            e += 20;
        } else {
            e += 8;
        }
    }
    return cpus_enabled;
}

/* Number of enabled CPUs in the MP table, 0 if there is no table. */
static uint32_t mp_table_cpu_count(void)
{
    uint64_t ebda = (uint64_t) * (const volatile uint16_t *)phys(EBDA_SEGMENT_PTR) << 4;
    const uint8_t *fp = NULL;

    if (ebda >= 0x80000 && ebda < 0xa0000)
        fp = find_mp_floating(ebda, 1024);
    if (!fp)
        fp = find_mp_floating(TERN_EBDA, 1024);
    if (!fp)
        fp = find_mp_floating(0xf0000, 0x10000);
    if (!fp)
        return 0;
    uint64_t cfg_addr = (uint64_t)(fp[4] | fp[5] << 8 | fp[6] << 16) | (uint64_t)fp[7]
                                                                           << 24;
    const uint8_t *cfg = phys(cfg_addr);
    if (!cfg_addr || memcmp(cfg, "PCMP", 4) != 0)
        return 0;
    return count_processors(cfg);
}

static const uint8_t *find_rsdp(void)
{
    if (boot_info.rsdp)
        return phys(boot_info.rsdp);
    for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
        if (memcmp(phys(a), "RSD PTR ", 8) == 0 && checksum_ok(phys(a), 20))
            return phys(a);
    return NULL;
}

static uint32_t read_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint32_t count_madt_cpus(const uint8_t *madt)
{
    const uint8_t *e = madt + 44, *end = madt + read_le32(madt + 4);
    uint32_t n = 0;
    while (e + 2 <= end && e[1] >= 2) {
        if (e[0] == 0 && e[1] >= 8)
            n += read_le32(e + 4) & 1;
        else if (e[0] == 9 && e[1] >= 12)
            n += read_le32(e + 8) & 1;
        e += e[1];
    }
    return n;
}

/* Enabled CPUs in the ACPI MADT (QEMU's microvm has no MP table). */
static uint32_t acpi_cpu_count(void)
{
    const uint8_t *rsdp = find_rsdp();
    if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) != 0)
        return 0;
    bool xsdt = rsdp[15] >= 2 && read_le32(rsdp + 24 + 4) == 0 && read_le32(rsdp + 24);
    const uint8_t *sdt = phys(xsdt ? read_le32(rsdp + 24) : read_le32(rsdp + 16));
    if (!sdt || (memcmp(sdt, xsdt ? "XSDT" : "RSDT", 4) != 0))
        return 0;
    uint32_t entry = xsdt ? 8 : 4;
    uint32_t nentries = (read_le32(sdt + 4) - 36) / entry;
    for (uint32_t i = 0; i < nentries; i++) {
        const uint8_t *t = phys(read_le32(sdt + 36 + i * entry));
        if (memcmp(t, "APIC", 4) == 0)
            return count_madt_cpus(t);
    }
    return 0;
}

/* CPUs the firmware describes (MP table, then ACPI), 0 if unknown. */
uint32_t firmware_cpu_count(void)
{
    uint32_t n = mp_table_cpu_count();
    if (!n)
        n = acpi_cpu_count();
    return n > MAX_CPUS ? MAX_CPUS : n;
}

static void wait_for_aps(uint32_t want, uint64_t timeout_ns)
{
    uint64_t start = clock_ns();
    while (aps_arrived < want && clock_ns() - start < timeout_ns)
        cpu_relax();
}

/* expected = CPUs from the MP table, or 0 to count whoever answers.  The
 * banner must be the first line, so it is printed here: before the APs
 * start when the count is known, after the wait when it is not. */
void start_aps(uint32_t expected, void (*print_banner)(uint32_t))
{
    if (expected) {
        print_banner(expected);
        banner_printed = 1;
        if (expected == 1)
            return;
    }
    memcpy(phys(AP_TRAMPOLINE_ADDR), ap_trampoline_start,
           (size_t)(ap_trampoline_end - ap_trampoline_start));
    gate_call(GATE_SEND_INIT, 0, 0);
    delay_ns(INIT_TO_SIPI_NS);
    gate_call(GATE_SEND_SIPI, AP_TRAMPOLINE_ADDR >> 12, 0);
    delay_ns(SIPI_GAP_NS);
    if (!expected || aps_arrived < expected - 1)
        gate_call(GATE_SEND_SIPI, AP_TRAMPOLINE_ADDR >> 12, 0);
    if (expected)
        wait_for_aps(expected - 1, WAIT_KNOWN_NS);
    else
        wait_for_aps(MAX_CPUS - 1, WAIT_UNKNOWN_NS);
    ncpus = 1 + aps_arrived;
    if (!expected) {
        print_banner(ncpus);
        banner_printed = 1;
    }
}

void ap_user_main(uint32_t index)
{
    __atomic_fetch_add(&aps_arrived, 1, __ATOMIC_SEQ_CST);
    cpus[index].up = 1;
    while (!banner_printed)
        cpu_relax();
    print("CPU %u up", index);
    while (!workload_ready)
        cpu_relax();
    for (;;) {
        if (opts.smp)
            dirtier_step(index, clock_ns());
        cpu_relax();
    }
}
