#include "cli/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/print.h"
#include "cli/progress_bar.h"

/* What a follow has printed and drawn so far. */
struct follow_state {
    const struct follow *f;
    long long start; /* next log line to ask for */
    char last[512];  /* the last log line, for TASK OK / TASK ERROR */
    bool bar_shown;
    bool cancel_sent;
};

int task_wait(struct call *k, const char *upid, json_t **task)
{
    char path[300];
    snprintf(path, sizeof(path), "/tasks/%s", upid);
    json_t *t = NULL;
    for (;;) {
        int rc = api_get(k, path, &t);
        if (rc != EXIT_OK)
            return rc;
        if (strcmp(jstr(t, "status", "running"), "running") != 0)
            break;
        json_decref(t);
        cli_sleep_ms(TASK_WAIT_MS);
    }
    bool ok = strcmp(jstr(t, "status", ""), "OK") == 0;
    if (!ok && task_print_log(k, upid, stderr) != EXIT_OK)
        fail("task %s: %s", upid, jstr(t, "status", "?"));
    if (task)
        *task = t;
    else
        json_decref(t);
    return ok ? EXIT_OK : EXIT_ERROR;
}

/* One page of the log from *start on; *start moves past it. */
static int log_page(struct call *k, const char *upid, long long *start, json_t **page)
{
    char path[340];
    snprintf(path, sizeof(path), "/tasks/%s/log?start=%lld", upid, *start);
    int rc = api_get(k, path, page);
    if (rc != EXIT_OK)
        return rc;
    json_t *next = json_object_get(*page, "next");
    if (json_is_integer(next))
        *start = json_integer_value(next);
    else
        *start += (long long)json_array_size(json_object_get(*page, "lines"));
    return EXIT_OK;
}

int task_print_log(struct call *k, const char *upid, FILE *f)
{
    long long start = 0;
    for (;;) {
        json_t *page;
        long long before = start;
        int rc = log_page(k, upid, &start, &page);
        if (rc != EXIT_OK)
            return rc;
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(page, "lines"), i, line)
            fprintf(f, "%s\n", json_string_value(line) ? json_string_value(line) : "");
        size_t n = json_array_size(json_object_get(page, "lines"));
        json_decref(page);
        if (n == 0 || start <= before)
            return EXIT_OK;
    }
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

static void clear_bar(struct follow_state *s)
{
    if (!s->bar_shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    s->bar_shown = false;
}

/* Fixed widths (cli/progress_bar.h): a redraw with \r never jitters. */
static void draw_bar(struct follow_state *s, const json_t *p)
{
    char line[256];
    progress_bar_text(p, term_width() - 1, line, sizeof(line));
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    s->bar_shown = true;
}

static void show_progress(struct call *k, const char *upid, struct follow_state *s)
{
    char path[300];
    json_t *t;
    snprintf(path, sizeof(path), "/tasks/%s", upid);
    /* the bar is decoration: a failed poll (its error line is printed)
     * only skips a redraw; the log decides how the follow ends */
    if (api_get(k, path, &t) != EXIT_OK)
        return;
    const json_t *p = json_object_get(t, "progress");
    if (json_is_object(p))
        draw_bar(s, p);
    json_decref(t);
}

/* Ctrl-C on a terminal: ask, and cancel on y. false: stop following. */
static bool ask_cancel(struct call *k, const char *upid, struct follow_state *s)
{
    FILE *tty = fopen("/dev/tty", "r+");
    if (!tty)
        return false;
    cli_interrupted = 0;
    fprintf(tty, "\ncancel %s? [y/N] ", s->f->cancel);
    fflush(tty);
    char answer[16];
    /* a second Ctrl-C interrupts the read: leave */
    bool answered = fgets(answer, sizeof(answer), tty) != NULL;
    if (!answered)
        fputc('\n', tty); /* the prompt's line was left open */
    fclose(tty);
    cli_interrupted = 0;
    if (!answered)
        return false;
    if (answer[0] != 'y' && answer[0] != 'Y')
        return true;
    char path[320];
    json_t *ans;
    snprintf(path, sizeof(path), "/tasks/%s/cancel", upid);
    if (api(k, "POST", path, NULL, &ans) == EXIT_OK) {
        s->cancel_sent = true;
        fprintf(stderr, "cancelled; the rest of task %s:\n", upid);
        json_decref(ans);
    }
    return true;
}

/* true: go on following. */
static bool on_interrupt(struct call *k, const char *upid, struct follow_state *s)
{
    clear_bar(s);
    if (s->f->cancel && !s->cancel_sent && ask_cancel(k, upid, s))
        return true;
    fail("stopped following; task %s goes on (tern task log %s --follow)", upid, upid);
    return false;
}

/* Prints the new lines; *ended once the task no longer runs and its log
 * has been printed to the end. */
static int follow_step(struct call *k, const char *upid, struct follow_state *s,
                       bool *ended)
{
    json_t *page;
    int rc = log_page(k, upid, &s->start, &page);
    if (rc != EXIT_OK)
        return rc;
    size_t i, n = json_array_size(json_object_get(page, "lines"));
    json_t *line;
    if (n > 0)
        clear_bar(s);
    json_array_foreach(json_object_get(page, "lines"), i, line) {
        const char *text = json_string_value(line) ? json_string_value(line) : "";
        printf("%s\n", text);
        snprintf(s->last, sizeof(s->last), "%s", text);
    }
    fflush(stdout);
    /* the last page comes with running false; a page cut at its size limit
     * does too, so an end without the final TASK line asks once more */
    *ended = !json_is_true(json_object_get(page, "running")) &&
             (n == 0 || strncmp(s->last, "TASK ", 5) == 0);
    if (*ended && !s->last[0]) /* an empty log: the status tells */
        snprintf(s->last, sizeof(s->last), "TASK %s", jstr(page, "status", "ERROR"));
    json_decref(page);
    return EXIT_OK;
}

int task_follow(struct call *k, const char *upid, const struct follow *f)
{
    struct follow_state s = {.f = f};
    if (f->catch_sigint)
        cli_catch_sigint();
    bool ended = false;
    while (!ended) {
        if (cli_interrupted && !on_interrupt(k, upid, &s))
            return EXIT_ERROR;
        int rc = follow_step(k, upid, &s, &ended);
        if (rc != EXIT_OK) {
            clear_bar(&s);
            return rc;
        }
        if (!ended && f->progress)
            show_progress(k, upid, &s);
        if (!ended)
            cli_sleep_ms(TASK_FOLLOW_MS);
    }
    clear_bar(&s);
    return strncmp(s.last, "TASK OK", 7) == 0 ? EXIT_OK : EXIT_ERROR;
}
