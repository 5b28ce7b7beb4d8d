#include "common/name.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

int name_check(const char *name, const char *what, struct err *e)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0)
        return err_set(e, EINVAL, "%s is empty", what);
    if (n > TERN_NAME_MAX)
        return err_set(e, EINVAL, "%s %.20s...: longer than %d characters", what, name,
                       TERN_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return err_set(e, EINVAL, "%s %s: must not start with '%c'", what, name, name[0]);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok)
            return err_set(e, EINVAL,
                           "%s %s: character '%c' not allowed "
                           "(letters, digits, '.', '_', '-')",
                           what, name, ch);
    }
    return 0;
}
