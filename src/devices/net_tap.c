#include "devices/net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static ssize_t tap_send(struct net_backend *nb, const struct iovec *iov, int niov)
{
    ssize_t n = writev(nb->fd, iov, niov);
    return n < 0 ? -errno : n;
}

static ssize_t tap_recv(struct net_backend *nb, void *buf, size_t len)
{
    ssize_t n = read(nb->fd, buf, len);
    return n < 0 ? -errno : n;
}

static int tap_set_csum_offload(struct net_backend *nb, bool on)
{
    return ioctl(nb->fd, TUNSETOFFLOAD, on ? TUN_F_CSUM : 0) ? -errno : 0;
}

static void tap_close(struct net_backend *nb)
{
    if (nb->fd >= 0)
        close(nb->fd);
    nb->fd = -1;
}

static const struct net_backend_ops tap_ops = {
    "tap", tap_send, tap_recv, tap_set_csum_offload, tap_close,
};

bool net_ifname_valid(const char *ifname)
{
    size_t n = strlen(ifname);
    if (n == 0 || n >= IFNAMSIZ || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ifname[i] == '/' || ifname[i] == ':' || ifname[i] <= ' ' || ifname[i] == 0x7f)
            return false;
    return true;
}

/* The header size is set explicitly: the kernel's default (10 bytes) lacks
 * num_buffers, which a VERSION_1 device always carries. */
static int tap_setup(int fd, const char *ifname, struct err *e)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, TUNSETIFF, &ifr))
        return err_set(e, errno, "tap '%s': %s", ifname, strerror(errno));
    int hdr = NET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdr))
        return err_set(e, errno, "tap '%s': vnet header size: %s", ifname, strerror(errno));
    /* until the guest takes GUEST_CSUM, frames reach it with checksums done */
    if (ioctl(fd, TUNSETOFFLOAD, 0))
        return err_set(e, errno, "tap '%s': offloads: %s", ifname, strerror(errno));
    return 0;
}

int net_tap_open(struct net_backend *nb, const char *ifname, struct err *e)
{
    memset(nb, 0, sizeof(*nb));
    nb->fd = -1;
    if (!net_ifname_valid(ifname))
        return err_set(e, EINVAL, "tap '%s': not a valid interface name", ifname);
    snprintf(nb->ifname, sizeof(nb->ifname), "%s", ifname);
    nb->created = if_nametoindex(ifname) == 0;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "tap '%s': /dev/net/tun: %s", ifname, strerror(errno));
    int rc = tap_setup(fd, ifname, e);
    if (rc) {
        close(fd);
        return rc;
    }
    nb->fd = fd;
    nb->ops = &tap_ops;
    return 0;
}
