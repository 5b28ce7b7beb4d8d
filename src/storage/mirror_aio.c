/* Several copies of a mirror in flight to its NBD target (libnbd's aio
 * calls): a window of slots, each a chunk read from the image and not yet
 * acknowledged by the target. Reading the next chunk overlaps the target's
 * write of the previous ones, so the copy is no longer one round trip per
 * MiB.
 *
 * Order: a range is read under the disk's lock with its bits cleared; a
 * guest write after that marks them again, so the next pass copies it. NBD
 * does not order requests in flight, hence every pass drains the window
 * before it ends: a range is never in flight twice. Active mode writes go
 * to the target synchronously from the guest's thread, so the window is
 * used only while active mode is off (the mirror thread alone talks to the
 * handle then). All of this runs on the mirror's thread: libnbd calls the
 * completion callbacks from inside nbd_poll. */
#include "storage/mirror_aio.h"

#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"

unsigned mirror_window(void)
{
    const char *text = getenv("TERN_NBD_WINDOW");
    uint64_t n = MIRROR_WINDOW_DEFAULT;
    if (text && opts_parse_uint(text, 1, MIRROR_WINDOW_MAX, &n))
        n = MIRROR_WINDOW_DEFAULT;
    return (unsigned)n;
}

static int aio_fail(struct mirror *m, const char *what, int code, struct err *e)
{
    const char *msg = nbd_get_error();
    return err_set(e, code ? code : EIO, "disk '%s': nbd %s: %s", m->fig.name, what,
                   msg && *msg ? msg : strerror(code ? code : EIO));
}

static int slots_alloc(struct mirror *m, struct err *e)
{
    m->window = mirror_window();
    m->slots = calloc(m->window, sizeof(*m->slots));
    for (unsigned i = 0; m->slots && i < m->window; i++) {
        m->slots[i].m = m;
        if (!(m->slots[i].buf = malloc(MIRROR_CHUNK)))
            return err_set(e, ENOMEM, "disk '%s': out of memory for its mirror",
                           m->fig.name);
    }
    return m->slots ? 0 : err_set(e, ENOMEM, "disk '%s': out of memory", m->fig.name);
}

/* The target answered one write: counted, or its range dirty again. */
static int write_done(void *ctx, int *error)
{
    struct mirror_slot *s = ctx;
    struct mirror *m = s->m;
    struct blk_dirty *d = &m->blk->dirty;
    pthread_mutex_lock(&d->lock);
    if (*error) {
        blk_dirty_mark_locked(d, s->off, s->len);
        if (!m->aio_error)
            m->aio_error = *error;
    } else {
        m->fig.copied += s->len;
    }
    pthread_mutex_unlock(&d->lock);
    s->busy = false;
    m->in_flight--;
    return 1; /* retire the command: nothing else asks for it */
}

/* One answer of the target, waiting for it. */
static int poll_once(struct mirror *m, struct err *e)
{
    if (nbd_poll(m->nbd, -1) < 0)
        return aio_fail(m, "write", nbd_get_errno(), e);
    return 0;
}

int mirror_aio_slot(struct mirror *m, struct mirror_slot **out, struct err *e)
{
    int rc = m->slots ? 0 : slots_alloc(m, e);
    while (!rc && m->in_flight >= m->window)
        rc = poll_once(m, e);
    for (unsigned i = 0; !rc && i < m->window; i++)
        if (!m->slots[i].busy) {
            *out = &m->slots[i];
            return 0;
        }
    return rc ? rc : err_set(e, EIO, "disk '%s': no free mirror slot", m->fig.name);
}

int mirror_aio_write(struct mirror *m, struct mirror_slot *s, struct err *e)
{
    nbd_completion_callback cb = {.callback = write_done, .user_data = s};
    s->busy = true;
    m->in_flight++;
    if (nbd_aio_pwrite(m->nbd, s->buf, s->len, s->off, cb, 0) < 0) {
        int code = nbd_get_errno();
        /* refused before it was queued: libnbd does not call back */
        s->busy = false;
        m->in_flight--;
        pthread_mutex_lock(&m->blk->dirty.lock);
        blk_dirty_mark_locked(&m->blk->dirty, s->off, s->len);
        pthread_mutex_unlock(&m->blk->dirty.lock);
        return aio_fail(m, "write", code, e);
    }
    return 0;
}

int mirror_aio_drain(struct mirror *m, struct err *e)
{
    int rc = 0;
    while (!rc && m->in_flight > 0)
        rc = poll_once(m, e);
    if (rc)
        return rc;
    int err = m->aio_error;
    m->aio_error = 0;
    return err ? err_set(e, err, "disk '%s': nbd write: %s", m->fig.name, strerror(err))
               : 0;
}

void mirror_aio_release(struct mirror *m)
{
    /* after nbd_close: no command can still point into a buffer */
    for (unsigned i = 0; m->slots && i < m->window; i++)
        free(m->slots[i].buf);
    free(m->slots);
    m->slots = NULL;
    m->in_flight = 0;
}
