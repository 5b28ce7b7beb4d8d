#include "migrate/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "common/tls_ctx.h"

static int tls_handshake(struct mig_channel *ch, const char *dir, bool server,
                         struct err *e)
{
    SSL_CTX *ctx = tls_ctx_new(dir, server, e);
    if (!ctx)
        return -EACCES;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    if (!ssl || SSL_set_fd(ssl, ch->fd) != 1) {
        SSL_free(ssl);
        return tls_ctx_fail("session", e);
    }
    int rc = server ? SSL_accept(ssl) : SSL_connect(ssl);
    if (rc != 1) {
        long verify = SSL_get_verify_result(ssl);
        int r = verify != X509_V_OK
                    ? err_set(e, EACCES, "tls: peer certificate refused: %s",
                              X509_verify_cert_error_string(verify))
                    : tls_ctx_fail("handshake", e);
        SSL_free(ssl);
        return r;
    }
    ch->ssl = ssl;
    return 0;
}

int mig_tls_connect(struct mig_channel *ch, const char *dir, struct err *e)
{
    return tls_handshake(ch, dir, false, e);
}

int mig_tls_accept(struct mig_channel *ch, const char *dir, struct err *e)
{
    return tls_handshake(ch, dir, true, e);
}

int mig_tls_check_dir(const char *dir, struct err *e)
{
    SSL_CTX *ctx = tls_ctx_new(dir, true, e);
    if (!ctx)
        return -EACCES;
    SSL_CTX_free(ctx);
    return 0;
}
