/* The pieces every tern command is made of: a command table entry per
 * command (cmd_*.c), the parsed command line (struct call), checks of
 * option values that fail with exit code 2 before anything is sent, and
 * the API calls that turn an HTTP answer into an exit code. */
#ifndef TERN_CLI_CLI_H
#define TERN_CLI_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/client.h"

#define CALL_ARGS_MAX 4
#define CALL_SEEN_MAX 32
#define CLI_VMID_MIN 100
#define CLI_VMID_MAX 999999999ull

struct cmd_opt {
    const char *name;    /* "--memory" */
    const char *metavar; /* "MIB"; NULL for a flag */
    const char *help;
    bool required;
    bool repeat; /* may be given more than once */
};

struct call;

struct cmd {
    const char *group, *verb;   /* "vm", "create" */
    const char *synopsis;       /* what follows "tern vm create" */
    int min_args, max_args;     /* positional arguments after the verb */
    const char *summary;        /* one line, for tern --help */
    const char *details;        /* a paragraph, each line ending in \n */
    const char *examples;       /* lines, each ending in \n */
    const struct cmd_opt *opts; /* ends with {NULL}; may be NULL */
    int (*run)(struct call *k);
};

/* The tables, one per area, each ending with {NULL}. */
extern const struct cmd cmds_cluster[];
extern const struct cmd cmds_storage[];
extern const struct cmd cmds_vm[];
extern const struct cmd cmds_vmlife[];
extern const struct cmd cmds_vmdisk[];
extern const struct cmd cmds_task[];
extern const struct cmd cmds_ha[];
extern const struct cmd cmds_repl[];

struct call {
    const struct cmd *cmd;
    const char *arg[CALL_ARGS_MAX];
    int n_arg;
    struct {
        const struct cmd_opt *opt;
        const char *value; /* NULL for a flag */
    } seen[CALL_SEEN_MAX];
    int n_seen;
    bool json;            /* --output json */
    struct cli_options o; /* where the API is */
    struct client client;
    bool connected;
};

/* Options given to the command: the last value, the n-th value of a
 * repeatable one (NULL past the end), whether a flag was given. */
const char *call_opt(const struct call *k, const char *name);
const char *call_opt_nth(const struct call *k, const char *name, int n);
bool call_flag(const struct call *k, const char *name);

/* "tern: ..." on stderr; returns code. usage_error gives EXIT_USAGE, fail
 * EXIT_ERROR. */
int cli_say(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define usage_error(...) cli_say(EXIT_USAGE, __VA_ARGS__)
#define fail(...) cli_say(EXIT_ERROR, __VA_ARGS__)

/* Checks of values; on failure one line naming the value, EXIT_USAGE. */
int check_vmid(const char *text, uint32_t *id);
int check_name(const char *what, const char *text);
int check_uint(const char *what, const char *text, uint64_t min, uint64_t max,
               uint64_t *out);
/* "64", "64M", "2G": MiB. */
int check_size_mib(const char *what, const char *text, uint64_t *mib);
int check_cidr(const char *what, const char *text);
int check_task_id(const char *text);
int check_migration_type(const char *what, const char *text);
/* --net bridge=BR[,mac=MAC]... (or --net none) as "nets" in body; nothing
 * when no --net is given (cmd_vm.c). */
int vm_nets_option(const struct call *k, json_t *body);
/* --disk STORAGE:SIZE... appended to the array disks (cmd_vm.c). */
int vm_disks_option(const struct call *k, json_t *disks);

/* One API request ("/vms", prefixed with /api/v1). req is consumed (may
 * be NULL). EXIT_OK with *answer on 2xx; otherwise prints the error line
 * and returns EXIT_ERROR, or EXIT_NOT_QUORATE for 503. Connects on first
 * use, so commands check their arguments before anything is sent. */
int api(struct call *k, const char *method, const char *path, json_t *req, json_t **answer);
int api_get(struct call *k, const char *path, json_t **answer);
/* The same for callers that read the body of a refusal too: EXIT_OK with
 * *status and *answer for any HTTP answer; api_refused then prints the
 * error line of a non-2xx one, consumes it and gives the exit code. */
int api_answer(struct call *k, const char *method, const char *path, json_t *req,
               long *status, json_t **answer);
int api_refused(const struct call *k, long status, json_t *answer);
/* A change without a body (DELETE, or POST of an action), then
 * print_answer of its answer with fmt. */
int api_change(struct call *k, const char *method, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* GET path, printed as JSON or with print; EXIT_NOT_QUORATE (and a line
 * saying so) when the listing is marked stale. */
int show_listing(struct call *k, const char *path,
                 void (*print)(FILE *f, const json_t *body));
/* The answer of a change: with --output json the API's JSON, indented;
 * otherwise the line fmt says (the newline is added). Then json_decref;
 * EXIT_OK. */
int print_answer(const struct call *k, json_t *answer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The answer as JSON or as print writes it, then json_decref; EXIT_OK. */
int show_answer(const struct call *k, json_t *answer,
                void (*print)(FILE *f, const json_t *body));

/* Ctrl-C: after cli_catch_sigint() it only sets cli_interrupted, and
 * sleeps end early. */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_sigint(void);
void cli_sleep_ms(long ms);

#endif
