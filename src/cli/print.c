#include "cli/print.h"

#include <stdbool.h>
#include <string.h>

static const char *str(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static const char *yes_no(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

static void human_bytes(json_t *v, char *out, size_t size)
{
    if (!json_is_integer(v)) {
        snprintf(out, size, "-");
        return;
    }
    double b = (double)json_integer_value(v);
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (b >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        b /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", b, units[u]);
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
        fprintf(f, "%-16s %-16s %-9s %-9s %s\n", str(m, "name", "?"), str(m, "id", "?"),
                yes_no(m, "reachable"),
                json_is_true(json_object_get(m, "leader")) ? "leader" : "member",
                str(m, "client_url", "-"));
    }
}

void print_cluster_status(FILE *f, const json_t *body)
{
    bool quorate = json_is_true(json_object_get(body, "quorate"));
    fprintf(f, "quorate:  %s", quorate ? "yes" : "no");
    if (!quorate)
        fprintf(f, " (%s)", str(body, "reason", "cluster not quorate"));
    fprintf(f, "\nleader:   %s (term %lld)\n", str(body, "leader", "none"),
            (long long)json_integer_value(json_object_get(body, "raft_term")));
    fprintf(f, "members:  %lld known, %lld reachable\n",
            (long long)json_integer_value(json_object_get(body, "member_count")),
            (long long)json_integer_value(json_object_get(body, "members_reachable")));
    fprintf(f, "node:     %s\netcd:     %s\n", str(body, "node", "?"),
            str(body, "etcd_version", "?"));
    print_members(f, json_object_get(body, "members"));
}

void print_node_list(FILE *f, const json_t *body)
{
    fprintf(f, "%-16s %-8s %-10s %-10s %-8s %s\n", "NAME", "STATUS", "MEM FREE",
            "MEM TOTAL", "VERSION", "CPU");
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(body, "nodes"), i, n) {
        json_t *info = json_object_get(n, "info");
        char free_s[32], total_s[32];
        human_bytes(json_object_get(info, "memory_free"), free_s, sizeof(free_s));
        human_bytes(json_object_get(info, "memory_total"), total_s, sizeof(total_s));
        fprintf(f, "%-16s %-8s %-10s %-10s %-8s %s\n", str(n, "name", "?"),
                json_is_true(json_object_get(n, "online")) ? "online" : "offline",
                free_s, total_s, str(info, "version", "-"), str(info, "cpu_model", "-"));
    }
}
