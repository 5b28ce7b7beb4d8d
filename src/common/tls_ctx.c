#include "common/tls_ctx.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>

int tls_ctx_fail(const char *what, struct err *e)
{
    unsigned long code = ERR_get_error();
    char msg[256] = "unknown error";
    if (code)
        ERR_error_string_n(code, msg, sizeof(msg));
    ERR_clear_error();
    return err_set(e, EACCES, "tls: %s: %s", what, msg);
}

SSL_CTX *tls_ctx_new(const char *dir, bool server, struct err *e)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) {
        tls_ctx_fail("context", e);
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
        tls_ctx_fail(step, e);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
