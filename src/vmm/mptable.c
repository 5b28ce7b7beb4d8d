#include "vmm/mptable.h"

#include <errno.h>
#include <string.h>

#define MP_FLOAT_SIZE 16
#define MP_HEADER_SIZE 44
#define MP_CPU_SIZE 20
#define MP_ENTRY_SIZE 8
#define MP_ISA_IRQS 16
#define MP_SPEC_REV 4
#define APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11

enum { MP_CPU = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINT = 3, MP_LINT = 4 };
enum { INT_VECTORED = 0, INT_NMI = 1, INT_EXTINT = 3 };

size_t mptable_size(unsigned ncpus)
{
    return MP_FLOAT_SIZE + MP_HEADER_SIZE + ncpus * MP_CPU_SIZE +
           (3 + MP_ISA_IRQS + 1) * MP_ENTRY_SIZE;
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return (uint8_t)-sum;
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint8_t *put_cpus(uint8_t *p, unsigned ncpus)
{
    for (unsigned i = 0; i < ncpus; i++, p += MP_CPU_SIZE) {
        p[0] = MP_CPU;
        p[1] = (uint8_t)i; /* local APIC id = vCPU index */
        p[2] = APIC_VERSION;
        p[3] = 0x01 | (i == 0 ? 0x02 : 0); /* enabled, boot processor */
        put32(p + 4, 0x600);               /* family 6 signature */
        put32(p + 8, 0x201);               /* FPU, APIC */
    }
    return p;
}

static uint8_t *put_entry(uint8_t *p, uint8_t type, uint8_t a, uint8_t b, uint8_t c,
                          uint8_t d, uint8_t e, uint8_t f, uint8_t g)
{
    p[0] = type;
    p[1] = a;
    p[2] = b;
    p[3] = c;
    p[4] = d;
    p[5] = e;
    p[6] = f;
    p[7] = g;
    return p + MP_ENTRY_SIZE;
}

static uint8_t *put_routing(uint8_t *p, uint8_t ioapic_id)
{
    p = put_entry(p, MP_BUS, 0, 'I', 'S', 'A', ' ', ' ', ' ');
    p = put_entry(p, MP_IOAPIC, ioapic_id, IOAPIC_VERSION, 1, 0, 0, 0, 0);
    put32(p - 4, MPTABLE_IOAPIC_ADDR);
    for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
        /* the PIT's IRQ 0 arrives on IOAPIC pin 2, as on PC hardware */
        uint8_t pin = irq == 0 ? 2 : irq;
        p = put_entry(p, MP_IOINT, INT_VECTORED, 0, 0, 0, irq, ioapic_id, pin);
    }
    p = put_entry(p, MP_LINT, INT_EXTINT, 0, 0, 0, 0, 0xff, 0);
    p = put_entry(p, MP_LINT, INT_NMI, 0, 0, 0, 0, 0xff, 1);
    return p;
}

int mptable_build(uint8_t *buf, size_t len, uint32_t gpa, unsigned ncpus)
{
    if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
        return -EINVAL;
    size_t size = mptable_size(ncpus);
    if (len < size)
        return -ENOSPC;
    memset(buf, 0, size);
    uint8_t *fp = buf, *hdr = buf + MP_FLOAT_SIZE;
    uint8_t *p = put_cpus(hdr + MP_HEADER_SIZE, ncpus);
    p = put_routing(p, (uint8_t)ncpus);
    uint16_t table_len = (uint16_t)(p - hdr);
    memcpy(hdr, "PCMP", 4);
    put16(hdr + 4, table_len);
    hdr[6] = MP_SPEC_REV;
    memcpy(hdr + 8, "TERN    ", 8);
    memcpy(hdr + 16, "tern-vmm    ", 12);
    put16(hdr + 34, (uint16_t)(ncpus + 2 + MP_ISA_IRQS + 2));
    put32(hdr + 36, MPTABLE_LAPIC_ADDR);
    hdr[7] = checksum(hdr, table_len);
    memcpy(fp, "_MP_", 4);
    put32(fp + 4, gpa + MP_FLOAT_SIZE);
    fp[8] = 1; /* length in 16-byte units */
    fp[9] = MP_SPEC_REV;
    fp[10] = checksum(fp, MP_FLOAT_SIZE);
    return (int)size;
}
