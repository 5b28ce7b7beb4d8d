/* Storage definitions and cluster options in etcd (docs/cluster.md). */
#include "cluster/vmconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tries of a read-check-write that loses to a concurrent writer. */
#define CHANGE_TRIES 5

static int storage_key(char key[TERN_KEY_MAX], const char *name, struct err *e)
{
    return keys_build(key, TERN_PREFIX_STORAGE, name, NULL, "storage name", e);
}

/* kv's JSON through from_json; a record that does not parse is -EPROTO
 * naming its key (it was written by something else than this code). */
int vmconf_parse_kv(const struct etcd_kv *kv, void *out,
                    int (*from_json)(json_t *, void *, struct err *), struct err *e)
{
    json_error_t je;
    json_t *j = json_loads(kv->value ? kv->value : "", 0, &je);
    if (!j)
        return err_set(e, EPROTO, "%s: stored value is not json: %s", kv->key, je.text);
    struct err pe;
    int rc = from_json(j, out, &pe);
    json_decref(j);
    if (rc)
        return err_set(e, EPROTO, "%s: %s", kv->key, pe.msg);
    return 0;
}

int vmconf_read(struct etcd_client *c, const char *key, unsigned flags, void *out,
                int (*from_json)(json_t *, void *, struct err *), struct err *e)
{
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_get(c, key, flags, &kv, e);
    if (!rc)
        rc = vmconf_parse_kv(&kv, out, from_json, e);
    etcd_kv_release(&kv);
    return rc;
}

static int storage_from(json_t *j, void *out, struct err *e)
{
    return storage_conf_from_json(j, out, e);
}

static int options_from(json_t *j, void *out, struct err *e)
{
    return cluster_options_update(j, out, e);
}

static int vm_from(json_t *j, void *out, struct err *e)
{
    return vmconf_from_json(j, out, e);
}

/* JSON text of j (consumed), NULL when out of memory. */
static char *dump(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

int storage_get(struct etcd_client *c, const char *name, unsigned flags,
                struct storage_conf *out, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = storage_key(key, name, e);
    if (!rc)
        rc = vmconf_read(c, key, flags, out, storage_from, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "storage '%s' does not exist", name);
    return rc;
}

int storage_path_check(const char *path, bool shared, const char *what, struct err *e)
{
    for (const char *b = strchr(path, '{'); b; b = strchr(b + 1, '{')) {
        if (strncmp(b, STORAGE_NODE_TOKEN, strlen(STORAGE_NODE_TOKEN)) != 0)
            return err_set(e, EINVAL,
                           "%s: 'path' may hold only the placeholder " STORAGE_NODE_TOKEN,
                           what);
        if (shared)
            return err_set(e, EINVAL,
                           "%s: a shared storage is the same directory on every node: "
                           "no " STORAGE_NODE_TOKEN " in its path",
                           what);
    }
    if (strchr(path, '}') && !strstr(path, STORAGE_NODE_TOKEN))
        return err_set(e, EINVAL,
                       "%s: 'path' may hold only the placeholder " STORAGE_NODE_TOKEN,
                       what);
    return 0;
}

int storage_dir_path(const struct storage_conf *s, const char *node,
                     char out[VMCONF_PATH_MAX], struct err *e)
{
    const size_t tok = strlen(STORAGE_NODE_TOKEN);
    size_t n = 0;
    for (const char *p = s->path; *p;) {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, STORAGE_NODE_TOKEN, tok) == 0) {
            piece = node;
            len = strlen(node);
            p += tok;
        } else {
            p++;
        }
        if (n + len >= VMCONF_PATH_MAX)
            return err_set(e, ENAMETOOLONG,
                           "storage '%s': path on node '%s' is longer than %d characters",
                           s->name, node, VMCONF_PATH_MAX - 1);
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

int storage_volume_path(const struct storage_conf *s, const char *node, const char *volume,
                        char out[VMCONF_PATH_MAX], struct err *e)
{
    char dir[VMCONF_PATH_MAX];
    int rc = name_check(volume, "volume", e);
    if (!rc)
        rc = storage_dir_path(s, node, dir, e);
    if (rc)
        return rc;
    int n = snprintf(out, VMCONF_PATH_MAX, "%s/%s", dir, volume);
    if (n < 0 || n >= VMCONF_PATH_MAX)
        return err_set(e, ENAMETOOLONG,
                       "storage '%s': path of volume '%s' is longer "
                       "than %d characters",
                       s->name, volume, VMCONF_PATH_MAX - 1);
    return 0;
}

int storage_put_new(struct etcd_client *c, const struct storage_conf *s, struct err *e)
{
    char key[TERN_KEY_MAX];
    struct storage_conf check;
    json_t *j = storage_conf_to_json(s);
    int rc = j ? storage_conf_from_json(j, &check, e) : err_set(e, ENOMEM, "out of memory");
    char *text = !rc ? dump(j) : (json_decref(j), NULL);
    if (!rc && !text)
        rc = err_set(e, ENOMEM, "out of memory");
    if (!rc)
        rc = storage_key(key, s->name, e);
    if (!rc) {
        struct etcd_cas op = {.key = key, .cmp = ETCD_CMP_ABSENT, .new_value = text};
        bool created;
        rc = etcd_cas(c, &op, &created, NULL, e);
        if (!rc && !created)
            rc = err_set(e, EEXIST, "storage '%s' exists", s->name);
    }
    free(text);
    return rc;
}

void storage_confs_init(struct storage_confs *l)
{
    memset(l, 0, sizeof(*l));
}

void storage_confs_release(struct storage_confs *l)
{
    free(l->items);
    storage_confs_init(l);
}

int storage_list(struct etcd_client *c, unsigned flags, struct storage_confs *out,
                 struct err *e)
{
    struct etcd_kvs kvs;
    storage_confs_init(out);
    int rc = etcd_get_prefix(c, TERN_PREFIX_STORAGE, flags, &kvs, e);
    if (rc)
        return rc;
    out->items = calloc(kvs.count ? kvs.count : 1, sizeof(*out->items));
    if (!out->items)
        rc = err_set(e, ENOMEM, "storage list: out of memory");
    for (size_t i = 0; !rc && i < kvs.count; i++) {
        if (strchr(kvs.items[i].key + strlen(TERN_PREFIX_STORAGE), '/'))
            continue; /* not of this layout */
        rc = vmconf_parse_kv(&kvs.items[i], &out->items[out->count], storage_from, e);
        if (!rc)
            out->count++;
    }
    etcd_kvs_release(&kvs);
    if (rc)
        storage_confs_release(out);
    return rc;
}

/* -EBUSY naming the first VM of vms with a disk on storage name. */
static int storage_users(const struct etcd_kvs *vms, const char *name, struct err *e)
{
    for (size_t i = 0; i < vms->count; i++) {
        const char *key = vms->items[i].key;
        size_t n = strlen(key);
        if (n < 7 || strcmp(key + n - 7, "/config") != 0)
            continue;
        struct vmconf conf;
        int rc = vmconf_parse_kv(&vms->items[i], &conf, vm_from, e);
        if (rc)
            return rc;
        for (unsigned d = 0; d < conf.ndisks; d++)
            if (strcmp(conf.disks[d].storage, name) == 0)
                return err_set(e, EBUSY,
                               "storage '%s' is in use by vm %" PRIu32 " (disk '%s')", name,
                               conf.id, conf.disks[d].volume);
    }
    return 0;
}

/* One try: list the VMs, then delete only if no VM changed since. */
static int delete_once(struct etcd_client *c, const char *key, const char *name, bool *done,
                       struct err *e)
{
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_get(c, key, 0, &kv, e);
    if (rc == -ENOENT)
        return err_set(e, ENOENT, "storage '%s' does not exist", name);
    if (rc)
        return rc;
    struct etcd_kvs vms; /* etcd_get_prefix inits it first */
    rc = etcd_get_prefix(c, TERN_PREFIX_VMS, 0, &vms, e);
    if (!rc)
        rc = storage_users(&vms, name, e);
    if (!rc) {
        struct etcd_txn_cmp cmps[2] = {
            {.key = key, .cmp = ETCD_CMP_MOD_REVISION, .expect_revision = kv.mod_revision},
            {.key = TERN_PREFIX_VMS,
             .cmp = ETCD_CMP_PREFIX_UNCHANGED,
             .expect_revision = vms.revision},
        };
        struct etcd_txn_op op = {.key = key};
        rc = etcd_txn(c, cmps, 2, &op, 1, done, e);
    }
    etcd_kvs_release(&vms);
    etcd_kv_release(&kv);
    return rc;
}

int storage_delete(struct etcd_client *c, const char *name, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = storage_key(key, name, e);
    bool done = false;
    for (int i = 0; !rc && !done && i < CHANGE_TRIES; i++)
        rc = delete_once(c, key, name, &done, e);
    if (!rc && !done)
        rc = err_set(e, EAGAIN, "storage '%s': vms kept changing, try again", name);
    return rc;
}

/* --- cluster options */

/* *kv is the stored record (value NULL when absent: defaults). */
static int options_read(struct etcd_client *c, unsigned flags, struct cluster_options *out,
                        struct etcd_kv *kv, struct err *e)
{
    cluster_options_default(out);
    etcd_kv_init(kv);
    int rc = etcd_get(c, TERN_KEY_OPTIONS, flags, kv, e);
    if (rc == -ENOENT)
        return 0;
    if (!rc)
        rc = vmconf_parse_kv(kv, out, options_from, e);
    return rc;
}

int cluster_options_get(struct etcd_client *c, unsigned flags, struct cluster_options *out,
                        struct err *e)
{
    struct etcd_kv kv;
    int rc = options_read(c, flags, out, &kv, e);
    etcd_kv_release(&kv);
    return rc;
}

int cluster_options_change(struct etcd_client *c, json_t *j, struct cluster_options *out,
                           struct err *e)
{
    bool swapped = false;
    int rc = 0;
    for (int i = 0; !rc && !swapped && i < CHANGE_TRIES; i++) {
        struct etcd_kv kv;
        rc = options_read(c, 0, out, &kv, e);
        if (!rc)
            rc = cluster_options_update(j, out, e);
        char *text = !rc ? dump(cluster_options_to_json(out)) : NULL;
        if (!rc && !text)
            rc = err_set(e, ENOMEM, "cluster options: out of memory");
        if (!rc) {
            struct etcd_cas op = {.key = TERN_KEY_OPTIONS,
                                  .new_value = text,
                                  .cmp = kv.value ? ETCD_CMP_MOD_REVISION : ETCD_CMP_ABSENT,
                                  .expect_revision = kv.mod_revision};
            rc = etcd_cas(c, &op, &swapped, NULL, e);
        }
        free(text);
        etcd_kv_release(&kv);
    }
    if (!rc && !swapped)
        rc = err_set(e, EAGAIN, "cluster options kept changing, try again");
    return rc;
}
