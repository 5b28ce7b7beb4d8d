#include "cluster/server.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "common/log.h"

/* TLS 1.2 suites with forward secrecy and AEAD only (etcd's flag takes Go's
 * names; TLS 1.3 suites are not configurable and always on) */
#define ETCD_CIPHERS                                                                   \
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384," \
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"

void etcd_server_init(struct etcd_server *s)
{
    memset(s, 0, sizeof(*s));
    const char *bin = getenv("TERN_ETCD");
    snprintf(s->binary, sizeof(s->binary), "%s", bin && *bin ? bin : "/usr/bin/etcd");
    snprintf(s->initial_state, sizeof(s->initial_state), "new");
    snprintf(s->cluster_token, sizeof(s->cluster_token), "tern");
}

int etcd_server_configure(struct etcd_server *s, const char *name, const char *ip,
                          int client_port, int peer_port, const char *data_dir,
                          const char *initial_cluster, struct err *e)
{
    int n[5];
    n[0] = snprintf(s->name, sizeof(s->name), "%s", name);
    n[1] = snprintf(s->client_url, sizeof(s->client_url), "http://%s:%d", ip, client_port);
    n[2] = snprintf(s->peer_url, sizeof(s->peer_url), "http://%s:%d", ip, peer_port);
    n[3] = snprintf(s->data_dir, sizeof(s->data_dir), "%s", data_dir);
    n[4] = snprintf(s->initial_cluster, sizeof(s->initial_cluster), "%s", initial_cluster);
    size_t sizes[5] = {sizeof(s->name), sizeof(s->client_url), sizeof(s->peer_url),
                       sizeof(s->data_dir), sizeof(s->initial_cluster)};
    for (int i = 0; i < 5; i++)
        if (n[i] < 0 || (size_t)n[i] >= sizes[i])
            return err_set(e, ENAMETOOLONG, "etcd member %s: setting %d too long", name, i);
    return 0;
}

/* In the child: stdout/stderr to the log, then exec. Only async-signal-safe
 * calls between fork and exec. */
static void child_exec(const struct etcd_server *s, char *const argv[])
{
    int fd = open(s->log_path[0] ? s->log_path : "/dev/null",
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    if (s->die_with_parent)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, STDIN_FILENO);
    execv(s->binary, argv);
    _exit(127);
}

#define ARG(x) argv[n++] = (char *)(x)

/* The member's command line; the TLS flags only when s has a CA. */
static void build_argv(struct etcd_server *s, char *election, char *heartbeat,
                       char *argv[48])
{
    unsigned n = 0;
    ARG(s->binary);
    ARG("--name"), ARG(s->name), ARG("--data-dir"), ARG(s->data_dir);
    ARG("--listen-client-urls"), ARG(s->client_url);
    ARG("--advertise-client-urls"), ARG(s->client_url);
    ARG("--listen-peer-urls"), ARG(s->peer_url);
    ARG("--initial-advertise-peer-urls"), ARG(s->peer_url);
    ARG("--initial-cluster"), ARG(s->initial_cluster);
    ARG("--initial-cluster-state"), ARG(s->initial_state);
    ARG("--initial-cluster-token"), ARG(s->cluster_token);
    ARG("--election-timeout"), ARG(election), ARG("--heartbeat-interval"), ARG(heartbeat);
    ARG("--logger"), ARG("zap");
    if (s->tls_ca[0]) {
        ARG("--cert-file"), ARG(s->tls_cert), ARG("--key-file"), ARG(s->tls_key);
        ARG("--trusted-ca-file"), ARG(s->tls_ca), ARG("--client-cert-auth");
        ARG("--peer-cert-file"), ARG(s->tls_cert), ARG("--peer-key-file"), ARG(s->tls_key);
        ARG("--peer-trusted-ca-file"), ARG(s->tls_ca), ARG("--peer-client-cert-auth");
        ARG("--cipher-suites"), ARG(ETCD_CIPHERS);
    }
    argv[n] = NULL;
}

int etcd_server_start(struct etcd_server *s, struct err *e)
{
    if (s->pid)
        return err_set(e, EBUSY, "etcd member %s: already running (pid %d)", s->name,
                       (int)s->pid);
    if (access(s->binary, X_OK) < 0)
        return err_set(e, errno, "etcd member %s: %s: %s (install etcd-server)", s->name,
                       s->binary, strerror(errno));
    char election[16], heartbeat[16];
    int el = s->election_ms > 0 ? s->election_ms : 1000;
    snprintf(election, sizeof(election), "%d", el);
    snprintf(heartbeat, sizeof(heartbeat), "%d", el / 10 > 0 ? el / 10 : 1);
    char *argv[48];
    build_argv(s, election, heartbeat, argv);
    pid_t pid = fork();
    if (pid < 0)
        return err_set(e, errno, "etcd member %s: fork: %s", s->name, strerror(errno));
    if (pid == 0)
        child_exec(s, argv);
    s->pid = pid;
    log_info("etcd", "member %s started (pid %d, %s)", s->name, (int)pid, s->client_url);
    return 0;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)data;
    (void)arg;
    return size * nmemb;
}

static bool answers_version(CURL *curl, const char *client_url)
{
    char url[192];
    snprintf(url, sizeof(url), "%s/version", client_url);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 500L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    etcd_tls_apply(curl);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 200;
}

int etcd_server_wait_serving(struct etcd_server *s, int timeout_ms, struct err *e)
{
    int rc = etcd_global_init(e);
    if (rc)
        return rc;
    CURL *curl = curl_easy_init();
    if (!curl)
        return err_set(e, ENOMEM, "etcd member %s: curl_easy_init failed", s->name);
    rc = -ETIMEDOUT;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (!etcd_server_running(s)) {
            rc = err_set(e, ECHILD, "etcd member %s: exited (see %s)", s->name,
                         s->log_path[0] ? s->log_path : "its log");
            break;
        }
        if (answers_version(curl, s->client_url)) {
            rc = 0;
            break;
        }
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
    }
    curl_easy_cleanup(curl);
    if (rc == -ETIMEDOUT)
        err_set(e, ETIMEDOUT, "etcd member %s: not serving on %s after %d ms", s->name,
                s->client_url, timeout_ms);
    return rc;
}

bool etcd_server_running(struct etcd_server *s)
{
    if (!s->pid)
        return false;
    int status;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
        log_warn("etcd", "member %s (pid %d) exited with status %d", s->name, (int)s->pid,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        s->pid = 0;
        return false;
    }
    return true;
}

int etcd_server_freeze(struct etcd_server *s, bool frozen)
{
    if (!s->pid)
        return -ESRCH;
    return kill(s->pid, frozen ? SIGSTOP : SIGCONT) < 0 ? -errno : 0;
}

int etcd_server_stop(struct etcd_server *s, int grace_ms)
{
    if (!s->pid)
        return 0;
    kill(s->pid, SIGCONT); /* a frozen member cannot act on SIGTERM */
    kill(s->pid, SIGTERM);
    for (int waited = 0; waited < grace_ms; waited += 20) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return 0;
        }
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
    }
    log_warn("etcd", "member %s ignored SIGTERM for %d ms, killing it", s->name, grace_ms);
    kill(s->pid, SIGKILL);
    int rc = waitpid(s->pid, NULL, 0) < 0 ? -errno : 0;
    s->pid = 0;
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(path) < 0 ? -1 : 0;
}

int etcd_server_wipe(struct etcd_server *s, struct err *e)
{
    if (s->pid)
        return err_set(e, EBUSY, "etcd member %s: still running (pid %d)", s->name,
                       (int)s->pid);
    if (!s->data_dir[0] || access(s->data_dir, F_OK) < 0)
        return 0;
    /* depth first and without following links: only what is inside */
    if (nftw(s->data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return err_set(e, errno, "etcd member %s: removing '%s': %s", s->name, s->data_dir,
                       strerror(errno));
    return 0;
}

void etcd_server_release(struct etcd_server *s)
{
    etcd_server_stop(s, 5000);
}
