#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/print.h"
#include "common/cidr.h"
#include "common/name.h"

volatile sig_atomic_t cli_interrupted;

const char *call_opt_nth(const struct call *k, const char *name, int n)
{
    for (int i = 0; i < k->n_seen; i++)
        if (strcmp(k->seen[i].opt->name, name) == 0 && n-- == 0)
            return k->seen[i].value;
    return NULL;
}

const char *call_opt(const struct call *k, const char *name)
{
    const char *last = NULL;
    for (int i = 0; i < k->n_seen; i++)
        if (strcmp(k->seen[i].opt->name, name) == 0)
            last = k->seen[i].value;
    return last;
}

bool call_flag(const struct call *k, const char *name)
{
    for (int i = 0; i < k->n_seen; i++)
        if (strcmp(k->seen[i].opt->name, name) == 0)
            return true;
    return false;
}

int cli_say(int code, const char *fmt, ...)
{
    fflush(stdout); /* keep the order of what stdout and stderr show */
    fputs("tern: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* Decimal digits only: strtoull would take "-1", " 7" and "0x10". */
static bool parse_decimal(const char *text, uint64_t *out)
{
    if (!text[0] || strlen(text) > 19)
        return false;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = strtoull(text, NULL, 10);
    return true;
}

int check_uint(const char *what, const char *text, uint64_t min, uint64_t max,
               uint64_t *out)
{
    if (!parse_decimal(text, out))
        return usage_error("%s wants a number, not '%s'", what, text);
    if (*out < min || *out > max)
        return usage_error("%s '%s' out of range %llu..%llu", what, text,
                           (unsigned long long)min, (unsigned long long)max);
    return EXIT_OK;
}

int check_vmid(const char *text, uint32_t *id)
{
    uint64_t v;
    if (!parse_decimal(text, &v) || v < CLI_VMID_MIN || v > CLI_VMID_MAX)
        return usage_error("bad vm id '%s' (a number %d..%llu)", text, CLI_VMID_MIN,
                           CLI_VMID_MAX);
    *id = (uint32_t)v;
    return EXIT_OK;
}

/* ternd's rule (common/name.h), so that a typo is a usage error and never
 * reaches a path. */
int check_name(const char *what, const char *text)
{
    if (name_check(text, what, NULL) < 0)
        return usage_error("bad %s '%s' (1..%d of letters, digits, '.', '_', '-', "
                           "not starting with '.' or '-')",
                           what, text, TERN_NAME_MAX);
    return EXIT_OK;
}

int check_size_mib(const char *what, const char *text, uint64_t *mib)
{
    char digits[24];
    size_t n = strlen(text);
    uint64_t scale = 1;
    if (n > 0 && strchr("mMgG", text[n - 1])) {
        scale = strchr("gG", text[n - 1]) ? 1024 : 1;
        n--;
    }
    if (n == 0 || n >= sizeof(digits))
        return usage_error("bad %s '%s' (MiB, or with suffix M or G)", what, text);
    memcpy(digits, text, n);
    digits[n] = '\0';
    uint64_t v;
    if (!parse_decimal(digits, &v) || v == 0 || v > (1ull << 40) / scale)
        return usage_error("bad %s '%s' (MiB, or with suffix M or G)", what, text);
    *mib = v * scale;
    return EXIT_OK;
}

int check_cidr(const char *what, const char *text)
{
    struct err e;
    if (cidr_check(text, &e) < 0)
        return usage_error("bad %s '%s' (%s)", what, text, e.msg);
    return EXIT_OK;
}

int check_migration_type(const char *what, const char *text)
{
    if (strcmp(text, "secure") != 0 && strcmp(text, "insecure") != 0)
        return usage_error("%s wants secure or insecure, not '%s'", what, text);
    return EXIT_OK;
}

/* "UPID:node:...": it goes into a URL path, so only characters that need
 * no escaping. */
int check_task_id(const char *text)
{
    if (strncmp(text, "UPID:", 5) != 0 || strlen(text) > 200)
        return usage_error("bad task id '%s' (UPID:...)", text);
    for (const char *p = text; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(":._-", *p))
            return usage_error("bad task id '%s' (UPID:...)", text);
    return EXIT_OK;
}

static int connect_client(struct call *k)
{
    if (k->connected)
        return EXIT_OK;
    struct err e;
    client_init(&k->client);
    if (client_setup(&k->client, &k->o, &e) < 0)
        return fail("%s", e.msg);
    k->connected = true;
    return EXIT_OK;
}

/* Anything but 2xx: the API's {"error"} as one line; 503 is "cluster not
 * quorate" and has its own exit code. */
static int api_failed(const struct client *c, long status, const json_t *body)
{
    const char *msg = json_string_value(json_object_get(body, "error"));
    if (!msg)
        msg = "no error message";
    if (status == 401)
        fail("unauthorized by ternd at %s: %s (token from %s)", c->base, msg,
             c->token_file);
    else
        fail("%s (http %ld)", msg, status);
    return status == 503 ? EXIT_NOT_QUORATE : EXIT_ERROR;
}

int api_answer(struct call *k, const char *method, const char *path, json_t *req,
               long *status, json_t **answer)
{
    char full[768];
    *answer = NULL;
    int rc = connect_client(k);
    if (rc == EXIT_OK &&
        (size_t)snprintf(full, sizeof(full), "/api/v1%s", path) >= sizeof(full))
        rc = fail("path '%.40s...' too long", path);
    if (rc != EXIT_OK) {
        json_decref(req);
        return rc;
    }
    struct err e;
    int crc = client_request(&k->client, method, full, req, status, answer, &e);
    json_decref(req);
    return crc < 0 ? fail("%s", e.msg) : EXIT_OK;
}

int api_refused(const struct call *k, long status, json_t *answer)
{
    int rc = api_failed(&k->client, status, answer);
    json_decref(answer);
    return rc;
}

int api(struct call *k, const char *method, const char *path, json_t *req, json_t **answer)
{
    long status = 0;
    int rc = api_answer(k, method, path, req, &status, answer);
    if (rc != EXIT_OK || (status >= 200 && status < 300))
        return rc;
    rc = api_refused(k, status, *answer);
    *answer = NULL;
    return rc;
}

int api_get(struct call *k, const char *path, json_t **answer)
{
    return api(k, "GET", path, NULL, answer);
}

/* "stale": true in a listing: says so, EXIT_NOT_QUORATE; else EXIT_OK. */
static int listing_stale(const json_t *answer)
{
    if (!json_is_true(json_object_get(answer, "stale")))
        return EXIT_OK;
    fail("cluster not quorate: this node's view may be stale");
    return EXIT_NOT_QUORATE;
}

int show_listing(struct call *k, const char *path,
                 void (*print)(FILE *f, const json_t *body))
{
    json_t *ans;
    int rc = api_get(k, path, &ans);
    if (rc != EXIT_OK)
        return rc;
    k->json ? print_json(stdout, ans) : print(stdout, ans);
    rc = listing_stale(ans);
    json_decref(ans);
    return rc;
}

static int vprint_answer(const struct call *k, json_t *answer, const char *fmt, va_list ap)
{
    if (k->json) {
        print_json(stdout, answer);
    } else {
        vprintf(fmt, ap);
        putchar('\n');
    }
    json_decref(answer);
    return EXIT_OK;
}

int print_answer(const struct call *k, json_t *answer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vprint_answer(k, answer, fmt, ap);
    va_end(ap);
    return rc;
}

int api_change(struct call *k, const char *method, const char *path, const char *fmt, ...)
{
    json_t *ans;
    int rc = api(k, method, path, NULL, &ans);
    if (rc != EXIT_OK)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = vprint_answer(k, ans, fmt, ap);
    va_end(ap);
    return rc;
}

int show_answer(const struct call *k, json_t *answer,
                void (*print)(FILE *f, const json_t *body))
{
    k->json ? print_json(stdout, answer) : print(stdout, answer);
    json_decref(answer);
    return EXIT_OK;
}

static void on_sigint(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

/* No SA_RESTART: a sleep or a read of the terminal returns at once. */
void cli_catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

void cli_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (!cli_interrupted)
        nanosleep(&ts, NULL);
}
