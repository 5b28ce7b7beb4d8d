/* Quorum and the etcd members' own account of the cluster. */
#include "cluster/quorum.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/keys.h"
#include "common/log.h"

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
    if (rc && rc != -E2BIG)
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
        info->quorate = !rc || rc == -ENOENT;
        etcd_kv_release(&kv);
    }
    if (info->quorate)
        return 0;
    return err_set(e, ETCD_NOT_QUORATE, ETCD_NOT_QUORATE_MSG);
}
