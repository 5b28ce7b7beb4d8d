#include "common/jsonf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "<what>: 'key' <the rest>", the one shape of every refusal. */
__attribute__((format(printf, 4, 5))) static int
refuse(struct err *e, const char *what, const char *key, const char *fmt, ...)
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

static bool is_integer(const json_t *v)
{
    return json_is_integer(v);
}
static bool is_boolean(const json_t *v)
{
    return json_is_boolean(v);
}
static bool is_string(const json_t *v)
{
    return json_is_string(v);
}

/* The value of key when it is of the wanted kind; else NULL with *rc 0
 * (absent and optional) or the refusal ("is missing", or "<unlike>"). */
static json_t *field(json_t *obj, const char *key, bool required,
                     bool (*kind)(const json_t *), const char *unlike, const char *what,
                     struct err *e, int *rc)
{
    json_t *v = json_object_get(obj, key);
    *rc = 0;
    if (!v && required)
        *rc = refuse(e, what, key, "is missing");
    else if (v && !kind(v))
        *rc = refuse(e, what, key, "%s", unlike);
    return *rc ? NULL : v;
}

int jsonf_uint(json_t *obj, const char *key, bool required, uint64_t min, uint64_t max,
               uint64_t *out, const char *what, struct err *e)
{
    char unlike[64];
    snprintf(unlike, sizeof(unlike), "must be an integer %" PRIu64 "..%" PRIu64, min, max);
    int rc;
    json_t *v = field(obj, key, required, is_integer, unlike, what, e, &rc);
    if (!v)
        return rc;
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
    int rc;
    json_t *v = field(obj, key, required, is_boolean, "must be true or false", what, e,
                      &rc);
    if (v)
        *out = json_is_true(v);
    return rc;
}

int jsonf_string(json_t *obj, const char *key, bool required, const char **out,
                 const char *what, struct err *e)
{
    int rc;
    json_t *v = field(obj, key, required, is_string, "must be a string", what, e, &rc);
    if (v)
        *out = json_string_value(v);
    return rc;
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
