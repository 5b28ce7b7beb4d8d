/* What ternd keeps in its data directory to serve the API: the admin token
 * (DATA_DIR/admin.token, mode 0600) and the TLS certificate and key
 * (DATA_DIR/tls/{cert,key}.pem, self-signed unless the config names others).
 * Both are made on first start and reused afterwards, so that a restart of
 * ternd does not invalidate what clients already trust. */
#ifndef TERN_NODE_SECRETS_H
#define TERN_NODE_SECRETS_H

#include <stddef.h>

#include "common/err.h"
#include "node/config.h"
#include "node/pki.h"

#define TERND_TOKEN_LEN 64 /* hex characters */
#define TERND_PIN_LEN 52   /* "sha256//" + 44 base64 characters */

struct secrets {
    char token[TERND_TOKEN_LEN + 1];
    char token_path[TERND_PATH_MAX + 32];
    char cert_path[TERND_PATH_MAX + 32];
    char key_path[TERND_PATH_MAX + 32];
    char *cert_pem; /* file contents, for libmicrohttpd */
    char *key_pem;
    /* sha256//BASE64 of the certificate's public key: what other nodes pin
     * when they call this node (published in the node info) and what
     * `tern cluster join --fingerprint` wants */
    char pin[TERND_PIN_LEN + 1];
    /* DATA_DIR/pki: the cluster CA and this node's certificate for etcd
     * (node/pki.h); present once the node created or joined a cluster */
    struct pki_paths pki;
};

void secrets_init(struct secrets *s);
/* Creates data_dir if needed, then loads or makes token and certificate. */
int secrets_load(struct secrets *s, const struct ternd_config *cfg, struct err *e);
void secrets_release(struct secrets *s);

int secrets_pin_of(const char *cert_pem, char pin[TERND_PIN_LEN + 1], struct err *e);

/* Reads a whole small file (at most 1 MiB) NUL-terminated; used for PEM
 * files and the token. */
int secrets_read_file(const char *path, char **out, struct err *e);

#endif
