/* The ternd configuration file: `key = value` lines, `#` comments, blank
 * lines ignored. docs/ternd.md lists the keys. A missing required key or an
 * unknown one is refused with one line naming it, so a typo never silently
 * becomes a default. */
#ifndef TERN_NODE_CONFIG_H
#define TERN_NODE_CONFIG_H

#include <stdbool.h>

#include "cluster/keys.h"
#include "common/err.h"

#define TERND_CONFIG_DEFAULT "/etc/tern/ternd.conf"
#define TERND_URL_MAX 128
#define TERND_PATH_MAX 256

struct ternd_config {
    char name[TERN_NAME_MAX + 1];
    char cluster_address[TERND_URL_MAX];   /* own etcd client URL */
    char peer_address[TERND_URL_MAX];      /* own etcd peer URL */
    char initial_cluster[1024];            /* name=peerurl,...; "" = create or join */
    char migration_address[TERND_URL_MAX]; /* host:port */
    char data_dir[TERND_PATH_MAX];
    char api_address[TERND_URL_MAX]; /* host:port */
    char api_host[TERND_URL_MAX];    /* split from api_address */
    unsigned api_port;
    /* optional */
    char tls_cert[TERND_PATH_MAX]; /* "" = self-signed in data_dir */
    char tls_key[TERND_PATH_MAX];
    /* this host's addresses, comma-separated, for picking the one inside a
     * migration network; "" = the interfaces' addresses (getifaddrs) */
    char addresses[512];
    char vmm_binary[TERND_PATH_MAX]; /* "" = tern-vmm beside ternd */
    int heartbeat_ttl_s;             /* default 10 */
    int etcd_election_ms;            /* default 1000 */
    int task_records;                /* default 500 */
    int session_ttl_s;               /* web sessions; default 8 h */
    /* the bridges VMs' NICs may use here, comma-separated (checked at start) */
    char bridges[256];
    char tap_prefix[8]; /* TAPs are <prefix><vmid>i<n>; default "tern" */
    /* derived: the addresses are https://, so etcd runs with TLS and
     * client certificates from the cluster CA (DATA_DIR/pki) */
    bool etcd_tls;
    /* the host watchdog HA pets, "" = none (node/ha.h) */
    char ha_watchdog[TERND_PATH_MAX];
};

void ternd_config_init(struct ternd_config *c);
/* Reads and checks path. -ENOENT/-EACCES (cannot read), -EINVAL (bad line,
 * unknown or missing key, bad value): e names the file, line and key. */
int ternd_config_load(struct ternd_config *c, const char *path, struct err *e);

#endif
