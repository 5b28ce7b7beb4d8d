/* ctl: sends JSON-line requests to a tern-vmm control socket and prints the
 * replies; with --wait-event NAME it also waits for that event. A test and
 * debugging tool: `ctl SOCKET '{"cmd":"status"}'`. */
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/jsonl.h"
#include "common/sock.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads lines until one matches `want` (substring) or the deadline passes.
 * Prints every line read. Returns 0 when found. */
static const char *event_want; /* "event":"NAME" to remember */
static regex_t match_want;     /* or any line matching this */
static int match_set;
static int event_seen;

static struct jsonl_buf in;

static int read_until(int fd, const char *want, double deadline)
{
    for (;;) {
        char *line;
        while ((line = jsonl_buf_next(&in))) {
            puts(line);
            fflush(stdout);
            if ((event_want && strstr(line, event_want)) ||
                (match_set && !regexec(&match_want, line, 0, NULL, 0)))
                event_seen = 1;
            if (want ? strstr(line, want) != NULL : event_seen)
                return 0;
        }
        int ms = (int)((deadline - now_s()) * 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ms <= 0 || poll(&p, 1, ms) <= 0)
            return -ETIMEDOUT;
        int rc = jsonl_buf_fill(&in, fd);
        if (rc)
            return rc == -EMSGSIZE ? rc : -EPIPE;
    }
}

int main(int argc, char **argv)
{
    const char *wait_event = NULL;
    double timeout = 10;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--wait-event") == 0)
            wait_event = argv[i + 1];
        else if (strcmp(argv[i], "--wait-match") == 0) {
            if (regcomp(&match_want, argv[i + 1], REG_EXTENDED | REG_NOSUB)) {
                fprintf(stderr, "ctl: bad regex '%s'\n", argv[i + 1]);
                return 2;
            }
            match_set = 1;
        } else if (strcmp(argv[i], "--timeout") == 0)
            timeout = atof(argv[i + 1]);
    }
    if (i >= argc) {
        fprintf(stderr, "usage: ctl [--wait-event NAME | --wait-match REGEX] [--timeout S] "
                        "SOCKET [REQUEST...]\n");
        return 2;
    }
    int fd = sock_connect_unix(argv[i]);
    if (fd >= 0 && jsonl_buf_init(&in)) {
        fprintf(stderr, "ctl: out of memory\n");
        return 1;
    }
    if (fd < 0) {
        fprintf(stderr, "ctl: connect '%s': %s\n", argv[i], strerror(-fd));
        return 1;
    }
    double deadline = now_s() + timeout;
    char want[128];
    if (wait_event) {
        snprintf(want, sizeof(want), "\"event\":\"%s\"", wait_event);
        event_want = want;
    }
    int rc = 0;
    for (int r = i + 1; r < argc && !rc; r++) {
        if (sock_write_all(fd, argv[r], strlen(argv[r])) || sock_write_all(fd, "\n", 1))
            return 1;
        rc = read_until(fd, "\"ok\"", deadline);
    }
    if (!rc && wait_event && !event_seen)
        rc = read_until(fd, want, deadline);
    if (!rc && match_set && !event_seen)
        rc = read_until(fd, NULL, deadline);
    close(fd);
    jsonl_buf_release(&in);
    if (rc)
        fprintf(stderr, "ctl: %s\n", strerror(-rc));
    return rc ? 1 : 0;
}
