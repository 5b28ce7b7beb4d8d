/* Human-readable output of the CLI's listings (--output json prints the
 * API's JSON instead): aligned columns, one object per line. */
#ifndef TERN_CLI_PRINT_H
#define TERN_CLI_PRINT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* body of GET /api/v1/cluster/status */
void print_cluster_status(FILE *f, const json_t *body);
/* body of GET /api/v1/nodes */
void print_node_list(FILE *f, const json_t *body);
/* body of GET /api/v1/cluster/options */
void print_cluster_options(FILE *f, const json_t *body);
/* body of GET /api/v1/storage */
void print_storage_list(FILE *f, const json_t *body);
/* body of GET /api/v1/vms, and one VM object with its config */
void print_vm_list(FILE *f, const json_t *body);
void print_vm(FILE *f, const json_t *vm);
/* body of GET /api/v1/tasks */
void print_task_list(FILE *f, const json_t *body);
/* the answer of a migration with dry_run: its checks (ok or FAIL, one a
 * line), the target and the plan; each returns the number of failed checks */
int print_checks(FILE *f, const json_t *body);
int print_dry_run(FILE *f, const json_t *body);
/* JSON, indented, one trailing newline */
void print_json(FILE *f, const json_t *body);

/* Helpers for the printers: a string field or def; bytes as "1.5 GiB";
 * seconds as "1d 02:03:04". */
const char *jstr(const json_t *o, const char *key, const char *def);
void human_bytes(double b, char *out, size_t size);
void human_duration(long long s, char *out, size_t size);

#endif
