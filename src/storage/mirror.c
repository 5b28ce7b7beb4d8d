#include "storage/mirror.h"

#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/opts.h"
#include "storage/mirror_aio.h"
#include "storage/nbd.h"

/* The target: an NBD export, or a file of this host (move-disk). */
static int target_write(struct mirror *m, const void *buf, size_t len, uint64_t off,
                        struct err *e)
{
    if (m->tfd >= 0) {
        if (pwrite(m->tfd, buf, len, (off_t)off) == (ssize_t)len)
            return 0;
        return err_set(e, errno ? errno : EIO, "disk '%s': write to the target: %s",
                       m->fig.name, strerror(errno ? errno : EIO));
    }
    return nbd_pwrite(m->nbd, buf, len, off, 0) ? nbd_client_fail(m->fig.name, "write", e)
                                                : 0;
}

int mirror_flush(struct mirror *m, struct err *e)
{
    if (m->tfd >= 0)
        return fdatasync(m->tfd) ? err_set(e, errno, "disk '%s': flush of the target: %s",
                                           m->fig.name, strerror(errno))
                                 : 0;
    return nbd_flush(m->nbd, 0) ? nbd_client_fail(m->fig.name, "flush", e) : 0;
}

/* One mirror per disk: a migration and a move-disk never share a bitmap. */
static int claim(struct mirror *m, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    pthread_mutex_lock(&d->lock);
    bool busy = d->mirror != NULL;
    if (!busy)
        d->mirror = m;
    pthread_mutex_unlock(&d->lock);
    return busy ? err_set(e, EBUSY, "disk '%s': another mirror job runs on it", m->fig.name)
                : 0;
}

static void mirror_start(struct mirror *m, struct virtio_blk *blk, const char *name)
{
    memset(m, 0, sizeof(*m));
    m->tfd = -1;
    m->blk = blk;
    m->t0 = clock_mono_ms();
    snprintf(m->fig.name, sizeof(m->fig.name), "%s", name);
    m->buf = malloc(MIRROR_CHUNK);
}

int mirror_open_file(struct mirror *m, struct virtio_blk *blk, const char *name, int fd,
                     struct err *e)
{
    mirror_start(m, blk, name);
    m->tfd = fd;
    struct stat st;
    if (!m->buf)
        return err_set(e, ENOMEM, "disk '%s': out of memory for its mirror", name);
    if (claim(m, e))
        return -EBUSY;
    if (fstat(fd, &st) < 0)
        return err_set(e, errno, "disk '%s': target: %s", name, strerror(errno));
    if ((uint64_t)st.st_size != blk->capacity * 512)
        return err_set(e, EINVAL, "disk '%s': the target has %lld bytes, this disk %llu",
                       name, (long long)st.st_size,
                       (unsigned long long)(blk->capacity * 512));
    return 0;
}

int mirror_open(struct mirror *m, struct virtio_blk *blk, const char *name, const char *uri,
                struct err *e)
{
    return mirror_open_tls(m, blk, name, uri, NULL, e);
}

int mirror_open_tls(struct mirror *m, struct virtio_blk *blk, const char *name,
                    const char *uri, const struct mirror_tls *tls, struct err *e)
{
    mirror_start(m, blk, name);
    m->nbd = nbd_create();
    if (!m->buf || !m->nbd)
        return err_set(e, ENOMEM, "disk '%s': out of memory for its mirror", name);
    if (claim(m, e))
        return -EBUSY;
    int rc = nbd_client_connect(m->nbd, name, uri, tls ? tls->dir : NULL, e);
    if (rc)
        return rc;
    int64_t size = nbd_get_size(m->nbd);
    uint64_t want = blk->capacity * 512;
    if (size < 0)
        return nbd_client_fail(name, "size", e);
    if ((uint64_t)size != want)
        return err_set(e, EINVAL, "disk '%s': the target has %lld bytes, this disk %llu",
                       name, (long long)size, (unsigned long long)want);
    if (nbd_is_read_only(m->nbd) == 1)
        return err_set(e, EROFS, "disk '%s': the target export is read-only", name);
    return 0;
}

int mirror_seed(struct mirror *m, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    blk_dirty_fill_locked(d, false);
    /* under the lock no guest write lands between the walk and the bits:
     * one before it is in an allocated extent, one after marks its bit */
    for (off_t off = 0; (uint64_t)off < d->size;) {
        off_t data = lseek(m->blk->fd, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;
        off_t hole = data < 0 ? -1 : lseek(m->blk->fd, data, SEEK_HOLE);
        if (data < 0 || hole < 0) {
            rc = err_set(e, errno, "disk '%s': %s", m->fig.name, strerror(errno));
            break;
        }
        blk_dirty_mark_locked(d, (uint64_t)data, (uint64_t)(hole - data));
        m->fig.total += (uint64_t)(hole - data);
        off = hole;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* Reads the run of n bits at bit into buf and clears them, under the lock
 * (a guest write of the range comes wholly before, or marks it again). */
static int read_run_locked(struct mirror *m, uint8_t *buf, uint64_t bit, uint64_t n,
                           uint64_t *off, uint64_t *len, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    *off = bit << d->shift;
    *len = n << d->shift;
    if (*off + *len > d->size)
        *len = d->size - *off;
    blk_dirty_clear_locked(d, bit, n);
    ssize_t got = pread(m->blk->fd, buf, *len, (off_t)*off);
    if (got == (ssize_t)*len)
        return 0;
    blk_dirty_mark_locked(d, *off, *len);
    return err_set(e, got < 0 ? errno : EIO, "disk '%s': read at %llu failed", m->fig.name,
                   (unsigned long long)*off);
}

/* Copies the run of n bits at bit, written to the target under the lock
 * too: active mode and move-disk's file target. */
static int copy_run(struct mirror *m, uint64_t bit, uint64_t n, struct err *e)
{
    uint64_t off, len;
    int rc = read_run_locked(m, m->buf, bit, n, &off, &len, e);
    if (!rc && (rc = target_write(m, m->buf, len, off, e)))
        blk_dirty_mark_locked(&m->blk->dirty, off, len);
    if (!rc)
        m->fig.copied += len;
    return rc;
}

/* One run from *bit on: its length in bits (0 at the end) or -errno. With
 * an NBD target outside active mode the write goes into the window. */
static int64_t pass_step(struct mirror *m, uint64_t bit, uint64_t max, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    struct mirror_slot *s = NULL;
    int rc = m->nbd && !m->fig.active ? mirror_aio_slot(m, &s, e) : 0;
    if (rc)
        return rc;
    pthread_mutex_lock(&d->lock);
    uint64_t n = blk_dirty_next_locked(d, &bit, max);
    if (n && s)
        rc = read_run_locked(m, s->buf, bit, n, &s->off, &s->len, e);
    else if (n)
        rc = copy_run(m, bit, n, e);
    double ms = clock_mono_ms() - m->t0;
    if (m->fig.sync_ms == 0) /* the copy's rate, not diluted by the wait after */
        m->fig.rate = ms > 0 ? (double)m->fig.copied * 1000.0 / ms : 0;
    pthread_mutex_unlock(&d->lock);
    if (!rc && n && s)
        rc = mirror_aio_write(m, s, e);
    m->cursor = bit + n;
    return rc ? rc : (int64_t)n;
}

int mirror_pass(struct mirror *m, const _Atomic bool *cancel, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    uint64_t max = MIRROR_CHUNK >> d->shift;
    int rc = 0;
    int64_t n = 1;
    /* one sweep from the start to the end: bits set behind the cursor
     * meanwhile wait for the next pass */
    for (m->cursor = 0; !rc && n > 0;) {
        if (cancel && atomic_load(cancel)) {
            rc = err_set(e, ECANCELED, "migration cancelled");
            break;
        }
        n = pass_step(m, m->cursor, max ? max : 1, e);
        if (n < 0)
            rc = (int)n;
        else if (n && m->tick && (m->cursor / (max ? max : 1)) % 64 == 0) /* ~64 MiB */
            m->tick(m->tick_ctx);
    }
    /* nothing of this pass stays in flight: the next may copy the same range */
    struct err drain_e;
    int drc = mirror_aio_drain(m, rc ? &drain_e : e);
    rc = rc ? rc : drc;
    pthread_mutex_lock(&d->lock);
    m->fig.passes++;
    if (!rc && m->fig.active && d->count == 0 && m->fig.sync_ms == 0)
        m->fig.sync_ms = clock_mono_ms() - m->t0;
    pthread_mutex_unlock(&d->lock);
    return rc ? rc : mirror_check(m, e);
}

int mirror_sync(struct mirror *m, const _Atomic bool *cancel, struct err *e)
{
    int rc = 0;
    struct mirror_fig f;
    do {
        rc = mirror_pass(m, cancel, e);
        if (m->tick)
            m->tick(m->tick_ctx);
        mirror_figures(m, &f);
        test_hold("disk-pass");
    } while (!rc && f.dirty > MIRROR_SMALL_ENOUGH && f.passes < MIRROR_PASSES_MAX);
    if (rc)
        return rc;
    mirror_activate(m);
    rc = mirror_pass(m, cancel, e);
    /* the bulk goes to stable storage now, not inside the pause or switch */
    return rc ? rc : mirror_flush(m, e);
}

static int active_write(void *ctx, const struct iovec *iov, int niov, uint64_t off,
                        uint64_t len)
{
    struct mirror *m = ctx;
    (void)len;
    struct err e;
    for (int i = 0; i < niov; i++) {
        if (target_write(m, iov[i].iov_base, iov[i].iov_len, off, &e))
            return -EIO;
        off += iov[i].iov_len;
    }
    return 0;
}

void mirror_activate(struct mirror *m)
{
    struct blk_dirty *d = &m->blk->dirty;
    pthread_mutex_lock(&d->lock);
    d->active = active_write;
    d->active_ctx = m;
    d->active_error = 0;
    m->fig.active = true;
    pthread_mutex_unlock(&d->lock);
}

int mirror_check(struct mirror *m, struct err *e)
{
    struct blk_dirty *d = &m->blk->dirty;
    pthread_mutex_lock(&d->lock);
    int err = d->active_error;
    m->fig.active = d->active != NULL;
    m->fig.active_writes = d->active_writes;
    m->fig.active_bytes = d->active_bytes;
    m->fig.dirty = d->count << d->shift;
    pthread_mutex_unlock(&d->lock);
    if (err)
        return err_set(e, -err, "disk '%s': a guest write did not reach the target: %s",
                       m->fig.name, strerror(-err));
    return 0;
}

int mirror_finish(struct mirror *m, struct err *e)
{
    int rc = mirror_pass(m, NULL, e);
    return rc ? rc : mirror_flush(m, e);
}

void mirror_close(struct mirror *m)
{
    if (m->blk && m->blk->dirty.bits) {
        struct blk_dirty *d = &m->blk->dirty;
        pthread_mutex_lock(&d->lock);
        if (d->active_ctx == m) {
            d->active = NULL;
            d->active_ctx = NULL;
        }
        if (d->mirror == m)
            d->mirror = NULL;
        pthread_mutex_unlock(&d->lock);
    }
    if (m->nbd) {
        nbd_shutdown(m->nbd, 0);
        nbd_close(m->nbd);
    }
    m->nbd = NULL;
    mirror_aio_release(m);
    free(m->buf);
    m->buf = NULL;
}

void mirror_figures(struct mirror *m, struct mirror_fig *out)
{
    pthread_mutex_lock(&m->blk->dirty.lock);
    *out = m->fig;
    out->dirty = m->blk->dirty.count << m->blk->dirty.shift;
    pthread_mutex_unlock(&m->blk->dirty.lock);
}
