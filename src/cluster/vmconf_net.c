/* The NICs of a VM config: a bridge on the node and a MAC each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/etcd.h"
#include "cluster/vmconf.h"
#include "common/jsonf.h"

bool vmconf_ifname_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= VMCONF_IFNAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Lowercase unicast "xx:xx:xx:xx:xx:xx", not all zero, into out. */
static bool mac_normal(const char *text, char out[18])
{
    unsigned int b[6];
    char end;
    if (strlen(text) != 17 || sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2],
                                     &b[3], &b[4], &b[5], &end) != 6)
        return false;
    for (int i = 0; i < 17; i++)
        if ((i % 3 == 2) != (text[i] == ':'))
            return false;
    if ((b[0] & 1) || !(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
        return false;
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0] & 0xffu, b[1] & 0xffu,
             b[2] & 0xffu, b[3] & 0xffu, b[4] & 0xffu, b[5] & 0xffu);
    return true;
}

json_t *vmconf_nets_to_json(const struct vmconf *c)
{
    json_t *nets = json_array();
    for (unsigned i = 0; i < c->nnets && nets; i++)
        json_array_append_new(nets, json_pack("{s:s, s:s}", "bridge", c->nets[i].bridge,
                                              "mac", c->nets[i].mac));
    return nets;
}

static int net_from_json(json_t *j, struct vmconf *c, unsigned n, struct err *e)
{
    char what[48], buf[JSONF_PRINTABLE_MAX];
    snprintf(what, sizeof(what), "vm %" PRIu32 ": nets[%u]", c->id, n);
    if (!json_is_object(j))
        return err_set(e, EINVAL, "%s must be an object", what);
    static const char *const keys[] = {"bridge", "mac", NULL};
    const char *key = jsonf_unknown_key(j, keys);
    if (key)
        return err_set(e, EINVAL, "%s: unknown key '%s'", what, jsonf_printable(key, buf));
    const char *bridge = NULL, *mac = NULL;
    int rc = jsonf_string(j, "bridge", true, &bridge, what, e);
    if (!rc)
        rc = jsonf_string(j, "mac", false, &mac, what, e);
    if (rc)
        return rc;
    struct vmconf_net *net = &c->nets[n];
    if (!vmconf_ifname_valid(bridge))
        return err_set(e, EINVAL, "%s: 'bridge' must be an interface name, not '%s'", what,
                       jsonf_printable(bridge, buf));
    snprintf(net->bridge, sizeof(net->bridge), "%s", bridge);
    if (mac && !mac_normal(mac, net->mac))
        return err_set(e, EINVAL, "%s: 'mac' must be a unicast xx:xx:xx:xx:xx:xx, not '%s'",
                       what, jsonf_printable(mac, buf));
    if (!mac) {
        uint32_t v = (c->id * 4 + n) & 0xffffff;
        snprintf(net->mac, sizeof(net->mac), "52:54:00:%02x:%02x:%02x", (v >> 16) & 0xffu,
                 (v >> 8) & 0xffu, v & 0xffu);
    }
    for (unsigned i = 0; i < n; i++)
        if (strcmp(c->nets[i].mac, net->mac) == 0)
            return err_set(e, EINVAL, "%s: mac %s is used twice", what, net->mac);
    return 0;
}

int vmconf_nets_from_json(json_t *j, struct vmconf *c, const char *what, struct err *e)
{
    json_t *nets = json_object_get(j, "nets");
    if (!nets)
        return 0;
    if (!json_is_array(nets) || json_array_size(nets) > VMCONF_NETS_MAX)
        return err_set(e, EINVAL, "%s: 'nets' must be an array of at most %d nics", what,
                       VMCONF_NETS_MAX);
    for (size_t i = 0; i < json_array_size(nets); i++) {
        int rc = net_from_json(json_array_get(nets, i), c, (unsigned)i, e);
        if (rc)
            return rc;
        c->nnets++;
    }
    return 0;
}

void vmconf_mac_key(const char *mac, char key[TERN_KEY_MAX])
{
    snprintf(key, TERN_KEY_MAX, TERN_PREFIX_MACS "%s", mac);
}

int vmconf_mac_conflict(struct etcd_client *c, const struct vmconf *conf, struct err *e)
{
    for (unsigned i = 0; i < conf->nnets; i++) {
        char key[TERN_KEY_MAX];
        struct etcd_kv kv;
        etcd_kv_init(&kv);
        vmconf_mac_key(conf->nets[i].mac, key);
        int rc = etcd_get(c, key, 0, &kv, e);
        bool held = !rc && kv.value;
        char holder[16];
        snprintf(holder, sizeof(holder), "%s", held ? kv.value : "");
        etcd_kv_release(&kv);
        if (rc && rc != -ENOENT)
            return rc;
        if (held)
            return err_set(e, EEXIST, "vm %" PRIu32 ": mac %s is used by vm %s", conf->id,
                           conf->nets[i].mac, holder);
    }
    return 0;
}
