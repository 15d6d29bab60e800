/* timeline: bounded per-interval samples; halves its points when full. */
#include "syncgate/timeline.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int timeline_init(struct timeline *tl, size_t cap, int64_t interval)
{
    memset(tl, 0, sizeof(*tl));
    cap &= ~(size_t)1;
    if (cap < 2 || interval <= 0)
        return -EINVAL;
    tl->p = calloc(cap, sizeof(*tl->p));
    if (!tl->p)
        return -ENOMEM;
    tl->cap = cap;
    tl->interval = interval;
    return 0;
}

void timeline_clear(struct timeline *tl)
{
    free(tl->p);
    memset(tl, 0, sizeof(*tl));
}

void timeline_point_merge(struct timeline_point *a, const struct timeline_point *b)
{
    int64_t end = b->t + b->span;
    if (end > a->t + a->span)
        a->span = end - a->t;
    a->requests += b->requests;
    a->failed += b->failed;
    if (b->vus > a->vus)
        a->vus = b->vus;
    if (isnan(a->p95) || (!isnan(b->p95) && b->p95 > a->p95))
        a->p95 = b->p95;
}

/* Merge neighbours pairwise: cap points become cap/2, each twice as long. */
static void halve(struct timeline *tl)
{
    size_t k = 0;
    for (size_t i = 0; i < tl->n; i += 2, k++) {
        struct timeline_point p = tl->p[i];
        if (i + 1 < tl->n)
            timeline_point_merge(&p, &tl->p[i + 1]);
        tl->p[k] = p;
    }
    tl->n = k;
    tl->interval *= 2;
}

void timeline_add(struct timeline *tl, const struct timeline_point *sample)
{
    if (!tl->p)
        return;
    if (tl->n > 0) {
        struct timeline_point *last = &tl->p[tl->n - 1];
        /* fold while that brings the span nearer the interval: measured spans jitter */
        if (last->span + sample->span / 2 <= tl->interval) {
            timeline_point_merge(last, sample);
            return;
        }
    }
    if (tl->n == tl->cap)
        halve(tl);
    tl->p[tl->n++] = *sample;
}
