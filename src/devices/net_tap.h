/* The TAP backend of virtio-net: a Linux TAP device opened by name with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR. An existing (persistent) TAP is used
 * as it is; a missing one is created and lives as long as the fd. */
#ifndef TERN_DEVICES_NET_TAP_H
#define TERN_DEVICES_NET_TAP_H

#include "common/err.h"
#include "devices/net_backend.h"

/* Opens TAP ifname non-blocking into nb. 0, or -errno with e naming it. */
int net_tap_open(struct net_backend *nb, const char *ifname, struct err *e);
/* A name the kernel takes for a network interface: 1-15 characters, none
 * of '/', ':', whitespace. */
bool net_ifname_valid(const char *ifname);

#endif
