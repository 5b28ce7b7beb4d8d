/* virtio-net across a live migration: its section (docs/protocol.md,
 * "virtio-net"), and what the destination does at the commit: drop the
 * frames that reached its TAP before (the source may have answered them),
 * then announce the VM where it now runs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "devices/virtio_net.h"

#define ETH_P_RARP 0x8035
#define ETH_P_IP 0x0800
#define ETH_MIN_FRAME 60
#define RARP_REQUEST_REVERSE 3

static void put16be(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A RARP "request reverse" from the VM's MAC to everyone, as QEMU sends:
 * every switch on the way learns the port behind which the MAC now is. */
void virtio_net_send_rarp(struct virtio_net *net)
{
    uint8_t f[NET_HDR_LEN + ETH_MIN_FRAME] = {0};
    uint8_t *eth = f + NET_HDR_LEN, *arp = eth + 14;
    memset(eth, 0xff, 6);
    memcpy(eth + 6, net->mac, VIRTIO_NET_MAC_LEN);
    put16be(eth + 12, ETH_P_RARP);
    put16be(arp, 1); /* ethernet */
    put16be(arp + 2, ETH_P_IP);
    arp[4] = 6;
    arp[5] = 4;
    put16be(arp + 6, RARP_REQUEST_REVERSE);
    memcpy(arp + 8, net->mac, VIRTIO_NET_MAC_LEN);
    memcpy(arp + 18, net->mac, VIRTIO_NET_MAC_LEN);
    struct iovec iov = {f, sizeof(f)};
    if (net->dead || net->backend.ops->send(&net->backend, &iov, 1) < 0)
        return;
    net->stats.rarps++;
}

void virtio_net_announce(struct virtio_net *net)
{
    pthread_mutex_lock(&net->mmio.lock);
    virtio_net_send_rarp(net);
    net->announce_left = VIRTIO_NET_ANNOUNCE_ROUNDS - 1;
    net->announce_next_ns = virtio_net_now_ns() + 10000000ULL;
    net->stats.announces++;
    const struct virtio_mmio_regs *r = &net->mmio.regs;
    if ((r->driver_features & VIRTIO_NET_F_GUEST_ANNOUNCE) &&
        (r->status & VIRTIO_STATUS_DRIVER_OK)) {
        net->status |= VIRTIO_NET_S_ANNOUNCE;
        virtio_mmio_config_changed(&net->mmio);
    }
    virtio_net_kick(net);
    pthread_mutex_unlock(&net->mmio.lock);
}

static int net_save(void *opaque, struct buf *out, struct err *e)
{
    struct virtio_net *net = opaque;
    (void)e;
    pthread_mutex_lock(&net->mmio.lock);
    buf_put(out, net->mac, VIRTIO_NET_MAC_LEN);
    buf_put_u16(out, net->status);
    pthread_mutex_unlock(&net->mmio.lock);
    virtio_mmio_save(&net->mmio, out);
    return 0;
}

/* The MAC travels with the VM; one given on the destination must match. */
static int net_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct virtio_net *net = opaque;
    (void)version;
    const uint8_t *mac = reader_take(in, VIRTIO_NET_MAC_LEN);
    uint16_t status = reader_u16(in);
    if (in->bad || !mac)
        return err_set(e, EINVAL, "virtio-net %u: truncated state", net->index);
    if ((mac[0] & 1) || (status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE)))
        return err_set(e, EINVAL, "virtio-net %u: bad mac or status 0x%x", net->index,
                       status);
    if (net->mac_given && memcmp(mac, net->mac, VIRTIO_NET_MAC_LEN) != 0) {
        char theirs[18], ours[18];
        virtio_net_format_mac(mac, theirs);
        virtio_net_format_mac(net->mac, ours);
        return err_set(e, EINVAL, "virtio-net %u: source mac %s, --net says %s", net->index,
                       theirs, ours);
    }
    int rc = virtio_mmio_load(&net->mmio, in, e);
    if (!rc && reader_finish(in))
        rc = err_set(e, EINVAL, "virtio-net %u: trailing bytes in state", net->index);
    if (rc)
        return rc;
    pthread_mutex_lock(&net->mmio.lock);
    memcpy(net->mac, mac, VIRTIO_NET_MAC_LEN);
    net->status = net->dead ? 0 : VIRTIO_NET_S_LINK_UP; /* this side's link */
    pthread_mutex_unlock(&net->mmio.lock);
    return 0;
}

/* Frames that reached this TAP before the commit were meant for the VM
 * while it still ran on the source: delivering them now would hand the
 * guest requests it may have answered already. */
static uint64_t drain_backend(struct virtio_net *net)
{
    uint64_t n = 0;
    while (!net->dead &&
           net->backend.ops->recv(&net->backend, net->rx_frame, VIRTIO_NET_FRAME_MAX) >= 0)
        n++;
    net->rx_frame_len = 0;
    return n;
}

static int net_post_load(void *opaque, struct err *e)
{
    struct virtio_net *net = opaque;
    (void)e;
    pthread_mutex_lock(&net->mmio.lock);
    uint64_t dropped = drain_backend(net);
    net->stats.rx_flushed += dropped;
    net->stats.first_tx_ms = -1;
    net->loaded_ns = virtio_net_now_ns();
    net->stats.loaded_at_us = clock_real_ns() / 1000;
    pthread_mutex_unlock(&net->mmio.lock);
    virtio_mmio_post_load(&net->mmio);
    if (!net->no_announce)
        virtio_net_announce(net);
    char m[18];
    virtio_net_format_mac(net->mac, m);
    log_info("net", "net%u: %s %s on tap '%s'; %llu frames from before the commit dropped",
             net->index, net->no_announce ? "not announcing" : "announced", m,
             net->backend.ifname, (unsigned long long)dropped);
    return 0;
}

const struct devstate_ops virtio_net_state_ops = {
    "virtio-net", 1, net_save, net_load, net_post_load,
};
