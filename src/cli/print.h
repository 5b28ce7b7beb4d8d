/* Human-readable output of the CLI's listings (--output json prints the
 * API's JSON instead). */
#ifndef TERN_CLI_PRINT_H
#define TERN_CLI_PRINT_H

#include <jansson.h>
#include <stdio.h>

/* body of GET /api/v1/cluster/status */
void print_cluster_status(FILE *f, const json_t *body);
/* body of GET /api/v1/nodes */
void print_node_list(FILE *f, const json_t *body);
/* JSON, indented, one trailing newline */
void print_json(FILE *f, const json_t *body);

#endif
