/* The NBD server of a destination tern-vmm: it exports the VM's local disks
 * (disk0..disk7, the files the destination opened and locked) so that the
 * source's mirror writes into them while the VM runs on the source. Every
 * value a peer sends is checked before use (docs/design.md, invariant 3):
 * a bad magic, an unknown option or command, a range past the export's end
 * or a length above NBD_REQUEST_MAX ends that connection with one log line
 * and touches nothing. */
#include "storage/nbd.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sock.h"

struct conn {
    struct nbd_server *s;
    int fd;
    unsigned slot;
    const struct nbd_export *ex; /* chosen by EXPORT_NAME or GO */
    uint8_t *buf;
    bool unflushed, disc; /* a write since the last flush; NBD_CMD_DISC came */
};

static void put16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}
static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return be16toh(v);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

/* A peer's fault: the connection ends, the reason is logged once. */
static int refuse(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int refuse(struct conn *c, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_warn("nbd", "peer refused: %s", why);
    pthread_mutex_lock(&c->s->lock);
    snprintf(c->s->error, sizeof(c->s->error), "%s", why);
    pthread_mutex_unlock(&c->s->lock);
    return -EPROTO;
}

static int opt_reply(struct conn *c, uint32_t opt, uint32_t type, const void *data,
                     uint32_t len)
{
    uint8_t h[20];
    put64(h, NBD_REP_MAGIC);
    put32(h + 8, opt);
    put32(h + 12, type);
    put32(h + 16, len);
    int rc = sock_write_all(c->fd, h, sizeof(h));
    return rc || !len ? rc : sock_write_all(c->fd, data, len);
}

static const struct nbd_export *find_export(const struct nbd_server *s, const char *name)
{
    for (unsigned i = 0; i < s->nexports; i++)
        if (strcmp(s->exports[i].name, name) == 0)
            return &s->exports[i];
    return NULL;
}

static uint16_t tflags(void)
{
    return NBD_TFLAG_HAS_FLAGS | NBD_TFLAG_SEND_FLUSH | NBD_TFLAG_SEND_FUA |
           NBD_TFLAG_SEND_WRITE_ZEROES;
}

/* NBD_OPT_INFO / NBD_OPT_GO: u32 name length, name, u16 n, n x u16. *go
 * when the export was chosen. */
static int opt_info_go(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len,
                       bool *go)
{
    uint32_t nl = len >= 4 ? get32(d) : UINT32_MAX;
    if (nl > len - 4 || len - 4 - nl < 2 || (len - 6 - nl) != 2u * get16(d + 4 + nl))
        return opt_reply(c, opt, NBD_REP_ERR_INVALID, NULL, 0);
    char name[64];
    if (nl >= sizeof(name))
        return opt_reply(c, opt, NBD_REP_ERR_UNKNOWN, NULL, 0);
    memcpy(name, d + 4, nl);
    name[nl] = '\0';
    const struct nbd_export *ex = find_export(c->s, nl ? name : "disk0");
    if (!ex)
        return opt_reply(c, opt, NBD_REP_ERR_UNKNOWN, NULL, 0);
    uint8_t info[12];
    put16(info, NBD_INFO_EXPORT);
    put64(info + 2, ex->size);
    put16(info + 10, tflags());
    int rc = opt_reply(c, opt, NBD_REP_INFO, info, sizeof(info));
    if (!rc)
        rc = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (!rc && opt == NBD_OPT_GO) {
        c->ex = ex;
        *go = true;
    }
    return rc;
}

static int opt_list(struct conn *c)
{
    int rc = 0;
    for (unsigned i = 0; !rc && i < c->s->nexports; i++) {
        uint8_t d[4 + sizeof(c->s->exports[i].name)];
        uint32_t n = (uint32_t)strlen(c->s->exports[i].name);
        put32(d, n);
        memcpy(d + 4, c->s->exports[i].name, n);
        rc = opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, d, 4 + n);
    }
    return rc ? rc : opt_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

/* EXPORT_NAME ends the options with no reply header: size, flags. */
static int opt_export_name(struct conn *c, const uint8_t *d, uint32_t len, bool no_zeroes)
{
    char name[64];
    if (len >= sizeof(name))
        return refuse(c, "export name of %u bytes", len);
    memcpy(name, d, len);
    name[len] = '\0';
    c->ex = find_export(c->s, len ? name : "disk0");
    if (!c->ex)
        return refuse(c, "no export '%s'", name);
    uint8_t r[10 + 124] = {0};
    put64(r, c->ex->size);
    put16(r + 8, tflags());
    return sock_write_all(c->fd, r, no_zeroes ? 10 : sizeof(r));
}

static int negotiate(struct conn *c)
{
    uint8_t h[18];
    put64(h, NBD_MAGIC);
    put64(h + 8, NBD_IHAVEOPT);
    put16(h + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    int rc = sock_write_all(c->fd, h, sizeof(h));
    uint8_t cf[4];
    if (!rc)
        rc = sock_read_all(c->fd, cf, 4);
    if (rc)
        return rc;
    uint32_t flags = get32(cf);
    if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE) || (flags & ~3U))
        return refuse(c, "client flags 0x%x", flags);
    for (bool go = false; !go;) {
        uint8_t oh[16];
        if ((rc = sock_read_all(c->fd, oh, sizeof(oh))))
            return rc;
        uint32_t opt = get32(oh + 8), len = get32(oh + 12);
        if (get64(oh) != NBD_IHAVEOPT)
            return refuse(c, "bad option magic");
        if (len > NBD_OPTION_MAX)
            return refuse(c, "option %u of %u bytes", opt, len);
        if ((rc = sock_read_all(c->fd, c->buf, len)))
            return rc;
        if (opt == NBD_OPT_EXPORT_NAME)
            return opt_export_name(c, c->buf, len, flags & NBD_FLAG_C_NO_ZEROES);
        if (opt == NBD_OPT_ABORT) {
            opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
            return -ECONNRESET;
        }
        if (opt == NBD_OPT_GO || opt == NBD_OPT_INFO)
            rc = opt_info_go(c, opt, c->buf, len, &go);
        else if (opt == NBD_OPT_LIST)
            rc = opt_list(c);
        else /* structured replies, meta contexts, TLS: simple replies only */
            rc = opt_reply(c, opt, NBD_REP_ERR_UNSUP, NULL, 0);
        if (rc)
            return rc;
    }
    return 0;
}

static int reply(struct conn *c, uint64_t handle, uint32_t error, const void *data,
                 uint32_t len)
{
    uint8_t r[16];
    put32(r, NBD_SIMPLE_REPLY_MAGIC);
    put32(r + 4, error);
    put64(r + 8, handle);
    int rc = sock_write_all(c->fd, r, sizeof(r));
    return rc || error || !len ? rc : sock_write_all(c->fd, data, len);
}

static uint32_t errno_code(int err)
{
    return err == ENOSPC ? 28 : err == EINVAL ? 22 : 5; /* EIO */
}

static int do_write(struct conn *c, uint64_t handle, uint16_t type, uint16_t flags,
                    uint64_t off, uint32_t len)
{
    int err = 0;
    if (type == NBD_CMD_WRITE) {
        int rc = sock_read_all(c->fd, c->buf, len);
        if (rc)
            return rc;
    } else if (fallocate(c->ex->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, len) == 0) {
        len = 0; /* zeroed in place */
    } else {
        memset(c->buf, 0, len);
    }
    if (len && pwrite(c->ex->fd, c->buf, len, (off_t)off) != (ssize_t)len)
        err = errno ? errno : EIO;
    if (!err && (flags & NBD_CMD_FLAG_FUA) && fdatasync(c->ex->fd))
        err = errno;
    c->unflushed = true;
    pthread_mutex_lock(&c->s->lock);
    c->s->writes++;
    c->s->bytes_written += err ? 0 : len;
    pthread_mutex_unlock(&c->s->lock);
    return reply(c, handle, err ? errno_code(err) : 0, NULL, 0);
}

/* One request; 1 at NBD_CMD_DISC. */
static int serve_one(struct conn *c)
{
    uint8_t q[28];
    int rc = sock_read_all(c->fd, q, sizeof(q));
    if (rc)
        return rc;
    uint16_t flags = get16(q + 4), type = get16(q + 6);
    uint64_t handle = get64(q + 8), off = get64(q + 16);
    uint32_t len = get32(q + 24);
    if (get32(q) != NBD_REQUEST_MAGIC)
        return refuse(c, "bad request magic 0x%08x", get32(q));
    if (type == NBD_CMD_DISC) {
        c->disc = true;
        return 1;
    }
    if (type == NBD_CMD_FLUSH) {
        bool ok = fdatasync(c->ex->fd) == 0;
        c->unflushed = c->unflushed && !ok;
        pthread_mutex_lock(&c->s->lock);
        c->s->flushes++;
        pthread_mutex_unlock(&c->s->lock);
        return reply(c, handle, ok ? 0 : 5, NULL, 0);
    }
    if (type != NBD_CMD_READ && type != NBD_CMD_WRITE && type != NBD_CMD_WRITE_ZEROES)
        return refuse(c, "unknown command %u", type);
    if (len > NBD_REQUEST_MAX)
        return refuse(c, "request of %u bytes (at most %u)", len, NBD_REQUEST_MAX);
    if (off > c->ex->size || len > c->ex->size - off) {
        /* the data of a write must still be read to stay in step */
        if (type == NBD_CMD_WRITE && (rc = sock_read_all(c->fd, c->buf, len)))
            return rc;
        return reply(c, handle, 22, NULL, 0);
    }
    if (type != NBD_CMD_READ)
        return do_write(c, handle, type, flags, off, len);
    ssize_t n = pread(c->ex->fd, c->buf, len, (off_t)off);
    return reply(c, handle, n == (ssize_t)len ? 0 : 5, c->buf, len);
}

static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    int rc = negotiate(c);
    while (!rc && !atomic_load(&c->s->stop))
        rc = serve_one(c);
    pthread_mutex_lock(&c->s->lock);
    c->s->ended++;
    if (c->ex && c->disc && !c->unflushed)
        c->s->exports[c->ex - c->s->exports].ended_clean++;
    else
        c->s->ended_unclean++;
    c->s->conns[c->slot] = -1;
    close(c->fd);
    pthread_mutex_unlock(&c->s->lock);
    free(c->buf);
    free(c);
    return NULL;
}

static void start_conn(struct nbd_server *s, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    uint8_t *buf = malloc(NBD_REQUEST_MAX);
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < NBD_CONNS_MAX; i++)
        if (s->conn_used[i] && s->conns[i] < 0) { /* ended: reap it */
            pthread_join(s->conn_threads[i], NULL);
            s->conn_used[i] = false;
        }
    unsigned slot = 0;
    while (slot < NBD_CONNS_MAX && s->conn_used[slot])
        slot++;
    bool ok = c && buf && slot < NBD_CONNS_MAX;
    if (ok) {
        *c = (struct conn){.s = s, .fd = fd, .slot = slot, .buf = buf};
        s->conns[slot] = fd;
        s->conn_used[slot] = true;
        ok = pthread_create(&s->conn_threads[slot], NULL, conn_thread, c) == 0;
        if (!ok) {
            s->conns[slot] = -1;
            s->conn_used[slot] = false;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        log_warn("nbd", "connection refused: %s",
                 slot < NBD_CONNS_MAX ? "out of memory" : "too many connections");
        close(fd);
        free(c);
        free(buf);
    }
}

static void *accept_thread(void *arg)
{
    struct nbd_server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                              {.fd = s->wake, .events = POLLIN}};
        if (poll(p, 2, -1) <= 0 || !(p[0].revents & POLLIN))
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_conn(s, fd);
    }
    return NULL;
}

void nbd_server_init(struct nbd_server *s)
{
    memset(s, 0, sizeof(*s));
    s->lfd = -1;
    s->wake = eventfd(0, EFD_CLOEXEC);
    for (unsigned i = 0; i < NBD_CONNS_MAX; i++)
        s->conns[i] = -1;
    pthread_mutex_init(&s->lock, NULL);
}

void nbd_server_set_listener(struct nbd_server *s, int lfd)
{
    s->lfd = lfd;
}

int nbd_server_add(struct nbd_server *s, const char *name, int fd, uint64_t size,
                   struct err *e)
{
    if (s->nexports == NBD_EXPORTS_MAX || strlen(name) >= sizeof(s->exports[0].name))
        return err_set(e, EINVAL, "nbd: cannot export '%s'", name);
    struct nbd_export *x = &s->exports[s->nexports++];
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->fd = fd;
    x->size = size;
    return 0;
}

int nbd_server_start(struct nbd_server *s, struct err *e)
{
    if (s->lfd < 0 || s->wake < 0)
        return err_set(e, EINVAL, "nbd: no listening socket");
    int rc = pthread_create(&s->accept_thread, NULL, accept_thread, s);
    if (rc)
        return err_set(e, rc, "nbd: thread: %s", strerror(rc));
    s->running = true;
    log_info("nbd", "serving %u export(s)", s->nexports);
    return 0;
}

void nbd_server_stop(struct nbd_server *s)
{
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    uint64_t one = 1;
    if (write(s->wake, &one, sizeof(one)) < 0)
        log_warn("nbd", "wake: %s", strerror(errno));
    pthread_join(s->accept_thread, NULL);
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < NBD_CONNS_MAX; i++)
        if (s->conns[i] >= 0)
            shutdown(s->conns[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < NBD_CONNS_MAX; i++)
        if (s->conn_used[i])
            pthread_join(s->conn_threads[i], NULL);
    s->running = false;
    log_info("nbd", "stopped: %llu writes, %llu bytes, %llu flushes",
             (unsigned long long)s->writes, (unsigned long long)s->bytes_written,
             (unsigned long long)s->flushes);
}

void nbd_server_release(struct nbd_server *s)
{
    nbd_server_stop(s);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake >= 0)
        close(s->wake);
    s->lfd = s->wake = -1;
    pthread_mutex_destroy(&s->lock);
}
