/* Is the cluster quorate, and what does each etcd member say: the answer of
 * `tern cluster status`. */
#ifndef TERN_CLUSTER_QUORUM_H
#define TERN_CLUSTER_QUORUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"

#define CLUSTER_MEMBERS_MAX 16
/* Each member's status gets this long: a hung member must not stall the
 * whole report. */
#define CLUSTER_STATUS_TIMEOUT_MS 1000

struct cluster_member {
    uint64_t id;
    char name[64];
    char client_url[128];
    bool reachable;     /* answered its status in time */
    uint64_t leader_id; /* whom it follows, 0 for nobody */
    uint64_t raft_term;
};

struct cluster_info {
    bool quorate;        /* a linearizable read succeeded just now */
    size_t member_count; /* members etcd knows of (0: none answered) */
    size_t members_reachable;
    uint64_t leader_id; /* leader named by the reachable members, 0 none */
    char leader_name[64];
    uint64_t raft_term; /* highest term seen */
    char version[32];   /* etcd version */
    struct cluster_member members[CLUSTER_MEMBERS_MAX];
};

/* 0 quorate, -ENOLINK "cluster not quorate" not (info->quorate says the
 * same); info filled as far as the members answered. Bounded: about
 * CLUSTER_STATUS_TIMEOUT_MS per silent member plus the client's timeout. */
int cluster_quorate(struct etcd_client *c, struct cluster_info *info, struct err *e);

#endif
