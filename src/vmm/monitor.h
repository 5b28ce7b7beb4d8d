/* The tern-vmm main loop: console, control socket, signals and the VM.
 * Layers above (migration) plug in control commands and a start hook. */
#ifndef TERN_VMM_MONITOR_H
#define TERN_VMM_MONITOR_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/err.h"
#include "common/evloop.h"
#include "vmm/console.h"
#include "vmm/control.h"
#include "vmm/vm.h"

#define MONITOR_MAX_COMMANDS 32

struct monitor;

struct monitor_options {
    const char *console;
    const char *control;
    bool paused;
    /* Extra control commands (NULL-terminated), e.g. the migration ones. */
    const struct control_command *extra_commands;
    /* Called once the VM exists and before its vCPUs start. */
    int (*start)(struct monitor *m, void *arg, struct err *e);
    /* Called before the VM is torn down (stop a migration thread). */
    void (*stop)(struct monitor *m, void *arg);
    void *arg;
};

struct monitor {
    struct vm vm;
    struct console console;
    struct evloop loop;
    struct control control;
    int signal_fd;
    int event_fd; /* wakes the loop for queued events */
    pthread_mutex_t event_lock;
    json_t *event_queue; /* [[name, fields], ...] from other threads */
    struct control_command commands[MONITOR_MAX_COMMANDS];
    const struct monitor_options *options;
};

/* Runs the VM to its end and sets *status to the process exit status (0
 * powered off, quit or migrated away, 1 incoming migration failed, 3
 * crashed). -errno with e set when setup failed. */
int monitor_run(const struct vm_config *cfg, const struct monitor_options *mo, int *status,
                struct err *e);
/* From any thread: sends {"event":name, ...fields} to control clients. */
void monitor_post_event(struct monitor *m, const char *name, json_t *fields);

#endif
