/* VM configs, owners and run states in etcd (docs/cluster.md). Creating and
 * destroying a VM are single transactions, so a VM never exists without its
 * owner or the other way round. */
#include "cluster/vmconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static int conf_from(json_t *j, void *out, struct err *e)
{
    return vmconf_from_json(j, out, e);
}

static int state_from(json_t *j, void *out, struct err *e)
{
    return vmrec_state_from_json(j, out, e);
}

int vmconf_get(struct etcd_client *c, uint32_t id, unsigned flags, struct vmconf *out,
               struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_VMS, id, "/config", e);
    if (!rc)
        rc = vmconf_read(c, key, flags, out, conf_from, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %" PRIu32 " does not exist", id);
    if (!rc && out->id != id)
        rc = err_set(e, EPROTO, "%s: stored config has id %" PRIu32, key, out->id);
    return rc;
}

/* --- run state */

int vmrec_state_get(struct etcd_client *c, uint32_t id, unsigned flags,
                    struct vmrec_state *out, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_VMSTATE, id, NULL, e);
    if (!rc)
        rc = vmconf_read(c, key, flags, out, state_from, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %" PRIu32 " has no run state", id);
    return rc;
}

/* --- create and delete */

/* The transaction failed: say which of its conditions did not hold. */
static int create_why(struct etcd_client *c, const struct vmconf *conf, struct err *e)
{
    char id[16], owner[TERN_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%" PRIu32, conf->id);
    struct vmconf old;
    int rc = vmconf_get(c, conf->id, 0, &old, e);
    if (rc != -ENOENT)
        return rc && rc != -EPROTO ? rc : err_set(e, EEXIST, "vm %s exists", id);
    rc = vmowner_get(c, conf->id, 0, owner, NULL, e);
    if (rc != -ENOENT)
        return rc ? rc
                  : err_set(e, EEXIST,
                            "vm %s exists (owner '%s' without "
                            "config)",
                            id, owner);
    for (unsigned i = 0; i < conf->ndisks; i++) {
        struct storage_conf s;
        rc = storage_get(c, conf->disks[i].storage, 0, &s, e);
        if (rc)
            return rc;
    }
    rc = vmconf_mac_conflict(c, conf, e);
    if (rc)
        return rc;
    return err_set(e, EAGAIN, "vm %s changed while being created, try again", id);
}

/* conf as stored: only what reads back as a valid config is written; *text
 * NULL (and rc 0) when out of memory, which the callers' etcd step refuses. */
static int stored_text(const struct vmconf *conf, char **text, struct err *e)
{
    json_t *j = vmconf_to_json(conf);
    struct vmconf check;
    int rc = j ? vmconf_from_json(j, &check, e) : err_set(e, ENOMEM, "out of memory");
    *text = !rc ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return rc;
}

static bool has_mac(const struct vmconf *c, const char *mac)
{
    for (unsigned i = 0; i < c->nnets; i++)
        if (strcmp(c->nets[i].mac, mac) == 0)
            return true;
    return false;
}

/* The MAC keys an update reserves (compared absent, put) and frees. */
struct mac_diff {
    char keys[2 * VMCONF_NETS_MAX][TERN_KEY_MAX];
    struct etcd_txn_cmp cmps[VMCONF_NETS_MAX];
    struct etcd_txn_op ops[2 * VMCONF_NETS_MAX];
    size_t ncmps, nops;
    char id[16];
};

static void mac_diff_build(struct mac_diff *d, const struct vmconf *old,
                           const struct vmconf *conf)
{
    size_t k = 0;
    snprintf(d->id, sizeof(d->id), "%" PRIu32, conf->id);
    d->ncmps = d->nops = 0;
    for (unsigned i = 0; i < conf->nnets; i++)
        if (!has_mac(old, conf->nets[i].mac)) {
            vmconf_mac_key(conf->nets[i].mac, d->keys[k]);
            d->cmps[d->ncmps++] = (struct etcd_txn_cmp){.key = d->keys[k],
                                                        .cmp = ETCD_CMP_ABSENT};
            d->ops[d->nops++] = (struct etcd_txn_op){.key = d->keys[k++], .value = d->id};
        }
    for (unsigned i = 0; i < old->nnets; i++)
        if (!has_mac(conf, old->nets[i].mac)) {
            vmconf_mac_key(old->nets[i].mac, d->keys[k]);
            d->ops[d->nops++] = (struct etcd_txn_op){.key = d->keys[k++]};
        }
}

int vmconf_update(struct etcd_client *c, const struct vmconf *conf, const char *node,
                  struct err *e)
{
    char ckey[TERN_KEY_MAX], okey[TERN_KEY_MAX];
    int rc = keys_build_vm(ckey, TERN_PREFIX_VMS, conf->id, "/config", e);
    if (!rc)
        rc = keys_vm_owner(okey, conf->id, e);
    /* NICs changed: the MACs no longer used are freed, new ones reserved,
     * in the same transaction as the config */
    struct vmconf old; /* changes to it are under the VM's lock */
    if (!rc)
        rc = vmconf_get(c, conf->id, 0, &old, e);
    if (rc)
        return rc;
    struct mac_diff d;
    mac_diff_build(&d, &old, conf);
    struct etcd_txn_cmp cmps[2 + VMCONF_NETS_MAX] = {
        {.key = ckey, .cmp = ETCD_CMP_PRESENT},
        {.key = okey, .cmp = ETCD_CMP_VALUE, .expect_value = node},
    };
    memcpy(cmps + 2, d.cmps, d.ncmps * sizeof(d.cmps[0]));
    char *text = NULL;
    rc = stored_text(conf, &text, e);
    if (rc)
        return rc;
    struct etcd_txn_op ops[1 + 2 * VMCONF_NETS_MAX] = {{.key = ckey, .value = text}};
    memcpy(ops + 1, d.ops, d.nops * sizeof(d.ops[0]));
    bool done;
    rc = text ? etcd_txn(c, cmps, 2 + d.ncmps, ops, 1 + d.nops, &done, e)
              : err_set(e, ENOMEM, "out of memory");
    free(text);
    if (!rc && !done && !(rc = vmconf_mac_conflict(c, conf, e)))
        rc = err_set(e, ESTALE, "vm %" PRIu32 " changed owner or was removed meanwhile",
                     conf->id);
    return rc;
}

int vmconf_create(struct etcd_client *c, const struct vmconf *conf, const char *node,
                  struct err *e)
{
    char ckey[TERN_KEY_MAX], okey[TERN_KEY_MAX], skeys[VMCONF_DISKS_MAX][TERN_KEY_MAX];
    int rc = name_check(node, "node name", e);
    if (!rc)
        rc = keys_build_vm(ckey, TERN_PREFIX_VMS, conf->id, "/config", e);
    if (!rc)
        rc = keys_vm_owner(okey, conf->id, e);
    if (rc)
        return rc;
    char mkeys[VMCONF_NETS_MAX][TERN_KEY_MAX], id[16];
    struct etcd_txn_cmp cmps[2 + VMCONF_DISKS_MAX + VMCONF_NETS_MAX] = {
        {.key = ckey, .cmp = ETCD_CMP_ABSENT},
        {.key = okey, .cmp = ETCD_CMP_ABSENT},
    };
    size_t n = 2;
    for (unsigned i = 0; i < conf->ndisks && i < VMCONF_DISKS_MAX; i++) {
        rc = keys_build(skeys[i], TERN_PREFIX_STORAGE, conf->disks[i].storage, NULL,
                        "storage name", e);
        if (rc)
            return rc;
        cmps[n++] = (struct etcd_txn_cmp){.key = skeys[i], .cmp = ETCD_CMP_PRESENT};
    }
    char *text = NULL;
    rc = stored_text(conf, &text, e);
    if (rc)
        return rc;
    struct etcd_txn_op ops[2 + VMCONF_NETS_MAX] = {{.key = ckey, .value = text},
                                                   {.key = okey, .value = node}};
    size_t nops = 2;
    /* each MAC is reserved with the VM: no other VM of the cluster has it */
    snprintf(id, sizeof(id), "%" PRIu32, conf->id);
    for (unsigned i = 0; i < conf->nnets && i < VMCONF_NETS_MAX; i++) {
        vmconf_mac_key(conf->nets[i].mac, mkeys[i]);
        cmps[n++] = (struct etcd_txn_cmp){.key = mkeys[i], .cmp = ETCD_CMP_ABSENT};
        ops[nops++] = (struct etcd_txn_op){.key = mkeys[i], .value = id};
    }
    bool done;
    rc = text ? etcd_txn(c, cmps, n, ops, nops, &done, e)
              : err_set(e, ENOMEM, "out of memory");
    free(text);
    if (!rc && !done)
        rc = create_why(c, conf, e);
    return rc;
}

int vmconf_delete(struct etcd_client *c, uint32_t id, const char *node, struct err *e)
{
    char ckey[TERN_KEY_MAX], okey[TERN_KEY_MAX], skey[TERN_KEY_MAX];
    int rc = name_check(node, "node name", e);
    if (!rc)
        rc = keys_build_vm(ckey, TERN_PREFIX_VMS, id, "/config", e);
    if (!rc)
        rc = keys_vm_owner(okey, id, e);
    if (!rc)
        rc = keys_build_vm(skey, TERN_PREFIX_VMSTATE, id, NULL, e);
    if (rc)
        return rc;
    struct etcd_txn_cmp cmp = {.key = okey, .cmp = ETCD_CMP_VALUE, .expect_value = node};
    struct etcd_txn_op ops[3 + VMCONF_NETS_MAX] = {
        {.key = ckey}, {.key = okey}, {.key = skey}};
    size_t nops = 3;
    /* the MACs it reserved go with it */
    struct vmconf old;
    char mkeys[VMCONF_NETS_MAX][TERN_KEY_MAX];
    struct err ignored;
    if (vmconf_get(c, id, 0, &old, &ignored) == 0)
        for (unsigned i = 0; i < old.nnets && i < VMCONF_NETS_MAX; i++) {
            vmconf_mac_key(old.nets[i].mac, mkeys[i]);
            ops[nops++] = (struct etcd_txn_op){.key = mkeys[i]};
        }
    bool done;
    rc = etcd_txn(c, &cmp, 1, ops, nops, &done, e);
    if (rc || done)
        return rc;
    char owner[TERN_NAME_MAX + 1];
    rc = vmowner_get(c, id, 0, owner, NULL, e);
    if (rc == -ENOENT)
        return err_set(e, ENOENT, "vm %" PRIu32 " does not exist", id);
    if (rc)
        return rc;
    return err_set(e, ESTALE, "vm %" PRIu32 " is owned by node '%s', not '%s'", id, owner,
                   node);
}

/* --- listing */

void vmrecs_init(struct vmrecs *l)
{
    memset(l, 0, sizeof(*l));
}

void vmrecs_release(struct vmrecs *l)
{
    free(l->items);
    vmrecs_init(l);
}

/* The id right after prefix and what follows it ("/config", ""); false for
 * keys this layout does not have (skipped, not misread). */
static bool key_id(const char *key, const char *prefix, uint32_t *id, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(key, prefix, n) != 0)
        return false;
    char text[16];
    size_t len = strcspn(key + n, "/");
    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, key + n, len);
    text[len] = '\0';
    *rest = key + n + len;
    return keys_vmid_parse(text, id, NULL) == 0;
}

static struct vmrec *find_entry(struct vmrecs *l, uint32_t id)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].conf.id == id)
            return &l->items[i];
    return NULL;
}

static int add_configs(const struct etcd_kvs *kvs, struct vmrecs *out, struct err *e)
{
    out->items = calloc(kvs->count ? kvs->count : 1, sizeof(*out->items));
    if (!out->items)
        return err_set(e, ENOMEM, "vm list: out of memory");
    for (size_t i = 0; i < kvs->count; i++) {
        uint32_t id;
        const char *rest;
        if (!key_id(kvs->items[i].key, TERN_PREFIX_VMS, &id, &rest) ||
            strcmp(rest, "/config") != 0)
            continue;
        struct vmrec *v = &out->items[out->count];
        int rc = vmconf_parse_kv(&kvs->items[i], &v->conf, conf_from, e);
        if (!rc && v->conf.id != id)
            rc = err_set(e, EPROTO, "%s: stored config has id %" PRIu32, kvs->items[i].key,
                         v->conf.id);
        if (rc)
            return rc;
        out->count++;
    }
    return 0;
}

static void add_owners(const struct etcd_kvs *kvs, struct vmrecs *out)
{
    for (size_t i = 0; i < kvs->count; i++) {
        uint32_t id;
        const char *rest;
        struct vmrec *v;
        if (key_id(kvs->items[i].key, TERN_PREFIX_VMS, &id, &rest) &&
            strcmp(rest, "/owner") == 0 && (v = find_entry(out, id)))
            snprintf(v->owner, sizeof(v->owner), "%s",
                     kvs->items[i].value ? kvs->items[i].value : "");
    }
}

/* A state that does not parse is shown as none (and logged): it is the
 * owner's to fix, and one bad record must not hide every VM. */
static void add_states(const struct etcd_kvs *kvs, struct vmrecs *out)
{
    for (size_t i = 0; i < kvs->count; i++) {
        uint32_t id;
        const char *rest;
        struct vmrec *v;
        struct err e;
        if (!key_id(kvs->items[i].key, TERN_PREFIX_VMSTATE, &id, &rest) || *rest ||
            !(v = find_entry(out, id)))
            continue;
        v->has_state = vmconf_parse_kv(&kvs->items[i], &v->state, state_from, &e) == 0;
        if (!v->has_state)
            log_warn("cluster", "%s", e.msg);
    }
}

static void add_locks(const struct etcd_kvs *kvs, struct vmrecs *out)
{
    for (size_t i = 0; i < kvs->count; i++) {
        uint32_t id;
        const char *rest;
        struct vmrec *v;
        if (key_id(kvs->items[i].key, TERN_PREFIX_LOCKS, &id, &rest) && !*rest &&
            (v = find_entry(out, id)))
            snprintf(v->lock, sizeof(v->lock), "%s",
                     kvs->items[i].value ? kvs->items[i].value : "");
    }
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const struct vmrec *)a)->conf.id;
    uint32_t y = ((const struct vmrec *)b)->conf.id;
    return x < y ? -1 : x > y;
}

/* The prefixes select every VM, or one (then they end in "<id>/" and
 * "<id>"; a state or lock of VM 1000 read along with 100's finds no entry). */
static int collect(struct etcd_client *c, unsigned flags, const char *vms,
                   const char *states, const char *locks, struct vmrecs *out, struct err *e)
{
    struct etcd_kvs kvs;
    vmrecs_init(out);
    int rc = etcd_get_prefix(c, vms, flags, &kvs, e);
    if (rc)
        return rc;
    rc = add_configs(&kvs, out, e);
    if (!rc)
        add_owners(&kvs, out);
    etcd_kvs_release(&kvs);
    if (!rc && (rc = etcd_get_prefix(c, states, flags, &kvs, e)) == 0) {
        add_states(&kvs, out);
        etcd_kvs_release(&kvs);
    }
    if (!rc && (rc = etcd_get_prefix(c, locks, flags, &kvs, e)) == 0) {
        add_locks(&kvs, out);
        etcd_kvs_release(&kvs);
    }
    if (rc)
        vmrecs_release(out);
    else
        qsort(out->items, out->count, sizeof(*out->items), by_id);
    return rc;
}

int vmrec_list(struct etcd_client *c, unsigned flags, struct vmrecs *out, struct err *e)
{
    return collect(c, flags, TERN_PREFIX_VMS, TERN_PREFIX_VMSTATE, TERN_PREFIX_LOCKS, out,
                   e);
}

int vmrec_get(struct etcd_client *c, uint32_t id, unsigned flags, struct vmrec *out,
              struct err *e)
{
    char vms[TERN_KEY_MAX], states[TERN_KEY_MAX], locks[TERN_KEY_MAX];
    int rc = keys_build_vm(vms, TERN_PREFIX_VMS, id, "/", e);
    if (!rc)
        rc = keys_build_vm(states, TERN_PREFIX_VMSTATE, id, NULL, e);
    if (!rc)
        rc = keys_build_vm(locks, TERN_PREFIX_LOCKS, id, NULL, e);
    if (rc)
        return rc;
    struct vmrecs l;
    rc = collect(c, flags, vms, states, locks, &l, e);
    if (rc)
        return rc;
    if (l.count == 0)
        rc = err_set(e, ENOENT, "vm %" PRIu32 " does not exist", id);
    else
        *out = l.items[0];
    vmrecs_release(&l);
    return rc;
}
