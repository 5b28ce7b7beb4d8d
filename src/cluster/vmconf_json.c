/* VM configs, storage definitions and cluster options as JSON, checked
 * field by field. What comes in here is what a REST client sent, so every
 * refusal is one line naming the field and quoting the culprit. */
#include "cluster/vmconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonf.h"

void vmconf_volume_name(uint32_t id, unsigned n, char out[TERN_NAME_MAX + 1])
{
    snprintf(out, TERN_NAME_MAX + 1, "vm-%" PRIu32 "-disk-%u.raw", id, n);
}

/* --- field readers: what prefixes the message ("vm 100", "storage 'x'") */

static int only_keys(json_t *j, const char *const *allowed, const char *what, struct err *e)
{
    char buf[JSONF_PRINTABLE_MAX];
    const char *key = jsonf_unknown_key(j, allowed);
    if (key)
        return err_set(e, EINVAL, "%s: unknown key '%s'", what, jsonf_printable(key, buf));
    return 0;
}

static int get_name(json_t *j, const char *key, bool required, char out[TERN_NAME_MAX + 1],
                    const char *what, struct err *e)
{
    char buf[JSONF_PRINTABLE_MAX];
    const char *s = NULL;
    int rc = jsonf_string(j, key, required, &s, what, e);
    if (rc || !s)
        return rc;
    if (name_check(s, key, NULL) < 0)
        return err_set(e, EINVAL,
                       "%s: '%s' must be 1..%d of letters, digits, '.', "
                       "'_', '-' not starting with '.' or '-', not '%s'",
                       what, key, TERN_NAME_MAX, jsonf_printable(s, buf));
    snprintf(out, TERN_NAME_MAX + 1, "%s", s);
    return 0;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Absolute, no ".." component, no control characters, shorter than max. */
static int check_path(const char *p, size_t max, const char *key, const char *what,
                      struct err *e)
{
    char buf[JSONF_PRINTABLE_MAX];
    if (p[0] != '/')
        return err_set(e, EINVAL, "%s: '%s' must be an absolute path, not '%s'", what, key,
                       jsonf_printable(p, buf));
    if (strlen(p) >= max)
        return err_set(e, EINVAL, "%s: '%s' is longer than %zu characters", what, key,
                       max - 1);
    if (has_control(p))
        return err_set(e, EINVAL, "%s: '%s' must not contain control characters", what,
                       key);
    for (const char *c = p; (c = strstr(c, "..")); c += 2)
        if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
            return err_set(e, EINVAL, "%s: '%s' must not contain '..', not '%s'", what, key,
                           jsonf_printable(p, buf));
    return 0;
}

/* --- VM config */

json_t *vmconf_to_json(const struct vmconf *c)
{
    json_t *disks = json_array();
    for (unsigned i = 0; i < c->ndisks && disks; i++)
        json_array_append_new(disks,
                              json_pack("{s:s, s:s, s:I}", "storage", c->disks[i].storage,
                                        "volume", c->disks[i].volume, "size_mib",
                                        (json_int_t)c->disks[i].size_mib));
    /* "s*": no "name" at all when there is none */
    json_t *j = json_pack("{s:I, s:s*, s:I, s:I, s:s, s:s, s:o}", "id", (json_int_t)c->id,
                          "name", c->name[0] ? c->name : NULL, "memory_mib",
                          (json_int_t)c->memory_mib, "cpus", (json_int_t)c->cpus, "kernel",
                          c->kernel, "cmdline", c->cmdline, "disks", disks);
    if (j && c->nnets)
        json_object_set_new(j, "nets", vmconf_nets_to_json(c));
    return j;
}

static int disk_from_json(json_t *j, struct vmconf *c, unsigned n, struct err *e)
{
    static const char *const keys[] = {"storage", "volume", "size_mib", NULL};
    char what[48];
    snprintf(what, sizeof(what), "vm %" PRIu32 ": disks[%u]", c->id, n);
    if (!json_is_object(j))
        return err_set(e, EINVAL, "%s must be an object", what);
    struct vmconf_disk *d = &c->disks[n];
    int rc = only_keys(j, keys, what, e);
    if (!rc)
        rc = get_name(j, "storage", true, d->storage, what, e);
    if (!rc)
        rc = jsonf_uint(j, "size_mib", true, 1, VMCONF_DISK_MIB_MAX, &d->size_mib, what, e);
    if (rc)
        return rc;
    vmconf_volume_name(c->id, n, d->volume);
    rc = get_name(j, "volume", false, d->volume, what, e);
    for (unsigned i = 0; !rc && i < n; i++)
        if (strcmp(c->disks[i].storage, d->storage) == 0 &&
            strcmp(c->disks[i].volume, d->volume) == 0)
            rc = err_set(e, EINVAL, "%s: volume '%s' on storage '%s' is used twice", what,
                         d->volume, d->storage);
    return rc;
}

static int disks_from_json(json_t *j, struct vmconf *c, const char *what, struct err *e)
{
    json_t *disks = json_object_get(j, "disks");
    if (!disks)
        return 0;
    if (!json_is_array(disks) || json_array_size(disks) > VMCONF_DISKS_MAX)
        return err_set(e, EINVAL, "%s: 'disks' must be an array of at most %d disks", what,
                       VMCONF_DISKS_MAX);
    for (size_t i = 0; i < json_array_size(disks); i++) {
        int rc = disk_from_json(json_array_get(disks, i), c, (unsigned)i, e);
        if (rc)
            return rc;
        c->ndisks++;
    }
    return 0;
}

static int text_fields(json_t *j, struct vmconf *c, const char *what, struct err *e)
{
    const char *kernel = NULL, *cmdline = "";
    int rc = jsonf_string(j, "kernel", true, &kernel, what, e);
    if (!rc)
        rc = check_path(kernel, sizeof(c->kernel), "kernel", what, e);
    if (!rc)
        rc = jsonf_string(j, "cmdline", false, &cmdline, what, e);
    if (rc)
        return rc;
    if (strlen(cmdline) >= VMCONF_CMDLINE_MAX)
        return err_set(e, EINVAL, "%s: 'cmdline' is longer than %d characters", what,
                       VMCONF_CMDLINE_MAX - 1);
    if (has_control(cmdline))
        return err_set(e, EINVAL,
                       "%s: 'cmdline' must not contain a newline or "
                       "other control characters",
                       what);
    snprintf(c->kernel, sizeof(c->kernel), "%s", kernel);
    snprintf(c->cmdline, sizeof(c->cmdline), "%s", cmdline);
    return 0;
}

int vmconf_from_json(json_t *j, struct vmconf *c, struct err *e)
{
    static const char *const keys[] = {"id",      "name",  "memory_mib", "cpus", "kernel",
                                       "cmdline", "disks", "nets",       NULL};
    memset(c, 0, sizeof(*c));
    if (!json_is_object(j))
        return err_set(e, EINVAL, "vm: config must be a json object");
    uint64_t id = 0, mem = 0, cpus = 0;
    int rc = jsonf_uint(j, "id", true, TERN_VMID_MIN, TERN_VMID_MAX, &id, "vm", e);
    if (rc)
        return rc;
    c->id = (uint32_t)id;
    char what[24];
    snprintf(what, sizeof(what), "vm %" PRIu32, c->id);
    rc = only_keys(j, keys, what, e);
    json_t *name = json_object_get(j, "name");
    bool no_name = json_is_null(name) ||
                   (json_is_string(name) && !*json_string_value(name));
    if (!rc && !no_name) /* "" or null: no name */
        rc = get_name(j, "name", false, c->name, what, e);
    if (!rc)
        rc = jsonf_uint(j, "memory_mib", true, 16, 1048576, &mem, what, e);
    if (!rc)
        rc = jsonf_uint(j, "cpus", true, 1, VMCONF_CPUS_MAX, &cpus, what, e);
    if (!rc)
        rc = text_fields(j, c, what, e);
    if (!rc)
        rc = disks_from_json(j, c, what, e);
    if (!rc)
        rc = vmconf_nets_from_json(j, c, what, e);
    c->memory_mib = mem;
    c->cpus = (unsigned)cpus;
    return rc;
}

/* --- storage */

json_t *storage_conf_to_json(const struct storage_conf *s)
{
    return json_pack("{s:s, s:s, s:b}", "name", s->name, "path", s->path, "shared",
                     s->shared);
}

/* Room for "/" + a volume name behind the path. */
#define STORAGE_PATH_MAX (VMCONF_PATH_MAX - TERN_NAME_MAX - 1)

int storage_conf_from_json(json_t *j, struct storage_conf *s, struct err *e)
{
    static const char *const keys[] = {"name", "path", "shared", NULL};
    memset(s, 0, sizeof(*s));
    if (!json_is_object(j))
        return err_set(e, EINVAL, "storage: definition must be a json object");
    int rc = get_name(j, "name", true, s->name, "storage", e);
    if (rc)
        return rc;
    char what[TERN_NAME_MAX + 16];
    snprintf(what, sizeof(what), "storage '%s'", s->name);
    const char *path = NULL;
    rc = only_keys(j, keys, what, e);
    if (!rc)
        rc = jsonf_string(j, "path", true, &path, what, e);
    if (!rc)
        rc = check_path(path, STORAGE_PATH_MAX, "path", what, e);
    if (rc)
        return rc;
    rc = jsonf_bool(j, "shared", false, &s->shared, what, e);
    if (rc)
        return rc;
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') /* "/srv/tern/" is "/srv/tern" */
        n--;
    if (n == 1)
        return err_set(e, EINVAL, "%s: 'path' must not be '/'", what);
    snprintf(s->path, sizeof(s->path), "%.*s", (int)n, path);
    return 0;
}

/* --- cluster options */

void cluster_options_default(struct cluster_options *o)
{
    memset(o, 0, sizeof(*o));
    strcpy(o->migration_type, "secure");
}

json_t *cluster_options_to_json(const struct cluster_options *o)
{
    return json_pack("{s:{s:s, s:s?}}", "migration", "type", o->migration_type, "network",
                     o->migration_network[0] ? o->migration_network : NULL);
}

static int migration_update(json_t *m, struct cluster_options *o, struct err *e)
{
    static const char *const keys[] = {"type", "network", NULL};
    const char *what = "cluster options: migration";
    char buf[JSONF_PRINTABLE_MAX];
    if (!json_is_object(m))
        return err_set(e, EINVAL, "cluster options: 'migration' must be an object");
    int rc = only_keys(m, keys, what, e);
    const char *type = NULL;
    if (!rc)
        rc = jsonf_string(m, "type", false, &type, what, e);
    if (rc)
        return rc;
    if (type && strcmp(type, "secure") != 0 && strcmp(type, "insecure") != 0)
        return err_set(e, EINVAL, "%s: 'type' must be 'secure' or 'insecure', not '%s'",
                       what, jsonf_printable(type, buf));
    if (type)
        snprintf(o->migration_type, sizeof(o->migration_type), "%s", type);
    json_t *net = json_object_get(m, "network");
    if (!net)
        return 0;
    if (json_is_null(net)) {
        o->migration_network[0] = '\0';
        return 0;
    }
    if (!json_is_string(net))
        return err_set(e, EINVAL, "%s: 'network' must be a cidr string or null", what);
    struct err ce;
    if (cidr_check(json_string_value(net), &ce) < 0)
        return err_set(e, EINVAL, "%s: 'network': %s", what, ce.msg);
    snprintf(o->migration_network, sizeof(o->migration_network), "%s",
             json_string_value(net));
    return 0;
}

int cluster_options_update(json_t *j, struct cluster_options *o, struct err *e)
{
    static const char *const keys[] = {"migration", NULL};
    if (!json_is_object(j))
        return err_set(e, EINVAL, "cluster options must be a json object");
    int rc = only_keys(j, keys, "cluster options", e);
    if (rc)
        return rc;
    struct cluster_options next = *o; /* o changes only when all is well */
    json_t *m = json_object_get(j, "migration");
    if (m && (rc = migration_update(m, &next, e)) < 0)
        return rc;
    *o = next;
    return 0;
}

/* --- run state */

static const char *const vm_statuses[] = {"running",  "paused",   "stopped", "migrating",
                                          "incoming", "starting", NULL};

json_t *vmrec_state_to_json(const struct vmrec_state *s)
{
    return json_pack("{s:s, s:s, s:i, s:I, s:I}", "node", s->node, "status", s->status,
                     "pid", s->pid, "since", (json_int_t)s->since, "started",
                     (json_int_t)s->started);
}

int vmrec_state_from_json(json_t *j, struct vmrec_state *s, struct err *e)
{
    memset(s, 0, sizeof(*s));
    char buf[JSONF_PRINTABLE_MAX];
    const char *status = NULL;
    uint64_t pid = 0, since = 0, started = 0;
    if (!json_is_object(j))
        return err_set(e, EINVAL, "vm state must be a json object");
    int rc = get_name(j, "node", true, s->node, "vm state", e);
    if (!rc)
        rc = jsonf_string(j, "status", true, &status, "vm state", e);
    if (!rc)
        rc = jsonf_uint(j, "pid", false, 0, INT32_MAX, &pid, "vm state", e);
    if (!rc)
        rc = jsonf_uint(j, "since", false, 0, INT64_MAX, &since, "vm state", e);
    if (!rc)
        rc = jsonf_uint(j, "started", false, 0, INT64_MAX, &started, "vm state", e);
    if (rc)
        return rc;
    size_t i = 0;
    while (vm_statuses[i] && strcmp(vm_statuses[i], status) != 0)
        i++;
    if (!vm_statuses[i])
        return err_set(e, EINVAL, "vm state: unknown 'status' '%s'",
                       jsonf_printable(status, buf));
    snprintf(s->status, sizeof(s->status), "%s", status);
    s->pid = (int)pid;
    s->since = (int64_t)since;
    s->started = (int64_t)started;
    return 0;
}
