/* Command line: space separated key=value.  Keys outside the tern.
 * namespace belong to someone else and are ignored, except the
 * virtio_mmio.device= keys that tell us where the devices are. */
#include "guest.h"

#define MAX_PROBLEMS 8
#define PROBLEM_LEN 120

struct options opts;
static char problems[MAX_PROBLEMS][PROBLEM_LEN];
static uint32_t nproblems;

static void problem(const char *fmt, const char *a, size_t alen, const char *b, size_t blen)
{
    char a_copy[64], b_copy[64];
    if (nproblems >= MAX_PROBLEMS)
        return;
    snformat(a_copy, sizeof(a_copy) < alen + 1 ? sizeof(a_copy) : alen + 1, "%s", a);
    snformat(b_copy, sizeof(b_copy) < blen + 1 ? sizeof(b_copy) : blen + 1, "%s", b);
    snformat(problems[nproblems++], PROBLEM_LEN, fmt, a_copy, b_copy);
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Decimal, or hex with 0x. */
bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        n -= 2;
    }
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        int d = digit_value(s[i]);
        if (d >= (int)base || v > (UINT64_MAX - (uint64_t)d) / base)
            return false;
        v = v * base + (uint64_t)d;
    }
    *out = v;
    return true;
}

/* "2", "0.5", "1.25" seconds -> milliseconds. */
static bool parse_seconds_ms(const char *s, size_t n, uint64_t *ms)
{
    size_t dot = 0;
    while (dot < n && s[dot] != '.')
        dot++;
    uint64_t whole = 0, frac = 0, scale = 1000;
    if (dot > 0 && !parse_u64(s, dot, &whole))
        return false;
    if (dot == 0 && n <= 1)
        return false;
    for (size_t i = dot + 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        scale /= 10;
        frac += (uint64_t)(s[i] - '0') * scale;
    }
    if (whole > UINT64_MAX / 1000)
        return false;
    *ms = whole * 1000 + frac;
    return true;
}

/* "<size>@<addr>:<irq>[:<id>]"; only the address matters (polled). */
static void parse_virtio_mmio(const char *v, size_t n)
{
    size_t at = 0, end;
    while (at < n && v[at] != '@')
        at++;
    if (at == n)
        return;
    end = at + 1;
    while (end < n && v[end] != ':')
        end++;
    uint64_t base;
    if (parse_u64(v + at + 1, end - at - 1, &base) && opts.nvirtio < MAX_VIRTIO_MMIO)
        opts.virtio_base[opts.nvirtio++] = base;
}

static bool key_is(const char *key, size_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(key, name, klen) == 0;
}

/* "tern.x" alone or "tern.x=1" is on, "tern.x=0" off. */
static bool parse_flag(const char *v, size_t vl, bool *flag)
{
    uint64_t on = 1;
    bool ok = vl == 0 || parse_u64(v, vl, &on);
    *flag = on != 0;
    return ok;
}

/* "10.0.0.2/24" */
static bool parse_ip(const char *v, size_t n, uint32_t *ip, uint32_t *prefix)
{
    uint32_t addr = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++;
        uint64_t b;
        if (!parse_u64(v + start, i - start, &b) || b > 255)
            return false;
        addr = addr << 8 | (uint32_t)b;
        char want = part < 3 ? '.' : '/';
        if (i >= n || v[i] != want)
            return false;
        i++;
    }
    uint64_t p;
    if (!parse_u64(v + i, n - i, &p) || p == 0 || p > 32)
        return false;
    *ip = addr;
    *prefix = (uint32_t)p;
    return true;
}

static bool set_tern_option(const char *k, size_t kl, const char *v, size_t vl)
{
    if (key_is(k, kl, "tern.hb"))
        return parse_u64(v, vl, &opts.hb_ms);
    if (key_is(k, kl, "tern.ws"))
        return parse_u64(v, vl, &opts.ws_mib);
    if (key_is(k, kl, "tern.rate"))
        return parse_u64(v, vl, &opts.rate_mibps);
    if (key_is(k, kl, "tern.verify"))
        return parse_seconds_ms(v, vl, &opts.verify_ms);
    if (key_is(k, kl, "tern.disk"))
        return parse_u64(v, vl, &opts.disk_mib);
    if (key_is(k, kl, "tern.exit"))
        return parse_seconds_ms(v, vl, &opts.exit_ms);
    if (key_is(k, kl, "tern.mmio"))
        return parse_u64(v, vl, &opts.mmio_reads);
    if (key_is(k, kl, "tern.touch"))
        return parse_u64(v, vl, &opts.touch_words) && opts.touch_words <= PAGE_SIZE / 8;
    if (key_is(k, kl, "tern.smp"))
        return parse_flag(v, vl, &opts.smp);
    if (key_is(k, kl, "tern.ip"))
        return parse_ip(v, vl, &opts.ip, &opts.ip_prefix);
    if (key_is(k, kl, "tern.netbad"))
        return parse_u64(v, vl, &opts.netbad);
    if (key_is(k, kl, "tern.netstat"))
        return parse_seconds_ms(v, vl, &opts.netstat_ms);
    if (key_is(k, kl, "tern.hbclock"))
        return parse_flag(v, vl, &opts.hb_clock);
    problem("unknown option '%s'%s", k, kl, "", 0);
    return true;
}

static void parse_token(const char *t, size_t n)
{
    size_t kl = 0;
    while (kl < n && t[kl] != '=')
        kl++;
    const char *v = kl < n ? t + kl + 1 : t + n;
    size_t vl = kl < n ? n - kl - 1 : 0;

    if (key_is(t, kl, "virtio_mmio.device")) {
        parse_virtio_mmio(v, vl);
        return;
    }
    if (kl < 5 || memcmp(t, "tern.", 5) != 0)
        return;
    if (!set_tern_option(t, kl, v, vl))
        problem("bad value for option '%s': '%s'", t, kl, v, vl);
}

void parse_cmdline(const char *s)
{
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        size_t n = 0;
        while (s[n] && s[n] != ' ' && s[n] != '\t' && s[n] != '\n')
            n++;
        if (n)
            parse_token(s, n);
        s += n;
    }
}

/* Printed after the banner, which must stay the first line. */
void report_cmdline_problems(void)
{
    for (uint32_t i = 0; i < nproblems; i++)
        print("%s", problems[i]);
}
