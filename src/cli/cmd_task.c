/* tern task list, log, cancel: the tasks ternd runs (start, stop, migrate).
 * Waiting for a task and following its log: follow.c. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"
#include "cli/progress_bar.h"

#define LIMIT_MAX 1000 /* as ternd takes it */

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

/* "2026-12-02 02:41:36 text" -> {"time": "2026-12-02 02:41:36", "text": "text"};
 * the last line (TASK OK, TASK ERROR: ...) has no time. */
static json_t *log_entry(const char *line)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(line, "%Y-%m-%d %H:%M:%S ", &tm);
    if (!rest || rest - line != 20)
        return json_pack("{s:n, s:s}", "time", "text", line);
    return json_pack("{s:s#, s:s}", "time", line, 19, "text", rest);
}

/* The log as JSON: {"id", "status", "running", "lines": [{"time", "text"}],
 * "figures"} (figures: a finished migration's, from the task). */
static int log_json(struct call *k, const char *upid)
{
    json_t *lines = json_array(), *page = NULL, *task = NULL, *out = NULL;
    long long start = 0;
    char path[340];
    int rc = EXIT_OK;
    for (size_t n = 1; rc == EXIT_OK && n > 0;) {
        snprintf(path, sizeof(path), "/tasks/%s/log?start=%lld", upid, start);
        json_decref(page);
        page = NULL;
        if ((rc = api_get(k, path, &page)) != EXIT_OK)
            break;
        size_t i;
        json_t *line;
        n = json_array_size(json_object_get(page, "lines"));
        json_array_foreach(json_object_get(page, "lines"), i, line)
            json_array_append_new(lines, log_entry(json_string_value(line) ?: ""));
        start += (long long)n;
    }
    snprintf(path, sizeof(path), "/tasks/%s", upid);
    if (rc == EXIT_OK)
        rc = api_get(k, path, &task);
    if (rc == EXIT_OK)
        print_json(stdout,
                   out = json_pack("{s:s, s:s, s:O, s:o, s:O}", "id", upid, "status",
                                   jstr(page, "status", "?"), "running",
                                   json_object_get(page, "running") ?: json_false(),
                                   "lines", lines, "figures",
                                   json_object_get(task, "figures") ?: json_null()));
    else
        json_decref(lines);
    json_decref(out);
    json_decref(page);
    json_decref(task);
    return rc;
}

static void print_task(FILE *f, const json_t *t)
{
    char when[32] = "-", dur[32] = "-";
    time_t start = (time_t)json_integer_value(json_object_get(t, "start"));
    struct tm tm;
    if (localtime_r(&start, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    const json_t *end = json_object_get(t, "end");
    human_duration((json_is_integer(end) ? json_integer_value(end) : time(NULL)) - start,
                   dur, sizeof(dur));
    fprintf(f, "id:       %s\nnode:     %s\ntype:     %s\nvmid:     %lld\n",
            jstr(t, "id", "?"), jstr(t, "node", "?"), jstr(t, "type", "?"),
            (long long)json_integer_value(json_object_get(t, "vmid")));
    fprintf(f, "status:   %s\nstarted:  %s\nduration: %s%s\n", jstr(t, "status", "?"), when,
            dur, json_is_integer(end) ? "" : " so far");
    const json_t *p = json_object_get(t, "progress");
    if (json_is_object(p)) {
        char bar[256];
        progress_bar_text(p, 200, bar, sizeof(bar));
        fprintf(f, "progress: %s\n", bar);
    }
    const json_t *fig = json_object_get(t, "figures");
    if (json_is_object(fig)) {
        char sent[32];
        human_bytes((double)json_integer_value(json_object_get(fig, "transferred")), sent,
                    sizeof(sent));
        fprintf(f, "figures:  %lld pass(es), %s sent, %.0f ms in all, downtime %.1f ms\n",
                (long long)json_integer_value(json_object_get(fig, "passes")), sent,
                json_number_value(json_object_get(fig, "total_ms")),
                json_number_value(json_object_get(fig, "downtime_ms")));
    }
}

static int run_show(struct call *k)
{
    char path[300];
    json_t *ans;
    int rc = check_task_id(k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/tasks/%s", k->arg[0]);
    if ((rc = api_get(k, path, &ans)) != EXIT_OK)
        return rc;
    return show_answer(k, ans, print_task);
}

static int run_log(struct call *k)
{
    int rc = check_task_id(k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    if (k->json)
        return log_json(k, k->arg[0]);
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
    return api_change(k, "POST", path, "cancelled task %s", k->arg[0]);
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
     "ends, and exits 0 when it ends in TASK OK, 1 on TASK ERROR. Every line\n"
     "but the last starts with its time. --output json: the log as it is now,\n"
     "{\"lines\": [{\"time\", \"text\"}], \"status\", \"figures\"}.\n",
     "  tern task log UPID:n1:00001A2B:00000003:6563F1A2:migrate:100: --follow\n", log_opts,
     run_log},
    {"task", "show", "UPID", 1, 1, "one task: status, times, progress or figures",
     "A running migration shows its progress (share of the whole job, bytes\n"
     "sent, rate, time left, pass); a finished one its figures.\n",
     "  tern task show UPID:n1:00001A2B:00000003:6563F1A2:migrate:100:\n", NULL, run_show},
    {"task", "cancel", "UPID", 1, 1, "stop a running task, or say why it cannot",
     "Waits for the task to say what it did: \"cancelled task UPID\" (exit 0)\n"
     "once it stopped, or the reason it did not (exit 1): it had ended, it\n"
     "cannot be cancelled (start, stop), or it is past the point a cancel can\n"
     "undo (a migration whose handover etcd is deciding). A migration cancelled\n"
     "before its handover leaves the VM running where it was.\n",
     "  tern task cancel UPID:n1:00001A2B:00000003:6563F1A2:migrate:100:\n", NULL,
     run_cancel},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
