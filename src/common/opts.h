/* Parsing of option values shared by the programs. */
#ifndef TERN_COMMON_OPTS_H
#define TERN_COMMON_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "512M", "1G", "4096", "64K": binary units, case-insensitive. 0 or -EINVAL. */
int opts_parse_size(const char *text, uint64_t *out);
/* Decimal unsigned integer within [min, max]. 0 or -EINVAL / -ERANGE. */
int opts_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);
/* "on"/"off"/"yes"/"no"/"true"/"false"/"1"/"0". 0 or -EINVAL. */
int opts_parse_bool(const char *text, bool *out);

#define OPTS_KV_MAX 16
struct opts_kv {
    size_t count;
    char *key[OPTS_KV_MAX];
    char *value[OPTS_KV_MAX];
    char *storage;
};

/* Splits "a=1,b=2" in place into pairs. A bare word "x" is key "x" with value
 * NULL. 0, -EINVAL (empty key, too many pairs) or -ENOMEM. */
int opts_kv_parse(struct opts_kv *kv, const char *text);
const char *opts_kv_get(const struct opts_kv *kv, const char *key);
void opts_kv_release(struct opts_kv *kv);

/* Tests widen the windows around a migration's handover to kill a process
 * inside them: with TERN_TEST_HOLD=<point> the process waits
 * TERN_TEST_HOLD_MS (default 1000) there. Points: "loaded", "committed"
 * (source tern-vmm), "commit-received" (destination), "handover-committed"
 * (ternd, between the etcd commit and telling tern-vmm). Unset, this costs
 * one getenv. */
void test_hold(const char *point);

#endif
