/* HA records in etcd (docs/cluster.md, "HA"): which VMs are HA and with
 * what limits, what the HA managers last did with each, and the nodes in
 * maintenance. The decisions themselves are node/ha*.c's; what is here are
 * the records and the transactions that make a recovery safe.
 *
 *   /tern/ha/<id>          {"max_restart":1,"max_relocate":1,"group":["n1"]}
 *   /tern/hastate/<id>     {"node":"n1","state":"started","event":"...",
 *                           "time":1764660000,"relocations":0}
 *   /tern/maintenance/<n>  {"since":1764660000,"task":"UPID:..."}
 *
 * A recovery moves the owner key (cluster/owner.h) from a node whose lease
 * has expired to the recovering node in one transaction that also checks
 * that the old owner is still offline and that the owner key did not move
 * since the decision (docs/design.md, invariant 2). */
#ifndef TERN_CLUSTER_HA_H
#define TERN_CLUSTER_HA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

#define TERN_PREFIX_HA "/tern/ha/"
#define TERN_PREFIX_HASTATE "/tern/hastate/"
#define TERN_PREFIX_MAINT "/tern/maintenance/"
#define HA_GROUP_MAX 8
#define HA_LIMIT_MAX 10
#define HA_EVENT_MAX 240

struct ha_conf {
    uint32_t id;
    unsigned max_restart;  /* starts tried again on the node recovering it */
    unsigned max_relocate; /* other nodes tried after those */
    char group[HA_GROUP_MAX][TERN_NAME_MAX + 1]; /* nodes it may run on; none: any */
    size_t ngroup;
};

/* state: "started" (meant to run: recovered when its node is lost),
 * "stopped" (stopped by an operator or the guest: left alone), "error"
 * (the HA manager gave up). */
struct ha_state {
    char node[TERN_NAME_MAX + 1]; /* the node that armed its fence last */
    char state[16];
    char event[HA_EVENT_MAX]; /* the last decision, one line */
    int64_t time;             /* of the event, epoch seconds */
    unsigned relocations;     /* recoveries to another node so far */
};

void ha_conf_default(struct ha_conf *c, uint32_t id);
/* Fields of a request or a record; unknown keys refused naming them. */
int ha_conf_from_json(json_t *j, struct ha_conf *c, struct err *e);
json_t *ha_conf_to_json(const struct ha_conf *c);
bool ha_conf_allows(const struct ha_conf *c, const char *node);

/* -ENOENT "vm 100 is not HA". */
int ha_conf_get(struct etcd_client *c, uint32_t id, unsigned flags, struct ha_conf *out,
                struct err *e);
/* Every HA VM's config; *out malloc'd (free it), *n its count. */
int ha_conf_list(struct etcd_client *c, unsigned flags, struct ha_conf **out, size_t *n,
                 struct err *e);
/* Makes vm conf->id HA: refused unless the VM exists with every disk on
 * shared storage and every group node is a member (each with its reason);
 * -EEXIST when it is HA already. state is its first record. */
int ha_conf_add(struct etcd_client *c, const struct ha_conf *conf,
                const struct ha_state *state, struct err *e);
/* -ENOENT when not HA. */
int ha_conf_remove(struct etcd_client *c, uint32_t id, struct err *e);

/* -ENOENT when none. */
int ha_state_get(struct etcd_client *c, uint32_t id, unsigned flags, struct ha_state *out,
                 struct err *e);
int ha_state_put(struct etcd_client *c, uint32_t id, const struct ha_state *st,
                 struct err *e);
json_t *ha_state_to_json(const struct ha_state *st);

/* The recovery: if owner is `from` at revision rev, `from` has no
 * heartbeat key (its lease expired), `to` has one, and the VM is still HA,
 * then owner = `to` and the HA state = st. *taken tells whether it
 * applied; -ENOLINK when etcd did not answer (c->maybe_applied: read the
 * owner to know). from == to (a node starting its own HA VM again) skips
 * the check of `from`: the new revision fences out a recovery decided
 * before. `to` then starts the VM only under the lease it held before the
 * call (vmm_spec's ha_lease): that lease's heartbeat is the one the
 * transaction saw, so no other node can take the VM while it lives. */
int ha_take(struct etcd_client *c, uint32_t id, const char *from, int64_t rev,
            const char *to, const struct ha_state *st, bool *taken, struct err *e);

/* Maintenance of node: its record {"since","task","moved":[ids]} put
 * (rec, borrowed) or deleted (rec NULL). */
int ha_maint_put(struct etcd_client *c, const char *node, json_t *rec, struct err *e);
/* *on whether node is in maintenance; *rec (rec may be NULL) its record,
 * the caller's to json_decref. */
int ha_maint_get(struct etcd_client *c, const char *node, unsigned flags, bool *on,
                 json_t **rec, struct err *e);
/* The nodes in maintenance: a json array of names (the caller's). */
int ha_maint_list(struct etcd_client *c, unsigned flags, json_t **names, struct err *e);

#endif
