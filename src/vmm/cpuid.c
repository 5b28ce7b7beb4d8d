#include "vmm/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 512
#define LEAF1_ECX_HYPERVISOR (1U << 31)
#define LEAF7_EDX_ARCH_CAPABILITIES (1U << 29)

struct cpu_model {
    const char *name;
    void (*filter)(struct kvm_cpuid2 *cpuid);
};

/* QEMU on these hosts aborts on MSR 0x10a; leaving ARCH_CAPABILITIES out keeps
 * guests from depending on an MSR the next host may not let us restore. */
static void filter_host(struct kvm_cpuid2 *cpuid)
{
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *ent = &cpuid->entries[i];
        if (ent->function == 7 && ent->index == 0)
            ent->edx &= ~LEAF7_EDX_ARCH_CAPABILITIES;
        if (ent->function == 1)
            ent->ecx |= LEAF1_ECX_HYPERVISOR;
    }
}

static const struct cpu_model cpu_models[] = {
    { "host", filter_host },
};

const char *cpuid_models(void)
{
    return "host";
}

int cpuid_for_model(int kvm_fd, const char *model, struct kvm_cpuid2 **out,
                    struct err *e)
{
    const struct cpu_model *m = NULL;
    for (size_t i = 0; i < sizeof(cpu_models) / sizeof(cpu_models[0]); i++)
        if (!strcmp(cpu_models[i].name, model))
            m = &cpu_models[i];
    if (!m)
        return err_set(e, EINVAL, "unknown cpu model '%s' (known: %s)", model,
                       cpuid_models());
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) +
                                      CPUID_MAX_ENTRIES * sizeof(cpuid->entries[0]));
    if (!cpuid)
        return -ENOMEM;
    cpuid->nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
        int rc = errno;
        free(cpuid);
        return err_set(e, rc, "KVM_GET_SUPPORTED_CPUID: %s", strerror(rc));
    }
    m->filter(cpuid);
    *out = cpuid;
    return 0;
}

int cpuid_set_vcpu(int vcpu_fd, const struct kvm_cpuid2 *base, unsigned index,
                   unsigned ncpus)
{
    size_t size = sizeof(*base) + base->nent * sizeof(base->entries[0]);
    struct kvm_cpuid2 *cpuid = malloc(size);
    if (!cpuid)
        return -ENOMEM;
    memcpy(cpuid, base, size);
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *ent = &cpuid->entries[i];
        if (ent->function == 1) {
            /* initial APIC id and logical processor count */
            ent->ebx = (ent->ebx & 0x0000ffff) | (index << 24) |
                       ((ncpus & 0xff) << 16);
        }
        if (ent->function == 0xb || ent->function == 0x1f)
            ent->edx = index;   /* x2APIC id */
    }
    int rc = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
    free(cpuid);
    return rc;
}
