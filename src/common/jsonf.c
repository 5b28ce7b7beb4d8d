#include "common/jsonf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *prefix(const char *what, char *out, size_t size)
{
    if (!what || !*what)
        return "";
    snprintf(out, size, "%s: ", what);
    return out;
}

/* The value of key, NULL when it is absent and optional (rc 0) or missing. */
static json_t *field(json_t *obj, const char *key, bool required, const char *what,
                     struct err *e, int *rc)
{
    json_t *v = json_object_get(obj, key);
    char p[128];
    *rc = 0;
    if (!v && required)
        *rc = err_set(e, EINVAL, "%s'%s' is missing", prefix(what, p, sizeof(p)), key);
    return v;
}

int jsonf_uint(json_t *obj, const char *key, bool required, uint64_t min, uint64_t max,
               uint64_t *out, const char *what, struct err *e)
{
    int rc;
    json_t *v = field(obj, key, required, what, e, &rc);
    if (!v)
        return rc;
    char p[128];
    if (!json_is_integer(v))
        return err_set(e, EINVAL, "%s'%s' must be an integer %" PRIu64 "..%" PRIu64,
                       prefix(what, p, sizeof(p)), key, min, max);
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n < min || (uint64_t)n > max)
        return err_set(e, EINVAL, "%s'%s' must be %" PRIu64 "..%" PRIu64 ", not %lld",
                       prefix(what, p, sizeof(p)), key, min, max, (long long)n);
    *out = (uint64_t)n;
    return 0;
}

int jsonf_bool(json_t *obj, const char *key, bool required, bool *out, const char *what,
               struct err *e)
{
    int rc;
    json_t *v = field(obj, key, required, what, e, &rc);
    if (!v)
        return rc;
    char p[128];
    if (!json_is_boolean(v))
        return err_set(e, EINVAL, "%s'%s' must be true or false", prefix(what, p, sizeof(p)),
                       key);
    *out = json_is_true(v);
    return 0;
}

int jsonf_string(json_t *obj, const char *key, bool required, const char **out,
                 const char *what, struct err *e)
{
    int rc;
    json_t *v = field(obj, key, required, what, e, &rc);
    if (!v)
        return rc;
    char p[128];
    if (!json_is_string(v))
        return err_set(e, EINVAL, "%s'%s' must be a string", prefix(what, p, sizeof(p)), key);
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
