/* The sections of the migration stream: the registry a VM builds
 * (vm_register_sections) is the list docs/protocol.md gives, the check of a
 * recorded stream without KVM (mig_stream_verify) derives the same list from
 * the HELLO, and it accepts exactly that list: every section once, none
 * missing, none unknown, no version above what the owner loads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "devices/serial.h"
#include "migrate/hello.h"
#include "migrate/protocol.h"
#include "migrate/state.h"
#include "migrate/verify.h"
#include "vmm/vm.h"

#define CPUS 2
#define DISKS 1
#define NETS 1

/* docs/protocol.md, "Sections": name, instances, version */
static const struct {
    const char *name;
    uint32_t version;
} documented[] = {
    {"cpu", 1},      {"cpu", 1},    {"irqchip", 1},    {"pit", 1},
    {"kvmclock", 1}, {"serial", 1}, {"virtio-blk", 1}, {"virtio-net", 1},
};

static void registry_is_the_documented_list(void **state)
{
    (void)state;
    struct devstate_registry reg;
    struct err e = {""};
    assert_int_equal(vm_register_sections(&reg, NULL, CPUS, DISKS, NETS, &e), 0);
    assert_int_equal(reg.count, sizeof(documented) / sizeof(documented[0]));
    for (unsigned i = 0; i < reg.count; i++) {
        assert_string_equal(reg.entry[i].ops->name, documented[i].name);
        assert_int_equal(reg.entry[i].ops->version, documented[i].version);
        assert_int_equal(reg.entry[i].instance, i == 1 ? 1 : 0);
        assert_null(reg.entry[i].opaque);
    }
}

/* The registry of a real VM (owners set) and the one a stream is checked
 * against (no owners) list the same sections, for every size of VM. */
static void owned_and_checked_lists_agree(void **state)
{
    (void)state;
    struct vm *vm = calloc(1, sizeof(*vm));
    struct devstate_registry *owned = calloc(1, sizeof(*owned));
    struct devstate_registry *checked = calloc(1, sizeof(*checked));
    assert_non_null(vm);
    assert_non_null(owned);
    assert_non_null(checked);
    struct err e = {""};
    for (unsigned cpus = 1; cpus <= VM_MAX_CPUS; cpus++) {
        for (unsigned disks = 0; disks <= VM_MAX_DISKS; disks++) {
            for (unsigned nets = 0; nets <= VM_MAX_NETS; nets++) {
                assert_int_equal(vm_register_sections(owned, vm, cpus, disks, nets, &e), 0);
                assert_int_equal(vm_register_sections(checked, NULL, cpus, disks, nets, &e),
                                 0);
                assert_int_equal(owned->count, checked->count);
                assert_int_equal(owned->count, cpus + 4 + disks + nets);
                for (unsigned i = 0; i < owned->count; i++) {
                    assert_ptr_equal(owned->entry[i].ops, checked->entry[i].ops);
                    assert_int_equal(owned->entry[i].instance, checked->entry[i].instance);
                    assert_non_null(owned->entry[i].opaque);
                }
            }
        }
    }
    free(checked);
    free(owned);
    free(vm);
}

/* ---- whole streams through mig_stream_verify ---- */

static void put_msg(struct buf *out, uint16_t type, const void *payload, uint32_t len)
{
    struct mig_hdr h = {MIG_MAGIC, type, 0, len, 0};
    h.crc = crc32c(0, &h, 12);
    buf_put(out, &h, sizeof(h));
    buf_put(out, payload, len);
}

static void put_hello(struct buf *out)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    assert_non_null(vm);
    vm->config.name = "sections";
    vm->config.memory = 64ULL << 20;
    vm->config.cpu_model = "host";
    vm->ncpus = CPUS;
    vm->ndisks = DISKS;
    for (unsigned i = 0; i < DISKS; i++) {
        vm->disk[i].capacity = 2048;
        vm->disk[i].shared = true;
    }
    vm->nnets = NETS;
    for (unsigned i = 0; i < NETS; i++)
        memcpy(vm->net[i].mac, "\x52\x54\x00\x01\x02\x03", 6);
    vm->cpuid = calloc(1, sizeof(*vm->cpuid) + sizeof(vm->cpuid->entries[0]));
    assert_non_null(vm->cpuid);
    vm->cpuid->nent = 1;
    struct buf hello;
    buf_init(&hello);
    struct err e = {""};
    assert_int_equal(hello_encode(vm, false, 0, &hello, &e), 0);
    put_msg(out, MIG_HELLO, hello.data, (uint32_t)hello.len);
    buf_release(&hello);
    free(vm->cpuid);
    free(vm);
}

/* A section as state_save_all writes it, with data that the offline check
 * loads (serial) or only frames (the others: their loads need KVM). */
static void put_section(struct buf *out, const char *name, uint32_t instance,
                        uint32_t version)
{
    struct buf data, msg;
    buf_init(&data);
    buf_init(&msg);
    if (strcmp(name, "serial") == 0) {
        struct serial *uart = calloc(1, sizeof(*uart));
        assert_non_null(uart);
        pthread_mutex_init(&uart->lock, NULL);
        struct err e = {""};
        assert_int_equal(serial_state_ops.save(uart, &data, &e), 0);
        pthread_mutex_destroy(&uart->lock);
        free(uart);
    } else {
        buf_put_u32(&data, 0x5ec7105);
    }
    buf_put_u8(&msg, (uint8_t)strlen(name));
    buf_put(&msg, name, strlen(name));
    buf_put_u32(&msg, instance);
    buf_put_u32(&msg, version);
    buf_put_u32(&msg, (uint32_t)data.len);
    buf_put_u32(&msg, crc32c(0, data.data, data.len));
    buf_put(&msg, data.data, data.len);
    put_msg(out, MIG_SECTION, msg.data, (uint32_t)msg.len);
    buf_release(&msg);
    buf_release(&data);
}

enum change { AS_REGISTERED, DROP, TWICE, VERSION_UP };

/* HELLO, every registered section (entry `which` changed as told), END,
 * COMMIT; then 0 or mig_stream_verify's refusal in e. */
static int verify_stream(enum change change, unsigned which, const char *extra_name,
                         uint32_t extra_instance, struct mig_stream_summary *sum,
                         struct err *e)
{
    struct devstate_registry reg;
    assert_int_equal(vm_register_sections(&reg, NULL, CPUS, DISKS, NETS, e), 0);
    struct buf s;
    buf_init(&s);
    put_hello(&s);
    for (unsigned i = 0; i < reg.count; i++) {
        const struct devstate_entry *d = &reg.entry[i];
        uint32_t version = d->ops->version + (change == VERSION_UP && i == which);
        if (change == DROP && i == which)
            continue;
        put_section(&s, d->ops->name, d->instance, version);
        if (change == TWICE && i == which)
            put_section(&s, d->ops->name, d->instance, version);
    }
    if (extra_name)
        put_section(&s, extra_name, extra_instance, 1);
    put_msg(&s, MIG_END, NULL, 0);
    put_msg(&s, MIG_COMMIT, NULL, 0);
    assert_false(s.oom);
    int rc = mig_stream_verify(s.data, s.len, sum, e);
    buf_release(&s);
    return rc;
}

static void accepts_the_registered_sections(void **state)
{
    (void)state;
    struct mig_stream_summary sum;
    struct err e = {""};
    if (verify_stream(AS_REGISTERED, 0, NULL, 0, &sum, &e))
        fail_msg("refused: %s", e.msg);
    assert_int_equal(sum.sections, sizeof(documented) / sizeof(documented[0]));
    assert_int_equal(sum.cpus, CPUS);
    assert_int_equal(sum.ndisks, DISKS);
    assert_true(sum.committed);
}

static void expect_refusal(int rc, const struct err *e, const char *want)
{
    if (!rc || !strstr(e->msg, want))
        fail_msg("rc %d, message '%s', wanted '%s'", rc, e->msg, want);
}

static void refuses_any_change_of_the_list(void **state)
{
    (void)state;
    struct devstate_registry reg;
    struct mig_stream_summary sum;
    struct err e = {""};
    assert_int_equal(vm_register_sections(&reg, NULL, CPUS, DISKS, NETS, &e), 0);
    for (unsigned i = 0; i < reg.count; i++) {
        const char *name = reg.entry[i].ops->name;
        unsigned inst = reg.entry[i].instance;
        char want[128];
        snprintf(want, sizeof(want), "stream ended without section '%s' instance %u", name,
                 inst);
        expect_refusal(verify_stream(DROP, i, NULL, 0, &sum, &e), &e, want);
        snprintf(want, sizeof(want), "section '%s' instance %u sent twice", name, inst);
        expect_refusal(verify_stream(TWICE, i, NULL, 0, &sum, &e), &e, want);
        snprintf(want, sizeof(want), "section '%s' version 2 > supported 1", name);
        expect_refusal(verify_stream(VERSION_UP, i, NULL, 0, &sum, &e), &e, want);
    }
    /* one instance more than the HELLO's VM has, and a name nobody registers */
    expect_refusal(verify_stream(AS_REGISTERED, 0, "cpu", CPUS, &sum, &e), &e,
                   "section 'cpu' instance 2: no such device here");
    expect_refusal(verify_stream(AS_REGISTERED, 0, "virtio-blk", DISKS, &sum, &e), &e,
                   "section 'virtio-blk' instance 1: no such device here");
    expect_refusal(verify_stream(AS_REGISTERED, 0, "serial", 1, &sum, &e), &e,
                   "section 'serial' instance 1: no such device here");
    expect_refusal(verify_stream(AS_REGISTERED, 0, "virtio-net", NETS, &sum, &e), &e,
                   "section 'virtio-net' instance 1: no such device here");
}

/* The intake itself, as the destination (incoming.c) uses it. */
static void intake_admits_each_entry_once(void **state)
{
    (void)state;
    struct devstate_registry reg;
    struct err e = {""};
    assert_int_equal(vm_register_sections(&reg, NULL, CPUS, DISKS, NETS, &e), 0);
    struct state_intake in;
    state_intake_init(&in, &reg);
    for (unsigned i = 0; i < reg.count; i++) {
        struct state_section s = {.instance = reg.entry[i].instance, .version = 1};
        snprintf(s.name, sizeof(s.name), "%s", reg.entry[i].ops->name);
        assert_int_not_equal(state_intake_complete(&in, &e), 0);
        assert_non_null(strstr(e.msg, s.name));
        const struct devstate_entry *d = NULL;
        s.version = 0;
        assert_int_equal(state_admit(&in, &s, &d, &e), -EPROTO);
        assert_non_null(strstr(e.msg, "version 0 is invalid"));
        s.version = 1;
        assert_int_equal(state_admit(&in, &s, &d, &e), 0);
        assert_ptr_equal(d, &reg.entry[i]);
        assert_int_equal(state_admit(&in, &s, &d, &e), -EPROTO);
        assert_non_null(strstr(e.msg, "sent twice"));
    }
    assert_int_equal(state_intake_complete(&in, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_is_the_documented_list),
        cmocka_unit_test(owned_and_checked_lists_agree),
        cmocka_unit_test(accepts_the_registered_sections),
        cmocka_unit_test(refuses_any_change_of_the_list),
        cmocka_unit_test(intake_admits_each_entry_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
