#include "cluster/members.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cluster/codec.h"
#include "common/log.h"

#define MEMBERS_MAX 16
/* etcd's strict reconfiguration check refuses an add until every member
 * has been connected to the others for 5 s ("unhealthy cluster"), which is
 * the normal state just after the previous join: wait that out */
#define MEMBER_ADD_RETRY_MS 12000

int cluster_token_make(char out[CLUSTER_TOKEN_LEN + 1], struct err *e)
{
    unsigned char raw[CLUSTER_TOKEN_LEN / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return err_set(e, EIO, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof(raw));
    return 0;
}

bool cluster_token_valid(const char *token)
{
    if (!token || strlen(token) != CLUSTER_TOKEN_LEN)
        return false;
    return strspn(token, "0123456789abcdefABCDEF") == CLUSTER_TOKEN_LEN;
}

static int token_take(const char *value, char out[CLUSTER_TOKEN_LEN + 1], struct err *e)
{
    if (!cluster_token_valid(value))
        return err_set(e, EPROTO, "%s is not %d hex characters", TERN_KEY_CLUSTER_TOKEN,
                       CLUSTER_TOKEN_LEN);
    memcpy(out, value, CLUSTER_TOKEN_LEN + 1);
    return 0;
}

/* The value at key checked and copied into out by take (token_take,
 * name_take). */
static int get_take(struct etcd_client *c, const char *key, unsigned flags,
                    int (*take)(const char *, char *, struct err *), char *out,
                    struct err *e)
{
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_get(c, key, flags, &kv, e);
    if (!rc)
        rc = take(kv.value, out, e);
    etcd_kv_release(&kv);
    return rc;
}

/* Puts value at key unless it exists (*created); then out gets what the
 * key holds through take, unless created (out is the caller's then). */
static int ensure_take(struct etcd_client *c, const char *key, const char *value,
                       int (*take)(const char *, char *, struct err *), char *out,
                       bool *created, struct err *e)
{
    struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_ABSENT, .new_value = value};
    struct etcd_kv now;
    int rc = etcd_cas(c, &op, created, &now, e);
    if (!rc && !*created)
        rc = take(now.value, out, e);
    etcd_kv_release(&now);
    return rc;
}

int cluster_token_get(struct etcd_client *c, unsigned flags,
                      char out[CLUSTER_TOKEN_LEN + 1], struct err *e)
{
    return get_take(c, TERN_KEY_CLUSTER_TOKEN, flags, token_take, out, e);
}

int cluster_token_ensure(struct etcd_client *c, char out[CLUSTER_TOKEN_LEN + 1],
                         struct err *e)
{
    char fresh[CLUSTER_TOKEN_LEN + 1];
    bool created;
    int rc = cluster_token_make(fresh, e);
    if (!rc)
        rc = ensure_take(c, TERN_KEY_CLUSTER_TOKEN, fresh, token_take, out, &created, e);
    if (!rc && created) {
        log_info("cluster", "new cluster token in %s", TERN_KEY_CLUSTER_TOKEN);
        memcpy(out, fresh, sizeof(fresh));
    }
    explicit_bzero(fresh, sizeof(fresh));
    return rc;
}

static int name_take(const char *value, char out[TERN_NAME_MAX + 1], struct err *e)
{
    json_t *j = json_loads(value ? value : "", 0, NULL);
    const char *name = json_string_value(json_object_get(j, "name"));
    int rc = 0;
    if (name && strlen(name) <= TERN_NAME_MAX)
        snprintf(out, TERN_NAME_MAX + 1, "%s", name);
    else
        rc = err_set(e, EPROTO, "%s has no valid \"name\"", TERN_KEY_CLUSTER);
    json_decref(j);
    return rc;
}

int cluster_name_get(struct etcd_client *c, unsigned flags, char out[TERN_NAME_MAX + 1],
                     struct err *e)
{
    return get_take(c, TERN_KEY_CLUSTER, flags, name_take, out, e);
}

int cluster_record_ensure(struct etcd_client *c, const char *name, const char *creator,
                          char out[TERN_NAME_MAX + 1], struct err *e)
{
    int rc = name_check(name, "cluster name", e);
    if (rc)
        return rc;
    json_t *j = json_pack("{s:s, s:I, s:s}", "name", name, "created",
                          (json_int_t)time(NULL), "creator", creator);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return err_set(e, ENOMEM, "cluster record: out of memory");
    bool created;
    rc = ensure_take(c, TERN_KEY_CLUSTER, text, name_take, out, &created, e);
    free(text);
    if (!rc && created) {
        log_info("cluster", "cluster '%s' created by node %s", name, creator);
        snprintf(out, TERN_NAME_MAX + 1, "%s", name);
    }
    return rc;
}

/* The "members" array of a member list or add answer. A member that was
 * added but has not started yet has no name. */
static size_t members_parse(json_t *arr, struct etcd_member_info *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < max; i++) {
        json_t *m = json_array_get(arr, i);
        struct etcd_member_info *mi = &out[n++];
        memset(mi, 0, sizeof(*mi));
        mi->id = codec_uint64(m, "ID", 0);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *peer = json_string_value(
            json_array_get(json_object_get(m, "peerURLs"), 0));
        snprintf(mi->name, sizeof(mi->name), "%s", name ? name : "");
        snprintf(mi->peer_url, sizeof(mi->peer_url), "%s", peer ? peer : "");
    }
    return n;
}

/* name=peer_url of every member, the one with id called name. */
static int initial_build(const struct etcd_member_info *list, size_t n, uint64_t id,
                         const char *name, struct cluster_join *out, struct err *e)
{
    size_t used = 0;
    out->initial_cluster[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *nm = list[i].id == id ? name : list[i].name;
        if (!nm[0])
            return err_set(e, EBUSY,
                           "etcd member %016llx (%s) was added but never "
                           "started: remove it first",
                           (unsigned long long)list[i].id, list[i].peer_url);
        int len = snprintf(out->initial_cluster + used, sizeof(out->initial_cluster) - used,
                           "%s%s=%s", used ? "," : "", nm, list[i].peer_url);
        if (len < 0 || (size_t)len >= sizeof(out->initial_cluster) - used)
            return err_set(e, ENAMETOOLONG, "initial cluster of %zu members is too long",
                           n);
        used += (size_t)len;
    }
    out->id = id;
    out->members = n;
    return 0;
}

/* -EEXIST when an etcd member or a registered node is called name. */
static int name_free(struct etcd_client *c, const char *name, unsigned flags,
                     const struct etcd_member_info *list, size_t n, struct err *e)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return err_set(e, EEXIST, "node '%s' is already an etcd member of the cluster",
                           name);
    char key[TERN_KEY_MAX];
    int rc = keys_build(key, TERN_PREFIX_NODES, name, NULL, "node name", e);
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    if (!rc)
        rc = etcd_get(c, key, flags, &kv, e);
    etcd_kv_release(&kv);
    if (!rc)
        return err_set(e, EEXIST, "a node '%s' is already registered in the cluster", name);
    return rc == -ENOENT ? 0 : rc;
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static int member_add_call(struct etcd_client *c, const char *peer_url, json_t **resp,
                           struct err *e)
{
    json_t *req = json_pack("{s:[s]}", "peerURLs", peer_url);
    if (!req)
        return err_set(e, ENOMEM, "etcd member add: out of memory");
    int rc;
    for (long waited = 0;; waited += 500) {
        rc = etcd_client_call(c, "/v3/cluster/member/add", req, resp, e);
        /* etcd makes the new id from the peer URL and the time in whole
         * seconds: re-adding a URL removed within the same second hits the
         * removed id, which etcd reports as "member not found" */
        bool same_second = rc == -ENOENT && strstr(e->msg, "member not found") &&
                           waited < 2000;
        bool unhealthy = rc == -ETCD_NOT_QUORATE &&
                         strstr(etcd_client_detail(c), "unhealthy cluster");
        if (!same_second && !unhealthy)
            break;
        if (waited >= MEMBER_ADD_RETRY_MS) {
            rc = err_set(e, EBUSY,
                         "etcd refused to add the member: etcdserver: "
                         "unhealthy cluster (a member is not connected to all others)");
            break;
        }
        sleep_ms(500);
    }
    json_decref(req);
    /* "not enough started members": a state of the cluster, not a right */
    if (rc == -EPERM)
        rc = -EBUSY;
    return rc;
}

static int member_add_new(struct etcd_client *c, const char *name, const char *peer_url,
                          struct cluster_join *out, struct err *e)
{
    json_t *resp;
    int rc = member_add_call(c, peer_url, &resp, e);
    if (rc)
        return rc;
    struct etcd_member_info list[MEMBERS_MAX];
    uint64_t id = codec_uint64(json_object_get(resp, "member"), "ID", 0);
    size_t n = members_parse(json_object_get(resp, "members"), list, MEMBERS_MAX);
    json_decref(resp);
    if (!id)
        return err_set(e, EPROTO, "etcd member add: no id in the answer");
    log_info("cluster", "etcd member %016llx added for node %s (%s)",
             (unsigned long long)id, name, peer_url);
    return initial_build(list, n, id, name, out, e);
}

/* The members into list (*n of them), and *m the one with peer_url, NULL
 * for none. */
static int members_find(struct etcd_client *c, struct etcd_member_info list[MEMBERS_MAX],
                        size_t *n, const char *peer_url, const struct etcd_member_info **m,
                        struct err *e)
{
    *m = NULL;
    int rc = etcd_member_list(c, list, MEMBERS_MAX, n, e);
    for (size_t i = 0; !rc && i < *n; i++)
        if (strcmp(list[i].peer_url, peer_url) == 0)
            *m = &list[i];
    return rc;
}

int cluster_member_add(struct etcd_client *c, const char *name, const char *peer_url,
                       struct cluster_join *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    struct etcd_member_info list[MEMBERS_MAX];
    size_t n;
    const struct etcd_member_info *same;
    int rc = members_find(c, list, &n, peer_url, &same, e);
    if (rc)
        return rc;
    if (same && same->name[0])
        return err_set(e, EEXIST, "peer url %s is already member '%s'", peer_url,
                       same->name);
    /* a retried join: its member keeps the cluster without quorum until it
     * starts, so it must be answerable from the local copy */
    rc = name_free(c, name, same ? ETCD_SERIALIZABLE : 0, list, n, e);
    if (rc)
        return rc;
    if (!same)
        return member_add_new(c, name, peer_url, out, e);
    out->again = true;
    return initial_build(list, n, same->id, name, out, e);
}

/* etcd 3.4 refuses a removal that would leave fewer started members than
 * a majority of those left ("not enough started members"): a state of the
 * cluster, -EBUSY, with etcd's words. */
static int member_remove_call(struct etcd_client *c, uint64_t id, struct err *e)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)id);
    json_t *resp = NULL, *req = json_pack("{s:s}", "ID", text);
    if (!req)
        return err_set(e, ENOMEM, "etcd member remove: out of memory");
    int rc;
    /* as for an add: not until every member has been connected for 5 s */
    for (long waited = 0;; waited += 500) {
        rc = etcd_client_call(c, "/v3/cluster/member/remove", req, &resp, e);
        json_decref(resp);
        resp = NULL;
        if (rc != -ETCD_NOT_QUORATE || !strstr(etcd_client_detail(c), "unhealthy cluster"))
            break;
        if (waited >= MEMBER_ADD_RETRY_MS) {
            rc = err_set(e, EBUSY,
                         "etcd refused to remove the member: etcdserver: unhealthy "
                         "cluster (a member is not connected to all others)");
            break;
        }
        sleep_ms(500);
    }
    json_decref(req);
    return rc == -EPERM ? -EBUSY : rc;
}

int cluster_member_remove_unstarted(struct etcd_client *c, const char *peer_url,
                                    struct err *e)
{
    struct etcd_member_info list[MEMBERS_MAX];
    size_t n;
    const struct etcd_member_info *m;
    int rc = members_find(c, list, &n, peer_url, &m, e);
    if (rc)
        return rc;
    if (!m)
        return err_set(e, ENOENT, "no etcd member with peer url %s", peer_url);
    if (m->name[0])
        return err_set(e, EBUSY,
                       "etcd member '%s' (%s) has started: only a member "
                       "that never started is removed here",
                       m->name, peer_url);
    rc = member_remove_call(c, m->id, e);
    if (!rc)
        log_info("cluster", "etcd member %016llx (%s) removed: it never started",
                 (unsigned long long)m->id, peer_url);
    return rc;
}

int cluster_member_remove(struct etcd_client *c, const char *name, uint64_t *id,
                          struct err *e)
{
    struct etcd_member_info list[MEMBERS_MAX];
    size_t n;
    *id = 0;
    int rc = etcd_member_list(c, list, MEMBERS_MAX, &n, e);
    for (size_t i = 0; !rc && i < n && !*id; i++)
        if (strcmp(list[i].name, name) == 0)
            *id = list[i].id;
    if (rc)
        return rc;
    if (!*id)
        return err_set(e, ENOENT, "no etcd member called '%s'", name);
    if (n == 1)
        return err_set(e, EBUSY,
                       "etcd member '%s' is the cluster's only member: removing it "
                       "would end the cluster",
                       name);
    rc = member_remove_call(c, *id, e);
    if (!rc)
        log_info("cluster", "etcd member %016llx (node %s) removed",
                 (unsigned long long)*id, name);
    return rc;
}

int cluster_ca_store(struct etcd_client *c, const char *cert_pem, const char *key_pem,
                     struct err *e)
{
    struct etcd_txn_cmp cmps[] = {{.key = TERN_KEY_CA_CERT, .cmp = ETCD_CMP_ABSENT},
                                  {.key = TERN_KEY_CA_KEY, .cmp = ETCD_CMP_ABSENT}};
    struct etcd_txn_op ops[] = {{.key = TERN_KEY_CA_CERT, .value = cert_pem},
                                {.key = TERN_KEY_CA_KEY, .value = key_pem}};
    bool done;
    int rc = etcd_txn(c, cmps, 2, ops, 2, &done, e);
    if (!rc && !done)
        rc = err_set(e, EEXIST, "the cluster has a CA already (%s)", TERN_KEY_CA_CERT);
    return rc;
}

int cluster_ca_get(struct etcd_client *c, char **cert_pem, char **key_pem, struct err *e)
{
    struct etcd_kv cert, key;
    etcd_kv_init(&cert);
    etcd_kv_init(&key);
    *cert_pem = *key_pem = NULL;
    int rc = etcd_get(c, TERN_KEY_CA_CERT, 0, &cert, e);
    if (!rc)
        rc = etcd_get(c, TERN_KEY_CA_KEY, 0, &key, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT,
                     "the cluster has no CA in %s (it runs without TLS, or with "
                     "certificates its operator made): it cannot sign a new node's",
                     TERN_KEY_CA_CERT);
    if (!rc) {
        *cert_pem = cert.value, cert.value = NULL;
        *key_pem = key.value, key.value = NULL;
    }
    etcd_kv_release(&cert);
    etcd_kv_release(&key);
    return rc;
}

static int join_token_key(char key[TERN_KEY_MAX], const char *hash, struct err *e)
{
    if (strlen(hash) != 64 || strspn(hash, "0123456789abcdef") != 64)
        return err_set(e, EINVAL, "join token hash is not 64 hex characters");
    snprintf(key, TERN_KEY_MAX, TERN_PREFIX_JOIN_TOKENS "%s", hash);
    return 0;
}

int cluster_join_token_add(struct etcd_client *c, const char *hash, const char *by,
                           int ttl_s, struct err *e)
{
    char key[TERN_KEY_MAX];
    int64_t lease;
    int rc = join_token_key(key, hash, e);
    if (!rc)
        rc = etcd_lease_grant(c, ttl_s, &lease, e);
    if (rc)
        return rc;
    json_t *j = json_pack("{s:s, s:I, s:I}", "by", by, "created", (json_int_t)time(NULL),
                          "expires", (json_int_t)time(NULL) + ttl_s);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    rc = text ? etcd_put(c, key, text, lease, e) : err_set(e, ENOMEM, "out of memory");
    free(text);
    return rc;
}

int cluster_join_token_take(struct etcd_client *c, const char *hash, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = join_token_key(key, hash, e);
    if (rc)
        return rc;
    struct etcd_txn_cmp cmp = {.key = key, .cmp = ETCD_CMP_PRESENT};
    struct etcd_txn_op op = {.key = key, .value = NULL};
    bool taken;
    rc = etcd_txn(c, &cmp, 1, &op, 1, &taken, e);
    if (!rc && !taken)
        rc = err_set(e, EACCES,
                     "join token refused: unknown, expired or already used (make a "
                     "new one with 'tern cluster join-token' on a member)");
    return rc;
}
