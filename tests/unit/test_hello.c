/* Unit tests for src/migrate/hello.c: a fake struct vm (no KVM) encoded and
 * decoded again, then hostile HELLO messages built by hand: every prefix,
 * bad JSON, out-of-range fields, bad cpuid counts, trailing bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/hello.h"
#include "migrate/protocol.h"
#include "vmm/vm.h"

#define NCPUID 3

static struct vm *fake_vm(void)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    assert_non_null(vm);
    vm->config.name = "vm-under-test";
    vm->config.memory = 512ULL << 20;
    vm->config.cpu_model = "host";
    vm->ncpus = 4;
    vm->ndisks = 2;
    vm->disk[0].capacity = 131072; /* 64 MiB in sectors */
    vm->disk[0].readonly = false;
    vm->disk[0].shared = true;
    vm->disk[1].capacity = 2048;
    vm->disk[1].readonly = true;
    vm->disk[1].shared = false;
    vm->cpuid = calloc(1, sizeof(*vm->cpuid) + NCPUID * sizeof(vm->cpuid->entries[0]));
    assert_non_null(vm->cpuid);
    vm->cpuid->nent = NCPUID;
    for (unsigned i = 0; i < NCPUID; i++) {
        struct kvm_cpuid_entry2 *c = &vm->cpuid->entries[i];
        c->function = i == 2 ? 0x80000001 : i;
        c->index = i;
        c->flags = i == 1 ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
        c->eax = 0x11110000 + i;
        c->ebx = 0x22220000 + i;
        c->ecx = 0x33330000 + i;
        c->edx = 0x44440000 + i;
    }
    return vm;
}

static void free_vm(struct vm *vm)
{
    free(vm->cpuid);
    free(vm);
}

/* Decodes from an exactly sized heap copy so ASan sees any over-read. */
static int decode(const void *msg, size_t len, struct mig_hello *h, struct err *e)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, msg, len);
    int rc = hello_decode(copy, (uint32_t)len, h, e);
    free(copy);
    return rc;
}

/* A HELLO from parts. */
struct raw {
    uint16_t vmin, vmax;
    uint32_t reserved;
    uint64_t features;
    const char *json;
    uint32_t nent; /* the count field */
    uint32_t have; /* entries actually present */
    size_t trailing;
};

#define CFG_OK                                                                   \
    "{\"name\":\"vm1\",\"memory\":1073741824,\"cpus\":2,\"cpu_model\":\"host\"," \
    "\"paused\":false,\"disks\":[{\"size\":67108864,\"readonly\":false,\"shared\":true}]}"

static const struct raw RAW_OK = {1, 1, 0, MIG_F_PAGE_CRC, CFG_OK, 2, 2, 0};

static void build(struct buf *b, const struct raw *r)
{
    buf_reset(b);
    buf_put_u16(b, r->vmin);
    buf_put_u16(b, r->vmax);
    buf_put_u32(b, r->reserved);
    buf_put_u64(b, r->features);
    buf_put_str(b, r->json);
    buf_put_u32(b, r->nent);
    for (uint32_t i = 0; i < r->have; i++) {
        struct kvm_cpuid_entry2 c = {.function = i, .eax = i * 3};
        buf_put(b, &c, sizeof(c));
    }
    for (size_t i = 0; i < r->trailing; i++)
        buf_put_u8(b, 0);
    assert_false(b->oom);
}

static int decode_raw(const struct raw *r, struct mig_hello *h, struct err *e)
{
    struct buf b;
    buf_init(&b);
    build(&b, r);
    int rc = decode(b.data, b.len, h, e);
    buf_release(&b);
    return rc;
}

static void refused(const struct raw *r, const char *want)
{
    struct mig_hello h;
    struct err e = {""};
    int rc = decode_raw(r, &h, &e);
    if (rc != -EPROTO || !strstr(e.msg, want))
        fail_msg("rc %d, message '%s', wanted '%s' (config %s)", rc, e.msg, want, r->json);
    hello_release(&h);
}

static void accepted(const struct raw *r, struct mig_hello *h)
{
    struct err e = {""};
    if (decode_raw(r, h, &e))
        fail_msg("refused: %s (config %s)", e.msg, r->json);
}

/* ---- round trip ---- */

static void round_trip(void **state)
{
    (void)state;
    struct vm *vm = fake_vm();
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(hello_encode(vm, true, MIG_F_PAGE_CRC, &b, &e), 0);
    assert_true(b.len <= mig_max_length(MIG_HELLO));
    struct mig_hello h;
    if (decode(b.data, b.len, &h, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(h.version_min, MIG_VERSION_MIN);
    assert_int_equal(h.version_max, MIG_VERSION_MAX);
    assert_true(h.features == MIG_F_PAGE_CRC);
    assert_string_equal(h.name, "vm-under-test");
    assert_true(h.memory == 512ULL << 20);
    assert_int_equal(h.cpus, 4);
    assert_string_equal(h.cpu_model, "host");
    assert_true(h.paused);
    assert_int_equal(h.ndisks, 2);
    assert_true(h.disk[0].size == 131072ULL * 512);
    assert_false(h.disk[0].readonly);
    assert_true(h.disk[0].shared);
    assert_true(h.disk[1].size == 2048ULL * 512);
    assert_true(h.disk[1].readonly);
    assert_false(h.disk[1].shared);
    assert_non_null(h.cpuid);
    assert_int_equal(h.cpuid->nent, NCPUID);
    assert_memory_equal(h.cpuid->entries, vm->cpuid->entries,
                        NCPUID * sizeof(vm->cpuid->entries[0]));
    hello_release(&h);
    assert_null(h.cpuid);
    hello_release(&h); /* twice is harmless */

    /* running, no features, no disks, no name */
    vm->ndisks = 0;
    vm->config.name = NULL;
    buf_reset(&b);
    assert_int_equal(hello_encode(vm, false, 0, &b, &e), 0);
    assert_int_equal(decode(b.data, b.len, &h, &e), 0);
    assert_false(h.paused);
    assert_true(h.features == 0);
    assert_int_equal(h.ndisks, 0);
    assert_string_equal(h.name, "");
    hello_release(&h);
    buf_release(&b);
    free_vm(vm);
}

/* The layout of the fixed part matches docs/protocol.md. */
static void encoded_layout(void **state)
{
    (void)state;
    struct vm *vm = fake_vm();
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(hello_encode(vm, false, 0x5, &b, &e), 0);
    static const uint8_t head[16] = {1, 0, 1, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(b.data, head, 16);
    uint32_t clen;
    memcpy(&clen, b.data + 16, 4);
    assert_true(20 + clen + 4 + NCPUID * 40 == b.len);
    assert_int_equal(sizeof(struct kvm_cpuid_entry2), 40);
    uint32_t nent;
    memcpy(&nent, b.data + 20 + clen, 4);
    assert_int_equal(nent, NCPUID);
    /* the config is JSON naming every field */
    char *json = strndup((const char *)b.data + 20, clen);
    assert_non_null(json);
    static const char *const keys[] = {
        "\"name\":\"vm-under-test\"", "\"memory\":536870912", "\"cpus\":4",
        "\"cpu_model\":\"host\"",     "\"paused\":false",     "\"size\":67108864",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strstr(json, keys[i]))
            fail_msg("config %s lacks %s", json, keys[i]);
    free(json);
    buf_release(&b);
    free_vm(vm);
}

/* ---- refusals ---- */

static void refuse_versions(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    static const uint16_t bad[][2] = {{2, 3}, {0, 0}, {2, 1},
                                      {1, 0}, {2, 2}, {0xffff, 0xffff}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.vmin = bad[i][0];
        r.vmax = bad[i][1];
        char want[64];
        snprintf(want, sizeof(want), "source speaks versions %u-%u", r.vmin, r.vmax);
        refused(&r, want);
    }
    /* ranges that include 1 are fine */
    static const uint16_t good[][2] = {{1, 1}, {0, 1}, {1, 2}, {0, 0xffff}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        r.vmin = good[i][0];
        r.vmax = good[i][1];
        struct mig_hello h;
        accepted(&r, &h);
        assert_int_equal(h.version_min, r.vmin);
        assert_int_equal(h.version_max, r.vmax);
        hello_release(&h);
    }
}

/* Every prefix of a valid HELLO fails cleanly. */
static void refuse_every_prefix(void **state)
{
    (void)state;
    struct vm *vm = fake_vm();
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(hello_encode(vm, false, MIG_F_PAGE_CRC, &b, &e), 0);
    for (size_t n = 0; n < b.len; n++) {
        struct mig_hello h;
        e.msg[0] = '\0';
        int rc = decode(b.data, n, &h, &e);
        if (rc != -EPROTO)
            fail_msg("prefix of %zu/%zu bytes: rc %d '%s'", n, b.len, rc, e.msg);
        assert_true(e.msg[0] != '\0');
        assert_null(h.cpuid);
        hello_release(&h);
    }
    struct mig_hello h;
    assert_int_equal(decode(b.data, b.len, &h, &e), 0);
    hello_release(&h);
    buf_release(&b);
    free_vm(vm);
}

static void refuse_config_not_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2,3]",
        "\"string\"",
        "42",
        "null",
        "{\"name\":\"vm1\"",
        "{\"name\":\"vm1\",}",
        /* an object followed by more */
        CFG_OK " {}",
        /* duplicate key */
        ("{\"name\":\"a\",\"name\":\"b\",\"memory\":1073741824,\"cpus\":2,"
         "\"cpu_model\":\"host\",\"paused\":false,\"disks\":[]}"),
    };
    struct raw r = RAW_OK;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.json = bad[i];
        refused(&r, "config is not a json object");
    }
    /* a NUL inside the config blob */
    struct buf b;
    buf_init(&b);
    r = RAW_OK;
    build(&b, &r);
    b.data[20 + 5] = '\0';
    struct mig_hello h;
    struct err e = {""};
    assert_int_equal(decode(b.data, b.len, &h, &e), -EPROTO);
    hello_release(&h);
    /* a config blob longer than 64 KiB */
    char *huge = malloc((64 << 10) + 2);
    assert_non_null(huge);
    memset(huge, ' ', (64 << 10) + 1);
    huge[(64 << 10) + 1] = '\0';
    r.json = huge;
    refused(&r, "hello:");
    free(huge);
    buf_release(&b);
}

static char cfg[1024];

static const char *config(const char *memory, const char *cpus, const char *name,
                          const char *model, const char *paused, const char *disks)
{
    snprintf(cfg, sizeof(cfg),
             "{\"name\":%s,\"memory\":%s,\"cpus\":%s,\"cpu_model\":%s,\"paused\":%s,"
             "\"disks\":%s}",
             name, memory, cpus, model, paused, disks);
    return cfg;
}

#define DISK "{\"size\":1048576,\"readonly\":false,\"shared\":true}"

static void refuse_memory(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    static const char *const bad[] = {
        "16777215",     "0",    "-1",   "70368744177665", "9223372036854775807", "\"1G\"",
        "1073741824.0", "null", "true",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.json = config(bad[i], "1", "\"a\"", "\"host\"", "false", "[]");
        refused(&r, "'memory' missing or out of range");
    }
    r.json =
        "{\"name\":\"a\",\"cpus\":1,\"cpu_model\":\"host\",\"paused\":false,\"disks\":[]}";
    refused(&r, "'memory' missing");
    /* beyond what a json integer holds: the config does not even parse */
    r.json = config("18446744073709551616", "1", "\"a\"", "\"host\"", "false", "[]");
    refused(&r, "hello:");
    /* the bounds themselves: 16 MiB and 64 TiB */
    struct mig_hello h;
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "false", "[]");
    accepted(&r, &h);
    assert_true(h.memory == 16ULL << 20);
    hello_release(&h);
    r.json = config("70368744177664", "1", "\"a\"", "\"host\"", "false", "[]");
    accepted(&r, &h);
    assert_true(h.memory == 1ULL << 46);
    hello_release(&h);
}

static void refuse_cpus(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    static const char *const bad[] = {"0", "33", "-1", "4294967297", "\"2\"", "2.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.json = config("16777216", bad[i], "\"a\"", "\"host\"", "false", "[]");
        refused(&r, "'cpus' missing or out of range");
    }
    struct mig_hello h;
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "false", "[]");
    accepted(&r, &h);
    assert_int_equal(h.cpus, 1);
    hello_release(&h);
    r.json = config("16777216", "32", "\"a\"", "\"host\"", "false", "[]");
    accepted(&r, &h);
    assert_int_equal(h.cpus, 32);
    hello_release(&h);
}

static void refuse_strings(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    struct mig_hello h;
    char name[80];
    /* name: 63 characters fit, 64 do not */
    name[0] = '"';
    memset(name + 1, 'n', 63);
    strcpy(name + 64, "\"");
    r.json = config("16777216", "1", name, "\"host\"", "false", "[]");
    accepted(&r, &h);
    assert_int_equal(strlen(h.name), 63);
    hello_release(&h);
    memset(name + 1, 'n', 64);
    strcpy(name + 65, "\"");
    r.json = config("16777216", "1", name, "\"host\"", "false", "[]");
    refused(&r, "'name' missing or too long");
    /* also when the source's own name is that long */
    struct vm *vm = fake_vm();
    char vmname[65];
    memset(vmname, 'v', 64);
    vmname[64] = '\0';
    vm->config.name = vmname;
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    assert_int_equal(hello_encode(vm, false, 0, &b, &e), 0);
    assert_int_equal(decode(b.data, b.len, &h, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "'name'"));
    hello_release(&h);
    buf_release(&b);
    free_vm(vm);

    r.json = config("16777216", "1", "7", "\"host\"", "false", "[]");
    refused(&r, "'name' missing");
    /* cpu_model: 31 fit, 32 do not */
    char model[40];
    model[0] = '"';
    memset(model + 1, 'm', 31);
    strcpy(model + 32, "\"");
    r.json = config("16777216", "1", "\"a\"", model, "false", "[]");
    accepted(&r, &h);
    assert_int_equal(strlen(h.cpu_model), 31);
    hello_release(&h);
    memset(model + 1, 'm', 32);
    strcpy(model + 33, "\"");
    r.json = config("16777216", "1", "\"a\"", model, "false", "[]");
    refused(&r, "'cpu_model' missing or too long");
    r.json = config("16777216", "1", "\"a\"", "null", "false", "[]");
    refused(&r, "'cpu_model' missing");
    /* paused must be a boolean */
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "0", "[]");
    refused(&r, "'paused' missing");
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "\"no\"", "[]");
    refused(&r, "'paused' missing");
}

static void refuse_disks(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    struct mig_hello h;
    char disks[1024];
    strcpy(disks, "[" DISK);
    for (int i = 1; i < 8; i++)
        strcat(disks, "," DISK);
    strcat(disks, "]");
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "false", disks);
    accepted(&r, &h);
    assert_int_equal(h.ndisks, 8);
    assert_true(h.disk[7].size == 1048576);
    assert_true(h.disk[7].shared);
    hello_release(&h);
    /* nine */
    disks[strlen(disks) - 1] = '\0';
    strcat(disks, "," DISK "]");
    r.json = config("16777216", "1", "\"a\"", "\"host\"", "false", disks);
    refused(&r, "'disks' missing or more than 8");

    static const char *const bad[][2] = {
        {"{}", "'disks' missing"},
        {"null", "'disks' missing"},
        {"[1]", "'size' missing"},
        {"[{\"readonly\":false,\"shared\":true}]", "'size' missing"},
        {"[{\"size\":-512,\"readonly\":false,\"shared\":true}]",
         "'size' missing or out of range"},
        {"[{\"size\":512,\"shared\":true}]", "disk 0 flags missing"},
        {"[{\"size\":512,\"readonly\":false}]", "disk 0 flags missing"},
        {"[" DISK ",{\"size\":512,\"readonly\":1,\"shared\":true}]",
         "disk 1 flags missing"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.json = config("16777216", "1", "\"a\"", "\"host\"", "false", bad[i][0]);
        refused(&r, bad[i][1]);
    }
    /* "disks" missing altogether */
    r.json = "{\"name\":\"a\",\"memory\":16777216,\"cpus\":1,\"cpu_model\":\"host\","
             "\"paused\":false}";
    refused(&r, "'disks' missing");
}

/* NICs: "nets" round-trips the MACs; absent means none (streams from
 * before NICs); each malformed form is refused naming it. */
static void nets(void **state)
{
    (void)state;
    struct vm *vm = fake_vm();
    vm->nnets = 2;
    memcpy(vm->net[0].mac, "\x52\x54\x00\x00\x04\xb0", 6);
    memcpy(vm->net[1].mac, "\x02\xab\x00\x00\x00\x01", 6);
    struct buf b;
    buf_init(&b);
    struct err e = {""};
    struct mig_hello h;
    assert_int_equal(hello_encode(vm, false, 0, &b, &e), 0);
    if (decode(b.data, b.len, &h, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(h.nnets, 2);
    assert_memory_equal(h.net[0].mac, vm->net[0].mac, 6);
    assert_memory_equal(h.net[1].mac, vm->net[1].mac, 6);
    hello_release(&h);
    buf_release(&b);
    free_vm(vm);

    struct raw r = RAW_OK;
    static const char *const bad[][2] = {
        {"[{\"mac\":\"01:00:5e:00:00:01\"}]", "net 0: 'mac' missing or malformed"},
        {"[{\"mac\":\"52:54:00:00:00\"}]", "net 0: 'mac' missing or malformed"},
        {"[{}]", "net 0: 'mac' missing or malformed"},
        {"[1]", "net 0: 'mac' missing or malformed"},
        {"{}", "'nets' not an array of at most 4"},
        {"[{\"mac\":\"02:00:00:00:00:01\"},{\"mac\":\"02:00:00:00:00:02\"},"
         "{\"mac\":\"02:00:00:00:00:03\"},{\"mac\":\"02:00:00:00:00:04\"},"
         "{\"mac\":\"02:00:00:00:00:05\"}]",
         "'nets' not an array of at most 4"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[1024];
        snprintf(json, sizeof(json),
                 "{\"name\":\"a\",\"memory\":16777216,\"cpus\":1,\"cpu_model\":\"host\","
                 "\"paused\":false,\"disks\":[],\"nets\":%s}",
                 bad[i][0]);
        r.json = json;
        refused(&r, bad[i][1]);
    }
}

static void refuse_cpuid(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    struct mig_hello h;
    r.nent = r.have = 0;
    refused(&r, "cpuid table of 0 entries out of range");
    r.nent = r.have = 257;
    refused(&r, "cpuid table of 257 entries out of range");
    r.nent = 0xffffffff;
    r.have = 1;
    refused(&r, "out of range");
    r.nent = r.have = 256;
    accepted(&r, &h);
    assert_int_equal(h.cpuid->nent, 256);
    assert_int_equal(h.cpuid->entries[255].function, 255);
    assert_int_equal(h.cpuid->entries[255].eax, 765);
    hello_release(&h);
    r.nent = r.have = 1;
    accepted(&r, &h);
    assert_int_equal(h.cpuid->nent, 1);
    hello_release(&h);
    /* the count says more than there is */
    r.nent = 3;
    r.have = 2;
    refused(&r, "cpuid table truncated");
    r.nent = 256;
    r.have = 255;
    refused(&r, "cpuid table truncated");
}

static void refuse_trailing(void **state)
{
    (void)state;
    struct raw r = RAW_OK;
    for (size_t t = 1; t <= 41; t += 20) {
        r.trailing = t;
        refused(&r, "trailing bytes");
    }
    /* one entry fewer than there are: the last one is trailing */
    r.trailing = 0;
    r.nent = 1;
    r.have = 2;
    refused(&r, "trailing bytes");
    /* the reserved field and unknown feature bits are carried, not checked */
    r = RAW_OK;
    r.reserved = 0xdeadbeef;
    r.features = ~0ULL;
    struct mig_hello h;
    accepted(&r, &h);
    assert_true(h.features == ~0ULL);
    hello_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(encoded_layout),
        cmocka_unit_test(refuse_versions),
        cmocka_unit_test(refuse_every_prefix),
        cmocka_unit_test(refuse_config_not_json),
        cmocka_unit_test(refuse_memory),
        cmocka_unit_test(refuse_cpus),
        cmocka_unit_test(refuse_strings),
        cmocka_unit_test(refuse_disks),
        cmocka_unit_test(nets),
        cmocka_unit_test(refuse_cpuid),
        cmocka_unit_test(refuse_trailing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
