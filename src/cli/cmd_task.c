/* tern task list, log, cancel: the tasks ternd runs (start, stop, migrate).
 * Waiting for a task and following its log: follow.c. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"

#define LIMIT_MAX 10000

/* "?vmid=100&node=n1&limit=50" from the options given; "" for none. */
static int list_query(const struct call *k, char *out, size_t size)
{
    const char *vmid = call_opt(k, "--vmid"), *node = call_opt(k, "--node");
    const char *limit = call_opt(k, "--limit");
    uint32_t id = 0;
    uint64_t n = 0;
    int rc = vmid ? check_vmid(vmid, &id) : EXIT_OK;
    if (rc == EXIT_OK && node)
        rc = check_name("node name", node);
    if (rc == EXIT_OK && limit)
        rc = check_uint("--limit", limit, 1, LIMIT_MAX, &n);
    if (rc != EXIT_OK)
        return rc;
    size_t len = 0;
    out[0] = '\0';
    if (vmid)
        len += (size_t)snprintf(out + len, size - len, "%cvmid=%u", len ? '&' : '?', id);
    if (node)
        len += (size_t)snprintf(out + len, size - len, "%cnode=%s", len ? '&' : '?', node);
    if (limit)
        snprintf(out + len, size - len, "%climit=%llu", len ? '&' : '?',
                 (unsigned long long)n);
    return EXIT_OK;
}

static int run_list(struct call *k)
{
    char query[160], path[200];
    int rc = list_query(k, query, sizeof(query));
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/tasks%s", query);
    return show_listing(k, path, print_task_list);
}

static int run_log(struct call *k)
{
    int rc = check_task_id(k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    if (!call_flag(k, "--follow"))
        return task_print_log(k, k->arg[0], stdout);
    /* Ctrl-C ends tern here as usual: following changes nothing */
    struct follow f = {.progress = false, .catch_sigint = false, .cancel = NULL};
    return task_follow(k, k->arg[0], &f);
}

static int run_cancel(struct call *k)
{
    char path[300];
    int rc = check_task_id(k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/tasks/%s/cancel", k->arg[0]);
    return api_change(k, "POST", path, "cancelling task %s", k->arg[0]);
}

static const struct cmd_opt list_opts[] = {
    {"--vmid", "ID", "only the tasks of this VM", false, false},
    {"--node", "NODE", "only the tasks run by this node", false, false},
    {"--limit", "N", "at most N tasks, newest first", false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt log_opts[] = {
    {"--follow", NULL, "print new lines as they come until the task ends", false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_task[] = {
    {"task", "list", "[--vmid ID] [--node NODE] [--limit N]", 0, 0,
     "the tasks of the cluster, newest first",
     "Tasks are what ternd runs for a VM: start, stop, migrate. STATUS is\n"
     "running, OK or ERROR: why. Without quorum prints this node's possibly\n"
     "stale view and exits 3.\n",
     "  tern task list --vmid 100 --limit 5\n", list_opts, run_list},
    {"task", "log", "UPID [--follow]", 1, 1, "the log of a task",
     "Prints the log as it is. With --follow also what comes until the task\n"
     "ends, and exits 0 when it ends in TASK OK, 1 on TASK ERROR.\n",
     "  tern task log UPID:n1:00001A2B:00000003:6563F1A2:migrate:100: --follow\n", log_opts,
     run_log},
    {"task", "cancel", "UPID", 1, 1, "ask a running task to stop",
     "A migration cancelled before its handover leaves the VM running where it\n"
     "was. Refused (exit 1) when the task has ended.\n",
     "  tern task cancel UPID:n1:00001A2B:00000003:6563F1A2:migrate:100:\n", NULL,
     run_cancel},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
