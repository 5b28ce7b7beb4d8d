/* Intel MultiProcessor Specification 1.4 table in the EBDA: how Linux (and
 * tern-guest) learn the CPUs, the IOAPIC and the ISA interrupt routing
 * without ACPI. */
#ifndef TERN_VMM_MPTABLE_H
#define TERN_VMM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#define MPTABLE_MAX_CPUS 32
#define MPTABLE_IOAPIC_ADDR 0xfec00000U
#define MPTABLE_LAPIC_ADDR 0xfee00000U

/* Writes the floating pointer and the configuration table into buf (which
 * will be placed at guest physical `gpa`). Returns bytes used, or -ENOSPC /
 * -EINVAL for a CPU count of 0 or above MPTABLE_MAX_CPUS. */
int mptable_build(uint8_t *buf, size_t len, uint32_t gpa, unsigned ncpus);
/* Number of bytes mptable_build needs. */
size_t mptable_size(unsigned ncpus);

#endif
