/* Unit tests for timeline: bounded points, exact totals, doubling interval, merge rules. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/timeline.h"
#include "tap.h"

#define SEC 1000000LL

static struct timeline_point sample(int64_t t, int64_t span, uint64_t req, uint64_t failed,
                                    int vus, double p95)
{
    return (struct timeline_point){t, span, req, failed, vus, p95};
}

static void test_init(void)
{
    struct timeline tl;
    ok(timeline_init(&tl, 1, SEC) == -EINVAL, "fewer than 2 points: -EINVAL");
    timeline_clear(&tl);
    ok(timeline_init(&tl, 10, 0) == -EINVAL, "interval 0: -EINVAL");
    timeline_clear(&tl);
    ok(timeline_init(&tl, 7, SEC) == 0 && tl.cap == 6, "odd capacity rounds down to even (6)");
    timeline_clear(&tl);
    timeline_clear(&tl);
    ok(tl.p == NULL && tl.n == 0, "clear twice is safe");
    struct timeline_point s = sample(0, SEC, 1, 0, 1, 1);
    timeline_add(&tl, &s);
    ok(tl.n == 0, "add to a cleared timeline does nothing");
}

static void test_short_run(void)
{
    struct timeline tl;
    timeline_init(&tl, 600, SEC);
    for (int i = 0; i < 30; i++) {
        struct timeline_point s = sample(i * SEC, SEC, 100 + (uint64_t)i, (uint64_t)(i % 3),
                                         i, 1000.0 * i);
        timeline_add(&tl, &s);
    }
    ok(tl.n == 30 && tl.interval == SEC, "30 samples, room for 600: 30 points of 1 s");
    int same = 1;
    for (size_t i = 0; i < tl.n; i++)
        same &= tl.p[i].t == (int64_t)i * SEC && tl.p[i].requests == 100 + i &&
                tl.p[i].vus == (int)i && tl.p[i].p95 == 1000.0 * (double)i;
    ok(same, "each point is its sample");
    timeline_clear(&tl);
}

/* A soak: 100,000 one-second samples into 600 points. */
static void test_soak(void)
{
    struct timeline tl;
    timeline_init(&tl, 600, SEC);
    uint64_t req = 0, failed = 0;
    size_t most = 0;
    int64_t t = 0;
    int max_vus = 0;
    double max_p95 = 0;
    for (int i = 0; i < 100000; i++) {
        /* measured spans jitter around the second */
        int64_t span = SEC + (i % 7 - 3) * 2000;
        int vus = (i * 37) % 500;
        double p95 = (double)((i * 7919) % 100000);
        struct timeline_point s = sample(t, span, (uint64_t)(i % 1000), (uint64_t)(i % 10), vus,
                                         i % 50 == 0 ? NAN : p95);
        req += s.requests;
        failed += s.failed;
        if (vus > max_vus)
            max_vus = vus;
        if (!isnan(s.p95) && p95 > max_p95)
            max_p95 = p95;
        timeline_add(&tl, &s);
        t += span;
        if (tl.n > most)
            most = tl.n;
    }
    ok(most <= 600, "never more than 600 points (most %zu)", most);
    ok(tl.n >= 300, "at least half the points in use at the end (%zu)", tl.n);
    ok(tl.interval == 256 * SEC, "interval doubled to 256 s (%lld s)",
       (long long)(tl.interval / SEC));
    uint64_t sreq = 0, sfailed = 0;
    int svus = 0, contiguous = 1, spans_ok = 1;
    double sp95 = 0;
    for (size_t i = 0; i < tl.n; i++) {
        sreq += tl.p[i].requests;
        sfailed += tl.p[i].failed;
        if (tl.p[i].vus > svus)
            svus = tl.p[i].vus;
        if (tl.p[i].p95 > sp95)
            sp95 = tl.p[i].p95;
        if (i && tl.p[i].t != tl.p[i - 1].t + tl.p[i - 1].span)
            contiguous = 0;
        /* every point but the last covers the interval, give or take the jitter */
        if (i + 1 < tl.n && llabs(tl.p[i].span - tl.interval) > tl.interval / 100)
            spans_ok = 0;
    }
    ok(sreq == req && sfailed == failed, "requests and failures add up exactly (%llu, %llu)",
       (unsigned long long)sreq, (unsigned long long)sfailed);
    ok(svus == max_vus && sp95 == max_p95, "the highest VUs and p95 survive the merges");
    ok(contiguous, "points are contiguous in time");
    ok(spans_ok, "every full point spans the interval within 1%%");
    ok(tl.p[0].t == 0 && tl.p[tl.n - 1].t + tl.p[tl.n - 1].span == t,
       "the points cover the whole run");
    timeline_clear(&tl);
}

static void test_merge_rules(void)
{
    struct timeline_point a = sample(0, SEC, 10, 1, 5, NAN);
    struct timeline_point b = sample(SEC, SEC, 20, 2, 3, 700);
    timeline_point_merge(&a, &b);
    ok(a.t == 0 && a.span == 2 * SEC && a.requests == 30 && a.failed == 3 && a.vus == 5 &&
           a.p95 == 700,
       "merge: span to b's end, totals add, higher VUs, p95 of the one that has one");
    struct timeline_point c = sample(2 * SEC, SEC, 0, 0, 0, NAN);
    timeline_point_merge(&a, &c);
    ok(a.p95 == 700 && a.span == 3 * SEC, "a span without requests keeps the p95");
    struct timeline_point d = sample(3 * SEC, SEC, 1, 0, 0, 900);
    timeline_point_merge(&a, &d);
    ok(a.p95 == 900, "the higher p95 wins");

    /* small capacity: watch the halving step by step */
    struct timeline tl;
    timeline_init(&tl, 4, SEC);
    for (int i = 0; i < 4; i++) {
        struct timeline_point s = sample(i * SEC, SEC, 1, 0, i, i);
        timeline_add(&tl, &s);
    }
    ok(tl.n == 4 && tl.interval == SEC, "4 of 4 points");
    struct timeline_point s = sample(4 * SEC, SEC, 1, 0, 9, 9);
    timeline_add(&tl, &s);
    ok(tl.n == 3 && tl.interval == 2 * SEC && tl.p[0].span == 2 * SEC && tl.p[2].span == SEC,
       "the fifth sample halves to 2 points of 2 s and starts a third (n %zu)", tl.n);
    s = sample(5 * SEC, SEC, 1, 0, 1, 1);
    timeline_add(&tl, &s);
    ok(tl.n == 3 && tl.p[2].span == 2 * SEC && tl.p[2].requests == 2 && tl.p[2].vus == 9,
       "the sixth folds into the third");
    s = sample(6 * SEC, SEC, 1, 0, 1, 1);
    timeline_add(&tl, &s);
    ok(tl.n == 4, "the seventh starts a fourth point");
    timeline_clear(&tl);
}

int main(void)
{
    test_init();
    test_short_run();
    test_soak();
    test_merge_rules();
    return tap_done();
}
