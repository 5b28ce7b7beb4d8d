/* Connecting a mirror's libnbd handle to its target: plain, or with NBD's
 * STARTTLS. With TLS over TCP libnbd checks the server's certificate
 * against ca.pem and the host of the URI against the certificate's names
 * (a certificate without them is refused; ternd's node certificates name
 * the node's addresses); it shows cert.pem to the server, which checks it
 * against its own ca.pem, as the migration stream does. */
#include <errno.h>
#include <libnbd.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "storage/mirror.h"
#include "storage/nbd.h"

int nbd_client_fail(const char *name, const char *what, struct err *e)
{
    int code = nbd_get_errno();
    const char *msg = nbd_get_error();
    return err_set(e, code ? code : EIO, "disk '%s': nbd %s: %s", name, what,
                   msg ? msg : "failed");
}

/* "tcp:HOST:PORT" ("tcp:[V6]:PORT") into host and *port; -EINVAL else. */
static int split_tcp(const char *uri, char *host, size_t size, const char **port)
{
    const char *hp = uri + 4, *colon = strrchr(hp, ':');
    if (strncmp(uri, "tcp:", 4) != 0 || !colon || (size_t)(colon - hp) >= size)
        return -EINVAL;
    size_t n = (size_t)(colon - hp);
    if (hp[0] == '[' && n >= 2 && hp[n - 1] == ']') { /* [v6] */
        hp++;
        n -= 2;
    }
    memcpy(host, hp, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

static int connect_plain(struct nbd_handle *h, const char *uri)
{
    char host[128];
    const char *port;
    if (strncmp(uri, "unix:", 5) == 0)
        return nbd_connect_unix(h, uri + 5);
    return split_tcp(uri, host, sizeof(host), &port) ? -1 : nbd_connect_tcp(h, host, port);
}

/* libnbd reads the certificates during the handshake only: the directory
 * of links lives as long as the connect. */
static int connect_tls(struct nbd_handle *h, const char *name, const char *uri,
                       const char *tls_dir, struct err *e)
{
    char dir[PATH_MAX];
    int rc = nbd_tls_client_dir(tls_dir, dir, sizeof(dir), e);
    if (rc)
        return rc;
    if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) || nbd_set_tls_certificates(h, dir) ||
        nbd_set_tls_verify_peer(h, true))
        rc = nbd_client_fail(name, "tls", e);
    else if (connect_plain(h, uri))
        rc = nbd_client_fail(name, "connect (tls)", e);
    nbd_tls_client_dir_remove(dir);
    return rc;
}

int nbd_client_connect(struct nbd_handle *h, const char *name, const char *uri,
                       const char *tls_dir, struct err *e)
{
    if (strncmp(uri, "tcp:", 4) != 0 && strncmp(uri, "unix:", 5) != 0)
        return err_set(e, EINVAL,
                       "disk '%s': nbd target '%s' is not tcp:HOST:PORT or unix:PATH", name,
                       uri);
    if (nbd_set_export_name(h, name))
        return nbd_client_fail(name, "connect", e);
    if (tls_dir)
        return connect_tls(h, name, uri, tls_dir, e);
    return connect_plain(h, uri) ? nbd_client_fail(name, "connect", e) : 0;
}
