/* Minimal modern virtio-net over virtio-mmio (version 2), polled at CPL3
 * like virtio-blk: a receive ring kept full of 2 KiB buffers, a transmit
 * ring of as many, and the control queue for one command (the announce
 * acknowledgement). It takes only VERSION_1, MAC, STATUS, MRG_RXBUF,
 * CTRL_VQ and GUEST_ANNOUNCE, so it runs on tern-vmm's device and on
 * QEMU's virtio-net-device alike. */
#include "guest.h"
#include "virtio_mmio.h"

#define VIRTIO_ID_NET 1
#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define INT_CONFIG 2

#define F_MAC (1u << 5)
#define F_MRG_RXBUF (1u << 15)
#define F_STATUS (1u << 16)
#define F_CTRL_VQ (1u << 17)
#define F_GUEST_ANNOUNCE (1u << 21)
#define F_VERSION_1_HI (1u << 0)
#define S_ANNOUNCE 2

#define DESC_F_WRITE 2
#define DESC_F_NEXT 1
#define AVAIL_F_NO_INTERRUPT 1
#define QSIZE 32
#define BUF_SIZE 2048
#define NET_HDR 12
#define CTRL_TIMEOUT_NS (100 * NSEC_PER_MSEC)

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct ring {
    _Alignas(4096) struct desc desc[QSIZE];
    _Alignas(64) struct {
        uint16_t flags, idx, ring[QSIZE], used_event;
    } avail;
    _Alignas(64) volatile struct {
        uint16_t flags, idx;
        struct {
            uint32_t id, len;
        } ring[QSIZE];
        uint16_t avail_event;
    } used;
    uint16_t size, next_avail, last_used;
};

static struct ring rxq, txq, ctrlq;
_Alignas(4096) static uint8_t rx_buf[QSIZE][BUF_SIZE];
_Alignas(4096) static uint8_t tx_buf[QSIZE][BUF_SIZE];
static struct {
    uint8_t class, cmd;
} ctrl_cmd;
static volatile uint8_t ctrl_ack;

static uint64_t base;
static uint32_t features;
static uint16_t tx_in_flight;

static uint32_t rd(uint32_t reg)
{
    return *(const volatile uint32_t *)phys(base + reg);
}

static void wr(uint32_t reg, uint32_t v)
{
    *(volatile uint32_t *)phys(base + reg) = v;
}

static bool setup_queue(struct ring *q, uint32_t index)
{
    wr(REG_QUEUE_SEL, index);
    uint32_t max = rd(REG_QUEUE_NUM_MAX);
    if (max == 0)
        return false;
    q->size = max < QSIZE ? (uint16_t)max : QSIZE;
    q->avail.flags = AVAIL_F_NO_INTERRUPT;
    wr(REG_QUEUE_NUM, q->size);
    uint64_t addr[3] = {(uint64_t)q->desc, (uint64_t)&q->avail, (uint64_t)&q->used};
    for (uint32_t i = 0; i < 3; i++) {
        wr(REG_QUEUE_DESC + 0x10 * i, (uint32_t)addr[i]);
        wr(REG_QUEUE_DESC + 0x10 * i + 4, (uint32_t)(addr[i] >> 32));
    }
    wr(REG_QUEUE_READY, 1);
    return true;
}

static void publish(struct ring *q, uint16_t head)
{
    q->avail.ring[q->next_avail % q->size] = head;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    q->avail.idx = ++q->next_avail;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static bool negotiate(void)
{
    wr(REG_DEV_FEAT_SEL, 1);
    if (!(rd(REG_DEV_FEATURES) & F_VERSION_1_HI))
        return false;
    wr(REG_DEV_FEAT_SEL, 0);
    features = rd(REG_DEV_FEATURES) &
               (F_MAC | F_MRG_RXBUF | F_STATUS | F_CTRL_VQ | F_GUEST_ANNOUNCE);
    if (!(features & F_CTRL_VQ) || !(features & F_STATUS))
        features &= ~(uint32_t)F_GUEST_ANNOUNCE; /* it needs both */
    wr(REG_DRV_FEAT_SEL, 0);
    wr(REG_DRV_FEATURES, features);
    wr(REG_DRV_FEAT_SEL, 1);
    wr(REG_DRV_FEATURES, F_VERSION_1_HI);
    wr(REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    return (rd(REG_STATUS) & STATUS_FEATURES_OK) != 0;
}

static bool init_device(uint8_t *mac)
{
    wr(REG_STATUS, 0);
    wr(REG_STATUS, STATUS_ACKNOWLEDGE);
    wr(REG_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    if (!negotiate() || !setup_queue(&rxq, 0) || !setup_queue(&txq, 1))
        return false;
    if ((features & F_CTRL_VQ) && !setup_queue(&ctrlq, 2))
        return false;
    for (uint16_t i = 0; i < rxq.size; i++) {
        rxq.desc[i] = (struct desc){(uint64_t)rx_buf[i], BUF_SIZE, DESC_F_WRITE, 0};
        publish(&rxq, i);
    }
    for (uint16_t i = 0; i < txq.size; i++)
        txq.desc[i] = (struct desc){(uint64_t)tx_buf[i], 0, 0, 0};
    wr(REG_STATUS,
       STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    wr(REG_QUEUE_NOTIFY, 0);
    for (uint32_t i = 0; i < 6; i++)
        mac[i] = (features & F_MAC) ? *(volatile uint8_t *)phys(base + REG_CONFIG + i) : 0;
    return true;
}

/* First virtio-net among the virtio_mmio.device= transports. */
bool vnet_init(uint8_t *mac)
{
    for (uint32_t i = 0; i < opts.nvirtio; i++) {
        base = opts.virtio_base[i];
        if (rd(REG_MAGIC) != VIRTIO_MAGIC || rd(REG_VERSION) != 2 ||
            rd(REG_DEVICE_ID) != VIRTIO_ID_NET)
            continue;
        if (init_device(mac))
            return true;
        print("virtio-net at 0x%lx: init failed", (unsigned long)base);
    }
    base = 0;
    return false;
}

/* Hands each frame received to fn, then gives the buffers back. Returns
 * how many frames came. Frames that span several buffers (larger than
 * 2 KiB) are dropped. */
uint32_t vnet_poll_rx(void (*fn)(const uint8_t *frame, uint32_t len))
{
    uint32_t n = 0, skip = 0;
    while (rxq.used.idx != rxq.last_used) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        uint32_t id = rxq.used.ring[rxq.last_used % rxq.size].id;
        uint32_t len = rxq.used.ring[rxq.last_used % rxq.size].len;
        rxq.last_used++;
        if (id >= rxq.size)
            fatal("virtio-net: used id %u out of range", id);
        uint16_t nbuf = 1;
        memcpy(&nbuf, rx_buf[id] + 10, 2);
        if (skip) {
            skip--;
        } else if ((features & F_MRG_RXBUF) && nbuf > 1) {
            skip = nbuf - 1u;
        } else if (len > NET_HDR && len <= BUF_SIZE) {
            fn(rx_buf[id] + NET_HDR, len - NET_HDR);
            n++;
        }
        publish(&rxq, (uint16_t)id);
    }
    if (n)
        wr(REG_QUEUE_NOTIFY, 0);
    return n;
}

/* Queues one frame; false when the ring is full or the frame too long. */
bool vnet_send(const void *frame, uint32_t len)
{
    while (txq.used.idx != txq.last_used) {
        txq.last_used++;
        tx_in_flight--;
    }
    if (!base || tx_in_flight >= txq.size || len + NET_HDR > BUF_SIZE)
        return false;
    uint16_t id = (uint16_t)(txq.next_avail % txq.size);
    memset(tx_buf[id], 0, NET_HDR);
    memcpy(tx_buf[id] + NET_HDR, frame, len);
    txq.desc[id].len = len + NET_HDR;
    tx_in_flight++;
    publish(&txq, id);
    wr(REG_QUEUE_NOTIFY, 1);
    return true;
}

/* The device asked for an announce (status bit, with a config interrupt):
 * true once per request, after acknowledging it on the control queue. */
bool vnet_announce_requested(void)
{
    if (!base || !(features & F_GUEST_ANNOUNCE) || !(rd(REG_INT_STATUS) & INT_CONFIG))
        return false;
    wr(REG_INT_ACK, INT_CONFIG);
    uint32_t status = rd(REG_CONFIG + 4) >> 16; /* config bytes 6-7 */
    if (!(status & S_ANNOUNCE))
        return false;
    ctrl_cmd.class = 3; /* VIRTIO_NET_CTRL_ANNOUNCE */
    ctrl_cmd.cmd = 0;   /* ANNOUNCE_ACK */
    ctrl_ack = 0xff;
    ctrlq.desc[0] = (struct desc){(uint64_t)&ctrl_cmd, 2, DESC_F_NEXT, 1};
    ctrlq.desc[1] = (struct desc){(uint64_t)&ctrl_ack, 1, DESC_F_WRITE, 0};
    publish(&ctrlq, 0);
    wr(REG_QUEUE_NOTIFY, 2);
    uint64_t t0 = clock_ns();
    while (ctrlq.used.idx == ctrlq.last_used && clock_ns() - t0 < CTRL_TIMEOUT_NS)
        cpu_relax();
    if (ctrlq.used.idx != ctrlq.last_used)
        ctrlq.last_used++;
    return true;
}

/* tern.netbad: a hostile driver, for the tests. kind 0 a descriptor chain
 * that loops, 1 an address past guest RAM, 2 a length of 4 GiB; each is
 * posted on the transmit queue and notified. */
void vnet_post_malformed(uint32_t kind)
{
    uint16_t id = (uint16_t)(txq.next_avail % txq.size);
    uint16_t other = (uint16_t)((id + 1) % txq.size);
    struct desc *d = &txq.desc[id];
    if (!base)
        return;
    if (kind % 3 == 0) {
        *d = (struct desc){(uint64_t)tx_buf[id], 64, DESC_F_NEXT, other};
        txq.desc[other] = (struct desc){(uint64_t)tx_buf[other], 64, DESC_F_NEXT, id};
    } else {
        *d = (struct desc){kind % 3 == 1 ? 0xfffff000000ull : (uint64_t)tx_buf[id],
                           kind % 3 == 1 ? 64u : 0xffffffffu, 0, 0};
    }
    publish(&txq, id);
    wr(REG_QUEUE_NOTIFY, 1);
}
