/* Node membership. A node's record /tern/nodes/<name> (its info JSON) stays
 * while the node is a member; its heartbeat /tern/alive/<name> is attached
 * to a lease that a background thread keeps alive. The node is online
 * exactly while that key exists, so etcd itself turns a node that died or
 * was cut off offline when the lease's TTL runs out. Two keys instead of
 * one leased record: a leased record vanishes with the lease, and then
 * `node_list` could not show the node as offline. */
#ifndef TERN_CLUSTER_NODE_H
#define TERN_CLUSTER_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

/* This host's membership: the lease and its keepalive thread. */
struct node {
    char name[TERN_NAME_MAX + 1];
    int ttl_s;
    struct etcd_client client; /* the heartbeat thread's own */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t wake;
    char *info; /* JSON object text; replaced by node_update_info */
    bool stop;
    bool online;            /* the last keepalive found the lease alive */
    int64_t lease;          /* 0 while none is held */
    unsigned registrations; /* 1 + times the lease was lost and renewed */
    /* CLOCK_MONOTONIC ns when the last successful keepalive (or the grant)
     * of this lease was sent: the lease lives at least ttl from then */
    uint64_t renewed_ns;
    bool keep_lease; /* node_release leaves it to expire */
};

void node_init(struct node *n);
/* Claims the name (-EEXIST when a live node holds it), writes the record,
 * and starts the heartbeat. The thread re-registers with a new lease when
 * the old one expired (after a partition), as soon as etcd is quorate. */
int node_register(struct node *n, struct etcd_client *c, const char *name,
                  const char *info_json, int ttl_s, struct err *e);
bool node_online(struct node *n);
/* Writes a new info to the record (free memory changes) and keeps it for
 * re-registrations; needs quorum. -ENOENT when not registered. */
int node_update_info(struct node *n, struct etcd_client *c, const char *info_json,
                     struct err *e);
/* The lease of the heartbeat (0 when none): per-VM locks of this node's
 * tasks hang on it, so they go when the node goes. */
int64_t node_lease(struct node *n);
unsigned node_registrations(struct node *n);
/* The lease (0 none) and *sent_ns (0 unknown) as in struct node: what a
 * self-fence deadline is measured from (node/ha.h). */
int64_t node_lease_renewed(struct node *n, uint64_t *sent_ns);
/* node_release will not revoke the lease: processes fenced on it (HA VMs)
 * must end by their deadline before other nodes see this one offline. */
void node_keep_lease(struct node *n);
/* Stops the heartbeat and revokes the lease (offline at once); the record
 * stays: the node is still a member, just offline. */
void node_release(struct node *n);

/* Deletes a node's record and heartbeat: the node leaves the cluster. */
int node_forget(struct etcd_client *c, const char *name, struct err *e);

struct node_entry {
    char name[TERN_NAME_MAX + 1];
    char *info; /* JSON text as registered */
    bool online;
    int64_t lease; /* of the heartbeat, 0 when offline */
};

struct node_entries {
    struct node_entry *items;
    size_t count;
};

void node_entries_init(struct node_entries *l);
void node_entries_release(struct node_entries *l);
/* Every member, sorted by name. flags ETCD_SERIALIZABLE: the answering
 * member's local view, which works without quorum but may be stale. */
int node_list(struct etcd_client *c, unsigned flags, struct node_entries *out,
              struct err *e);

#endif
