#include "migrate/ram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "vmm/dirty.h"
#include "vmm/vm.h"

#define PAGE GUEST_PAGE_SIZE
#define CHUNK_WORDS 64 /* re-arm and send 4096 pages (16 MiB) at a time */
_Static_assert(CHUNK_WORDS * 64 == MIG_CHANNEL_SPAN, "a chunk is one channel's span");
#define PM_WINDOW 4096 /* pagemap entries read at a time */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)

int ram_sender_init(struct ram_sender *rs, struct vm *vm, struct mig_channel *ch,
                    bool page_crc, uint64_t *dirty, unsigned lane, unsigned lanes,
                    struct err *e)
{
    memset(rs, 0, sizeof(*rs));
    rs->vm = vm;
    rs->ch = ch;
    rs->page_crc = page_crc;
    rs->nwords = (vm->ram.npages + 63) / 64;
    rs->dirty = dirty;
    rs->lane = lane;
    rs->lanes = lanes;
    rs->pagemap_fd = -1;
    if (vm->mem_fd < 0) {
        rs->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        rs->pm = malloc(PM_WINDOW * sizeof(uint64_t));
        if (!rs->pm)
            return err_set(e, ENOMEM, "migration buffers: out of memory");
    }
    if (page_crc) {
        rs->bounce = aligned_alloc(PAGE, MIG_RAM_MAX_PAGES * PAGE);
        for (unsigned i = 0; rs->bounce && i < MIG_RAM_MAX_PAGES; i++)
            rs->copy[i] = rs->bounce + i * PAGE;
    }
    if (page_crc && !rs->bounce)
        return err_set(e, ENOMEM, "migration buffers: out of memory");
    return 0;
}

void ram_sender_release(struct ram_sender *rs)
{
    free(rs->bounce);
    free(rs->pm);
    /* a sender never initialised (the connection failed) is all zero */
    if (rs->vm && rs->pagemap_fd >= 0)
        close(rs->pagemap_fd);
    rs->pagemap_fd = -1;
    rs->bounce = NULL;
    rs->pm = NULL;
}

uint64_t ram_count_dirty(const uint64_t *bitmap, uint64_t nwords)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < nwords; i++)
        n += (uint64_t)__builtin_popcountll(bitmap[i]);
    return n;
}

static bool page_is_zero(const void *page)
{
    const uint64_t *w = page;
    for (size_t i = 0; i < PAGE / 8; i += 8) {
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
            w[i + 7])
            return false;
    }
    return true;
}

/* Long passes (a slow link, a bandwidth limit) still report once a second. */
static void maybe_progress(struct ram_sender *rs)
{
    if (!rs->progress)
        return;
    double t = clock_mono_ms();
    if (t - rs->progress_at < 1000.0)
        return;
    rs->progress_at = t;
    rs->progress(rs->progress_ctx, rs->pass_done);
}

static int flush_batch(struct ram_sender *rs, struct err *e)
{
    if (!rs->count)
        return 0;
    /* a running guest may change a page while it is sent: the crc must be
     * of the bytes that travel, so they are copied and summed in one read;
     * such a page is dirty again and goes once more in the next pass */
    if (rs->page_crc) {
        crc32c_copy_pages(rs->copy, rs->data, rs->nonzero, rs->crc);
        memcpy(rs->data, rs->copy, rs->nonzero * sizeof(rs->data[0]));
    }
    uint32_t head[2] = {rs->count, 0};
    int n = 0;
    rs->iov[n++] = (struct iovec){head, sizeof(head)};
    rs->iov[n++] = (struct iovec){rs->entry, rs->count * sizeof(uint64_t)};
    rs->iov[n++] = (struct iovec){rs->crc, rs->count * sizeof(uint32_t)};
    for (uint32_t i = 0; i < rs->nonzero; i++) {
        struct iovec *last = &rs->iov[n - 1];
        if (i && (const uint8_t *)last->iov_base + last->iov_len == rs->data[i])
            last->iov_len += PAGE;
        else
            rs->iov[n++] = (struct iovec){(void *)rs->data[i], PAGE};
    }
    /* crcs of zero markers are 0; they follow the data pages' crcs */
    memset(rs->crc + rs->nonzero, 0, (rs->count - rs->nonzero) * sizeof(uint32_t));
    uint64_t before = atomic_load(&rs->ch->bytes_out);
    int rc = mig_send(rs->ch, MIG_RAM, rs->iov, n, e);
    rs->stats.bytes += atomic_load(&rs->ch->bytes_out) - before;
    rs->stats.pages += rs->nonzero;
    rs->stats.zero_pages += rs->count - rs->nonzero;
    rs->count = rs->nonzero = 0;
    maybe_progress(rs);
    return rc;
}

/* Data pages first, zero markers after them, so the receiver pairs the
 * i-th entry with the i-th page of data. */
static int add_page(struct ram_sender *rs, uint64_t page, bool zero, struct err *e)
{
    if (zero) {
        rs->zero[rs->count - rs->nonzero] = page | MIG_RAM_ZERO;
    } else {
        rs->entry[rs->nonzero] = page;
        rs->data[rs->nonzero++] = rs->vm->ram.base + page * PAGE;
    }
    rs->count++;
    if (rs->count < MIG_RAM_MAX_PAGES)
        return 0;
    memcpy(rs->entry + rs->nonzero, rs->zero, (rs->count - rs->nonzero) * sizeof(uint64_t));
    return flush_batch(rs, e);
}

static int finish_batch(struct ram_sender *rs, struct err *e)
{
    memcpy(rs->entry + rs->nonzero, rs->zero, (rs->count - rs->nonzero) * sizeof(uint64_t));
    return flush_batch(rs, e);
}

/* Anonymous RAM: a page neither present nor swapped out was never written
 * (or was discarded) and reads as zero. Without pagemap, every page is
 * read. */
static bool page_untouched(struct ram_sender *rs, uint64_t page)
{
    if (rs->pagemap_fd < 0)
        return false;
    if (page < rs->pm_first || page >= rs->pm_first + rs->pm_count) {
        uint64_t vpage = (uint64_t)(uintptr_t)(rs->vm->ram.base + page * PAGE) / PAGE;
        ssize_t n = pread(rs->pagemap_fd, rs->pm, PM_WINDOW * sizeof(uint64_t),
                          (off_t)(vpage * sizeof(uint64_t)));
        rs->pm_first = page;
        rs->pm_count = n > 0 ? (uint64_t)n / sizeof(uint64_t) : 0;
        if (!rs->pm_count)
            return false;
    }
    return !(rs->pm[page - rs->pm_first] & (PM_PRESENT | PM_SWAPPED));
}

/* First pass only: true when page lies in a hole of the RAM memfd (or is
 * an untouched page of anonymous RAM), i.e. was never written by anyone
 * and reads as zero without being read. Data stays data (nothing punches
 * holes into guest RAM), so a data extent found once is kept for the whole
 * pass: looking it up again for each chunk made SEEK_HOLE walk the rest of
 * a large extent every 16 MiB. A hole is known only until the next re-arm
 * (the guest may write there first). */
static bool page_in_hole(struct ram_sender *rs, uint64_t page)
{
    if (rs->vm->mem_fd < 0)
        return page_untouched(rs, page);
    uint64_t off = page * PAGE;
    if (off >= rs->data_start && off < rs->data_end)
        return false;
    if (off >= rs->hole_start && off < rs->hole_end)
        return true;
    off_t data = lseek(rs->vm->mem_fd, (off_t)off, SEEK_DATA);
    rs->hole_start = off;
    if (data < 0) {
        rs->hole_end = UINT64_MAX; /* no more data */
        return true;
    }
    rs->hole_end = (uint64_t)data;
    off_t hole = lseek(rs->vm->mem_fd, data, SEEK_HOLE);
    rs->data_start = (uint64_t)data;
    rs->data_end = hole < 0 ? rs->vm->ram.size : (uint64_t)hole;
    return off < (uint64_t)data;
}

static int send_word(struct ram_sender *rs, uint64_t word, uint64_t bits, bool first_pass,
                     struct err *e)
{
    atomic_fetch_add_explicit(&rs->pass_done, (uint64_t)__builtin_popcountll(bits),
                              memory_order_relaxed);
    while (bits) {
        uint64_t page = word * 64 + (uint64_t)__builtin_ctzll(bits);
        bits &= bits - 1;
        if (page >= rs->vm->ram.npages)
            break;
        if (first_pass && page_in_hole(rs, page)) {
            rs->stats.skipped++;
            continue;
        }
        bool zero = page_is_zero(rs->vm->ram.base + page * PAGE);
        if (first_pass && zero) {
            rs->stats.skipped++;
            continue;
        }
        int rc = add_page(rs, page, zero, e);
        if (rc)
            return rc;
    }
    return 0;
}

int ram_send_pass(struct ram_sender *rs, bool first_pass, struct err *e)
{
    atomic_store(&rs->pass_done, 0);
    rs->data_start = rs->data_end = 0;
    rs->progress_at = clock_mono_ms();
    /* CHUNK_WORDS * 64 == MIG_CHANNEL_SPAN: a chunk is one channel's */
    for (uint64_t w0 = (uint64_t)rs->lane * CHUNK_WORDS; w0 < rs->nwords;
         w0 += (uint64_t)rs->lanes * CHUNK_WORDS) {
        uint64_t n = rs->nwords - w0 < CHUNK_WORDS ? rs->nwords - w0 : CHUNK_WORDS;
        if (!ram_count_dirty(rs->dirty + w0, n))
            continue;
        /* re-arm tracking before reading: a write from now on is seen */
        int rc = dirty_log_clear(rs->vm, w0, n, rs->dirty + w0, e);
        /* where the holes are must be looked up after that: a page first
         * written before the re-arm is not in the log again */
        rs->hole_start = rs->hole_end = 0;
        rs->pm_first = rs->pm_count = 0;
        for (uint64_t w = w0; !rc && w < w0 + n; w++) {
            rc = send_word(rs, w, rs->dirty[w], first_pass, e);
            rs->dirty[w] = 0;
        }
        if (rc)
            return rc;
    }
    return finish_batch(rs, e);
}
