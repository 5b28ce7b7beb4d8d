/* The window of NBD writes a mirror keeps in flight (storage/mirror_aio.c):
 * inside storage/ only, for mirror.c. */
#ifndef TERN_STORAGE_MIRROR_AIO_H
#define TERN_STORAGE_MIRROR_AIO_H

#include "storage/mirror.h"

/* Slots of the window: TERN_NBD_WINDOW (1..MIRROR_WINDOW_MAX) or the default. */
unsigned mirror_window(void);
/* *out a free slot, after waiting for the target's answers while the
 * window is full. */
int mirror_aio_slot(struct mirror *m, struct mirror_slot **out, struct err *e);
/* Sends s (buf, off, len filled, its bits cleared); on failure its range is
 * dirty again. */
int mirror_aio_write(struct mirror *m, struct mirror_slot *s, struct err *e);
/* Waits for every write in flight; the first failure among them, if any. */
int mirror_aio_drain(struct mirror *m, struct err *e);
/* Frees the slots; after the handle is closed. */
void mirror_aio_release(struct mirror *m);

#endif
