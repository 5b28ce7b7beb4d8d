/* Error message buffer for failures that cross a process boundary. */
#ifndef TERN_COMMON_ERR_H
#define TERN_COMMON_ERR_H

#include <stdnoreturn.h>

struct err {
    char msg[512];
};

/* Sets the message (lowercase, no full stop) and returns -errnum so callers
 * can write `return err_set(e, EINVAL, "...")`. e may be NULL. */
int err_set(struct err *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void err_clear(struct err *e);

/* Only for main() and option parsing: print "prog: message" and exit. */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die_set_prog(const char *prog);

#endif
