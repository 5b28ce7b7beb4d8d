/* When pre-copy stops: the downtime limit is a ceiling, not a target.
 * Passes go on while they shrink the dirty set materially; stop-and-copy
 * starts when the last transfer is expected to be tiny, or when passes no
 * longer improve (a plateau) and the last transfer fits the limit, or when
 * the time allowed runs out and it fits. */
#ifndef TERN_MIGRATE_CONVERGE_H
#define TERN_MIGRATE_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

/* Expected last transfer this short (ms): stop at once. */
#define CONVERGE_SMALL_MS 1.0
/* A pass "shrinks materially" when it leaves at most this share of the
 * smallest dirty set seen so far. */
#define CONVERGE_SHRINK 0.75
/* Passes in a row without material shrinking that make a plateau. */
#define CONVERGE_FLAT_PASSES 2
/* The guest dirties at least this share of what the link drains: a
 * plateau at once, more passes cannot help. */
#define CONVERGE_RATE_SHARE 0.9

enum converge_verdict {
    CONVERGE_CONTINUE, /* another pass */
    CONVERGE_STOP,     /* stop and copy now */
    CONVERGE_GIVE_UP,  /* max_time passed and the rest does not fit */
};

struct converge {
    double limit_ms;    /* downtime_limit_ms */
    double max_ms;      /* max_time_s in ms */
    uint64_t best;      /* smallest dirty set after a pass, bytes */
    unsigned flat;      /* passes in a row that did not shrink it */
    bool plateau;       /* passes stopped helping (for the throttle) */
    double expected_ms; /* last transfer expected after the last pass */
    const char *reason; /* why it stopped (a constant string) */
};

/* What one pass left behind. */
struct converge_pass {
    uint64_t remaining; /* dirty bytes to send */
    double bandwidth;   /* bytes/s the destination applies */
    double dirty_rate;  /* bytes/s the guest dirtied during the pass */
    double elapsed_ms;  /* since the migration started */
    bool vm_paused;     /* nothing will change: no use iterating */
};

void converge_init(struct converge *c, double limit_ms, double max_ms);
/* Judges the pass just done; sets c->expected_ms and, on STOP, c->reason
 * ("paused", "small", "plateau", "max-time"). */
enum converge_verdict converge_judge(struct converge *c, const struct converge_pass *p);

#endif
