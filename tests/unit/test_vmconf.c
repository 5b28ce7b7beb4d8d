/* VM configs, storage definitions, cluster options and CIDRs without etcd:
 * JSON round trips, every refusal (one line naming the field), and which
 * addresses lie inside a network. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/vmconf.h"

static const char *GOOD_VM =
    "{\"id\": 100, \"name\": \"web\", \"memory_mib\": 256, \"cpus\": 2,"
    " \"kernel\": \"/usr/lib/tern/tern-guest\", \"cmdline\": \"tern.hb=1\","
    " \"disks\": [{\"storage\": \"local\", \"size_mib\": 64},"
    "             {\"storage\": \"shared\", \"volume\": \"data.raw\", \"size_mib\": 1}]}";

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test json: %s: %s", text, je.text);
    return j;
}

static void test_id_parse(void **state)
{
    (void)state;
    static const char *const bad[] = {"99",   "0100", "1x",   "",           "1000000000",
                                      "-100", "+100", " 100", "4294967396", NULL};
    uint32_t id = 0;
    struct err e;
    assert_int_equal(keys_vmid_parse("100", &id, &e), 0);
    assert_int_equal(id, 100);
    assert_int_equal(keys_vmid_parse("999999999", &id, &e), 0);
    assert_int_equal(id, 999999999);
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(keys_vmid_parse(bad[i], &id, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "must be a number 100..999999999"));
    }
}

static void test_vm_roundtrip(void **state)
{
    (void)state;
    struct vmconf c, c2;
    struct err e;
    json_t *j = load(GOOD_VM);
    assert_int_equal(vmconf_from_json(j, &c, &e), 0);
    json_decref(j);
    assert_int_equal(c.id, 100);
    assert_string_equal(c.name, "web");
    assert_int_equal(c.memory_mib, 256);
    assert_int_equal(c.cpus, 2);
    assert_int_equal(c.ndisks, 2);
    assert_string_equal(c.disks[0].volume, "vm-100-disk-0.raw");
    assert_string_equal(c.disks[1].volume, "data.raw");
    assert_int_equal(c.disks[1].size_mib, 1);
    j = vmconf_to_json(&c);
    assert_int_equal(vmconf_from_json(j, &c2, &e), 0);
    json_t *j2 = vmconf_to_json(&c2);
    assert_true(json_equal(j, j2));
    assert_memory_equal(&c, &c2, sizeof(c));
    json_decref(j);
    json_decref(j2);
}

static void test_vm_minimal(void **state)
{
    (void)state;
    struct vmconf c;
    struct err e;
    json_t *j = load("{\"id\": 999999999, \"memory_mib\": 16, \"cpus\": 1,"
                     " \"kernel\": \"/k\", \"name\": \"\"}");
    assert_int_equal(vmconf_from_json(j, &c, &e), 0);
    json_decref(j);
    assert_string_equal(c.name, "");
    assert_string_equal(c.cmdline, "");
    assert_int_equal(c.ndisks, 0);
    j = vmconf_to_json(&c);
    assert_null(json_object_get(j, "name")); /* no name: none written */
    json_decref(j);
}

struct bad_case {
    const char *json;
    const char *msg; /* the whole expected message */
};

/* Each replaces one field of an otherwise good config. */
static const struct bad_case bad_vms[] = {
    {"[]", "vm: config must be a json object"},
    {"{\"memory_mib\": 256}", "vm: 'id' is missing"},
    {"{\"id\": \"100\"}", "vm: 'id' must be an integer 100..999999999"},
    {"{\"id\": 5}", "vm: 'id' must be 100..999999999, not 5"},
    {"{\"id\": 100, \"memory_mib\": 256, \"cpus\": 1, \"kernel\": \"/k\", \"color\": 1}",
     "vm 100: unknown key 'color'"},
    {"{\"id\": 100, \"cpus\": 1, \"kernel\": \"/k\"}", "vm 100: 'memory_mib' is missing"},
    {"{\"id\": 100, \"memory_mib\": 5, \"cpus\": 1, \"kernel\": \"/k\"}",
     "vm 100: 'memory_mib' must be 16..1048576, not 5"},
    {"{\"id\": 100, \"memory_mib\": -1, \"cpus\": 1, \"kernel\": \"/k\"}",
     "vm 100: 'memory_mib' must be 16..1048576, not -1"},
    {"{\"id\": 100, \"memory_mib\": 1.5, \"cpus\": 1, \"kernel\": \"/k\"}",
     "vm 100: 'memory_mib' must be an integer 16..1048576"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 33, \"kernel\": \"/k\"}",
     "vm 100: 'cpus' must be 1..32, not 33"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 0, \"kernel\": \"/k\"}",
     "vm 100: 'cpus' must be 1..32, not 0"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1}", "vm 100: 'kernel' is missing"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": 7}",
     "vm 100: 'kernel' must be a string"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"boot/k\"}",
     "vm 100: 'kernel' must be an absolute path, not 'boot/k'"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/boot/../k\"}",
     "vm 100: 'kernel' must not contain '..', not '/boot/../k'"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\\n\"}",
     "vm 100: 'kernel' must not contain control characters"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\", \"cmdline\": "
     "\"a\\nb\"}",
     "vm 100: 'cmdline' must not contain a newline or other control characters"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\", \"name\": \"a "
     "b\"}",
     "vm 100: 'name' must be 1..63 of letters, digits, '.', '_', '-' not starting with "
     "'.' or '-', not 'a b'"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\", \"disks\": {}}",
     "vm 100: 'disks' must be an array of at most 8 disks"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\", \"disks\": [1]}",
     "vm 100: disks[0] must be an object"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"size_mib\": 1}]}",
     "vm 100: disks[0]: 'storage' is missing"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"storage\": \"s\"}]}",
     "vm 100: disks[0]: 'size_mib' is missing"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"storage\": \"s\", \"size_mib\": 0}]}",
     "vm 100: disks[0]: 'size_mib' must be 1..16777216, not 0"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"storage\": \"../x\", \"size_mib\": 1}]}",
     "vm 100: disks[0]: 'storage' must be 1..63 of letters, digits, '.', '_', '-' not "
     "starting with '.' or '-', not '../x'"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"storage\": \"s\", \"size_mib\": 1, \"bus\": \"ide\"}]}",
     "vm 100: disks[0]: unknown key 'bus'"},
    {"{\"id\": 100, \"memory_mib\": 16, \"cpus\": 1, \"kernel\": \"/k\","
     " \"disks\": [{\"storage\": \"s\", \"size_mib\": 1, \"volume\": \"a\"},"
     "           {\"storage\": \"s\", \"size_mib\": 1, \"volume\": \"a\"}]}",
     "vm 100: disks[1]: volume 'a' on storage 's' is used twice"},
};

static void test_vm_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_vms) / sizeof(bad_vms[0]); i++) {
        struct vmconf c;
        struct err e;
        json_t *j = load(bad_vms[i].json);
        assert_int_equal(vmconf_from_json(j, &c, &e), -EINVAL);
        assert_string_equal(e.msg, bad_vms[i].msg);
        assert_null(strchr(e.msg, '\n'));
        json_decref(j);
    }
}

static void test_vm_long_fields(void **state)
{
    (void)state;
    char cmdline[VMCONF_CMDLINE_MAX + 1], kernel[VMCONF_PATH_MAX + 2];
    struct vmconf c;
    struct err e;
    memset(cmdline, 'x', sizeof(cmdline) - 1);
    cmdline[VMCONF_CMDLINE_MAX] = '\0';
    json_t *j = json_pack("{s:i, s:i, s:i, s:s, s:s}", "id", 100, "memory_mib", 16, "cpus",
                          1, "kernel", "/k", "cmdline", cmdline);
    assert_int_equal(vmconf_from_json(j, &c, &e), -EINVAL);
    assert_string_equal(e.msg, "vm 100: 'cmdline' is longer than 1023 characters");
    cmdline[VMCONF_CMDLINE_MAX - 1] = '\0'; /* 1023: fits */
    json_object_set_new(j, "cmdline", json_string(cmdline));
    assert_int_equal(vmconf_from_json(j, &c, &e), 0);
    memset(kernel, 'k', sizeof(kernel) - 1);
    kernel[0] = '/';
    kernel[sizeof(kernel) - 1] = '\0';
    json_object_set_new(j, "kernel", json_string(kernel));
    assert_int_equal(vmconf_from_json(j, &c, &e), -EINVAL);
    assert_string_equal(e.msg, "vm 100: 'kernel' is longer than 255 characters");
    json_decref(j);
}

/* NICs: the default MAC from the id, an explicit one normalised, the JSON
 * round trip, and each refusal naming the field. */
static void test_vm_nets(void **state)
{
    (void)state;
    struct vmconf c, c2;
    struct err e;
    json_t *j = load(
        "{\"id\": 300, \"memory_mib\": 64, \"cpus\": 1, \"kernel\": \"/k\","
        " \"nets\": [{\"bridge\": \"vmbr0\"},"
        "            {\"bridge\": \"br.1\", \"mac\": \"02:AB:00:00:00:01\"}]}");
    assert_int_equal(vmconf_from_json(j, &c, &e), 0);
    json_decref(j);
    assert_int_equal(c.nnets, 2);
    assert_string_equal(c.nets[0].bridge, "vmbr0");
    assert_string_equal(c.nets[0].mac, "52:54:00:00:04:b0"); /* 300 * 4 */
    assert_string_equal(c.nets[1].mac, "02:ab:00:00:00:01");
    j = vmconf_to_json(&c);
    assert_int_equal(vmconf_from_json(j, &c2, &e), 0);
    json_decref(j);
    assert_memory_equal(&c, &c2, sizeof(c));
    static const struct {
        const char *nets, *msg;
    } bad[] = {
        {"[{\"bridge\": \"a/b\"}]", "vm 300: nets[0]: 'bridge' must be an interface name"},
        {"[{\"bridge\": \"a-very-long-bridge\"}]", "'bridge' must be an interface name"},
        {"[{}]", "nets[0]"},
        {"[{\"bridge\": \"b\", \"mac\": \"01:00:5e:00:00:01\"}]",
         "'mac' must be a unicast"},
        {"[{\"bridge\": \"b\", \"mac\": \"00:00:00:00:00:00\"}]",
         "'mac' must be a unicast"},
        {"[{\"bridge\": \"b\", \"mac\": \"52-54-00-00-00-01\"}]",
         "'mac' must be a unicast"},
        {"[{\"bridge\": \"b\", \"vlan\": 3}]", "nets[0]: unknown key 'vlan'"},
        {"[{\"bridge\": \"b\", \"mac\": \"02:00:00:00:00:01\"},"
         " {\"bridge\": \"b\", \"mac\": \"02:00:00:00:00:01\"}]",
         "nets[1]: mac 02:00:00:00:00:01 is used twice"},
        {"[{\"bridge\": \"b\"}, {\"bridge\": \"b\"}, {\"bridge\": \"b\"}, {\"bridge\": "
         "\"b\"},"
         " {\"bridge\": \"b\"}]",
         "'nets' must be an array of at most 4 nics"},
        {"{\"bridge\": \"b\"}", "'nets' must be an array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "{\"id\": 300, \"memory_mib\": 64, \"cpus\": 1, \"kernel\": \"/k\", "
                 "\"nets\": %s}",
                 bad[i].nets);
        j = load(text);
        assert_int_equal(vmconf_from_json(j, &c, &e), -EINVAL);
        json_decref(j);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("%s: got '%s', wanted '%s'", bad[i].nets, e.msg, bad[i].msg);
    }
}

static void test_storage(void **state)
{
    (void)state;
    struct storage_conf s;
    struct err e;
    char path[VMCONF_PATH_MAX];
    json_t *j = load("{\"name\": \"local\", \"path\": \"/var/lib/tern/\"}");
    assert_int_equal(storage_conf_from_json(j, &s, &e), 0);
    json_decref(j);
    assert_string_equal(s.path, "/var/lib/tern");
    assert_false(s.shared);
    j = storage_conf_to_json(&s);
    struct storage_conf s2;
    assert_int_equal(storage_conf_from_json(j, &s2, &e), 0);
    assert_memory_equal(&s, &s2, sizeof(s));
    json_decref(j);
    assert_int_equal(storage_volume_path(&s, "vm-100-disk-0.raw", path, &e), 0);
    assert_string_equal(path, "/var/lib/tern/vm-100-disk-0.raw");
    assert_int_equal(storage_volume_path(&s, "../etc", path, &e), -EINVAL);
}

static const struct bad_case bad_storage[] = {
    {"{\"path\": \"/x\"}", "storage: 'name' is missing"},
    {"{\"name\": \"a/b\", \"path\": \"/x\"}",
     "storage: 'name' must be 1..63 of letters, digits, '.', '_', '-' not starting "
     "with '.' or '-', not 'a/b'"},
    {"{\"name\": \"s\"}", "storage 's': 'path' is missing"},
    {"{\"name\": \"s\", \"path\": \"x\"}",
     "storage 's': 'path' must be an absolute path, not 'x'"},
    {"{\"name\": \"s\", \"path\": \"/a/..\"}",
     "storage 's': 'path' must not contain '..', not '/a/..'"},
    {"{\"name\": \"s\", \"path\": \"//\"}", "storage 's': 'path' must not be '/'"},
    {"{\"name\": \"s\", \"path\": \"/x\", \"shared\": 1}",
     "storage 's': 'shared' must be true or false"},
    {"{\"name\": \"s\", \"path\": \"/x\", \"type\": \"nfs\"}",
     "storage 's': unknown key 'type'"},
};

static void test_storage_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_storage) / sizeof(bad_storage[0]); i++) {
        struct storage_conf s;
        struct err e;
        json_t *j = load(bad_storage[i].json);
        assert_int_equal(storage_conf_from_json(j, &s, &e), -EINVAL);
        assert_string_equal(e.msg, bad_storage[i].msg);
        json_decref(j);
    }
    /* a path that leaves no room for a volume name behind it */
    char path[VMCONF_PATH_MAX];
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    json_t *j = json_pack("{s:s, s:s}", "name", "s", "path", path);
    struct storage_conf s;
    struct err e;
    assert_int_equal(storage_conf_from_json(j, &s, &e), -EINVAL);
    assert_string_equal(e.msg, "storage 's': 'path' is longer than 191 characters");
    json_decref(j);
}

static void test_options(void **state)
{
    (void)state;
    struct cluster_options o;
    struct err e;
    cluster_options_default(&o);
    json_t *j = cluster_options_to_json(&o);
    json_t *want = load("{\"migration\": {\"type\": \"secure\", \"network\": null}}");
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    j = load("{\"migration\": {\"network\": \"10.0.1.0/24\"}}");
    assert_int_equal(cluster_options_update(j, &o, &e), 0);
    json_decref(j);
    assert_string_equal(o.migration_type, "secure");
    assert_string_equal(o.migration_network, "10.0.1.0/24");
    j = load("{\"migration\": {\"type\": \"insecure\"}}");
    assert_int_equal(cluster_options_update(j, &o, &e), 0);
    json_decref(j);
    assert_string_equal(o.migration_type, "insecure");
    assert_string_equal(o.migration_network, "10.0.1.0/24");
    j = load("{\"migration\": {\"network\": null}}");
    assert_int_equal(cluster_options_update(j, &o, &e), 0);
    json_decref(j);
    assert_string_equal(o.migration_network, "");
}

static const struct bad_case bad_options[] = {
    {"[]", "cluster options must be a json object"},
    {"{\"bwlimit\": 1}", "cluster options: unknown key 'bwlimit'"},
    {"{\"migration\": 1}", "cluster options: 'migration' must be an object"},
    {"{\"migration\": {\"speed\": 1}}", "cluster options: migration: unknown key 'speed'"},
    {"{\"migration\": {\"type\": \"fast\"}}",
     "cluster options: migration: 'type' must be 'secure' or 'insecure', not 'fast'"},
    {"{\"migration\": {\"type\": \"insecure\", \"network\": 5}}",
     "cluster options: migration: 'network' must be a cidr string or null"},
    {"{\"migration\": {\"type\": \"insecure\", \"network\": \"10.0.1.0/33\"}}",
     "cluster options: migration: 'network': cidr '10.0.1.0/33': prefix length must be "
     "0..32"},
    {"{\"migration\": {\"network\": \"10.0.1.5/24\"}}",
     "cluster options: migration: 'network': cidr '10.0.1.5/24' has host bits set "
     "(the network is 10.0.1.0/24)"},
};

static void test_options_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_options) / sizeof(bad_options[0]); i++) {
        struct cluster_options o;
        struct err e;
        cluster_options_default(&o);
        json_t *j = load(bad_options[i].json);
        assert_int_equal(cluster_options_update(j, &o, &e), -EINVAL);
        assert_string_equal(e.msg, bad_options[i].msg);
        /* nothing changed, not even what came before the bad key */
        assert_string_equal(o.migration_type, "secure");
        assert_string_equal(o.migration_network, "");
        json_decref(j);
    }
}

static void test_cidr_check(void **state)
{
    (void)state;
    static const char *const good[] = {"10.0.1.0/24",     "0.0.0.0/0",     "10.0.1.7/32",
                                       "fd00::/64",       "::/0",          "fd00:1:2::/48",
                                       "2001:db8::1/128", "10.0.1.128/25", NULL};
    static const char *const bad[] = {"10.0.1.0",    "10.0.1.0/",   "10.0.1.0/33",
                                      "10.0.1/24",   "fd00::/129",  "10.0.1.0/024",
                                      "10.0.1.0/2x", "x/8",         "10.0.1.1/24",
                                      "fd00::1/64",  "10.0.1.0/-1", "",
                                      NULL};
    struct err e;
    for (int i = 0; good[i]; i++)
        assert_int_equal(cidr_check(good[i], &e), 0);
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(cidr_check(bad[i], &e), -EINVAL);
        assert_null(strchr(e.msg, '\n'));
    }
    assert_int_equal(cidr_check("fd00::/129", &e), -EINVAL);
    assert_string_equal(e.msg, "cidr 'fd00::/129': prefix length must be 0..128");
    assert_int_equal(cidr_check("10.0.1/24", &e), -EINVAL);
    assert_string_equal(e.msg, "cidr '10.0.1/24': '10.0.1' is not an ipv4 or ipv6 address");
}

static bool inside(const char *cidr, const char *addr)
{
    bool in = true;
    struct err e;
    assert_int_equal(cidr_contains(cidr, addr, &in, &e), 0);
    return in;
}

static void test_cidr_contains(void **state)
{
    (void)state;
    assert_true(inside("10.0.1.0/24", "10.0.1.12"));
    assert_true(inside("10.0.1.0/24", "10.0.1.255"));
    assert_false(inside("10.0.1.0/24", "10.0.2.1"));
    assert_true(inside("10.0.1.128/25", "10.0.1.200"));
    assert_false(inside("10.0.1.128/25", "10.0.1.127"));
    assert_true(inside("0.0.0.0/0", "192.168.1.1"));
    assert_true(inside("10.0.1.7/32", "10.0.1.7"));
    assert_false(inside("10.0.1.7/32", "10.0.1.6"));
    assert_true(inside("fd00:1::/32", "fd00:1:ffff::5"));
    assert_false(inside("fd00:1::/32", "fd00:2::5"));
    assert_true(inside("fd00:1::/31", "fd00:1::5"));
    assert_true(inside("fd00::/64", "[fd00::9]"));
    assert_false(inside("fd00::/64", "10.0.1.1")); /* other family: outside */
    assert_false(inside("10.0.0.0/8", "fd00::1"));
    assert_true(inside("10.0.0.0/8", "::ffff:10.1.2.3")); /* v4-mapped */
    assert_false(inside("10.0.0.0/8", "::ffff:11.1.2.3"));
    bool in = true;
    struct err e;
    assert_int_equal(cidr_contains("10.0.0.0/8", "10.0.0", &in, &e), -EINVAL);
    assert_false(in);
    assert_string_equal(e.msg, "'10.0.0' is not an ip address");
    assert_int_equal(cidr_contains("10.0.0.0/40", "10.0.0.1", &in, &e), -EINVAL);
}

static void test_vm_state(void **state)
{
    (void)state;
    struct vmrec_state s = {
        .node = "n1", .status = "running", .pid = 4242, .since = 1795312338};
    struct vmrec_state s2;
    struct err e;
    json_t *j = vmrec_state_to_json(&s);
    json_object_set_new(j, "later", json_true()); /* unknown keys are skipped */
    assert_int_equal(vmrec_state_from_json(j, &s2, &e), 0);
    assert_string_equal(s2.node, "n1");
    assert_string_equal(s2.status, "running");
    assert_int_equal(s2.pid, 4242);
    assert_int_equal(s2.since, 1795312338);
    json_object_set_new(j, "status", json_string("dancing"));
    assert_int_equal(vmrec_state_from_json(j, &s2, &e), -EINVAL);
    assert_string_equal(e.msg, "vm state: unknown 'status' 'dancing'");
    json_decref(j);
    char name[TERN_NAME_MAX + 1];
    vmconf_volume_name(999999999, 7, name);
    assert_string_equal(name, "vm-999999999-disk-7.raw");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_parse),         cmocka_unit_test(test_vm_roundtrip),
        cmocka_unit_test(test_vm_minimal),       cmocka_unit_test(test_vm_refusals),
        cmocka_unit_test(test_vm_long_fields),   cmocka_unit_test(test_storage),
        cmocka_unit_test(test_storage_refusals), cmocka_unit_test(test_options),
        cmocka_unit_test(test_options_refusals), cmocka_unit_test(test_cidr_check),
        cmocka_unit_test(test_cidr_contains),    cmocka_unit_test(test_vm_state),
        cmocka_unit_test(test_vm_nets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
