/* What virtio-net needs from the host side of a NIC: frames in and out,
 * each led by a 12-byte virtio_net_hdr_v1, and a file descriptor to wait
 * on. The TAP backend (net_tap) is the one there is; vhost-net would be
 * another, which is why the device never calls read or write on a TAP
 * itself. A vhost-net backend moves the rings instead of frames: it would
 * take the queues' kick eventfds (virtio_net_kick_fd, already KVM
 * ioeventfds), an eventfd per queue for KVM to inject as the interrupt
 * (an irqfd), the guest RAM table and the ring addresses at DRIVER_OK,
 * and hand the rings' indexes back for a migration; the device's thread
 * then stays out of the data path (docs/tern-vmm.md, "Network"). */
#ifndef TERN_DEVICES_NET_BACKEND_H
#define TERN_DEVICES_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define NET_IFNAME_MAX 16
#define NET_HDR_LEN 12 /* virtio_net_hdr_v1: VERSION_1 always has num_buffers */

struct net_backend;

struct net_backend_ops {
    const char *kind;
    /* One frame, header first. Bytes sent or -errno (-EAGAIN: queue full). */
    ssize_t (*send)(struct net_backend *nb, const struct iovec *iov, int niov);
    /* One frame, header first, into buf. Its length, or -EAGAIN when none
     * waits, or another -errno. */
    ssize_t (*recv)(struct net_backend *nb, void *buf, size_t len);
    /* Whether frames may come in with a partial checksum (the guest took
     * VIRTIO_NET_F_GUEST_CSUM). 0 or -errno. */
    int (*set_csum_offload)(struct net_backend *nb, bool on);
    void (*close)(struct net_backend *nb);
};

struct net_backend {
    const struct net_backend_ops *ops;
    int fd; /* readable when a frame waits */
    char ifname[NET_IFNAME_MAX];
    bool created; /* did not exist before: goes away with the process */
};

#endif
