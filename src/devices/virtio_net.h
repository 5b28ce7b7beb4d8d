/* virtio-net on virtio-mmio (modern), backed by a net_backend (a TAP).
 *
 * Frames move on the device's own I/O thread, not on a vCPU's exit path: a
 * notify only wakes it. Every byte it writes into guest RAM is marked dirty
 * (docs/design.md, invariant 1), and it writes none while the VM is paused
 * (virtio_net_pause), so the last dirty-log pass of a migration sees them
 * all. Queues: 0 receive, 1 transmit, 2 control (announce acknowledgement). */
#ifndef TERN_DEVICES_VIRTIO_NET_H
#define TERN_DEVICES_VIRTIO_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/devstate.h"
#include "common/err.h"
#include "devices/net_backend.h"
#include "devices/virtio_mmio.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_MAC_LEN 6
#define VIRTIO_NET_FRAME_MAX (NET_HDR_LEN + 65550)

#define VIRTIO_NET_F_CSUM (1ULL << 0)
#define VIRTIO_NET_F_GUEST_CSUM (1ULL << 1)
#define VIRTIO_NET_F_MAC (1ULL << 5)
#define VIRTIO_NET_F_MRG_RXBUF (1ULL << 15)
#define VIRTIO_NET_F_STATUS (1ULL << 16)
#define VIRTIO_NET_F_CTRL_VQ (1ULL << 17)
#define VIRTIO_NET_F_GUEST_ANNOUNCE (1ULL << 21)
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2
/* RARP rounds of an announce; QEMU sends 5 too, the first after 50 ms */
#define VIRTIO_NET_ANNOUNCE_ROUNDS 5

struct virtio_net_stats {
    uint64_t rx_packets, rx_bytes, rx_dropped, rx_flushed;
    uint64_t tx_packets, tx_bytes, tx_dropped;
    uint64_t announces, rarps;
    double first_tx_ms;    /* after the last post_load: first frame out, or -1 */
    uint64_t loaded_at_us; /* wall clock (µs since the epoch) of the last post_load */
};

struct virtio_net {
    struct virtio_mmio mmio; /* its lock guards everything below too */
    struct net_backend backend;
    unsigned index;
    uint8_t mac[VIRTIO_NET_MAC_LEN];
    bool mac_given;   /* --net ...,mac=: a source with another MAC is refused */
    bool no_announce; /* post_load does not announce (to measure without) */
    uint16_t status;
    bool paused, stopping, dead, csum_offload;
    /* a frame read from the backend that found no receive buffer yet */
    uint8_t *rx_frame;
    uint32_t rx_frame_len;
    bool rx_waits_for_buffers;
    unsigned announce_left; /* RARP rounds still to send */
    uint64_t announce_next_ns;
    uint64_t loaded_ns; /* post_load, for first_tx_ms */
    struct virtio_net_stats stats;
    struct virtq_chain chain;
    pthread_t thread;
    bool thread_running;
    int epoll_fd, kick_fd;
    uint32_t backend_events; /* what epoll waits for on the backend */
};

/* Opens TAP ifname. mac NULL: derived from `seed` (the VM's name) and the
 * NIC's index, the same on every start. 0 or -errno with e set. */
int virtio_net_open(struct virtio_net *net, unsigned index, const char *ifname,
                    const uint8_t *mac, const char *seed, struct err *e);
/* Places the device and starts its I/O thread. */
int virtio_net_attach(struct virtio_net *net, uint64_t base, struct guest_ram *ram,
                      struct irq_line irq, struct err *e);
/* The eventfd that wakes the NIC's thread for a notify of `queue` (the
 * receive and transmit queues; -1 for the others): the VMM may have KVM
 * write it on the driver's notify (an ioeventfd), so that the vCPU does
 * not leave the kernel for it. Valid after virtio_net_attach. */
int virtio_net_kick_fd(const struct virtio_net *net, unsigned queue);
/* Stops the thread, closes the backend. */
void virtio_net_release(struct virtio_net *net);
/* Paused: no frame is read and nothing is written into guest RAM; frames
 * wait in the backend (and the kernel drops what overflows). */
void virtio_net_pause(struct virtio_net *net);
void virtio_net_resume(struct virtio_net *net);
/* Tells the network where the VM is now: a RARP at once and on a short
 * backoff, and the ANNOUNCE status bit for a guest that took
 * GUEST_ANNOUNCE (it then sends its own gratuitous ARP). */
void virtio_net_announce(struct virtio_net *net);
void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out);
/* "52:54:00:12:34:56" into mac; 0 or -EINVAL. A multicast address is refused. */
int virtio_net_parse_mac(const char *text, uint8_t *mac);
void virtio_net_format_mac(const uint8_t *mac, char *out /* 18 bytes */);
/* Section "virtio-net" version 1 (virtio_net_state.c). */
extern const struct devstate_ops virtio_net_state_ops;

/* Internal to virtio_net*.c: called with mmio.lock held. */
void virtio_net_send_rarp(struct virtio_net *net);
void virtio_net_kick(struct virtio_net *net);
uint64_t virtio_net_now_ns(void);

#endif
