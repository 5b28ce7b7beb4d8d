#include "vmm/cpuid.h"

#include <errno.h>
#include <stdint.h>
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
    {"host", filter_host},
};

const char *cpuid_models(void)
{
    return "host";
}

int cpuid_for_model(int kvm_fd, const char *model, struct kvm_cpuid2 **out, struct err *e)
{
    const struct cpu_model *m = NULL;
    for (size_t i = 0; i < sizeof(cpu_models) / sizeof(cpu_models[0]); i++)
        if (strcmp(cpu_models[i].name, model) == 0)
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
            ent->ebx = (ent->ebx & 0x0000ffff) | (index << 24) | ((ncpus & 0xff) << 16);
        }
        if (ent->function == 0xb || ent->function == 0x1f)
            ent->edx = index; /* x2APIC id */
    }
    int rc = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
    free(cpuid);
    return rc;
}

int cpuid_copy(const struct kvm_cpuid2 *src, struct kvm_cpuid2 **out, struct err *e)
{
    size_t size = sizeof(*src) + src->nent * sizeof(src->entries[0]);
    *out = malloc(size);
    if (!*out)
        return err_set(e, ENOMEM, "out of memory");
    memcpy(*out, src, size);
    return 0;
}

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn,
                                                 uint32_t index)
{
    for (unsigned i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn && c->entries[i].index == index)
            return &c->entries[i];
    return NULL;
}

/* Feature leaves: a bit the source shows must be one KVM here can offer. */
static const struct {
    uint32_t fn, index;
    int reg;
    const char *name;
} feature_regs[] = {
    {1, 0, 2, "1.ecx"},
    {1, 0, 3, "1.edx"},
    {7, 0, 1, "7.0.ebx"},
    {7, 0, 2, "7.0.ecx"},
    {7, 0, 3, "7.0.edx"},
    {0xd, 1, 0, "0xd.1.eax"},
    {0x80000001, 0, 2, "0x80000001.ecx"},
    {0x80000001, 0, 3, "0x80000001.edx"},
};

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, int reg)
{
    const uint32_t regs[4] = {e->eax, e->ebx, e->ecx, e->edx};
    return regs[reg];
}

int cpuid_check_compatible(int kvm_fd, const struct kvm_cpuid2 *src, struct err *e)
{
    struct kvm_cpuid2 *host;
    int rc = cpuid_for_model(kvm_fd, "host", &host, e);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]) && !rc; i++) {
        const struct kvm_cpuid_entry2 *s = cpuid_find(src, feature_regs[i].fn,
                                                      feature_regs[i].index);
        const struct kvm_cpuid_entry2 *h = cpuid_find(host, feature_regs[i].fn,
                                                      feature_regs[i].index);
        uint32_t want = s ? reg_of(s, feature_regs[i].reg) : 0;
        uint32_t have = h ? reg_of(h, feature_regs[i].reg) : 0;
        /* the hypervisor bit is ours to set, not the host's to offer */
        if (feature_regs[i].fn == 1 && feature_regs[i].reg == 2)
            have |= 1U << 31;
        if (want & ~have)
            rc = err_set(e, ENOTSUP,
                         "cpu features missing on this host: cpuid %s "
                         "bits 0x%08x",
                         feature_regs[i].name, want & ~have);
    }
    free(host);
    return rc;
}
