/* TLS for the NBD connection of a secure migration: NBD's own STARTTLS
 * (the option qemu-nbd, nbdkit and libnbd speak), with the certificates
 * the migration stream uses (common/tls_ctx.h). The server's half is
 * OpenSSL, as the stream; the client is libnbd, which does TLS with GnuTLS
 * and reads its certificates from fixed file names. docs/nbd.md says why
 * STARTTLS and not a tunnel through the migration channel. */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tls_ctx.h"
#include "storage/nbd.h"

int nbd_server_set_tls(struct nbd_server *s, const char *dir, struct err *e)
{
    SSL_CTX *ctx = tls_ctx_new(dir, true, e);
    if (!ctx)
        return -EACCES;
    SSL_CTX_free(s->tls);
    s->tls = ctx;
    return 0;
}

int nbd_tls_accept(SSL_CTX *ctx, int fd, SSL **out, char *why, size_t size)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) {
        long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        struct err e;
        if (verify != X509_V_OK)
            snprintf(why, size, "tls: peer certificate refused: %s",
                     X509_verify_cert_error_string(verify));
        else {
            tls_ctx_fail("handshake", &e);
            snprintf(why, size, "%s", e.msg);
        }
        SSL_free(ssl);
        return -EACCES;
    }
    *out = ssl;
    return 0;
}

int nbd_tls_read_all(SSL *ssl, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        int n = SSL_read(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
        if (n <= 0) {
            ERR_clear_error();
            return -ECONNRESET;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int nbd_tls_write_all(SSL *ssl, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        int n = SSL_write(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
        if (n <= 0) {
            ERR_clear_error();
            return -EPIPE;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void nbd_tls_close(SSL *ssl)
{
    SSL_free(ssl); /* no close_notify: the socket is closed right after */
}

void nbd_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

static int link_one(const char *dir, const char *from, const char *out, const char *to,
                    struct err *e)
{
    char src[PATH_MAX + 32], dst[PATH_MAX + 32];
    snprintf(src, sizeof(src), "%s/%s", dir, from);
    snprintf(dst, sizeof(dst), "%s/%s", out, to);
    if (symlink(src, dst) == 0)
        return 0;
    return err_set(e, errno, "nbd tls: cannot link '%s': %s", dst, strerror(errno));
}

int nbd_tls_client_dir(const char *dir, char *out, size_t size, struct err *e)
{
    char abs[PATH_MAX];
    if (!realpath(dir, abs))
        return err_set(e, errno, "nbd tls: '%s': %s", dir, strerror(errno));
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/tern-nbd-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(out))
        return err_set(e, errno, "nbd tls: '%s': %s", out, strerror(errno));
    int rc = link_one(abs, "ca.pem", out, "ca-cert.pem", e);
    if (!rc)
        rc = link_one(abs, "cert.pem", out, "client-cert.pem", e);
    if (!rc)
        rc = link_one(abs, "key.pem", out, "client-key.pem", e);
    if (rc)
        nbd_tls_client_dir_remove(out);
    return rc;
}

void nbd_tls_client_dir_remove(const char *out)
{
    static const char *const names[] = {"ca-cert.pem", "client-cert.pem", "client-key.pem"};
    char path[PATH_MAX + 32];
    for (unsigned i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", out, names[i]);
        unlink(path);
    }
    rmdir(out);
}
