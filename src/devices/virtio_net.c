#include "devices/virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "devices/net_tap.h"

enum { RXQ = 0, TXQ = 1, CTRLQ = 2, NQUEUES = 3 };
/* frames per pass of the thread before it looks at the other queue */
#define RX_BATCH 64
#define TX_BATCH 64
#define RX_MAX_CHAINS 64
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
enum { CTRL_OK = 0, CTRL_ERR = 1 };

#define NET_FEATURES                                                       \
    (VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_MAC |      \
     VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_CTRL_VQ | \
     VIRTIO_NET_F_GUEST_ANNOUNCE)

/* Where a received frame goes: the writable segments of the chains taken
 * for it, in order. */
struct rx_plan {
    unsigned nchains, nsegs;
    uint16_t head[RX_MAX_CHAINS];
    uint32_t fill[RX_MAX_CHAINS];
    struct {
        uint64_t gpa;
        uint32_t len;
        uint16_t chain;
    } seg[VIRTQ_MAX_SIZE];
};

uint64_t virtio_net_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int virtio_net_parse_mac(const char *text, uint8_t *mac)
{
    unsigned b[VIRTIO_NET_MAC_LEN];
    char end;
    if (strlen(text) != 17 || sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                     &b[3], &b[4], &b[5], &end) != 6)
        return -EINVAL;
    for (unsigned i = 0; i < VIRTIO_NET_MAC_LEN; i++)
        mac[i] = (uint8_t)b[i];
    bool zero = !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
    return (mac[0] & 1) || zero ? -EINVAL : 0;
}

void virtio_net_format_mac(const uint8_t *mac, char *out)
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}

int virtio_net_open(struct virtio_net *net, unsigned index, const char *ifname,
                    const uint8_t *mac, const char *seed, struct err *e)
{
    memset(net, 0, sizeof(*net));
    net->index = index;
    net->epoll_fd = net->kick_fd = -1;
    net->stats.first_tx_ms = -1;
    if (mac) {
        memcpy(net->mac, mac, VIRTIO_NET_MAC_LEN);
        net->mac_given = true;
    } else {
        /* locally administered, QEMU's 52:54:00 prefix, stable per VM and NIC */
        uint32_t crc = crc32c(0, seed, strlen(seed));
        crc = crc32c(crc, &index, sizeof(index));
        const uint8_t derived[VIRTIO_NET_MAC_LEN] = {
            0x52, 0x54, 0x00, (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
        memcpy(net->mac, derived, sizeof(derived));
    }
    net->rx_frame = malloc(VIRTIO_NET_FRAME_MAX);
    if (!net->rx_frame)
        return err_set(e, ENOMEM, "out of memory");
    int rc = net_tap_open(&net->backend, ifname, e);
    if (rc)
        return rc;
    net->status = VIRTIO_NET_S_LINK_UP;
    char m[18];
    virtio_net_format_mac(net->mac, m);
    log_info("net", "net%u: mac %s on tap '%s'%s", index, m, ifname,
             net->backend.created ? " (created, goes with this process)" : "");
    return 0;
}

void virtio_net_kick(struct virtio_net *net)
{
    uint64_t one = 1;
    if (net->kick_fd >= 0 && write(net->kick_fd, &one, sizeof(one)) < 0)
        log_warn("net", "net%u: kick: %s", net->index, strerror(errno));
}

static bool net_usable(const struct virtio_net *net)
{
    const struct virtio_mmio_regs *r = &net->mmio.regs;
    return !net->paused && (r->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(r->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* A TAP that was deleted answers EBADFD from then on; other errors (EIO
 * while the interface is down, a full queue) cost one frame each. */
static bool backend_error_is_final(ssize_t err)
{
    return err == -EBADFD || err == -EBADF || err == -ENODEV || err == -ENXIO;
}

/* A backend that fails for good is said once; frames from the guest are
 * dropped from then on and the link is down. */
static void backend_gone(struct virtio_net *net, ssize_t err)
{
    if (net->dead)
        return;
    net->dead = true;
    log_warn("net", "net%u: tap '%s': %s; link down, frames dropped", net->index,
             net->backend.ifname, strerror((int)-err));
    net->status &= (uint16_t)~VIRTIO_NET_S_LINK_UP;
    virtio_mmio_config_changed(&net->mmio);
    /* a detached TAP polls as an error for ever, wanted or not: without
     * this the thread would spin */
    epoll_ctl(net->epoll_fd, EPOLL_CTL_DEL, net->backend.fd, NULL);
}

/* ---- transmit ---- */

static void tx_one(struct virtio_net *net, const struct virtq_chain *c)
{
    struct iovec iov[VIRTQ_MAX_SIZE];
    int n = 0;
    for (unsigned i = 0; i < c->nseg; i++)
        if (c->seg[i].len)
            iov[n++] = (struct iovec){
                guest_ram_ptr(net->mmio.ram, c->seg[i].gpa, c->seg[i].len), c->seg[i].len};
    ssize_t sent = net->dead ? -EPIPE : net->backend.ops->send(&net->backend, iov, n);
    if (sent < 0) {
        net->stats.tx_dropped++;
        if (backend_error_is_final(sent))
            backend_gone(net, sent);
        return;
    }
    net->stats.tx_packets++;
    net->stats.tx_bytes += c->readable_len - NET_HDR_LEN;
    if (net->stats.first_tx_ms < 0 && net->loaded_ns) {
        net->stats.first_tx_ms = (double)(virtio_net_now_ns() - net->loaded_ns) / 1e6;
        log_info("net", "net%u: first frame from the guest %.2f ms after the state load",
                 net->index, net->stats.first_tx_ms);
    }
}

/* true when frames are left for another pass */
static bool tx_run(struct virtio_net *net)
{
    struct virtq *vq = &net->mmio.regs.queue[TXQ];
    struct virtq_chain *c = &net->chain;
    char why[128];
    bool popped;
    unsigned done = 0;
    int rc = 0;
    while (done < TX_BATCH && vq->ready &&
           !(rc = virtq_pop(vq, net->mmio.ram, c, &popped, why, sizeof(why))) && popped) {
        if (c->writable_len || c->readable_len < NET_HDR_LEN ||
            c->readable_len > VIRTIO_NET_FRAME_MAX) {
            snprintf(why, sizeof(why), "transmit buffer of %u bytes (%u writable)",
                     c->readable_len, c->writable_len);
            rc = -EINVAL;
            break;
        }
        tx_one(net, c);
        if (virtq_push(vq, net->mmio.ram, c->head, 0))
            break;
        done++;
    }
    if (rc)
        virtio_mmio_fail(&net->mmio, why);
    if (done)
        virtio_mmio_signal_used(&net->mmio, TXQ);
    return done == TX_BATCH;
}

/* ---- receive ---- */

static int rx_add_chain(struct rx_plan *p, const struct virtq_chain *c, char *why,
                        size_t why_len)
{
    if (c->readable_len) {
        snprintf(why, why_len, "receive buffer with device-readable descriptors");
        return -EINVAL;
    }
    if (p->nsegs + c->nseg > VIRTQ_MAX_SIZE) {
        snprintf(why, why_len, "receive buffers of more than %d segments", VIRTQ_MAX_SIZE);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->nseg; i++) {
        p->seg[p->nsegs].gpa = c->seg[i].gpa;
        p->seg[p->nsegs].len = c->seg[i].len;
        p->seg[p->nsegs++].chain = (uint16_t)p->nchains;
    }
    p->fill[p->nchains] = 0;
    p->head[p->nchains++] = c->head;
    return 0;
}

/* Takes receive buffers for `len` bytes: 0 (p may hold less room than len
 * when the driver's buffers are too small), -EAGAIN when the ring has too
 * few (nothing taken), -EINVAL when the driver broke the rules. */
static int rx_take(struct virtio_net *net, uint32_t len, struct rx_plan *p)
{
    struct virtq *vq = &net->mmio.regs.queue[RXQ];
    bool mrg = net->mmio.regs.driver_features & VIRTIO_NET_F_MRG_RXBUF;
    uint16_t saved = vq->last_avail;
    uint64_t room = 0;
    char why[128];
    bool popped;
    p->nchains = p->nsegs = 0;
    while (room < len && p->nchains < (mrg ? RX_MAX_CHAINS : 1)) {
        int rc = virtq_pop(vq, net->mmio.ram, &net->chain, &popped, why, sizeof(why));
        if (!rc && !popped) {
            vq->last_avail = saved; /* nothing used: the frame waits */
            return -EAGAIN;
        }
        if (!rc)
            rc = rx_add_chain(p, &net->chain, why, sizeof(why));
        if (rc) {
            virtio_mmio_fail(&net->mmio, why);
            return -EINVAL;
        }
        room += net->chain.writable_len;
    }
    return 0;
}

/* Copies the frame into the planned segments, every byte marked dirty
 * (docs/design.md, invariant 1), and returns the chains. A frame larger
 * than the buffers is dropped, its buffers returned empty. */
static void rx_copy(struct virtio_net *net, uint8_t *frame, uint32_t len, struct rx_plan *p)
{
    uint64_t room = 0;
    for (unsigned i = 0; i < p->nsegs; i++)
        room += p->seg[i].len;
    uint16_t nbuf = (uint16_t)p->nchains;
    memcpy(frame + 10, &nbuf, sizeof(nbuf)); /* num_buffers */
    uint32_t off = room < len ? len : 0;
    for (unsigned i = 0; i < p->nsegs && off < len; i++) {
        uint32_t n = p->seg[i].len < len - off ? p->seg[i].len : len - off;
        memcpy(guest_ram_ptr(net->mmio.ram, p->seg[i].gpa, n), frame + off, n);
        guest_ram_mark_dirty(net->mmio.ram, p->seg[i].gpa, n);
        p->fill[p->seg[i].chain] += n;
        off += n;
    }
    if (room < len) {
        net->stats.rx_dropped++;
    } else {
        net->stats.rx_packets++;
        net->stats.rx_bytes += len - NET_HDR_LEN;
    }
    struct virtq *vq = &net->mmio.regs.queue[RXQ];
    for (unsigned i = 0; i < p->nchains; i++)
        virtq_push(vq, net->mmio.ram, p->head[i], p->fill[i]);
}

/* Reads frames into the receive ring until the backend is empty, the ring
 * is full or a batch is done. true when frames are left for another pass. */
static bool rx_run(struct virtio_net *net)
{
    static __thread struct rx_plan plan;
    if (!net->mmio.regs.queue[RXQ].ready || net->rx_waits_for_buffers)
        return false;
    unsigned done = 0;
    while (done < RX_BATCH) {
        if (!net->rx_frame_len) {
            ssize_t n = net->dead ? -EAGAIN
                                  : net->backend.ops->recv(&net->backend, net->rx_frame,
                                                           VIRTIO_NET_FRAME_MAX);
            if (n < 0) {
                if (backend_error_is_final(n))
                    backend_gone(net, n);
                else if (n != -EAGAIN && n != -EINTR)
                    net->stats.rx_dropped++;
                break;
            }
            if (n < NET_HDR_LEN)
                continue;
            net->rx_frame_len = (uint32_t)n;
        }
        int rc = rx_take(net, net->rx_frame_len, &plan);
        net->rx_waits_for_buffers = rc == -EAGAIN;
        if (rc)
            break;
        rx_copy(net, net->rx_frame, net->rx_frame_len, &plan);
        net->rx_frame_len = 0;
        done++;
    }
    if (done)
        virtio_mmio_signal_used(&net->mmio, RXQ);
    return done == RX_BATCH;
}

/* ---- control queue: the guest acknowledges an announce ---- */

static uint8_t ctrl_execute(struct virtio_net *net, const uint8_t cmd[2])
{
    if (cmd[0] == VIRTIO_NET_CTRL_ANNOUNCE && cmd[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK) {
        net->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
        return CTRL_OK;
    }
    return CTRL_ERR;
}

static void ctrl_run(struct virtio_net *net)
{
    struct virtq *vq = &net->mmio.regs.queue[CTRLQ];
    struct virtq_chain *c = &net->chain;
    char why[128] = "malformed control command";
    bool popped;
    int rc;
    while (!(rc = virtq_pop(vq, net->mmio.ram, c, &popped, why, sizeof(why))) && popped) {
        const struct virtq_seg *last = &c->seg[c->nseg - 1];
        uint8_t cmd[2];
        if (c->nseg < 2 || !c->seg[0].len || c->seg[0].writable || !last->writable ||
            !last->len || guest_ram_read(net->mmio.ram, c->seg[0].gpa, cmd, 1) ||
            (c->seg[0].len > 1
                 ? guest_ram_read(net->mmio.ram, c->seg[0].gpa + 1, cmd + 1, 1)
                 : guest_ram_read(net->mmio.ram, c->seg[1].gpa, cmd + 1, 1))) {
            rc = -EINVAL;
            break;
        }
        uint8_t ack = ctrl_execute(net, cmd);
        guest_ram_write(net->mmio.ram, last->gpa, &ack, 1);
        virtq_push(vq, net->mmio.ram, c->head, 1);
        virtio_mmio_signal_used(&net->mmio, CTRLQ);
    }
    if (rc)
        virtio_mmio_fail(&net->mmio, why);
}

/* ---- the transport's hooks (vCPU threads, lock held) ---- */

static void net_notify(struct virtio_mmio *dev, unsigned queue)
{
    struct virtio_net *net = dev->backend;
    if (queue == CTRLQ) {
        ctrl_run(net); /* rare and short: no reason to go through the thread */
        return;
    }
    if (queue == RXQ)
        net->rx_waits_for_buffers = false;
    virtio_net_kick(net);
}

static void net_config_read(struct virtio_mmio *dev, uint64_t off, void *data,
                            unsigned size)
{
    struct virtio_net *net = dev->backend;
    uint8_t config[12] = {0};
    uint16_t pairs = 1;
    memcpy(config, net->mac, VIRTIO_NET_MAC_LEN);
    memcpy(config + 6, &net->status, 2);
    memcpy(config + 8, &pairs, 2);
    if (off < sizeof(config) && size <= sizeof(config) - off)
        memcpy(data, config + off, size);
}

static void net_reset(struct virtio_mmio *dev)
{
    struct virtio_net *net = dev->backend;
    net->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
    net->rx_waits_for_buffers = false;
    virtio_net_kick(net);
}

static const struct virtio_device_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .nqueues = NQUEUES,
    .queue_max = VIRTQ_MAX_SIZE,
    .notify = net_notify,
    .config_read = net_config_read,
    .reset = net_reset,
};

/* ---- the I/O thread ---- */

/* The backend's frames are waited for only while they can go somewhere:
 * epoll is level-triggered, and a frame that cannot be placed would wake
 * the thread forever. */
static void update_backend_events(struct virtio_net *net)
{
    uint32_t want = net_usable(net) && !net->dead && !net->rx_waits_for_buffers &&
                            net->mmio.regs.queue[RXQ].ready
                        ? EPOLLIN
                        : 0;
    if (want == net->backend_events || net->dead)
        return;
    struct epoll_event ev = {.events = want, .data.fd = net->backend.fd};
    if (!epoll_ctl(net->epoll_fd, EPOLL_CTL_MOD, net->backend.fd, &ev))
        net->backend_events = want;
}

static void apply_offload(struct virtio_net *net)
{
    bool want = net->mmio.regs.driver_features & VIRTIO_NET_F_GUEST_CSUM;
    if (want == net->csum_offload || net->dead)
        return;
    if (!net->backend.ops->set_csum_offload(&net->backend, want))
        net->csum_offload = want;
}

static void announce_tick(struct virtio_net *net, uint64_t now)
{
    if (!net->announce_left || now < net->announce_next_ns)
        return;
    /* after the first, which left at once: 10, 20, 40 and 80 ms apart */
    static const unsigned gap_ms[VIRTIO_NET_ANNOUNCE_ROUNDS] = {0, 80, 40, 20, 10};
    virtio_net_send_rarp(net);
    net->announce_left--;
    net->announce_next_ns = now + gap_ms[net->announce_left] * 1000000ULL;
}

static int wait_ms(struct virtio_net *net, bool more, uint64_t now)
{
    if (more)
        return 0;
    if (!net->announce_left)
        return -1;
    if (net->announce_next_ns <= now)
        return 0;
    return (int)((net->announce_next_ns - now) / 1000000ULL) + 1;
}

static void *net_thread(void *arg)
{
    struct virtio_net *net = arg;
    bool more = false;
    pthread_mutex_lock(&net->mmio.lock);
    while (!net->stopping) {
        update_backend_events(net);
        int timeout = wait_ms(net, more, virtio_net_now_ns());
        pthread_mutex_unlock(&net->mmio.lock);
        struct epoll_event ev[2];
        epoll_wait(net->epoll_fd, ev, 2, timeout);
        uint64_t v;
        ssize_t kicked = read(net->kick_fd, &v, sizeof(v));
        if (kicked < 0 && errno != EAGAIN)
            log_warn("net", "net%u: kick: %s", net->index, strerror(errno));
        pthread_mutex_lock(&net->mmio.lock);
        /* a notify that KVM delivered (virtio_net_kick_fd) skipped
         * net_notify: any kick may mean receive buffers */
        if (kicked > 0)
            net->rx_waits_for_buffers = false;
        announce_tick(net, virtio_net_now_ns());
        more = false;
        if (net_usable(net)) {
            apply_offload(net);
            more = tx_run(net);
            more |= rx_run(net);
        }
    }
    pthread_mutex_unlock(&net->mmio.lock);
    return NULL;
}

int virtio_net_attach(struct virtio_net *net, uint64_t base, struct guest_ram *ram,
                      struct irq_line irq, struct err *e)
{
    virtio_mmio_init(&net->mmio, &virtio_net_ops, NET_FEATURES, base, ram, irq, net);
    net->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    net->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (net->epoll_fd < 0 || net->kick_fd < 0)
        return err_set(e, errno, "net%u: %s", net->index, strerror(errno));
    struct epoll_event kick = {.events = EPOLLIN, .data.fd = net->kick_fd};
    struct epoll_event tap = {.events = 0, .data.fd = net->backend.fd};
    if (epoll_ctl(net->epoll_fd, EPOLL_CTL_ADD, net->kick_fd, &kick) ||
        epoll_ctl(net->epoll_fd, EPOLL_CTL_ADD, net->backend.fd, &tap))
        return err_set(e, errno, "net%u: epoll: %s", net->index, strerror(errno));
    int rc = pthread_create(&net->thread, NULL, net_thread, net);
    if (rc)
        return err_set(e, rc, "net%u: thread: %s", net->index, strerror(rc));
    net->thread_running = true;
    return 0;
}

int virtio_net_kick_fd(const struct virtio_net *net, unsigned queue)
{
    return queue == RXQ || queue == TXQ ? net->kick_fd : -1;
}

void virtio_net_release(struct virtio_net *net)
{
    if (net->thread_running) {
        pthread_mutex_lock(&net->mmio.lock);
        net->stopping = true;
        virtio_net_kick(net);
        pthread_mutex_unlock(&net->mmio.lock);
        pthread_join(net->thread, NULL);
        net->thread_running = false;
    }
    if (net->mmio.ops)
        virtio_mmio_release(&net->mmio);
    if (net->backend.ops)
        net->backend.ops->close(&net->backend);
    int fds[] = {net->epoll_fd, net->kick_fd};
    for (unsigned i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    net->epoll_fd = net->kick_fd = -1;
    free(net->rx_frame);
    net->rx_frame = NULL;
}

static void set_paused(struct virtio_net *net, bool paused)
{
    if (!net->mmio.ops)
        return;
    pthread_mutex_lock(&net->mmio.lock);
    net->paused = paused;
    virtio_net_kick(net);
    pthread_mutex_unlock(&net->mmio.lock);
}

void virtio_net_pause(struct virtio_net *net)
{
    set_paused(net, true);
}

void virtio_net_resume(struct virtio_net *net)
{
    set_paused(net, false);
}

void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out)
{
    pthread_mutex_lock(&net->mmio.lock);
    *out = net->stats;
    pthread_mutex_unlock(&net->mmio.lock);
}
