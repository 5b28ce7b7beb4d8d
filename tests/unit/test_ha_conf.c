/* HA records without etcd: the defaults, a round trip, and every refusal
 * of a request's fields (one line naming the field). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/ha.h"

static int parse(const char *text, struct ha_conf *c, struct err *e)
{
    json_t *j = json_loads(text, 0, NULL);
    if (!j)
        fail_msg("bad test json: %s", text);
    ha_conf_default(c, 100);
    int rc = ha_conf_from_json(j, c, e);
    json_decref(j);
    return rc;
}

static void test_defaults_and_round_trip(void **state)
{
    (void)state;
    struct ha_conf c, back;
    struct err e;
    assert_int_equal(parse("{}", &c, &e), 0);
    assert_int_equal(c.max_restart, 1);
    assert_int_equal(c.max_relocate, 1);
    assert_int_equal(c.ngroup, 0);
    assert_true(ha_conf_allows(&c, "any"));
    assert_int_equal(
        parse("{\"max_restart\": 3, \"max_relocate\": 0, \"group\": [\"n1\", \"n2\"]}", &c,
              &e),
        0);
    assert_int_equal(c.max_restart, 3);
    assert_int_equal(c.max_relocate, 0);
    assert_true(ha_conf_allows(&c, "n2"));
    assert_false(ha_conf_allows(&c, "n3"));
    json_t *j = ha_conf_to_json(&c);
    ha_conf_default(&back, 100);
    assert_int_equal(ha_conf_from_json(j, &back, &e), 0);
    json_decref(j);
    assert_int_equal(back.max_restart, 3);
    assert_int_equal(back.ngroup, 2);
    assert_string_equal(back.group[1], "n2");
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json, *words;
    } bad[] = {
        {"[]", "expected a json object"},
        {"{\"max_restarts\": 1}", "unknown key 'max_restarts'"},
        {"{\"max_restart\": 11}", "max_restart"},
        {"{\"max_restart\": -1}", "max_restart"},
        {"{\"max_relocate\": \"2\"}", "max_relocate"},
        {"{\"group\": \"n1\"}", "'group' must be a list"},
        {"{\"group\": [\"n1\", \"../x\"]}", "../x"},
        {"{\"group\": [1]}", "ha group node"},
        {"{\"group\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
         "at most 8"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ha_conf c;
        struct err e = {""};
        assert_int_equal(parse(bad[i].json, &c, &e), -EINVAL);
        if (!strstr(e.msg, bad[i].words))
            fail_msg("%s: '%s' does not say '%s'", bad[i].json, e.msg, bad[i].words);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
