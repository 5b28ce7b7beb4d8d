#include "cli/print.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

const char *jstr(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static const char *yes_no(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

void human_bytes(double b, char *out, size_t size)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        b /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", b, units[u]);
}

static void json_bytes(json_t *v, char *out, size_t size)
{
    if (json_is_integer(v))
        human_bytes((double)json_integer_value(v), out, size);
    else
        snprintf(out, size, "-");
}

void human_duration(long long s, char *out, size_t size)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, size, "%lldd %02lld:%02lld:%02lld", s / 86400, s % 86400 / 3600,
                 s % 3600 / 60, s % 60);
    else
        snprintf(out, size, "%02lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
}

void print_json(FILE *f, const json_t *body)
{
    json_dumpf(body, f, JSON_INDENT(2));
    fputc('\n', f);
}

static void print_members(FILE *f, const json_t *members)
{
    fprintf(f, "\n%-16s %-16s %-9s %-9s %s\n", "NAME", "ID", "REACHABLE", "ROLE",
            "CLIENT URL");
    size_t i;
    const json_t *m;
    json_array_foreach(members, i, m) {
        fprintf(f, "%-16s %-16s %-9s %-9s %s\n", jstr(m, "name", "?"), jstr(m, "id", "?"),
                yes_no(m, "reachable"),
                json_is_true(json_object_get(m, "leader")) ? "leader" : "member",
                jstr(m, "client_url", "-"));
    }
}

void print_cluster_status(FILE *f, const json_t *body)
{
    /* an older ternd has no cluster_name: then no line rather than "none" */
    if (json_object_get(body, "cluster_name"))
        fprintf(f, "cluster:  %s\n", jstr(body, "cluster_name", "none"));
    bool quorate = json_is_true(json_object_get(body, "quorate"));
    fprintf(f, "quorate:  %s", quorate ? "yes" : "no");
    if (!quorate)
        fprintf(f, " (%s)", jstr(body, "reason", "cluster not quorate"));
    fprintf(f, "\nleader:   %s (term %lld)\n", jstr(body, "leader", "none"),
            (long long)json_integer_value(json_object_get(body, "raft_term")));
    fprintf(f, "members:  %lld known, %lld reachable\n",
            (long long)json_integer_value(json_object_get(body, "member_count")),
            (long long)json_integer_value(json_object_get(body, "members_reachable")));
    fprintf(f, "node:     %s\netcd:     %s\n", jstr(body, "node", "?"),
            jstr(body, "etcd_version", "?"));
    if (json_object_get(body, "fingerprint"))
        fprintf(f, "fingerprint: %s\n", jstr(body, "fingerprint", "-"));
    print_members(f, json_object_get(body, "members"));
}

static void int_or_dash(const json_t *v, char *out, size_t size)
{
    if (json_is_integer(v))
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, size, "-");
}

void print_node_list(FILE *f, const json_t *body)
{
    fprintf(f, "%-16s %-8s %-4s %-10s %-10s %-8s %s\n", "NAME", "STATUS", "VMS", "MEM FREE",
            "MEM TOTAL", "VERSION", "CPU");
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(body, "nodes"), i, n) {
        json_t *info = json_object_get(n, "info");
        char free_s[32], total_s[32], vms[24];
        json_bytes(json_object_get(info, "memory_free"), free_s, sizeof(free_s));
        json_bytes(json_object_get(info, "memory_total"), total_s, sizeof(total_s));
        int_or_dash(json_object_get(n, "vms"), vms, sizeof(vms));
        fprintf(f, "%-16s %-8s %-4s %-10s %-10s %-8s %s\n", jstr(n, "name", "?"),
                json_is_true(json_object_get(n, "online")) ? "online" : "offline", vms,
                free_s, total_s, jstr(info, "version", "-"), jstr(info, "cpu_model", "-"));
    }
}

/* In the syntax `tern cluster set migration` takes, so that the output can
 * be pasted back. */
void print_cluster_options(FILE *f, const json_t *body)
{
    const json_t *m = json_object_get(body, "migration");
    fprintf(f, "migration: type=%s,network=%s\n", jstr(m, "type", "secure"),
            jstr(m, "network", "none"));
}

void print_storage_list(FILE *f, const json_t *body)
{
    fprintf(f, "%-16s %-6s %s\n", "NAME", "SHARED", "PATH");
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(body, "storage"), i, s)
        fprintf(f, "%-16s %-6s %s\n", jstr(s, "name", "?"), yes_no(s, "shared"),
                jstr(s, "path", "?"));
}

/* VMs, tasks and migration checks. */
static long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void uptime_of(const json_t *vm, char *out, size_t size)
{
    const json_t *u = json_object_get(vm, "uptime_s");
    if (json_is_integer(u) && strcmp(jstr(vm, "status", ""), "stopped") != 0)
        human_duration(json_integer_value(u), out, size);
    else
        snprintf(out, size, "-");
}

/* "UPID:n1:000070E5:00000003:6B0FAD03:migrate:100:" -> "migrate n1:3": the
 * task type and enough of its id to tell it apart (tern task list has it
 * whole); any other holder is cut to the column. */
static void short_lock(const char *lock, char *out, size_t size)
{
    char node[64], type[32];
    unsigned pid, seq;
    if (sscanf(lock, "UPID:%63[^:]:%x:%x:%*x:%31[^:]:", node, &pid, &seq, type) == 4)
        snprintf(out, size, "%.20s %.40s:%x", type, node, seq);
    else
        snprintf(out, size, "%.20s", lock);
}

void print_vm_list(FILE *f, const json_t *body)
{
    fprintf(f, "%-9s %-16s %-16s %-9s %-9s %-4s %-11s %s\n", "ID", "NAME", "NODE", "STATUS",
            "MEMORY", "CPUS", "UPTIME", "LOCK");
    size_t i;
    const json_t *vm;
    json_array_foreach(json_object_get(body, "vms"), i, vm) {
        char mem[24], up[32], lock[128];
        snprintf(mem, sizeof(mem), "%lld MiB", jint(vm, "memory_mib"));
        short_lock(jstr(vm, "lock", "-"), lock, sizeof(lock));
        uptime_of(vm, up, sizeof(up));
        fprintf(f, "%-9lld %-16s %-16s %-9s %-9s %-4lld %-11s %s\n", jint(vm, "id"),
                jstr(vm, "name", "-")[0] ? jstr(vm, "name", "-") : "-",
                jstr(vm, "node", "-"), jstr(vm, "status", "?"), mem, jint(vm, "cpus"), up,
                lock);
    }
}

static void print_disks(FILE *f, const json_t *disks)
{
    size_t i;
    const json_t *d;
    if (json_array_size(disks) == 0)
        fprintf(f, "disks:     none\n");
    json_array_foreach(disks, i, d)
        fprintf(f, "%-11s%s:%s (%lld MiB)\n", i == 0 ? "disks:" : "",
                jstr(d, "storage", "?"), jstr(d, "volume", "?"), jint(d, "size_mib"));
}

void print_vm(FILE *f, const json_t *vm)
{
    const json_t *conf = json_object_get(vm, "config");
    char up[32];
    uptime_of(vm, up, sizeof(up));
    fprintf(f, "id:        %lld\n", jint(vm, "id"));
    fprintf(f, "name:      %s\n", jstr(vm, "name", "")[0] ? jstr(vm, "name", "") : "-");
    fprintf(f, "node:      %s\n", jstr(vm, "node", "-"));
    fprintf(f, "status:    %s\n", jstr(vm, "status", "?"));
    if (jint(vm, "pid") > 0)
        fprintf(f, "pid:       %lld\n", jint(vm, "pid"));
    fprintf(f, "uptime:    %s\n", up);
    fprintf(f, "memory:    %lld MiB\n", jint(vm, "memory_mib"));
    fprintf(f, "cpus:      %lld\n", jint(vm, "cpus"));
    fprintf(f, "lock:      %s\n", jstr(vm, "lock", "none"));
    fprintf(f, "last exit: %s\n", jstr(vm, "last_exit", "-"));
    if (!conf)
        return;
    fprintf(f, "kernel:    %s\n", jstr(conf, "kernel", "-"));
    fprintf(f, "cmdline:   %s\n", jstr(conf, "cmdline", ""));
    print_disks(f, json_object_get(conf, "disks"));
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(conf, "nets"), i, n)
        fprintf(f, "%-11snet%zu bridge=%s mac=%s\n", i == 0 ? "nics:" : "", i,
                jstr(n, "bridge", "?"), jstr(n, "mac", "?"));
}

static void local_time(const json_t *v, char *out, size_t size)
{
    struct tm tm;
    time_t t = (time_t)json_integer_value(v);
    if (!json_is_integer(v) || !localtime_r(&t, &tm) ||
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, size, "-");
}

static int id_width(const json_t *tasks)
{
    int w = 4;
    size_t i;
    const json_t *t;
    json_array_foreach(tasks, i, t) {
        int n = (int)strlen(jstr(t, "id", "?"));
        w = n > w ? n : w;
    }
    return w;
}

void print_task_list(FILE *f, const json_t *body)
{
    const json_t *tasks = json_object_get(body, "tasks");
    int w = id_width(tasks);
    fprintf(f, "%-*s %-12s %-8s %-9s %-19s %-9s %s\n", w, "UPID", "NODE", "TYPE", "VMID",
            "STARTED", "DURATION", "STATUS");
    size_t i;
    const json_t *t;
    json_array_foreach(tasks, i, t) {
        char start[32], dur[32] = "-", vmid[24] = "-";
        local_time(json_object_get(t, "start"), start, sizeof(start));
        if (json_is_integer(json_object_get(t, "end")))
            human_duration(jint(t, "end") - jint(t, "start"), dur, sizeof(dur));
        if (json_is_integer(json_object_get(t, "vmid")))
            snprintf(vmid, sizeof(vmid), "%lld", jint(t, "vmid"));
        /* nobody ends a task whose node is gone: say so beside it */
        bool orphan = json_is_false(json_object_get(t, "node_online"));
        fprintf(f, "%-*s %-12s %-8s %-9s %-19s %-9s %s%s\n", w, jstr(t, "id", "?"),
                jstr(t, "node", "?"), jstr(t, "type", "?"), vmid, start, dur,
                jstr(t, "status", "?"), orphan ? " (node offline)" : "");
    }
}

int print_checks(FILE *f, const json_t *body)
{
    const json_t *checks = json_object_get(body, "checks");
    int w = 5, failed = 0;
    size_t i;
    const json_t *c;
    json_array_foreach(checks, i, c) {
        int n = (int)strlen(jstr(c, "check", "?"));
        w = n > w ? n : w;
    }
    json_array_foreach(checks, i, c) {
        bool ok = json_is_true(json_object_get(c, "ok"));
        failed += !ok;
        fprintf(f, "%-4s  %-*s  %s\n", ok ? "ok" : "FAIL", w, jstr(c, "check", "?"),
                jstr(c, "detail", ""));
    }
    return failed;
}

static double fnum(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* "forecast: 1.52 s in total, downtime 6.1 ms, 3 pass(es); the guest
 * dirties 20.3 MiB/s, the link 153.2 MiB/s (last migration to n2)" */
static void print_forecast(FILE *f, const json_t *body)
{
    const json_t *fc = json_object_get(body, "forecast");
    const char *why = jstr(body, "forecast_error", NULL);
    if (!json_is_object(fc)) {
        if (why)
            fprintf(f, "forecast: none (%s)\n", why);
        return;
    }
    const char *basis = jstr(fc, "basis", "?");
    const char *whence = strcmp(basis, "last-migration") == 0 ? "the last migration there"
                         : strcmp(basis, "bwlimit") == 0      ? "the bandwidth limit"
                                                              : "a default";
    if (json_is_false(json_object_get(fc, "converges")))
        fprintf(f, "forecast: does not converge: would give up after %.0f s, %d pass(es)",
                fnum(fc, "total_ms") / 1e3, (int)fnum(fc, "passes"));
    else
        fprintf(f, "forecast: %.2f s in total, downtime %.1f ms, %d pass(es)",
                fnum(fc, "total_ms") / 1e3, fnum(fc, "downtime_ms"),
                (int)fnum(fc, "passes"));
    if (fnum(fc, "throttle_pct") > 0)
        fprintf(f, ", throttled to %.0f%%", fnum(fc, "throttle_pct"));
    fprintf(f, "; the guest dirties %.1f MiB/s, the link %.1f MiB/s (%s)\n",
            fnum(fc, "dirty_rate_mib_s"), fnum(fc, "link_mib_s"), whence);
}

int print_dry_run(FILE *f, const json_t *body)
{
    int failed = print_checks(f, body);
    fprintf(f, "target:   %s (%s), %s, migration type %s\n", jstr(body, "target", "?"),
            jstr(body, "address", "?"),
            json_is_true(json_object_get(body, "online")) ? "online" : "offline",
            jstr(body, "migration_type", "?"));
    fprintf(f, "plan:     %s\n", jstr(body, "plan", "-"));
    print_forecast(f, body);
    return failed;
}
