#include "node/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"

enum key_kind { KEY_TEXT, KEY_INT };

struct key_def {
    const char *name;
    size_t offset;
    size_t size; /* of the char array (KEY_TEXT) */
    enum key_kind kind;
    bool required;
    int min, max; /* KEY_INT range */
};

#define TEXT(f, req)                                                                 \
    {                                                                                \
#f, offsetof(struct ternd_config, f), sizeof(((struct ternd_config *)0)->f), \
            KEY_TEXT, req, 0, 0                                                      \
    }
#define INT(f, lo, hi)                                                  \
    {                                                                   \
#f, offsetof(struct ternd_config, f), 0, KEY_INT, false, lo, hi \
    }

static const struct key_def keys[] = {
    TEXT(name, true),
    TEXT(cluster_address, true),
    TEXT(peer_address, true),
    TEXT(initial_cluster, false), /* none: in no cluster until create or join */
    TEXT(migration_address, true),
    TEXT(data_dir, true),
    TEXT(api_address, true),
    TEXT(tls_cert, false),
    TEXT(tls_key, false),
    TEXT(addresses, false),
    TEXT(vmm_binary, false),
    TEXT(ha_watchdog, false),
    INT(heartbeat_ttl_s, 2, 300),
    INT(etcd_election_ms, 100, 50000),
    INT(task_records, 1, 1000000),
    INT(session_ttl_s, 1, 30 * 86400),
    TEXT(bridges, false),
    TEXT(tap_prefix, false),
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

void ternd_config_init(struct ternd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->heartbeat_ttl_s = 10;
    c->etcd_election_ms = 1000;
    c->task_records = 500;
    c->session_ttl_s = 8 * 3600;
    snprintf(c->tap_prefix, sizeof(c->tap_prefix), "tern");
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

static int set_key(struct ternd_config *c, const struct key_def *k, const char *value,
                   const char *where, struct err *e)
{
    char *field = (char *)c + k->offset;
    if (k->kind == KEY_INT) {
        uint64_t v;
        if (opts_parse_uint(value, (uint64_t)k->min, (uint64_t)k->max, &v) < 0)
            return err_set(e, EINVAL, "%s: '%s' wants a number in %d..%d, not '%s'", where,
                           k->name, k->min, k->max, value);
        *(int *)(void *)field = (int)v;
        return 0;
    }
    if (!*value)
        return err_set(e, EINVAL, "%s: '%s' is empty", where, k->name);
    if (strlen(value) >= k->size)
        return err_set(e, ENAMETOOLONG, "%s: '%s' is longer than %zu characters", where,
                       k->name, k->size - 1);
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

static int parse_line(struct ternd_config *c, char *line, const char *where,
                      bool seen[N_KEYS], struct err *e)
{
    char *s = trim(line);
    if (!*s || *s == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (!eq)
        return err_set(e, EINVAL, "%s: expected 'key = value', got '%s'", where, s);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, key) != 0)
            continue;
        if (seen[i])
            return err_set(e, EINVAL, "%s: key '%s' given twice", where, key);
        seen[i] = true;
        return set_key(c, &keys[i], value, where, e);
    }
    return err_set(e, EINVAL, "%s: unknown key '%s'", where, key);
}

/* "host:port" or "[v6]:port" into api_host/api_port. */
static int split_api(struct ternd_config *c, const char *path, struct err *e)
{
    char *colon = strrchr(c->api_address, ':');
    uint64_t port;
    if (!colon || colon == c->api_address ||
        opts_parse_uint(colon + 1, 1, 65535, &port) < 0)
        return err_set(e, EINVAL, "%s: 'api_address' wants host:port, not '%s'", path,
                       c->api_address);
    const char *h = c->api_address;
    size_t len = (size_t)(colon - h);
    if (h[0] == '[' && len >= 2 && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    memcpy(c->api_host, h, len);
    c->api_host[len] = '\0';
    c->api_port = (unsigned)port;
    return 0;
}

static int check_complete(struct ternd_config *c, const char *path, const bool seen[N_KEYS],
                          struct err *e)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].required && !seen[i])
            return err_set(e, EINVAL, "%s: missing key '%s'", path, keys[i].name);
    struct err why;
    if (name_check(c->name, "node name", &why) < 0)
        return err_set(e, EINVAL, "%s: 'name': %s", path, why.msg);
    if (!c->tls_cert[0] != !c->tls_key[0])
        return err_set(e, EINVAL, "%s: 'tls_cert' and 'tls_key' go together", path);
    /* one scheme for both: a member either runs etcd with TLS and client
     * certificates on both ports, or (a static lab cluster) on neither */
    c->etcd_tls = strncmp(c->cluster_address, "https://", 8) == 0;
    const char *scheme = c->etcd_tls ? "https://" : "http://";
    if ((!c->etcd_tls && strncmp(c->cluster_address, "http://", 7) != 0) ||
        strncmp(c->peer_address, scheme, strlen(scheme)) != 0)
        return err_set(e, EINVAL,
                       "%s: 'cluster_address' and 'peer_address' must both be "
                       "https:// URLs (or both http:// for a cluster without TLS)",
                       path);
    return split_api(c, path, e);
}

int ternd_config_load(struct ternd_config *c, const char *path, struct err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, errno, "config %s: %s", path, strerror(errno));
    bool seen[N_KEYS] = {false};
    char line[2048], where[TERND_PATH_MAX + 32];
    int rc = 0;
    for (unsigned no = 1; !rc && fgets(line, sizeof(line), f); no++) {
        snprintf(where, sizeof(where), "config %s line %u", path, no);
        if (!strchr(line, '\n') && !feof(f))
            rc = err_set(e, EINVAL, "%s: line too long", where);
        else
            rc = parse_line(c, line, where, seen, e);
    }
    fclose(f);
    if (!rc) {
        snprintf(where, sizeof(where), "config %s", path);
        rc = check_complete(c, where, seen, e);
    }
    return rc;
}
