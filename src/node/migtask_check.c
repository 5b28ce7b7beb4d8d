/* The pre-checks of `tern vm migrate`, in the order an operator would ask
 * them; each refusal is one line naming what is wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/ha.h"
#include "cluster/node.h"
#include "cluster/vmconf.h"
#include "common/jsonf.h"
#include "node/ctx.h"
#include "node/info.h"
#include "node/migtask.h"
#include "node/vmops.h"

void migtask_plan_init(struct migtask_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->downtime_ms = 100;
    p->checks = json_array();
}

void migtask_plan_release(struct migtask_plan *p)
{
    json_decref(p->checks);
    p->checks = NULL;
}

static int body_keys(json_t *body, struct err *e)
{
    static const char *const known[] = {
        "target",      "online",  "bwlimit_mib",      "migration_type", "migration_network",
        "downtime_ms", "dry_run", "with_local_disks", "keep_source",    NULL};
    const char *key = jsonf_unknown_key(body, known);
    char quoted[JSONF_PRINTABLE_MAX];
    if (key)
        return err_set(e, EINVAL, "migrate: unknown option '%s'",
                       jsonf_printable(key, quoted));
    return 0;
}

/* An optional string that fits out (null: as absent). */
static int get_text(json_t *body, const char *key, char *out, size_t size, struct err *e)
{
    const char *v = NULL;
    int rc = json_is_null(json_object_get(body, key))
                 ? 0
                 : jsonf_string(body, key, false, &v, "migrate", e);
    if (rc || !v)
        return rc;
    if (strlen(v) >= size)
        return err_set(e, EINVAL,
                       "migrate: '%s' must be a string of at most %zu characters", key,
                       size - 1);
    snprintf(out, size, "%s", v);
    return 0;
}

int migtask_plan_parse(struct migtask_plan *p, uint32_t vmid, const char *source,
                       json_t *body, struct err *e)
{
    p->vmid = vmid;
    snprintf(p->source, sizeof(p->source), "%s", source);
    uint64_t bw = 0, downtime = p->downtime_ms;
    int rc = body ? body_keys(body, e)
                  : err_set(e, EINVAL, "migrate: a body with 'target' is required");
    if (!rc)
        rc = get_text(body, "target", p->target, sizeof(p->target), e);
    if (!rc && !p->target[0])
        rc = err_set(e, EINVAL, "migrate: 'target' (a node name or \"auto\") is required");
    if (!rc)
        rc = jsonf_bool(body, "online", false, &p->online, "migrate", e);
    if (!rc)
        rc = jsonf_bool(body, "dry_run", false, &p->dry_run, "migrate", e);
    if (!rc)
        rc = jsonf_bool(body, "with_local_disks", false, &p->with_local_disks, "migrate",
                        e);
    if (!rc)
        rc = jsonf_bool(body, "keep_source", false, &p->keep_source, "migrate", e);
    if (!rc)
        rc = jsonf_uint(body, "bwlimit_mib", false, 0, 1u << 20, &bw, "migrate", e);
    if (!rc)
        rc = jsonf_uint(body, "downtime_ms", false, 1, 60000, &downtime, "migrate", e);
    if (!rc)
        rc = get_text(body, "migration_type", p->type, sizeof(p->type), e);
    char quoted[JSONF_PRINTABLE_MAX];
    if (!rc && p->type[0] && strcmp(p->type, "secure") != 0 &&
        strcmp(p->type, "insecure") != 0)
        rc = err_set(e, EINVAL,
                     "migrate: 'migration_type' must be secure or insecure, not '%s'",
                     jsonf_printable(p->type, quoted));
    if (!rc)
        rc = get_text(body, "migration_network", p->network, sizeof(p->network), e);
    if (!rc && p->network[0])
        rc = cidr_check(p->network, e);
    p->bwlimit_mib = bw;
    p->downtime_ms = (uint32_t)downtime;
    p->auto_target = strcmp(p->target, "auto") == 0;
    if (!rc && !p->auto_target)
        rc = name_check(p->target, "target node", e);
    return rc;
}

/* Records a check; the first failed one also becomes the answer (e and
 * p->failed): the checks after it still run, so that a dry run shows every
 * outcome, and a refusal names the same check as if they had stopped. */
static int note(struct migtask_plan *p, const char *check, int rc, struct err *e,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int note(struct migtask_plan *p, const char *check, int rc, struct err *e,
                const char *fmt, ...)
{
    char detail[sizeof(e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_array_append_new(p->checks, json_pack("{s:s, s:b, s:s}", "check", check, "ok", !rc,
                                               "detail", detail));
    if (rc && !p->failed) {
        err_set(e, -rc, "%s", detail);
        p->failed = rc;
        p->first = *e;
    }
    return rc;
}

/* The first failed check, after all have run: steps after it (a lookup
 * that answers "not found" as a fact) may have written into e. */
static int answer(const struct migtask_plan *p, int rc, struct err *e)
{
    if (!rc)
        return 0;
    *e = p->first;
    return p->failed;
}

/* The first failure of two outcomes. */
static int first(int rc, int next)
{
    return rc ? rc : next;
}

static json_t *node_info(const struct node_entries *l, const char *name, bool *online)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0) {
            *online = l->items[i].online;
            return json_loads(l->items[i].info ? l->items[i].info : "{}", 0, NULL);
        }
    return NULL;
}

static json_int_t info_int(json_t *info, const char *key)
{
    return json_integer_value(json_object_get(info, key));
}

static const char *info_text(json_t *info, const char *key)
{
    const char *s = json_string_value(json_object_get(info, key));
    return s ? s : "";
}

static int check_vm(struct migtask_plan *p, struct node_ctx *x, struct etcd_client *c,
                    struct err *e)
{
    int rc = vmops_spec_load(c, p->vmid, p->source, &p->spec, e);
    if (rc)
        return note(p, "vm", rc, e, "%s", e->msg);
    struct vmm_info info;
    vmm_info(x->vmms, p->vmid, &info);
    p->running = info.present;
    if (info.present && strcmp(info.status, "running") != 0 &&
        strcmp(info.status, "paused") != 0)
        return note(p, "vm", -EBUSY, e, "vm %u is %s: wait until it is running", p->vmid,
                    info.status);
    if (info.present && !p->online)
        return note(p, "vm", -EPERM, e,
                    "vm %u is running: use --online for a live "
                    "migration, or stop it for an offline one",
                    p->vmid);
    return note(p, "vm", 0, e, "vm %u is %s on node '%s'", p->vmid,
                info.present ? info.status : "stopped", p->source);
}

static int check_fit(struct migtask_plan *p, const struct node_entries *l, struct err *e);

/* Whether node i could take the VM: 0, or -errno with why in e. */
static int try_node(const struct migtask_plan *p, const struct node_entries *l, size_t i,
                    struct err *e)
{
    if (!l->items[i].online)
        return err_set(e, EHOSTUNREACH, "offline");
    struct migtask_plan tmp = *p;
    tmp.checks = json_array();
    tmp.failed = 0; /* e is this node's first refusal */
    tmp.auto_target = false;
    snprintf(tmp.target, sizeof(tmp.target), "%s", l->items[i].name);
    int rc = answer(&tmp, check_fit(&tmp, l, e), e);
    json_decref(tmp.checks);
    return rc;
}

/* auto: the node other than the source with the most free memory among
 * those that pass every check; when none does, why not, node by node. */
static int pick_auto(struct migtask_plan *p, const struct node_entries *l, struct err *e)
{
    json_int_t best = -1;
    char why[sizeof(e->msg)] = "";
    for (size_t i = 0; i < l->count; i++) {
        const char *name = l->items[i].name;
        if (strcmp(name, p->source) == 0)
            continue;
        bool online;
        struct err no;
        json_t *info = node_info(l, name, &online);
        json_int_t free_b = info ? info_int(info, "memory_free") : 0;
        json_decref(info);
        if (try_node(p, l, i, &no)) {
            size_t n = strlen(why);
            if (n + 8 < sizeof(why)) /* a long list is cut, never overrun */
                snprintf(why + n, sizeof(why) - n, "%s%s: %.*s", n ? "; " : "", name,
                         (int)(sizeof(why) - n - 8), no.msg);
        } else if (free_b > best) {
            best = free_b;
            snprintf(p->target, sizeof(p->target), "%s", name);
        }
    }
    if (best < 0)
        return note(p, "target", -EHOSTUNREACH, e,
                    "auto: no node but '%.63s' passes "
                    "every check%s%.400s",
                    p->source, why[0] ? ": " : "", why);
    return 0;
}

static int check_target(struct migtask_plan *p, const struct node_entries *l, struct err *e)
{
    if (p->auto_target && pick_auto(p, l, e))
        return -EHOSTUNREACH;
    bool online = false;
    json_t *info = node_info(l, p->target, &online);
    json_decref(info);
    if (!info)
        return note(p, "target", -ENOENT, e, "node '%s' is not in the cluster", p->target);
    if (strcmp(p->target, p->source) == 0)
        return note(p, "target", -EINVAL, e, "node '%s' is the source: pick another node",
                    p->target);
    if (!online)
        return note(p, "target", -EHOSTUNREACH, e, "node '%s' is offline", p->target);
    return note(p, "target", 0, e, "node '%s'%s is online", p->target,
                p->auto_target ? " (auto: the most free memory of the nodes that pass "
                                 "every check)"
                               : "");
}

/* The reserve is for the target's tern-vmm itself and the host beside the
 * guest's RAM: the line says so, so that a refusal is not a puzzle. */
static int check_memory(struct migtask_plan *p, json_t *dst, struct err *e)
{
    long long free_mib = (long long)(info_int(dst, "memory_free") >> 20);
    unsigned long long vm = (unsigned long long)p->spec.conf.memory_mib;
    long long need = (long long)vm + MIGTASK_RESERVE_MIB;
    if (free_mib < need)
        return note(p, "memory", -ENOMEM, e,
                    "node '%s' has %lld MiB free; vm %u needs %lld MiB: %llu for the "
                    "vm + %d reserve (tern-vmm and the host)",
                    p->target, free_mib, p->vmid, need, vm, MIGTASK_RESERVE_MIB);
    return note(p, "memory", 0, e,
                "node '%s' has %lld MiB free; vm %u needs %lld MiB: %llu for the vm + %d "
                "reserve",
                p->target, free_mib, p->vmid, need, vm, MIGTASK_RESERVE_MIB);
}

/* tern-vmm runs VMs with the "host" CPU model: the target's CPU must be
 * the same model for the guest's CPUID to stay true. */
static int check_cpu(struct migtask_plan *p, json_t *src, json_t *dst, struct err *e)
{
    if (strcmp(info_text(src, "cpu_model"), info_text(dst, "cpu_model")) != 0)
        return note(p, "cpu", -EPERM, e,
                    "cpu model of vm %u ('host': %s) is not supported "
                    "by node '%s' (%s)",
                    p->vmid, info_text(src, "cpu_model"), p->target,
                    info_text(dst, "cpu_model"));
    return note(p, "cpu", 0, e, "same cpu model: %s", info_text(dst, "cpu_model"));
}

static long version_number(const char *v)
{
    unsigned a = 0, b = 0, c = 0;
    if (sscanf(v, "%u.%u.%u", &a, &b, &c) < 1)
        return -1;
    return (long)a * 1000000 + (long)b * 1000 + (long)c;
}

static int check_version(struct migtask_plan *p, json_t *dst, struct err *e)
{
    const char *theirs = info_text(dst, "version");
    if (version_number(theirs) < version_number(TERN_VERSION))
        return note(p, "version", -EPERM, e,
                    "node '%s' runs tern %s, older than this node's " TERN_VERSION,
                    p->target, theirs[0] ? theirs : "(unknown)");
    return note(p, "version", 0, e, "node '%s' runs tern %s", p->target, theirs);
}

static int check_disks(struct migtask_plan *p, struct err *e)
{
    char detail[sizeof(e->msg)];
    int rc = migtask_disks_check(p, detail, sizeof(detail), e);
    return note(p, "disks", rc, e, "%s", detail);
}

/* The target's tern-vmm loads the state of every device the VM has: it
 * must know each model, and take as many of each (its node info says). */
static int check_devices(struct migtask_plan *p, json_t *dst, struct err *e)
{
    json_t *can = json_object_get(dst, "devices"), *n;
    if (!json_is_object(can))
        return note(p, "devices", -EPERM, e,
                    "node '%s' does not say which devices it "
                    "supports",
                    p->target);
    json_t *has = vmm_devices_used(&p->spec);
    const char *model;
    int rc = has ? 0 : note(p, "devices", -ENOMEM, e, "out of memory");
    json_object_foreach(has, model, n) {
        json_int_t need = json_integer_value(n);
        json_int_t max = json_integer_value(json_object_get(can, model));
        if (need <= max)
            continue;
        char supports[48] = "none";
        if (max > 0)
            snprintf(supports, sizeof(supports), "at most %lld", (long long)max);
        rc = note(p, "devices", -EPERM, e,
                  "vm %u has %lld %s device(s); node '%s' supports "
                  "%s",
                  p->vmid, (long long)need, model, p->target, supports);
        break;
    }
    json_decref(has);
    if (rc)
        return rc;
    return note(p, "devices", 0, e,
                "serial console and %u virtio-blk disk(s): node '%s' "
                "takes them",
                p->spec.conf.ndisks, p->target);
}

/* Every NIC's bridge among those the target offers (its node info). */
static int check_bridges(struct migtask_plan *p, json_t *dst, struct err *e)
{
    const struct vmconf *c = &p->spec.conf;
    json_t *offered = json_object_get(dst, "bridges");
    for (unsigned i = 0; i < c->nnets; i++) {
        bool found = false;
        size_t k;
        json_t *b;
        json_array_foreach(offered, k, b)
            found |= json_is_string(b) &&
                     strcmp(json_string_value(b), c->nets[i].bridge) == 0;
        if (!found)
            return note(p, "bridges", -EPERM, e, "vm %u: bridge '%s' is not on node '%s'",
                        p->vmid, c->nets[i].bridge, p->target);
    }
    return note(p, "bridges", 0, e, "%u nic(s): node '%s' has their bridges", c->nnets,
                p->target);
}

static int check_lock(struct migtask_plan *p, struct etcd_client *c, struct err *e)
{
    char key[TERN_KEY_MAX];
    snprintf(key, sizeof(key), TERN_PREFIX_LOCKS "%u", p->vmid);
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_get(c, key, 0, &kv, e);
    char holder[VMLOCK_HOLDER_MAX + 8];
    vmops_holder_text(kv.value ? kv.value : "", holder, sizeof(holder));
    etcd_kv_release(&kv);
    if (!rc)
        return note(p, "lock", -EBUSY, e, "vm %u is locked by %s", p->vmid, holder);
    if (rc != -ENOENT)
        return note(p, "lock", rc, e, "%s", e->msg);
    return note(p, "lock", 0, e, "vm %u is not locked", p->vmid);
}

/* The address inside the migration network, or the host of the target's
 * migration_address without one. */
static int check_address(struct migtask_plan *p, json_t *dst, struct err *e)
{
    if (!p->network[0]) {
        const char *ma = info_text(dst, "migration_address");
        const char *colon = strrchr(ma, ':');
        size_t len = colon ? (size_t)(colon - ma) : strlen(ma);
        snprintf(p->address, sizeof(p->address), "%.*s", (int)len, ma);
        return note(p, "network", 0, e, "migration address %s (no migration network set)",
                    p->address);
    }
    json_t *addrs = json_object_get(dst, "addresses"), *a;
    size_t i;
    unsigned found = 0;
    char list[256] = "";
    json_array_foreach(addrs, i, a) {
        bool inside = false;
        struct err ignored;
        const char *s = json_string_value(a);
        if (!s || cidr_contains(p->network, s, &inside, &ignored) < 0 || !inside)
            continue;
        if (found++ == 0)
            snprintf(p->address, sizeof(p->address), "%s", s);
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", s);
    }
    if (found == 0)
        return note(p, "network", -EADDRNOTAVAIL, e,
                    "node '%s' has no address in "
                    "migration network %s",
                    p->target, p->network);
    if (found > 1)
        return note(p, "network", -EADDRNOTAVAIL, e,
                    "node '%s' has %u addresses in migration "
                    "network %s (%s): want exactly one",
                    p->target, found, p->network, list);
    return note(p, "network", 0, e, "migration address %s in %s", p->address, p->network);
}

static int check_quorum_options(struct migtask_plan *p, struct etcd_client *c,
                                struct err *e)
{
    struct cluster_options o;
    int rc = cluster_options_get(c, 0, &o, e);
    if (rc)
        return note(p, "quorum", rc, e, "%s", e->msg);
    if (!p->type[0])
        snprintf(p->type, sizeof(p->type), "%s",
                 o.migration_type[0] ? o.migration_type : "secure");
    if (!p->network[0])
        snprintf(p->network, sizeof(p->network), "%s", o.migration_network);
    return note(p, "quorum", 0, e, "cluster quorate");
}

/* A node in maintenance takes no VMs (node/maintenance.c). */
static int check_maintenance(struct migtask_plan *p, struct err *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(p->maint, i, v)
        if (strcmp(json_string_value(v), p->target) == 0)
            return note(p, "maintenance", -EBUSY, e,
                        "node '%s' is in maintenance: it takes no vms", p->target);
    return note(p, "maintenance", 0, e, "node '%s' is not in maintenance", p->target);
}

/* The checks of the target node (p->target) beyond its being online: all
 * of them run; the first failure is the answer. */
static int check_fit(struct migtask_plan *p, const struct node_entries *l, struct err *e)
{
    bool online;
    json_t *src = node_info(l, p->source, &online);
    json_t *dst = node_info(l, p->target, &online);
    int rc = check_maintenance(p, e);
    if (!src || !dst)
        rc = first(rc, note(p, "target", -ENOENT, e, "node records missing"));
    if (src && dst) {
        rc = first(rc, check_memory(p, dst, e));
        rc = first(rc, check_cpu(p, src, dst, e));
        rc = first(rc, check_version(p, dst, e));
        rc = first(rc, check_disks(p, e));
        rc = first(rc, check_devices(p, dst, e));
        rc = first(rc, check_bridges(p, dst, e));
        rc = first(rc, check_address(p, dst, e));
    }
    json_decref(src);
    json_decref(dst);
    return rc;
}

/* A refused target that is still a node other than the source gets the
 * other checks too (an offline node's record says enough for them). */
static int check_nodes(struct migtask_plan *p, const struct node_entries *l, struct err *e)
{
    int rc = check_target(p, l, e);
    bool online;
    json_t *info = p->target[0] ? node_info(l, p->target, &online) : NULL;
    bool known = info && strcmp(p->target, p->source) != 0;
    json_decref(info);
    return known ? first(rc, check_fit(p, l, e)) : rc;
}

int migtask_plan_check(struct migtask_plan *p, struct node_ctx *x, struct etcd_client *c,
                       struct err *e)
{
    /* without quorum or the VM's spec no other check can say anything */
    int rc = check_quorum_options(p, c, e);
    if (rc)
        return rc;
    rc = check_lock(p, c, e);
    rc = first(rc, check_vm(p, x, c, e));
    if (!p->spec.conf.memory_mib) /* no spec loaded: a VM's memory is never 0 */
        return answer(p, rc, e);
    struct node_entries l;
    node_entries_init(&l);
    int got = node_list(c, 0, &l, e);
    if (!got)
        got = ha_maint_list(c, 0, &p->maint, e);
    if (!got)
        rc = first(rc, check_nodes(p, &l, e));
    node_entries_release(&l);
    json_decref(p->maint); /* only the checks need it */
    p->maint = NULL;
    return got ? got : answer(p, rc, e);
}

void migtask_plan_describe(const struct migtask_plan *p, char *out, size_t size)
{
    if (!p->running && migtask_disks_local(p)) {
        snprintf(out, size,
                 "offline migration of stopped vm %u from node '%s' to node '%s' over %s "
                 "(%s): its %u local disk(s) are copied by a migration of the vm built "
                 "paused (the guest never runs), then it is stopped on node '%s'",
                 p->vmid, p->source, p->target, p->address, p->type, migtask_disks_local(p),
                 p->target);
        return;
    }
    if (!p->running) {
        snprintf(out, size,
                 "offline migration of stopped vm %u from node '%s' to node '%s': "
                 "the owner moves; its disks are on shared storage, nothing to copy",
                 p->vmid, p->source, p->target);
        return;
    }
    char bw[48] = "unlimited";
    if (p->bwlimit_mib)
        snprintf(bw, sizeof(bw), "%llu MiB/s", (unsigned long long)p->bwlimit_mib);
    int n = snprintf(out, size,
                     "live migration of vm %u (%llu MiB, %u vcpu(s)) from node '%s' to "
                     "node '%s' over %s (%s), downtime limit %u ms, bandwidth %s",
                     p->vmid, (unsigned long long)p->spec.conf.memory_mib,
                     p->spec.conf.cpus, p->source, p->target, p->address, p->type,
                     p->downtime_ms, bw);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < p->spec.conf.ndisks; i++)
        bytes += p->disk_bytes[i];
    if (migtask_disks_local(p) && n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n,
                 "; %u local disk(s) mirrored over nbd first: %.1f MiB allocated to copy",
                 migtask_disks_local(p), (double)bytes / (1 << 20));
}
