/* Migratable state of the VM itself (not of a device): each vCPU, the
 * in-kernel irqchip, the PIT and kvmclock. Registered in vm->devstate beside
 * the devices' own sections. Section formats: docs/protocol.md. */
#ifndef TERN_VMM_VMSTATE_H
#define TERN_VMM_VMSTATE_H

#include <stdint.h>

#include "common/devstate.h"
#include "common/err.h"

struct vm;

struct vm_clock_state {
    uint64_t clock; /* kvmclock ns when the VM was paused */
    uint32_t flags;
    uint64_t realtime_ns; /* CLOCK_REALTIME at the same moment */
};

/* Probes the MSRs and xsave size this host can carry. Called once the
 * vCPUs exist, before the sections are saved or loaded. */
int vmstate_probe(struct vm *vm, struct err *e);
/* Registers the VM's own sections in stream order: cpu per vCPU, irqchip,
 * pit, kvmclock. vm NULL: entries without an owner (see
 * vm_register_sections). 0 or devstate_register's -errno. */
int vmstate_register(struct devstate_registry *reg, struct vm *vm, unsigned ncpus);
/* Sets kvmclock to the loaded value moved on by the wall-clock time that
 * passed since the source paused; right before the destination resumes. */
int vmstate_apply_clock(struct vm *vm, struct err *e);

#endif
