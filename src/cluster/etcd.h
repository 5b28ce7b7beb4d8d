/* etcd v3 client over the HTTP/JSON gateway of etcd 3.4 (libcurl + jansson).
 *
 * One struct etcd_client per thread: it owns one curl handle (kept-alive
 * connections), which libcurl does not allow to be shared between threads.
 *
 * Every call is bounded by the client's timeout (default 4 s) across all
 * endpoints together, so losing quorum gives a quick error instead of a hang:
 * etcd 3.4 itself keeps a read or write without a majority waiting about 7 s.
 * Errors: 0 or -errno with a message in struct err. -ENOLINK always carries
 * exactly the message "cluster not quorate" (no member with a leader answered
 * in time); etcd_client_detail() then says what each endpoint did. */
#ifndef TERN_CLUSTER_ETCD_H
#define TERN_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/textbuf.h"

#define ETCD_ENDPOINTS_MAX 8
#define ETCD_TIMEOUT_MS_DEFAULT 4000
#define ETCD_NOT_QUORATE ENOLINK
#define ETCD_NOT_QUORATE_MSG "cluster not quorate"

struct json_t;

struct etcd_client {
    char *endpoints[ETCD_ENDPOINTS_MAX]; /* "https://127.0.0.11:2379" */
    size_t n_endpoints;
    size_t current;      /* the endpoint that answered last: tried first */
    int timeout_ms;      /* whole call, all endpoints together */
    void *curl;          /* CURL *, kept to reuse connections */
    struct textbuf body; /* response being received */
    /* after a failed call: could the request have been applied anyway?
     * (it reached a member that then did not answer) */
    bool maybe_applied;
    char detail[512]; /* per-endpoint account of the last failure */
};

/* libcurl's global setup, once per process (thread-safe here, unlike
 * curl_global_init itself); etcd_client_init calls it too. */
int etcd_global_init(struct err *e);

/* etcd with TLS (docs/cluster.md, "TLS and client certificates"): the
 * cluster CA that the members' certificates must chain to, and the
 * certificate and key this process presents as a client. One identity per
 * process (a node has one certificate), so it is set once, before any
 * client or thread exists, and every client with https:// endpoints uses
 * it, as does etcd_server_wait_serving. The files are read when a
 * connection is made: they may appear later (a cluster create or join). */
int etcd_tls_configure(const char *ca_file, const char *cert_file, const char *key_file,
                       struct err *e);
/* The settings above on a curl handle (CURL *); nothing when unset. */
void etcd_tls_apply(void *curl);

/* endpoints: comma-separated URLs ("https://a:2379,https://b:2379"); an
 * https:// endpoint needs etcd_tls_configure first. */
int etcd_client_init(struct etcd_client *c, const char *endpoints, struct err *e);
/* A second client on the same endpoints, for another thread. */
int etcd_client_init_copy(struct etcd_client *c, const struct etcd_client *from,
                          struct err *e);
void etcd_client_release(struct etcd_client *c);

/* Idle clients on the same endpoints, for threads that each need one for
 * a short while (an API request): a client taken from the pool keeps its
 * connections alive from its last use, so a request does not pay a new
 * TLS handshake with etcd. A client is used by one thread at a time. */
#define ETCD_POOL_MAX 8
struct etcd_pool {
    void *lock; /* pthread_mutex_t * */
    struct etcd_client *idle[ETCD_POOL_MAX];
    size_t n_idle;
};

int etcd_pool_init(struct etcd_pool *p, struct err *e);
/* An idle client, or a new one on proto's endpoints; back with give. */
int etcd_pool_take(struct etcd_pool *p, const struct etcd_client *proto,
                   struct etcd_client **out, struct err *e);
/* Keeps it for the next take (up to ETCD_POOL_MAX), else releases it. */
void etcd_pool_give(struct etcd_pool *p, struct etcd_client *c);
void etcd_pool_release(struct etcd_pool *p);
void etcd_client_set_timeout(struct etcd_client *c, int timeout_ms);
const char *etcd_client_detail(const struct etcd_client *c);

/* One gateway call: POST path with the JSON request; *resp is the parsed
 * answer (caller json_decref's it). Fails over between endpoints. */
int etcd_client_call(struct etcd_client *c, const char *path, struct json_t *req,
                     struct json_t **resp, struct err *e);

struct etcd_kv {
    char *key;
    char *value; /* NUL-terminated copy; NULL when absent */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
};

void etcd_kv_init(struct etcd_kv *kv);
void etcd_kv_release(struct etcd_kv *kv);

struct etcd_kvs {
    struct etcd_kv *items;
    size_t count;
    int64_t revision; /* store revision the answer was read at */
};

void etcd_kvs_init(struct etcd_kvs *kvs);
void etcd_kvs_release(struct etcd_kvs *kvs);

/* Reads are linearizable (need a majority) unless ETCD_SERIALIZABLE is
 * given: then the answering member's local, possibly stale, copy is used. */
#define ETCD_SERIALIZABLE 1u

/* 0 and *out filled, -ENOENT when the key does not exist. */
int etcd_get(struct etcd_client *c, const char *key, unsigned flags, struct etcd_kv *out,
             struct err *e);
/* Every key starting with prefix, sorted by key. */
int etcd_get_prefix(struct etcd_client *c, const char *prefix, unsigned flags,
                    struct etcd_kvs *out, struct err *e);
/* lease 0: no lease. */
int etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
             struct err *e);
/* *deleted (may be NULL): how many keys went (0 or 1). */
int etcd_delete(struct etcd_client *c, const char *key, int64_t *deleted, struct err *e);

enum etcd_cmp {
    ETCD_CMP_ABSENT,       /* the key must not exist */
    ETCD_CMP_VALUE,        /* its value must equal expect_value */
    ETCD_CMP_MOD_REVISION, /* its mod_revision must equal expect_revision */
    ETCD_CMP_PRESENT,      /* the key must exist */
    /* key is a prefix: no key under it was created or changed after
     * expect_revision (a listing read at that revision is still current) */
    ETCD_CMP_PREFIX_UNCHANGED,
};

struct etcd_cas {
    const char *key;
    enum etcd_cmp cmp;
    const char *expect_value;
    int64_t expect_revision;
    const char *new_value; /* NULL: delete the key instead of putting */
    int64_t lease;
};

/* One transaction: if the comparison holds, put (or delete); otherwise read
 * the key. 0 with *swapped telling which; when !*swapped and current is
 * given, *current is the key as it is now (value NULL if absent).
 * A call that fails with -ENOLINK may still have been applied when
 * c->maybe_applied is set; read the key again once quorate to know. */
int etcd_cas(struct etcd_client *c, const struct etcd_cas *op, bool *swapped,
             struct etcd_kv *current, struct err *e);

/* A small multi-key transaction: if every comparison holds, every op is
 * applied, all or nothing; 0 with *succeeded telling which. What failed is
 * not reported: read the keys again to say why. -ENOLINK as for etcd_cas
 * (c->maybe_applied). */
#define ETCD_TXN_MAX 16

struct etcd_txn_cmp {
    const char *key;
    enum etcd_cmp cmp;
    const char *expect_value;
    int64_t expect_revision;
};

struct etcd_txn_op {
    const char *key;
    const char *value; /* NULL: delete the key */
    int64_t lease;
};

int etcd_txn(struct etcd_client *c, const struct etcd_txn_cmp *cmps, size_t ncmps,
             const struct etcd_txn_op *ops, size_t nops, bool *succeeded, struct err *e);

int etcd_lease_grant(struct etcd_client *c, int ttl_s, int64_t *id, struct err *e);
/* *ttl_left (may be NULL) the seconds left; -ENOENT when the lease expired. */
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int *ttl_left, struct err *e);
int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct err *e);

struct etcd_status {
    uint64_t member_id, leader_id; /* leader_id 0: this member has no leader */
    uint64_t raft_term, raft_index;
    int64_t revision;
    char version[32];
};

/* Status of the member that answers (serializable: answers without quorum). */
int etcd_status(struct etcd_client *c, struct etcd_status *st, struct err *e);

struct etcd_member_info {
    uint64_t id;
    char name[64];
    char client_url[128]; /* first advertised client URL, "" if none */
    char peer_url[128];
};

int etcd_member_list(struct etcd_client *c, struct etcd_member_info *out, size_t max,
                     size_t *count, struct err *e);

#endif
