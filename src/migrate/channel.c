#include "migrate/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/sock.h"

#define SOCK_BUF_BYTES (4 << 20)
#define TLS_BUF_BYTES (4 << 20)

void mig_channel_init(struct mig_channel *ch, int fd)
{
    memset(ch, 0, sizeof(*ch));
    ch->fd = fd;
    int size = SOCK_BUF_BYTES, one = 1;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void mig_channel_release(struct mig_channel *ch)
{
    if (ch->ssl) {
        SSL_free(ch->ssl);
        ch->ssl = NULL;
    }
    if (ch->fd >= 0)
        close(ch->fd);
    ch->fd = -1;
    free(ch->tls_buf);
    ch->tls_buf = NULL;
}

void mig_channel_cancel(struct mig_channel *ch)
{
    atomic_store(&ch->cancelled, true);
    if (ch->fd >= 0)
        shutdown(ch->fd, SHUT_RDWR);
}

void mig_channel_set_bandwidth(struct mig_channel *ch, uint64_t bytes_per_s)
{
    ch->max_bandwidth = bytes_per_s;
    ch->limit_bytes = 0;
    clock_gettime(CLOCK_MONOTONIC, &ch->limit_start);
}

/* ---- URIs ---- */

static int parse_host_port(const char *spec, char *host, size_t hcap, char *port,
                           size_t pcap)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        return -EINVAL;
    size_t hlen = (size_t)(colon - spec);
    if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']') {
        spec++;
        hlen -= 2;
    }
    if (hlen >= hcap || strlen(colon + 1) >= pcap)
        return -EINVAL;
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int tcp_socket(const char *spec, bool listening, int *out, struct err *e)
{
    char host[256], port[16];
    if (parse_host_port(spec, host, sizeof(host), port, sizeof(port)))
        return err_set(e, EINVAL, "uri 'tcp:%s': expected tcp:HOST:PORT", spec);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = listening ? AI_PASSIVE : 0};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return err_set(e, EINVAL, "uri 'tcp:%s': %s", spec, gai_strerror(gai));
    int fd = -1, rc = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (listening ? bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4)
                      : connect(fd, ai->ai_addr, ai->ai_addrlen)) {
            rc = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err_set(e, rc ? rc : EINVAL, "%s tcp:%s: %s",
                       listening ? "listen on" : "connect to", spec, strerror(rc));
    *out = fd;
    return 0;
}

static int parse_fd(const char *spec, int *out, struct err *e)
{
    char *end;
    long v = strtol(spec, &end, 10);
    if (!*spec || *spec < '0' || *spec > '9' || *end || v < 0 || v > 65535 ||
        fcntl((int)v, F_GETFD) < 0)
        return err_set(e, EBADF, "uri 'fd:%s': not an open file descriptor", spec);
    *out = (int)v;
    return 0;
}

/* tcp:, unix: and fd: for both directions; a listening fd: URI is marked
 * "already connected" for mig_accept. */
static int uri_open(const char *uri, bool listening, int *fd, struct err *e)
{
    if (strncmp(uri, "tcp:", 4) == 0)
        return tcp_socket(uri + 4, listening, fd, e);
    if (strncmp(uri, "unix:", 5) == 0) {
        *fd = listening ? sock_listen_unix(uri + 5) : sock_connect_unix(uri + 5);
        return *fd < 0 ? err_set(e, -*fd, "%s unix:%s: %s",
                                 listening ? "listen on" : "connect to", uri + 5,
                                 strerror(-*fd))
                       : 0;
    }
    if (strncmp(uri, "fd:", 3) == 0) {
        int rc = parse_fd(uri + 3, fd, e);
        if (listening)
            *fd = rc ? -1 : -2 - *fd;
        return rc;
    }
    return err_set(e, EINVAL, "uri '%s': expected tcp:HOST:PORT, unix:PATH or fd:N", uri);
}

int mig_uri_connect(const char *uri, int *fd, struct err *e)
{
    return uri_open(uri, false, fd, e);
}

int mig_uri_listen(const char *uri, int *fd, struct err *e)
{
    return uri_open(uri, true, fd, e);
}

int mig_accept(int listen_fd, int timeout_ms, int *fd, struct err *e)
{
    if (listen_fd <= -2) {
        *fd = -2 - listen_fd;
        return 0;
    }
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
        return err_set(e, ETIMEDOUT, "no source connected within %d s", timeout_ms / 1000);
    *fd = n > 0 ? accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC) : -1;
    if (*fd < 0)
        return err_set(e, errno, "accept: %s", strerror(errno));
    return 0;
}

/* ---- sending ---- */

static void bandwidth_wait(struct mig_channel *ch, size_t sent)
{
    if (!ch->max_bandwidth)
        return;
    ch->limit_bytes += sent;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed = (double)(now.tv_sec - ch->limit_start.tv_sec) +
                     (double)(now.tv_nsec - ch->limit_start.tv_nsec) / 1e9;
    double due = (double)ch->limit_bytes / (double)ch->max_bandwidth;
    if (due > elapsed) {
        double wait = due - elapsed;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static int ssl_error(struct mig_channel *ch, const char *what, struct err *e)
{
    unsigned long code = ERR_get_error();
    char msg[256] = "connection closed";
    if (code)
        ERR_error_string_n(code, msg, sizeof(msg));
    if (atomic_load(&ch->cancelled))
        return err_set(e, ECANCELED, "migration cancelled");
    return err_set(e, EPIPE, "tls %s: %s", what, msg);
}

static int tls_send_all(struct mig_channel *ch, const uint8_t *p, size_t len, struct err *e)
{
    while (len) {
        int chunk = len > (1U << 30) ? 1 << 30 : (int)len;
        int n = SSL_write(ch->ssl, p, chunk);
        if (n <= 0)
            return ssl_error(ch, "write", e);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* OpenSSL has no writev: small pieces are gathered into one buffer so
 * records are full-size, large ones (runs of pages) go out as they are. */
#define TLS_DIRECT_BYTES (64 << 10)

static int tls_flush(struct mig_channel *ch, size_t *used, struct err *e)
{
    int rc = *used ? tls_send_all(ch, ch->tls_buf, *used, e) : 0;
    *used = 0;
    return rc;
}

static int tls_sendv(struct mig_channel *ch, const struct iovec *iov, int iovcnt,
                     struct err *e)
{
    if (!ch->tls_buf && !(ch->tls_buf = malloc(TLS_BUF_BYTES)))
        return err_set(e, ENOMEM, "out of memory");
    size_t used = 0;
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        if (left >= TLS_DIRECT_BYTES) {
            int rc = tls_flush(ch, &used, e);
            if (!rc)
                rc = tls_send_all(ch, p, left, e);
            if (rc)
                return rc;
            continue;
        }
        if (left > TLS_BUF_BYTES - used) {
            int rc = tls_flush(ch, &used, e);
            if (rc)
                return rc;
        }
        memcpy(ch->tls_buf + used, p, left);
        used += left;
    }
    return tls_flush(ch, &used, e);
}

/* Drops the first n bytes from an iovec array after a partial transfer. */
static void iov_advance(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

static int plain_sendv(struct mig_channel *ch, struct iovec *iov, int iovcnt, struct err *e)
{
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov,
                             .msg_iovlen = (size_t)(iovcnt > 1024 ? 1024 : iovcnt)};
        ssize_t n = sendmsg(ch->fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR && !atomic_load(&ch->cancelled))
            continue;
        if (n < 0 && errno == ENOTSOCK)
            n = writev(ch->fd, iov, iovcnt > 1024 ? 1024 : iovcnt);
        if (n <= 0) {
            if (atomic_load(&ch->cancelled))
                return err_set(e, ECANCELED, "migration cancelled");
            return err_set(e, errno ? errno : EPIPE, "send: %s",
                           strerror(errno ? errno : EPIPE));
        }
        iov_advance(&iov, &iovcnt, (size_t)n);
    }
    return 0;
}

int mig_send(struct mig_channel *ch, uint16_t type, const struct iovec *iov, int iovcnt,
             struct err *e)
{
    if (atomic_load(&ch->cancelled))
        return err_set(e, ECANCELED, "migration cancelled");
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > mig_max_length(type))
        return err_set(e, EMSGSIZE, "%s message of %zu bytes is too long",
                       mig_type_name(type), total);
    struct mig_hdr h = {MIG_MAGIC, type, 0, (uint32_t)total, 0};
    h.crc = crc32c(0, &h, 12);
    struct iovec stack[1100];
    struct iovec *all = iovcnt < 1099 ? stack : malloc(sizeof(*all) * (size_t)(iovcnt + 1));
    if (!all)
        return err_set(e, ENOMEM, "out of memory");
    all[0] = (struct iovec){&h, sizeof(h)};
    memcpy(all + 1, iov, sizeof(*iov) * (size_t)iovcnt);
    double t = clock_mono_ms();
    int rc = ch->ssl ? tls_sendv(ch, all, iovcnt + 1, e)
                     : plain_sendv(ch, all, iovcnt + 1, e);
    ch->send_ms += clock_mono_ms() - t;
    if (all != stack)
        free(all);
    if (!rc) {
        atomic_fetch_add(&ch->bytes_out, total + sizeof(h));
        bandwidth_wait(ch, total + sizeof(h));
    }
    return rc;
}

int mig_send_buf(struct mig_channel *ch, uint16_t type, const void *data, uint32_t len,
                 struct err *e)
{
    struct iovec iov = {(void *)data, len};
    return mig_send(ch, type, &iov, len ? 1 : 0, e);
}

void mig_send_error(struct mig_channel *ch, const char *text)
{
    struct err ignored;
    size_t len = strlen(text);
    mig_send_buf(ch, MIG_ERROR, text, (uint32_t)(len > 4000 ? 4000 : len), &ignored);
}

/* ---- receiving ---- */

int mig_wait_readable(struct mig_channel *ch, int timeout_ms)
{
    if (ch->peeked || (ch->ssl && SSL_pending(ch->ssl)))
        return 0;
    struct pollfd p = {.fd = ch->fd, .events = POLLIN};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : -ETIMEDOUT;
}

static int recv_some(struct mig_channel *ch, void *buf, size_t len, struct err *e)
{
    if (ch->ssl) {
        int n = SSL_read(ch->ssl, buf, len > (1U << 30) ? 1 << 30 : (int)len);
        return n > 0 ? n : ssl_error(ch, "read", e);
    }
    ssize_t n;
    do {
        n = read(ch->fd, buf, len);
    } while (n < 0 && errno == EINTR && !atomic_load(&ch->cancelled));
    if (n > 0)
        return (int)(n > (1 << 30) ? (1 << 30) : n);
    if (atomic_load(&ch->cancelled))
        return err_set(e, ECANCELED, "migration cancelled");
    return n == 0 ? err_set(e, EPIPE, "connection closed by peer")
                  : err_set(e, errno, "receive: %s", strerror(errno));
}

int mig_recv(struct mig_channel *ch, void *buf, size_t len, struct err *e)
{
    uint8_t *p = buf;
    while (len) {
        int n = recv_some(ch, p, len, e);
        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
        atomic_fetch_add(&ch->bytes_in, (uint64_t)n);
    }
    return 0;
}

int mig_recv_iov(struct mig_channel *ch, struct iovec *iov, int iovcnt, struct err *e)
{
    if (ch->ssl) {
        for (int i = 0; i < iovcnt; i++) {
            int rc = mig_recv(ch, iov[i].iov_base, iov[i].iov_len, e);
            if (rc)
                return rc;
        }
        return 0;
    }
    while (iovcnt > 0) {
        ssize_t n = readv(ch->fd, iov, iovcnt > 1024 ? 1024 : iovcnt);
        if (n < 0 && errno == EINTR && !atomic_load(&ch->cancelled))
            continue;
        if (n <= 0) {
            if (atomic_load(&ch->cancelled))
                return err_set(e, ECANCELED, "migration cancelled");
            return n == 0 ? err_set(e, EPIPE, "connection closed by peer")
                          : err_set(e, errno, "receive: %s", strerror(errno));
        }
        atomic_fetch_add(&ch->bytes_in, (uint64_t)n);
        iov_advance(&iov, &iovcnt, (size_t)n);
    }
    return 0;
}

int mig_recv_hdr(struct mig_channel *ch, struct mig_hdr *h, struct err *e)
{
    if (ch->peeked) {
        ch->peeked = false;
        *h = ch->peek;
        return 0;
    }
    int rc = mig_recv(ch, h, sizeof(*h), e);
    return rc ? rc : mig_hdr_check(h, e);
}

static int recv_payload(struct mig_channel *ch, const struct mig_hdr *h, uint8_t **buf,
                        struct err *e)
{
    *buf = malloc(h->length + 1);
    if (!*buf)
        return err_set(e, ENOMEM, "out of memory");
    int rc = mig_recv(ch, *buf, h->length, e);
    if (rc) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    (*buf)[h->length] = '\0';
    return 0;
}

int mig_recv_msg(struct mig_channel *ch, uint16_t want, uint8_t **buf, uint32_t *len,
                 int timeout_ms, struct err *e)
{
    *buf = NULL;
    double deadline = clock_mono_ms() + timeout_ms;
    struct mig_hdr h;
    int rc;
    /* ACKs may come before the message waited for */
    do {
        double left = deadline - clock_mono_ms();
        if (timeout_ms >= 0 && mig_wait_readable(ch, left > 0 ? (int)left : 0))
            return err_set(e, ETIMEDOUT, "no %s from the peer within %d ms",
                           mig_type_name(want), timeout_ms);
        rc = mig_recv_hdr(ch, &h, e);
        if (!rc && h.type == MIG_ACK && ch->acks && want != MIG_ACK) {
            rc = mig_ack_take(ch, &h, e);
            if (!rc)
                rc = 1; /* taken: read on */
        }
    } while (rc == 1);
    if (rc)
        return rc;
    rc = recv_payload(ch, &h, buf, e);
    if (rc)
        return rc;
    *len = h.length;
    if (h.type == want)
        return 0;
    if (h.type == MIG_ERROR)
        rc = err_set(e, EREMOTEIO, "peer: %.*s", (int)h.length, (char *)*buf);
    else
        rc = err_set(e, EPROTO, "expected %s, got %s", mig_type_name(want),
                     mig_type_name(h.type));
    free(*buf);
    *buf = NULL;
    return rc;
}
