/* Clock readings shared by the layers (timing of migration phases, pacing,
 * wall-clock stamps carried in saved state). */
#ifndef TERN_COMMON_CLOCK_H
#define TERN_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
static inline double clock_mono_ms(void)
{
    return (double)clock_mono_ns() / 1e6;
}
static inline uint64_t clock_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

#endif
