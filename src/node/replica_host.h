/* The target's side of a replication sync (docs/replication.md), in the
 * target node's ternd: the replica volumes of a VM on this node's local
 * storages (`<volume>.replica` beside where the volume would be), and the
 * `tern-replica` process that receives one sync into them. The owner's
 * sync task drives these through POST/DELETE /replicas/{id} (api_repl.c). */
#ifndef TERN_NODE_REPLICA_HOST_H
#define TERN_NODE_REPLICA_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/err.h"

struct node_ctx;

/* Starts tern-replica for vm vmid's local disks (fresh: a full sync),
 * listening on this node's migration address; uri its NBD address once
 * it printed ready. -EBUSY when one runs for the VM already. */
int replica_start(struct node_ctx *x, struct etcd_client *c, uint32_t vmid, bool fresh,
                  char uri[128], struct err *e);
/* Waits up to timeout_ms for that process's end: *committed whether it
 * renamed the side files over the replicas, *bytes what it wrote; e the
 * reason when not. -ENOENT when none runs for the VM. */
int replica_end(struct node_ctx *x, uint32_t vmid, int timeout_ms, bool *committed,
                uint64_t *bytes, struct err *e);
/* Ends a tern-replica of the VM if one runs, and removes its replicas
 * (and side files); *removed how many replica files went. */
int replica_remove(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                   unsigned *removed, struct err *e);

/* A migration to this node with nbd_delta (docs/replication.md): the
 * fresh volume gets the data of its replica, `<volume>.replica` (its data
 * extents; holes stay holes); the source then mirrors only the blocks
 * written since the last sync. -ENOENT when there is no replica. */
int replica_fill(const char *volume, struct err *e);

#endif
