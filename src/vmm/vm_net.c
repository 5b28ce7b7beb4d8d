/* tern-vmm's NICs (vm.h): their TAPs are opened with the disks, before
 * KVM, so that a bad --net fails early; the devices are placed with the
 * others. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vm.h"

/* NICs sit after the disks' slots, on IOAPIC pins above the ISA ones (the
 * guests here poll; the MP table lists ISA lines only) */
#define VM_NET_SLOT0 VM_MAX_DISKS
#define VM_NET_GSI0 16

int vm_nets_open(struct vm *vm, struct err *e)
{
    const char *seed = vm->config.name ? vm->config.name : "tern";
    for (unsigned i = 0; i < vm->config.nnets; i++) {
        const struct vm_net_config *n = &vm->config.net[i];
        int rc = virtio_net_open(&vm->net[i], i, n->tap, n->mac_given ? n->mac : NULL, seed,
                                 e);
        vm->nnets++; /* released even when half open */
        vm->net[i].no_announce = n->no_announce;
        if (rc)
            return rc;
    }
    return 0;
}

/* The receive and transmit notifies reach the NIC's thread through KVM (an
 * ioeventfd per queue): the vCPU does not come out to user space for them,
 * a round trip that costs a notify several microseconds here, and a UDP
 * echo takes two. Refused, they take the MMIO exit as before. */
static void net_ioeventfds(struct vm *vm, struct virtio_net *net, uint64_t base)
{
    for (unsigned q = 0; q < 2; q++) {
        struct kvm_ioeventfd io = {
            .datamatch = q,
            .addr = base + VIRTIO_MMIO_QUEUE_NOTIFY,
            .len = 4,
            .fd = virtio_net_kick_fd(net, q),
            .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
        };
        if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io)) {
            log_info("vmm", "net%u: no ioeventfd (%s): notifies exit to tern-vmm",
                     net->index, strerror(errno));
            return;
        }
    }
}

int vm_nets_attach(struct vm *vm, void (*irq_set)(void *, unsigned, int), struct err *e)
{
    for (unsigned i = 0; i < vm->nnets; i++) {
        uint64_t base = VM_VIRTIO_BASE + (VM_NET_SLOT0 + i) * VIRTIO_MMIO_SIZE;
        struct irq_line irq = {irq_set, vm, VM_NET_GSI0 + i, 0};
        int rc = virtio_net_attach(&vm->net[i], base, &vm->ram, irq, e);
        if (rc)
            return rc;
        rc = bus_add(&vm->mmio, "virtio-net", base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops,
                     &vm->net[i].mmio);
        if (rc)
            return err_set(e, -rc, "device bus: %s", strerror(-rc));
        net_ioeventfds(vm, &vm->net[i], base);
    }
    return 0;
}
