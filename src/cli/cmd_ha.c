/* tern ha add, remove, status: which VMs the cluster restarts elsewhere
 * when their node is lost (docs/api.md, "HA"). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"

static int run_ha_add(struct call *k)
{
    uint32_t id;
    uint64_t restart = 1, relocate = 1;
    const char *r = call_opt(k, "--max-restart"), *l = call_opt(k, "--max-relocate");
    int rc = check_vmid(k->arg[0], &id);
    if (rc == EXIT_OK && r)
        rc = check_uint("--max-restart", r, 0, 10, &restart);
    if (rc == EXIT_OK && l)
        rc = check_uint("--max-relocate", l, 0, 10, &relocate);
    json_t *group = json_array();
    const char *g;
    for (int i = 0; rc == EXIT_OK && (g = call_opt_nth(k, "--group", i)); i++) {
        char list[512];
        snprintf(list, sizeof(list), "%s", g);
        char *save = NULL;
        for (char *n = strtok_r(list, ",", &save); n && rc == EXIT_OK;
             n = strtok_r(NULL, ",", &save)) {
            rc = check_name("--group node", n);
            json_array_append_new(group, json_string(n));
        }
    }
    if (rc != EXIT_OK) {
        json_decref(group);
        return rc;
    }
    char path[64];
    snprintf(path, sizeof(path), "/ha/%u", id);
    json_t *ans;
    rc = api(k, "POST", path,
             json_pack("{s:I, s:I, s:o}", "max_restart", (json_int_t)restart,
                       "max_relocate", (json_int_t)relocate, "group", group),
             &ans);
    if (rc != EXIT_OK)
        return rc;
    return print_answer(k, ans, "vm %u is HA (max_restart %llu, max_relocate %llu%s%s)", id,
                        (unsigned long long)restart, (unsigned long long)relocate,
                        json_array_size(json_object_get(ans, "group")) ? ", group " : "",
                        call_opt(k, "--group") ? call_opt(k, "--group") : "");
}

static int run_ha_remove(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/ha/%u", id);
    return api_change(k, "DELETE", path, "vm %u is not HA any more", id);
}

static void print_status(FILE *f, const json_t *body)
{
    json_t *items = json_object_get(body, "ha");
    fprintf(f, "%-8s %-9s %-10s %-10s %s\n", "VMID", "STATE", "NODE", "OWNER",
            "LAST EVENT");
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v) {
        json_t *st = json_object_get(v, "ha_state");
        char when[32] = "";
        time_t t = (time_t)json_integer_value(json_object_get(st, "time"));
        struct tm tm;
        if (t && localtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S ", &tm);
        fprintf(f, "%-8lld %-9s %-10s %-10s %s%s\n",
                (long long)json_integer_value(json_object_get(v, "vmid")),
                jstr(st, "state", "-"),
                jstr(st, "node", "-")[0] ? jstr(st, "node", "-") : "-",
                jstr(v, "owner", "-"), when, jstr(st, "event", ""));
    }
}

static int run_ha_status(struct call *k)
{
    json_t *ans;
    int rc = api_get(k, "/ha", &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_status) : rc;
}

/* tern node maintenance enable|disable NODE [--return] [--no-follow] */
static int run_maintenance(struct call *k)
{
    const char *how = k->arg[0], *node = k->arg[1];
    bool enable = strcmp(how, "enable") == 0, back = call_flag(k, "--return");
    int rc = EXIT_OK;
    if (!enable && strcmp(how, "disable") != 0)
        rc = usage_error("maintenance: 'enable' or 'disable', not '%s'", how);
    if (rc == EXIT_OK)
        rc = check_name("node name", node);
    if (rc == EXIT_OK && enable && back)
        rc = usage_error("--return goes with disable");
    if (rc != EXIT_OK)
        return rc;
    char path[128];
    snprintf(path, sizeof(path), "/nodes/%s/maintenance", node);
    json_t *ans;
    rc = api(k, "POST", path, json_pack("{s:b, s:b}", "enable", enable, "return", back),
             &ans);
    if (rc != EXIT_OK)
        return rc;
    const char *task = jstr(ans, "task", NULL);
    if (k->json || !task || call_flag(k, "--no-follow"))
        return print_answer(k, ans, "node '%s' %s maintenance%s%s", node,
                            enable ? "in" : "out of", task ? ": task " : "",
                            task ? task : "");
    char upid[160];
    snprintf(upid, sizeof(upid), "%s", task);
    json_decref(ans);
    struct follow f = {.catch_sigint = true};
    return task_follow(k, upid, &f);
}

static const struct cmd_opt maint_opts[] = {
    {"--return", NULL, "with disable: bring back the vms that enable moved away", false,
     false},
    {"--no-follow", NULL, "print the task id and exit", false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt ha_add_opts[] = {
    {"--max-restart", "N", "starts tried again on the node that recovers it (default 1)",
     false, false},
    {"--max-relocate", "N", "(default 1; recorded, not used yet)", false, false},
    {"--group", "NODES", "the nodes it may run on, comma-separated (default: any)", false,
     true},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_ha[] = {
    {"ha", "add", "VMID [--max-restart N] [--max-relocate N] [--group NODES]", 1, 1,
     "make a VM highly available",
     "When the VM's node is lost (its lease expires), another node starts it:\n"
     "the lost node's HA VMs fence themselves before its lease can expire, so\n"
     "the VM never runs twice. Only a VM whose disks are all on shared storage\n"
     "can be HA. A VM that runs now is protected once its node has armed its\n"
     "fence (ha status: state started).\n",
     "  tern ha add 100\n  tern ha add 100 --group n1,n2 --max-restart 2\n", ha_add_opts,
     run_ha_add},
    {"ha", "remove", "VMID", 1, 1, "stop managing a VM (it keeps running)",
     "The VM's fence is disarmed on its next pass; it is not restarted elsewhere\n"
     "any more.\n",
     "  tern ha remove 100\n", NULL, run_ha_remove},
    {"ha", "status", "", 0, 0, "the HA VMs: state, node, owner, last event",
     "state: started (recovered if its node is lost), stopped (left alone),\n"
     "error (the HA manager gave up).\n",
     "  tern ha status\n", NULL, run_ha_status},
    {"node", "maintenance", "enable|disable NODE [--return] [--no-follow]", 2, 2,
     "move a node's vms away and keep it empty, or end that",
     "enable: the node takes no new vms, migrations or HA recoveries, and one\n"
     "task live-migrates every vm it owns away (each to the auto target, a few at\n"
     "a time, a line per vm); a vm that cannot move is named and the task ends\n"
     "in TASK ERROR. The state is kept in etcd: a restarted ternd goes on.\n"
     "disable: the node takes vms again; --return brings back those the last\n"
     "enable moved away.\n",
     "  tern node maintenance enable n1\n  tern node maintenance disable n1 --return\n",
     maint_opts, run_maintenance},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
