/* The migration watchdog: a source whose ternd is gone (killed, its task
 * thread dead) has nobody to decide its handover, to answer its pause
 * gate or to cancel it, yet pre-copy would go on, throttling the guest up
 * to 99 % until max_time_s. Under ternd the task sends a control request
 * every second; when none has come for watchdog_ms, and the migration is
 * still before its handover, it is abandoned: the stream is cancelled,
 * the source takes its VM back and resumes it (docs/design.md, invariant
 * 2: before the decision the source may always resume). From the
 * handover on it never fires: the decision is etcd's, and a restarted
 * ternd gives it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "migrate/migration.h"

#define WATCHDOG_STEP_US 200000

static char abandon_reason[160]; /* written once, before abandoned is set */

static bool before_handover(struct migration *m)
{
    pthread_mutex_lock(&m->lock);
    enum mig_status s = m->fig.status;
    pthread_mutex_unlock(&m->lock);
    return s == MIG_STATUS_SETUP || s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE;
}

static void *watchdog_main(void *arg)
{
    struct migration *m = arg;
    uint32_t limit = m->params.watchdog_ms;
    while (before_handover(m) && !atomic_load(&m->cancel)) {
        uint64_t idle = m->hooks.idle_ms(m->hooks.ctx);
        if (idle >= limit) {
            snprintf(abandon_reason, sizeof(abandon_reason),
                     "abandoned: no control request for %.1f s (watchdog %u ms): "
                     "nobody watches the migration",
                     (double)idle / 1000.0, limit);
            log_warn("migrate", "%s; the vm resumes on the source", abandon_reason);
            atomic_store(&m->abandoned, true);
            atomic_store(&m->cancel, true);
            migration_cancel_channels(m);
            break;
        }
        usleep(WATCHDOG_STEP_US);
    }
    return NULL;
}

int mig_watchdog_start(struct migration *m, struct err *e)
{
    atomic_store(&m->abandoned, false);
    abandon_reason[0] = '\0';
    if (!m->params.watchdog_ms || !m->hooks.idle_ms)
        return 0;
    int rc = pthread_create(&m->watchdog, NULL, watchdog_main, m);
    if (rc)
        return err_set(e, rc, "migration watchdog: %s", strerror(rc));
    m->watchdog_running = true;
    return 0;
}

void mig_watchdog_join(struct migration *m)
{
    if (!m->watchdog_running)
        return;
    pthread_join(m->watchdog, NULL);
    m->watchdog_running = false;
}

const char *mig_watchdog_reason(struct migration *m)
{
    return atomic_load(&m->abandoned) ? abandon_reason : "";
}
