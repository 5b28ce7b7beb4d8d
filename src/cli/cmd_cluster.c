/* tern cluster ... and tern node list: membership, quorum, cluster options. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/print.h"
#define TOKEN_HEX 64
#define FINGERPRINT_B64 44

static int run_create(struct call *k)
{
    int rc = check_name("cluster name", k->arg[0]);
    json_t *ans;
    if (rc == EXIT_OK)
        rc = api(k, "POST", "/cluster", json_pack("{ss}", "name", k->arg[0]), &ans);
    if (rc != EXIT_OK)
        return rc;
    return print_answer(k, ans, "created cluster '%s' on node %s",
                        jstr(ans, "cluster_name", k->arg[0]), jstr(ans, "node", "?"));
}

/* host:port or [v6]:port, port 1..65535. */
static int check_address(const char *text)
{
    const char *colon = strrchr(text, ':');
    uint64_t port;
    bool v6 = text[0] == '[';
    if (!colon || colon == text || (v6 && colon[-1] != ']') ||
        (!v6 && memchr(text, ':', (size_t)(colon - text))))
        return usage_error("bad address '%s' (host:port of a member's API)", text);
    return check_uint("port of the address", colon + 1, 1, 65535, &port);
}

static bool is_token(const char *t)
{
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)t[i]))
            return false;
    return n == TOKEN_HEX;
}

/* "sha256//" and the 44 base64 characters of a SHA-256. */
static bool is_fingerprint(const char *fp)
{
    const char *b64 = fp + 8;
    if (strncmp(fp, "sha256//", 8) != 0 || strlen(b64) != FINGERPRINT_B64)
        return false;
    for (; *b64; b64++)
        if (!isalnum((unsigned char)*b64) && !strchr("+/=", *b64))
            return false;
    return true;
}

/* The other node's admin token: --token, or the first line of --token-file. */
static int join_token(const struct call *k, char out[TOKEN_HEX + 2])
{
    const char *token = call_opt(k, "--token"), *file = call_opt(k, "--token-file");
    if (!token == !file)
        return usage_error("give one of --token-file FILE and --token TOKEN "
                           "(the other node's admin token)");
    if (token) {
        if (!is_token(token))
            return usage_error("bad --token (64 hex characters)");
        snprintf(out, TOKEN_HEX + 2, "%s", token);
        return EXIT_OK;
    }
    FILE *f = fopen(file, "r");
    if (!f)
        return fail("token file %s: %s", file, strerror(errno));
    char line[256] = "";
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!got || !is_token(line))
        return fail("token file %s: not an admin token (64 hex characters)", file);
    snprintf(out, TOKEN_HEX + 2, "%s", line);
    explicit_bzero(line, sizeof(line));
    return EXIT_OK;
}

static int run_join(struct call *k)
{
    const char *fp = call_opt(k, "--fingerprint");
    char token[TOKEN_HEX + 2];
    int rc = check_address(k->arg[0]);
    if (rc == EXIT_OK && !is_fingerprint(fp))
        rc = usage_error("bad --fingerprint '%s' (sha256//..., from 'tern cluster "
                         "status' on that node)",
                         fp);
    if (rc == EXIT_OK)
        rc = join_token(k, token);
    if (rc != EXIT_OK)
        return rc;
    json_t *ans;
    rc = api(k, "POST", "/cluster/join",
             json_pack("{ssssss}", "address", k->arg[0], "token", token, "fingerprint", fp),
             &ans);
    explicit_bzero(token, sizeof(token));
    if (rc != EXIT_OK)
        return rc;
    return print_answer(k, ans, "node %s joined cluster '%s' (%lld members)",
                        jstr(ans, "node", "?"), jstr(ans, "cluster_name", "?"),
                        (long long)json_integer_value(json_object_get(ans, "members")));
}

static int run_join_token(struct call *k)
{
    const char *ttl_s = call_opt(k, "--ttl");
    uint64_t ttl = 1800;
    int rc = ttl_s ? check_uint("--ttl", ttl_s, 60, 86400, &ttl) : EXIT_OK;
    json_t *ans;
    if (rc == EXIT_OK)
        rc = api(k, "POST", "/cluster/join-tokens",
                 json_pack("{sI}", "ttl_s", (json_int_t)ttl), &ans);
    if (rc != EXIT_OK)
        return rc;
    return print_answer(k, ans,
                        "%s\n(good for one join within %llu s) on the new node run:\n"
                        "  tern cluster join %s --fingerprint %s --token %s",
                        jstr(ans, "token", "?"), (unsigned long long)ttl,
                        jstr(ans, "address", "?"), jstr(ans, "fingerprint", "?"),
                        jstr(ans, "token", "?"));
}

static int run_leave(struct call *k)
{
    return api_change(k, "POST", "/cluster/leave", "node left the cluster");
}

static int run_node_remove(struct call *k)
{
    char path[128];
    int rc = check_name("node name", k->arg[0]);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/nodes/%s", k->arg[0]);
    return api_change(k, "DELETE", path, "node %s removed from the cluster", k->arg[0]);
}

static int run_status(struct call *k)
{
    json_t *body;
    int rc = api_get(k, "/cluster/status", &body);
    if (rc != EXIT_OK)
        return rc;
    k->json ? print_json(stdout, body) : print_cluster_status(stdout, body);
    rc = json_is_true(json_object_get(body, "quorate")) ? EXIT_OK : EXIT_NOT_QUORATE;
    json_decref(body);
    return rc;
}

static int migration_key(const char *key, const char *v, json_t *m)
{
    int rc;
    if (strcmp(key, "type") == 0) {
        if ((rc = check_migration_type("migration type", v)) != EXIT_OK)
            return rc;
        json_object_set_new(m, "type", json_string(v));
    } else if (strcmp(key, "network") == 0 && strcmp(v, "none") == 0) {
        json_object_set_new(m, "network", json_null());
    } else if (strcmp(key, "network") == 0) {
        if ((rc = check_cidr("migration network", v)) != EXIT_OK)
            return rc;
        json_object_set_new(m, "network", json_string(v));
    } else {
        return usage_error("unknown migration option '%s' (type, network)", key);
    }
    return EXIT_OK;
}

/* "type=secure,network=10.0.1.0/24" -> {"type": ..., "network": ...}; the
 * keys not given are left out, so the PUT leaves them as they are. */
static int parse_migration(const char *text, json_t *m)
{
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf) || !buf[0] ||
        buf[0] == ',' || strstr(buf, ",,") || buf[strlen(buf) - 1] == ',')
        return usage_error("bad migration options '%.60s' (type=secure|insecure"
                           "[,network=CIDR|none])",
                           text);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return usage_error("bad migration option '%s' (key=value)", kv);
        *eq = '\0';
        int rc = migration_key(kv, eq + 1, m);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
}

static int run_set(struct call *k)
{
    if (strcmp(k->arg[0], "migration") != 0)
        return usage_error("unknown cluster option '%s' (migration)", k->arg[0]);
    json_t *m = json_object();
    int rc = parse_migration(k->arg[1], m);
    if (rc != EXIT_OK) {
        json_decref(m);
        return rc;
    }
    json_t *ans;
    rc = api(k, "PUT", "/cluster/options", json_pack("{so}", "migration", m), &ans);
    return rc == EXIT_OK ? show_answer(k, ans, print_cluster_options) : rc;
}

static int run_options(struct call *k)
{
    return show_listing(k, "/cluster/options", print_cluster_options);
}

static int run_node_list(struct call *k)
{
    return show_listing(k, "/nodes", print_node_list);
}

static void print_node(FILE *f, const json_t *n)
{
    const json_t *info = json_object_get(n, "info");
    char free_s[32] = "-", total_s[32] = "-";
    if (json_is_integer(json_object_get(info, "memory_free")))
        human_bytes((double)json_integer_value(json_object_get(info, "memory_free")),
                    free_s, sizeof(free_s));
    if (json_is_integer(json_object_get(info, "memory_total")))
        human_bytes((double)json_integer_value(json_object_get(info, "memory_total")),
                    total_s, sizeof(total_s));
    fprintf(f, "name:      %s\nstatus:    %s\n", jstr(n, "name", "?"),
            json_is_true(json_object_get(n, "online")) ? "online" : "offline");
    if (json_is_integer(json_object_get(n, "vms")))
        fprintf(f, "vms:       %lld\n",
                (long long)json_integer_value(json_object_get(n, "vms")));
    fprintf(f, "memory:    %s free of %s\nversion:   %s\ncpu:       %s\n", free_s, total_s,
            jstr(info, "version", "-"), jstr(info, "cpu_model", "-"));
    fprintf(f, "api:       %s\nmigration: %s\ncluster:   %s\n",
            jstr(info, "api_address", "-"), jstr(info, "migration_address", "-"),
            jstr(info, "cluster_address", "-"));
    size_t i;
    const json_t *b;
    fprintf(f, "bridges:  ");
    json_array_foreach(json_object_get(info, "bridges"), i, b)
        fprintf(f, " %s", json_string_value(b) ? json_string_value(b) : "?");
    fprintf(f, "%s\n", json_array_size(json_object_get(info, "bridges")) ? "" : " none");
}

/* One node of GET /nodes (there is no GET /nodes/NAME): exit 1 when the
 * cluster has no such node, 3 when the view is stale. */
static int run_node_show(struct call *k)
{
    json_t *ans, *found = NULL;
    int rc = check_name("node name", k->arg[0]);
    if (rc == EXIT_OK)
        rc = api_get(k, "/nodes", &ans);
    if (rc != EXIT_OK)
        return rc;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(ans, "nodes"), i, n)
        if (strcmp(jstr(n, "name", ""), k->arg[0]) == 0)
            found = json_incref(n);
    bool stale = json_is_true(json_object_get(ans, "stale"));
    json_decref(ans);
    if (!found) {
        if (k->json)
            printf("{\"error\": \"no node '%s' in the cluster\", \"status\": 404}\n",
                   k->arg[0]);
        return fail("no node '%s' in the cluster", k->arg[0]);
    }
    rc = show_answer(k, found, print_node);
    if (stale)
        return fail("cluster not quorate: this node's view may be stale"), EXIT_NOT_QUORATE;
    return rc;
}

static const struct cmd_opt join_opts[] = {
    {"--fingerprint", "FP",
     "that node's key pin, sha256//... ('tern cluster status' "
     "there prints it)",
     true, false},
    {"--token-file", "FILE",
     "that node's admin token file (DATA_DIR/admin.token "
     "there); this node's token then comes from "
     "TERN_TOKEN_FILE or the config",
     false, false},
    {"--token", "TOKEN",
     "a one-time join token ('tern cluster join-token' there) or that node's "
     "admin token (64 hex characters)",
     false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt token_opts[] = {
    {"--ttl", "SECONDS", "how long the token is good for (60..86400, default 1800)", false,
     false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_cluster[] = {
    {"cluster", "create", "NAME", 1, 1, "create a cluster of one node: this one",
     "Only on a node in no cluster yet. Starts this node's etcd member as a new\n"
     "one-member cluster; other nodes then join it with 'tern cluster join'.\n",
     "  tern cluster create prod\n", NULL, run_create},
    {"cluster", "join", "ADDRESS --fingerprint FP (--token-file FILE | --token TOKEN)", 1,
     1, "join this node to the cluster of the node at ADDRESS",
     "ADDRESS is host:port of the API of any member (its api_address). The\n"
     "fingerprint pins that node's key; a one-time join token from 'tern cluster\n"
     "join-token' (or that node's admin token) proves the right to join. That\n"
     "node then signs this node's certificate for etcd with the cluster CA.\n",
     "  tern cluster join 10.0.0.1:8006 --fingerprint sha256//3q2+7w... \\\n"
     "      --token-file /root/n1.token\n",
     join_opts, run_join},
    {"cluster", "join-token", "[--ttl SECONDS]", 0, 0,
     "a one-time token for 'tern cluster join' on a new node",
     "Prints a token that admits one node, once, until it expires, and the\n"
     "join command line to run on the new node. Only its hash is kept (in etcd);\n"
     "a token that was used or expired is refused.\n",
     "  tern cluster join-token\n  tern cluster join-token --ttl 600\n", token_opts,
     run_join_token},
    {"cluster", "leave", "", 0, 0, "this node leaves its cluster",
     "Refused while the node owns VMs (they are named: migrate or destroy them\n"
     "first) or runs tern-vmm processes, and when it is the only member. The\n"
     "node goes offline, its etcd member is removed through the others, its\n"
     "record deleted; its etcd data and certificate are removed here. It can\n"
     "then create or join a cluster again.\n",
     "  tern cluster leave\n", NULL, run_leave},
    {"cluster", "status", "", 0, 0, "quorum, etcd members and the leader",
     "Asks every etcd member its status and proves quorum with a linearizable\n"
     "read. Also prints the cluster's name and this node's fingerprint (for\n"
     "'tern cluster join' on another node). Exits 3 when the cluster is not\n"
     "quorate (the report is still printed).\n",
     "  tern cluster status\n  tern cluster status --output json\n", NULL, run_status},
    {"cluster", "set", "migration type=secure|insecure[,network=CIDR|none]", 2, 2,
     "change cluster options: how migrations travel",
     "type secure: TLS between the two VM monitors, each pinned to the other\n"
     "node's key (the default); insecure: plain TCP, for trusted networks.\n"
     "network: the CIDR whose addresses carry migrations; none clears it.\n"
     "Keys not given stay as they are. Prints the options after the change.\n",
     "  tern cluster set migration type=insecure,network=10.0.1.0/24\n"
     "  tern cluster set migration network=none\n",
     NULL, run_set},
    {"cluster", "options", "", 0, 0, "show the cluster options",
     "Prints the options in the syntax 'tern cluster set' takes. Without quorum\n"
     "prints this node's possibly stale copy and exits 3.\n",
     "  tern cluster options\n", NULL, run_options},
    {"node", "show", "NAME", 1, 1, "one node: status, VMs, memory, version, addresses",
     "The node as 'tern node list' shows it, with its addresses. Exit 1 when\n"
     "the cluster has no such node.\n",
     "  tern node show n2\n", NULL, run_node_show},
    {"node", "remove", "NAME", 1, 1, "remove a dead node from the cluster",
     "For a node that is gone (offline): its etcd member is removed and its\n"
     "record deleted. Refused while it is online (run 'tern cluster leave' on\n"
     "it) or owns VMs (they are named). Before that host joins again, remove\n"
     "its DATA_DIR/etcd and DATA_DIR/pki.\n",
     "  tern node remove n3\n", NULL, run_node_remove},
    {"node", "list", "", 0, 0, "the nodes: online or offline, VMs, memory, version, cpu",
     "Every member node; a node is online while its heartbeat lease lives.\n"
     "Without quorum prints this node's possibly stale view and exits 3.\n",
     "  tern node list\n  tern node list --output json\n", NULL, run_node_list},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
