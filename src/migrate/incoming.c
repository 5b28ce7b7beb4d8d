#include "migrate/incoming.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/opts.h"
#include "migrate/decision.h"
#include "migrate/incoming_chan.h"
#include "migrate/priority.h"
#include "migrate/ram.h"
#include "migrate/state.h"
#include "migrate/tls.h"
#include "vmm/cpuid.h"

#define HELLO_TIMEOUT_MS 30000
#define COMMIT_TIMEOUT_MS 300000

void mig_incoming_init(struct mig_incoming *in)
{
    memset(in, 0, sizeof(*in));
    in->ch.fd = in->listen_fd = in->chan_listen_fd = -1;
    mig_decision_init(&in->resume);
}

int mig_incoming_listen(struct mig_incoming *in, struct err *e)
{
    int rc = mig_uri_listen(in->uri, &in->listen_fd, e);
    in->listening = !rc;
    if (!rc)
        log_info("migrate", "waiting for a source on %s%s", in->uri,
                 in->tls_dir ? " (tls)" : "");
    return rc;
}

int mig_incoming_accept(struct mig_incoming *in, struct err *e)
{
    int fd;
    in->ch.fd = -1;
    int rc = in->listening ? 0 : mig_incoming_listen(in, e);
    if (rc)
        return rc;
    int lfd = in->listen_fd;
    in->listening = false;
    rc = mig_accept(lfd, in->accept_timeout_ms, &fd, e);
    /* extra channels come to the same tcp: address */
    if (lfd >= 0 && strncmp(in->uri, "tcp:", 4) == 0)
        in->chan_listen_fd = lfd;
    else if (lfd >= 0)
        close(lfd);
    if (strncmp(in->uri, "unix:", 5) == 0)
        unlink(in->uri + 5);
    if (rc)
        return rc;
    mig_channel_init(&in->ch, fd);
    if (in->tls_dir && (rc = mig_tls_accept(&in->ch, in->tls_dir, e)))
        return rc;
    uint8_t *msg;
    uint32_t len;
    rc = mig_recv_msg(&in->ch, MIG_HELLO, &msg, &len, HELLO_TIMEOUT_MS, e);
    if (rc)
        return rc;
    rc = hello_decode(msg, len, &in->hello, e);
    free(msg);
    in->features = in->hello.features & MIG_F_KNOWN;
    if (in->chan_listen_fd < 0)
        in->features &= ~MIG_F_CHANNELS;
    return rc;
}

static int check_disks(const struct mig_hello *h, const struct vm_config *cfg, bool nbd,
                       struct err *e)
{
    if (h->ndisks != cfg->ndisks)
        return err_set(e, EINVAL, "source has %u disks, %u given here (--disk)", h->ndisks,
                       cfg->ndisks);
    for (unsigned i = 0; i < h->ndisks; i++) {
        if (!h->disk[i].shared && !nbd)
            return err_set(e, ENOTSUP,
                           "disk %u is local to the source (not shared=on); "
                           "start the destination with --nbd-listen to receive it",
                           i);
        if (!h->disk[i].shared) {
            if (h->disk[i].readonly)
                return err_set(e, ENOTSUP,
                               "disk %u: a read-only local disk is not mirrored", i);
            if (cfg->disk[i].shared || cfg->disk[i].readonly)
                return err_set(
                    e, EINVAL,
                    "disk %u is local to the source: give a fresh writable image "
                    "here, without shared=on",
                    i);
            continue;
        }
        if (!cfg->disk[i].shared || h->disk[i].readonly != cfg->disk[i].readonly)
            return err_set(e, EINVAL, "disk %u: give it as shared=on%s here too", i,
                           h->disk[i].readonly ? ",readonly=on" : "");
    }
    return 0;
}

/* Each NIC of the source needs a TAP here (--net); the MAC is the
 * source's, and one given here must be the same. */
static int check_nets(const struct mig_hello *h, struct vm_config *cfg, struct err *e)
{
    if (h->nnets != cfg->nnets)
        return err_set(e, EINVAL, "source has %u nics, %u given here (--net)", h->nnets,
                       cfg->nnets);
    for (unsigned i = 0; i < h->nnets; i++) {
        struct vm_net_config *n = &cfg->net[i];
        if (n->mac_given && memcmp(n->mac, h->net[i].mac, sizeof(n->mac)) != 0) {
            char theirs[18];
            virtio_net_format_mac(h->net[i].mac, theirs);
            return err_set(e, EINVAL,
                           "net %u: the source's mac is %s, not the one --net gives", i,
                           theirs);
        }
        memcpy(n->mac, h->net[i].mac, sizeof(n->mac));
        n->mac_given = true;
    }
    return 0;
}

int mig_incoming_config(struct mig_incoming *in, struct vm_config *cfg, bool memory_given,
                        bool cpus_given, struct err *e)
{
    const struct mig_hello *h = &in->hello;
    if (memory_given && cfg->memory != h->memory)
        return err_set(e, EINVAL, "source has %lluM of memory, --memory says %lluM",
                       (unsigned long long)(h->memory >> 20),
                       (unsigned long long)(cfg->memory >> 20));
    if (cpus_given && cfg->cpus != h->cpus)
        return err_set(e, EINVAL, "source has %u cpus, --cpus says %u", h->cpus, cfg->cpus);
    int rc = check_disks(h, cfg, in->nbd != NULL, e);
    if (!rc)
        rc = check_nets(h, cfg, e);
    if (rc)
        return rc;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return err_set(e, errno, "cannot open /dev/kvm: %s", strerror(errno));
    rc = cpuid_check_compatible(kvm, h->cpuid, e);
    close(kvm);
    if (rc)
        return rc;
    cfg->memory = h->memory;
    cfg->cpus = h->cpus;
    cfg->cpu_model = h->cpu_model;
    cfg->cpuid = h->cpuid;
    cfg->incoming = true;
    if (!cfg->name && h->name[0])
        cfg->name = h->name;
    return 0;
}

void mig_incoming_refuse(struct mig_incoming *in, const char *why)
{
    if (in->ch.fd >= 0)
        mig_send_error(&in->ch, why);
}

void mig_incoming_release(struct mig_incoming *in)
{
    dest_chans_release(in);
    if (in->chan_listen_fd >= 0)
        close(in->chan_listen_fd);
    in->chan_listen_fd = -1;
    if (in->listening && in->listen_fd >= 0)
        close(in->listen_fd);
    in->listening = false;
    mig_channel_release(&in->ch);
    hello_release(&in->hello);
    mig_decision_release(&in->resume);
}

/* ---- the receiving thread ---- */

struct dest_run {
    struct mig_incoming *in;
    struct vm *vm;
    struct ram_receiver ram;
    uint64_t load_ns;
    struct state_intake intake; /* against vm->devstate */
    uint64_t acked;             /* bytes acknowledged so far */
    struct mig_priority prio;   /* raised from PAUSING to RUNNING */
};

static int dest_section(struct dest_run *r, const struct mig_hdr *h, struct err *e)
{
    uint8_t *msg = malloc(h->length ? h->length : 1);
    if (!msg)
        return err_set(e, ENOMEM, "out of memory");
    struct state_section s;
    const struct devstate_entry *d;
    int rc = mig_recv(&r->in->ch, msg, h->length, e);
    if (!rc)
        rc = state_parse(msg, h->length, &s, e);
    if (!rc)
        rc = state_admit(&r->intake, &s, &d, e);
    if (!rc) {
        uint64_t t = clock_mono_ns();
        rc = state_load(d, &s, e);
        r->load_ns += clock_mono_ns() - t;
    }
    free(msg);
    return rc;
}

static int dest_ack(struct dest_run *r, struct err *e)
{
    if (!(r->in->features & MIG_F_ACKS))
        return 0;
    return mig_ack_progress(&r->in->ch, &r->acked, e);
}

/* PAUSING: the downtime starts. From here to RUNNING every wake-up of the
 * receiving threads is on its path; the ACK that follows tells the source
 * that they are raised and waiting (priority.h). */
static void dest_pausing(struct dest_run *r)
{
    mig_priority_raise(&r->prio, pthread_self());
    dest_chans_raise(r->in);
}

static int dest_receive(struct dest_run *r, struct err *e)
{
    struct mig_channel *ch = &r->in->ch;
    for (;;) {
        struct mig_hdr h;
        int rc = mig_recv_hdr(ch, &h, e);
        if (rc)
            return rc;
        if (h.type == MIG_RAM)
            rc = ram_recv_batch(&r->ram, &h, e);
        else if (h.type == MIG_SECTION)
            rc = dest_section(r, &h, e);
        else if (h.type == MIG_PAUSING && (r->in->features & MIG_F_PAUSING))
            dest_pausing(r);
        else if (h.type == MIG_END)
            /* every channel's pages are in before anything is complete */
            return dest_chans_join(r->in, e) ?: state_intake_complete(&r->intake, e);
        else if (h.type == MIG_ERROR) {
            char text[4097] = "";
            mig_recv(ch, text, h.length, e);
            return err_set(e, EREMOTEIO, "source: %s", text);
        } else
            rc = err_set(e, EPROTO, "unexpected %s message in the stream",
                         mig_type_name(h.type));
        if (!rc)
            rc = dest_ack(r, e);
        if (rc)
            return rc;
    }
}

/* The source went silent after LOADED: it may have been told to commit
 * (then this VM is the only one) or not. Under ternd only etcd knows; ask
 * and wait. An explicit ERROR from the source needs no question: it is
 * resuming. */
static int dest_ask_authority(struct dest_run *r, struct err *e)
{
    mig_decision_expect(&r->in->resume);
    monitor_post_event(r->in->mon, "migration",
                       json_pack("{s:s, s:s, s:s}", "role", "destination", "status",
                                 "commit-unknown", "error", e->msg));
    log_warn("migrate", "no commit from the source (%s); asking the cluster", e->msg);
    if (!mig_decision_wait(&r->in->resume))
        return err_set(e, ECANCELED, "the cluster kept the vm on the source");
    log_info("migrate", "the cluster names this node the owner: resuming");
    return 0;
}

static int dest_handover(struct dest_run *r, struct err *e)
{
    struct mig_channel *ch = &r->in->ch;
    struct buf loaded;
    buf_init(&loaded);
    loaded_encode(r->load_ns, &loaded);
    int rc = mig_send_buf(ch, MIG_LOADED, loaded.data, (uint32_t)loaded.len, e);
    buf_release(&loaded);
    uint8_t *msg = NULL;
    uint32_t len;
    if (!rc)
        rc = mig_recv_msg(ch, MIG_COMMIT, &msg, &len, COMMIT_TIMEOUT_MS, e);
    free(msg);
    if (rc && rc != -EREMOTEIO && r->in->external_commit)
        rc = dest_ask_authority(r, e);
    if (rc) {
        /* e->msg cannot be both the format argument and the output */
        struct err why = *e;
        return err_set(e, -rc, "no commit from the source (%s); not resuming", why.msg);
    }
    test_hold("commit-received");
    uint64_t t = clock_mono_ns();
    /* the source flushed its last disk blocks before the state: nothing
     * more may reach the images once the guest runs here */
    if (r->in->nbd)
        nbd_server_stop(r->in->nbd);
    vm_take_back(r->vm); /* committed: the VM is this process's now */
    rc = vm_post_load(r->vm, e);
    if (rc)
        return rc;
    /* RUNNING goes just before the vCPUs are released: once they run (the
     * guest may never idle), this thread and the source's, which waits for
     * RUNNING to end the downtime, can wait milliseconds for a CPU while
     * the guest already runs. Nothing changes for the handover: after
     * COMMIT the source never resumes, whatever it hears. */
    struct buf running;
    buf_init(&running);
    running_encode(&(struct mig_running){clock_mono_ns() - t, r->in->hello.paused},
                   &running);
    struct err ignored;
    mig_send_buf(ch, MIG_RUNNING, running.data, (uint32_t)running.len, &ignored);
    buf_release(&running);
    if (!r->in->hello.paused && vm_resume(r->vm))
        return err_set(e, EIO, "resume failed");
    return 0;
}

static void *incoming_thread(void *arg)
{
    struct mig_incoming *in = arg;
    struct dest_run r = {.in = in, .vm = &in->mon->vm};
    state_intake_init(&r.intake, &r.vm->devstate);
    struct err e = {""};
    uint64_t t0 = clock_mono_ns();
    int rc = dest_chans_open(in, r.vm, &e);
    if (!rc)
        rc = ram_receiver_init(&r.ram, r.vm, &in->ch, in->features & MIG_F_PAGE_CRC, 0,
                               in->nchan ? in->nchan : 1, &e);
    if (!rc)
        rc = dest_receive(&r, &e);
    if (rc)
        dest_chans_stop(in, &e);
    if (!rc)
        rc = dest_handover(&r, &e);
    mig_priority_lower(&r.prio);
    ram_receiver_release(&r.ram);
    if (rc) {
        mig_send_error(&in->ch, e.msg);
        monitor_post_event(in->mon, "migration",
                           json_pack("{s:s, s:s, s:s}", "role", "destination", "status",
                                     "failed", "error", e.msg));
        vm_request_exit(r.vm, VM_EXIT_FAILED, "incoming migration failed: %s", e.msg);
        return NULL;
    }
    log_info("migrate",
             "incoming complete in %.1f ms: %llu pages, %llu zero, state "
             "loaded in %.2f ms; vm %s",
             (double)(clock_mono_ns() - t0) / 1e6, (unsigned long long)r.ram.stats.pages,
             (unsigned long long)r.ram.stats.zero_pages, (double)r.load_ns / 1e6,
             in->hello.paused ? "stays paused" : "running");
    monitor_post_event(in->mon, "migration",
                       json_pack("{s:s, s:s, s:I, s:s}", "role", "destination", "status",
                                 "completed", "pages", (json_int_t)r.ram.stats.pages,
                                 "state", in->hello.paused ? "paused" : "running"));
    if (!in->hello.paused)
        monitor_post_event(in->mon, "resumed", NULL);
    return NULL;
}

/* The local disks (not shared in HELLO) as NBD exports disk<index>, before
 * HELLO_ACK: the source mirrors into them while its VM runs. */
static int export_disks(struct mig_incoming *in, struct vm *vm, struct err *e)
{
    int rc = 0;
    for (unsigned i = 0; !rc && i < vm->ndisks; i++) {
        char name[16];
        snprintf(name, sizeof(name), "disk%u", i);
        if (!in->hello.disk[i].shared)
            rc = nbd_server_add(in->nbd, name, vm->disk[i].fd, vm->disk[i].capacity * 512,
                                e);
    }
    return rc ? rc : nbd_server_start(in->nbd, e);
}

int mig_incoming_start(struct monitor *m, void *arg, struct err *e)
{
    struct mig_incoming *in = arg;
    in->mon = m;
    /* not ours until the commit: no "resume" and no "migrate" before it */
    vm_hand_over(&m->vm);
    for (unsigned i = 0; i < m->vm.ndisks; i++)
        if (m->vm.disk[i].capacity * 512 != in->hello.disk[i].size)
            return err_set(e, EINVAL, "disk '%s' has %llu bytes, the source's %llu",
                           m->vm.disk[i].path,
                           (unsigned long long)(m->vm.disk[i].capacity * 512),
                           (unsigned long long)in->hello.disk[i].size);
    int rc = in->nbd ? export_disks(in, &m->vm, e) : 0;
    if (rc)
        return rc;
    struct mig_hello_ack ack = {
        .version = MIG_VERSION_MAX < in->hello.version_max ? MIG_VERSION_MAX
                                                           : in->hello.version_max,
        .features = in->features,
        .channels = in->max_channels = MIG_CHANNELS_MAX,
    };
    if ((in->features & MIG_F_CHANNELS) &&
        getrandom(&in->token, sizeof(in->token), 0) != sizeof(in->token))
        return err_set(e, errno, "channel token: %s", strerror(errno));
    ack.token = in->token;
    struct buf msg;
    buf_init(&msg);
    hello_ack_encode(&ack, &msg);
    rc = msg.oom ? err_set(e, ENOMEM, "out of memory")
                 : mig_send_buf(&in->ch, MIG_HELLO_ACK, msg.data, (uint32_t)msg.len, e);
    buf_release(&msg);
    if (rc)
        return rc;
    rc = pthread_create(&in->thread, NULL, incoming_thread, in);
    if (rc)
        return err_set(e, rc, "incoming thread: %s", strerror(rc));
    in->thread_running = true;
    return 0;
}

void mig_incoming_stop(struct monitor *m, void *arg)
{
    struct mig_incoming *in = arg;
    (void)m;
    /* waiting for the cluster's decision: ends with the process, as in a
     * crash (the VM was never resumed here) */
    if (!in->thread_running || mig_decision_pending(&in->resume))
        return;
    mig_channel_cancel(&in->ch);
    dest_chans_cancel(in);
    pthread_join(in->thread, NULL);
    in->thread_running = false;
    if (in->nbd)
        nbd_server_stop(in->nbd);
}
