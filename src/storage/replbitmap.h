/* The persistent replication bitmap of one disk and one replication target:
 * which blocks the guest wrote since the last sync, in a file beside the
 * image (docs/replication.md has the format, version 1). tern-vmm loads it
 * at start, keeps it in memory while the VM runs (the file then says "not
 * clean"), and saves it clean when it stops cleanly: a file that is not
 * clean, missing, of another disk size or corrupt means the next sync must
 * be full. */
#ifndef TERN_STORAGE_REPLBITMAP_H
#define TERN_STORAGE_REPLBITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define REPLBM_MAGIC "TERNRBM\n"
#define REPLBM_VERSION 1U
#define REPLBM_HEADER 64U
#define REPLBM_FLAG_CLEAN 1U
#define REPLBM_SHIFT_MIN 9U
#define REPLBM_SHIFT_MAX 30U
/* 2^31 bits: a 256 MiB file, 128 TiB of disk at 64 KiB a bit */
#define REPLBM_BITS_MAX (1ULL << 31)

struct replbm {
    uint64_t size; /* bytes of the disk */
    unsigned shift;
    uint64_t nbits;
    uint64_t *bits;        /* nbits rounded up to words; owned */
    uint64_t count;        /* bits set */
    bool clean;            /* the file: saved at a clean stop, nothing written since */
    uint64_t syncs;        /* completed syncs */
    uint64_t last_sync_ms; /* unix time of the last completed sync, 0: none */
};

/* An empty bitmap for size bytes at 2^shift a bit: 0, -EINVAL, -ENOMEM. */
int replbm_init(struct replbm *b, uint64_t size, unsigned shift);
void replbm_release(struct replbm *b);
/* Words of a bitmap of nbits bits. */
uint64_t replbm_words(uint64_t nbits);
/* The file's bytes (header, words, crc32c). */
void replbm_encode(const struct replbm *b, struct buf *out);
/* Parses a whole file into b (initialised here; released by the caller
 * also on failure): -EINVAL with e naming the field that is wrong. */
int replbm_decode(const uint8_t *data, size_t len, struct replbm *b, struct err *e);
/* Reads path into b: -ENOENT when there is none, -EINVAL when corrupt. */
int replbm_load(const char *path, struct replbm *b, struct err *e);
/* Writes b to path atomically (a temporary file, fsync, rename, fsync of
 * the directory): a crash leaves the old file or the new one. */
int replbm_save(const char *path, const struct replbm *b, struct err *e);

#endif
