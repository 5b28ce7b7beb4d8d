/* The TLS context of a node-to-node connection: TLS 1.3, both sides show a
 * certificate the other trusts (a TLS directory holds ca.pem: what the
 * peer's certificate must chain to, cert.pem and key.pem: this node's).
 * Shared by the migration stream (migrate/tls.c) and the NBD connection of
 * local disks (storage/nbd_tls.c), so both trust the same way. */
#ifndef TERN_COMMON_TLS_CTX_H
#define TERN_COMMON_TLS_CTX_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "common/err.h"

/* NULL and e set when a file is missing, unreadable or the key does not
 * match the certificate. */
SSL_CTX *tls_ctx_new(const char *dir, bool server, struct err *e);
/* e from OpenSSL's error queue ("tls: WHAT: reason"), which it empties. */
int tls_ctx_fail(const char *what, struct err *e);

#endif
