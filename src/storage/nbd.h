/* NBD, the protocol qemu-nbd, nbdkit and libnbd speak (fixed newstyle
 * handshake, simple replies): the numbers of the parts tern uses, and the
 * server a destination tern-vmm runs to receive a mirror of its local disks
 * while the VM still runs on the source. docs/nbd.md says which parts of the
 * protocol are served and why the server lives in tern-vmm. */
#ifndef TERN_STORAGE_NBD_H
#define TERN_STORAGE_NBD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define NBD_MAGIC 0x4e42444d41474943ULL     /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454F5054ULL  /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ULL /* option replies */
#define NBD_REQUEST_MAGIC 0x25609513U
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698U

#define NBD_FLAG_FIXED_NEWSTYLE 1
#define NBD_FLAG_NO_ZEROES 2
#define NBD_FLAG_C_FIXED_NEWSTYLE 1
#define NBD_FLAG_C_NO_ZEROES 2

enum {
    NBD_OPT_EXPORT_NAME = 1,
    NBD_OPT_ABORT = 2,
    NBD_OPT_LIST = 3,
    NBD_OPT_INFO = 6,
    NBD_OPT_GO = 7,
};
#define NBD_REP_ACK 1U
#define NBD_REP_SERVER 2U
#define NBD_REP_INFO 3U
#define NBD_REP_ERR_UNSUP 0x80000001U
#define NBD_REP_ERR_INVALID 0x80000003U
#define NBD_REP_ERR_UNKNOWN 0x80000006U
#define NBD_INFO_EXPORT 0

/* transmission flags */
#define NBD_TFLAG_HAS_FLAGS (1U << 0)
#define NBD_TFLAG_SEND_FLUSH (1U << 2)
#define NBD_TFLAG_SEND_FUA (1U << 3)
#define NBD_TFLAG_SEND_WRITE_ZEROES (1U << 6)

enum {
    NBD_CMD_READ = 0,
    NBD_CMD_WRITE = 1,
    NBD_CMD_DISC = 2,
    NBD_CMD_FLUSH = 3,
    NBD_CMD_WRITE_ZEROES = 6,
};
#define NBD_CMD_FLAG_FUA (1U << 0)

#define NBD_OPTION_MAX 4096         /* longest option data taken */
#define NBD_REQUEST_MAX (32U << 20) /* longest read or write */
#define NBD_EXPORTS_MAX 8
#define NBD_CONNS_MAX 8

struct nbd_export {
    char name[16]; /* disk0..disk7 */
    int fd;        /* not owned */
    uint64_t size;
    unsigned ended_clean; /* connections to it that ended clean, under the lock */
};

/* The server: one listening socket, a thread that accepts, a thread per
 * connection. Writes go straight into the exports' fds. */
struct nbd_server {
    int lfd;
    int wake; /* eventfd: stop without waiting for a poll timeout */
    struct nbd_export exports[NBD_EXPORTS_MAX];
    unsigned nexports;
    pthread_t accept_thread;
    bool running;
    _Atomic bool stop;
    pthread_mutex_t lock; /* conns, figures */
    int conns[NBD_CONNS_MAX];
    pthread_t conn_threads[NBD_CONNS_MAX];
    bool conn_used[NBD_CONNS_MAX];
    uint64_t bytes_written, writes, flushes;
    /* connections that ended, and those that ended unclean: without
     * NBD_CMD_DISC or with a write after their last flush (a replica's
     * commit rule, docs/replication.md) */
    unsigned ended, ended_unclean;
    char error[256]; /* the last refused peer, for the log */
};

void nbd_server_init(struct nbd_server *s);
/* Takes the listening socket lfd (made early, from the --nbd-listen URI:
 * the port is held from the start, and a source that connects before the
 * exports are there waits in the backlog). */
void nbd_server_set_listener(struct nbd_server *s, int lfd);
/* Adds an export; before nbd_server_start only. */
int nbd_server_add(struct nbd_server *s, const char *name, int fd, uint64_t size,
                   struct err *e);
int nbd_server_start(struct nbd_server *s, struct err *e);
/* Stops accepting, hangs up every connection, joins the threads. */
void nbd_server_stop(struct nbd_server *s);
void nbd_server_release(struct nbd_server *s);

#endif
