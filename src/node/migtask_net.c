/* The network side of a migration in the task log: once the destination
 * runs, the source's task asks the target's ternd (GET /vms/ID/incoming)
 * what the destination's NICs did after the state load (the announce, the
 * first frame the guest sent, the frames from before the commit it
 * dropped) and logs it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node/ctx.h"
#include "node/migtask.h"
#include "node/peer.h"

#define NET_WAIT_TRIES 10 /* times 100 ms: the guest's first frame */

int migtask_target_nics(struct node_ctx *x, uint32_t vmid, json_t **answer, struct err *e)
{
    json_t *req = json_pack("{s:s}", "cmd", "status"), *reply = NULL;
    int rc = vmm_command(x->vmms, vmid, req, &reply, e);
    json_decref(req);
    if (rc)
        return rc;
    json_t *nics = json_array(), *d;
    size_t i;
    json_array_foreach(json_object_get(reply, "devices"), i, d) {
        const char *type = json_string_value(json_object_get(d, "type"));
        if (type && strcmp(type, "virtio-net") == 0)
            json_array_append(nics, d);
    }
    json_decref(reply);
    *answer = json_pack("{s:o}", "nics", nics);
    return 0;
}

/* true when every NIC of the answer has sent a frame */
static bool all_sent(json_t *nics)
{
    size_t i;
    json_t *n;
    bool all = json_array_size(nics) > 0;
    json_array_foreach(nics, i, n) {
        all &= json_object_get(n, "first_tx_ms") != NULL;
    }
    return all;
}

static json_t *ask(struct peer *p, uint32_t vmid)
{
    char path[64];
    long status = 0;
    json_t *ans = NULL;
    struct err e;
    snprintf(path, sizeof(path), "/api/v1/vms/%u/incoming", vmid);
    if (peer_call(p, "GET", path, NULL, &status, &ans, &e) || status != 200) {
        json_decref(ans);
        return NULL;
    }
    return ans;
}

static void log_nic(struct task *k, const char *target, size_t i, json_t *n)
{
    json_t *first = json_object_get(n, "first_tx_ms");
    char sent[96] = "no frame from the guest yet";
    if (first)
        snprintf(sent, sizeof(sent),
                 "first frame from the guest %.1f ms after the state load",
                 json_number_value(first));
    task_log(k,
             "network: net%zu (%s on '%s'): announced (%lld rarp(s) so far), %s, %lld "
             "frame(s) from "
             "before the commit dropped",
             i, json_string_value(json_object_get(n, "mac")), target,
             (long long)json_integer_value(json_object_get(n, "rarps")), sent,
             (long long)json_integer_value(json_object_get(n, "rx_flushed")));
}

void migtask_log_network(struct task *k, struct node_ctx *x, struct etcd_client *c,
                         const char *target, uint32_t vmid)
{
    struct peer p;
    struct err e;
    if (peer_init(&p, x, c, target, &e))
        return;
    json_t *ans = NULL;
    for (int i = 0; i < NET_WAIT_TRIES; i++) {
        json_decref(ans);
        ans = ask(&p, vmid);
        if (!ans || all_sent(json_object_get(ans, "nics")))
            break;
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    peer_release(&p);
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(ans, "nics"), i, n)
        log_nic(k, target, i, n);
    if (!ans)
        task_log(k, "network: node '%s' did not say what its nics did", target);
    json_decref(ans);
}
