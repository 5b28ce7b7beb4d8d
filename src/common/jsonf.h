/* Typed fields of a JSON object, with the range and type checks every
 * request parser needs (control socket, REST bodies, stored VM records).
 * One wording for every refusal:
 *   "<what>: 'key' is missing"
 *   "<what>: 'key' must be an integer MIN..MAX"   (not an integer)
 *   "<what>: 'key' must be MIN..MAX, not N"        (out of range)
 *   "<what>: 'key' must be true or false"
 *   "<what>: 'key' must be a string"
 * where "<what>: " is left out when what is NULL or "". An absent optional
 * key leaves *out as it is and returns 0. */
#ifndef TERN_COMMON_JSONF_H
#define TERN_COMMON_JSONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

int jsonf_uint(json_t *obj, const char *key, bool required, uint64_t min, uint64_t max,
               uint64_t *out, const char *what, struct err *e);
int jsonf_bool(json_t *obj, const char *key, bool required, bool *out, const char *what,
               struct err *e);
/* *out points into obj: valid while obj lives. */
int jsonf_string(json_t *obj, const char *key, bool required, const char **out,
                 const char *what, struct err *e);
/* The first key of obj that is not in known (a NULL-terminated list), or
 * NULL; the caller words the refusal ("unknown key", "unknown parameter"). */
const char *jsonf_unknown_key(json_t *obj, const char *const known[]);
/* A culprit as it may be quoted in a message, so that the message stays one
 * line whatever was sent: control characters become '?', and past 60
 * characters it is cut and ends in "...". */
#define JSONF_PRINTABLE_MAX 80
const char *jsonf_printable(const char *s, char out[JSONF_PRINTABLE_MAX]);

#endif
