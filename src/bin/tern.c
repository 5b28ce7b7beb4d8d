/* tern: the command line of a tern cluster, a client of the local ternd's
 * REST API (docs/api.md). This file parses the command line and dispatches
 * to the command tables of the cmd_*.c files. Exit codes: 0 ok, 1 error,
 * 2 usage, 3 cluster not quorate. Errors are one line on stderr:
 * "tern: message". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/version.h"

static const struct cmd *const tables[] = {
    cmds_cluster, cmds_storage, cmds_vm, cmds_vmlife, cmds_vmdisk, cmds_task, cmds_ha, cmds_repl,
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

static const struct cmd_opt common_opts[] = {
    {"--output", "json|text", "json: the API's answer, indented (default text)", false,
     false},
    {"--api", "URL", "ternd's API, https://host:port (env TERN_API)", false, false},
    {"--token-file", "FILE", "admin token of that ternd (env TERN_TOKEN_FILE)", false,
     false},
    {"--ca-file", "FILE", "CA to trust for the API (env TERN_CA_FILE)", false, false},
    {"--config", "FILE",
     "ternd's config, for what is not given above (env "
     "TERN_CONFIG, default " CLI_CONFIG_DEFAULT ")",
     false, false},
    {NULL, NULL, NULL, false, false},
};

#define HELP_WIDTH 79
#define OPT_COLUMN 27 /* where the help of an option starts */

static const char exit_codes[] =
    "exit codes: 0 ok, 1 error, 2 usage, 3 cluster not quorate\n";

struct cmdline {
    struct call *k;
    const char *group, *verb;
    bool help;
    bool version;
};

static bool group_exists(const char *group)
{
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct cmd *c = tables[t]; c->group; c++)
            if (strcmp(c->group, group) == 0)
                return true;
    return false;
}

static const struct cmd *find_cmd(const char *group, const char *verb)
{
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct cmd *c = tables[t]; c->group; c++)
            if (strcmp(c->group, group) == 0 && strcmp(c->verb, verb) == 0)
                return c;
    return NULL;
}

static const struct cmd_opt *find_opt(const struct cmd_opt *opts, const char *name,
                                      size_t len)
{
    for (const struct cmd_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* Length of the word at text; a bracketed group ("[--bwlimit MIB/S]")
 * is one word, so that a synopsis never breaks inside one. */
static int word_len(const char *text)
{
    int depth = 0, n = 0;
    for (; text[n] && (text[n] != ' ' || depth > 0); n++)
        depth += (text[n] == '[' || text[n] == '(') - (text[n] == ']' || text[n] == ')');
    return n;
}

/* The words of text, the cursor being at column col: a space before each
 * word but at the start of a line, lines broken before HELP_WIDTH and
 * continued at column indent. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
    while (*text) {
        int word = word_len(text);
        if (col != indent && col + 1 + word > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else if (col != indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", word, text);
        col += word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

static void print_opts(FILE *f, const struct cmd_opt *opts, const struct cmd_opt *skip)
{
    for (const struct cmd_opt *o = opts; o && o->name; o++) {
        if (skip && find_opt(skip, o->name, strlen(o->name)))
            continue; /* the command gives this option its own meaning */
        char left[64], help[256];
        snprintf(left, sizeof(left), "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        snprintf(help, sizeof(help), "%s%s", o->help, o->repeat ? " (repeatable)" : "");
        int col = fprintf(f, "  %s", left);
        if (col < OPT_COLUMN)
            col += fprintf(f, "%*s", OPT_COLUMN - col, "");
        wrap(f, help, col, OPT_COLUMN);
    }
}

static void help_list(FILE *f, const char *group)
{
    fprintf(f, "usage: tern %s COMMAND [ARGUMENTS] [options]\ncommands:\n",
            group ? group : "GROUP");
    for (size_t t = 0; t < N_TABLES; t++)
        for (const struct cmd *c = tables[t]; c->group; c++) {
            if (group && strcmp(group, c->group) != 0)
                continue;
            char name[40];
            snprintf(name, sizeof(name), "%s %s", c->group, c->verb);
            fprintf(f, "  %-18s %s\n", name, c->summary);
        }
    fputs("common options:\n", f);
    print_opts(f, common_opts, NULL);
    fprintf(f, "  %-*s%s\n", OPT_COLUMN - 2, "--version", "the version of tern");
    fprintf(f, "  %-*s%s\n", OPT_COLUMN - 2, "--help",
            "what a command does, its options, examples");
    fputs(exit_codes, f);
    fprintf(f, "'tern %s COMMAND --help' for one command, e.g. 'tern vm migrate --help'.\n",
            group ? group : "GROUP");
}

static void help_cmd(FILE *f, const struct cmd *c)
{
    char head[64];
    snprintf(head, sizeof(head), "usage: tern %s %s", c->group, c->verb);
    fputs(head, f);
    if (c->synopsis[0])
        wrap(f, c->synopsis, (int)strlen(head), (int)strlen(head) + 1);
    else
        fputc('\n', f);
    fprintf(f, "%s.\n\n%s", c->summary, c->details);
    if (c->opts && c->opts->name) {
        fputs("options:\n", f);
        print_opts(f, c->opts, NULL);
    }
    fputs("common options:\n", f);
    print_opts(f, common_opts, c->opts);
    fputs(exit_codes, f);
    if (c->examples)
        fprintf(f, "examples:\n%s", c->examples);
}

/* The common options fill k->o; --output is checked here. */
static int take_common(struct call *k, const struct cmd_opt *o, const char *value)
{
    if (strcmp(o->name, "--output") == 0) {
        if (strcmp(value, "json") != 0 && strcmp(value, "text") != 0)
            return usage_error("--output wants json or text, not '%s'", value);
        k->json = strcmp(value, "json") == 0;
    } else if (strcmp(o->name, "--api") == 0) {
        k->o.api = value;
    } else if (strcmp(o->name, "--token-file") == 0) {
        k->o.token_file = value;
    } else if (strcmp(o->name, "--ca-file") == 0) {
        k->o.ca_file = value;
    } else {
        k->o.config = value;
    }
    return EXIT_OK;
}

/* "--name value" or "--name=value"; *i moves past a separate value. The
 * command's own options come first: `cluster join --token-file` is the
 * other node's token. */
static int take_option(struct cmdline *l, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const struct cmd_opt *o = find_opt(l->k->cmd ? l->k->cmd->opts : NULL, a, len);
    bool common = !o;
    if (common && !(o = find_opt(common_opts, a, len)))
        return usage_error("unknown option '%.*s'%s", (int)len, a,
                           l->verb ? "" : " (options follow the command)");
    const char *value = NULL;
    if (!o->metavar && eq)
        return usage_error("option '%s' takes no value", o->name);
    if (o->metavar) {
        if (!eq && *i + 1 >= argc)
            return usage_error("option '%s' needs a value %s", o->name, o->metavar);
        value = eq ? eq + 1 : argv[++*i];
    }
    if (common)
        return take_common(l->k, o, value);
    if (l->k->n_seen >= CALL_SEEN_MAX)
        return usage_error("too many options at '%s'", a);
    l->k->seen[l->k->n_seen].opt = o;
    l->k->seen[l->k->n_seen++].value = value;
    return EXIT_OK;
}

static int take_word(struct cmdline *l, const char *w)
{
    struct call *k = l->k;
    if (!l->group) {
        l->group = w;
        if (!group_exists(w))
            return usage_error("unknown command '%s' (tern --help lists them)", w);
    } else if (!l->verb) {
        l->verb = w;
        if (!(k->cmd = find_cmd(l->group, w)))
            return usage_error("unknown command '%s %s' (tern %s --help lists them)",
                               l->group, w, l->group);
    } else if (k->n_arg >= k->cmd->max_args || k->n_arg >= CALL_ARGS_MAX) {
        return usage_error("unexpected argument '%s' (tern %s %s --help)", w, l->group,
                           l->verb);
    } else {
        k->arg[k->n_arg++] = w;
    }
    return EXIT_OK;
}

static int parse(struct cmdline *l, int argc, char **argv)
{
    bool words_only = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = EXIT_OK;
        if (!words_only && strcmp(a, "--") == 0)
            words_only = true;
        else if (!words_only && strcmp(a, "--version") == 0)
            l->version = true;
        else if (!words_only && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0))
            l->help = true;
        else if (!words_only && a[0] == '-' && a[1])
            rc = take_option(l, argc, argv, &i);
        else
            rc = take_word(l, a);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
}

/* The n-th word of the synopsis names the n-th positional argument. */
static void arg_name(const struct cmd *c, int n, char *out, size_t size)
{
    const char *p = c->synopsis;
    for (; n > 0 && *p; n--)
        p = strchr(p, ' ') ? strchr(p, ' ') + 1 : p + strlen(p);
    snprintf(out, size, "%.*s", (int)strcspn(p, " "), p);
}

static int check_complete(const struct cmdline *l)
{
    const struct call *k = l->k;
    const struct cmd *c = k->cmd;
    if (!l->group)
        return usage_error("no command given (tern --help lists them)");
    if (!c)
        return usage_error("missing command after '%s' (tern %s --help lists them)",
                           l->group, l->group);
    if (k->n_arg < c->min_args) {
        char name[32];
        arg_name(c, k->n_arg, name, sizeof(name));
        return usage_error("missing argument %s (tern %s %s --help)", name, c->group,
                           c->verb);
    }
    for (const struct cmd_opt *o = c->opts; o && o->name; o++)
        if (o->required && !call_flag(k, o->name))
            return usage_error("missing option %s %s (tern %s %s --help)", o->name,
                               o->metavar ? o->metavar : "", c->group, c->verb);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static struct call k;
    struct cmdline l = {.k = &k};
    int rc = parse(&l, argc, argv);
    if (l.version && rc == EXIT_OK) {
        puts("tern " TERN_VERSION);
        return EXIT_OK;
    }
    if (l.help && rc == EXIT_OK) {
        k.cmd ? help_cmd(stdout, k.cmd) : help_list(stdout, l.group);
        return EXIT_OK;
    }
    if (rc == EXIT_OK)
        rc = check_complete(&l); /* after --help: help needs no arguments */
    if (rc != EXIT_OK)
        return rc;
    rc = k.cmd->run(&k);
    fflush(stdout);
    if (k.connected)
        client_release(&k.client);
    return rc;
}
