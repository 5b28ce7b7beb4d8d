/* Runs one etcd member (Debian's etcd-server, /usr/bin/etcd) as a child
 * process, for ternd and the tests. */
#ifndef TERN_CLUSTER_SERVER_H
#define TERN_CLUSTER_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct etcd_server {
    char binary[256]; /* default /usr/bin/etcd, $TERN_ETCD overrides */
    char name[64];
    char data_dir[256];
    char client_url[128];       /* https://127.0.0.11:2379 (http:// without TLS) */
    char peer_url[128];         /* https://127.0.0.11:2380 */
    char initial_cluster[1024]; /* name=peer_url,... of every member */
    /* "new" (a member of a cluster bootstrapped together) or "existing"
     * (joining a running cluster, after etcd member add); both are
     * ignored by etcd once the data dir exists */
    char initial_state[16];
    char cluster_token[64]; /* --initial-cluster-token; default "tern" */
    char log_path[256];     /* etcd's stderr; "" = /dev/null */
    /* TLS on both ports, a certificate from the CA wanted from every
     * client and peer (--client-cert-auth, --peer-client-cert-auth); the
     * member's own certificate serves both ports and is its client
     * certificate towards its peers. "" = plain http (tests, lab) */
    char tls_ca[320], tls_cert[320], tls_key[320];
    int election_ms;      /* 0: etcd's default (1000) */
    bool die_with_parent; /* SIGKILL etcd when the starting thread ends
                           * (tests: no member outlives a killed run) */
    pid_t pid;            /* 0 when not running */
};

void etcd_server_init(struct etcd_server *s);
/* Fills name, urls (client port, peer port+1... as given) and data_dir. */
int etcd_server_configure(struct etcd_server *s, const char *name, const char *ip,
                          int client_port, int peer_port, const char *data_dir,
                          const char *initial_cluster, struct err *e);
/* Starts etcd; returns at once (the cluster needs a majority before it
 * serves, so waiting is a separate step). An existing data_dir is reused
 * (etcd then ignores the initial-cluster settings): a restart. */
int etcd_server_start(struct etcd_server *s, struct err *e);
/* Waits until the member answers on its client URL (not that the cluster
 * is quorate: a member alone in a minority also answers /version). */
int etcd_server_wait_serving(struct etcd_server *s, int timeout_ms, struct err *e);
/* SIGTERM, then SIGKILL after grace_ms; reaps the child. 0 or -errno. */
int etcd_server_stop(struct etcd_server *s, int grace_ms);
/* SIGSTOP/SIGCONT: a member that hangs, as behind a network partition. */
int etcd_server_freeze(struct etcd_server *s, bool frozen);
bool etcd_server_running(struct etcd_server *s);
/* Removes data_dir and everything in it (a member that never joined, so
 * that the next start is a first start again). -EBUSY while running. */
int etcd_server_wipe(struct etcd_server *s, struct err *e);
void etcd_server_release(struct etcd_server *s);

#endif
