#include "migrate/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

static int tls_fail(const char *what, struct err *e)
{
    unsigned long code = ERR_get_error();
    char msg[256] = "unknown error";
    if (code)
        ERR_error_string_n(code, msg, sizeof(msg));
    ERR_clear_error();
    return err_set(e, EACCES, "tls: %s: %s", what, msg);
}

static SSL_CTX *tls_context(const char *dir, bool server, struct err *e)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        tls_fail("context", e);
        return NULL;
    }
    char ca[512], cert[512], key[512];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    /* both sides must show a certificate of the cluster CA */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    const char *step = NULL;
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        step = ca;
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        step = cert;
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        step = key;
    else if (SSL_CTX_check_private_key(ctx) != 1)
        step = "key does not match certificate";
    if (step) {
        tls_fail(step, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int tls_handshake(struct mig_channel *ch, const char *dir, bool server,
                         struct err *e)
{
    SSL_CTX *ctx = tls_context(dir, server, e);
    if (!ctx)
        return -EACCES;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    if (!ssl || SSL_set_fd(ssl, ch->fd) != 1) {
        SSL_free(ssl);
        return tls_fail("session", e);
    }
    int rc = server ? SSL_accept(ssl) : SSL_connect(ssl);
    if (rc != 1) {
        long verify = SSL_get_verify_result(ssl);
        int r = verify != X509_V_OK
                    ? err_set(e, EACCES, "tls: peer certificate refused: %s",
                              X509_verify_cert_error_string(verify))
                    : tls_fail("handshake", e);
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
    SSL_CTX *ctx = tls_context(dir, true, e);
    if (!ctx)
        return -EACCES;
    SSL_CTX_free(ctx);
    return 0;
}
