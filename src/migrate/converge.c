#include "migrate/converge.h"

void converge_init(struct converge *c, double limit_ms, double max_ms)
{
    *c = (struct converge){.limit_ms = limit_ms, .max_ms = max_ms, .best = UINT64_MAX};
}

static double expected_ms(const struct converge_pass *p)
{
    if (!p->remaining)
        return 0;
    return p->bandwidth > 0 ? (double)p->remaining / p->bandwidth * 1e3 : 1e12;
}

/* A plateau: the dirty set stopped shrinking for a few passes, or the
 * guest dirties about as fast as the destination applies. */
static bool is_plateau(struct converge *c, const struct converge_pass *p)
{
    if ((double)p->remaining <= CONVERGE_SHRINK * (double)c->best) {
        c->best = p->remaining;
        c->flat = 0;
    } else {
        c->flat++;
    }
    return c->flat >= CONVERGE_FLAT_PASSES ||
           (p->bandwidth > 0 && p->dirty_rate >= CONVERGE_RATE_SHARE * p->bandwidth);
}

static enum converge_verdict stop(struct converge *c, const char *reason)
{
    c->reason = reason;
    return CONVERGE_STOP;
}

enum converge_verdict converge_judge(struct converge *c, const struct converge_pass *p)
{
    double small = c->limit_ms < CONVERGE_SMALL_MS ? c->limit_ms : CONVERGE_SMALL_MS;
    c->expected_ms = expected_ms(p);
    c->plateau = is_plateau(c, p);
    bool fits = c->expected_ms <= c->limit_ms;
    if (p->vm_paused)
        return stop(c, "paused");
    if (c->expected_ms <= small)
        return stop(c, "small");
    if (fits && c->plateau)
        return stop(c, "plateau");
    if (p->elapsed_ms >= c->max_ms)
        return fits ? stop(c, "max-time") : CONVERGE_GIVE_UP;
    return CONVERGE_CONTINUE;
}
