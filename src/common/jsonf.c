#include "common/jsonf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "<what>: 'key' <the rest>", the one shape of every refusal. */
__attribute__((format(printf, 4, 5)))
static int refuse(struct err *e, const char *what, const char *key, const char *fmt, ...)
{
    char rest[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    bool prefixed = what && *what;
    return err_set(e, EINVAL, "%s%s'%s' %s", prefixed ? what : "", prefixed ? ": " : "",
                   key, rest);
}

/* An absent key: refused when required, else left alone. */
static int absent(struct err *e, const char *what, const char *key, bool required)
{
    return required ? refuse(e, what, key, "is missing") : 0;
}

int jsonf_uint(json_t *obj, const char *key, bool required, uint64_t min, uint64_t max,
               uint64_t *out, const char *what, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return absent(e, what, key, required);
    if (!json_is_integer(v))
        return refuse(e, what, key, "must be an integer %" PRIu64 "..%" PRIu64, min, max);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return refuse(e, what, key, "must be %" PRIu64 "..%" PRIu64 ", not %lld", min, max,
                      (long long)n);
    *out = (uint64_t)n;
    return 0;
}

int jsonf_bool(json_t *obj, const char *key, bool required, bool *out, const char *what,
               struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return absent(e, what, key, required);
    if (!json_is_boolean(v))
        return refuse(e, what, key, "must be true or false");
    *out = json_is_true(v);
    return 0;
}

int jsonf_string(json_t *obj, const char *key, bool required, const char **out,
                 const char *what, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return absent(e, what, key, required);
    if (!json_is_string(v))
        return refuse(e, what, key, "must be a string");
    *out = json_string_value(v);
    return 0;
}

const char *jsonf_unknown_key(json_t *obj, const char *const known[])
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool found = false;
        for (unsigned i = 0; known[i] && !found; i++)
            found = strcmp(known[i], key) == 0;
        if (!found)
            return key;
    }
    return NULL;
}

const char *jsonf_printable(const char *s, char out[JSONF_PRINTABLE_MAX])
{
    size_t n = 0;
    for (; s[n] && n < 60; n++)
        out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    out[n] = '\0';
    if (s[n])
        strcpy(out + n, "...");
    return out;
}
