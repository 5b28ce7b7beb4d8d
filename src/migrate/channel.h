/* A migration connection: plain TCP or unix socket, or TLS 1.3 over TCP,
 * with message framing, byte counters, a bandwidth limit and cancellation. */
#ifndef TERN_MIGRATE_CHANNEL_H
#define TERN_MIGRATE_CHANNEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "common/err.h"
#include "migrate/protocol.h"

struct ssl_st;

struct mig_channel {
    int fd;
    struct ssl_st *ssl;
    _Atomic uint64_t bytes_out, bytes_in;
    double send_ms;         /* time spent in send calls */
    uint64_t max_bandwidth; /* bytes/s; 0 = unlimited */
    uint64_t limit_bytes;   /* sent since limit_start */
    struct timespec limit_start;
    _Atomic bool cancelled;
    uint8_t *tls_buf; /* gather buffer: OpenSSL has no writev */
    size_t tls_buf_size;
    /* acknowledgements (feature ACKS), read by the source */
    bool acks;           /* negotiated: the peer sends ACKs */
    uint64_t acked;      /* stream bytes the peer has applied */
    double acked_at_ms;  /* when the last ACK arrived */
    bool peeked;         /* peek holds the next header, read */
    struct mig_hdr peek; /* while looking for ACKs */
};

void mig_channel_init(struct mig_channel *ch, int fd);
void mig_channel_release(struct mig_channel *ch);
/* From another thread: makes blocked sends and receives fail at once. */
void mig_channel_cancel(struct mig_channel *ch);
void mig_channel_set_bandwidth(struct mig_channel *ch, uint64_t bytes_per_s);

/* URIs: tcp:HOST:PORT, unix:PATH, fd:N. */
int mig_uri_connect(const char *uri, int *fd, struct err *e);
int mig_uri_listen(const char *uri, int *fd, struct err *e);
/* Waits up to timeout_ms for one connection (or takes fd: URIs as is). */
int mig_accept(int listen_fd, int timeout_ms, int *fd, struct err *e);

/* Sends header + payload gathered from iov. */
int mig_send(struct mig_channel *ch, uint16_t type, const struct iovec *iov, int iovcnt,
             struct err *e);
int mig_send_buf(struct mig_channel *ch, uint16_t type, const void *data, uint32_t len,
                 struct err *e);
/* Sends an ERROR message with text; failures are ignored (best effort). */
void mig_send_error(struct mig_channel *ch, const char *text);
/* Reads a header and checks it (mig_hdr_check). */
int mig_recv_hdr(struct mig_channel *ch, struct mig_hdr *h, struct err *e);
int mig_recv(struct mig_channel *ch, void *buf, size_t len, struct err *e);
int mig_recv_iov(struct mig_channel *ch, struct iovec *iov, int iovcnt, struct err *e);
/* Reads a whole message of the expected type into buf (malloc'ed); an ERROR
 * from the peer becomes e with the peer's text. */
int mig_recv_msg(struct mig_channel *ch, uint16_t want, uint8_t **buf, uint32_t *len,
                 int timeout_ms, struct err *e);
/* Waits until the fd is readable or timeout_ms passes: 0, -ETIMEDOUT. */
int mig_wait_readable(struct mig_channel *ch, int timeout_ms);

/* ---- acknowledgements (ack.c) ---- */
/* Destination: tells the source it has applied every byte received. */
int mig_ack_send(struct mig_channel *ch, struct err *e);
/* Source: reads the ACKs waiting, without blocking. A message of another
 * type stays for the next mig_recv_hdr. A lying ACK (beyond the bytes sent,
 * or going back) or a malformed one is an error. */
int mig_ack_poll(struct mig_channel *ch, struct err *e);
/* Source: waits until the peer has applied `bytes` (ch->acked >= bytes):
 * 0, -ETIMEDOUT, or the error of a lying ACK or of another message (an
 * ERROR from the peer). */
int mig_ack_wait(struct mig_channel *ch, uint64_t bytes, int timeout_ms, struct err *e);
/* Destination: acknowledges when caught up (nothing more to read now), so
 * the source knows at once, and every MIG_ACK_EVERY_BYTES while behind;
 * *acked is what was acknowledged last on ch. */
#define MIG_ACK_EVERY_BYTES (8U << 20)
int mig_ack_progress(struct mig_channel *ch, uint64_t *acked, struct err *e);
/* Reads the payload of an ACK whose header is h and checks it. */
int mig_ack_take(struct mig_channel *ch, const struct mig_hdr *h, struct err *e);
#endif
