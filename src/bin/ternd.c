/* ternd: the node daemon (docs/ternd.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "node/info.h"
#include "node/ternd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: ternd [--config FILE]\n"
               "Runs this node: its etcd member, its membership and the REST API.\n"
               "  --config FILE  configuration (default " TERND_CONFIG_DEFAULT
               "; keys in docs/ternd.md)\n"
               "  --version      print the version\n");
}

static const char *parse_args(int argc, char **argv)
{
    const char *config = TERND_CONFIG_DEFAULT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("ternd " TERN_VERSION "\n");
            exit(0);
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else {
            usage(stderr);
            exit(2);
        }
    }
    return config;
}

int main(int argc, char **argv)
{
    die_set_prog("ternd");
    const char *config = parse_args(argc, argv);
    static struct ternd t;
    struct err e;
    ternd_init(&t);
    if (ternd_config_load(&t.cfg, config, &e) < 0)
        die("%s", e.msg);
    if (ternd_start(&t, &e) < 0) {
        ternd_release(&t);
        die("%s", e.msg);
    }
    log_info("ternd", "node %s running (version " TERN_VERSION ")", t.cfg.name);
    ternd_run(&t);
    ternd_release(&t);
    return 0;
}
