/* libFuzzer target: saved device state into the devices' own load functions
 * (serial_state_ops.load, virtio_blk_state_ops.load), no KVM.
 *
 * The first input byte selects: 0 serial, 1 virtio-blk as is, 2 virtio-blk
 * after a valid capacity/readonly prefix (so the fuzzer reaches the
 * virtio-mmio and queue checks). After a load is accepted, the device is
 * driven a little (post_load, a queue notify, register reads) so state that
 * passed the checks but is unsafe to use shows up too.
 *
 * FUZZ_SEED_DIR=DIR: writes seed inputs (the devices' own saved state) there
 * and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/guest_ram.h"
#include "devices/serial.h"
#include "devices/virtio_blk.h"

#define RAM_SIZE (1ULL << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_ram ram;
static uint8_t *mem;
static struct virtio_blk blk;
static char path[64];

static void irq_set(void *ctx, unsigned gsi, int level)
{
    (void)ctx;
    (void)gsi;
    (void)level;
}

static void output(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
}

static void write_seed(const char *dir, const char *name, uint8_t sel, const struct buf *b,
                       size_t skip)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return;
    fputc(sel, f);
    fwrite(b->data + skip, 1, b->len - skip, f);
    fclose(f);
}

static void cleanup(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof(path), "/tmp/tern-fuzz-blk-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, 1 << 20)) {
        perror("fuzz_devstate: image");
        exit(1);
    }
    close(fd);
    atexit(cleanup);
    mem = aligned_alloc(GUEST_PAGE_SIZE, RAM_SIZE);
    if (!mem || guest_ram_init(&ram, mem, RAM_SIZE)) {
        fprintf(stderr, "fuzz_devstate: guest ram\n");
        exit(1);
    }
    memset(mem, 0, RAM_SIZE);
    struct err e = {""};
    if (virtio_blk_open(&blk, path, false, false, &e)) {
        fprintf(stderr, "fuzz_devstate: %s\n", e.msg);
        exit(1);
    }
    struct irq_line line = {.set = irq_set, .ctx = NULL, .gsi = 5};
    virtio_blk_attach(&blk, 0xd0000000ULL, &ram, line);
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (dir) {
        struct serial uart;
        struct irq_line sline = {.set = irq_set, .ctx = NULL, .gsi = 4};
        serial_init(&uart, sline, output, NULL);
        struct buf b;
        buf_init(&b);
        serial_state_ops.save(&uart, &b, &e);
        write_seed(dir, "serial", 0, &b, 0);
        buf_reset(&b);
        virtio_blk_state_ops.save(&blk, &b, &e);
        write_seed(dir, "virtio-blk", 1, &b, 0);
        write_seed(dir, "virtio-blk-mmio", 2, &b, 9);
        buf_release(&b);
        serial_release(&uart);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0] % 3;
    struct reader r;
    struct err e = {""};
    if (sel == 0) {
        struct serial uart;
        struct irq_line sline = {.set = irq_set, .ctx = NULL, .gsi = 4};
        serial_init(&uart, sline, output, NULL);
        reader_init(&r, data + 1, size - 1);
        if (!serial_state_ops.load(&uart, &r, 1, &e)) {
            serial_state_ops.post_load(&uart, &e);
            uint8_t in[4] = "abc";
            serial_input(&uart, in, sizeof(in));
            for (uint64_t off = 0; off < 8; off++) {
                uint32_t v = 0;
                serial_ops.read(&uart, off, &v, 1);
            }
        }
        serial_release(&uart);
        return 0;
    }
    struct buf b;
    buf_init(&b);
    if (sel == 2) {
        buf_put_u64(&b, blk.capacity);
        buf_put_u8(&b, blk.readonly);
    }
    buf_put(&b, data + 1, size - 1);
    reader_init(&r, b.data, b.len);
    memset(mem, 0, 64 * 1024); /* the rings the fuzzer may point at */
    if (!virtio_blk_state_ops.load(&blk, &r, 1, &e)) {
        virtio_blk_state_ops.post_load(&blk, &e);
        uint32_t v = 0;
        virtio_mmio_ops.write(&blk.mmio, 0x050, &v, 4); /* QUEUE_NOTIFY 0 */
        for (uint64_t off = 0; off < 0x100; off += 4)
            virtio_mmio_ops.read(&blk.mmio, off, &v, 4);
    }
    buf_release(&b);
    return 0;
}
