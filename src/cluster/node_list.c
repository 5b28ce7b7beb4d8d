/* Reading the membership (records joined with heartbeats) and quorum. */
#include "cluster/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/keys.h"
#include "cluster/quorum.h"
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
    return keys_check_name(key + n, "node name", NULL) == 0 ? key + n : NULL;
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
    if (rc == 0)
        rc = etcd_get_prefix(c, TERN_PREFIX_ALIVE, flags, &alive, e);
    if (rc == 0)
        rc = entries_fill(&records, &alive, out, e);
    etcd_kvs_release(&records);
    etcd_kvs_release(&alive);
    if (rc < 0)
        node_entries_release(out);
    return rc;
}

int node_forget(struct etcd_client *c, const char *name, struct err *e)
{
    char record[TERN_KEY_MAX], alive[TERN_KEY_MAX];
    int rc = keys_build(record, TERN_PREFIX_NODES, name, NULL, "node name", e);
    if (rc == 0)
        rc = keys_build(alive, TERN_PREFIX_ALIVE, name, NULL, "node name", e);
    int64_t deleted = 0;
    if (rc == 0)
        rc = etcd_delete(c, record, &deleted, e);
    if (rc == 0)
        rc = etcd_delete(c, alive, NULL, e);
    if (rc == 0 && deleted == 0)
        rc = err_set(e, ENOENT, "node %s is not a member", name);
    return rc;
}

/* Asks one member directly (its own client: no failover to another). */
static void member_status(struct cluster_member *m, struct cluster_info *info)
{
    struct etcd_client one;
    struct err e;
    if (!m->client_url[0] || etcd_client_init(&one, m->client_url, &e) < 0)
        return;
    etcd_client_set_timeout(&one, CLUSTER_STATUS_TIMEOUT_MS);
    struct etcd_status st;
    if (etcd_status(&one, &st, &e) == 0) {
        m->reachable = true;
        m->leader_id = st.leader_id;
        m->raft_term = st.raft_term;
        info->members_reachable++;
        if (st.raft_term >= info->raft_term) {
            info->raft_term = st.raft_term;
            info->leader_id = st.leader_id;
        }
        snprintf(info->version, sizeof(info->version), "%s", st.version);
    }
    etcd_client_release(&one);
}

static int members_fill(struct etcd_client *c, struct cluster_info *info, struct err *e)
{
    struct etcd_member_info list[CLUSTER_MEMBERS_MAX];
    size_t n;
    int rc = etcd_member_list(c, list, CLUSTER_MEMBERS_MAX, &n, e);
    if (rc < 0 && rc != -E2BIG)
        return rc;
    info->member_count = n;
    for (size_t i = 0; i < n; i++) {
        struct cluster_member *m = &info->members[i];
        m->id = list[i].id;
        snprintf(m->name, sizeof(m->name), "%s", list[i].name);
        snprintf(m->client_url, sizeof(m->client_url), "%s", list[i].client_url);
        member_status(m, info);
        if (m->id == info->leader_id && m->id)
            snprintf(info->leader_name, sizeof(info->leader_name), "%s", m->name);
    }
    /* the leader may be listed before the member that named it */
    for (size_t i = 0; i < n && !info->leader_name[0]; i++)
        if (info->members[i].id == info->leader_id && info->leader_id)
            snprintf(info->leader_name, sizeof(info->leader_name), "%s",
                     info->members[i].name);
    return 0;
}

int cluster_quorate(struct etcd_client *c, struct cluster_info *info, struct err *e)
{
    memset(info, 0, sizeof(*info));
    struct err sub;
    if (members_fill(c, info, &sub) < 0)
        log_debug("cluster", "member list: %s", sub.msg);
    /* a member's status is local knowledge and lags behind a partition by up
     * to an election timeout: only a linearizable read, which needs the
     * leader to hear from a majority, proves quorum */
    if (info->leader_id || info->member_count == 0) {
        struct etcd_kv kv;
        etcd_kv_init(&kv);
        int rc = etcd_get(c, TERN_KEY_VERSION, 0, &kv, &sub);
        info->quorate = rc == 0 || rc == -ENOENT;
        etcd_kv_release(&kv);
    }
    if (info->quorate)
        return 1;
    err_set(e, ETCD_NOT_QUORATE, ETCD_NOT_QUORATE_MSG);
    return 0;
}
