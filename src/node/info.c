/* What this node tells the cluster about itself (node/info.h). */
#include "node/info.h"

#include <ifaddrs.h>
#include <jansson.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "node/vmm.h"
#include "node/vmnet.h"

/* First "model name" of /proc/cpuinfo: all CPUs of a host are the same
 * model, and migration checks compare exactly this string first. */
static void cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        colon++;
        colon += strspn(colon, " \t");
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(out, size, "%s", colon);
        break;
    }
    fclose(f);
}

/* MemTotal and MemAvailable of /proc/meminfo, in bytes (0 when unknown). */
static void memory(json_int_t *total, json_int_t *avail)
{
    *total = *avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return;
    char line[256];
    long long kib;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
            *total = (json_int_t)kib * 1024;
        else if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1)
            *avail = (json_int_t)kib * 1024;
    }
    fclose(f);
}

/* The config's list, else every address of the interfaces that are up. */
static json_t *addresses(const struct ternd_config *cfg)
{
    json_t *list = json_array();
    if (cfg->addresses[0]) {
        char copy[sizeof(cfg->addresses)], *save = NULL;
        snprintf(copy, sizeof(copy), "%s", cfg->addresses);
        for (char *a = strtok_r(copy, ", ", &save); a; a = strtok_r(NULL, ", ", &save))
            json_array_append_new(list, json_string(a));
        return list;
    }
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) < 0)
        return list;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        char host[NI_MAXHOST];
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        socklen_t len = i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                          : sizeof(struct sockaddr_in6);
        if (getnameinfo(i->ifa_addr, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0)
            json_array_append_new(list, json_string(host));
    }
    freeifaddrs(ifs);
    return list;
}

char *node_info_json(const struct ternd_config *cfg, const char *pin)
{
    char cpu[256];
    json_int_t total, avail;
    cpu_model(cpu, sizeof(cpu));
    memory(&total, &avail);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "version",
                          TERN_VERSION, "cpu_model", cpu, "api_address", cfg->api_address,
                          "migration_address", cfg->migration_address, "cluster_address",
                          cfg->cluster_address, "memory_total", total, "memory_free", avail,
                          "registered", (json_int_t)time(NULL));
    if (o) {
        json_object_set_new(o, "api_pin", json_string(pin));
        json_object_set_new(o, "addresses", addresses(cfg));
        json_object_set_new(o, "devices", vmm_devices_supported());
        json_object_set_new(o, "bridges", vmnet_bridges_json(cfg->bridges));
    }
    if (!o) {
        log_error("node", "building the node info failed");
        return NULL;
    }
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}
