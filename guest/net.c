/* The guest's network side, for tests and benchmarks: with tern.ip=A.B.C.D/N
 * on the first virtio-net it answers ARP, ICMP echo (ping) and UDP echo
 * (port 7), sends a gratuitous ARP at boot and whenever the device asks
 * for an announce (after a live migration), and counts every frame. It
 * never starts a conversation, so it keeps no ARP table: answers go back
 * to the MAC they came from. */
#include "guest.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define IP_PROTO_ICMP 1
#define IP_PROTO_UDP 17
#define ICMP_ECHO_REQUEST 8
#define ICMP_ECHO_REPLY 0
#define UDP_ECHO_PORT 7
#define ANNOUNCE_POLL_MS 5
#define FRAME_MAX 1514

static uint8_t my_mac[6];
static uint8_t my_ip[4];
static bool up;
static uint64_t next_announce_poll, next_stat;
static struct {
    uint64_t rx, tx, arp, icmp, udp, other, tx_full, garp;
} st;
static uint8_t out[FRAME_MAX];

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t checksum(const uint8_t *p, uint32_t len)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void send(uint32_t len)
{
    if (vnet_send(out, len < 60 ? 60 : len))
        st.tx++;
    else
        st.tx_full++;
}

static void eth_header(const uint8_t *dst, uint16_t type)
{
    memcpy(out, dst, 6);
    memcpy(out + 6, my_mac, 6);
    put16(out + 12, type);
}

static void arp_send(uint16_t op, const uint8_t *dst_mac, const uint8_t *tha,
                     const uint8_t *tpa)
{
    memset(out, 0, 60);
    eth_header(dst_mac, ETH_P_ARP);
    uint8_t *a = out + ETH_HLEN;
    put16(a, 1);
    put16(a + 2, ETH_P_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, my_mac, 6);
    memcpy(a + 14, my_ip, 4);
    memcpy(a + 18, tha, 6);
    memcpy(a + 24, tpa, 4);
    send(ETH_HLEN + 28);
}

/* Sender and target are both this VM: every ARP cache and switch on the
 * segment learns where it is. */
static void garp(const char *why)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t zero[6];
    arp_send(1, bcast, zero, my_ip);
    st.garp++;
    print("NET garp %s", why);
}

static void on_arp(const uint8_t *f, uint32_t len)
{
    const uint8_t *a = f + ETH_HLEN;
    st.arp++;
    if (len < ETH_HLEN + 28 || get16(a + 6) != 1 || memcmp(a + 24, my_ip, 4) != 0)
        return;
    arp_send(2, a + 8, a + 8, a + 14);
}

/* Echo answers reuse the request: swap addresses, patch the IP header;
 * the caller patches its layer and sends. */
static uint8_t *reply_ip(const uint8_t *f, uint32_t len, uint32_t ihl)
{
    memcpy(out, f, len);
    memcpy(out, f + 6, 6);
    memcpy(out + 6, my_mac, 6);
    uint8_t *ip = out + ETH_HLEN;
    memcpy(ip + 12, my_ip, 4);
    memcpy(ip + 16, f + ETH_HLEN + 12, 4);
    ip[8] = 64;
    put16(ip + 10, 0);
    put16(ip + 10, checksum(ip, ihl));
    return ip + ihl;
}

static void on_ip(const uint8_t *f, uint32_t len)
{
    const uint8_t *ip = f + ETH_HLEN;
    uint32_t ihl = (ip[0] & 15u) * 4;
    if (len < ETH_HLEN + 20 || (ip[0] >> 4) != 4 || ihl < 20 ||
        memcmp(ip + 16, my_ip, 4) != 0)
        return;
    uint32_t total = get16(ip + 2);
    if (total < ihl + 8 || ETH_HLEN + total > len || (get16(ip + 6) & 0x3fff))
        return; /* short, or a fragment */
    len = ETH_HLEN + total;
    const uint8_t *l4 = ip + ihl;
    if (ip[9] == IP_PROTO_ICMP && l4[0] == ICMP_ECHO_REQUEST) {
        st.icmp++;
        uint8_t *icmp = reply_ip(f, len, ihl);
        icmp[0] = ICMP_ECHO_REPLY;
        put16(icmp + 2, 0);
        put16(icmp + 2, checksum(icmp, total - ihl));
        send(len);
    } else if (ip[9] == IP_PROTO_UDP && get16(l4 + 2) == UDP_ECHO_PORT) {
        st.udp++;
        uint8_t *udp = reply_ip(f, len, ihl);
        put16(udp, UDP_ECHO_PORT);
        memcpy(udp + 2, l4, 2);
        put16(udp + 6, 0); /* no checksum: allowed over IPv4 */
        send(len);
    } else {
        st.other++;
    }
}

static void on_frame(const uint8_t *f, uint32_t len)
{
    st.rx++;
    if (len < ETH_HLEN || len > FRAME_MAX)
        return;
    bool bcast = f[0] == 0xff && f[1] == 0xff && f[2] == 0xff;
    if (!bcast && memcmp(f, my_mac, 6) != 0)
        return;
    uint16_t type = get16(f + 12);
    if (type == ETH_P_ARP)
        on_arp(f, len);
    else if (type == ETH_P_IP)
        on_ip(f, len);
    else
        st.other++;
}

void net_setup(void)
{
    if (!opts.ip_prefix)
        return;
    if (!vnet_init(my_mac)) {
        print("NET FAIL no virtio-net device");
        return;
    }
    for (int i = 0; i < 4; i++)
        my_ip[i] = (uint8_t)(opts.ip >> (24 - 8 * i));
    up = true;
    static const char hex[] = "0123456789abcdef";
    char mac[18];
    for (int i = 0; i < 6; i++) {
        mac[3 * i] = hex[my_mac[i] >> 4];
        mac[3 * i + 1] = hex[my_mac[i] & 15];
        mac[3 * i + 2] = i < 5 ? ':' : 0;
    }
    print("NET up mac=%s ip=%u.%u.%u.%u/%u", mac, my_ip[0], my_ip[1], my_ip[2], my_ip[3],
          (unsigned)opts.ip_prefix);
    garp("boot");
    for (uint64_t i = 0; i < opts.netbad; i++)
        vnet_post_malformed((uint32_t)i);
    if (opts.netbad)
        print("NET posted %lu malformed chains", (unsigned long)opts.netbad);
}

static void net_stat_line(uint64_t now)
{
    uint64_t period = opts.netstat_ms * NSEC_PER_MSEC;
    if (!period || now < next_stat)
        return;
    next_stat = now + period;
    print("NET rx=%lu tx=%lu arp=%lu icmp=%lu udp=%lu garp=%lu txfull=%lu",
          (unsigned long)st.rx, (unsigned long)st.tx, (unsigned long)st.arp,
          (unsigned long)st.icmp, (unsigned long)st.udp, (unsigned long)st.garp,
          (unsigned long)st.tx_full);
}

void net_step(uint64_t now)
{
    if (!up)
        return;
    vnet_poll_rx(on_frame);
    /* the announce request is a register read, an exit: not every turn */
    if (now >= next_announce_poll) {
        next_announce_poll = now + ANNOUNCE_POLL_MS * NSEC_PER_MSEC;
        if (vnet_announce_requested())
            garp("announce");
    }
    net_stat_line(now);
}
