/* Reading the membership: records joined with heartbeats. */
#include "cluster/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/keys.h"
#include "common/log.h"

void node_entries_init(struct node_entries *l)
{
    memset(l, 0, sizeof(*l));
}

void node_entries_release(struct node_entries *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].info);
    free(l->items);
    node_entries_init(l);
}

/* The name part of a key under prefix, NULL for anything deeper or odd
 * (keys written by a later layout are skipped, not misread). */
static const char *key_name(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0 || strchr(key + n, '/'))
        return NULL;
    return name_check(key + n, "node name", NULL) == 0 ? key + n : NULL;
}

static const struct etcd_kv *find_alive(const struct etcd_kvs *alive, const char *name)
{
    for (size_t i = 0; i < alive->count; i++) {
        const char *a = key_name(alive->items[i].key, TERN_PREFIX_ALIVE);
        if (a && strcmp(a, name) == 0)
            return &alive->items[i];
    }
    return NULL;
}

static int entries_fill(const struct etcd_kvs *records, const struct etcd_kvs *alive,
                        struct node_entries *out, struct err *e)
{
    out->items = calloc(records->count ? records->count : 1, sizeof(*out->items));
    if (!out->items)
        return err_set(e, ENOMEM, "node list: out of memory");
    for (size_t i = 0; i < records->count; i++) {
        const char *name = key_name(records->items[i].key, TERN_PREFIX_NODES);
        if (!name) {
            log_debug("cluster", "node list: skipping key %s", records->items[i].key);
            continue;
        }
        struct node_entry *ne = &out->items[out->count];
        ne->info = strdup(records->items[i].value ? records->items[i].value : "{}");
        if (!ne->info)
            return err_set(e, ENOMEM, "node list: out of memory");
        out->count++;
        snprintf(ne->name, sizeof(ne->name), "%s", name);
        const struct etcd_kv *hb = find_alive(alive, name);
        ne->online = hb != NULL;
        ne->lease = hb ? hb->lease : 0;
    }
    return 0;
}

int node_list(struct etcd_client *c, unsigned flags, struct node_entries *out,
              struct err *e)
{
    node_entries_init(out);
    struct etcd_kvs records, alive;
    etcd_kvs_init(&alive);
    /* records first: a node registered in between shows as offline for one
     * listing rather than as a heartbeat without a record */
    int rc = etcd_get_prefix(c, TERN_PREFIX_NODES, flags, &records, e);
    if (!rc)
        rc = etcd_get_prefix(c, TERN_PREFIX_ALIVE, flags, &alive, e);
    if (!rc)
        rc = entries_fill(&records, &alive, out, e);
    etcd_kvs_release(&records);
    etcd_kvs_release(&alive);
    if (rc)
        node_entries_release(out);
    return rc;
}

int node_forget(struct etcd_client *c, const char *name, struct err *e)
{
    char record[TERN_KEY_MAX], alive[TERN_KEY_MAX];
    int rc = keys_build(record, TERN_PREFIX_NODES, name, NULL, "node name", e);
    if (!rc)
        rc = keys_build(alive, TERN_PREFIX_ALIVE, name, NULL, "node name", e);
    int64_t deleted = 0;
    if (!rc)
        rc = etcd_delete(c, record, &deleted, e);
    if (!rc)
        rc = etcd_delete(c, alive, NULL, e);
    if (!rc && deleted == 0)
        rc = err_set(e, ENOENT, "node %s is not a member", name);
    return rc;
}
