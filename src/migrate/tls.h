/* TLS 1.3 with mutual certificate authentication for migration channels
 * (OpenSSL). A TLS directory holds ca.pem (the cluster CA), cert.pem and
 * key.pem (this node). A peer without a certificate from that CA is refused
 * during the handshake, before any migration byte is read. */
#ifndef TERN_MIGRATE_TLS_H
#define TERN_MIGRATE_TLS_H

#include "common/err.h"
#include "migrate/channel.h"

int mig_tls_connect(struct mig_channel *ch, const char *dir, struct err *e);
int mig_tls_accept(struct mig_channel *ch, const char *dir, struct err *e);
/* Checks that the directory has readable ca.pem, cert.pem, key.pem that
 * belong together, without connecting anywhere. */
int mig_tls_check_dir(const char *dir, struct err *e);

#endif
