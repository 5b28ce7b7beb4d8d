/* Key-value, transaction, lease and maintenance calls of the etcd gateway. */
#include "cluster/codec.h"
#include "cluster/etcd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void etcd_kv_init(struct etcd_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
}

void etcd_kv_release(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    etcd_kv_init(kv);
}

void etcd_kvs_init(struct etcd_kvs *kvs)
{
    memset(kvs, 0, sizeof(*kvs));
}

void etcd_kvs_release(struct etcd_kvs *kvs)
{
    for (size_t i = 0; i < kvs->count; i++)
        etcd_kv_release(&kvs->items[i]);
    free(kvs->items);
    etcd_kvs_init(kvs);
}

/* Builds the request with json_pack-style ownership: every value passed in
 * is stolen, a NULL one means an allocation failed earlier. */
static json_t *request(const char *k1, json_t *v1, const char *k2, json_t *v2,
                       const char *k3, json_t *v3)
{
    json_t *req = json_object();
    int bad = !req;
    const char *keys[3] = {k1, k2, k3};
    json_t *vals[3] = {v1, v2, v3};
    for (int i = 0; i < 3; i++) {
        if (!keys[i])
            continue;
        if (!vals[i] || bad || json_object_set_new(req, keys[i], vals[i]) < 0) {
            bad = 1;
            json_decref(vals[i]);
        }
    }
    if (bad) {
        json_decref(req);
        return NULL;
    }
    return req;
}

/* Sends req (consumed) to path. */
static int call(struct etcd_client *c, const char *path, json_t *req, json_t **resp,
                struct err *e)
{
    if (!req)
        return err_set(e, ENOMEM, "etcd %s: out of memory", path);
    int rc = etcd_client_call(c, path, req, resp, e);
    json_decref(req);
    return rc;
}

static json_t *range_request(const char *key, bool prefix, unsigned flags)
{
    json_t *req = request("key", codec_b64_json(key), prefix ? "range_end" : NULL,
                          prefix ? codec_prefix_end_json(key) : NULL, NULL, NULL);
    if (req && (flags & ETCD_SERIALIZABLE))
        json_object_set_new(req, "serializable", json_true());
    return req;
}

int etcd_get(struct etcd_client *c, const char *key, unsigned flags, struct etcd_kv *out,
             struct err *e)
{
    json_t *resp;
    int rc = call(c, "/v3/kv/range", range_request(key, false, flags), &resp, e);
    if (rc)
        return rc;
    struct etcd_kvs kvs;
    etcd_kvs_init(&kvs);
    rc = codec_kvs_parse(resp, &kvs, e);
    json_decref(resp);
    if (!rc && kvs.count == 0)
        rc = err_set(e, ENOENT, "etcd: no key %s", key);
    if (!rc) {
        *out = kvs.items[0]; /* moved, not copied */
        etcd_kv_init(&kvs.items[0]);
    }
    etcd_kvs_release(&kvs);
    return rc;
}

int etcd_get_prefix(struct etcd_client *c, const char *prefix, unsigned flags,
                    struct etcd_kvs *out, struct err *e)
{
    etcd_kvs_init(out);
    if (!*prefix)
        return err_set(e, EINVAL, "etcd: empty prefix");
    json_t *resp;
    int rc = call(c, "/v3/kv/range", range_request(prefix, true, flags), &resp, e);
    if (rc)
        return rc;
    rc = codec_kvs_parse(resp, out, e);
    json_decref(resp);
    if (rc)
        etcd_kvs_release(out);
    return rc;
}

static json_t *put_request(const char *key, const char *value, int64_t lease)
{
    return request("key", codec_b64_json(key), "value", codec_b64_json(value),
                   lease ? "lease" : NULL, lease ? codec_int64_json(lease) : NULL);
}

int etcd_put(struct etcd_client *c, const char *key, const char *value, int64_t lease,
             struct err *e)
{
    json_t *resp;
    int rc = call(c, "/v3/kv/put", put_request(key, value, lease), &resp, e);
    json_decref(resp);
    return rc;
}

int etcd_delete(struct etcd_client *c, const char *key, int64_t *deleted, struct err *e)
{
    json_t *resp;
    int rc = call(c, "/v3/kv/deleterange",
                  request("key", codec_b64_json(key), NULL, NULL, NULL, NULL), &resp, e);
    if (!rc && deleted)
        *deleted = codec_int64(resp, "deleted", 0);
    json_decref(resp);
    return rc;
}

static json_t *compare_one(const char *key, enum etcd_cmp cmp, const char *value,
                           int64_t revision)
{
    switch (cmp) {
    case ETCD_CMP_ABSENT: /* a key that never was or was deleted has create 0 */
        return json_pack("{s:s, s:o, s:s, s:s}", "target", "CREATE", "key",
                         codec_b64_json(key), "create_revision", "0", "result", "EQUAL");
    case ETCD_CMP_PRESENT:
        return json_pack("{s:s, s:o, s:s, s:s}", "target", "CREATE", "key",
                         codec_b64_json(key), "create_revision", "0", "result", "GREATER");
    case ETCD_CMP_VALUE:
        return json_pack("{s:s, s:o, s:o, s:s}", "target", "VALUE", "key",
                         codec_b64_json(key), "value", codec_b64_json(value ? value : ""),
                         "result", "EQUAL");
    case ETCD_CMP_MOD_REVISION:
        return json_pack("{s:s, s:o, s:o, s:s}", "target", "MOD", "key",
                         codec_b64_json(key), "mod_revision", codec_int64_json(revision),
                         "result", "EQUAL");
    case ETCD_CMP_PREFIX_UNCHANGED:
        /* over a range every key must hold; an empty range holds (etcd
         * compares a missing key's mod_revision 0) */
        return json_pack("{s:s, s:o, s:o, s:o, s:s}", "target", "MOD", "key",
                         codec_b64_json(key), "range_end", codec_prefix_end_json(key),
                         "mod_revision", codec_int64_json(revision + 1), "result", "LESS");
    }
    return NULL;
}

static json_t *cas_compare(const struct etcd_cas *op)
{
    return json_pack("[o]",
                     compare_one(op->key, op->cmp, op->expect_value, op->expect_revision));
}

static json_t *cas_request(const struct etcd_cas *op)
{
    json_t *action = op->new_value
                         ? json_pack("[{s:o}]", "request_put",
                                     put_request(op->key, op->new_value, op->lease))
                         : json_pack("[{s:{s:o}}]", "request_delete_range", "key",
                                     codec_b64_json(op->key));
    json_t *failure = json_pack("[{s:o}]", "request_range",
                                range_request(op->key, false, 0));
    return request("compare", cas_compare(op), "success", action, "failure", failure);
}

static int cas_current(json_t *resp, struct etcd_kv *current, struct err *e)
{
    json_t *r = json_object_get(json_array_get(json_object_get(resp, "responses"), 0),
                                "response_range");
    struct etcd_kvs kvs;
    etcd_kvs_init(&kvs);
    int rc = codec_kvs_parse(r, &kvs, e);
    if (!rc && kvs.count > 0) {
        *current = kvs.items[0];
        etcd_kv_init(&kvs.items[0]);
    }
    etcd_kvs_release(&kvs);
    return rc;
}

int etcd_cas(struct etcd_client *c, const struct etcd_cas *op, bool *swapped,
             struct etcd_kv *current, struct err *e)
{
    *swapped = false;
    if (current)
        etcd_kv_init(current);
    if (op->cmp == ETCD_CMP_VALUE && !op->expect_value)
        return err_set(e, EINVAL, "etcd: compare on the value of %s without a value",
                       op->key);
    json_t *resp;
    int rc = call(c, "/v3/kv/txn", cas_request(op), &resp, e);
    if (rc)
        return rc;
    /* proto3 JSON leaves out false: a missing "succeeded" means it failed */
    *swapped = json_is_true(json_object_get(resp, "succeeded"));
    if (!*swapped && current)
        rc = cas_current(resp, current, e);
    json_decref(resp);
    return rc;
}

static json_t *txn_request(const struct etcd_txn_cmp *cmps, size_t ncmps,
                           const struct etcd_txn_op *ops, size_t nops)
{
    json_t *compare = json_array(), *success = json_array();
    for (size_t i = 0; i < ncmps && compare; i++)
        if (json_array_append_new(compare, compare_one(cmps[i].key, cmps[i].cmp,
                                                       cmps[i].expect_value,
                                                       cmps[i].expect_revision)) < 0)
            compare = (json_decref(compare), NULL);
    for (size_t i = 0; i < nops && success; i++) {
        json_t *op = ops[i].value
                         ? json_pack("{s:o}", "request_put",
                                     put_request(ops[i].key, ops[i].value, ops[i].lease))
                         : json_pack("{s:{s:o}}", "request_delete_range", "key",
                                     codec_b64_json(ops[i].key));
        if (json_array_append_new(success, op) < 0)
            success = (json_decref(success), NULL);
    }
    return request("compare", compare, "success", success, NULL, NULL);
}

int etcd_txn(struct etcd_client *c, const struct etcd_txn_cmp *cmps, size_t ncmps,
             const struct etcd_txn_op *ops, size_t nops, bool *succeeded, struct err *e)
{
    *succeeded = false;
    if (ncmps > ETCD_TXN_MAX || nops > ETCD_TXN_MAX)
        return err_set(e, EINVAL,
                       "etcd: transaction of %zu comparisons and %zu "
                       "operations, at most %d each",
                       ncmps, nops, ETCD_TXN_MAX);
    for (size_t i = 0; i < ncmps; i++)
        if (cmps[i].cmp == ETCD_CMP_VALUE && !cmps[i].expect_value)
            return err_set(e, EINVAL,
                           "etcd: compare on the value of %s without "
                           "a value",
                           cmps[i].key);
    json_t *resp;
    int rc = call(c, "/v3/kv/txn", txn_request(cmps, ncmps, ops, nops), &resp, e);
    if (rc)
        return rc;
    *succeeded = json_is_true(json_object_get(resp, "succeeded"));
    json_decref(resp);
    return 0;
}
