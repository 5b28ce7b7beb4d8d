/* tern: the command line of a tern cluster, a client of the local ternd's
 * REST API (docs/api.md). Exit codes: 0 ok, 1 error, 2 usage, 3 cluster not
 * quorate. Errors are one line on stderr: "tern: message". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/print.h"
#include "common/err.h"

#define WORDS_MAX 4

struct args {
    struct cli_options o;
    bool json;
    bool help;
    const char *words[WORDS_MAX];
    int n_words;
};

struct command {
    const char *group, *verb;
    const char *summary;
    const char *details;
    int (*run)(struct client *c, bool json);
};

static int run_cluster_status(struct client *c, bool json);
static int run_node_list(struct client *c, bool json);

static const struct command commands[] = {
    {"cluster", "status", "quorum, etcd members and the leader",
     "Asks every etcd member its status and proves quorum with a linearizable\n"
     "read. Exits 3 when the cluster is not quorate (the report is still printed).\n",
     run_cluster_status},
    {"node", "list", "the nodes: online or offline, memory, version, cpu",
     "Every member node; a node is online while its heartbeat lease lives.\n"
     "Without quorum prints this node's possibly stale view and exits 3.\n",
     run_node_list},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char options_help[] =
    "options:\n"
    "  --output json|text  output format of listings (default text)\n"
    "  --api URL           ternd's API, https://host:port  (env TERN_API)\n"
    "  --token-file FILE   admin token file               (env TERN_TOKEN_FILE)\n"
    "  --ca-file FILE      CA to trust for the API        (env TERN_CA_FILE)\n"
    "  --config FILE       ternd's config, for what is not given above\n"
    "                      (env TERN_CONFIG, default " CLI_CONFIG_DEFAULT ")\n"
    "exit codes: 0 ok, 1 error, 2 usage, 3 cluster not quorate\n";

static void usage_all(FILE *f)
{
    fprintf(f, "usage: tern [options] COMMAND\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %s %-*s %s\n", commands[i].group,
                (int)(15 - strlen(commands[i].group)), commands[i].verb,
                commands[i].summary);
    fputs(options_help, f);
    fputs("'tern COMMAND --help' for one command.\n", f);
}

static void usage_command(FILE *f, const struct command *c)
{
    fprintf(f, "usage: tern %s %s [options]\n%s%s", c->group, c->verb, c->details,
            options_help);
}

/* "--name value" or "--name=value"; *i moves past a separate value. */
static int option_value(int argc, char **argv, int *i, const char *name,
                        const char **out)
{
    size_t len = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, len) != 0)
        return 0;
    if (a[len] == '=') {
        *out = a + len + 1;
        return 1;
    }
    if (a[len] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

static int parse_option(int argc, char **argv, int *i, struct args *a)
{
    const char *names[] = {"--api", "--token-file", "--ca-file", "--config", "--output"};
    const char **slots[] = {&a->o.api, &a->o.token_file, &a->o.ca_file, &a->o.config, NULL};
    const char *output = NULL;
    slots[4] = &output;
    for (size_t k = 0; k < 5; k++) {
        int rc = option_value(argc, argv, i, names[k], slots[k]);
        if (rc < 0) {
            fprintf(stderr, "tern: option '%s' needs a value\n", names[k]);
            return -1;
        }
        if (rc == 0)
            continue;
        if (output && strcmp(output, "json") != 0 && strcmp(output, "text") != 0) {
            fprintf(stderr, "tern: --output wants json or text, not '%s'\n", output);
            return -1;
        }
        if (output)
            a->json = strcmp(output, "json") == 0;
        return 0;
    }
    fprintf(stderr, "tern: unknown option '%s'\n", argv[*i]);
    return -1;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
        } else if (argv[i][0] == '-') {
            if (parse_option(argc, argv, &i, a) < 0)
                return -1;
        } else if (a->n_words < WORDS_MAX) {
            a->words[a->n_words++] = argv[i];
        } else {
            fprintf(stderr, "tern: too many words at '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static const struct command *find_command(const struct args *a)
{
    if (a->n_words != 2)
        return NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].group, a->words[0]) == 0 &&
            strcmp(commands[i].verb, a->words[1]) == 0)
            return &commands[i];
    return NULL;
}

/* Any answer other than 200: the API's {"error"} as one line; 503 is
 * "cluster not quorate" and gets its own exit code. */
static int api_failed(const struct client *c, long status, const json_t *body)
{
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (!msg)
        msg = "no error message";
    if (status == 401)
        fprintf(stderr, "tern: unauthorized by ternd at %s: %s (token from %s)\n",
                c->base, msg, c->token_file);
    else
        fprintf(stderr, "tern: %s (http %ld)\n", msg, status);
    return status == 503 ? EXIT_NOT_QUORATE : EXIT_ERROR;
}

static int get(struct client *c, const char *path, json_t **body)
{
    struct err e;
    long status = 0;
    if (client_get(c, path, &status, body, &e) < 0) {
        fprintf(stderr, "tern: %s\n", e.msg);
        return EXIT_ERROR;
    }
    if (status == 200)
        return EXIT_OK;
    int rc = api_failed(c, status, *body);
    json_decref(*body);
    *body = NULL;
    return rc;
}

static int run_cluster_status(struct client *c, bool json)
{
    json_t *body;
    int rc = get(c, "/api/v1/cluster/status", &body);
    if (rc != EXIT_OK)
        return rc;
    json ? print_json(stdout, body) : print_cluster_status(stdout, body);
    rc = json_is_true(json_object_get(body, "quorate")) ? EXIT_OK : EXIT_NOT_QUORATE;
    json_decref(body);
    return rc;
}

static int run_node_list(struct client *c, bool json)
{
    json_t *body;
    int rc = get(c, "/api/v1/nodes", &body);
    if (rc != EXIT_OK)
        return rc;
    json ? print_json(stdout, body) : print_node_list(stdout, body);
    if (json_is_true(json_object_get(body, "stale"))) {
        fprintf(stderr, "tern: cluster not quorate: this node's view may be stale\n");
        rc = EXIT_NOT_QUORATE;
    }
    json_decref(body);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse_args(argc, argv, &a) < 0)
        return EXIT_USAGE;
    const struct command *cmd = find_command(&a);
    if (a.help) {
        cmd ? usage_command(stdout, cmd) : usage_all(stdout);
        return EXIT_OK;
    }
    if (!cmd) {
        if (a.n_words == 0)
            fprintf(stderr, "tern: no command given (tern --help lists them)\n");
        else
            fprintf(stderr, "tern: unknown command '%s%s%s' (tern --help lists them)\n",
                    a.words[0], a.n_words > 1 ? " " : "", a.n_words > 1 ? a.words[1] : "");
        return EXIT_USAGE;
    }
    struct client c;
    struct err e;
    client_init(&c);
    int rc = client_setup(&c, &a.o, &e);
    if (rc < 0)
        fprintf(stderr, "tern: %s\n", e.msg);
    else
        rc = cmd->run(&c, a.json);
    client_release(&c);
    return rc < 0 ? EXIT_ERROR : rc;
}
