/* The etcd key layout of tern, version 1 (docs/cluster.md describes every
 * key and its value). Names and ids that go into keys are checked first
 * (common/name.h) so that "a/b" or ".." can never address another key. */
#ifndef TERN_CLUSTER_KEYS_H
#define TERN_CLUSTER_KEYS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/err.h"
#include "common/name.h"

#define TERN_LAYOUT_VERSION "1"
#define TERN_KEY_VERSION "/tern/version"
#define TERN_KEY_OPTIONS "/tern/options"
#define TERN_PREFIX_NODES "/tern/nodes/"
#define TERN_PREFIX_ALIVE "/tern/alive/"
#define TERN_PREFIX_VMS "/tern/vms/"
#define TERN_PREFIX_VMSTATE "/tern/vmstate/"
#define TERN_PREFIX_LOCKS "/tern/locks/vm/"
#define TERN_PREFIX_STORAGE "/tern/storage/"
#define TERN_PREFIX_TASKS "/tern/tasks/"
#define TERN_PREFIX_MACS "/tern/macs/" /* <mac> -> vm id: one VM per MAC */

#define TERN_KEY_MAX 128
/* VM ids are decimal, as in Proxmox; in keys as text. */
#define TERN_VMID_MIN 100
#define TERN_VMID_MAX 999999999u

/* key = prefix + name (+ suffix), after name_check. */
int keys_build(char key[TERN_KEY_MAX], const char *prefix, const char *name,
               const char *suffix, const char *what, struct err *e);

/* "100" -> 100: decimal digits without a leading zero, in range ("vm id
 * '1x' must be a number 100..999999999"). */
int keys_vmid_parse(const char *text, uint32_t *id, struct err *e);
/* key = prefix + id (+ suffix), for an id in range (refused as
 * keys_vmid_parse does). */
int keys_build_vm(char key[TERN_KEY_MAX], const char *prefix, uint32_t id,
                  const char *suffix, struct err *e);
/* /tern/vms/<id>/owner: the node that may run the VM (cluster/owner.h). */
int keys_vm_owner(char key[TERN_KEY_MAX], uint32_t id, struct err *e);

/* A JSON record per VM under prefix + id (HA settings, replication jobs):
 * parse fills one element of size bytes at out from a record's JSON (NULL
 * when the value is no JSON); its error is prefixed with the key. */
struct keys_vm_records {
    const char *prefix;
    const char *absent; /* "vm <id> <absent>" when there is none */
    size_t size;
    int (*parse)(json_t *j, uint32_t id, void *out, struct err *e);
};
int keys_vm_record_get(struct etcd_client *c, const struct keys_vm_records *r, uint32_t id,
                       unsigned flags, void *out, struct err *e);
/* Every record under the prefix, in a calloc'd array; a key that is no VM
 * id or a record that does not parse is skipped (not ours to judge). */
int keys_vm_record_list(struct etcd_client *c, const struct keys_vm_records *r,
                        unsigned flags, void **out, size_t *n, struct err *e);

/* Writes /tern/version = 1 in a fresh cluster; in one that has it, checks
 * that this build understands it (-EPROTO naming the version if not). */
int cluster_layout_init(struct etcd_client *c, struct err *e);

#endif
