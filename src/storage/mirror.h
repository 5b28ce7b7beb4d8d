/* A mirror job: copies a running VM's disk to an NBD export (libnbd is the
 * client) while the guest keeps writing. First every allocated extent
 * (SEEK_DATA/SEEK_HOLE: holes stay holes, the target is a fresh sparse
 * file), then the blocks the guest dirtied meanwhile, pass after pass; then
 * active mode, in which a guest write completes only once both copies have
 * it, so the target stays in sync until the VM pauses (docs/design.md,
 * invariant 4). */
#ifndef TERN_STORAGE_MIRROR_H
#define TERN_STORAGE_MIRROR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "devices/virtio_blk.h"

struct nbd_handle;

#define MIRROR_CHUNK (1U << 20) /* bytes per copy: the lock is held that long */
/* Dirty passes before active mode is forced: after them the guest writes
 * faster than the copy converges. */
#define MIRROR_PASSES_MAX 6
/* Dirty bytes small enough to go under active mode in one more pass. */
#define MIRROR_SMALL_ENOUGH (8U << 20)
/* NBD writes in flight while active mode is off (docs/nbd.md). */
#define MIRROR_WINDOW_DEFAULT 16
#define MIRROR_WINDOW_MAX 64

/* What the figures show of one disk. */
struct mirror_fig {
    char name[8];    /* disk0..disk7 */
    uint64_t total;  /* allocated bytes when the job began */
    uint64_t copied; /* bytes written to the target by the job */
    uint64_t dirty;  /* bytes still to copy */
    unsigned passes; /* over the dirty bitmap */
    double rate;     /* bytes/s of the copy so far */
    bool active;     /* guest writes reach both copies */
    double sync_ms;  /* from the start to synchronous; 0 before */
    uint64_t active_writes, active_bytes;
};

/* One chunk read from the image, in flight to the target. */
struct mirror_slot {
    struct mirror *m;
    uint8_t *buf; /* MIRROR_CHUNK bytes */
    uint64_t off, len;
    bool busy;
};

struct mirror {
    struct virtio_blk *blk;
    struct nbd_handle *nbd;
    int tfd; /* a target file of this host (move-disk), not owned; -1 with nbd */
    uint8_t *buf;
    double t0;
    struct mirror_fig fig;
    /* called now and then during a pass, outside the lock (figures) */
    void (*tick)(void *ctx);
    void *tick_ctx;
    /* the window (storage/mirror_aio.c): mirror thread only */
    struct mirror_slot *slots;
    unsigned window, in_flight;
    uint64_t cursor; /* the next bit of the pass */
    int aio_error;   /* the first failed write in flight, errno */
};

/* Connects to uri ("tcp:HOST:PORT" or "unix:PATH"), export name; checks the
 * export's size against the disk. */
int mirror_open(struct mirror *m, struct virtio_blk *blk, const char *name, const char *uri,
                struct err *e);
/* NBD's STARTTLS with the certificates of dir (ca.pem, cert.pem, key.pem,
 * as the migration stream): the server's certificate must chain to ca.pem
 * (storage/nbd_client.c). */
struct mirror_tls {
    const char *dir;
};
/* mirror_open over TLS; tls NULL: plain. */
int mirror_open_tls(struct mirror *m, struct virtio_blk *blk, const char *name,
                    const char *uri, const struct mirror_tls *tls, struct err *e);
/* A target file of this host instead (move-disk): fd of the disk's size,
 * kept open by the caller. */
int mirror_open_file(struct mirror *m, struct virtio_blk *blk, const char *name, int fd,
                     struct err *e);
/* Dirty bitmap = the image's allocated extents; fig.total their bytes. */
int mirror_seed(struct mirror *m, struct err *e);
/* One pass over the bits set now; stops early when *cancel. */
int mirror_pass(struct mirror *m, const _Atomic bool *cancel, struct err *e);
/* Passes until the rest is small (or MIRROR_PASSES_MAX), then active mode,
 * the pass that makes the target equal, and a flush of the target: from
 * then on the target stays synchronous. */
int mirror_sync(struct mirror *m, const _Atomic bool *cancel, struct err *e);
/* Active mode on (writes go to both copies); a pass follows to copy what
 * was dirty until then. */
void mirror_activate(struct mirror *m);
/* A guest write that reached only the image (the target failed). */
int mirror_check(struct mirror *m, struct err *e);
/* Makes what the target has durable; after sync, so that the flush inside
 * the pause has little left to write. */
int mirror_flush(struct mirror *m, struct err *e);
/* With the VM paused: the last dirty blocks, then a flush of the target. */
int mirror_finish(struct mirror *m, struct err *e);
/* Active mode off, then the connection closed; safe on a failed open. */
void mirror_close(struct mirror *m);
/* Figures under the disk's lock (any thread). */
void mirror_figures(struct mirror *m, struct mirror_fig *out);

#endif
