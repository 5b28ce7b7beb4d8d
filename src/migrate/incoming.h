/* Incoming live migration (destination side) for `tern-vmm --incoming URI`:
 * accept one source, read HELLO, build the VM from it, receive RAM and state,
 * and resume only once the source has committed. */
#ifndef TERN_MIGRATE_INCOMING_H
#define TERN_MIGRATE_INCOMING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/err.h"
#include "migrate/channel.h"
#include "migrate/decision.h"
#include "migrate/hello.h"
#include "storage/nbd.h"
#include "vmm/monitor.h"

struct mig_incoming {
    const char *uri;
    const char *tls_dir; /* NULL: plain; else TLS with mutual auth */
    int accept_timeout_ms;
    bool external_commit; /* ternd decides when the source goes silent */
    /* --nbd-listen: local disks arrive here over NBD (NULL: refused) */
    struct nbd_server *nbd;
    /* listening already (mig_incoming_listen): a supervisor that sees the
     * control socket answer may hand out the address at once */
    bool listening;
    int listen_fd;
    struct mig_channel ch;
    struct mig_hello hello;
    uint64_t features;
    /* MIG_F_CHANNELS (incoming_chan.c): tcp: keeps listening for the extra
     * connections, which present the token of HELLO_ACK */
    int chan_listen_fd;
    uint64_t token;
    unsigned max_channels, nchan;
    struct dest_chan *chan[MIG_CHANNELS_MAX]; /* 1..nchan-1 */
    struct dest_chan *pending;                /* accepted, not yet admitted */
    _Atomic bool chan_failed;
    struct mig_decision resume; /* ternd's answer when the source went silent */
    struct monitor *mon;
    pthread_t thread;
    bool thread_running;
};

void mig_incoming_init(struct mig_incoming *in);
/* Listens on uri (done by mig_incoming_accept when not called before). */
int mig_incoming_listen(struct mig_incoming *in, struct err *e);
/* Listens on uri, accepts one source, reads and checks its HELLO. */
int mig_incoming_accept(struct mig_incoming *in, struct err *e);
/* Fills the VM config from HELLO, checking it against the local options
 * (disks, and memory/cpus when given) and this host's CPU. */
int mig_incoming_config(struct mig_incoming *in, struct vm_config *cfg, bool memory_given,
                        bool cpus_given, struct err *e);
/* monitor start/stop hooks (arg = struct mig_incoming *). */
int mig_incoming_start(struct monitor *m, void *arg, struct err *e);
void mig_incoming_stop(struct monitor *m, void *arg);
/* Tells a source that connected why it is refused, and hangs up. */
void mig_incoming_refuse(struct mig_incoming *in, const char *why);
void mig_incoming_release(struct mig_incoming *in);

#endif
