/* The replication bitmap file (docs/replication.md): a 64-byte header with
 * its own crc32c, the bitmap's words, a crc32c of the words. Every field of
 * a file is checked before use (docs/design.md, invariant 3): the length
 * must be exactly what the header's size and shift make, so a hostile
 * header cannot ask for a large allocation. */
#include "storage/replbitmap.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"

uint64_t replbm_words(uint64_t nbits)
{
    return (nbits + 63) / 64;
}

static uint64_t nbits_of(uint64_t size, unsigned shift)
{
    return (size + (1ULL << shift) - 1) >> shift;
}

int replbm_init(struct replbm *b, uint64_t size, unsigned shift)
{
    memset(b, 0, sizeof(*b));
    if (shift < REPLBM_SHIFT_MIN || shift > REPLBM_SHIFT_MAX || size == 0 ||
        size > (1ULL << 62) || nbits_of(size, shift) > REPLBM_BITS_MAX)
        return -EINVAL;
    b->size = size;
    b->shift = shift;
    b->nbits = nbits_of(size, shift);
    b->bits = calloc(replbm_words(b->nbits), sizeof(uint64_t));
    return b->bits ? 0 : -ENOMEM;
}

void replbm_release(struct replbm *b)
{
    free(b->bits);
    b->bits = NULL;
}

void replbm_encode(const struct replbm *b, struct buf *out)
{
    size_t start = out->len;
    buf_put(out, REPLBM_MAGIC, 8);
    buf_put_u32(out, REPLBM_VERSION);
    buf_put_u32(out, b->clean ? REPLBM_FLAG_CLEAN : 0);
    buf_put_u64(out, b->size);
    buf_put_u32(out, b->shift);
    buf_put_u32(out, 0);
    buf_put_u64(out, b->syncs);
    buf_put_u64(out, b->last_sync_ms);
    buf_put_u64(out, b->count);
    buf_put_u32(out, 0);
    if (out->oom)
        return;
    buf_put_u32(out, crc32c(0, out->data + start, REPLBM_HEADER - 4));
    size_t words = start + REPLBM_HEADER;
    for (uint64_t i = 0; i < replbm_words(b->nbits); i++)
        buf_put_u64(out, b->bits[i]);
    if (!out->oom)
        buf_put_u32(out, crc32c(0, out->data + words, out->len - words));
}

static int bad(struct err *e, const char *what)
{
    return err_set(e, EINVAL, "replication bitmap: %s", what);
}

/* The header's fields into b (no allocation yet). */
static int decode_header(const uint8_t *data, size_t len, struct replbm *b, struct err *e)
{
    struct reader r;
    if (len < REPLBM_HEADER)
        return bad(e, "shorter than its header");
    if (memcmp(data, REPLBM_MAGIC, 8) != 0)
        return bad(e, "bad magic");
    reader_init(&r, data + 8, REPLBM_HEADER - 8);
    uint32_t version = reader_u32(&r), flags = reader_u32(&r);
    b->size = reader_u64(&r);
    b->shift = reader_u32(&r);
    uint32_t pad1 = reader_u32(&r);
    b->syncs = reader_u64(&r);
    b->last_sync_ms = reader_u64(&r);
    b->count = reader_u64(&r);
    uint32_t pad2 = reader_u32(&r), crc = reader_u32(&r);
    if (crc != crc32c(0, data, REPLBM_HEADER - 4))
        return bad(e, "header checksum mismatch");
    if (version != REPLBM_VERSION)
        return err_set(e, EINVAL, "replication bitmap: version %u (this tern reads %u)",
                       version, REPLBM_VERSION);
    if (flags & ~REPLBM_FLAG_CLEAN || pad1 || pad2)
        return bad(e, "unknown flags or reserved bytes set");
    b->clean = flags & REPLBM_FLAG_CLEAN;
    if (b->shift < REPLBM_SHIFT_MIN || b->shift > REPLBM_SHIFT_MAX)
        return err_set(e, EINVAL, "replication bitmap: granularity 2^%u out of range",
                       b->shift);
    if (b->size == 0 || b->size > (1ULL << 62) ||
        nbits_of(b->size, b->shift) > REPLBM_BITS_MAX)
        return bad(e, "disk size out of range");
    b->nbits = nbits_of(b->size, b->shift);
    if (len != REPLBM_HEADER + replbm_words(b->nbits) * 8 + 4)
        return err_set(
            e, EINVAL, "replication bitmap: %zu bytes, its header says %llu", len,
            (unsigned long long)(REPLBM_HEADER + replbm_words(b->nbits) * 8 + 4));
    return 0;
}

int replbm_decode(const uint8_t *data, size_t len, struct replbm *b, struct err *e)
{
    memset(b, 0, sizeof(*b));
    int rc = decode_header(data, len, b, e);
    if (rc)
        return rc;
    uint64_t words = replbm_words(b->nbits);
    struct reader r;
    reader_init(&r, data + REPLBM_HEADER + words * 8, 4);
    if (crc32c(0, data + REPLBM_HEADER, words * 8) != reader_u32(&r))
        return bad(e, "bitmap checksum mismatch");
    b->bits = malloc(words * 8);
    if (!b->bits)
        return err_set(e, ENOMEM, "replication bitmap: out of memory");
    uint64_t count = 0;
    reader_init(&r, data + REPLBM_HEADER, words * 8);
    for (uint64_t i = 0; i < words; i++) {
        b->bits[i] = reader_u64(&r);
        count += (uint64_t)__builtin_popcountll(b->bits[i]);
    }
    /* bits past the disk's end would make a sync copy past it */
    if (b->nbits % 64 && b->bits[words - 1] >> (b->nbits % 64))
        return bad(e, "bits set past the end of the disk");
    if (count != b->count)
        return bad(e, "bit count does not match the header");
    return 0;
}

int replbm_load(const char *path, struct replbm *b, struct err *e)
{
    memset(b, 0, sizeof(*b));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "replication bitmap '%s': %s", path, strerror(errno));
    struct stat st;
    uint8_t *data = NULL;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && (uint64_t)st.st_size > REPLBM_HEADER + REPLBM_BITS_MAX / 8 + 4)
        rc = -EFBIG;
    if (!rc && !(data = malloc((size_t)st.st_size + 1)))
        rc = -ENOMEM;
    if (!rc && read(fd, data, (size_t)st.st_size) != st.st_size)
        rc = -EIO;
    close(fd);
    if (rc)
        err_set(e, -rc, "replication bitmap '%s': %s", path, strerror(-rc));
    else if ((rc = replbm_decode(data, (size_t)st.st_size, b, e))) {
        char why[sizeof(e->msg)];
        snprintf(why, sizeof(why), "%s", e->msg + strlen("replication bitmap: "));
        err_set(e, -rc, "replication bitmap '%s': %s", path, why);
    }
    free(data);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

int replbm_save(const char *path, const struct replbm *b, struct err *e)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return err_set(e, ENAMETOOLONG, "replication bitmap '%s': path too long", path);
    struct buf out;
    buf_init(&out);
    replbm_encode(b, &out);
    int rc = out.oom ? -ENOMEM : 0;
    int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!rc && fd < 0)
        rc = -errno;
    if (!rc)
        rc = write_all(fd, out.data, out.len);
    if (!rc && fsync(fd))
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (!rc && rename(tmp, path))
        rc = -errno;
    if (!rc)
        rc = fsync_dir(path);
    if (rc && fd >= 0)
        unlink(tmp);
    buf_release(&out);
    return rc ? err_set(e, -rc, "replication bitmap '%s': save: %s", path, strerror(-rc))
              : 0;
}
