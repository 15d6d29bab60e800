/* Unit tests for sampler: per-interval points from cumulative snapshots, and the thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syncgate/http.h"
#include "syncgate/sampler.h"
#include "tap.h"

static void record(struct metrics *m, int status, int n, int64_t dur)
{
    struct tagset base = {0};
    struct http_result r = {.status = status, .duration = dur};
    tagset_set(&base, "name", "product");
    tagset_set(&base, "scenario", "load");
    struct http_statuses st = {0};
    for (int i = 0; i < n; i++)
        http_record(m, &base, &st, &r, 200);
}

/* A snapshot the way run_snapshot makes one: a fresh registry merged from the source. */
static struct metrics *snap_of(const struct metrics *src)
{
    struct metrics *s = metrics_new();
    metrics_merge(s, src);
    return s;
}

static void test_points(void)
{
    struct metrics *src = metrics_new();
    struct sampler_state st = {0};
    struct timeline_point p;

    struct metrics *s0 = snap_of(src);
    ok(sampler_point(&st, s0, 1000000, &p) == 0 && p.t == 0 && p.span == 1000000 &&
           p.requests == 0 && isnan(p.p95) && p.vus == 0,
       "nothing yet: a point with no requests and no p95");
    metrics_free(s0);

    /* interval 1: 100 fast requests, 5 VUs */
    record(src, 200, 95, 1000);
    record(src, 503, 5, 1000);
    series_set(metrics_series(src, M_VUS, NULL), 5);
    struct metrics *s1 = snap_of(src);
    ok(sampler_point(&st, s1, 2000000, &p) == 0 && p.t == 1000000 && p.span == 1000000 &&
           p.requests == 100 && p.failed == 5 && p.vus == 5 && p.p95 == 1000,
       "interval 1: 100 requests, 5 failed, 5 VUs, p95 1 ms (got %llu, %llu, %d, %.0f)",
       (unsigned long long)p.requests, (unsigned long long)p.failed, p.vus, p.p95);
    metrics_free(s1);

    /* interval 2: 50 slow requests: the cumulative p95 would still say fast */
    record(src, 200, 50, 200000);
    series_set(metrics_series(src, M_VUS, NULL), 7);
    struct metrics *s2 = snap_of(src);
    ok(sampler_point(&st, s2, 3000000, &p) == 0 && p.requests == 50 && p.failed == 0 &&
           p.vus == 7 && fabs(p.p95 - 200000) <= 200000 / 1024.0,
       "interval 2: only its own 50 slow requests make its p95 (%.0f)", p.p95);
    metrics_free(s2);

    /* interval 3: nothing happened */
    struct metrics *s3 = snap_of(src);
    ok(sampler_point(&st, s3, 4000000, &p) == 0 && p.requests == 0 && isnan(p.p95),
       "interval 3: idle, no p95");
    metrics_free(s3);

    /* a snapshot that lost samples (a source went away): no negative counts */
    struct metrics *small = metrics_new();
    record(small, 200, 3, 500);
    ok(sampler_point(&st, small, 5000000, &p) == 0 && p.requests == 0 && p.failed == 0 &&
           isnan(p.p95),
       "counters going backwards count as zero, and no p95");
    metrics_free(small);

    sampler_state_clear(&st);
    sampler_state_clear(&st);
    ok(st.duration == NULL, "state clear is idempotent");
    metrics_free(src);
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The thread: samples at its interval and takes the last stretch on stop. */
static void test_thread(void)
{
    volatile sig_atomic_t stop = 0;
    struct run r;
    struct timeline tl;
    pthread_mutex_t *lock;
    int err = 0;

    run_init(&r, NULL, NULL, &stop);
    struct metrics *src = run_new_source(&r, &lock);
    timeline_init(&tl, 8, 20000);
    struct sampler *s = sampler_start(&r, &tl, 20000, &err);
    ok(s != NULL && err == 0, "sampler starts");
    for (int i = 0; i < 30; i++) {
        pthread_mutex_lock(lock);
        record(src, 200, 10, 1000);
        pthread_mutex_unlock(lock);
        nap_ms(5);
    }
    sampler_stop(s);
    uint64_t total = 0;
    for (size_t i = 0; i < tl.n; i++)
        total += tl.p[i].requests;
    ok(tl.n >= 2 && tl.n <= 8, "some points, never more than 8 (%zu)", tl.n);
    ok(total == 300, "every request is in some point, the last ones included (%llu)",
       (unsigned long long)total);
    ok(tl.p[tl.n - 1].t + tl.p[tl.n - 1].span > 140000,
       "the points reach the end of the run (%lld us)",
       (long long)(tl.p[tl.n - 1].t + tl.p[tl.n - 1].span));
    sampler_stop(NULL);
    timeline_clear(&tl);
    run_clear(&r);
}

int main(void)
{
    test_points();
    test_thread();
    return tap_done();
}
