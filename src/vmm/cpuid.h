/* CPU models: the CPUID a guest sees is KVM's supported set filtered through a
 * named model, recorded so that a migration can check the destination. */
#ifndef TERN_VMM_CPUID_H
#define TERN_VMM_CPUID_H

#include <linux/kvm.h>

#include "common/err.h"

/* Supported CPUID of this host filtered by `model`. Caller frees. */
int cpuid_for_model(int kvm_fd, const char *model, struct kvm_cpuid2 **out, struct err *e);
/* Copy of a CPUID table (an incoming VM keeps its source's). */
int cpuid_copy(const struct kvm_cpuid2 *src, struct kvm_cpuid2 **out, struct err *e);
/* Refuses a source CPUID that asks for features this host's KVM does not
 * offer, naming the leaf and the bits. */
int cpuid_check_compatible(int kvm_fd, const struct kvm_cpuid2 *src, struct err *e);
/* Per-vCPU copy with APIC ids and topology filled in. */
int cpuid_set_vcpu(int vcpu_fd, const struct kvm_cpuid2 *base, unsigned index,
                   unsigned ncpus);
/* Comma-separated list of known models, for help and errors. */
const char *cpuid_models(void);

#endif
