/* libFuzzer target: what a client sends to ternd's REST API, as far as
 * ternd itself parses it (src/node/api.c and the checks behind the
 * handlers), no etcd and no network.
 *
 * Input: "METHOD URL\n" and the body. The URL goes through the same steps
 * as in api.c's serve(): the /api/v1 prefix, the route tables
 * (api_route_find, which fills the path arguments), the query split off
 * and its values decoded; the body through api_body_parse. Then the
 * route's arguments and body go to the parsers its handler uses: VM ids
 * (keys_vmid_parse), names (name_check), task ids (task_id_node), VM
 * configs (vmconf_from_json), storage (storage_conf_from_json), cluster
 * options (cluster_options_update), migrations (migtask_plan_parse), and
 * the numbers of the query (limit, start, offset) as the handlers read
 * them. Decoding the query itself is libmicrohttpd's; this decodes it the
 * same way (%XX, '+' as space) so that the values reach the checks.
 *
 * FUZZ_SEED_DIR=DIR: writes seed inputs there and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/keys.h"
#include "cluster/vmconf.h"
#include "common/name.h"
#include "node/http.h"
#include "node/info.h"
#include "node/migtask.h"
#include "node/task.h"

#define PREFIX "/api/" TERN_API_VERSION

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_seed(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void write_seeds(const char *dir)
{
    write_seed(
        dir, "vm-create",
        "POST " PREFIX "/vms\n{\"id\":100,\"name\":\"web\",\"memory_mib\":256,"
        "\"cpus\":1,\"kernel\":\"/usr/lib/tern/tern-guest\",\"cmdline\":\"tern.hb=1\","
        "\"disks\":[{\"storage\":\"local\",\"size_mib\":64}]}");
    write_seed(dir, "vm-config", "PUT " PREFIX "/vms/100/config\n{\"memory_mib\":512}");
    write_seed(dir, "migrate",
               "POST " PREFIX "/vms/100/migrate\n{\"target\":\"n2\",\"online\":true,"
               "\"bwlimit\":100,\"downtime_ms\":300,\"type\":\"insecure\",\"network\":"
               "\"10.0.0.0/8\",\"dry_run\":true}");
    write_seed(dir, "storage",
               "POST " PREFIX "/storage\n{\"name\":\"local\",\"path\":\"/var/lib/tern\","
               "\"shared\":false}");
    write_seed(dir, "options",
               "PUT " PREFIX "/cluster/options\n{\"migration\":{\"type\":\"secure\","
               "\"network\":\"fd00::/64\"}}");
    write_seed(dir, "tasks", "GET " PREFIX "/tasks?vmid=100&node=n1&limit=20\n");
    write_seed(dir, "task-log", "GET " PREFIX "/tasks/n1%3A1%3A2/log?start=3\n");
    write_seed(dir, "console", "GET " PREFIX "/vms/100/console?offset=1024\n");
    write_seed(dir, "join",
               "POST " PREFIX "/cluster/join\n{\"address\":\"10.0.0.1:8006\",\"token\":"
               "\"00\",\"fingerprint\":\"sha256//x\"}");
    write_seed(dir, "storage-del", "DELETE " PREFIX "/storage/local\n");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *seeds = getenv("FUZZ_SEED_DIR");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* In place, as libmicrohttpd does it for query arguments. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s == '%' && hex(s[1]) >= 0 && hex(s[2]) >= 0) {
            *out++ = (char)(hex(s[1]) * 16 + hex(s[2]));
            s += 2;
        } else {
            *out++ = *s == '+' ? ' ' : *s;
        }
    }
    *out = '\0';
}

/* The numbers of the query as list_tasks, get_log and console read them. */
static void query_values(char *query)
{
    for (char *save = NULL, *kv = strtok_r(query, "&", &save); kv;
         kv = strtok_r(NULL, "&", &save)) {
        char *v = strchr(kv, '=');
        if (!v)
            continue;
        *v++ = '\0';
        unescape(kv);
        unescape(v);
        char *end = NULL;
        struct err e;
        uint32_t id;
        if (strcmp(kv, "limit") == 0 || strcmp(kv, "start") == 0)
            (void)strtol(v, &end, 10);
        else if (strcmp(kv, "offset") == 0)
            (void)strtoll(v, &end, 10);
        else if (strcmp(kv, "node") == 0)
            (void)name_check(v, "node name", &e);
        else if (strcmp(kv, "vmid") == 0)
            (void)keys_vmid_parse(v, &id, &e);
    }
}

static void body_checks(const struct api_req *req, uint32_t id)
{
    struct err e;
    const char *p = req->path;
    if (strcmp(p, "/vms") == 0 || strstr(p, "/config")) {
        struct vmconf c;
        if (vmconf_from_json(req->body, &c, &e) == 0)
            json_decref(vmconf_to_json(&c));
    } else if (strcmp(p, "/storage") == 0) {
        struct storage_conf s;
        if (storage_conf_from_json(req->body, &s, &e) == 0)
            json_decref(storage_conf_to_json(&s));
    } else if (strcmp(p, "/cluster/options") == 0) {
        struct cluster_options o;
        cluster_options_default(&o);
        if (cluster_options_update(req->body, &o, &e) == 0)
            json_decref(cluster_options_to_json(&o));
    } else if (strstr(p, "/migrate")) {
        struct migtask_plan plan;
        migtask_plan_init(&plan);
        (void)migtask_plan_parse(&plan, id ? id : 100, "n1", req->body, &e);
        migtask_plan_release(&plan);
    }
}

static void args_checks(const struct api_req *req, uint32_t *id)
{
    struct err e;
    char node[TERN_NAME_MAX + 1];
    *id = 0;
    if (strncmp(req->path, "/vms/", 5) == 0)
        (void)keys_vmid_parse(req->args[0], id, &e);
    else if (strncmp(req->path, "/tasks/", 7) == 0)
        (void)task_id_node(req->args[0], node, &e);
    else if (strncmp(req->path, "/storage/", 9) == 0)
        (void)name_check(req->args[0], "storage name", &e);
    else if (strncmp(req->path, "/nodes/", 7) == 0)
        (void)name_check(req->args[0], "node name", &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t head = nl ? (size_t)(nl - data) : size;
    char *line = strndup((const char *)data, head); /* stops at a NUL, as MHD */
    char *url = line ? strchr(line, ' ') : NULL;
    if (!url || strncmp(url + 1, PREFIX "/", strlen(PREFIX) + 1) != 0) {
        free(line);
        return 0;
    }
    *url++ = '\0';
    char *query = strchr(url, '?');
    if (query)
        *query++ = '\0';
    struct api_req req = {.method = line, .url = url, .path = url + strlen(PREFIX)};
    struct reply r = {0, NULL};
    bool known;
    const struct api_route *rt = api_route_find(&req, &known);
    const char *body = nl ? (const char *)nl + 1 : "";
    size_t len = nl ? size - head - 1 : 0;
    if (query)
        query_values(query);
    if (rt && api_body_parse(body, len, &req, &r) == 0) {
        uint32_t id;
        args_checks(&req, &id);
        if (req.body)
            body_checks(&req, id);
    }
    json_decref(r.body);
    json_decref(req.body);
    free(line);
    return 0;
}
