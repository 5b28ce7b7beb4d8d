/* fake-dest: a destination that lies in its acknowledgements, to check
 * that a source is never crashed or confused by them (invariant 3).
 * `fake-dest MODE UNIX_PATH` accepts one migration on a unix socket,
 * accepts the page-CRC and ACK features offered in HELLO, reads the stream
 * and answers it according to MODE:
 *   ahead   acknowledges 1 GiB more than it has received
 *   back    acknowledges what it received, then less than that
 *   short   an ACK with a 4-byte payload
 *   huge    an ACK header announcing 1 MiB of payload
 *   flood   10000 true ACKs at once (one byte short of what came), then
 *           silence
 *   silent  never acknowledges
 *   unasked an ACK although the source did not offer the feature (HELLO's
 *           offer is ignored: the feature is not accepted either)
 * Every mode ends with an ERROR "fake destination" once END arrives (the
 * source must then resume), or when the source closes.
 * Prints "hello", "acked N" and "end" lines; status 0 unless it failed. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/sock.h"
#include "migrate/protocol.h"

static uint64_t received;

static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        received += (uint64_t)n;
    }
    return 0;
}

static int send_msg(int fd, uint16_t type, const void *data, uint32_t len, uint32_t claim)
{
    struct mig_hdr h = {.magic = MIG_MAGIC, .type = type, .length = claim};
    h.crc = crc32c(0, &h, 12);
    if (sock_write_all(fd, &h, sizeof(h)))
        return -1;
    return len ? sock_write_all(fd, data, len) : 0;
}

static int send_ack(int fd, uint64_t bytes)
{
    printf("acked %llu\n", (unsigned long long)bytes);
    return send_msg(fd, MIG_ACK, &bytes, sizeof(bytes), sizeof(bytes));
}

static int answer_hello(int fd, bool unasked)
{
    struct mig_hdr h;
    if (read_all(fd, &h, sizeof(h)) || h.type != MIG_HELLO || h.length > (1U << 20))
        return -1;
    uint8_t *msg = malloc(h.length);
    if (!msg || read_all(fd, msg, h.length) || h.length < 16) {
        free(msg);
        return -1;
    }
    uint64_t offer;
    memcpy(&offer, msg + 8, 8);
    free(msg);
    uint8_t ack[16] = {1};
    uint64_t features = offer & (unasked ? MIG_F_PAGE_CRC : MIG_F_PAGE_CRC | MIG_F_ACKS);
    memcpy(ack + 8, &features, 8);
    printf("hello offer 0x%llx\n", (unsigned long long)offer);
    return send_msg(fd, MIG_HELLO_ACK, ack, sizeof(ack), sizeof(ack));
}

/* The lie, told after the first RAM message. */
static int lie(int fd, const char *mode)
{
    if (!strcmp(mode, "ahead"))
        return send_ack(fd, received + (1ULL << 30));
    if (!strcmp(mode, "back"))
        return send_ack(fd, received) || send_ack(fd, received / 2);
    if (!strcmp(mode, "short"))
        return send_msg(fd, MIG_ACK, "abcd", 4, 4);
    if (!strcmp(mode, "huge"))
        return send_msg(fd, MIG_ACK, NULL, 0, 1U << 20);
    if (!strcmp(mode, "flood")) {
        /* true but never complete: one byte short of what came */
        uint64_t applied = received - 1;
        for (int i = 0; i < 10000; i++)
            if (send_msg(fd, MIG_ACK, &applied, 8, 8))
                return -1;
        return 0;
    }
    if (!strcmp(mode, "unasked"))
        return send_ack(fd, received);
    return 0; /* silent */
}

static int serve(int fd, const char *mode)
{
    if (answer_hello(fd, !strcmp(mode, "unasked")))
        return -1;
    puts("hello");
    static uint8_t payload[16U << 20];
    bool lied = false;
    for (;;) {
        struct mig_hdr h;
        if (read_all(fd, &h, sizeof(h)))
            return 0; /* the source closed: it gave up */
        if (h.length > sizeof(payload) || read_all(fd, payload, h.length))
            return 0;
        if (h.type == MIG_RAM && !lied) {
            lied = true;
            if (lie(fd, mode))
                return 0;
        }
        if (h.type == MIG_END) {
            puts("end");
            send_msg(fd, MIG_ERROR, "fake destination", 16, 16);
            return 0;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fake-dest MODE UNIX_PATH\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int lfd = sock_listen_unix(argv[2]);
    if (lfd < 0) {
        fprintf(stderr, "fake-dest: listen on %s: %s\n", argv[2], strerror(-lfd));
        return 1;
    }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return 1;
    int rc = serve(fd, argv[1]);
    /* let the source read what was sent before the connection goes */
    sleep(1);
    close(fd);
    close(lfd);
    unlink(argv[2]);
    return rc ? 1 : 0;
}
