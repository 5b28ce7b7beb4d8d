#include "node/vmnet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

int vmnet_tap_name(const char *prefix, uint32_t id, unsigned n, char out[VMCONF_IFNAME_MAX])
{
    int len = snprintf(out, VMCONF_IFNAME_MAX, "%s%" PRIu32 "i%u", prefix, id, n);
    return len < 0 || len >= VMCONF_IFNAME_MAX ? -ENAMETOOLONG : 0;
}

bool vmnet_bridge_exists(const char *bridge)
{
    char path[64];
    snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", bridge);
    return vmconf_ifname_valid(bridge) && access(path, F_OK) == 0;
}

int vmnet_check(const struct vmconf *c, const char *node, struct err *e)
{
    for (unsigned i = 0; i < c->nnets; i++)
        if (!vmnet_bridge_exists(c->nets[i].bridge))
            return err_set(e, ENOENT,
                           "vm %" PRIu32 ": bridge '%s' does not exist on node '%s'", c->id,
                           c->nets[i].bridge, node);
    return 0;
}

/* TUNSETIFF on the name: creates the TAP or attaches to the existing one;
 * persist 1 keeps it after close, 0 lets it go with the last fd. */
static int tap_persist(const char *tap, int persist)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    int rc = ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETPERSIST, persist) ? -errno : 0;
    close(fd);
    return rc;
}

/* The TAP's bridge now: "" when none. */
static void current_bridge(const char *tap, char out[VMCONF_IFNAME_MAX])
{
    char path[80], link[128];
    snprintf(path, sizeof(path), "/sys/class/net/%s/master", tap);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    const char *slash = strrchr(link, '/');
    snprintf(out, VMCONF_IFNAME_MAX, "%s", slash ? slash + 1 : "");
}

static int tap_attach(const char *tap, const char *bridge)
{
    char now[VMCONF_IFNAME_MAX];
    current_bridge(tap, now);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    int rc = 0;
    if (strcmp(now, bridge) != 0) {
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
        ifr.ifr_ifindex = (int)if_nametoindex(tap);
        rc = ioctl(s, SIOCBRADDIF, &ifr) ? -errno : 0;
    }
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (!rc && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr) ? -errno : 0;
    }
    close(s);
    return rc;
}

int vmnet_prepare(const char *prefix, const struct vmconf *c, const char *node,
                  struct err *e)
{
    int rc = vmnet_check(c, node, e);
    for (unsigned i = 0; !rc && i < c->nnets; i++) {
        char tap[VMCONF_IFNAME_MAX];
        const char *br = c->nets[i].bridge;
        if (vmnet_tap_name(prefix, c->id, i, tap))
            return err_set(e, ENAMETOOLONG, "vm %" PRIu32 ": tap name too long", c->id);
        rc = tap_persist(tap, 1);
        if (rc)
            return err_set(e, -rc, "vm %" PRIu32 ": tap '%s': %s", c->id, tap,
                           strerror(-rc));
        rc = tap_attach(tap, br);
        if (rc)
            return err_set(e, -rc, "vm %" PRIu32 ": tap '%s' on bridge '%s': %s", c->id,
                           tap, br, strerror(-rc));
    }
    return rc;
}

void vmnet_remove(const char *prefix, const struct vmconf *c)
{
    for (unsigned i = 0; i < c->nnets; i++) {
        char tap[VMCONF_IFNAME_MAX];
        if (vmnet_tap_name(prefix, c->id, i, tap) || !if_nametoindex(tap))
            continue;
        int rc = tap_persist(tap, 0);
        if (rc)
            log_warn("ternd", "vm %" PRIu32 ": tap '%s' not removed: %s", c->id, tap,
                     strerror(-rc));
    }
}

int vmnet_check_node(const char *bridges, const char *tap_prefix, struct err *e)
{
    if (strlen(tap_prefix) > VMNET_PREFIX_MAX || !vmconf_ifname_valid(tap_prefix))
        return err_set(e, EINVAL, "tap_prefix: '%s' must be 1..%d of letters, digits, '_'",
                       tap_prefix, VMNET_PREFIX_MAX);
    char copy[512], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", bridges);
    for (char *b = strtok_r(copy, ", ", &save); b; b = strtok_r(NULL, ", ", &save)) {
        if (!vmconf_ifname_valid(b))
            return err_set(e, EINVAL, "bridges: '%s' is not an interface name", b);
        if (!vmnet_bridge_exists(b))
            return err_set(e, ENOENT, "bridges: bridge '%s' does not exist on this host",
                           b);
    }
    return 0;
}

json_t *vmnet_bridges_json(const char *bridges)
{
    json_t *list = json_array();
    char copy[512], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", bridges);
    for (char *b = strtok_r(copy, ", ", &save); b && list; b = strtok_r(NULL, ", ", &save))
        if (vmnet_bridge_exists(b))
            json_array_append_new(list, json_string(b));
    return list;
}
