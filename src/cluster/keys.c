/* The etcd key layout: names checked before they go into a key, keys
 * built from them, and the layout version of the cluster. */
#include "cluster/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int keys_build(char key[TERN_KEY_MAX], const char *prefix, const char *name,
               const char *suffix, const char *what, struct err *e)
{
    int rc = name_check(name, what, e);
    if (rc < 0)
        return rc;
    int n = snprintf(key, TERN_KEY_MAX, "%s%s%s", prefix, name, suffix ? suffix : "");
    if (n < 0 || n >= TERN_KEY_MAX)
        return err_set(e, ENAMETOOLONG, "%s %s: key too long", what, name);
    return 0;
}

int cluster_layout_init(struct etcd_client *c, struct err *e)
{
    struct etcd_cas op = {
        .key = TERN_KEY_VERSION, .cmp = ETCD_CMP_ABSENT,
        .new_value = TERN_LAYOUT_VERSION,
    };
    bool created;
    struct etcd_kv now;
    int rc = etcd_cas(c, &op, &created, &now, e);
    if (rc < 0 || created)
        return rc;
    if (!now.value || strcmp(now.value, TERN_LAYOUT_VERSION) != 0)
        rc = err_set(e, EPROTO, "%s is %s: this build knows layout %s only",
                     TERN_KEY_VERSION, now.value ? now.value : "(gone)",
                     TERN_LAYOUT_VERSION);
    etcd_kv_release(&now);
    return rc;
}
