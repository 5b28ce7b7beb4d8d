/* The TAPs ternd makes for its VMs' NICs: "<prefix><vmid>i<n>" (prefix
 * "tern" unless the node config's tap_prefix says otherwise), persistent,
 * attached to the NIC's bridge and up before tern-vmm starts, removed once
 * it ended (stopped, crashed, or migrated away). ternd never changes the
 * bridges themselves: they are the host's (node config "bridges"). */
#ifndef TERN_NODE_VMNET_H
#define TERN_NODE_VMNET_H

#include <stdbool.h>

#include <jansson.h>

#include "cluster/vmconf.h"
#include "common/err.h"

#define VMNET_PREFIX_MAX 6 /* leaves 9 digits of vm id and "i<n>" in 15 */

/* The TAP of NIC n; -ENAMETOOLONG when it would not fit IFNAMSIZ. */
int vmnet_tap_name(const char *prefix, uint32_t id, unsigned n,
                   char out[VMCONF_IFNAME_MAX]);
bool vmnet_bridge_exists(const char *bridge);
/* Every bridge of c exists here; else -ENOENT "vm 100: bridge 'vmbr0' does
 * not exist on node 'n2'". */
int vmnet_check(const struct vmconf *c, const char *node, struct err *e);
/* Creates (or takes the existing) TAP of each NIC, attaches it, sets it up. */
int vmnet_prepare(const char *prefix, const struct vmconf *c, const char *node,
                  struct err *e);
/* Removes the TAPs of c's NICs (those no process holds). */
void vmnet_remove(const char *prefix, const struct vmconf *c);
/* The configured bridges that exist here, as a JSON array (node info). */
json_t *vmnet_bridges_json(const char *bridges);
/* Node config: "bridges" (comma-separated) must exist (-ENOENT naming the
 * first that does not), "tap_prefix" be 1..6 interface-name characters. */
int vmnet_check_node(const char *bridges, const char *tap_prefix, struct err *e);

#endif
