/* What a node tells the cluster about itself (the JSON of its record
 * /tern/nodes/<name>): version, addresses, CPU model, memory and the
 * devices a VM may have here. */
#ifndef TERN_NODE_INFO_H
#define TERN_NODE_INFO_H

#include "node/config.h"

#define TERN_VERSION "0.1.0"
#define TERN_API_VERSION "v1"

/* malloc'd JSON object text, NULL when out of memory. */
/* pin: this node's API key pin (secrets.pin). */
char *node_info_json(const struct ternd_config *cfg, const char *pin);

#endif
