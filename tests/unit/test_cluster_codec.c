/* The cluster layer's encoding without etcd: base64 of keys and values, the
 * range end of a prefix, numbers as strings, gateway errors, key names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/codec.h"
#include "cluster/keys.h"

static void roundtrip(const char *data, size_t len, const char *expect)
{
    char *enc = codec_b64_encode(data, len);
    assert_string_equal(enc, expect);
    void *dec;
    size_t dlen;
    assert_int_equal(codec_b64_decode(enc, &dec, &dlen), 0);
    assert_int_equal(dlen, len);
    assert_memory_equal(dec, data, len);
    assert_int_equal(((char *)dec)[len], '\0');
    free(dec);
    free(enc);
}

static void test_b64_roundtrip(void **state)
{
    (void)state;
    roundtrip("", 0, "");
    roundtrip("f", 1, "Zg==");
    roundtrip("fo", 2, "Zm8=");
    roundtrip("foo", 3, "Zm9v");
    roundtrip("/tern/nodes/n1", 14, "L3Rlcm4vbm9kZXMvbjE=");
    roundtrip("\xff\x00\xfe", 3, "/wD+");
}

static void test_b64_rejects(void **state)
{
    (void)state;
    void *dec;
    size_t len;
    assert_int_equal(codec_b64_decode("Zm9v!", &dec, &len), -EINVAL);
    assert_int_equal(codec_b64_decode("Z", &dec, &len), -EINVAL);
    assert_int_equal(codec_b64_decode("Zm8", &dec, &len), 0); /* no padding */
    assert_int_equal(len, 2);
    free(dec);
}

static void test_prefix_end(void **state)
{
    (void)state;
    json_t *j = codec_prefix_end_json("/tern/nodes/");
    /* "/tern/nodes0": '/' + 1 */
    char *expect = codec_b64_encode("/tern/nodes0", 12);
    assert_string_equal(json_string_value(j), expect);
    free(expect);
    json_decref(j);
    j = codec_prefix_end_json("a\xff");
    expect = codec_b64_encode("b", 1);
    assert_string_equal(json_string_value(j), expect);
    free(expect);
    json_decref(j);
    assert_null(codec_prefix_end_json(""));
}

static void test_numbers(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:i, s:s, s:s}", "a", "7733421634730785578", "b", 5, "c",
                          "x12", "big", "18446744073709551615");
    assert_int_equal(codec_int64(o, "a", -1), 7733421634730785578LL);
    assert_int_equal(codec_int64(o, "b", -1), 5);
    assert_int_equal(codec_int64(o, "c", -1), -1);
    assert_int_equal(codec_int64(o, "missing", 9), 9);
    assert_true(codec_uint64(o, "big", 0) == UINT64_MAX);
    json_decref(o);
}

static void test_kv_parse(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:s, s:s}", "key", "Zm9v", "mod_revision", "42", "lease",
                          "9");
    struct etcd_kv kv;
    struct err e;
    etcd_kv_init(&kv);
    assert_int_equal(codec_kv_parse(o, &kv, &e), 0); /* no value: empty */
    assert_string_equal(kv.key, "foo");
    assert_string_equal(kv.value, "");
    assert_int_equal(kv.mod_revision, 42);
    assert_int_equal(kv.lease, 9);
    etcd_kv_release(&kv);
    json_object_set_new(o, "value", json_string("not base64!"));
    assert_int_equal(codec_kv_parse(o, &kv, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "foo"));
    json_decref(o);
}

static void test_grpc_errors(void **state)
{
    (void)state;
    int quorum;
    assert_int_equal(codec_grpc_errno(14, "etcdserver: request timed out", &quorum),
                     -ETCD_NOT_QUORATE);
    assert_int_equal(quorum, 1);
    assert_int_equal(codec_grpc_errno(2, "context deadline exceeded", &quorum),
                     -ETCD_NOT_QUORATE);
    assert_int_equal(codec_grpc_errno(5, "etcdserver: requested lease not found", &quorum),
                     -ENOENT);
    assert_int_equal(quorum, 0);
    assert_int_equal(codec_grpc_errno(3, "illegal base64", &quorum), -EINVAL);
    assert_int_equal(codec_grpc_errno(2, "something else", &quorum), -EIO);
}

static void test_names(void **state)
{
    (void)state;
    struct err e;
    char key[TERN_KEY_MAX];
    assert_int_equal(keys_build(key, TERN_PREFIX_VMS, "100", "/owner", "vm id", &e), 0);
    assert_string_equal(key, "/tern/vms/100/owner");
    memset(key, 0, sizeof(key));
    assert_int_equal(keys_vm_owner(key, 100, &e), 0);
    assert_string_equal(key, "/tern/vms/100/owner");
    assert_int_equal(keys_vm_owner(key, 99, &e), -EINVAL);
    assert_string_equal(e.msg, "vm id '99' must be a number 100..999999999");
    assert_int_equal(keys_build_vm(key, TERN_PREFIX_VMSTATE, 999999999, NULL, &e), 0);
    assert_string_equal(key, "/tern/vmstate/999999999");
    assert_int_equal(keys_build_vm(key, TERN_PREFIX_VMSTATE, 1000000000, NULL, &e),
                     -EINVAL);
    assert_int_equal(name_check("node-1.a_b", "node name", &e), 0);
    assert_int_equal(name_check("", "node name", &e), -EINVAL);
    assert_int_equal(name_check("a/b", "node name", &e), -EINVAL);
    assert_string_equal(e.msg, "node name a/b: character '/' not allowed "
                               "(letters, digits, '.', '_', '-')");
    assert_int_equal(name_check("..", "vm id", &e), -EINVAL);
    assert_int_equal(name_check("-x", "vm id", &e), -EINVAL);
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(name_check(longname, "vm id", &e), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_roundtrip), cmocka_unit_test(test_b64_rejects),
        cmocka_unit_test(test_prefix_end),    cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_kv_parse),      cmocka_unit_test(test_grpc_errors),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
