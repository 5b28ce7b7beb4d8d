/* HA records and the recovery transaction (cluster/ha.h). */
#include "cluster/ha.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/vmconf.h"
#include "common/jsonf.h"

void ha_conf_default(struct ha_conf *c, uint32_t id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->max_restart = 1; /* as Proxmox's ha-manager */
    c->max_relocate = 1;
}

static int group_from_json(json_t *g, struct ha_conf *c, struct err *e)
{
    if (!json_is_array(g) || json_array_size(g) > HA_GROUP_MAX)
        return err_set(e, EINVAL, "ha: 'group' must be a list of at most %d node names",
                       HA_GROUP_MAX);
    c->ngroup = 0;
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v) {
        const char *name = json_string_value(v);
        int rc = name_check(name ? name : "", "ha group node", e);
        if (rc)
            return rc;
        snprintf(c->group[c->ngroup++], TERN_NAME_MAX + 1, "%s", name);
    }
    return 0;
}

int ha_conf_from_json(json_t *j, struct ha_conf *c, struct err *e)
{
    static const char *const known[] = {"max_restart", "max_relocate", "group", NULL};
    if (!json_is_object(j))
        return err_set(e, EINVAL, "ha: expected a json object");
    const char *key = jsonf_unknown_key(j, known);
    if (key)
        return err_set(e, EINVAL, "ha: unknown key '%s'", key);
    uint64_t restart = c->max_restart, relocate = c->max_relocate;
    int rc = jsonf_uint(j, "max_restart", false, 0, HA_LIMIT_MAX, &restart, "ha", e);
    if (!rc)
        rc = jsonf_uint(j, "max_relocate", false, 0, HA_LIMIT_MAX, &relocate, "ha", e);
    if (!rc && json_object_get(j, "group"))
        rc = group_from_json(json_object_get(j, "group"), c, e);
    c->max_restart = (unsigned)restart;
    c->max_relocate = (unsigned)relocate;
    return rc;
}

json_t *ha_conf_to_json(const struct ha_conf *c)
{
    json_t *g = json_array();
    for (size_t i = 0; i < c->ngroup; i++)
        json_array_append_new(g, json_string(c->group[i]));
    return json_pack("{s:i, s:i, s:o}", "max_restart", c->max_restart, "max_relocate",
                     c->max_relocate, "group", g);
}

bool ha_conf_allows(const struct ha_conf *c, const char *node)
{
    for (size_t i = 0; i < c->ngroup; i++)
        if (strcmp(c->group[i], node) == 0)
            return true;
    return c->ngroup == 0;
}

static int conf_parse(json_t *j, uint32_t id, void *out, struct err *e)
{
    ha_conf_default(out, id);
    return ha_conf_from_json(j, out, e);
}

static const struct keys_vm_records ha_records = {.prefix = TERN_PREFIX_HA,
                                                  .absent = "is not HA",
                                                  .size = sizeof(struct ha_conf),
                                                  .parse = conf_parse};

int ha_conf_get(struct etcd_client *c, uint32_t id, unsigned flags, struct ha_conf *out,
                struct err *e)
{
    return keys_vm_record_get(c, &ha_records, id, flags, out, e);
}

int ha_conf_list(struct etcd_client *c, unsigned flags, struct ha_conf **out, size_t *n,
                 struct err *e)
{
    void *list;
    int rc = keys_vm_record_list(c, &ha_records, flags, &list, n, e);
    *out = list;
    return rc;
}

/* Why vm conf->id cannot be HA, if it cannot. */
static int ha_conf_check(struct etcd_client *c, const struct ha_conf *conf, struct err *e)
{
    struct vmconf vm;
    int rc = vmconf_get(c, conf->id, 0, &vm, e);
    for (unsigned i = 0; !rc && i < vm.ndisks; i++) {
        struct storage_conf s;
        rc = storage_get(c, vm.disks[i].storage, 0, &s, e);
        if (!rc && !s.shared)
            rc = err_set(e, EINVAL,
                         "vm %u: disk %u is on storage '%s', which is not shared: only a "
                         "vm whose disks every node can open can be HA",
                         conf->id, i, s.name);
    }
    for (size_t i = 0; !rc && i < conf->ngroup; i++) {
        char key[TERN_KEY_MAX];
        struct etcd_kv kv;
        etcd_kv_init(&kv);
        rc = keys_build(key, TERN_PREFIX_NODES, conf->group[i], NULL, "node name", e);
        if (!rc)
            rc = etcd_get(c, key, 0, &kv, e);
        if (rc == -ENOENT)
            rc = err_set(e, ENOENT, "ha group: node '%s' is not a member of the cluster",
                         conf->group[i]);
        etcd_kv_release(&kv);
    }
    return rc;
}

static char *dump(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

int ha_conf_add(struct etcd_client *c, const struct ha_conf *conf,
                const struct ha_state *state, struct err *e)
{
    char key[TERN_KEY_MAX], skey[TERN_KEY_MAX], vkey[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_HA, conf->id, NULL, e);
    if (!rc)
        rc = keys_build_vm(skey, TERN_PREFIX_HASTATE, conf->id, NULL, e);
    if (!rc)
        rc = keys_build_vm(vkey, TERN_PREFIX_VMS, conf->id, "/config", e);
    if (!rc)
        rc = ha_conf_check(c, conf, e);
    if (rc)
        return rc;
    char *text = dump(ha_conf_to_json(conf)), *st = dump(ha_state_to_json(state));
    struct etcd_txn_cmp cmps[] = {{.key = key, .cmp = ETCD_CMP_ABSENT},
                                  {.key = vkey, .cmp = ETCD_CMP_PRESENT}};
    struct etcd_txn_op ops[] = {{.key = key, .value = text}, {.key = skey, .value = st}};
    bool done = false;
    rc = text && st ? etcd_txn(c, cmps, 2, ops, 2, &done, e)
                    : err_set(e, ENOMEM, "ha: out of memory");
    free(text);
    free(st);
    if (!rc && !done) {
        struct ha_conf now;
        rc = ha_conf_get(c, conf->id, 0, &now, e) == 0
                 ? err_set(e, EEXIST, "vm %u is HA already", conf->id)
                 : err_set(e, ENOENT, "vm %u does not exist", conf->id);
    }
    return rc;
}

int ha_conf_remove(struct etcd_client *c, uint32_t id, struct err *e)
{
    char key[TERN_KEY_MAX], skey[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_HA, id, NULL, e);
    if (!rc)
        rc = keys_build_vm(skey, TERN_PREFIX_HASTATE, id, NULL, e);
    if (rc)
        return rc;
    struct etcd_txn_cmp cmp = {.key = key, .cmp = ETCD_CMP_PRESENT};
    struct etcd_txn_op ops[] = {{.key = key}, {.key = skey}};
    bool done = false;
    rc = etcd_txn(c, &cmp, 1, ops, 2, &done, e);
    if (!rc && !done)
        rc = err_set(e, ENOENT, "vm %u is not HA", id);
    return rc;
}

json_t *ha_state_to_json(const struct ha_state *st)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:i}", "node", st->node, "state", st->state,
                     "event", st->event, "time", (json_int_t)st->time, "relocations",
                     st->relocations);
}

static void copy_field(json_t *j, const char *key, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(out, size, "%s", v ? v : "");
}

int ha_state_get(struct etcd_client *c, uint32_t id, unsigned flags, struct ha_state *out,
                 struct err *e)
{
    char key[TERN_KEY_MAX];
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    memset(out, 0, sizeof(*out));
    int rc = keys_build_vm(key, TERN_PREFIX_HASTATE, id, NULL, e);
    if (!rc)
        rc = etcd_get(c, key, flags, &kv, e);
    json_t *j = rc ? NULL : json_loads(kv.value ? kv.value : "", 0, NULL);
    if (!rc && !json_is_object(j))
        rc = err_set(e, EPROTO, "%s: not a json object", key);
    if (!rc) {
        copy_field(j, "node", out->node, sizeof(out->node));
        copy_field(j, "state", out->state, sizeof(out->state));
        copy_field(j, "event", out->event, sizeof(out->event));
        out->time = json_integer_value(json_object_get(j, "time"));
        out->relocations = (unsigned)json_integer_value(json_object_get(j, "relocations"));
    }
    json_decref(j);
    etcd_kv_release(&kv);
    return rc;
}

int ha_state_put(struct etcd_client *c, uint32_t id, const struct ha_state *st,
                 struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_HASTATE, id, NULL, e);
    char *text = rc ? NULL : dump(ha_state_to_json(st));
    if (!rc && !text)
        rc = err_set(e, ENOMEM, "ha: out of memory");
    if (!rc)
        rc = etcd_put(c, key, text, 0, e);
    free(text);
    return rc;
}

/* The owner key from -> to at revision rev, with the HA state; from_dead:
 * on condition that from holds no heartbeat. */
static int owner_move(struct etcd_client *c, uint32_t id, const char *from, int64_t rev,
                      const char *to, const struct ha_state *st, bool from_dead,
                      bool *taken, struct err *e)
{
    char owner[TERN_KEY_MAX], alive[TERN_KEY_MAX], ha[TERN_KEY_MAX], skey[TERN_KEY_MAX];
    char alive_to[TERN_KEY_MAX];
    *taken = false;
    int rc = keys_vm_owner(owner, id, e);
    if (!rc)
        rc = keys_build(alive, TERN_PREFIX_ALIVE, from, NULL, "node name", e);
    if (!rc)
        rc = keys_build(alive_to, TERN_PREFIX_ALIVE, to, NULL, "node name", e);
    if (!rc)
        rc = keys_build_vm(ha, TERN_PREFIX_HA, id, NULL, e);
    if (!rc)
        rc = keys_build_vm(skey, TERN_PREFIX_HASTATE, id, NULL, e);
    char *text = rc ? NULL : dump(ha_state_to_json(st));
    if (!rc && !text)
        rc = err_set(e, ENOMEM, "ha: out of memory");
    struct etcd_txn_cmp cmps[] = {
        {.key = owner, .cmp = ETCD_CMP_MOD_REVISION, .expect_revision = rev},
        {.key = owner, .cmp = ETCD_CMP_VALUE, .expect_value = from},
        {.key = ha, .cmp = ETCD_CMP_PRESENT},
        {.key = alive_to, .cmp = ETCD_CMP_PRESENT},
        {.key = alive, .cmp = ETCD_CMP_ABSENT},
    };
    struct etcd_txn_op ops[] = {{.key = owner, .value = to}, {.key = skey, .value = text}};
    size_t ncmps = from_dead ? 5 : 4;
    if (!rc)
        rc = etcd_txn(c, cmps, ncmps, ops, 2, taken, e);
    free(text);
    return rc;
}

int ha_take(struct etcd_client *c, uint32_t id, const char *from, int64_t rev,
            const char *to, const struct ha_state *st, bool *taken, struct err *e)
{
    return owner_move(c, id, from, rev, to, st, strcmp(from, to) != 0, taken, e);
}

int ha_relocate(struct etcd_client *c, uint32_t id, const char *from, int64_t rev,
                const char *to, const struct ha_state *st, bool *moved, struct err *e)
{
    return owner_move(c, id, from, rev, to, st, false, moved, e);
}

int ha_maint_put(struct etcd_client *c, const char *node, json_t *rec, struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build(key, TERN_PREFIX_MAINT, node, NULL, "node name", e);
    if (rc)
        return rc;
    if (!rec)
        return etcd_delete(c, key, NULL, e);
    char *text = json_dumps(rec, JSON_COMPACT);
    rc = text ? etcd_put(c, key, text, 0, e) : err_set(e, ENOMEM, "ha: out of memory");
    free(text);
    return rc;
}

int ha_maint_get(struct etcd_client *c, const char *node, unsigned flags, bool *on,
                 json_t **rec, struct err *e)
{
    char key[TERN_KEY_MAX];
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = keys_build(key, TERN_PREFIX_MAINT, node, NULL, "node name", e);
    if (!rc)
        rc = etcd_get(c, key, flags, &kv, e);
    *on = rc == 0;
    if (rec) {
        *rec = rc ? NULL : json_loads(kv.value ? kv.value : "", 0, NULL);
        if (!rc && !json_is_object(*rec)) {
            json_decref(*rec);
            *rec = json_object(); /* still on: the key says so */
        }
    }
    etcd_kv_release(&kv);
    return rc == -ENOENT ? 0 : rc;
}

int ha_maint_list(struct etcd_client *c, unsigned flags, json_t **names, struct err *e)
{
    struct etcd_kvs kvs;
    etcd_kvs_init(&kvs);
    int rc = etcd_get_prefix(c, TERN_PREFIX_MAINT, flags, &kvs, e);
    *names = json_array();
    for (size_t i = 0; !rc && i < kvs.count; i++)
        json_array_append_new(*names,
                              json_string(kvs.items[i].key + strlen(TERN_PREFIX_MAINT)));
    etcd_kvs_release(&kvs);
    return rc;
}
