/* Memory dirtier and verifier.  Every write stamps a whole 4 KiB page with
 * (generation, page index); the generation of each page is kept in a
 * shadow array in guest RAM.  If a live migration loses a dirty page, the
 * page and its shadow entry disagree and the verifier reports it.
 *
 * With tern.touch=N a write stamps only N words of the page, spread evenly
 * with the first and the last always among them, and the other words stay
 * zero: the page is as dirty for the hypervisor, but the write costs the
 * guest N stores instead of 512, like a guest that updates a few fields
 * per page.  The verifier still checks every word, so it stays exact.
 *
 * With tern.smp=1 each CPU owns a disjoint slice of pages (and so of the
 * shadow array) and is the only one that writes or checks it, so a check
 * may interleave with writes at any point and still be exact. */
#include "guest.h"

#define WORDS_PER_PAGE (PAGE_SIZE / 8)
#define STAMP_MIX 0x9E3779B97F4A7C15ull
#define ONCE_BURST 256    /* pages per step when writing each page once */
#define VERIFY_CHUNK 1024 /* pages per step, keeps the heartbeat on time */
#define STEP_NS (2 * NSEC_PER_MSEC)

struct slice {
    _Alignas(64) uint64_t first, count;
    uint64_t cursor;
    uint64_t rate_pps; /* pages per second; 0 = each page once */
    uint64_t pace_last_ns;
    uint64_t pace_credit; /* page-nanoseconds not yet spent */
    bool once_done;
    bool verifying;
    uint64_t verify_pos;
    uint64_t verify_next_ns;
};

static struct slice slices[MAX_CPUS];
static uint32_t nslices;
static uint8_t *ws_base;
static uint32_t *shadow;
static bool per_cpu_lines;
static uint64_t touch_n = WORDS_PER_PAGE; /* words stamped per page write */

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static uint64_t *page_words(uint64_t i)
{
    return (uint64_t *)(ws_base + i * PAGE_SIZE);
}

static uint64_t stamp_word(uint32_t gen, uint64_t i, uint64_t w)
{
    return ((uint64_t)gen << 32 | (uint32_t)i) ^ (w * STAMP_MIX);
}

/* Shadow array then pages, in the first RAM region above the image that
 * holds both. */
static bool place_working_set(uint64_t npages)
{
    uint64_t shadow_bytes = align_up(npages * sizeof(uint32_t), PAGE_SIZE);
    uint64_t need = shadow_bytes + npages * PAGE_SIZE;
    uint64_t floor = align_up((uint64_t)_image_end, PAGE_SIZE);

    for (uint32_t r = 0; r < boot_info.nregions; r++) {
        const struct mem_region *m = &boot_info.regions[r];
        uint64_t end = m->addr + m->size;
        uint64_t start = align_up(m->addr > floor ? m->addr : floor, PAGE_SIZE);
        if (m->type != E820_RAM || end <= start || end - start < need)
            continue;
        shadow = (uint32_t *)start;
        ws_base = (uint8_t *)(start + shadow_bytes);
        memset(shadow, 0, shadow_bytes);
        return true;
    }
    return false;
}

bool dirtier_setup(uint32_t nworkers)
{
    uint64_t npages = opts.ws_mib * (1024 * 1024 / PAGE_SIZE);
    uint64_t rate_pps = opts.rate_mibps * (1024 * 1024 / PAGE_SIZE);
    uint64_t now = clock_ns();

    if (!npages)
        return true;
    if (npages > UINT32_MAX || !place_working_set(npages))
        return false;
    nslices = nworkers;
    if (opts.touch_words)
        touch_n = opts.touch_words;
    per_cpu_lines = nworkers > 1 || opts.smp;
    for (uint32_t c = 0; c < nworkers; c++) {
        struct slice *s = &slices[c];
        s->first = npages * c / nworkers;
        s->count = npages * (c + 1) / nworkers - s->first;
        s->rate_pps = rate_pps / nworkers;
        if (rate_pps && !s->rate_pps)
            s->rate_pps = 1;
        s->pace_last_ns = now;
        s->verify_next_ns = now + opts.verify_ms * NSEC_PER_MSEC;
    }
    return true;
}

/* Index of the j-th stamped word; first and last word always stamped. */
static uint64_t touched_word(uint64_t j)
{
    if (touch_n == WORDS_PER_PAGE)
        return j; /* no division per word on the default path */
    return touch_n == 1 ? 0 : j * (WORDS_PER_PAGE - 1) / (touch_n - 1);
}

static void write_page(uint64_t i)
{
    uint32_t gen = shadow[i] + 1;
    if (gen == 0)
        gen = 1;
    uint64_t *p = page_words(i);
    for (uint64_t j = 0; j < touch_n; j++) {
        uint64_t w = touched_word(j);
        p[w] = stamp_word(gen, i, w);
    }
    shadow[i] = gen;
}

/* Pages the clock allows now: catch up to rate * elapsed, at most 10 ms
 * worth per burst (so the heartbeat stays on time) and at most one second
 * of backlog (so a long-paused VM does not write flat out for long). */
static uint64_t paced_pages(struct slice *s, uint64_t now)
{
    uint64_t dt = now - s->pace_last_ns;
    uint64_t backlog_cap = s->rate_pps * NSEC_PER_SEC;
    uint64_t burst = s->rate_pps / 100 + 1;

    s->pace_last_ns = now;
    if (dt > NSEC_PER_SEC)
        dt = NSEC_PER_SEC;
    s->pace_credit += dt * s->rate_pps;
    if (s->pace_credit > backlog_cap)
        s->pace_credit = backlog_cap;
    uint64_t n = s->pace_credit / NSEC_PER_SEC;
    if (n > burst)
        n = burst;
    s->pace_credit -= n * NSEC_PER_SEC;
    return n;
}

/* True every 16 pages once the step has used its time: first touches of
 * pages are slow under shadow paging, and the heartbeat must stay on time. */
static bool step_over(uint64_t k, uint64_t start)
{
    return (k & 15) == 15 && clock_ns() - start > STEP_NS;
}

static void dirty_some(uint32_t cpu, struct slice *s, uint64_t now)
{
    uint64_t n, done = 0;
    if (s->rate_pps) {
        n = paced_pages(s, now);
    } else {
        if (s->once_done)
            return;
        n = s->count - s->cursor < ONCE_BURST ? s->count - s->cursor : ONCE_BURST;
    }
    while (done < n) {
        write_page(s->first + s->cursor);
        done++;
        if (++s->cursor == s->count) {
            s->cursor = 0;
            s->once_done = !s->rate_pps;
        }
        if (step_over(done, now))
            break;
    }
    s->pace_credit += (n - done) * NSEC_PER_SEC; /* unspent: keep for later */
    cpus[cpu].pages_written += done;
}

/* True if the page matches its shadow generation; *got = the generation
 * found in its first word (the stamp of word 0 is (gen << 32 | index)).
 * Words the dirtier does not stamp (tern.touch) must be zero. */
static bool page_ok(uint64_t i, uint32_t *got)
{
    const volatile uint64_t *p = page_words(i);
    uint32_t gen = shadow[i];
    uint64_t j = 0, next = 0;
    *got = (uint32_t)(p[0] >> 32);
    for (uint64_t w = 0; w < WORDS_PER_PAGE; w++) {
        uint64_t want = 0;
        if (w == next) {
            want = gen ? stamp_word(gen, i, w) : 0;
            next = ++j < touch_n ? touched_word(j) : WORDS_PER_PAGE;
        }
        if (p[w] != want)
            return false;
    }
    return true;
}

static void verify_done(uint32_t cpu, struct slice *s, uint64_t now, bool ok, uint64_t bad,
                        uint32_t got)
{
    uint64_t period = opts.verify_ms * NSEC_PER_MSEC;
    char where[16] = "";

    if (per_cpu_lines)
        snformat(where, sizeof(where), " cpu=%u", cpu);
    if (ok)
        print("VERIFY ok %lu%s", (unsigned long)s->count, where);
    else
        print("VERIFY FAIL page=%lu want=%u got=%u%s", (unsigned long)bad, shadow[bad], got,
              where);
    s->verifying = false;
    s->verify_next_ns += period;
    if (s->verify_next_ns <= now)
        s->verify_next_ns += ((now - s->verify_next_ns) / period + 1) * period;
}

static void verify_some(uint32_t cpu, struct slice *s, uint64_t now)
{
    if (!opts.verify_ms)
        return;
    if (!s->verifying) {
        if (now < s->verify_next_ns)
            return;
        s->verifying = true;
        s->verify_pos = 0;
    }
    uint64_t end = s->verify_pos + VERIFY_CHUNK;
    if (end > s->count)
        end = s->count;
    for (uint64_t k = s->verify_pos; k < end; k++) {
        uint32_t got;
        if (!page_ok(s->first + k, &got)) {
            verify_done(cpu, s, now, false, s->first + k, got);
            return;
        }
        if (step_over(k - s->verify_pos, now)) {
            end = k + 1;
            break;
        }
    }
    s->verify_pos = end;
    if (end == s->count)
        verify_done(cpu, s, now, true, 0, 0);
}

void dirtier_step(uint32_t cpu, uint64_t now)
{
    if (cpu >= nslices || !slices[cpu].count)
        return;
    dirty_some(cpu, &slices[cpu], now);
    verify_some(cpu, &slices[cpu], now);
}

uint64_t dirtier_total_pages(void)
{
    uint64_t total = 0;
    for (uint32_t c = 0; c < MAX_CPUS; c++)
        total += cpus[c].pages_written;
    return total;
}
