/* Control-socket commands of the migration: migrate, migrate_cancel,
 * query_migrate (docs/control.md). */
#ifndef TERN_MIGRATE_COMMANDS_H
#define TERN_MIGRATE_COMMANDS_H

#include "migrate/migration.h"
#include "vmm/control.h"
#include "vmm/monitor.h"

extern const struct control_command migrate_commands[];

/* The process's one outgoing migration, wired to the monitor: events go to
 * control clients, completion ends the process. default_tls_dir comes from
 * `--tls-dir`. monitor start/stop hooks; arg is the struct mig_incoming of
 * `--incoming` (whose resume decision incoming_resolve gives), or NULL. */
int migrate_commands_start(struct monitor *m, void *arg, struct err *e);
void migrate_commands_stop(struct monitor *m, void *arg);
void migrate_commands_set_tls_dir(const char *dir);
/* The "migrate" request's parameters checked into p (nothing started);
 * the control-socket fuzzer (tests/fuzz/fuzz_control.c) drives it too. */
int migrate_params_parse(json_t *req, struct mig_params *p, struct err *e);

#endif
