/* Unit tests for src/vmm/mptable.c: the MP floating pointer and configuration
 * table as Linux's mpparse.c reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/mptable.h"

#define GPA 0x9fc00U
#define BUF_SIZE 4096

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

static const unsigned entry_size[] = {20, 8, 8, 8, 8};

static void check_table(unsigned ncpus)
{
    uint8_t buf[BUF_SIZE];
    memset(buf, 0xa5, sizeof(buf));
    int used = mptable_build(buf, sizeof(buf), GPA, ncpus);
    assert_true(used > 0);
    assert_int_equal((size_t)used, mptable_size(ncpus));
    /* nothing written past what it reported */
    for (size_t i = (size_t)used; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xa5);

    /* floating pointer */
    const uint8_t *fp = buf;
    assert_memory_equal(fp, "_MP_", 4);
    assert_int_equal(fp[8], 1); /* 16 bytes */
    assert_int_equal(fp[9], 4); /* spec 1.4 */
    assert_int_equal(sum(fp, 16), 0);
    assert_int_equal(fp[11], 0); /* config table present */
    uint32_t table_gpa = rd32(fp + 4);
    assert_int_equal(table_gpa, GPA + 16);

    /* configuration table header */
    const uint8_t *hdr = buf + (table_gpa - GPA);
    assert_memory_equal(hdr, "PCMP", 4);
    uint16_t base_len = rd16(hdr + 4);
    assert_int_equal(base_len, (size_t)used - 16);
    assert_int_equal(hdr[6], 4);
    assert_int_equal(sum(hdr, base_len), 0);
    assert_int_equal(rd32(hdr + 36), MPTABLE_LAPIC_ADDR);
    assert_int_equal(rd16(hdr + 40), 0); /* no extended table */
    uint16_t count = rd16(hdr + 34);

    /* walk the entries */
    const uint8_t *p = hdr + 44, *end = hdr + base_len;
    unsigned n = 0, cpus = 0, bps = 0, ioapics = 0, buses = 0, ioints = 0, lints = 0;
    int last_type = -1;
    uint8_t ioapic_id = 0xff;
    bool irq_seen[16] = {false};
    while (p < end) {
        uint8_t type = p[0];
        assert_true(type <= 4);
        /* entries are sorted by type, as the spec requires */
        assert_true((int)type >= last_type);
        last_type = type;
        assert_true(p + entry_size[type] <= end);
        switch (type) {
        case 0:
            assert_int_equal(p[1], cpus); /* APIC ids 0..n-1 in order */
            assert_true(p[3] & 1);        /* enabled */
            if (p[3] & 2) {
                bps++;
                assert_int_equal(p[1], 0); /* only CPU 0 is the BP */
            }
            cpus++;
            break;
        case 1:
            assert_memory_equal(p + 2, "ISA   ", 6);
            buses++;
            break;
        case 2:
            ioapic_id = p[1];
            assert_true(p[3] & 1);
            assert_int_equal(rd32(p + 4), MPTABLE_IOAPIC_ADDR);
            ioapics++;
            break;
        case 3:
            assert_int_equal(p[6], ioapic_id); /* routes to the IOAPIC above */
            assert_true(p[5] < 16);
            irq_seen[p[5]] = true;
            /* PIT IRQ 0 on pin 2, others identity */
            assert_int_equal(p[7], p[5] == 0 ? 2 : p[5]);
            ioints++;
            break;
        case 4: lints++; break;
        }
        p += entry_size[type];
        n++;
    }
    assert_ptr_equal(p, end);
    assert_int_equal(n, count);
    assert_int_equal(cpus, ncpus);
    assert_int_equal(bps, 1);
    assert_int_equal(ioapics, 1);
    assert_int_equal(buses, 1);
    assert_int_equal(ioints, 16);
    assert_int_equal(lints, 2);
    for (unsigned i = 0; i < 16; i++)
        assert_true(irq_seen[i]);
    /* the IOAPIC id does not collide with a local APIC id */
    assert_true(ioapic_id >= ncpus);
}

static void one_cpu(void **state)
{
    (void)state;
    check_table(1);
}
static void two_cpus(void **state)
{
    (void)state;
    check_table(2);
}
static void max_cpus(void **state)
{
    (void)state;
    check_table(MPTABLE_MAX_CPUS);
}
static void all_counts(void **state)
{
    (void)state;
    for (unsigned n = 1; n <= MPTABLE_MAX_CPUS; n++)
        check_table(n);
}

static void other_gpa(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    assert_true(mptable_build(buf, sizeof(buf), 0xf0000, 4) > 0);
    assert_int_equal(rd32(buf + 4), 0xf0010);
    assert_int_equal(sum(buf, 16), 0);
}

static void bad_cpu_counts(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    memset(buf, 0xa5, sizeof(buf));
    assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 0), -EINVAL);
    assert_int_equal(mptable_build(buf, sizeof(buf), GPA, MPTABLE_MAX_CPUS + 1), -EINVAL);
    assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 255), -EINVAL);
    assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 256), -EINVAL);
    assert_int_equal(mptable_build(buf, sizeof(buf), GPA, UINT32_MAX), -EINVAL);
    assert_int_equal(buf[0], 0xa5);
}

static void small_buffer(void **state)
{
    (void)state;
    uint8_t buf[BUF_SIZE];
    for (unsigned n = 1; n <= MPTABLE_MAX_CPUS; n += 31) {
        size_t need = mptable_size(n);
        memset(buf, 0xa5, sizeof(buf));
        assert_int_equal(mptable_build(buf, need - 1, GPA, n), -ENOSPC);
        assert_int_equal(mptable_build(buf, 0, GPA, n), -ENOSPC);
        assert_int_equal(mptable_build(buf, 16, GPA, n), -ENOSPC);
        for (size_t i = 0; i < sizeof(buf); i++)
            assert_int_equal(buf[i], 0xa5);
        assert_int_equal(mptable_build(buf, need, GPA, n), (int)need);
    }
    /* the whole table fits in the 1 KiB EBDA slot the VMM reserves */
    assert_true(mptable_size(MPTABLE_MAX_CPUS) <= 0x400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_cpu),      cmocka_unit_test(two_cpus),
        cmocka_unit_test(max_cpus),     cmocka_unit_test(all_counts),
        cmocka_unit_test(other_gpa),    cmocka_unit_test(bad_cpu_counts),
        cmocka_unit_test(small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
