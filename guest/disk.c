/* Disk workload on the first virtio-blk device.  Block 0 is a superblock,
 * data block k >= 1 holds (k, seq) and a payload derived from them.  Each
 * pass writes every data block with a fresh seq (paced at ~1000 blocks/s),
 * then flushes, reads everything back and records the pass in the
 * superblock.  A later boot on the same image checks what it finds.
 *
 * The superblock's last_seq is written *before* a pass, as the highest seq
 * that pass will use, so blocks written after the last completed pass (the
 * VM may stop at any time) still satisfy seq <= last_seq on the next boot.
 * Requests are asynchronous (one in flight, polled from the main loop), so
 * a slow device never delays the heartbeat. */
#include "guest.h"

#define BLOCK_WORDS (PAGE_SIZE / 8)
#define BLOCKS_PER_SEC 1000
#define MAX_BURST 10
#define CHECKSUM_WORD (BLOCK_WORDS - 1)

enum disk_phase {
    PHASE_OFF,
    PHASE_READ_SUPER,  /* read block 0 */
    PHASE_CHECK_OLD,   /* boot check of the previous boot's blocks */
    PHASE_WRITE_SUPER, /* reserve the next pass's seqs */
    PHASE_FLUSH_SUPER,
    PHASE_WRITE, /* paced writes of every data block */
    PHASE_FLUSH_PASS,
    PHASE_READBACK, /* every block must hold what this pass wrote */
};

struct superblock {
    char magic[8];
    uint64_t boot_count;
    uint64_t nblocks;
    uint64_t last_seq;
};

static struct {
    struct vblk *dev;
    enum disk_phase phase;
    bool in_flight;
    bool pass_ok;     /* print "DISK ok" once the superblock is down */
    uint64_t nblocks; /* including the superblock */
    uint64_t boot;
    uint64_t old_last_seq;
    uint64_t old_nblocks;
    uint64_t old_valid;
    uint64_t cursor; /* data block of the current/next request */
    uint64_t next_seq;
    uint64_t pass_first_seq;
    uint64_t written;
    uint64_t pace_last_ns;
    uint64_t pace_credit; /* block-nanoseconds */
} disk;

static _Alignas(4096) uint64_t block[BLOCK_WORDS];

static uint64_t payload_word(uint64_t k, uint64_t seq, uint64_t j)
{
    return (k * 0x9E3779B97F4A7C15ull) ^ (seq * 0xC2B2AE3D27D4EB4Full) ^
           (j * 0x165667B19E3779F9ull);
}

static uint64_t checksum(const uint64_t *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < CHECKSUM_WORD; i++)
        h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

static void fill_block(uint64_t k, uint64_t seq)
{
    memcpy(&block[0], "TERNBLK\0", 8);
    block[1] = k;
    block[2] = seq;
    for (uint64_t j = 3; j < CHECKSUM_WORD; j++)
        block[j] = payload_word(k, seq, j);
    block[CHECKSUM_WORD] = checksum(block);
}

static bool block_is_zero(void)
{
    for (uint64_t j = 0; j < BLOCK_WORDS; j++)
        if (block[j])
            return false;
    return true;
}

/* NULL if `block` is a valid data block k with seq in [min_seq, max_seq],
 * else why not ("zero" for an all-zero block). */
static const char *check_block(uint64_t k, uint64_t min_seq, uint64_t max_seq)
{
    if (memcmp(&block[0], "TERNBLK\0", 8) != 0)
        return block_is_zero() ? "zero" : "magic";
    if (block[1] != k)
        return "index";
    if (block[CHECKSUM_WORD] != checksum(block))
        return "checksum";
    for (uint64_t j = 3; j < CHECKSUM_WORD; j++)
        if (block[j] != payload_word(k, block[2], j))
            return "payload";
    if (block[2] < min_seq || block[2] > max_seq)
        return "seq";
    return NULL;
}

static void disk_fail(uint64_t k, const char *reason)
{
    print("DISK FAIL block=%lu reason=%s", (unsigned long)k, reason);
}

static void submit(enum vblk_op op, uint64_t k)
{
    if (!vblk_submit(disk.dev, op, k, block))
        fatal("virtio-blk submit failed");
    disk.in_flight = true;
}

/* The seqs of the next pass are reserved in the superblock first. */
static void begin_pass(void)
{
    disk.pass_first_seq = disk.next_seq;
    disk.phase = PHASE_WRITE_SUPER;
}

static void got_superblock(void)
{
    struct superblock sb;
    memcpy(&sb, block, sizeof(sb));
    disk.boot = 1;
    disk.next_seq = 1;
    if (memcmp(sb.magic, "TERNSUPR", 8) != 0) {
        if (!block_is_zero())
            disk_fail(0, "superblock");
        print("DISK new blocks=%lu", (unsigned long)disk.nblocks);
        begin_pass();
        return;
    }
    disk.boot = sb.boot_count + 1;
    disk.next_seq = sb.last_seq + 1;
    disk.old_last_seq = sb.last_seq;
    disk.old_nblocks = sb.nblocks < disk.nblocks ? sb.nblocks : disk.nblocks;
    disk.cursor = 1;
    disk.phase = PHASE_CHECK_OLD;
}

/* Boot check: every old block is zero or valid with seq <= last_seq. */
static void got_old_block(void)
{
    const char *why = check_block(disk.cursor, 1, disk.old_last_seq);
    if (!why)
        disk.old_valid++;
    if (why && why[0] != 'z') {
        disk_fail(disk.cursor, why);
        begin_pass();
    } else if (++disk.cursor >= disk.old_nblocks) {
        print("DISK verify ok %lu blocks boot=%lu", (unsigned long)disk.old_valid,
              (unsigned long)disk.boot);
        begin_pass();
    }
}

static void got_readback(void)
{
    const char *why = check_block(disk.cursor, disk.pass_first_seq + disk.cursor - 1,
                                  disk.pass_first_seq + disk.cursor - 1);
    if (why)
        disk_fail(disk.cursor, why);
    if (why || ++disk.cursor == disk.nblocks) {
        disk.pass_ok = !why;
        disk.next_seq = disk.pass_first_seq + disk.nblocks - 1;
        begin_pass();
    }
}

/* A request finished: advance the state machine. */
static void completed(bool ok)
{
    disk.in_flight = false;
    if (!ok) {
        disk_fail(disk.phase == PHASE_WRITE_SUPER ? 0 : disk.cursor, "io");
        if (disk.phase == PHASE_READ_SUPER)
            fatal("cannot read the disk superblock");
    }
    switch (disk.phase) {
    case PHASE_READ_SUPER: got_superblock(); break;
    case PHASE_CHECK_OLD: got_old_block(); break;
    case PHASE_WRITE_SUPER: disk.phase = PHASE_FLUSH_SUPER; break;
    case PHASE_FLUSH_SUPER:
        if (disk.pass_ok)
            print("DISK ok %lu", (unsigned long)disk.written);
        disk.pass_ok = false;
        disk.cursor = 1;
        disk.pace_last_ns = clock_ns();
        disk.pace_credit = 0;
        disk.phase = PHASE_WRITE;
        break;
    case PHASE_WRITE:
        disk.written++;
        if (++disk.cursor == disk.nblocks)
            disk.phase = PHASE_FLUSH_PASS;
        break;
    case PHASE_FLUSH_PASS:
        disk.cursor = 1;
        disk.phase = PHASE_READBACK;
        break;
    case PHASE_READBACK: got_readback(); break;
    case PHASE_OFF: break;
    }
}

static bool write_allowed(uint64_t now)
{
    uint64_t dt = now - disk.pace_last_ns;
    disk.pace_last_ns = now;
    disk.pace_credit += (dt > NSEC_PER_SEC ? NSEC_PER_SEC : dt) * BLOCKS_PER_SEC;
    if (disk.pace_credit > MAX_BURST * NSEC_PER_SEC)
        disk.pace_credit = MAX_BURST * NSEC_PER_SEC;
    if (disk.pace_credit < NSEC_PER_SEC)
        return false;
    disk.pace_credit -= NSEC_PER_SEC;
    return true;
}

static void issue_next(uint64_t now)
{
    switch (disk.phase) {
    case PHASE_READ_SUPER: submit(VBLK_READ, 0); break;
    case PHASE_CHECK_OLD:
    case PHASE_READBACK: submit(VBLK_READ, disk.cursor); break;
    case PHASE_WRITE_SUPER: {
        struct superblock sb = {"TERNSUPR", disk.boot, disk.nblocks,
                                disk.pass_first_seq + disk.nblocks - 2};
        memset(block, 0, sizeof(block));
        memcpy(block, &sb, sizeof(sb));
        submit(VBLK_WRITE, 0);
        break;
    }
    case PHASE_FLUSH_SUPER:
    case PHASE_FLUSH_PASS: submit(VBLK_FLUSH, 0); break;
    case PHASE_WRITE:
        if (write_allowed(now)) {
            fill_block(disk.cursor, disk.pass_first_seq + disk.cursor - 1);
            submit(VBLK_WRITE, disk.cursor);
        }
        break;
    case PHASE_OFF: break;
    }
}

void disk_setup(void)
{
    if (!opts.disk_mib)
        return;
    disk.dev = vblk_find();
    if (!disk.dev)
        fatal("no virtio-blk device");
    if (vblk_capacity_bytes(disk.dev) < opts.disk_mib << 20)
        fatal("disk too small");
    disk.nblocks = opts.disk_mib * (1024 * 1024 / PAGE_SIZE);
    disk.phase = PHASE_READ_SUPER;
}

/* Never waits: polls the request in flight, or issues the next one. */
void disk_step(uint64_t now)
{
    if (disk.phase == PHASE_OFF)
        return;
    if (disk.in_flight) {
        enum vblk_result r = vblk_poll(disk.dev);
        if (r == VBLK_PENDING)
            return;
        completed(r == VBLK_DONE);
    }
    if (!disk.in_flight)
        issue_next(now);
}
