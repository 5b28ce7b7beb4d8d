/* The host watchdog of HA (opt-in, `ha_watchdog` in the config): a node
 * whose processes freeze (a tern-vmm stopped past its own deadline cannot
 * end itself) is reset by the hardware instead. Petted by the HA thread
 * while the lease budget lasts longer than the watchdog's timeout, or while
 * no HA VM is armed here; a graceful stop disarms it (magic close). */
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/log.h"
#include "node/ha.h"

int ha_watchdog_open(struct ha_manager *h, const char *path, struct err *e)
{
    h->wd_fd = -1;
    if (!path[0])
        return 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, errno, "ha watchdog '%s': %s", path, strerror(errno));
    /* reset at the latest half-way between a renewal and the fence */
    int timeout = (h->ttl_ms - h->slack_ms) / 2000;
    timeout = timeout < 1 ? 1 : timeout;
    if (ioctl(fd, WDIOC_SETTIMEOUT, &timeout) < 0) {
        int err = errno;
        write(fd, "V", 1);
        close(fd);
        return err_set(e, err, "ha watchdog '%s': cannot set a %d s timeout: %s", path,
                       timeout, strerror(err));
    }
    h->wd_fd = fd;
    h->wd_timeout_ms = timeout * 1000;
    log_info("ha", "watchdog %s armed: %d s", path, timeout);
    return 0;
}

void ha_watchdog_pet(struct ha_manager *h, int budget_ms, bool armed)
{
    if (h->wd_fd >= 0 && (budget_ms >= h->wd_timeout_ms || !armed))
        ioctl(h->wd_fd, WDIOC_KEEPALIVE, 0);
}

void ha_watchdog_close(struct ha_manager *h)
{
    if (h->wd_fd < 0)
        return;
    if (write(h->wd_fd, "V", 1) != 1)
        log_warn("ha", "watchdog: magic close failed: %s (the host may reset)",
                 strerror(errno));
    close(h->wd_fd);
    h->wd_fd = -1;
}
