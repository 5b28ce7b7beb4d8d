/* What the cluster stores about VMs, storage and cluster options (etcd key
 * layout in docs/cluster.md): typed structs, their JSON (the same JSON the
 * REST API shows under "config"), checks, and reads/writes.
 *
 *   /tern/vms/<id>/config    VM config (JSON of struct vmconf)
 *   /tern/vms/<id>/owner     owning node (cluster/owner.h)
 *   /tern/vmstate/<id>       run state, published by the owner under its
 *                            node lease (gone when that node is offline)
 *   /tern/storage/<name>     storage definition
 *   /tern/options            cluster options
 *
 * VM ids and the key layout: cluster/keys.h. */
#ifndef TERN_CLUSTER_VMCONF_H
#define TERN_CLUSTER_VMCONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/owner.h"
#include "common/cidr.h"
#include "common/err.h"

#define VMCONF_DISKS_MAX 8
#define VMCONF_CPUS_MAX 32 /* what tern-vmm runs (VM_MAX_CPUS in vmm/vm.h) */
#define VMCONF_PATH_MAX 256
#define VMCONF_CMDLINE_MAX 1024
#define VMCONF_DISK_MIB_MAX (16u * 1024 * 1024) /* 16 TiB */
#define VMCONF_NETS_MAX 4                       /* tern-vmm's limit (VM_MAX_NETS) */
#define VMCONF_IFNAME_MAX 16                    /* IFNAMSIZ */

struct storage_conf {
    char name[TERN_NAME_MAX + 1];
    char path[VMCONF_PATH_MAX]; /* absolute directory */
    bool shared;                /* the same files on every node */
};

struct vmconf_disk {
    char storage[TERN_NAME_MAX + 1];
    char volume[TERN_NAME_MAX + 1]; /* file name inside the storage: vm-100-disk-0.raw */
    uint64_t size_mib;
};

/* A NIC: a TAP that ternd makes on the node, attached to the bridge. */
struct vmconf_net {
    char bridge[VMCONF_IFNAME_MAX];
    char mac[18]; /* "52:54:00:xx:xx:xx", lowercase */
};

struct vmconf {
    uint32_t id;
    char name[TERN_NAME_MAX + 1]; /* "" = none */
    uint64_t memory_mib;          /* 16 .. 1048576 */
    unsigned cpus;                /* 1 .. VMCONF_CPUS_MAX */
    char kernel[VMCONF_PATH_MAX]; /* absolute path, the same on every node */
    char cmdline[VMCONF_CMDLINE_MAX];
    unsigned ndisks;
    struct vmconf_disk disks[VMCONF_DISKS_MAX];
    unsigned nnets;
    struct vmconf_net nets[VMCONF_NETS_MAX];
};

struct cluster_options {
    char migration_type[16];    /* "secure" (default) or "insecure" */
    char migration_network[64]; /* CIDR, "" = none */
};

/* JSON <-> struct. _from_json checks every field (unknown keys refused,
 * one line naming the field). */
/* "nets" (vmconf_net.c): [{"bridge":"vmbr0","mac":"52:54:00:..."}]; a NIC
 * without "mac" gets 52:54:00 and 24 bits of id * 4 + n (unique below id
 * 4194304). Absent from the JSON of a VM without NICs. */
json_t *vmconf_nets_to_json(const struct vmconf *c);
int vmconf_nets_from_json(json_t *j, struct vmconf *c, const char *what, struct err *e);
/* The key that reserves a MAC: TERN_PREFIX_MACS "52:54:00:00:04:b0". */
void vmconf_mac_key(const char *mac, char key[TERN_KEY_MAX]);
/* A refused create: -EEXIST "vm 302: mac 52:54:00:00:04:b0 is used by vm
 * 300" for the first MAC another VM holds, 0 when none is held. */
int vmconf_mac_conflict(struct etcd_client *c, const struct vmconf *conf, struct err *e);
/* An interface name the kernel takes: 1..15 of letters, digits, '.', '_', '-'. */
bool vmconf_ifname_valid(const char *name);
json_t *vmconf_to_json(const struct vmconf *c);
int vmconf_from_json(json_t *j, struct vmconf *c, struct err *e);
json_t *storage_conf_to_json(const struct storage_conf *s);
int storage_conf_from_json(json_t *j, struct storage_conf *s, struct err *e);
json_t *cluster_options_to_json(const struct cluster_options *o);
/* Merges j into o (only the keys given), checking each. */
int cluster_options_update(json_t *j, struct cluster_options *o, struct err *e);

/* Reads: flags as etcd_get. -ENOENT names what is missing. */
int vmconf_get(struct etcd_client *c, uint32_t id, unsigned flags, struct vmconf *out,
               struct err *e);
int storage_get(struct etcd_client *c, const char *name, unsigned flags,
                struct storage_conf *out, struct err *e);
/* Defaults when the key is absent. */
int cluster_options_get(struct etcd_client *c, unsigned flags, struct cluster_options *out,
                        struct err *e);

/* The volume's file: storage path + "/" + volume. */
int storage_volume_path(const struct storage_conf *s, const char *volume,
                        char out[VMCONF_PATH_MAX], struct err *e);

/* Run state of a VM as published by the node that runs it. */
struct vmrec_state {
    char node[TERN_NAME_MAX + 1];
    char status[16]; /* running, paused, stopped, migrating, incoming, starting */
    int pid;         /* 0 when none */
    int64_t since;   /* epoch seconds of the last change */
    int64_t started; /* when the guest booted (kept across migrations), 0 unknown */
};

/* -ENOENT: nobody publishes a state (stopped, or its node is offline). */
int vmrec_state_get(struct etcd_client *c, uint32_t id, unsigned flags,
                    struct vmrec_state *out, struct err *e);

/* --- additions ---------------------------------------------------------- */

/* "vm-<id>-disk-<n>.raw": the volume of disk n when none is given. */
void vmconf_volume_name(uint32_t id, unsigned n, char out[TERN_NAME_MAX + 1]);

/* One transaction: puts /tern/vms/<id>/config and /tern/vms/<id>/owner =
 * node if the VM does not exist and every disk's storage does. -EEXIST
 * "vm 100 exists", -ENOENT naming a missing storage. */
int vmconf_create(struct etcd_client *c, const struct vmconf *conf, const char *node,
                  struct err *e);
/* Replaces /tern/vms/<id>/config with conf (checked as a create checks it)
 * if the VM exists and node owns it: -ENOENT, -ESTALE otherwise. */
int vmconf_update(struct etcd_client *c, const struct vmconf *conf, const char *node,
                  struct err *e);
/* One transaction: removes config, owner and /tern/vmstate/<id> if node owns
 * the VM. -ENOENT when it does not exist, -ESTALE naming the owner. */
int vmconf_delete(struct etcd_client *c, uint32_t id, const char *node, struct err *e);

/* A VM as the cluster knows it. */
struct vmrec {
    struct vmconf conf;
    char owner[TERN_NAME_MAX + 1]; /* "" when none */
    bool has_state;                /* someone publishes a vmrec_state */
    struct vmrec_state state;
    char lock[VMLOCK_HOLDER_MAX + 1]; /* holder of /tern/locks/vm/<id>, "" when free */
};

struct vmrecs {
    struct vmrec *items;
    size_t count;
};

void vmrecs_init(struct vmrecs *l);
void vmrecs_release(struct vmrecs *l);
/* Every VM that has a config, sorted by id: reads /tern/vms/, /tern/vmstate/
 * and /tern/locks/vm/ (three reads, not one snapshot). */
int vmrec_list(struct etcd_client *c, unsigned flags, struct vmrecs *out, struct err *e);
/* One VM the same way; -ENOENT "vm 100 does not exist". */
int vmrec_get(struct etcd_client *c, uint32_t id, unsigned flags, struct vmrec *out,
              struct err *e);

struct storage_confs {
    struct storage_conf *items;
    size_t count;
};

void storage_confs_init(struct storage_confs *l);
void storage_confs_release(struct storage_confs *l);
/* Creates /tern/storage/<name>; -EEXIST "storage 'x' exists". */
int storage_put_new(struct etcd_client *c, const struct storage_conf *s, struct err *e);
/* Sorted by name. */
int storage_list(struct etcd_client *c, unsigned flags, struct storage_confs *out,
                 struct err *e);
/* -EBUSY naming a VM with a disk on it (checked in the same transaction as
 * the delete: a VM created meanwhile makes it fail), -ENOENT. */
int storage_delete(struct etcd_client *c, const char *name, struct err *e);

/* Read, cluster_options_update with j, write back unless changed meanwhile
 * (compare-and-swap, retried); *out is the result. */
int cluster_options_change(struct etcd_client *c, json_t *j, struct cluster_options *out,
                           struct err *e);
void cluster_options_default(struct cluster_options *o);

/* vmrec_state JSON: {"node","status","pid","since","started"}; _from_json ignores keys
 * it does not know (a later writer may add some). */
json_t *vmrec_state_to_json(const struct vmrec_state *s);
int vmrec_state_from_json(json_t *j, struct vmrec_state *s, struct err *e);

/* For the vmconf*.c files: a stored value parsed by from_json; errors name
 * the key ("-EPROTO /tern/vms/100/config: ..."). */
int vmconf_parse_kv(const struct etcd_kv *kv, void *out,
                    int (*from_json)(json_t *, void *, struct err *), struct err *e);
/* The value at key the same way; -ENOENT when there is none (the caller
 * says what is missing). */
int vmconf_read(struct etcd_client *c, const char *key, unsigned flags, void *out,
                int (*from_json)(json_t *, void *, struct err *), struct err *e);

#endif
