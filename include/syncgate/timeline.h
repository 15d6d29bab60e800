/*
 * timeline: what a run did over time, in bounded memory, for the HTML
 * report's charts (requests/s, VUs, p95 latency, failed requests/s).
 *
 * A timeline holds at most `cap` points, allocated once by timeline_init().
 * Samples arrive once per base interval (a second, say); each becomes a point.
 * When the timeline is full, neighbouring points are merged pairwise (the
 * count halves) and the interval a point covers doubles; later samples are
 * folded into the last point until it covers the new interval. A soak of any
 * length therefore ends with between cap/2 and cap points, evenly spaced, and
 * the memory never grows after init.
 *
 * Merging keeps totals exact (requests and failures add up), VUs take the
 * higher value, and p95 takes the higher of the two (the true p95 of the
 * merged span cannot be recovered from two p95s; the higher one is an upper
 * bound and never hides a slow interval).
 *
 * Pure module: no I/O, no clock, no locking (one writer; readers after it
 * stopped).
 */
#ifndef SYNCGATE_TIMELINE_H
#define SYNCGATE_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#define TIMELINE_DEFAULT_POINTS 600

struct timeline_point {
    int64_t t;         /* usec since the run started: where the span begins */
    int64_t span;      /* usec the point covers */
    uint64_t requests; /* requests that completed in the span */
    uint64_t failed;   /* of which failed (http_req_failed) */
    int vus;           /* highest active VU count sampled in the span */
    double p95;        /* usec, http_req_duration; NAN when no request had a duration */
};

struct timeline {
    size_t cap;       /* most points kept (even, >= 2) */
    size_t n;         /* points in use */
    int64_t interval; /* usec a point covers at the current resolution */
    struct timeline_point *p;
};

/*
 * Prepare tl for at most cap points (rounded down to even, at least 2) of
 * interval usec each (> 0). Returns 0, -EINVAL or -ENOMEM (tl is then safe to
 * clear).
 */
int timeline_init(struct timeline *tl, size_t cap, int64_t interval);
/* Free the points; safe on a zeroed or cleared timeline. */
void timeline_clear(struct timeline *tl);

/*
 * Add one sample (its t and span as measured). Folded into the last point
 * while that brings the last point's span nearer the current interval (at
 * least half the sample still fits), otherwise appended (after halving the
 * points when full). Never allocates.
 */
void timeline_add(struct timeline *tl, const struct timeline_point *sample);

/* Fold b into a: a's span grows to reach the end of b. */
void timeline_point_merge(struct timeline_point *a, const struct timeline_point *b);

#endif
