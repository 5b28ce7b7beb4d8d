/* The tern-vmm main loop: console, control socket, signals and the VM. */
#ifndef TERN_VMM_MONITOR_H
#define TERN_VMM_MONITOR_H

#include <stdbool.h>

#include "common/err.h"
#include "vmm/vm.h"

struct monitor_options {
    const char *console;
    const char *control;
    bool paused;
};

/* Runs the VM to its end. Returns the process exit status (0 powered off or
 * quit, 3 crashed) or -errno with e set when setup failed. */
int monitor_run(const struct vm_config *cfg, const struct monitor_options *mo,
                struct err *e);

#endif
