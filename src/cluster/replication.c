/* Replication jobs and their state in etcd (cluster/replication.h). */
#include "cluster/replication.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/owner.h"
#include "cluster/vmconf.h"
#include "common/jsonf.h"

int repl_job_from_json(json_t *j, struct repl_job *job, struct err *e)
{
    static const char *const known[] = {"target", "schedule_s", "rate_mib", "created_ms",
                                        NULL};
    char quoted[JSONF_PRINTABLE_MAX];
    if (!json_is_object(j))
        return err_set(e, EINVAL, "replication: expected a json object");
    const char *key = jsonf_unknown_key(j, known), *target = NULL;
    if (key)
        return err_set(e, EINVAL, "replication: unknown key '%s'",
                       jsonf_printable(key, quoted));
    uint64_t sched = job->schedule_s, rate = job->rate_mib, created = 0;
    int rc = jsonf_string(j, "target", true, &target, "replication", e);
    if (!rc)
        rc = name_check(target, "target node", e);
    if (!rc && json_object_get(j, "schedule_s") &&
        json_integer_value(json_object_get(j, "schedule_s")) != 0)
        rc = jsonf_uint(j, "schedule_s", false, REPL_SCHEDULE_MIN_S, REPL_SCHEDULE_MAX_S,
                        &sched, "replication", e);
    else
        sched = 0;
    if (!rc)
        rc = jsonf_uint(j, "rate_mib", false, 0, 100000, &rate, "replication", e);
    if (!rc)
        rc = jsonf_uint(j, "created_ms", false, 0, INT64_MAX, &created, "replication", e);
    if (rc)
        return rc;
    snprintf(job->target, sizeof(job->target), "%s", target);
    job->schedule_s = (unsigned)sched;
    job->rate_mib = (unsigned)rate;
    job->created_ms = (int64_t)created;
    return 0;
}

json_t *repl_job_to_json(const struct repl_job *job)
{
    return json_pack("{s:s, s:i, s:i, s:I}", "target", job->target, "schedule_s",
                     job->schedule_s, "rate_mib", job->rate_mib, "created_ms",
                     (json_int_t)job->created_ms);
}

json_t *repl_state_to_json(const struct repl_state *st)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:s}", "last_sync_ms",
        (json_int_t)st->last_sync_ms, "duration_ms", (json_int_t)st->duration_ms,
        "next_run_ms", (json_int_t)st->next_run_ms, "bytes", (json_int_t)st->bytes, "syncs",
        (json_int_t)st->syncs, "full", st->full, "error", st->error, "task", st->task);
}

static int job_parse(json_t *j, uint32_t id, void *out, struct err *e)
{
    struct repl_job *job = out;
    memset(job, 0, sizeof(*job));
    job->id = id;
    return repl_job_from_json(j, job, e);
}

static const struct keys_vm_records repl_records = {.prefix = TERN_PREFIX_REPL,
                                                    .absent = "has no replication",
                                                    .size = sizeof(struct repl_job),
                                                    .parse = job_parse};

int repl_job_get(struct etcd_client *c, uint32_t id, unsigned flags, struct repl_job *out,
                 struct err *e)
{
    return keys_vm_record_get(c, &repl_records, id, flags, out, e);
}

int repl_job_list(struct etcd_client *c, unsigned flags, struct repl_job **out, size_t *n,
                  struct err *e)
{
    void *list;
    int rc = keys_vm_record_list(c, &repl_records, flags, &list, n, e);
    *out = list;
    return rc;
}

/* Whether vm has a disk on a storage that is not shared: only such a disk
 * has something to replicate (a shared one is on every node already). */
static int check_local_disk(struct etcd_client *c, const struct vmconf *vm, struct err *e)
{
    for (unsigned i = 0; i < vm->ndisks; i++) {
        struct storage_conf s;
        int rc = storage_get(c, vm->disks[i].storage, 0, &s, e);
        if (rc)
            return rc;
        if (!s.shared)
            return 0;
    }
    return err_set(
        e, EINVAL,
        "vm %u has no disk on a storage that is not shared: nothing to replicate", vm->id);
}

static int check_job(struct etcd_client *c, const struct repl_job *job, struct err *e)
{
    struct vmconf vm;
    char owner[TERN_NAME_MAX + 1], key[TERN_KEY_MAX];
    int rc = vmconf_get(c, job->id, 0, &vm, e);
    if (!rc)
        rc = vmowner_get(c, job->id, 0, owner, NULL, e);
    if (!rc && strcmp(owner, job->target) == 0)
        rc = err_set(e, EINVAL, "vm %u runs on node '%s': the target must be another node",
                     job->id, job->target);
    if (!rc)
        rc = keys_build(key, TERN_PREFIX_NODES, job->target, NULL, "node name", e);
    if (!rc) {
        struct etcd_kv kv;
        etcd_kv_init(&kv);
        rc = etcd_get(c, key, 0, &kv, e);
        if (rc == -ENOENT)
            rc = err_set(e, ENOENT, "target node '%s' is not a member of the cluster",
                         job->target);
        etcd_kv_release(&kv);
    }
    return rc ? rc : check_local_disk(c, &vm, e);
}

int repl_job_add(struct etcd_client *c, const struct repl_job *job, struct err *e)
{
    char key[TERN_KEY_MAX], vkey[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_REPL, job->id, NULL, e);
    if (!rc)
        rc = keys_build_vm(vkey, TERN_PREFIX_VMS, job->id, "/config", e);
    if (!rc)
        rc = check_job(c, job, e);
    if (rc)
        return rc;
    json_t *j = repl_job_to_json(job);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    struct etcd_txn_cmp cmps[] = {{.key = key, .cmp = ETCD_CMP_ABSENT},
                                  {.key = vkey, .cmp = ETCD_CMP_PRESENT}};
    struct etcd_txn_op op = {.key = key, .value = text};
    bool done = false;
    rc = text ? etcd_txn(c, cmps, 2, &op, 1, &done, e)
              : err_set(e, ENOMEM, "replication: out of memory");
    free(text);
    if (!rc && !done) {
        struct repl_job now;
        rc = repl_job_get(c, job->id, 0, &now, e) == 0
                 ? err_set(e, EEXIST, "vm %u is replicated to node '%s' already", job->id,
                           now.target)
                 : err_set(e, ENOENT, "vm %u does not exist", job->id);
    }
    return rc;
}

int repl_job_remove(struct etcd_client *c, uint32_t id, struct err *e)
{
    char key[TERN_KEY_MAX], skey[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_REPL, id, NULL, e);
    if (!rc)
        rc = keys_build_vm(skey, TERN_PREFIX_REPLSTATE, id, NULL, e);
    if (rc)
        return rc;
    struct etcd_txn_cmp cmp = {.key = key, .cmp = ETCD_CMP_PRESENT};
    struct etcd_txn_op ops[] = {{.key = key}, {.key = skey}};
    bool done = false;
    rc = etcd_txn(c, &cmp, 1, ops, 2, &done, e);
    if (!rc && !done)
        rc = err_set(e, ENOENT, "vm %u has no replication", id);
    return rc;
}

static int64_t num(json_t *j, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(j, key));
}

int repl_state_get(struct etcd_client *c, uint32_t id, unsigned flags,
                   struct repl_state *out, struct err *e)
{
    char key[TERN_KEY_MAX];
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    memset(out, 0, sizeof(*out));
    int rc = keys_build_vm(key, TERN_PREFIX_REPLSTATE, id, NULL, e);
    if (!rc)
        rc = etcd_get(c, key, flags, &kv, e);
    json_t *j = rc ? NULL : json_loads(kv.value ? kv.value : "", 0, NULL);
    if (!rc && !json_is_object(j))
        rc = err_set(e, EPROTO, "%s: not a json object", key);
    if (!rc) {
        out->last_sync_ms = num(j, "last_sync_ms");
        out->duration_ms = num(j, "duration_ms");
        out->next_run_ms = num(j, "next_run_ms");
        out->bytes = (uint64_t)num(j, "bytes");
        out->syncs = (uint64_t)num(j, "syncs");
        out->full = json_is_true(json_object_get(j, "full"));
        const char *s = json_string_value(json_object_get(j, "error"));
        snprintf(out->error, sizeof(out->error), "%s", s ? s : "");
        s = json_string_value(json_object_get(j, "task"));
        snprintf(out->task, sizeof(out->task), "%s", s ? s : "");
    }
    json_decref(j);
    etcd_kv_release(&kv);
    return rc;
}

int repl_state_put(struct etcd_client *c, uint32_t id, const struct repl_state *st,
                   struct err *e)
{
    char key[TERN_KEY_MAX];
    int rc = keys_build_vm(key, TERN_PREFIX_REPLSTATE, id, NULL, e);
    json_t *j = rc ? NULL : repl_state_to_json(st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!rc)
        rc = text ? etcd_put(c, key, text, 0, e)
                  : err_set(e, ENOMEM, "replication: out of memory");
    free(text);
    return rc;
}
