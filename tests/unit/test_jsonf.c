/* Unit tests for src/common/jsonf.c (typed JSON fields, one wording of the
 * refusals) and src/common/jsonl.c (JSON lines: framing, long lines, send). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/jsonf.h"
#include "common/jsonl.h"
#include "common/sock.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (!obj)
        fail_msg("bad test json '%s': %s", text, jerr.text);
    return obj;
}

/* rc and message of jsonf_uint on {"n": value} */
static void expect_uint(const char *value, bool required, uint64_t min, uint64_t max,
                        const char *what, int want_rc, const char *want)
{
    char text[200];
    snprintf(text, sizeof(text), "{\"n\": %s}", value);
    json_t *obj = value[0] ? parse(text) : json_object();
    uint64_t v = SENTINEL;
    struct err e = {""};
    int rc = jsonf_uint(obj, "n", required, min, max, &v, what, &e);
    json_decref(obj);
    if (rc != want_rc)
        fail_msg("jsonf_uint(%s) = %d, want %d (%s)", value, rc, want_rc, e.msg);
    if (!rc && want)
        assert_int_equal(v, strtoull(want, NULL, 10));
    if (!rc && !want)
        assert_int_equal(v, SENTINEL); /* absent and optional: untouched */
    if (rc != 0) {
        assert_string_equal(e.msg, want);
        assert_int_equal(v, SENTINEL);
    }
}

static void uint_fields(void **state)
{
    (void)state;
    expect_uint("5", true, 0, 10, NULL, 0, "5");
    expect_uint("0", true, 0, 10, NULL, 0, "0");
    expect_uint("10", true, 0, 10, NULL, 0, "10");
    expect_uint("9007199254740993", true, 0, UINT64_MAX, NULL, 0, "9007199254740993");
    expect_uint("", false, 0, 10, NULL, 0, NULL);
    expect_uint("", true, 0, 10, NULL, -EINVAL, "'n' is missing");
    expect_uint("", true, 0, 10, "disks[0]", -EINVAL, "disks[0]: 'n' is missing");
    expect_uint("11", true, 0, 10, NULL, -EINVAL, "'n' must be 0..10, not 11");
    expect_uint("2", true, 3, 10, "", -EINVAL, "'n' must be 3..10, not 2");
    expect_uint("-1", true, 0, 10, "x", -EINVAL, "x: 'n' must be 0..10, not -1");
    expect_uint("\"5\"", true, 1, 60000, NULL, -EINVAL, "'n' must be an integer 1..60000");
    expect_uint("5.0", false, 1, 2, NULL, -EINVAL, "'n' must be an integer 1..2");
    expect_uint("null", false, 1, 2, NULL, -EINVAL, "'n' must be an integer 1..2");
    expect_uint("true", true, 0, 1, NULL, -EINVAL, "'n' must be an integer 0..1");
}

static void bool_and_string_fields(void **state)
{
    (void)state;
    json_t *obj = parse("{\"yes\": true, \"no\": false, \"num\": 1, \"s\": \"text\"}");
    struct err e = {""};
    bool b = false;
    assert_int_equal(jsonf_bool(obj, "yes", true, &b, NULL, &e), 0);
    assert_true(b);
    assert_int_equal(jsonf_bool(obj, "no", true, &b, NULL, &e), 0);
    assert_false(b);
    b = true;
    assert_int_equal(jsonf_bool(obj, "absent", false, &b, NULL, &e), 0);
    assert_true(b);
    assert_int_equal(jsonf_bool(obj, "absent", true, &b, "req", &e), -EINVAL);
    assert_string_equal(e.msg, "req: 'absent' is missing");
    assert_int_equal(jsonf_bool(obj, "num", false, &b, NULL, &e), -EINVAL);
    assert_string_equal(e.msg, "'num' must be true or false");
    assert_true(b);

    const char *s = "unchanged";
    assert_int_equal(jsonf_string(obj, "s", true, &s, NULL, &e), 0);
    assert_string_equal(s, "text");
    s = "unchanged";
    assert_int_equal(jsonf_string(obj, "absent", false, &s, NULL, &e), 0);
    assert_string_equal(s, "unchanged");
    assert_int_equal(jsonf_string(obj, "absent", true, &s, NULL, &e), -EINVAL);
    assert_string_equal(e.msg, "'absent' is missing");
    assert_int_equal(jsonf_string(obj, "yes", true, &s, "body", &e), -EINVAL);
    assert_string_equal(e.msg, "body: 'yes' must be a string");
    assert_string_equal(s, "unchanged");
    json_decref(obj);
}

static void not_an_object(void **state)
{
    (void)state;
    json_t *arr = parse("[1, 2]");
    struct err e = {""};
    uint64_t v = SENTINEL;
    assert_int_equal(jsonf_uint(arr, "n", false, 0, 9, &v, NULL, &e), 0);
    assert_int_equal(jsonf_uint(arr, "n", true, 0, 9, &v, NULL, &e), -EINVAL);
    assert_int_equal(v, SENTINEL);
    assert_null(jsonf_unknown_key(arr, (const char *const[]){NULL}));
    json_decref(arr);
}

static void unknown_keys(void **state)
{
    (void)state;
    static const char *const known[] = {"cmd", "id", "uri", NULL};
    json_t *obj = parse("{\"cmd\": 1, \"uri\": 2}");
    assert_null(jsonf_unknown_key(obj, known));
    json_decref(obj);
    obj = parse("{\"cmd\": 1, \"speed\": 2, \"id\": 3}");
    assert_string_equal(jsonf_unknown_key(obj, known), "speed");
    json_decref(obj);
    obj = parse("{}");
    assert_null(jsonf_unknown_key(obj, known));
    json_decref(obj);
    /* a prefix of a known key is not that key */
    obj = parse("{\"ur\": 1}");
    assert_string_equal(jsonf_unknown_key(obj, known), "ur");
    json_decref(obj);
    obj = parse("{\"cmd\": 1}");
    assert_string_equal(jsonf_unknown_key(obj, (const char *const[]){NULL}), "cmd");
    json_decref(obj);
}

static void printable(void **state)
{
    (void)state;
    char out[JSONF_PRINTABLE_MAX];
    assert_string_equal(jsonf_printable("plain 'name'", out), "plain 'name'");
    assert_string_equal(jsonf_printable("", out), "");
    assert_string_equal(jsonf_printable("a\nb\tc\x7f\x01", out), "a?b?c??");
    char long_in[200];
    memset(long_in, 'x', sizeof(long_in) - 1);
    long_in[sizeof(long_in) - 1] = '\0';
    const char *p = jsonf_printable(long_in, out);
    assert_ptr_equal(p, out);
    assert_int_equal(strlen(p), 63);
    assert_memory_equal(p, long_in, 60);
    assert_string_equal(p + 60, "...");
    long_in[60] = '\0'; /* exactly 60: kept whole */
    assert_string_equal(jsonf_printable(long_in, out), long_in);
    /* bytes of UTF-8 text pass as they are */
    assert_string_equal(jsonf_printable("caf\xc3\xa9", out), "caf\xc3\xa9");
}

/* ---- jsonl ---- */

struct pair {
    int fd[2];
    struct jsonl_buf b;
};

static int pair_setup(void **state)
{
    static struct pair p;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p.fd) || jsonl_buf_init(&p.b))
        return -1;
    *state = &p;
    return 0;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    close(p->fd[0]);
    close(p->fd[1]);
    jsonl_buf_release(&p->b);
    return 0;
}

static void put(struct pair *p, const char *text)
{
    assert_int_equal(sock_write_all(p->fd[0], text, strlen(text)), 0);
}

static void lines_split(void **state)
{
    struct pair *p = *state;
    put(p, "{\"a\":1}\n\n{\"b\"");
    assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), 0);
    assert_string_equal(jsonl_buf_next(&p->b), "{\"a\":1}");
    assert_string_equal(jsonl_buf_next(&p->b), ""); /* empty lines too */
    assert_null(jsonl_buf_next(&p->b));
    assert_false(jsonl_buf_full(&p->b));
    put(p, ":2}\nx");
    assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), 0);
    assert_string_equal(jsonl_buf_next(&p->b), "{\"b\":2}"); /* joined across fills */
    assert_null(jsonl_buf_next(&p->b));
    close(p->fd[0]);
    p->fd[0] = -1;
    assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), -EPIPE);
    assert_null(jsonl_buf_next(&p->b)); /* "x" never ended: no line */
}

static void line_too_long(void **state)
{
    struct pair *p = *state;
    static char big[JSONL_LINE_MAX + 10];
    memset(big, 'x', sizeof(big));
    big[0] = '\n'; /* one empty line first: it does not count */
    size_t sent = 0;
    int rc = 0;
    /* the socket buffer may hold less than the whole: feed while filling */
    while (!rc && !jsonl_buf_full(&p->b)) {
        if (sent < sizeof(big)) {
            size_t n = sizeof(big) - sent < 4096 ? sizeof(big) - sent : 4096;
            assert_int_equal(sock_write_all(p->fd[0], big + sent, n), 0);
            sent += n;
        }
        rc = jsonl_buf_fill(&p->b, p->fd[1]);
        char *line;
        while ((line = jsonl_buf_next(&p->b)))
            assert_string_equal(line, "");
    }
    assert_int_equal(rc, 0);
    assert_true(jsonl_buf_full(&p->b));
    assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), -EMSGSIZE);
}

static void line_of_exactly_the_limit(void **state)
{
    struct pair *p = *state;
    /* JSONL_LINE_MAX - 1 bytes and the '\n' fit */
    static char line[JSONL_LINE_MAX];
    memset(line, 'y', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    size_t sent = 0;
    char *got = NULL;
    while (!got) {
        if (sent < sizeof(line)) {
            size_t n = sizeof(line) - sent < 4096 ? sizeof(line) - sent : 4096;
            assert_int_equal(sock_write_all(p->fd[0], line + sent, n), 0);
            sent += n;
        }
        assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), 0);
        assert_false(jsonl_buf_full(&p->b));
        got = jsonl_buf_next(&p->b);
    }
    assert_int_equal(strlen(got), JSONL_LINE_MAX - 1);
}

static void send_one_line(void **state)
{
    struct pair *p = *state;
    json_t *obj = json_pack("{s:s, s:f, s:b}", "event", "paused", "t", 1.5, "ok", 1);
    assert_int_equal(jsonl_send(p->fd[0], obj), 0);
    json_decref(obj);
    assert_int_equal(jsonl_buf_fill(&p->b, p->fd[1]), 0);
    char *line = jsonl_buf_next(&p->b);
    assert_non_null(line);
    assert_null(strchr(line, '\n'));
    json_t *back = json_loads(line, 0, NULL);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "event")), "paused");
    assert_true(json_is_true(json_object_get(back, "ok")));
    json_decref(back);
    assert_null(jsonl_buf_next(&p->b));
    close(p->fd[1]);
    p->fd[1] = -1;
    obj = json_object();
    assert_int_equal(jsonl_send(p->fd[0], obj), -EPIPE);
    json_decref(obj);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uint_fields),
        cmocka_unit_test(bool_and_string_fields),
        cmocka_unit_test(not_an_object),
        cmocka_unit_test(unknown_keys),
        cmocka_unit_test(printable),
        cmocka_unit_test_setup_teardown(lines_split, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(line_too_long, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(line_of_exactly_the_limit, pair_setup,
                                        pair_teardown),
        cmocka_unit_test_setup_teardown(send_one_line, pair_setup, pair_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
