/* The side file of a replica and its swap (storage/replica.h). */
#include "storage/replica.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int side_path(const char *path, char *out, size_t cap, struct err *e)
{
    if (snprintf(out, cap, "%s%s", path, REPLICA_SIDE_SUFFIX) >= (int)cap)
        return err_set(e, ENAMETOOLONG, "replica '%s': path too long", path);
    return 0;
}

/* The allocated extents of in into out at the same offsets (holes stay
 * holes): a copy within one file system, a reflink where it has them. */
static int copy_extents(const char *path, int in, int out, uint64_t size, uint64_t *copied,
                        struct err *e)
{
    for (off_t off = 0; (uint64_t)off < size;) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break;
        off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
        if (data < 0 || hole < 0)
            return err_set(e, errno, "replica '%s': %s", path, strerror(errno));
        for (off_t at = data; at < hole;) {
            off_t to = at;
            ssize_t n = copy_file_range(in, &at, out, &to, (size_t)(hole - at), 0);
            if (n <= 0)
                return err_set(e, n < 0 ? errno : EIO, "replica '%s': copy: %s", path,
                               strerror(n < 0 ? errno : EIO));
            *copied += (uint64_t)n;
        }
        off = hole;
    }
    return 0;
}

static int open_replica(const char *path, bool fresh, uint64_t *size, struct err *e)
{
    int in = fresh ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 && !fresh && errno != ENOENT)
        return err_set(e, errno, "replica '%s': %s", path, strerror(errno));
    if (in < 0 && *size == 0)
        return err_set(e, EINVAL, "replica '%s': no replica yet: its size is needed", path);
    if (in < 0)
        return -ENOENT;
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return err_set(e, EINVAL, "replica '%s' is not a regular file", path);
    }
    if (*size && (uint64_t)st.st_size != *size) {
        close(in);
        return err_set(e, EINVAL, "replica '%s' has %lld bytes, the disk %llu", path,
                       (long long)st.st_size, (unsigned long long)*size);
    }
    *size = (uint64_t)st.st_size;
    return in;
}

int replica_prepare(const char *path, bool fresh, uint64_t *size, int *fd, uint64_t *copied,
                    struct err *e)
{
    char side[4096];
    *copied = 0;
    int rc = side_path(path, side, sizeof(side), e);
    int in = rc ? rc : open_replica(path, fresh, size, e);
    if (in < 0 && in != -ENOENT)
        return in;
    unlink(side); /* of a sync that did not end */
    int out = open(side, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        rc = err_set(e, errno, "replica '%s': %s", side, strerror(errno));
    else if (ftruncate(out, (off_t)*size) < 0)
        rc = err_set(e, errno, "replica '%s': %s", side, strerror(errno));
    if (!rc && in >= 0)
        rc = copy_extents(path, in, out, *size, copied, e);
    if (in >= 0)
        close(in);
    if (rc && out >= 0) {
        close(out);
        unlink(side);
    }
    if (!rc)
        *fd = out;
    return rc;
}

int replica_commit(const char *path, int fd, struct err *e)
{
    char side[4096], dir[4096];
    int rc = side_path(path, side, sizeof(side), e);
    if (rc)
        return rc;
    if (fdatasync(fd) < 0 || rename(side, path) < 0)
        return err_set(e, errno, "replica '%s': commit: %s", path, strerror(errno));
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        rc = err_set(e, errno, "replica '%s': flush of its directory: %s", path,
                     strerror(errno));
    if (dfd >= 0)
        close(dfd);
    return rc;
}

void replica_abort(const char *path)
{
    char side[4096];
    struct err e;
    if (!side_path(path, side, sizeof(side), &e))
        unlink(side);
}
