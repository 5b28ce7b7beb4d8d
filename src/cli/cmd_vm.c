/* tern vm ...: create, start, stop, list, status, show, destroy; migrate,
 * which keeps watching a running VM by polling. The rest of a VM's life
 * (shutdown, reboot, pause, resume, console): cmd_vmlife.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"
#include "common/name.h"
#include "common/opts.h"

#define DISKS_MAX 8
#define NETS_MAX 4 /* tern-vmm's NICs */
#define MEMORY_MIB_MIN 16
#define MEMORY_MIB_MAX 1048576
#define CPUS_MAX 32            /* tern-vmm's limit, as ternd takes it */
#define BWLIMIT_MAX (1u << 20) /* MiB/s */
#define DOWNTIME_MAX 60000     /* ms, as ternd takes it */

/* "shared:64" or "local:2G" -> {"storage": "shared", "size_mib": 64}. */
static int parse_disk(const char *text, json_t *disks)
{
    char storage[TERN_NAME_MAX + 2];
    const char *colon = strrchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : 0;
    uint64_t mib;
    if (!colon || n == 0 || n >= sizeof(storage))
        return usage_error("bad --disk '%s' (STORAGE:SIZE, e.g. local:64 or local:2G)",
                           text);
    memcpy(storage, text, n);
    storage[n] = '\0';
    int rc = check_name("storage name", storage);
    if (rc == EXIT_OK)
        rc = check_size_mib("--disk size", colon + 1, &mib);
    if (rc != EXIT_OK)
        return rc;
    json_array_append_new(
        disks, json_pack("{sssI}", "storage", storage, "size_mib", (json_int_t)mib));
    return EXIT_OK;
}

/* The kernel must be an absolute path (the same on every node); a relative
 * one is taken from here, where it must exist. */
static int kernel_path(const char *text, char out[PATH_MAX])
{
    if (text[0] == '/') {
        snprintf(out, PATH_MAX, "%s", text);
        return EXIT_OK;
    }
    if (!realpath(text, out))
        return usage_error("--kernel '%s': not found here; give an absolute path", text);
    return EXIT_OK;
}

/* --memory, --cpus, --kernel and --name, checked. */
static int create_values(const struct call *k, uint64_t *mem, uint64_t *cpus,
                         char kernel[PATH_MAX])
{
    const char *name = call_opt(k, "--name"), *memory = call_opt(k, "--memory");
    int rc = check_size_mib("--memory", memory, mem);
    if (rc == EXIT_OK && (*mem < MEMORY_MIB_MIN || *mem > MEMORY_MIB_MAX))
        rc = usage_error("--memory '%s' out of range %d..%d MiB", memory, MEMORY_MIB_MIN,
                         MEMORY_MIB_MAX);
    if (rc == EXIT_OK)
        rc = check_uint("--cpus", call_opt(k, "--cpus"), 1, CPUS_MAX, cpus);
    if (rc == EXIT_OK)
        rc = kernel_path(call_opt(k, "--kernel"), kernel);
    if (rc == EXIT_OK && name)
        rc = check_name("vm name", name);
    return rc;
}

/* "bridge=vmbr0[,mac=52:54:00:..]" -> {"bridge": ..., "mac": ...}; ternd
 * checks the names and the MAC (one wording of refusals). */
static int parse_net(const char *text, json_t *nets)
{
    struct opts_kv kv;
    if (opts_kv_parse(&kv, text))
        return usage_error("bad --net '%s' (bridge=BRIDGE[,mac=MAC])", text);
    json_t *net = json_object();
    int rc = EXIT_OK;
    for (size_t i = 0; i < kv.count && rc == EXIT_OK; i++) {
        const char *key = kv.key[i], *v = kv.value[i];
        if ((strcmp(key, "bridge") == 0 || strcmp(key, "mac") == 0) && v && *v)
            json_object_set_new(net, key, json_string(v));
        else
            rc = usage_error("--net '%s': unknown key or no value at '%s'", text, key);
    }
    opts_kv_release(&kv);
    if (rc == EXIT_OK && !json_object_get(net, "bridge"))
        rc = usage_error("--net '%s': bridge=BRIDGE is required", text);
    if (rc == EXIT_OK)
        json_array_append(nets, net);
    json_decref(net);
    return rc;
}

int vm_nets_option(const struct call *k, json_t *body)
{
    const char *n = call_opt_nth(k, "--net", 0);
    json_t *nets = json_array();
    int rc = EXIT_OK;
    if (n && strcmp(n, "none") == 0) /* vm set: the VM loses its NICs */
        rc = call_opt_nth(k, "--net", 1) ? usage_error("--net none takes no other --net")
                                         : EXIT_OK;
    else
        for (int i = 0; rc == EXIT_OK && (n = call_opt_nth(k, "--net", i)); i++)
            rc = i >= NETS_MAX ? usage_error("more than %d nics at --net '%s'", NETS_MAX, n)
                               : parse_net(n, nets);
    if (rc == EXIT_OK && call_opt(k, "--net"))
        json_object_set(body, "nets", nets);
    json_decref(nets);
    return rc;
}

static int create_disks(const struct call *k, json_t *disks)
{
    const char *d;
    for (int i = 0; (d = call_opt_nth(k, "--disk", i)); i++) {
        if (i >= DISKS_MAX)
            return usage_error("more than %d disks at --disk '%s'", DISKS_MAX, d);
        int rc = parse_disk(d, disks);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
}

/* The body of POST /vms from the options; NULL after a usage error. */
static json_t *create_body(const struct call *k, uint32_t id, int *rc)
{
    uint64_t mem, cpus;
    char kernel[PATH_MAX];
    json_t *disks = json_array();
    *rc = create_values(k, &mem, &cpus, kernel);
    if (*rc == EXIT_OK)
        *rc = create_disks(k, disks);
    if (*rc != EXIT_OK) {
        json_decref(disks);
        return NULL;
    }
    const char *name = call_opt(k, "--name"), *cmdline = call_opt(k, "--cmdline");
    json_t *body = json_pack("{sI sI sI ss ss so}", "id", (json_int_t)id, "memory_mib",
                             (json_int_t)mem, "cpus", (json_int_t)cpus, "kernel", kernel,
                             "cmdline", cmdline ? cmdline : "", "disks", disks);
    if (body && name)
        json_object_set_new(body, "name", json_string(name));
    if (body && (*rc = vm_nets_option(k, body)) != EXIT_OK) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* POST /vms/ID/start or stop, then wait for the task. */
static int start_stop(struct call *k, uint32_t id, const char *verb)
{
    char path[64];
    json_t *ans, *task = NULL;
    snprintf(path, sizeof(path), "/vms/%u/%s", id, verb);
    int rc = api(k, "POST", path, NULL, &ans);
    if (rc != EXIT_OK)
        return rc;
    const char *upid = jstr(ans, "task", "");
    if (strncmp(upid, "UPID:", 5) != 0 || strlen(upid) > 200) {
        json_decref(ans);
        return fail("ternd answered %s of vm %u without a task", verb, id);
    }
    rc = task_wait(k, upid, &task);
    if (rc == EXIT_OK && k->json)
        print_json(stdout, task);
    else if (rc == EXIT_OK)
        printf("vm %u %s (task %s)\n", id,
               strcmp(verb, "start") == 0 ? "started" : "stopped", upid);
    json_decref(task);
    json_decref(ans);
    return rc;
}

static int run_create(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    json_t *body = rc == EXIT_OK ? create_body(k, id, &rc) : NULL;
    if (rc != EXIT_OK)
        return rc;
    json_t *ans;
    if ((rc = api(k, "POST", "/vms", body, &ans)) != EXIT_OK)
        return rc;
    print_answer(k, ans, "created vm %u on node %s", id, jstr(ans, "node", "?"));
    bool start = call_flag(k, "--start");
    return start ? start_stop(k, id, "start") : EXIT_OK;
}

static int run_start(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    return rc == EXIT_OK ? start_stop(k, id, "start") : rc;
}

static int run_stop(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    return rc == EXIT_OK ? start_stop(k, id, "stop") : rc;
}

static int run_list(struct call *k)
{
    return show_listing(k, "/vms", print_vm_list);
}

/* METHOD /vms/ID for the VM id of the first argument (*id set). */
static int vm_request(struct call *k, const char *method, uint32_t *id, json_t **ans)
{
    char path[64];
    int rc = check_vmid(k->arg[0], id);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/vms/%u", *id);
    return api(k, method, path, NULL, ans);
}

static int run_show(struct call *k)
{
    uint32_t id;
    json_t *ans;
    int rc = vm_request(k, "GET", &id, &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_vm) : rc;
}

/* One line, like qm status: "status: running (node n1, pid 4242, uptime
 * 00:01:02)". */
static void print_status(FILE *f, const json_t *vm)
{
    fprintf(f, "status: %s (node %s", jstr(vm, "status", "?"), jstr(vm, "node", "-"));
    long long pid = (long long)json_integer_value(json_object_get(vm, "pid"));
    if (pid > 0)
        fprintf(f, ", pid %lld", pid);
    const json_t *up = json_object_get(vm, "uptime_s");
    if (json_is_integer(up)) {
        char d[32];
        human_duration(json_integer_value(up), d, sizeof(d));
        fprintf(f, ", uptime %s", d);
    }
    if (json_is_string(json_object_get(vm, "lock")))
        fprintf(f, ", locked by %s", jstr(vm, "lock", ""));
    fputs(")\n", f);
}

static int run_status(struct call *k)
{
    uint32_t id;
    json_t *ans;
    int rc = vm_request(k, "GET", &id, &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_status) : rc;
}

static int run_destroy(struct call *k)
{
    uint32_t id;
    json_t *ans;
    int rc = vm_request(k, "DELETE", &id, &ans);
    if (rc != EXIT_OK)
        return rc;
    return print_answer(k, ans, "destroyed vm %u and its disks", id);
}

/* The optional values of vm migrate, checked; 0 for those not given. */
static int migrate_values(const struct call *k, uint64_t *bw, uint64_t *downtime)
{
    const char *target = k->arg[1], *bw_s = call_opt(k, "--bwlimit");
    const char *type = call_opt(k, "--migration-type");
    const char *net = call_opt(k, "--migration-network");
    const char *down_s = call_opt(k, "--downtime");
    int rc = strcmp(target, "auto") == 0 ? EXIT_OK : check_name("target node", target);
    *bw = *downtime = 0;
    if (rc == EXIT_OK && bw_s)
        rc = check_uint("--bwlimit", bw_s, 0, BWLIMIT_MAX, bw);
    if (rc == EXIT_OK && type)
        rc = check_migration_type("--migration-type", type);
    if (rc == EXIT_OK && net)
        rc = check_cidr("--migration-network", net);
    if (rc == EXIT_OK && down_s)
        rc = check_uint("--downtime", down_s, 1, DOWNTIME_MAX, downtime);
    return rc;
}

/* The body of POST /vms/ID/migrate; NULL after a usage error in *rc. */
static json_t *migrate_body(const struct call *k, int *rc)
{
    uint64_t bw, downtime;
    if ((*rc = migrate_values(k, &bw, &downtime)) != EXIT_OK)
        return NULL;
    json_t *b = json_pack("{sssbsb}", "target", k->arg[1], "online",
                          call_flag(k, "--online"), "dry_run", call_flag(k, "--dry-run"));
    const char *type = call_opt(k, "--migration-type");
    const char *net = call_opt(k, "--migration-network");
    /* only what was given: ternd's defaults and the cluster options decide
     * the rest */
    if (call_opt(k, "--bwlimit"))
        json_object_set_new(b, "bwlimit_mib", json_integer((json_int_t)bw));
    if (type)
        json_object_set_new(b, "migration_type", json_string(type));
    if (net)
        json_object_set_new(b, "migration_network", json_string(net));
    if (downtime)
        json_object_set_new(b, "downtime_ms", json_integer((json_int_t)downtime));
    return b;
}

/* The checks, ok or FAIL, and the plan. A refusal (the first failed check)
 * carries the checks made so far: those, then its error line. */
static int dry_run(struct call *k, long status, json_t *ans)
{
    bool refused = status < 200 || status >= 300;
    int failed = 0;
    if (k->json && !refused)
        print_json(stdout, ans); /* a refusal is printed as JSON by api_refused */
    else if (!k->json)
        failed = refused ? print_checks(stdout, ans) : print_dry_run(stdout, ans);
    if (refused)
        return api_refused(k, status, ans);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(ans, "checks"), i, c)
        failed += k->json && !json_is_true(json_object_get(c, "ok"));
    json_decref(ans);
    return failed ? EXIT_ERROR : EXIT_OK;
}

static int run_migrate(struct call *k)
{
    uint32_t id;
    char path[64], what[64];
    int rc = check_vmid(k->arg[0], &id);
    json_t *body = rc == EXIT_OK ? migrate_body(k, &rc) : NULL;
    if (rc != EXIT_OK)
        return rc;
    json_t *ans;
    long status;
    snprintf(path, sizeof(path), "/vms/%u/migrate", id);
    if ((rc = api_answer(k, "POST", path, body, &status, &ans)) != EXIT_OK)
        return rc;
    if (call_flag(k, "--dry-run"))
        return dry_run(k, status, ans);
    if (status < 200 || status >= 300)
        return api_refused(k, status, ans);
    if (k->json || call_flag(k, "--no-follow")) {
        k->json ? print_json(stdout, ans) : (void)printf("%s\n", jstr(ans, "task", "?"));
        json_decref(ans);
        return EXIT_OK;
    }
    char upid[256];
    snprintf(upid, sizeof(upid), "%s", jstr(ans, "task", ""));
    json_decref(ans);
    if (check_task_id(upid) != EXIT_OK)
        return fail("ternd answered the migration of vm %u without a task", id);
    printf("task %s\n", upid);
    fflush(stdout);
    bool tty = isatty(STDOUT_FILENO);
    snprintf(what, sizeof(what), "migration of vm %u", id);
    struct follow f = {.progress = tty, .catch_sigint = true, .cancel = tty ? what : NULL};
    return task_follow(k, upid, &f);
}

static const struct cmd_opt create_opts[] = {
    {"--memory", "MIB", "guest memory in MiB (or with suffix G), 16..1048576", true, false},
    {"--cpus", "N", "vCPUs, 1..32", true, false},
    {"--kernel", "PATH", "guest kernel, the same path on every node", true, false},
    {"--cmdline", "STR", "kernel command line", false, false},
    {"--disk", "STORAGE:SIZE",
     "a new disk on that storage, SIZE in MiB or with "
     "suffix M or G",
     false, true},
    {"--net", "bridge=BR[,mac=MAC]",
     "a NIC on that bridge of the node (a TAP ternd makes); MAC default 52:54:00 and "
     "the id",
     false, true},
    {"--name", "NAME", "a name besides the id", false, false},
    {"--start", NULL, "start it once created, as 'tern vm start'", false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt migrate_opts[] = {
    {"--online", NULL, "live migration of a running VM", false, false},
    {"--bwlimit", "MIB/S", "bandwidth limit in MiB/s, 0 unlimited", false, false},
    {"--migration-type", "TYPE",
     "secure (TLS) or insecure (plain TCP); default "
     "from 'tern cluster options'",
     false, false},
    {"--migration-network", "CIDR",
     "the network to migrate over; default from "
     "'tern cluster options'",
     false, false},
    {"--downtime", "MS", "longest pause of the guest at the handover", false, false},
    {"--dry-run", NULL,
     "run the checks and print them with the plan; move "
     "nothing",
     false, false},
    {"--no-follow", NULL, "print the task id and exit; the task goes on", false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_vm[] = {
    {"vm", "create",
     "ID --memory MIB --cpus N --kernel PATH [--cmdline STR] "
     "[--disk STORAGE:SIZE]... [--net bridge=BR[,mac=MAC]]... [--name NAME] [--start]",
     1, 1, "define a VM owned by this node, with new disks",
     "ID is 100..999999999. The VM belongs to the node whose ternd got the\n"
     "request; its disks are created as sparse files on their storage.\n",
     "  tern vm create 100 --memory 256 --cpus 1 --kernel /usr/lib/tern/tern-guest\n"
     "  tern vm create 101 --memory 1G --cpus 2 --kernel /srv/vmlinux \\\n"
     "      --cmdline console=ttyS0 --disk nfs:8G --name web --start\n",
     create_opts, run_create},
    {"vm", "start", "ID", 1, 1, "start a VM on its node and wait until it runs",
     "Waits for the start task; when it fails, prints its log on stderr and\n"
     "exits 1.\n",
     "  tern vm start 100\n", NULL, run_start},
    {"vm", "stop", "ID", 1, 1, "stop a VM hard (its monitor quits) and wait",
     "Waits for the stop task; when it fails, prints its log on stderr and\n"
     "exits 1.\n",
     "  tern vm stop 100\n", NULL, run_stop},
    {"vm", "list", "", 0, 0, "the VMs: node, status, memory, cpus, uptime, lock",
     "Every VM of the cluster, sorted by id. Without quorum prints this node's\n"
     "possibly stale view and exits 3.\n",
     "  tern vm list\n  tern vm list --output json\n", NULL, run_list},
    {"vm", "status", "ID", 1, 1, "one line: the VM's status, node, pid, uptime",
     "As 'qm status': the status (stopped, running, paused, migrating,\n"
     "incoming, unknown) and where. --output json prints the VM object.\n",
     "  tern vm status 100\n", NULL, run_status},
    {"vm", "show", "ID", 1, 1, "one VM with its config and disks",
     "Status, owner node, process, and the config: kernel, command line, disks,\n"
     "NICs.\n",
     "  tern vm show 100\n", NULL, run_show},
    {"vm", "destroy", "ID", 1, 1, "remove a stopped VM and its disks",
     "Refused while the VM runs. Its disk files are deleted.\n", "  tern vm destroy 100\n",
     NULL, run_destroy},
    {"vm", "migrate",
     "ID TARGET|auto [--online] [--bwlimit MIB/S] [--migration-type "
     "secure|insecure] [--migration-network CIDR] [--downtime MS] [--dry-run] "
     "[--no-follow]",
     2, 2, "move a VM to another node, live with --online",
     "TARGET is a node name or auto (the online node with the most free memory).\n"
     "The checks run first; a failing one is printed and exits 1 (3 without\n"
     "quorum). Then prints 'task UPID' and the task's log as it grows, with a\n"
     "progress line on a terminal; exits 0 on TASK OK, 1 on TASK ERROR.\n"
     "Ctrl-C on a terminal asks whether to cancel the migration; otherwise, or\n"
     "on a second Ctrl-C, tern stops following (exit 1) and the task goes on.\n"
     "--output json prints the answer (task or dry run) and does not follow.\n",
     "  tern vm migrate 100 n2 --online\n"
     "  tern vm migrate 100 auto --online --dry-run\n"
     "  tern vm migrate 100 n3 --online --bwlimit 200 --migration-type insecure\n",
     migrate_opts, run_migrate},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
