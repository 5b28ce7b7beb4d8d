#include "devices/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define SECTOR 512ULL
#define VIRTIO_BLK_F_RO (1ULL << 5)
#define VIRTIO_BLK_F_BLK_SIZE (1ULL << 6)
#define VIRTIO_BLK_F_FLUSH (1ULL << 9)
enum { BLK_T_IN = 0, BLK_T_OUT = 1, BLK_T_FLUSH = 4, BLK_T_GET_ID = 8 };
enum { BLK_S_OK = 0, BLK_S_IOERR = 1, BLK_S_UNSUPP = 2 };
#define BLK_ID_BYTES 20

struct blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

static int lock_image(int fd, bool readonly)
{
    struct flock fl = {.l_type = readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
    /* OFD locks belong to the open file, not the process, so they pass
     * cleanly between threads and are dropped when the fd closes */
    return fcntl(fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

static int blk_open_fd(struct virtio_blk *blk, bool lock, struct err *e)
{
    const char *path = blk->path;
    int fd = open(path, (blk->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "disk '%s': %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = err_set(e, errno, "disk '%s': %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        rc = err_set(e, EINVAL, "disk '%s': not a regular file or block device", path);
    else if (lock && lock_image(fd, blk->readonly))
        rc = err_set(e, EBUSY, "disk '%s': in use by another process (locked)", path);
    if (rc) {
        close(fd);
        return rc;
    }
    off_t size = S_ISBLK(st.st_mode) ? lseek(fd, 0, SEEK_END) : st.st_size;
    blk->capacity = (uint64_t)size / SECTOR;
    blk->fd = fd;
    blk->locked = lock;
    return 0;
}

static int blk_open(struct virtio_blk *blk, const char *path, bool readonly, bool shared,
                    bool lock, struct err *e)
{
    memset(blk, 0, sizeof(*blk));
    snprintf(blk->path, sizeof(blk->path), "%s", path);
    blk->readonly = readonly;
    blk->shared = shared;
    blk->fd = -1;
    int rc = blk_open_fd(blk, lock, e);
    if (!rc &&
        blk_dirty_init(&blk->dirty, blk->capacity * SECTOR, BLK_DIRTY_SHIFT_DEFAULT)) {
        close(blk->fd);
        blk->fd = -1;
        rc = err_set(e, ENOMEM, "disk '%s': out of memory for its dirty bitmap", path);
    }
    return rc;
}

int virtio_blk_open(struct virtio_blk *blk, const char *path, bool readonly, bool shared,
                    struct err *e)
{
    return blk_open(blk, path, readonly, shared, true, e);
}

int virtio_blk_open_incoming(struct virtio_blk *blk, const char *path, bool readonly,
                             bool shared, struct err *e)
{
    return blk_open(blk, path, readonly, shared, !shared, e);
}

int virtio_blk_unlock(struct virtio_blk *blk)
{
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    if (!blk->locked)
        return 0;
    blk->locked = false;
    return fcntl(blk->fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

int virtio_blk_relock(struct virtio_blk *blk)
{
    if (blk->locked || !blk->shared)
        return 0;
    int rc = lock_image(blk->fd, blk->readonly);
    blk->locked = !rc;
    return rc;
}

int virtio_blk_switch(struct virtio_blk *blk, int fd, const char *path, bool shared,
                      double *ms, struct err *e)
{
    struct blk_dirty *d = &blk->dirty;
    struct timespec t0, t1;
    pthread_mutex_lock(&d->lock);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    if (!d->active || d->count)
        rc = err_set(e, EBUSY, "disk '%s': the new image is not in sync", blk->path);
    else if (fdatasync(fd) < 0 || dup2(fd, blk->fd) < 0)
        rc = err_set(e, errno, "disk '%s': switch: %s", blk->path, strerror(errno));
    if (!rc) {
        snprintf(blk->path, sizeof(blk->path), "%s", path);
        blk->shared = shared;
        d->active = NULL; /* the image is the target now */
        d->active_ctx = NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_unlock(&d->lock);
    *ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    return rc;
}

int virtio_blk_flush(struct virtio_blk *blk, struct err *e)
{
    if (blk->inflight)
        return err_set(e, EBUSY, "disk '%s': %llu requests still in flight", blk->path,
                       (unsigned long long)blk->inflight);
    if (!blk->readonly && fdatasync(blk->fd))
        return err_set(e, errno, "disk '%s': flush: %s", blk->path, strerror(errno));
    return 0;
}

/* Gathers `len` bytes from the chain's readable segments starting at the
 * beginning; the guest may split the header anywhere. */
static int chain_copy_in(const struct virtq_chain *c, const struct guest_ram *ram,
                         void *dst, uint32_t len)
{
    uint8_t *out = dst;
    for (unsigned i = 0; i < c->nseg && len; i++) {
        uint32_t n = c->seg[i].len < len ? c->seg[i].len : len;
        if (c->seg[i].writable || guest_ram_read(ram, c->seg[i].gpa, out, n))
            return -EINVAL;
        out += n;
        len -= n;
    }
    return len ? -EINVAL : 0;
}

/* Builds the iovec for the data part: bytes [skip, skip+len) of the readable
 * (or writable) part of the chain. */
static int chain_iov(const struct virtq_chain *c, const struct guest_ram *ram,
                     bool writable, uint32_t skip, uint32_t len, struct iovec *iov,
                     int *niov)
{
    *niov = 0;
    for (unsigned i = 0; i < c->nseg && len; i++) {
        const struct virtq_seg *s = &c->seg[i];
        if (s->writable != writable)
            continue;
        if (skip >= s->len) {
            skip -= s->len;
            continue;
        }
        uint32_t n = s->len - skip < len ? s->len - skip : len;
        iov[*niov].iov_base = guest_ram_ptr(ram, s->gpa + skip, n);
        iov[*niov].iov_len = n;
        (*niov)++;
        len -= n;
        skip = 0;
    }
    return len ? -EINVAL : 0;
}

static void mark_iov_dirty(struct guest_ram *ram, const struct virtq_chain *c, uint32_t len)
{
    for (unsigned i = 0; i < c->nseg && len; i++) {
        if (!c->seg[i].writable)
            continue;
        uint32_t n = c->seg[i].len < len ? c->seg[i].len : len;
        guest_ram_mark_dirty(ram, c->seg[i].gpa, n);
        len -= n;
    }
}

/* A guest write: tracked, and in active mode on the mirror's target too
 * before it completes. A failing target never fails the guest's write: it
 * ends active mode and the block stays dirty (the mirror then fails). */
static ssize_t blk_write(struct virtio_blk *blk, const struct iovec *iov, int niov,
                         off_t off)
{
    struct blk_dirty *d = &blk->dirty;
    pthread_mutex_lock(&d->lock);
    ssize_t n = pwritev(blk->fd, iov, niov, off);
    if (n > 0 && d->active) {
        int rc = d->active(d->active_ctx, iov, niov, (uint64_t)off, (uint64_t)n);
        if (rc) {
            d->active_error = rc;
            d->active = NULL;
        } else {
            d->active_writes++;
            d->active_bytes += (uint64_t)n;
        }
    }
    if (n > 0 && !d->active)
        blk_dirty_mark_locked(d, (uint64_t)off, (uint64_t)n);
    if (n > 0)
        blk_dirty_repl_mark_locked(d, (uint64_t)off, (uint64_t)n);
    pthread_mutex_unlock(&d->lock);
    return n;
}

static uint8_t blk_rw(struct virtio_blk *blk, const struct virtq_chain *c,
                      const struct blk_req_hdr *h, uint32_t *written)
{
    bool in = h->type == BLK_T_IN;
    uint32_t len = in ? c->writable_len - 1 : c->readable_len - sizeof(*h);
    if (!in && blk->readonly)
        return BLK_S_IOERR;
    if (len % SECTOR || h->sector > blk->capacity ||
        len / SECTOR > blk->capacity - h->sector)
        return BLK_S_IOERR;
    struct iovec iov[VIRTQ_MAX_SIZE];
    int niov;
    if (chain_iov(c, blk->mmio.ram, in, in ? 0 : sizeof(*h), len, iov, &niov))
        return BLK_S_IOERR;
    off_t off = (off_t)(h->sector * SECTOR);
    ssize_t n = in ? preadv(blk->fd, iov, niov, off) : blk_write(blk, iov, niov, off);
    if (n != (ssize_t)len)
        return BLK_S_IOERR;
    if (in) {
        mark_iov_dirty(blk->mmio.ram, c, len);
        *written = len;
        blk->reads++;
    } else {
        blk->writes++;
    }
    return BLK_S_OK;
}

static uint8_t blk_get_id(struct virtio_blk *blk, const struct virtq_chain *c,
                          uint32_t *written)
{
    char id[BLK_ID_BYTES] = {0};
    const char *slash = strrchr(blk->path, '/');
    const char *base = slash ? slash + 1 : blk->path;
    /* the id is 20 bytes, NUL-padded, not necessarily terminated */
    memcpy(id, base, strnlen(base, sizeof(id)));
    uint32_t len = c->writable_len - 1 < BLK_ID_BYTES ? c->writable_len - 1 : BLK_ID_BYTES;
    struct iovec iov[VIRTQ_MAX_SIZE];
    int niov;
    if (chain_iov(c, blk->mmio.ram, true, 0, len, iov, &niov))
        return BLK_S_IOERR;
    const char *src = id;
    for (int i = 0; i < niov; i++) {
        memcpy(iov[i].iov_base, src, iov[i].iov_len);
        src += iov[i].iov_len;
    }
    mark_iov_dirty(blk->mmio.ram, c, len);
    *written = len;
    return BLK_S_OK;
}

static uint8_t blk_execute(struct virtio_blk *blk, const struct virtq_chain *c,
                           const struct blk_req_hdr *h, uint32_t *written)
{
    switch (h->type) {
    case BLK_T_IN:
    case BLK_T_OUT: return blk_rw(blk, c, h, written);
    case BLK_T_FLUSH: blk->flushes++; return fdatasync(blk->fd) ? BLK_S_IOERR : BLK_S_OK;
    case BLK_T_GET_ID: return blk_get_id(blk, c, written);
    default: return BLK_S_UNSUPP;
    }
}

/* The last writable byte of the chain is the status. */
static int blk_status_gpa(const struct virtq_chain *c, uint64_t *gpa)
{
    if (!c->nseg || !c->seg[c->nseg - 1].writable || !c->seg[c->nseg - 1].len)
        return -EINVAL;
    const struct virtq_seg *s = &c->seg[c->nseg - 1];
    *gpa = s->gpa + s->len - 1;
    return 0;
}

static int blk_serve(struct virtio_blk *blk, struct virtq *vq, const struct virtq_chain *c)
{
    struct blk_req_hdr h;
    uint64_t status_gpa;
    if (chain_copy_in(c, blk->mmio.ram, &h, sizeof(h)) || blk_status_gpa(c, &status_gpa))
        return -EINVAL;
    uint32_t written = 0;
    uint8_t status = blk_execute(blk, c, &h, &written);
    if (status != BLK_S_OK)
        blk->errors++;
    guest_ram_write(blk->mmio.ram, status_gpa, &status, 1);
    return virtq_push(vq, blk->mmio.ram, c->head, written + 1);
}

static void blk_notify(struct virtio_mmio *dev, unsigned queue)
{
    struct virtio_blk *blk = dev->backend;
    struct virtq *vq = &dev->regs.queue[queue];
    static __thread struct virtq_chain chain;
    char why[128];
    bool popped;
    int rc;
    while (!(rc = virtq_pop(vq, dev->ram, &chain, &popped, why, sizeof(why))) && popped) {
        blk->inflight++;
        int served = blk_serve(blk, vq, &chain);
        blk->inflight--;
        if (served) {
            virtio_mmio_fail(dev, "malformed block request");
            return;
        }
        virtio_mmio_signal_used(dev, queue);
    }
    if (rc < 0)
        virtio_mmio_fail(dev, why);
}

static void blk_config_read(struct virtio_mmio *dev, uint64_t off, void *data,
                            unsigned size)
{
    struct virtio_blk *blk = dev->backend;
    uint8_t config[24] = {0};
    uint32_t blk_size = SECTOR;
    memcpy(config, &blk->capacity, 8);
    memcpy(config + 20, &blk_size, 4);
    if (off < sizeof(config) && size <= sizeof(config) - off)
        memcpy(data, config + off, size);
}

static const struct virtio_device_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nqueues = 1,
    .queue_max = VIRTQ_MAX_SIZE,
    .notify = blk_notify,
    .config_read = blk_config_read,
};

void virtio_blk_attach(struct virtio_blk *blk, uint64_t base, struct guest_ram *ram,
                       struct irq_line irq)
{
    uint64_t features = VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_BLK_SIZE |
                        (blk->readonly ? VIRTIO_BLK_F_RO : 0);
    virtio_mmio_init(&blk->mmio, &virtio_blk_ops, features, base, ram, irq, blk);
}

void virtio_blk_release(struct virtio_blk *blk)
{
    if (blk->fd >= 0)
        close(blk->fd);
    blk->fd = -1;
    blk_dirty_release(&blk->dirty);
    virtio_mmio_release(&blk->mmio);
}

static int blk_save(void *opaque, struct buf *out, struct err *e)
{
    struct virtio_blk *blk = opaque;
    if (blk->inflight)
        return err_set(e, EBUSY, "disk '%s': requests in flight at save", blk->path);
    buf_put_u64(out, blk->capacity);
    buf_put_u8(out, blk->readonly);
    virtio_mmio_save(&blk->mmio, out);
    return 0;
}

static int blk_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct virtio_blk *blk = opaque;
    (void)version;
    uint64_t capacity = reader_u64(in);
    uint8_t readonly = reader_u8(in);
    if (in->bad)
        return err_set(e, EINVAL, "virtio-blk: truncated state");
    if (capacity != blk->capacity || readonly != blk->readonly)
        return err_set(e, EINVAL,
                       "virtio-blk '%s': source disk has %llu sectors%s, "
                       "this one %llu%s",
                       blk->path, (unsigned long long)capacity,
                       readonly ? " (readonly)" : "", (unsigned long long)blk->capacity,
                       blk->readonly ? " (readonly)" : "");
    int rc = virtio_mmio_load(&blk->mmio, in, e);
    if (!rc && reader_finish(in))
        rc = err_set(e, EINVAL, "virtio-blk: trailing bytes in state");
    return rc;
}

/* The destination reopens the image at the commit, after the source has
 * flushed and unlocked it: a fresh open sees what the source wrote even on
 * storage with close-to-open consistency (NFS), and takes the lock. */
static int blk_post_load(void *opaque, struct err *e)
{
    struct virtio_blk *blk = opaque;
    if (blk->shared && !blk->locked) {
        int old = blk->fd;
        int rc = -EBUSY;
        for (int tries = 0; tries < 100 && rc; tries++) {
            rc = blk_open_fd(blk, true, e);
            if (rc)
                usleep(20000);
        }
        if (rc)
            return rc;
        close(old);
    }
    virtio_mmio_post_load(&blk->mmio);
    return 0;
}

const struct devstate_ops virtio_blk_state_ops = {
    "virtio-blk", 1, blk_save, blk_load, blk_post_load,
};
