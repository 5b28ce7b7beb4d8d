/* What makes a set of etcd members one tern cluster, and how it grows at
 * run time (`tern cluster create` / `join`, docs/cluster.md): the cluster
 * record /tern/cluster (its name), the cluster token every node presents
 * to the others' API, and etcd member add/remove through the gateway. */
#ifndef TERN_CLUSTER_MEMBERS_H
#define TERN_CLUSTER_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

#define TERN_KEY_CLUSTER "/tern/cluster"
#define TERN_KEY_CLUSTER_TOKEN "/tern/secret/cluster-token"
#define TERN_KEY_CA_CERT "/tern/ca"           /* the cluster CA's certificate, PEM */
#define TERN_KEY_CA_KEY "/tern/secret/ca-key" /* its private key, PEM */
#define CLUSTER_TOKEN_LEN 64                  /* hex characters */
#define CLUSTER_NAME_DEFAULT "tern" /* a cluster bootstrapped from initial_cluster */
#define CLUSTER_INITIAL_MAX 1024    /* name=peer_url,... */

/* CLUSTER_TOKEN_LEN random hex characters. */
int cluster_token_make(char out[CLUSTER_TOKEN_LEN + 1], struct err *e);
/* True for exactly CLUSTER_TOKEN_LEN hex characters. */
bool cluster_token_valid(const char *token);

/* The token all nodes share; made here (create-if-absent) by whichever
 * node gets there first, so all nodes agree. */
int cluster_token_ensure(struct etcd_client *c, char out[CLUSTER_TOKEN_LEN + 1],
                         struct err *e);
/* flags as etcd_get; -ENOENT when the cluster has none yet. */
int cluster_token_get(struct etcd_client *c, unsigned flags,
                      char out[CLUSTER_TOKEN_LEN + 1], struct err *e);

/* Writes /tern/cluster {"name", "created", "creator"} unless it exists;
 * out gets the name the cluster has (an existing record wins). */
int cluster_record_ensure(struct etcd_client *c, const char *name, const char *creator,
                          char out[TERN_NAME_MAX + 1], struct err *e);
/* -ENOENT when there is no record (a cluster from before the record). */
int cluster_name_get(struct etcd_client *c, unsigned flags, char out[TERN_NAME_MAX + 1],
                     struct err *e);

/* The cluster CA (docs/cluster.md, "TLS and client certificates"):
 * written once by `cluster create` (create-if-absent, -EEXIST if there is
 * one), read by the member that signs a joining node's certificate. The
 * key is readable only with a cluster certificate, like every key. */
int cluster_ca_store(struct etcd_client *c, const char *cert_pem, const char *key_pem,
                     struct err *e);
/* *cert_pem and *key_pem are the caller's to free; -ENOENT when the cluster
 * has no CA (it runs without TLS). */
int cluster_ca_get(struct etcd_client *c, char **cert_pem, char **key_pem, struct err *e);

/* One-time join tokens: only their SHA-256 (hex) is kept, under
 * /tern/secret/join/<hash>, on a lease of ttl_s seconds. take deletes it
 * (if present, in one transaction): a token is good for one join. take:
 * -EACCES when unknown, expired or used. */
#define TERN_PREFIX_JOIN_TOKENS "/tern/secret/join/"
int cluster_join_token_add(struct etcd_client *c, const char *hash, const char *by,
                           int ttl_s, struct err *e);
int cluster_join_token_take(struct etcd_client *c, const char *hash, struct err *e);

struct cluster_join {
    uint64_t id;                               /* the new member's etcd id */
    char initial_cluster[CLUSTER_INITIAL_MAX]; /* every member, name=peer_url */
    size_t members;                            /* how many, the new one too */
    bool again;                                /* it was added before and never started */
};

/* etcd member add of peer_url for the node called name (needs quorum).
 * -EEXIST when the name is a member's or a registered node's, or the URL
 * is a started member's; a member with that URL that was added but never
 * started (a join whose etcd did not come up) is answered again, so the
 * join can be retried. etcd's own refusals keep etcd's message. */
int cluster_member_add(struct etcd_client *c, const char *name, const char *peer_url,
                       struct cluster_join *out, struct err *e);
/* Removes the member with peer_url if it never started (undoing a join
 * whose etcd failed). -ENOENT none, -EBUSY it has started. */
int cluster_member_remove_unstarted(struct etcd_client *c, const char *peer_url,
                                    struct err *e);
/* Removes the started member called name (a node leaving, or a dead one
 * removed); *id is its etcd id. -ENOENT none of that name, -EBUSY it is the
 * only member, or etcd refuses because too few members would be left
 * running (its message kept). */
int cluster_member_remove(struct etcd_client *c, const char *name, uint64_t *id,
                          struct err *e);

#endif
