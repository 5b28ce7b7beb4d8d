/* While `tern-vmm --incoming` waits for its source there is no VM yet, but
 * the control socket answers already: `status` says "incoming" and `quit`
 * ends the wait, so a supervisor can see and stop a waiting destination. */
#include "migrate/incoming_wait.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

struct waiting {
    struct mig_incoming *in;
    struct evloop loop;
    struct control ctl;
    int done_fd;
    int rc;
    bool quit;
    struct err e;
};

static int cmd_status(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct waiting *w = ctl->ctx;
    (void)req;
    (void)e;
    json_object_set_new(reply, "state", json_string("incoming"));
    json_object_set_new(reply, "uri", json_string(w->in->uri));
    json_object_set_new(reply, "pid", json_integer(getpid()));
    return 0;
}

static int cmd_quit(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    struct waiting *w = ctl->ctx;
    (void)req;
    (void)reply;
    (void)e;
    w->quit = true;
    evloop_stop(&w->loop);
    return 0;
}

static const struct control_command waiting_commands[] = {
    {"status", cmd_status},
    {"quit", cmd_quit},
    {NULL, NULL},
};

static void *accept_thread(void *arg)
{
    struct waiting *w = arg;
    w->rc = mig_incoming_accept(w->in, &w->e);
    uint64_t one = 1;
    if (write(w->done_fd, &one, sizeof(one)) < 0)
        log_error("migrate", "accept thread: %s", strerror(errno));
    return NULL;
}

static void on_done(struct evloop *loop, int fd, uint32_t events, void *ctx)
{
    (void)fd;
    (void)events;
    (void)ctx;
    evloop_stop(loop);
}

static int waiting_setup(struct waiting *w, const char *control_path, struct err *e)
{
    /* listen before the control socket answers: ternd hands the address to
     * the source as soon as it does */
    int rc = mig_incoming_listen(w->in, e);
    if (rc)
        return rc;
    rc = evloop_init(&w->loop);
    w->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rc || w->done_fd < 0)
        return err_set(e, rc ? -rc : errno, "event loop: %s", strerror(rc ? -rc : errno));
    rc = evloop_add(&w->loop, w->done_fd, EPOLLIN, on_done, w);
    if (!rc)
        rc = control_init(&w->ctl, control_path, &w->loop, waiting_commands, w, e);
    return rc;
}

int mig_incoming_wait(struct mig_incoming *in, const char *control_path, bool *quit,
                      struct err *e)
{
    static struct waiting w;
    memset(&w, 0, sizeof(w));
    w.in = in;
    w.ctl.listen_fd = -1;
    int rc = waiting_setup(&w, control_path, e);
    pthread_t thread;
    if (!rc && (rc = -pthread_create(&thread, NULL, accept_thread, &w)))
        err_set(e, -rc, "accept thread: %s", strerror(-rc));
    if (!rc)
        rc = evloop_run(&w.loop, -1, NULL, NULL);
    control_release(&w.ctl);
    evloop_release(&w.loop);
    *quit = w.quit;
    if (rc)
        return rc;
    if (w.quit) {
        /* the accept thread sits in poll(); the process is about to end */
        log_info("migrate", "quit while waiting for a source");
        if (strncmp(in->uri, "unix:", 5) == 0)
            unlink(in->uri + 5);
        return 0;
    }
    pthread_join(thread, NULL);
    close(w.done_fd);
    if (w.rc)
        *e = w.e;
    return w.rc;
}
