/* Unit tests for src/node/events.c, the ring behind GET /api/v1/events:
 * ids, resuming after an id, the ring wrapping under a slow client,
 * ?scope=node's filter, the stop, and the throttle of progress events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/events.h"

static json_t *next_json(struct events *ev, uint64_t *cursor, bool local_only)
{
    char *text = NULL;
    int rc = events_next(ev, cursor, local_only, 0, &text);
    if (rc)
        fail_msg("events_next: %d", rc);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(o);
    return o;
}

static void add_n(struct events *ev, int from, int count, bool local)
{
    for (int i = from; i < from + count; i++)
        events_add(ev, "test", json_pack("{s:i}", "i", i), local);
}

static void fields_and_order(void **state)
{
    (void)state;
    struct events ev;
    events_init(&ev, "n1");
    uint64_t cursor;
    assert_int_equal(events_resume(&ev, NULL, &cursor), 0);
    add_n(&ev, 0, 3, true);
    events_add(&ev, "other", json_pack("{s:s, s:I}", "node", "n2", "time", (json_int_t)5),
               false);
    for (int i = 0; i < 3; i++) {
        json_t *o = next_json(&ev, &cursor, false);
        assert_int_equal(json_integer_value(json_object_get(o, "i")), i);
        assert_string_equal(json_string_value(json_object_get(o, "type")), "test");
        assert_string_equal(json_string_value(json_object_get(o, "node")), "n1");
        assert_true(json_integer_value(json_object_get(o, "time")) > 1700000000000LL);
        json_decref(o);
    }
    json_t *o = next_json(&ev, &cursor, false);
    /* an event of another node keeps its node and time */
    assert_string_equal(json_string_value(json_object_get(o, "node")), "n2");
    assert_int_equal(json_integer_value(json_object_get(o, "time")), 5);
    json_decref(o);
    char *text = NULL;
    assert_int_equal(events_next(&ev, &cursor, false, 20, &text), -ETIMEDOUT);
    events_release(&ev);
}

static void resume_after_id(void **state)
{
    (void)state;
    struct events ev;
    events_init(&ev, "n1");
    add_n(&ev, 0, 10, true);
    char id[EVENTS_ID_MAX];
    events_id(&ev, 4, id); /* the 4th event: i = 3 */
    uint64_t cursor;
    assert_int_equal(events_resume(&ev, id, &cursor), 0);
    json_t *o = next_json(&ev, &cursor, false);
    assert_int_equal(json_integer_value(json_object_get(o, "i")), 4);
    json_decref(o);
    /* another run's id, a future one, garbage: resync from the newest */
    const char *bad[] = {"0123456789abcdef-3", "x", "", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(events_resume(&ev, bad[i], &cursor), -ESTALE);
        assert_int_equal(cursor, 10);
    }
    events_id(&ev, 11, id);
    assert_int_equal(events_resume(&ev, id, &cursor), -ESTALE);
    events_release(&ev);
}

static void ring_wraps(void **state)
{
    (void)state;
    struct events ev;
    events_init(&ev, "n1");
    uint64_t slow;
    events_resume(&ev, NULL, &slow);
    add_n(&ev, 0, EVENTS_RING + 10, true);
    char *text = NULL;
    /* the slow client's next event is gone: told so, moved to the newest */
    assert_int_equal(events_next(&ev, &slow, false, 0, &text), -ESTALE);
    assert_int_equal(slow, EVENTS_RING + 10);
    /* an id still in the ring resumes; one just past its end does not */
    char id[EVENTS_ID_MAX];
    uint64_t cursor;
    events_id(&ev, 10, id); /* oldest kept is 11: after 10 is all there */
    assert_int_equal(events_resume(&ev, id, &cursor), 0);
    json_t *o = next_json(&ev, &cursor, false);
    assert_int_equal(json_integer_value(json_object_get(o, "i")), 10);
    json_decref(o);
    events_id(&ev, 9, id);
    assert_int_equal(events_resume(&ev, id, &cursor), -ESTALE);
    events_release(&ev);
}

static void node_scope_filters(void **state)
{
    (void)state;
    struct events ev;
    events_init(&ev, "n1");
    uint64_t cursor;
    events_resume(&ev, NULL, &cursor);
    add_n(&ev, 0, 2, false); /* observed or from other nodes */
    add_n(&ev, 2, 1, true);
    add_n(&ev, 3, 2, false);
    json_t *o = next_json(&ev, &cursor, true);
    assert_int_equal(json_integer_value(json_object_get(o, "i")), 2);
    assert_int_equal(cursor, 3);
    json_decref(o);
    char *text = NULL;
    assert_int_equal(events_next(&ev, &cursor, true, 0, &text), -ETIMEDOUT);
    assert_int_equal(cursor, 5); /* skipped, not to be looked at again */
    events_release(&ev);
}

static void stop_ends_streams(void **state)
{
    (void)state;
    struct events ev;
    events_init(&ev, "n1");
    uint64_t cursor = 0;
    events_stop(&ev);
    char *text = NULL;
    assert_int_equal(events_next(&ev, &cursor, false, 10000, &text), -ECANCELED);
    events_release(&ev);
}

static void progress_throttled(void **state)
{
    (void)state;
    struct events *hub = events_hub();
    events_hub_setup("n1");
    uint64_t cursor;
    events_resume(hub, NULL, &cursor);
    for (int i = 0; i < 20; i++) /* one pass, at once: the first only */
        events_publish_progress("UPID:n1:1:",
                                json_pack("{s:{s:i}}", "progress", "pass", 1));
    events_publish_progress("UPID:n1:1:", json_pack("{s:{s:i}}", "progress", "pass", 2));
    events_publish_progress("UPID:n1:2:", json_pack("{s:{s:i}}", "progress", "pass", 1));
    int n = 0;
    char *text = NULL;
    while (events_next(hub, &cursor, false, 0, &text) == 0) {
        json_t *o = json_loads(text, 0, NULL);
        free(text);
        assert_string_equal(json_string_value(json_object_get(o, "type")), "task-progress");
        json_decref(o);
        n++;
    }
    assert_int_equal(n, 3); /* pass 1 once, pass 2, the other task */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_and_order),  cmocka_unit_test(resume_after_id),
        cmocka_unit_test(ring_wraps),        cmocka_unit_test(node_scope_filters),
        cmocka_unit_test(stop_ends_streams), cmocka_unit_test(progress_throttled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
