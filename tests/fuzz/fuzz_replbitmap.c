/* libFuzzer target: the replication bitmap file (docs/replication.md)
 * through replbm_decode, the parser tern-vmm runs on the file beside each
 * replicated image at start. A file it accepts must encode back to the
 * same bytes (nothing in it is ignored or reinterpreted).
 *
 * FUZZ_SEED_DIR=DIR: writes seed files (valid bitmaps of a few sizes and
 * granularities, clean and not) there and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/replbitmap.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void seed(const char *dir, unsigned n, uint64_t size, unsigned shift, bool clean)
{
    struct replbm b;
    struct buf out;
    char p[512];
    if (replbm_init(&b, size, shift))
        return;
    for (uint64_t i = 0; i < b.nbits; i += 3 + n) { /* a few bits set */
        b.bits[i / 64] |= 1ULL << (i % 64);
        b.count++;
    }
    b.clean = clean;
    b.syncs = n;
    buf_init(&out);
    replbm_encode(&b, &out);
    snprintf(p, sizeof(p), "%s/bitmap-%u", dir, n);
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(out.data, 1, out.len, f);
        fclose(f);
    }
    buf_release(&out);
    replbm_release(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (!dir)
        return 0;
    seed(dir, 0, 1 << 20, 16, true);          /* 16 bits: one partial word */
    seed(dir, 1, (1 << 20) + 512, 16, false); /* a partial last block */
    seed(dir, 2, 8 << 20, 12, true);          /* 2048 bits */
    seed(dir, 3, 4096, 9, true);              /* the finest granularity */
    exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct replbm b;
    struct err e = {""};
    if (replbm_decode(data, size, &b, &e) == 0) {
        struct buf out;
        buf_init(&out);
        replbm_encode(&b, &out);
        if (out.len != size || memcmp(out.data, data, size) != 0)
            abort(); /* accepted, but not what it would write */
        buf_release(&out);
    }
    replbm_release(&b);
    return 0;
}
