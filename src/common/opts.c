#include "common/opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"

int opts_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int opts_parse_size(const char *text, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -EINVAL;
    }
    if (*end) {
        end++;
        /* accept "1G", "1GB", "1GiB" */
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "b") != 0 &&
            strcasecmp(end, "ib") != 0)
            return -EINVAL;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}

int opts_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};
    if (!text)
        return -EINVAL;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int opts_kv_parse(struct opts_kv *kv, const char *text)
{
    memset(kv, 0, sizeof(*kv));
    kv->storage = strdup(text ? text : "");
    if (!kv->storage)
        return -ENOMEM;
    char *save = NULL;
    for (char *tok = strtok_r(kv->storage, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (kv->count == OPTS_KV_MAX)
            return -EINVAL;
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        if (!*tok)
            return -EINVAL;
        kv->key[kv->count] = tok;
        kv->value[kv->count] = eq ? eq + 1 : NULL;
        kv->count++;
    }
    return 0;
}

const char *opts_kv_get(const struct opts_kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->count; i++)
        if (strcmp(kv->key[i], key) == 0)
            return kv->value[i] ? kv->value[i] : "";
    return NULL;
}

void opts_kv_release(struct opts_kv *kv)
{
    free(kv->storage);
    memset(kv, 0, sizeof(*kv));
}

void test_hold(const char *point)
{
    const char *at = getenv("TERN_TEST_HOLD");
    if (!at || strcmp(at, point) != 0)
        return;
    const char *ms = getenv("TERN_TEST_HOLD_MS");
    long v = ms ? atol(ms) : 1000;
    log_warn("test", "test hold at '%s' for %ld ms", point, v);
    struct timespec ts = {v / 1000, (v % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
