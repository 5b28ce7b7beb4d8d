#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *die_prog = "tern";

/* strerror() texts start with a capital ("No such file"); messages here are
 * lowercase throughout, so lower the first letter of the error's own text
 * wherever it was quoted (and nothing else: "Intel" stays a name). */
static void err_lowercase_strerror(char *msg, int errnum)
{
    char text[128];
    snprintf(text, sizeof(text), "%s", strerror(errnum));
    if (!(text[0] >= 'A' && text[0] <= 'Z'))
        return;
    for (char *p = strstr(msg, text); p; p = strstr(p + 1, text))
        p[0] = (char)(p[0] - 'A' + 'a');
}

int err_set(struct err *e, int errnum, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        err_lowercase_strerror(e->msg, errnum);
    }
    return -errnum;
}

void err_clear(struct err *e)
{
    if (e)
        e->msg[0] = '\0';
}

void die_set_prog(const char *prog)
{
    die_prog = prog;
}

void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", die_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
