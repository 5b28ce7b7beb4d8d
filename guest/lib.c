/* Freestanding basics: memory/string helpers, a small printf-like
 * formatter and the console (one gate call per line, under a spinlock so
 * lines from several CPUs never interleave). */
#include "guest.h"

#define LINE_MAX 256

static volatile uint32_t console_lock;

/* The string ops are asm so the compiler cannot turn them back into calls
 * to themselves; rep movsb/stosb are also cheap for the CPL0 emulator. */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void put_unsigned(struct out *o, uint64_t v, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put(o, digits[--n]);
}

static uint64_t take_unsigned(va_list *ap, int longs)
{
    if (longs >= 2)
        return va_arg(*ap, unsigned long long);
    if (longs == 1)
        return va_arg(*ap, unsigned long);
    return va_arg(*ap, unsigned int);
}

static int64_t take_signed(va_list *ap, int longs)
{
    if (longs >= 2)
        return va_arg(*ap, long long);
    if (longs == 1)
        return va_arg(*ap, long);
    return va_arg(*ap, int);
}

static void put_conversion(struct out *o, char conv, int longs, va_list *ap)
{
    switch (conv) {
    case 'u': put_unsigned(o, take_unsigned(ap, longs), 10); break;
    case 'x': put_unsigned(o, take_unsigned(ap, longs), 16); break;
    case 'd': {
        int64_t v = take_signed(ap, longs);
        if (v < 0)
            put(o, '-');
        put_unsigned(o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10);
        break;
    }
    case 's':
        for (const char *s = va_arg(*ap, const char *); *s; s++)
            put(o, *s);
        break;
    case 'c': put(o, (char)va_arg(*ap, int)); break;
    default: put(o, '%'); put(o, conv);
    }
}

/* Supports %s %c %d %u %x with l/ll/z modifiers and %%. */
int format(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out o = {buf, cap, 0};
    va_list args;
    va_copy(args, ap);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        int longs = 0;
        while (p[1] == 'l' || p[1] == 'z') {
            longs++;
            p++;
        }
        if (!p[1])
            break;
        p++;
        if (*p == '%')
            put(&o, '%');
        else
            put_conversion(&o, *p, longs, &args);
    }
    va_end(args);
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = 0;
    return (int)o.len;
}

int snformat(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = format(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

uint64_t gate_call(uint64_t fn, uint64_t a, uint64_t b)
{
    uint64_t ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(fn), "D"(a), "S"(b) : "memory");
    return ret;
}

static void console_line(const char *fmt, va_list ap)
{
    char line[LINE_MAX];
    int n = format(line, sizeof(line) - 1, fmt, ap);
    if (n > LINE_MAX - 2)
        n = LINE_MAX - 2;
    line[n++] = '\n';
    while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
        while (console_lock)
            cpu_relax();
    gate_call(GATE_CONSOLE_WRITE, (uint64_t)line, (uint64_t)n);
    __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

/* One console line (the newline is added here). CPL3 only. */
void print(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    console_line(fmt, ap);
    va_end(ap);
}

void power_off(void)
{
    gate_call(GATE_POWEROFF, 0, 0);
    for (;;)
        cpu_relax();
}

void fatal(const char *fmt, ...)
{
    char msg[LINE_MAX - 8];
    va_list ap;
    va_start(ap, fmt);
    format(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print("FATAL %s", msg);
    power_off();
}
