/* The etcd key layout: names checked before they go into a key, keys
 * built from them, and the layout version of the cluster. */
#include "cluster/keys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonf.h"

int keys_build(char key[TERN_KEY_MAX], const char *prefix, const char *name,
               const char *suffix, const char *what, struct err *e)
{
    int rc = name_check(name, what, e);
    if (rc)
        return rc;
    int n = snprintf(key, TERN_KEY_MAX, "%s%s%s", prefix, name, suffix ? suffix : "");
    if (n < 0 || n >= TERN_KEY_MAX)
        return err_set(e, ENAMETOOLONG, "%s %s: key too long", what, name);
    return 0;
}

static int vmid_refused(const char *text, struct err *e)
{
    char buf[JSONF_PRINTABLE_MAX];
    return err_set(e, EINVAL, "vm id '%s' must be a number %d..%u",
                   jsonf_printable(text, buf), TERN_VMID_MIN, TERN_VMID_MAX);
}

int keys_vmid_parse(const char *text, uint32_t *id, struct err *e)
{
    size_t n = strspn(text, "0123456789");
    if (n == 0 || text[n] || n > 9 || text[0] == '0')
        return vmid_refused(text, e);
    unsigned long v = strtoul(text, NULL, 10);
    if (v < TERN_VMID_MIN)
        return vmid_refused(text, e);
    *id = (uint32_t)v;
    return 0;
}

int keys_build_vm(char key[TERN_KEY_MAX], const char *prefix, uint32_t id,
                  const char *suffix, struct err *e)
{
    char text[16];
    snprintf(text, sizeof(text), "%" PRIu32, id);
    if (id < TERN_VMID_MIN || id > TERN_VMID_MAX)
        return vmid_refused(text, e);
    return keys_build(key, prefix, text, suffix, "vm id", e);
}

int keys_vm_owner(char key[TERN_KEY_MAX], uint32_t id, struct err *e)
{
    return keys_build_vm(key, TERN_PREFIX_VMS, id, "/owner", e);
}

int cluster_layout_init(struct etcd_client *c, struct err *e)
{
    struct etcd_cas op = {
        .key = TERN_KEY_VERSION,
        .cmp = ETCD_CMP_ABSENT,
        .new_value = TERN_LAYOUT_VERSION,
    };
    bool created;
    struct etcd_kv now;
    int rc = etcd_cas(c, &op, &created, &now, e);
    if (rc || created)
        return rc;
    if (!now.value || strcmp(now.value, TERN_LAYOUT_VERSION) != 0)
        rc = err_set(e, EPROTO, "%s is %s: this build knows layout %s only",
                     TERN_KEY_VERSION, now.value ? now.value : "(gone)",
                     TERN_LAYOUT_VERSION);
    etcd_kv_release(&now);
    return rc;
}

static int record_parse(const struct keys_vm_records *r, const struct etcd_kv *kv,
                        uint32_t id, void *out, struct err *e)
{
    json_t *j = json_loads(kv->value ? kv->value : "", 0, NULL);
    int rc = r->parse(j, id, out, e);
    json_decref(j);
    return rc ? err_set(e, EPROTO, "%s: %s", kv->key, e->msg) : 0;
}

int keys_vm_record_get(struct etcd_client *c, const struct keys_vm_records *r, uint32_t id,
                       unsigned flags, void *out, struct err *e)
{
    char key[TERN_KEY_MAX];
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = keys_build_vm(key, r->prefix, id, NULL, e);
    if (!rc)
        rc = etcd_get(c, key, flags, &kv, e);
    if (rc == -ENOENT)
        rc = err_set(e, ENOENT, "vm %" PRIu32 " %s", id, r->absent);
    if (!rc)
        rc = record_parse(r, &kv, id, out, e);
    etcd_kv_release(&kv);
    return rc;
}

int keys_vm_record_list(struct etcd_client *c, const struct keys_vm_records *r,
                        unsigned flags, void **out, size_t *n, struct err *e)
{
    struct etcd_kvs kvs;
    etcd_kvs_init(&kvs);
    *out = NULL;
    *n = 0;
    int rc = etcd_get_prefix(c, r->prefix, flags, &kvs, e);
    if (!rc && kvs.count && !(*out = calloc(kvs.count, r->size)))
        rc = err_set(e, ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < kvs.count; i++) {
        uint32_t id;
        struct err ignored;
        void *slot = (char *)*out + *n * r->size;
        if (keys_vmid_parse(kvs.items[i].key + strlen(r->prefix), &id, &ignored) == 0 &&
            record_parse(r, &kvs.items[i], id, slot, &ignored) == 0)
            (*n)++;
    }
    etcd_kvs_release(&kvs);
    return rc;
}
