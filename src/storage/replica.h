/* The replica volume on a replication target (docs/replication.md). A sync
 * never writes into the replica itself: it writes into a side file
 * "<replica>.sync" (a sparse copy of the replica, or a fresh file for a
 * full sync), and only a sync that ended cleanly replaces the replica with
 * it by rename. A sync killed half-way leaves the previous replica as it
 * was, crash-consistent at the point in time of its own sync. */
#ifndef TERN_STORAGE_REPLICA_H
#define TERN_STORAGE_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define REPLICA_SIDE_SUFFIX ".sync"

/* Makes the side file of path and opens it (*fd, the caller's): a copy of
 * the replica's allocated extents, or with fresh (or no replica yet) an
 * empty sparse file of *size bytes. *size 0 takes the replica's size; else
 * an existing replica must have it. *copied: bytes copied from it. A stale
 * side file of an earlier sync is replaced. */
int replica_prepare(const char *path, bool fresh, uint64_t *size, int *fd, uint64_t *copied,
                    struct err *e);
/* The side file (fd) becomes the replica: flushed, renamed over it, the
 * directory flushed. fd stays the caller's. */
int replica_commit(const char *path, int fd, struct err *e);
/* Removes the side file; the replica stays as it was. */
void replica_abort(const char *path);

#endif
