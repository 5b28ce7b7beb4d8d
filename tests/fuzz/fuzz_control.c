/* libFuzzer target: bytes a client writes to tern-vmm's control socket,
 * through the real server (src/vmm/control.c: framing, JSON, command
 * lookup, replies) on a real unix socket, no KVM.
 *
 * The commands are the real ones where they need no VM: migrate_commit
 * and incoming_resolve (src/migrate/commands.c, nothing waits, so they
 * refuse), "migrate" as far as its parameters are checked
 * (migrate_params_parse; nothing is started), console_input into a real
 * COM1 (devices/serial.c). The input is sent as it is, then the client
 * shuts its side; a thread drains the replies meanwhile, so a server that
 * answers many lines never blocks on a full socket.
 *
 * FUZZ_SEED_DIR=DIR: writes seed inputs there and exits. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/evloop.h"
#include "devices/serial.h"
#include "migrate/commands.h"
#include "vmm/control.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct evloop loop;
static struct control ctl;
static struct serial uart;
static char path[108];

static void irq_set(void *ctx, unsigned gsi, int level)
{
    (void)ctx;
    (void)gsi;
    (void)level;
}

static void output(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
}

static int cmd_status(struct control *c, json_t *req, json_t *reply, struct err *e)
{
    (void)c;
    (void)req;
    (void)e;
    json_object_set_new(reply, "status", json_string("running"));
    return 0;
}

static int cmd_migrate(struct control *c, json_t *req, json_t *reply, struct err *e)
{
    (void)c;
    (void)reply;
    struct mig_params p;
    return migrate_params_parse(req, &p, e);
}

static int cmd_console_input(struct control *c, json_t *req, json_t *reply, struct err *e)
{
    (void)c;
    json_t *data = json_object_get(req, "data");
    if (!json_is_string(data))
        return err_set(e, EINVAL, "'data' must be a string");
    size_t n = serial_input(&uart, (const uint8_t *)json_string_value(data),
                            json_string_length(data));
    json_object_set_new(reply, "accepted", json_integer((json_int_t)n));
    /* the guest reads the FIFO empty again, so the next input fits */
    serial_release(&uart);
    serial_init(&uart, (struct irq_line){irq_set, NULL, 4, 0}, output, NULL);
    return 0;
}

static struct control_command commands[8];

static const struct control_command *real(const char *name)
{
    for (const struct control_command *c = migrate_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    abort();
}

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
    write_seed(dir, "status", "{\"cmd\":\"status\",\"id\":1}\n");
    write_seed(dir, "migrate",
               "{\"cmd\":\"migrate\",\"uri\":\"tcp:127.0.0.1:4444\",\"max_bandwidth\":"
               "1000000,\"downtime_limit_ms\":300,\"auto_converge\":true,\"commit\":"
               "\"external\",\"page_crc\":false}\n");
    write_seed(dir, "migrate-tls",
               "{\"cmd\":\"migrate\",\"uri\":\"unix:/tmp/x\",\"tls\":true,\"tls_dir\":"
               "\"/nonexistent\"}\n");
    write_seed(dir, "decisions",
               "{\"cmd\":\"migrate_commit\",\"commit\":true}\n{\"cmd\":"
               "\"incoming_resolve\",\"resume\":false,\"id\":\"x\"}\n");
    write_seed(dir, "console", "{\"cmd\":\"console_input\",\"data\":\"ls\\n\"}\n\n{}\n");
    write_seed(dir, "partial", "{\"cmd\":\"status\"}\n{\"cmd\":\"sta");
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
    commands[0] = (struct control_command){"status", cmd_status};
    commands[1] = (struct control_command){"migrate", cmd_migrate};
    commands[2] = (struct control_command){"console_input", cmd_console_input};
    commands[3] = *real("migrate_commit");
    commands[4] = *real("incoming_resolve");
    serial_init(&uart, (struct irq_line){irq_set, NULL, 4, 0}, output, NULL);
    snprintf(path, sizeof(path), "/tmp/tern-fuzz-control.%d.sock", (int)getpid());
    struct err e;
    if (evloop_init(&loop) || control_init(&ctl, path, &loop, commands, NULL, &e)) {
        fprintf(stderr, "fuzz_control: setting up the control socket failed\n");
        exit(1);
    }
    return 0;
}

static void *drain(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

static bool clients_left(void)
{
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (ctl.client[i].fd >= 0)
            return true;
    return false;
}

static void stop_after_turn(struct evloop *l, void *arg)
{
    (void)arg;
    evloop_stop(l);
}

/* One turn of the real loop: what is ready is handled. */
static void turn(void)
{
    loop.stop = false;
    evloop_run(&loop, 1000, stop_after_turn, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        abort();
    turn(); /* the accept */
    pthread_t t;
    if (pthread_create(&t, NULL, drain, &fd))
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            off += (size_t)n;
        else if (!clients_left())
            break; /* the server closed it: a line too long */
        else
            turn();
    }
    shutdown(fd, SHUT_WR);
    while (clients_left())
        turn();
    pthread_join(t, NULL);
    close(fd);
    return 0;
}
