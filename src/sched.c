/*
 * sched: the ramping-VUs schedule. See sched.h for the model.
 */
#include <stdint.h>

#include "syncgate/sched.h"

int64_t sched_duration(const struct stage *st, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += st[i].duration;
    return total;
}

int sched_max_vus(const struct stage *st, size_t n, int start)
{
    int max = start > 0 ? start : 0;
    for (size_t i = 0; i < n; i++)
        if (st[i].target > max)
            max = st[i].target;
    return max;
}

/*
 * Products of a VU difference and a time in usec can pass 2^63 for long
 * stages with many VUs, hence 128-bit intermediates.
 */
typedef __int128 wide;

static int64_t div_floor(wide a, wide b)
{
    return (int64_t)(a / b); /* a, b >= 0 here */
}

static int64_t div_ceil(wide a, wide b)
{
    return (int64_t)((a + b - 1) / b);
}

/* Active VUs at e usec into a stage of duration d > 0 ramping from -> to: the change so far,
 * rounded down (k6 adds or stops VU k at ceil(d * k / |to - from|) into the stage). */
static int ramp_value(int from, int to, int64_t e, int64_t d)
{
    int k = (int)div_floor((wide)(to > from ? to - from : from - to) * e, d);
    return to >= from ? from + k : from - k;
}

/*
 * The stage that holds time t >= 0 (n once the schedule is over), with its start
 * and the VU count it ramps from (the previous target, first_from before the first
 * stage; the last one when over).
 */
static size_t locate(const struct stage *st, size_t n, int first_from, int64_t t, int64_t *start,
                     int *from)
{
    *start = 0;
    *from = first_from;
    for (size_t i = 0; i < n; i++) {
        if (t < *start + st[i].duration)
            return i;
        *start += st[i].duration;
        *from = st[i].target;
    }
    return n;
}

int sched_vus_at(const struct stage *st, size_t n, int first, int64_t t)
{
    if (t < 0)
        return 0;
    int64_t start;
    int from;
    size_t i = locate(st, n, first, t, &start, &from);
    return i == n ? from : ramp_value(from, st[i].target, t - start, st[i].duration);
}

size_t sched_stage_at(const struct stage *st, size_t n, int64_t t)
{
    int64_t start;
    int from;
    return t < 0 ? 0 : locate(st, n, 0, t, &start, &from);
}

int64_t sched_stage_start(const struct stage *st, size_t n, size_t i)
{
    return sched_duration(st, i < n ? i : n);
}

int64_t sched_next_change(const struct stage *st, size_t n, int first, int64_t t)
{
    if (t < 0)
        return 0;
    int64_t start;
    int from;
    size_t i = locate(st, n, first, t, &start, &from);
    if (i == n)
        return INT64_MAX;
    int64_t d = st[i].duration, e = t - start, next = d;
    int to = st[i].target, diff = to > from ? to - from : from - to;
    if (diff) {
        /* k VUs have changed until diff * e' reaches (k + 1) * d */
        int64_t k = div_floor((wide)diff * e, d);
        next = div_ceil((wide)(k + 1) * d, diff);
    }
    return start + (next < d ? next : d);
}

int sched_thread_share(int active, int thread, int nthreads)
{
    if (nthreads <= 0 || active <= thread)
        return 0;
    return (active - thread + nthreads - 1) / nthreads;
}

bool sched_must_abort(int64_t deactivated, int64_t now, int64_t graceful_ramp_down)
{
    return now - deactivated >= graceful_ramp_down;
}
