/* The cluster's certificate authority and the node certificates it signs
 * (docs/cluster.md, "TLS and client certificates"). etcd runs with TLS on
 * its client and peer ports and wants a certificate from the cluster CA
 * from every client and every peer (--client-cert-auth,
 * --peer-client-cert-auth); ternd talks to etcd with its node certificate.
 *
 * `tern cluster create` makes the CA; its key lives in etcd
 * (/tern/secret/ca-key), readable only with a cluster certificate, so any
 * member can sign the certificate of a joining node after its token and
 * fingerprint were checked. A node keeps DATA_DIR/pki/{ca.pem, node.pem,
 * node.key}; the node key never leaves the node. */
#ifndef TERN_NODE_PKI_H
#define TERN_NODE_PKI_H

#include <stdbool.h>

#include "cluster/members.h"
#include "common/err.h"
#include "node/config.h"

#define PKI_PEM_MAX 8192

struct pki_paths {
    char dir[TERND_PATH_MAX + 8];
    char ca[TERND_PATH_MAX + 32];
    char cert[TERND_PATH_MAX + 32];
    char key[TERND_PATH_MAX + 32];
};

void pki_paths_of(struct pki_paths *p, const char *data_dir);
/* All three files are there. */
bool pki_present(const struct pki_paths *p);
/* Removes the three files (a node that left its cluster). */
void pki_remove(const struct pki_paths *p);

/* A new CA for cluster `name`: key and self-signed certificate, PEM
 * (the caller frees both). */
int pki_ca_make(const char *name, char **cert_pem, char **key_pem, struct err *e);
/* A new node key: the private key and its public half, PEM. */
int pki_key_make(char **key_pem, char **pub_pem, struct err *e);
/* The certificate of node `name` for the public key pub_pem, signed by
 * the CA: server and client use, valid for the hosts of the given URLs
 * (https://HOST:PORT), 127.0.0.1 and localhost. */
int pki_sign(const char *ca_cert_pem, const char *ca_key_pem, const char *pub_pem,
             const char *name, const char *const urls[], unsigned n_urls, char **cert_pem,
             struct err *e);
/* Writes the files that are given (NULL: leave it), each to a temporary
 * file renamed into place; the key with mode 0600. */
int pki_write(const struct pki_paths *p, const char *ca_pem, const char *cert_pem,
              const char *key_pem, struct err *e);

/* pem is a PEM public key (NULL: false). */
bool pki_pub_valid(const char *pem);
/* SHA-256 of a join token in hex: what etcd keeps of it. */
void pki_token_hash(const char *token, char out[65]);

#endif
