/* How tern reaches the local ternd: its API URL, the admin token and the CA
 * to trust, and one HTTPS request with JSON back. The CLI knows nothing of
 * etcd or of ternd's internals: only the REST API (docs/api.md). */
#ifndef TERN_CLI_CLIENT_H
#define TERN_CLI_CLIENT_H

#include <jansson.h>

#include "common/err.h"

#define CLI_CONFIG_DEFAULT "/etc/tern/ternd.conf"

/* Exit codes scripts can rely on (docs/api.md, tern --help). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_NOT_QUORATE = 3,
};

struct cli_options { /* from the command line; NULL = not given */
    const char *api; /* https://host:port or host:port */
    const char *token_file;
    const char *ca_file;
    const char *config; /* ternd's config: api_address, data_dir */
};

struct client {
    char base[256]; /* https://host:port */
    char token_file[512];
    char ca_file[512]; /* "" = the system's CA store */
    char token[256];
    void *curl; /* CURL * */
};

void client_init(struct client *c);
/* Options, then env (TERN_API, TERN_TOKEN_FILE, TERN_CA_FILE, TERN_CONFIG),
 * then ternd's config file (default CLI_CONFIG_DEFAULT); reads the token. */
int client_setup(struct client *c, const struct cli_options *o, struct err *e);
/* One request: method "GET", "POST", "PUT", "DELETE"; path "/api/v1/nodes";
 * req the JSON body or NULL for none. 0 with *body (caller json_decref's)
 * and *status for any HTTP answer with a JSON body; -errno when ternd could
 * not be reached or did not answer JSON. */
int client_request(struct client *c, const char *method, const char *path,
                   const json_t *req, long *status, json_t **body, struct err *e);
void client_release(struct client *c);

#endif
