#include "vmm/monitor.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/evloop.h"
#include "common/log.h"
#include "vmm/console.h"
#include "vmm/control.h"

#include <sys/eventfd.h>

#define EXIT_STATUS_FAILED 1
#define EXIT_STATUS_CRASH 3

static json_t *status_net(struct virtio_net *n)
{
    struct virtio_net_stats s;
    char mac[18];
    virtio_net_get_stats(n, &s);
    virtio_net_format_mac(n->mac, mac);
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:I, s:I}", "type", "virtio-net", "tap",
        n->backend.ifname, "mac", mac, "mmio", (json_int_t)n->mmio.base, "link", !n->dead,
        "rx_packets", (json_int_t)s.rx_packets, "tx_packets", (json_int_t)s.tx_packets,
        "rx_dropped", (json_int_t)s.rx_dropped, "tx_dropped", (json_int_t)s.tx_dropped);
    json_object_set_new(d, "rx_flushed", json_integer((json_int_t)s.rx_flushed));
    json_object_set_new(d, "announces", json_integer((json_int_t)s.announces));
    json_object_set_new(d, "rarps", json_integer((json_int_t)s.rarps));
    if (s.first_tx_ms >= 0)
        json_object_set_new(d, "first_tx_ms", json_real(s.first_tx_ms));
    if (s.loaded_at_us)
        json_object_set_new(d, "loaded_at_us", json_integer((json_int_t)s.loaded_at_us));
    return d;
}

static json_t *status_devices(struct vm *vm)
{
    json_t *devs = json_array();
    json_array_append_new(devs, json_pack("{s:s, s:s, s:i}", "type", "serial", "name",
                                          "com1", "port", SERIAL_COM1_PORT));
    for (unsigned i = 0; i < vm->ndisks; i++) {
        struct virtio_blk *b = &vm->disk[i];
        json_array_append_new(
            devs, json_pack("{s:s, s:s, s:I, s:I, s:b, s:b, s:I, s:I, s:I, s:I}", "type",
                            "virtio-blk", "path", b->path, "mmio", (json_int_t)b->mmio.base,
                            "size", (json_int_t)(b->capacity * 512), "readonly",
                            b->readonly, "shared", b->shared, "reads", (json_int_t)b->reads,
                            "writes", (json_int_t)b->writes, "flushes",
                            (json_int_t)b->flushes, "inflight", (json_int_t)b->inflight));
    }
    for (unsigned i = 0; i < vm->nnets; i++)
        json_array_append_new(devs, status_net(&vm->net[i]));
    return devs;
}

static int cmd_status(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)req;
    (void)e;
    struct vm *vm = &m->vm;
    json_object_set_new(reply, "state", json_string(vm_state_name(vm_get_state(vm))));
    /* a migration holds the vm: a destination before its commit */
    json_object_set_new(reply, "handed_over", json_boolean(vm_handed_over(vm)));
    json_object_set_new(reply, "name", json_string(vm->config.name ? vm->config.name : ""));
    json_object_set_new(reply, "uptime",
                        json_real((double)(int64_t)(vm_uptime(vm) * 1000) / 1000));
    json_object_set_new(reply, "memory", json_integer((json_int_t)vm->config.memory));
    json_object_set_new(reply, "cpus", json_integer(vm->ncpus));
    json_object_set_new(reply, "cpu_model", json_string(vm->config.cpu_model));
    json_object_set_new(reply, "pid", json_integer(getpid()));
    json_object_set_new(reply, "devices", status_devices(vm));
    return 0;
}

/* pause and resume: idempotent, logged, and an event for every client */
static int set_running(struct control *ctl, bool run, struct err *e)
{
    struct monitor *m = ctl->ctx;
    if (vm_get_state(&m->vm) == (run ? VM_RUNNING : VM_PAUSED))
        return 0;
    int rc = run ? vm_resume(&m->vm) : vm_pause(&m->vm);
    if (rc == -EPERM)
        return err_set(e, EPERM, "a migration holds the vm");
    if (rc)
        return err_set(e, ESRCH, run ? "vm has shut down" : "vm is not running");
    const char *done = run ? "resumed" : "paused";
    log_info("vmm", "%s", done);
    control_event(ctl, done, NULL);
    return 0;
}

static int cmd_pause(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)req;
    (void)reply;
    return set_running(ctl, false, e);
}

static int cmd_resume(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)req;
    (void)reply;
    return set_running(ctl, true, e);
}

static int cmd_quit(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)req;
    (void)reply;
    (void)e;
    vm_request_exit(&m->vm, VM_EXIT_QUIT, "quit requested on the control socket");
    return 0;
}

/* Asks the guest to power off (the serial ring indicator, see serial_ring);
 * a guest that ignores it keeps running, and the caller decides when to quit. */
static int cmd_powerdown(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)req;
    (void)reply;
    (void)e;
    serial_ring(&m->vm.uart);
    log_info("vmm", "power button pressed (serial ring indicator)");
    return 0;
}

/* Bytes for COM1's receive FIFO, for a client without the console socket
 * (ternd keeps the console in a file); "accepted" says how many fitted. */
static int cmd_console_input(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    json_t *data = json_object_get(req, "data");
    if (!json_is_string(data))
        return err_set(e, EINVAL, "'data' must be a string");
    size_t n = serial_input(&m->vm.uart, (const uint8_t *)json_string_value(data),
                            json_string_length(data));
    json_object_set_new(reply, "accepted", json_integer((json_int_t)n));
    return 0;
}

/* Announces every NIC again: RARPs and the guest's gratuitous ARP. */
static int cmd_announce(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct monitor *m = ctl->ctx;
    (void)req;
    if (vm_get_state(&m->vm) != VM_RUNNING)
        return err_set(e, EBUSY, "vm is not running");
    for (unsigned i = 0; i < m->vm.nnets; i++)
        virtio_net_announce(&m->vm.net[i]);
    json_object_set_new(reply, "nics", json_integer(m->vm.nnets));
    log_info("vmm", "announce: %u nics", m->vm.nnets);
    return 0;
}

static const struct control_command monitor_commands[] = {
    {"status", cmd_status},       {"pause", cmd_pause},
    {"resume", cmd_resume},       {"quit", cmd_quit},
    {"powerdown", cmd_powerdown}, {"console_input", cmd_console_input},
    {"announce", cmd_announce},   {NULL, NULL},
};

static void monitor_build_commands(struct monitor *m, const struct control_command *extra)
{
    unsigned n = 0;
    for (const struct control_command *c = monitor_commands; c->name; c++)
        m->commands[n++] = *c;
    for (const struct control_command *c = extra;
         c && c->name && n < MONITOR_MAX_COMMANDS - 1; c++)
        m->commands[n++] = *c;
    m->commands[n] = (struct control_command){NULL, NULL};
}

void monitor_post_event(struct monitor *m, const char *name, json_t *fields)
{
    pthread_mutex_lock(&m->event_lock);
    json_array_append_new(m->event_queue,
                          json_pack("[s, o]", name, fields ? fields : json_object()));
    pthread_mutex_unlock(&m->event_lock);
    uint64_t one = 1;
    if (write(m->event_fd, &one, sizeof(one)) < 0)
        log_warn("vmm", "event queue: %s", strerror(errno));
}

static void on_event_queue(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct monitor *m = ctx;
    uint64_t v;
    (void)loop;
    (void)events;
    if (read(fd, &v, sizeof(v)) < 0)
        return;
    pthread_mutex_lock(&m->event_lock);
    json_t *queue = m->event_queue;
    m->event_queue = json_array();
    pthread_mutex_unlock(&m->event_lock);
    size_t i;
    json_t *item;
    json_array_foreach(queue, i, item) {
        json_t *fields = json_array_get(item, 1);
        control_event(&m->control, json_string_value(json_array_get(item, 0)),
                      json_incref(fields));
    }
    json_decref(queue);
}

static void on_vm_exit(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct monitor *m = ctx;
    uint64_t v;
    (void)events;
    if (read(fd, &v, sizeof(v)) < 0 && errno == EAGAIN)
        return;
    struct vm *vm = &m->vm;
    if (m->options->stop)
        m->options->stop(m, m->options->arg);
    on_event_queue(loop, m->event_fd, 0, m);
    vm_stop(vm);
    static const char *const reasons[] = {"none",  "poweroff", "quit",
                                          "crash", "migrated", "failed"};
    if (vm->exit_reason == VM_EXIT_CRASH || vm->exit_reason == VM_EXIT_FAILED)
        log_error("vmm", "%s", vm->exit_message);
    else
        log_info("vmm", "%s", vm->exit_message);
    control_event(&m->control, "shutdown",
                  json_pack("{s:s, s:s}", "reason", reasons[vm->exit_reason], "message",
                            vm->exit_message));
    evloop_stop(loop);
}

static void on_signal(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    struct monitor *m = ctx;
    struct signalfd_siginfo si;
    (void)loop;
    (void)events;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        vm_request_exit(&m->vm, VM_EXIT_QUIT, "signal %s", strsignal((int)si.ssi_signo));
}

static int monitor_signals(struct monitor *m, struct err *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    vcpu_signals_init();
    m->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m->signal_fd < 0)
        return err_set(e, errno, "signalfd: %s", strerror(errno));
    return evloop_add(&m->loop, m->signal_fd, EPOLLIN, on_signal, m);
}

static int monitor_setup(struct monitor *m, const struct vm_config *cfg,
                         const struct monitor_options *mo, struct err *e)
{
    int rc = evloop_init(&m->loop);
    if (rc)
        return err_set(e, -rc, "epoll: %s", strerror(-rc));
    rc = console_open(&m->console, mo->console, e);
    if (!rc)
        rc = vm_init(&m->vm, cfg, console_output, &m->console, e);
    if (!rc)
        rc = console_attach(&m->console, &m->loop, &m->vm.uart);
    if (!rc)
        rc = monitor_signals(m, e);
    if (!rc)
        rc = evloop_add(&m->loop, m->vm.exit_eventfd, EPOLLIN, on_vm_exit, m);
    m->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!rc && m->event_fd < 0)
        rc = err_set(e, errno, "eventfd: %s", strerror(errno));
    if (!rc)
        rc = evloop_add(&m->loop, m->event_fd, EPOLLIN, on_event_queue, m);
    monitor_build_commands(m, mo->extra_commands);
    if (!rc)
        rc = control_init(&m->control, mo->control, &m->loop, m->commands, m, e);
    if (!rc && mo->start)
        rc = mo->start(m, mo->arg, e);
    return rc;
}

int monitor_run(const struct vm_config *cfg, const struct monitor_options *mo, int *status,
                struct err *e)
{
    static struct monitor m;
    memset(&m, 0, sizeof(m));
    m.signal_fd = m.event_fd = -1;
    m.control.listen_fd = -1;
    m.options = mo;
    pthread_mutex_init(&m.event_lock, NULL);
    m.event_queue = json_array();
    int rc = monitor_setup(&m, cfg, mo, e);
    if (!rc && mo->paused)
        vm_pause(&m.vm);
    if (!rc)
        rc = vm_start(&m.vm, e);
    if (!rc) {
        log_info("vmm", "started: %u cpus, %lluM, %u disks%s", m.vm.ncpus,
                 (unsigned long long)(cfg->memory >> 20), m.vm.ndisks,
                 mo->paused ? ", paused" : "");
        rc = evloop_run(&m.loop, -1, NULL, NULL);
        if (rc)
            err_set(e, -rc, "event loop: %s", strerror(-rc));
    }
    /* the migration threads use the VM: they end before it goes */
    if (rc && mo->stop)
        mo->stop(&m, mo->arg);
    control_release(&m.control);
    vm_release(&m.vm);
    console_release(&m.console);
    if (m.signal_fd >= 0)
        close(m.signal_fd);
    if (m.event_fd >= 0)
        close(m.event_fd);
    json_decref(m.event_queue);
    evloop_release(&m.loop);
    *status = m.vm.exit_reason == VM_EXIT_CRASH    ? EXIT_STATUS_CRASH
              : m.vm.exit_reason == VM_EXIT_FAILED ? EXIT_STATUS_FAILED
                                                   : 0;
    return rc;
}
