/* The self-fence: a monotonic deadline and the thread that ends the
 * process when it passes (vmm/fence.h). */
#include "vmm/fence.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/jsonf.h"
#include "common/log.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool started, armed;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    uint64_t armed_ms;    /* the last budget given, for the log line */
} fence = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct timespec ts_of(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

/* No flush, no event, no exit hook: the node may already be considered
 * dead by the others, and every further guest write could be a second
 * writer. _exit closes the disk images, which drops their locks. */
static void fence_now(uint64_t late_ns)
{
    log_error("vmm",
              "fenced: the deadline ternd set %llu ms ago passed %llu ms ago (the node's "
              "lease may expire): the VM ends here",
              (unsigned long long)fence.armed_ms, (unsigned long long)(late_ns / 1000000));
    _exit(FENCE_EXIT_STATUS);
}

static void *fence_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&fence.lock);
    for (;;) {
        if (!fence.armed) {
            pthread_cond_wait(&fence.wake, &fence.lock);
            continue;
        }
        uint64_t now = clock_mono_ns();
        if (now >= fence.deadline_ns)
            fence_now(now - fence.deadline_ns);
        struct timespec until = ts_of(fence.deadline_ns);
        pthread_cond_timedwait(&fence.wake, &fence.lock, &until);
    }
    return NULL;
}

static int fence_start(struct err *e)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    /* the deadline must not move when the wall clock is set */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&fence.wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_t t;
    int rc = pthread_create(&t, NULL, fence_thread, NULL);
    if (rc)
        return err_set(e, rc, "fence thread: %s", strerror(rc));
    pthread_detach(t);
    fence.started = true;
    return 0;
}

int fence_set(unsigned ms, struct err *e)
{
    if (ms > FENCE_MS_MAX)
        return err_set(e, EINVAL, "fence deadline %u ms is above %d ms", ms, FENCE_MS_MAX);
    pthread_mutex_lock(&fence.lock);
    int rc = fence.started ? 0 : fence_start(e);
    if (!rc) {
        if (ms && !fence.armed)
            log_info("vmm", "fence armed: %u ms", ms);
        else if (!ms && fence.armed)
            log_info("vmm", "fence disarmed");
        fence.armed = ms > 0;
        fence.armed_ms = ms;
        fence.deadline_ns = clock_mono_ns() + (uint64_t)ms * 1000000u;
        pthread_cond_signal(&fence.wake);
    }
    pthread_mutex_unlock(&fence.lock);
    return rc;
}

static int cmd_fence(struct control *ctl, json_t *req, json_t *reply, struct err *e)
{
    (void)ctl;
    static const char *const known[] = {"cmd", "id", "ms", NULL};
    const char *key = jsonf_unknown_key(req, known);
    if (key)
        return err_set(e, EINVAL, "unknown parameter '%s'", key);
    uint64_t ms;
    int rc = jsonf_uint(req, "ms", true, 0, FENCE_MS_MAX, &ms, "fence", e);
    if (!rc)
        rc = fence_set((unsigned)ms, e);
    if (!rc)
        json_object_set_new(reply, "armed", json_boolean(ms > 0));
    return rc;
}

const struct control_command fence_command = {"fence", cmd_fence};
