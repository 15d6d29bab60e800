/* executor: k6's executors as pure functions of time. See executor.h. */
#include "syncgate/executor.h"

#include <math.h>

#include "syncgate/sched.h"

const char *const executor_names[] = {
    [EX_CONSTANT_VUS] = "constant-vus",
    [EX_RAMPING_VUS] = "ramping-vus",
    [EX_CONSTANT_ARRIVAL_RATE] = "constant-arrival-rate",
    [EX_RAMPING_ARRIVAL_RATE] = "ramping-arrival-rate",
    [EX_PER_VU_ITERATIONS] = "per-vu-iterations",
    [EX_SHARED_ITERATIONS] = "shared-iterations",
    NULL,
};

typedef __int128 wide;

bool ex_open(const struct scenario *s)
{
    return s->executor == EX_CONSTANT_ARRIVAL_RATE || s->executor == EX_RAMPING_ARRIVAL_RATE;
}

int64_t ex_length(const struct scenario *s)
{
    switch (s->executor) {
    case EX_RAMPING_VUS:
    case EX_RAMPING_ARRIVAL_RATE:
        return sched_duration(s->stages, s->nstages);
    case EX_PER_VU_ITERATIONS:
    case EX_SHARED_ITERATIONS:
        return s->max_duration;
    default:
        return s->duration;
    }
}

int64_t ex_end(const struct scenario *s)
{
    return s->start_time + ex_length(s) + s->graceful_stop;
}

int ex_slots(const struct scenario *s)
{
    switch (s->executor) {
    case EX_RAMPING_VUS:
        return sched_max_vus(s->stages, s->nstages, s->start_vus);
    case EX_CONSTANT_ARRIVAL_RATE:
    case EX_RAMPING_ARRIVAL_RATE:
        return s->max_vus > s->pre_allocated_vus ? s->max_vus : s->pre_allocated_vus;
    default:
        return s->vus;
    }
}

int ex_vus_at(const struct scenario *s, int64_t t)
{
    if (t < 0 || t >= ex_length(s) || ex_open(s))
        return 0;
    if (s->executor == EX_RAMPING_VUS)
        return sched_vus_at(s->stages, s->nstages, s->start_vus, t);
    return s->vus;
}

int64_t ex_next_change(const struct scenario *s, int64_t t)
{
    int64_t len = ex_length(s);
    if (t >= len || ex_open(s))
        return INT64_MAX;
    if (t < 0)
        return 0;
    if (s->executor == EX_RAMPING_VUS) {
        int64_t n = sched_next_change(s->stages, s->nstages, s->start_vus, t);
        return n < len ? n : len;
    }
    return len;
}

/* ---- the open model ---------------------------------------------------------- */

/* Iterations of a constant rate due before time t (exclusive), t <= length. */
static uint64_t constant_due_before(const struct scenario *s, int64_t t)
{
    /* k is due at k * time_unit / rate: those with k * time_unit < t * rate */
    wide num = (wide)t * s->rate;
    return (uint64_t)((num + s->time_unit - 1) / s->time_unit);
}

int64_t ex_due(const struct scenario *s, uint64_t k)
{
    if (s->executor == EX_CONSTANT_ARRIVAL_RATE) {
        if (s->rate <= 0 || k >= constant_due_before(s, s->duration))
            return -1;
        return (int64_t)((wide)k * s->time_unit / s->rate);
    }
    if (s->executor != EX_RAMPING_ARRIVAL_RATE)
        return -1;
    /*
     * k6's calculation (RampingArrivalRateConfig.cal): rates per usec, the area under the
     * rate line counts iterations, iteration k + 1 (1-based) starts where the area reaches
     * it. Within a ramp the area is quadratic in time, so the time is its root.
     */
    double i = (double)k + 1, done = 0, end = 0, start = 0;
    double tu = (double)s->time_unit, from = (double)s->start_rate / tu;
    for (size_t j = 0; j < s->nstages; j++) {
        double to = (double)s->stages[j].target / tu, dur = (double)s->stages[j].duration;
        end += from != to ? dur * ((to - from) / 2 + from) : dur * to;
        if (i <= end) {
            double x;
            if (from != to) {
                double d = dur * (from * from * dur + 2 * (i - done) * (to - from));
                x = (from * dur - (d > 0 ? sqrt(d) : 0)) / (from - to);
            } else {
                x = (i - done) / to;
            }
            return (int64_t)(start + x);
        }
        done = end;
        from = to;
        start += dur;
    }
    return -1;
}

/* The area under the rate line (iterations) from 0 to t. */
static double ramp_area(const struct scenario *s, int64_t t)
{
    double area = 0, start = 0, tu = (double)s->time_unit, from = (double)s->start_rate / tu;
    for (size_t j = 0; j < s->nstages && start < (double)t; j++) {
        double to = (double)s->stages[j].target / tu, dur = (double)s->stages[j].duration;
        double e = (double)t - start < dur ? (double)t - start : dur;
        double at = dur > 0 ? from + (to - from) * e / dur : to;
        area += e * (from + at) / 2;
        from = to;
        start += dur;
    }
    return area;
}

uint64_t ex_due_by(const struct scenario *s, int64_t t)
{
    if (t < 0)
        return 0;
    if (s->executor == EX_CONSTANT_ARRIVAL_RATE) {
        if (t >= s->duration)
            return constant_due_before(s, s->duration);
        return constant_due_before(s, t + 1);
    }
    if (s->executor != EX_RAMPING_ARRIVAL_RATE)
        return 0;
    /* tiny rounding must not lose the iteration due exactly at t */
    return (uint64_t)floor(ramp_area(s, t) + 1e-9);
}

double ex_rate_at(const struct scenario *s, int64_t t)
{
    double per_sec = 1e6 / (double)s->time_unit;
    if (s->executor == EX_CONSTANT_ARRIVAL_RATE)
        return t >= 0 && t < s->duration ? (double)s->rate * per_sec : 0;
    if (s->executor != EX_RAMPING_ARRIVAL_RATE || t < 0)
        return 0;
    double from = (double)s->start_rate, start = 0;
    for (size_t j = 0; j < s->nstages; j++) {
        double to = (double)s->stages[j].target, dur = (double)s->stages[j].duration;
        if ((double)t < start + dur)
            return (from + (to - from) * ((double)t - start) / dur) * per_sec;
        from = to;
        start += dur;
    }
    return 0;
}
