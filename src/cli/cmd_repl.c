/* tern replication create, list, status, run, delete: a VM's local disks
 * kept synced to another node (docs/replication.md, docs/api.md
 * "Replication"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"

/* "15m", "1h", "90s", "none": seconds (0 for none) */
static int check_schedule(const char *text, uint64_t *s)
{
    char *end;
    if (strcmp(text, "none") == 0) {
        *s = 0;
        return EXIT_OK;
    }
    unsigned long long n = strtoull(text, &end, 10);
    unsigned mult = strcmp(end, "s") == 0   ? 1
                    : strcmp(end, "m") == 0 ? 60
                    : strcmp(end, "h") == 0 ? 3600
                                            : 0;
    if (end == text || !mult || n * mult < 10 || n * mult > 7 * 86400)
        return usage_error("--schedule '%s': expected 10s..168h (as 90s, 15m, 2h) or none",
                           text);
    *s = n * mult;
    return EXIT_OK;
}

static int run_create(struct call *k)
{
    uint32_t id;
    uint64_t sched = 900, rate = 0;
    const char *target = call_opt(k, "--target"), *s = call_opt(k, "--schedule"),
               *r = call_opt(k, "--rate");
    int rc = check_vmid(k->arg[0], &id);
    if (rc == EXIT_OK)
        rc = check_name("--target", target);
    if (rc == EXIT_OK && s)
        rc = check_schedule(s, &sched);
    if (rc == EXIT_OK && r)
        rc = check_uint("--rate", r, 1, 100000, &rate);
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/replications/%u", id);
    json_t *ans;
    rc = api(k, "POST", path,
             json_pack("{s:s, s:I, s:I}", "target", target, "schedule_s", (json_int_t)sched,
                       "rate_mib", (json_int_t)rate),
             &ans);
    if (rc != EXIT_OK)
        return rc;
    char every[32] = "on demand only";
    if (sched)
        snprintf(every, sizeof(every), "every %llu s", (unsigned long long)sched);
    return print_answer(k, ans, "vm %u is replicated to node '%s' (%s)", id, target, every);
}

static void when(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    snprintf(out, size, "-");
    if (ms > 0 && localtime_r(&t, &tm))
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_row(FILE *f, json_t *v)
{
    json_t *st = json_object_get(v, "state");
    char last[32], next[32];
    when(json_integer_value(json_object_get(st, "last_sync_ms")), last, sizeof(last));
    when(json_integer_value(json_object_get(st, "next_run_ms")), next, sizeof(next));
    fprintf(f, "%-8lld %-10s %-10s %-9lld %-19s %-9.1f %-19s %s\n",
            (long long)json_integer_value(json_object_get(v, "vmid")),
            jstr(v, "target", "-"), jstr(v, "owner", "-"),
            (long long)json_integer_value(json_object_get(v, "schedule_s")), last,
            json_number_value(json_object_get(st, "bytes")) / (1024.0 * 1024.0), next,
            jstr(st, "error", "")[0] ? jstr(st, "error", "") : "");
}

static void print_header(FILE *f)
{
    fprintf(f, "%-8s %-10s %-10s %-9s %-19s %-9s %-19s %s\n", "VMID", "TARGET", "OWNER",
            "EVERY_S", "LAST SYNC", "MIB", "NEXT RUN", "LAST ERROR");
}

static void print_list(FILE *f, const json_t *body)
{
    size_t i;
    json_t *v;
    print_header(f);
    json_array_foreach(json_object_get(body, "replications"), i, v)
        print_row(f, v);
}

static int run_list(struct call *k)
{
    json_t *ans;
    int rc = api_get(k, "/replications", &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_list) : rc;
}

static void print_one(FILE *f, const json_t *body)
{
    json_t *st = json_object_get(body, "state");
    print_header(f);
    print_row(f, (json_t *)body);
    if (json_is_object(st))
        fprintf(f, "syncs %lld, last: %s, %lld bytes sent in %lld ms, task %s\n",
                (long long)json_integer_value(json_object_get(st, "syncs")),
                json_is_true(json_object_get(st, "full")) ? "full" : "delta",
                (long long)json_integer_value(json_object_get(st, "bytes")),
                (long long)json_integer_value(json_object_get(st, "duration_ms")),
                jstr(st, "task", "-"));
    else
        fprintf(f, "no sync yet\n");
}

static int run_status(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    json_t *ans;
    snprintf(path, sizeof(path), "/replications/%u", id);
    rc = api_get(k, path, &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_one) : rc;
}

static int run_run(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    char path[64], upid[160];
    json_t *ans;
    snprintf(path, sizeof(path), "/replications/%u/run", id);
    rc = api(k, "POST", path, NULL, &ans);
    if (rc != EXIT_OK)
        return rc;
    const char *task = jstr(ans, "task", NULL);
    if (k->json || !task || call_flag(k, "--no-follow"))
        return print_answer(k, ans, "sync of vm %u: task %s", id, task ? task : "-");
    snprintf(upid, sizeof(upid), "%s", task);
    json_decref(ans);
    struct follow f = {.catch_sigint = true};
    return task_follow(k, upid, &f);
}

static int run_delete(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/replications/%u", id);
    return api_change(k, "DELETE", path,
                      "vm %u is not replicated any more (replica removed)", id);
}

static const struct cmd_opt create_opts[] = {
    {"--target", "NODE", "the node that keeps the replica", true, false},
    {"--schedule", "EVERY", "how often it syncs: 90s, 15m, 2h, or none (default 15m)",
     false, false},
    {"--rate", "MIB/S", "recorded; the limit itself is not built yet", false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt run_opts[] = {
    {"--no-follow", NULL, "print the task id and exit", false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_repl[] = {
    {"replication", "create", "VMID --target NODE [--schedule EVERY] [--rate MIB/S]", 1, 1,
     "keep a VM's local disks synced to another node",
     "Each disk of the VM on a storage that is not shared gets a replica on the\n"
     "target (<volume>.replica in that storage's directory there). A sync copies\n"
     "only the blocks written since the last one; the first is full. The VM's\n"
     "owner runs a sync on the schedule while the VM runs, or on `run`.\n",
     "  tern replication create 100 --target n2\n"
     "  tern replication create 100 --target n2 --schedule 1h\n",
     create_opts, run_create},
    {"replication", "list", "", 0, 0, "the replications: target, last sync, next run", NULL,
     "  tern replication list\n", NULL, run_list},
    {"replication", "status", "VMID", 1, 1, "one replication and its last sync", NULL,
     "  tern replication status 100\n", NULL, run_status},
    {"replication", "run", "VMID [--no-follow]", 1, 1, "sync now (a task)",
     "A stopped VM is synced through a tern-vmm built paused (the guest never\n"
     "runs), stopped again after.\n",
     "  tern replication run 100\n", run_opts, run_run},
    {"replication", "delete", "VMID", 1, 1, "end a replication and remove its replica",
     NULL, "  tern replication delete 100\n", NULL, run_delete},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
