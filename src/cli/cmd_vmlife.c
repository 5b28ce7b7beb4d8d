/* tern vm shutdown, reboot, pause, resume and console: a running VM's life
 * (docs/api.md "VMs"). The console is interactive: keys go to the guest's
 * serial input, Ctrl-] leaves. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/follow.h"
#include "cli/print.h"

#define CONSOLE_POLL_MS 200
#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */
#define TIMEOUT_MAX 3600

/* The task's log has this line when the guest did not power off in time. */
static bool stopped_hard(struct call *k, const char *upid)
{
    char path[320];
    json_t *page;
    snprintf(path, sizeof(path), "/tasks/%s/log", upid);
    if (api_get(k, path, &page) != EXIT_OK)
        return false;
    bool hard = false;
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(page, "lines"), i, line)
        hard = hard || strstr(json_string_value(line) ?: "", "did not power off");
    json_decref(page);
    return hard;
}

/* POST /vms/ID/shutdown or reboot with the timeout, then the task. */
static int life_task(struct call *k, const char *verb, const char *done)
{
    uint32_t id;
    uint64_t timeout = 60;
    const char *t = call_opt(k, "--timeout");
    int rc = check_vmid(k->arg[0], &id);
    if (rc == EXIT_OK && t)
        rc = check_uint("--timeout", t, 1, TIMEOUT_MAX, &timeout);
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    json_t *ans, *task = NULL;
    snprintf(path, sizeof(path), "/vms/%u/%s", id, verb);
    rc = api(k, "POST", path, json_pack("{s:I}", "timeout_s", (json_int_t)timeout), &ans);
    if (rc != EXIT_OK)
        return rc;
    char upid[256];
    snprintf(upid, sizeof(upid), "%s", jstr(ans, "task", ""));
    json_decref(ans);
    if (check_task_id(upid) != EXIT_OK)
        return fail("ternd answered %s of vm %u without a task", verb, id);
    rc = task_wait(k, upid, &task);
    if (rc == EXIT_OK && k->json)
        print_json(stdout, task);
    else if (rc == EXIT_OK && stopped_hard(k, upid))
        printf("vm %u did not power off in %llu s: stopped hard%s (task %s)\n", id,
               (unsigned long long)timeout,
               strcmp(verb, "reboot") == 0 ? ", started again" : "", upid);
    else if (rc == EXIT_OK)
        printf("vm %u %s (task %s)\n", id, done, upid);
    json_decref(task);
    return rc;
}

static int run_shutdown(struct call *k)
{
    return life_task(k, "shutdown", "shut down");
}

static int run_reboot(struct call *k)
{
    return life_task(k, "reboot", "rebooted");
}

static int pause_resume(struct call *k, const char *verb, const char *done)
{
    uint32_t id;
    char path[64];
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    snprintf(path, sizeof(path), "/vms/%u/%s", id, verb);
    return api_change(k, "POST", path, "vm %u %s", id, done);
}

static int run_pause(struct call *k)
{
    return pause_resume(k, "pause", "paused");
}

static int run_resume(struct call *k)
{
    return pause_resume(k, "resume", "resumed");
}

/* One poll of the output: the new bytes to stdout. *done when there were
 * none and the VM no longer runs (or we are not to wait for more). */
static int console_out(struct call *k, uint32_t id, long long *offset, bool follow,
                       bool *done, bool *idle)
{
    char path[96];
    json_t *ans;
    snprintf(path, sizeof(path), "/vms/%u/console?offset=%lld", id, *offset);
    int rc = api_get(k, path, &ans);
    if (rc != EXIT_OK)
        return rc;
    const json_t *data = json_object_get(ans, "data");
    size_t n = json_string_length(data);
    if (n > 0) {
        fwrite(json_string_value(data), 1, n, stdout);
        fflush(stdout);
    }
    const json_t *next = json_object_get(ans, "offset");
    *offset = json_is_integer(next) ? json_integer_value(next) : *offset + (long long)n;
    /* a non-empty answer may have been cut at 64 KiB: ask again first */
    *done = n == 0 && (!follow || !json_is_true(json_object_get(ans, "running")));
    *idle = n == 0;
    json_decref(ans);
    return EXIT_OK;
}

/* Keys to the guest; what its UART could not take yet goes again. */
static int console_in(struct call *k, uint32_t id, const char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/vms/%u/console", id);
    for (int tries = 0; len > 0 && tries < 50; tries++) {
        json_t *ans;
        int rc = api(k, "POST", path, json_pack("{s:s%}", "data", buf, len), &ans);
        if (rc != EXIT_OK)
            return rc;
        size_t n = (size_t)json_integer_value(json_object_get(ans, "accepted"));
        json_decref(ans);
        n = n > len ? len : n;
        buf += n;
        len -= n;
        if (len)
            cli_sleep_ms(60); /* the guest reads its FIFO every 50 ms */
    }
    return EXIT_OK;
}

/* What stdin has now; *detach on Ctrl-], *eof at its end. */
static int console_keys(struct call *k, uint32_t id, bool *detach, bool *eof)
{
    char buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n <= 0) {
        *eof = true;
        return EXIT_OK;
    }
    char *esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
    if (esc) {
        *detach = true;
        n = esc - buf;
    }
    return n > 0 ? console_in(k, id, buf, (size_t)n) : EXIT_OK;
}

static int run_console(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    if (rc != EXIT_OK)
        return rc;
    bool follow = !call_flag(k, "--no-follow"), done = false, idle = false;
    bool input = follow && !call_flag(k, "--read-only"), detach = false, eof = false;
    struct termios saved;
    bool raw = input && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (raw) {
        struct termios t = saved;
        cfmakeraw(&t);
        t.c_oflag |= OPOST; /* the guest's \n still starts a line */
        tcsetattr(STDIN_FILENO, TCSANOW, &t);
        fprintf(stderr, "tern: console of vm %u; Ctrl-] leaves\r\n", id);
    }
    if (follow)
        cli_catch_sigint(); /* Ctrl-C is the way out: exit 0 */
    long long offset = 0;
    while (!done && !detach && !cli_interrupted && rc == EXIT_OK) {
        rc = console_out(k, id, &offset, follow, &done, &idle);
        if (rc != EXIT_OK || done || !idle)
            continue;
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        if (input && !eof && poll(&p, 1, CONSOLE_POLL_MS) > 0)
            rc = console_keys(k, id, &detach, &eof);
        else
            cli_sleep_ms(CONSOLE_POLL_MS);
    }
    if (raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        fputc('\n', stderr);
    }
    return rc;
}

/* The body of PUT /vms/ID/config from the options given, checked with the
 * rules of vm create; NULL after a usage error in *rc. */
static json_t *set_body(const struct call *k, int *rc)
{
    const char *mem = call_opt(k, "--memory"), *cpus = call_opt(k, "--cpus");
    const char *name = call_opt(k, "--name"), *cmdline = call_opt(k, "--cmdline");
    uint64_t mib = 0, n = 0;
    *rc = EXIT_OK;
    if (!mem && !cpus && !name && !cmdline && !call_opt(k, "--net"))
        *rc = usage_error("nothing to set: give --memory, --cpus, --name, --cmdline or "
                          "--net (tern vm set --help)");
    if (*rc == EXIT_OK && mem && (*rc = check_size_mib("--memory", mem, &mib)) == EXIT_OK &&
        (mib < 16 || mib > 1048576))
        *rc = usage_error("--memory '%s' out of range 16..1048576 MiB", mem);
    if (*rc == EXIT_OK && cpus)
        *rc = check_uint("--cpus", cpus, 1, 32, &n);
    if (*rc == EXIT_OK && name)
        *rc = check_name("vm name", name);
    if (*rc != EXIT_OK)
        return NULL;
    json_t *b = json_object();
    if (mem)
        json_object_set_new(b, "memory_mib", json_integer((json_int_t)mib));
    if (cpus)
        json_object_set_new(b, "cpus", json_integer((json_int_t)n));
    if (name)
        json_object_set_new(b, "name", json_string(name));
    if (cmdline)
        json_object_set_new(b, "cmdline", json_string(cmdline));
    if ((*rc = vm_nets_option(k, b)) != EXIT_OK) {
        json_decref(b);
        return NULL;
    }
    return b;
}

static int run_set(struct call *k)
{
    uint32_t id;
    int rc = check_vmid(k->arg[0], &id);
    json_t *body = rc == EXIT_OK ? set_body(k, &rc) : NULL, *ans;
    if (rc != EXIT_OK)
        return rc;
    char path[64];
    snprintf(path, sizeof(path), "/vms/%u/config", id);
    if ((rc = api(k, "PUT", path, body, &ans)) != EXIT_OK)
        return rc;
    const json_t *c = json_object_get(ans, "config");
    return print_answer(k, ans,
                        "vm %u: memory %lld MiB, %lld vcpu(s), name %s, cmdline '%s', "
                        "%zu nic(s)",
                        id, (long long)json_integer_value(json_object_get(c, "memory_mib")),
                        (long long)json_integer_value(json_object_get(c, "cpus")),
                        jstr(c, "name", "-"), jstr(c, "cmdline", ""),
                        json_array_size(json_object_get(c, "nets")));
}

static const struct cmd_opt set_opts[] = {
    {"--memory", "MIB", "guest memory in MiB (or with suffix G), 16..1048576", false,
     false},
    {"--cpus", "N", "vCPUs, 1..32", false, false},
    {"--name", "NAME", "a name besides the id", false, false},
    {"--cmdline", "STR", "kernel command line", false, false},
    {"--net", "bridge=BR[,mac=MAC]|none",
     "the VM's NICs, replacing those it has (repeat for more, up to 4; none: no NIC); "
     "a NIC without mac= gets its stable default",
     false, true},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt life_opts[] = {
    {"--timeout", "S", "seconds the guest has to power off, then a hard stop (default 60)",
     false, false},
    {NULL, NULL, NULL, false, false},
};

static const struct cmd_opt console_opts[] = {
    {"--read-only", NULL, "only watch: keys are not sent to the guest", false, false},
    {"--no-follow", NULL, "print what is there and exit", false, false},
    {NULL, NULL, NULL, false, false},
};

const struct cmd cmds_vmlife[] = {
    {"vm", "shutdown", "ID [--timeout S]", 1, 1, "power a VM off gracefully, then hard",
     "Presses the guest's power button (tern-guest has no ACPI: tern-vmm\n"
     "raises its serial ring indicator) and waits up to --timeout seconds;\n"
     "a guest still running then is stopped hard, and tern says so.\n",
     "  tern vm shutdown 100\n  tern vm shutdown 100 --timeout 10\n", life_opts,
     run_shutdown},
    {"vm", "reboot", "ID [--timeout S]", 1, 1,
     "shut a VM down as vm shutdown, then start it",
     "One task: the graceful shutdown (hard after --timeout), then a start\n"
     "on the same node.\n",
     "  tern vm reboot 100\n", life_opts, run_reboot},
    {"vm", "set", "ID [--memory MIB] [--cpus N] [--name NAME] [--cmdline STR] [--net ...]",
     1, 1, "change a stopped VM's config",
     "As 'qm set': the values are checked as vm create checks them, and the\n"
     "VM must be stopped (exit 1 otherwise). --net replaces the VM's NICs:\n"
     "MACs no longer used are freed, new ones reserved in the cluster.\n",
     "  tern vm set 100 --memory 1G --cpus 2\n  tern vm set 100 --cmdline 'tern.hb=100'\n"
     "  tern vm set 100 --net bridge=vmbr0 --net bridge=vmbr1\n  tern vm set 100 --net "
     "none\n",
     set_opts, run_set},
    {"vm", "pause", "ID", 1, 1, "stop a VM's vCPUs where they are",
     "The VM keeps its memory and devices; vm resume goes on. A paused VM\n"
     "migrates as a running one does and stays paused.\n",
     "  tern vm pause 100\n", NULL, run_pause},
    {"vm", "resume", "ID", 1, 1, "run a paused VM's vCPUs again",
     "The reverse of vm pause.\n", "  tern vm resume 100\n", NULL, run_resume},
    {"vm", "console", "ID [--read-only] [--no-follow]", 1, 1,
     "the VM's serial console, interactive",
     "Prints the console from its start, then what follows. Keys go to the\n"
     "guest's serial input (a terminal is put in raw mode); Ctrl-] leaves,\n"
     "as does the VM's end or Ctrl-C (all exit 0). --read-only only watches.\n",
     "  tern vm console 100\n  tern vm console 100 --no-follow | tail\n", console_opts,
     run_console},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
