/* Waiting for tasks (vm start, stop) and following their logs as they grow
 * (vm migrate, task log --follow), with a progress line on a terminal. */
#ifndef TERN_CLI_FOLLOW_H
#define TERN_CLI_FOLLOW_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"

#define TASK_WAIT_MS 200
#define TASK_FOLLOW_MS 250

/* Polls GET /tasks/ID every TASK_WAIT_MS until it is no longer running.
 * EXIT_OK when it ended OK; otherwise its log goes to stderr and EXIT_ERROR.
 * *task (may be NULL) gets the final task object. */
int task_wait(struct call *k, const char *upid, json_t **task);

/* The log as it is now, every line to f. */
int task_print_log(struct call *k, const char *upid, FILE *f);

struct follow {
    bool progress;      /* a progress line on stderr from the task's progress */
    bool catch_sigint;  /* Ctrl-C stops following and says the task goes on */
    const char *cancel; /* with catch_sigint: Ctrl-C first asks "cancel
                         * <this>? [y/N]" on /dev/tty */
};

/* Prints the log to stdout as it grows until the task ends: EXIT_OK when
 * its last line is TASK OK, EXIT_ERROR on TASK ERROR, and also when
 * following stopped early (the outcome is unknown then). */
int task_follow(struct call *k, const char *upid, const struct follow *f);

#endif
