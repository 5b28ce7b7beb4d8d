/* tern-vmm: one KVM virtual machine per process. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/err.h"
#include "common/evloop.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/version.h"
#include "devices/net_tap.h"
#include "migrate/commands.h"
#include "migrate/incoming.h"
#include "migrate/incoming_wait.h"
#include "migrate/repl.h"
#include "vmm/console.h"
#include "vmm/control.h"
#include "vmm/fence.h"
#include "vmm/monitor.h"
#include "vmm/vm.h"

static const char usage_text[] =
    "usage: tern-vmm --kernel FILE [options]\n"
    "       tern-vmm --incoming URI [--disk ...] [options]\n"
    "Runs one KVM virtual machine, booted or received by live migration.\n"
    "\n"
    "  --kernel FILE        ELF64 kernel entered by the Linux 64-bit boot protocol\n"
    "  --cmdline STR        kernel command line\n"
    "  --initrd FILE        initial ramdisk\n"
    "  --memory SIZE        guest RAM, e.g. 512M, 1G, 4G (default 256M)\n"
    "  --cpus N             vCPUs, 1-32 (default 1)\n"
    "  --cpu-model NAME     CPU model the guest sees (default host)\n"
    "  --disk path=FILE[,readonly=on][,shared=on][,repl=BITMAP]\n"
    "                       virtio-blk disk on a raw image; repeatable (up to 8);\n"
    "                       repl: its replication bitmap file (docs/replication.md)\n"
    "  --net tap=IFNAME[,mac=MAC][,announce=off]\n"
    "                       virtio-net NIC on a TAP device (an existing one is used\n"
    "                       as it is, a missing one created); MAC default derived\n"
    "                       from --name; repeatable (up to 4); with --incoming name\n"
    "                       this host's TAPs, the MACs come from the source;\n"
    "                       announce=off: no RARP or guest announce after it\n"
    "  --console stdio|file:PATH|unix:PATH\n"
    "                       where COM1 goes (default stdio)\n"
    "  --control PATH       control socket (JSON lines, see docs/control.md)\n"
    "  --name NAME          VM name used in logs and status\n"
    "  --paused             build the VM but do not run it until 'resume'\n"
    "  --incoming URI       receive a live migration instead of booting: listen on\n"
    "                       tcp:HOST:PORT, unix:PATH or use fd:N; the VM's config\n"
    "                       comes from the source (give the same --disk options)\n"
    "  --tls-dir DIR        ca.pem, cert.pem, key.pem for TLS migration; with\n"
    "                       --incoming it makes TLS mandatory\n"
    "  --prealloc           allocate all guest RAM at start (with --incoming and\n"
    "                       --memory: while waiting for the source)\n"
    "  --commit local|external  with --incoming: who decides the handover when\n"
    "                       the source goes silent after the state is loaded:\n"
    "                       local (default) never resumes; external asks the\n"
    "                       control socket (event commit-unknown, command\n"
    "                       incoming_resolve; used by ternd)\n"
    "  --nbd-listen URI     with --incoming: receive the source's local disks\n"
    "                       (not shared=on) over NBD on tcp:HOST:PORT or\n"
    "                       unix:PATH, exported as disk0..disk7 (docs/nbd.md)\n"
    "  --fence-ms N         self-fence: end at once (exit 4) unless the control\n"
    "                       command 'fence' moves the deadline on within N ms\n"
    "                       (ternd arms it for HA VMs)\n"
    "  --verbose            debug logging\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 guest powered off, 'quit', or migrated away; 1 bad input,\n"
    "setup failure or failed incoming migration; 3 the guest crashed (triple\n"
    "fault, emulation failure); 4 fenced (the --fence-ms deadline passed).\n";

enum opt_id {
    OPT_KERNEL = 256,
    OPT_CMDLINE,
    OPT_INITRD,
    OPT_MEMORY,
    OPT_CPUS,
    OPT_DISK,
    OPT_CONSOLE,
    OPT_CONTROL,
    OPT_NAME,
    OPT_CPU_MODEL,
    OPT_PAUSED,
    OPT_VERBOSE,
    OPT_HELP,
    OPT_VERSION,
    OPT_INCOMING,
    OPT_TLS_DIR,
    OPT_PREALLOC,
    OPT_COMMIT,
    OPT_NBD_LISTEN,
    OPT_NET,
    OPT_FENCE_MS,
};

struct cli {
    struct vm_config cfg;
    struct monitor_options mo;
    const char *incoming;
    const char *tls_dir;
    const char *nbd_listen;
    bool memory_given, cpus_given;
    bool external_commit;
    unsigned fence_ms; /* 0: no self-fence */
};

static const struct option long_options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"cpu-model", required_argument, NULL, OPT_CPU_MODEL},
    {"disk", required_argument, NULL, OPT_DISK},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"name", required_argument, NULL, OPT_NAME},
    {"paused", no_argument, NULL, OPT_PAUSED},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"incoming", required_argument, NULL, OPT_INCOMING},
    {"tls-dir", required_argument, NULL, OPT_TLS_DIR},
    {"prealloc", no_argument, NULL, OPT_PREALLOC},
    {"commit", required_argument, NULL, OPT_COMMIT},
    {"nbd-listen", required_argument, NULL, OPT_NBD_LISTEN},
    {"net", required_argument, NULL, OPT_NET},
    {"fence-ms", required_argument, NULL, OPT_FENCE_MS},
    {NULL, 0, NULL, 0},
};

static bool repl_given; /* a disk has repl=BITMAP */

static void parse_disk(struct vm_config *cfg, const char *text)
{
    if (cfg->ndisks == VM_MAX_DISKS)
        die("--disk: at most %d disks", VM_MAX_DISKS);
    struct opts_kv kv;
    if (opts_kv_parse(&kv, text))
        die("--disk '%s': expected path=FILE[,readonly=on][,shared=on]", text);
    struct vm_disk_config *d = &cfg->disk[cfg->ndisks++];
    for (size_t i = 0; i < kv.count; i++) {
        const char *k = kv.key[i], *v = kv.value[i];
        if (strcmp(k, "path") == 0 && v && *v)
            d->path = strdup(v);
        else if (strcmp(k, "readonly") == 0 && !opts_parse_bool(v ? v : "on", &d->readonly))
            continue;
        else if (strcmp(k, "shared") == 0 && !opts_parse_bool(v ? v : "on", &d->shared))
            continue;
        else if (strcmp(k, "repl") == 0 && v && !repl_set_bitmap(cfg->ndisks - 1, v))
            repl_given = true;
        else
            die("--disk '%s': bad key or value '%s'", text, k);
    }
    opts_kv_release(&kv);
    if (!d->path)
        die("--disk '%s': path=FILE is required", text);
}

static void parse_net(struct vm_config *cfg, const char *text)
{
    if (cfg->nnets == VM_MAX_NETS)
        die("--net: at most %d nics", VM_MAX_NETS);
    struct opts_kv kv;
    if (opts_kv_parse(&kv, text))
        die("--net '%s': expected tap=IFNAME[,mac=MAC][,announce=off]", text);
    struct vm_net_config *n = &cfg->net[cfg->nnets++];
    bool announce = true;
    for (size_t i = 0; i < kv.count; i++) {
        const char *k = kv.key[i], *v = kv.value[i];
        if (strcmp(k, "tap") == 0 && v && net_ifname_valid(v))
            n->tap = strdup(v);
        else if (strcmp(k, "mac") == 0 && v && !virtio_net_parse_mac(v, n->mac))
            n->mac_given = true;
        else if (strcmp(k, "announce") == 0 && v && !opts_parse_bool(v, &announce))
            n->no_announce = !announce;
        else
            die("--net '%s': bad key or value '%s'", text, k);
    }
    opts_kv_release(&kv);
    if (!n->tap)
        die("--net '%s': tap=IFNAME is required", text);
}

static void parse_number_option(int id, const char *arg, struct vm_config *cfg)
{
    uint64_t v;
    if (id == OPT_MEMORY) {
        if (opts_parse_size(arg, &v))
            die("--memory '%s': expected a size like 512M or 1G", arg);
        cfg->memory = v;
    } else {
        if (opts_parse_uint(arg, 1, VM_MAX_CPUS, &v))
            die("--cpus '%s': expected a number from 1 to %d", arg, VM_MAX_CPUS);
        cfg->cpus = (unsigned)v;
    }
}

static void parse_fence_ms(struct cli *cli, const char *arg)
{
    uint64_t v;
    if (opts_parse_uint(arg, 1, FENCE_MS_MAX, &v))
        die("--fence-ms '%s': expected a number from 1 to %d", arg, FENCE_MS_MAX);
    cli->fence_ms = (unsigned)v;
}

static void parse_options(int argc, char **argv, struct cli *cli)
{
    struct vm_config *cfg = &cli->cfg;
    struct monitor_options *mo = &cli->mo;
    opterr = 0;
    int id;
    while ((id = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (id) {
        case OPT_KERNEL: cfg->kernel = optarg; break;
        case OPT_CMDLINE: cfg->cmdline = optarg; break;
        case OPT_INITRD: cfg->initrd = optarg; break;
        case OPT_MEMORY:
        case OPT_CPUS:
            parse_number_option(id, optarg, cfg);
            *(id == OPT_MEMORY ? &cli->memory_given : &cli->cpus_given) = true;
            break;
        case OPT_INCOMING: cli->incoming = optarg; break;
        case OPT_NBD_LISTEN: cli->nbd_listen = optarg; break;
        case OPT_COMMIT:
            if (strcmp(optarg, "external") != 0 && strcmp(optarg, "local") != 0)
                die("--commit wants local or external, not '%s'", optarg);
            cli->external_commit = strcmp(optarg, "external") == 0;
            break;
        case OPT_TLS_DIR: cli->tls_dir = optarg; break;
        case OPT_FENCE_MS: parse_fence_ms(cli, optarg); break;
        case OPT_PREALLOC: cfg->prealloc = true; break;
        case OPT_CPU_MODEL: cfg->cpu_model = optarg; break;
        case OPT_DISK: parse_disk(cfg, optarg); break;
        case OPT_NET: parse_net(cfg, optarg); break;
        case OPT_CONSOLE: mo->console = optarg; break;
        case OPT_CONTROL: mo->control = optarg; break;
        case OPT_NAME: cfg->name = optarg; break;
        case OPT_PAUSED: mo->paused = true; break;
        case OPT_VERBOSE: log_set_level(LOG_DEBUG); break;
        case OPT_HELP: fputs(usage_text, stdout); exit(0);
        case OPT_VERSION: puts("tern-vmm " TERN_VERSION); exit(0);
        case ':': die("option '%s' needs a value (see --help)", argv[optind - 1]);
        default: die("unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        die("unexpected argument '%s' (see --help)", argv[optind]);
    if (!cfg->kernel && !cli->incoming)
        die("--kernel FILE is required (see --help)");
    if (cli->incoming && (cfg->kernel || cfg->initrd || *cfg->cmdline))
        die("--incoming takes the VM from the source: no --kernel, --initrd or --cmdline");
    if (cli->incoming && repl_given)
        die("--disk ...,repl=: replication starts on a running vm, not with --incoming");
    if (cli->nbd_listen && !cli->incoming)
        die("--nbd-listen receives local disks: it goes with --incoming");
    if (cli->incoming && cfg->prealloc && !cli->memory_given)
        die("--prealloc with --incoming needs --memory (the source's size)");
}

/* With --incoming both hooks run: receive the VM, and be able to send it
 * on again later (ping-pong). */
static int incoming_start(struct monitor *m, void *arg, struct err *e)
{
    int rc = migrate_commands_start(m, arg, e);
    return rc ? rc : mig_incoming_start(m, arg, e);
}

static void incoming_stop(struct monitor *m, void *arg)
{
    mig_incoming_stop(m, arg);
    migrate_commands_stop(m, NULL);
}

static int run_incoming(struct cli *cli, int *status, struct err *e)
{
    static struct mig_incoming in;
    mig_incoming_init(&in); /* a refusal before any source connected writes nowhere */
    static struct nbd_server nbd;
    in.uri = cli->incoming;
    in.tls_dir = cli->tls_dir;
    in.accept_timeout_ms = -1;
    in.external_commit = cli->external_commit;
    int rc = 0;
    nbd_server_init(&nbd);
    if (cli->nbd_listen) {
        int lfd;
        /* listening before any source comes: the port is ours from now */
        rc = mig_uri_listen(cli->nbd_listen, &lfd, e);
        nbd_server_set_listener(&nbd, rc ? -1 : lfd);
        in.nbd = rc ? NULL : &nbd;
    }
    if (!rc && cli->cfg.prealloc)
        rc = vm_ram_create(cli->cfg.memory, true, &cli->cfg.ram_fd, e);
    bool quit = false;
    if (!rc)
        rc = mig_incoming_wait(&in, cli->mo.control, &quit, e);
    if (!rc && quit)
        return 0; /* quit before any source came */
    if (!rc)
        rc = mig_incoming_config(&in, &cli->cfg, cli->memory_given, cli->cpus_given, e);
    if (!rc) {
        log_set_vm(cli->cfg.name ? cli->cfg.name : "-");
        cli->mo.paused = true;
        cli->mo.start = incoming_start;
        cli->mo.stop = incoming_stop;
        cli->mo.arg = &in;
        rc = monitor_run(&cli->cfg, &cli->mo, status, e);
    }
    if (rc)
        mig_incoming_refuse(&in, e->msg);
    mig_incoming_release(&in);
    nbd_server_release(&nbd);
    return rc;
}

/* Without --incoming: the migration's hooks, then replication's. */
static int vm_start_hook(struct monitor *m, void *arg, struct err *e)
{
    int rc = migrate_commands_start(m, arg, e);
    return rc ? rc : repl_start(m, e);
}

static void vm_stop_hook(struct monitor *m, void *arg)
{
    migrate_commands_stop(m, arg);
    repl_stop(m);
}

/* The migration's control commands, replication's and the fence's. */
static const struct control_command *all_commands(void)
{
    static struct control_command all[MONITOR_MAX_COMMANDS];
    size_t n = 0;
    for (const struct control_command *c = migrate_commands; c->name; c++)
        all[n++] = *c;
    for (const struct control_command *c = repl_commands; c->name; c++)
        all[n++] = *c;
    all[n] = fence_command;
    return all;
}

int main(int argc, char **argv)
{
    die_set_prog("tern-vmm");
    struct cli cli = {
        .cfg = {.memory = 256ULL << 20,
                .cpus = 1,
                .cpu_model = "host",
                .cmdline = "",
                .ram_fd = -1},
        .mo = {.console = "stdio", .extra_commands = all_commands()},
    };
    parse_options(argc, argv, &cli);
    log_set_vm(cli.cfg.name ? cli.cfg.name : "-");
    struct err e = {""};
    /* armed before the guest can run a single instruction */
    if (cli.fence_ms && fence_set(cli.fence_ms, &e) < 0)
        die("%s", e.msg);
    migrate_commands_set_tls_dir(cli.tls_dir);
    int status = 0, rc;
    if (cli.incoming) {
        rc = run_incoming(&cli, &status, &e);
    } else {
        cli.mo.start = vm_start_hook;
        cli.mo.stop = vm_stop_hook;
        rc = monitor_run(&cli.cfg, &cli.mo, &status, &e);
    }
    if (rc) {
        fprintf(stderr, "tern-vmm: %s\n", e.msg);
        return 1;
    }
    return status;
}
