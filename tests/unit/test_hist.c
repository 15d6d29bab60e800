/* Unit tests for hist: accuracy against exact k6 percentiles, merge, memory, iteration. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syncgate/hist.h"
#include "tap.h"

#define RANGE_BYTES (1024 * sizeof(uint64_t))

/*
 * The goal is 0.1%. Reporting a bucket's midpoint guarantees half a bucket,
 * 1/2048 of the value, so test that tighter bound: reporting a bucket edge
 * would still pass 0.1% but not this.
 */
#define TOL (1.0 / 2048)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* Uniform in (0, 1). */
static double rnd01(void)
{
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* k6's trend sink on sorted values: rank p/100*(n-1), linear interpolation. */
static double exact_pct(const int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    if (n == 1)
        return (double)sorted[0];
    double i = p / 100.0 * (double)(n - 1);
    double lo = (double)sorted[(size_t)floor(i)], hi = (double)sorted[(size_t)ceil(i)];
    return lo + (hi - lo) * (i - floor(i));
}

static double rel_err(double got, double want)
{
    if (want == 0)
        return fabs(got);
    return fabs(got - want) / fabs(want);
}

static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};

/* Record vals, then compare every statistic with the exact one. */
static void check_dist(const char *name, int64_t *vals, size_t n, double tol)
{
    struct hist *h = hist_new();
    double sum = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;

    for (size_t i = 0; i < n; i++) {
        hist_record(h, vals[i]);
        sum += (double)vals[i];
        if (vals[i] < mn)
            mn = vals[i];
        if (vals[i] > mx)
            mx = vals[i];
    }
    qsort(vals, n, sizeof(vals[0]), cmp_i64);

    ok(hist_count(h) == n, "%s: count %zu (got %llu)", name, n, (unsigned long long)hist_count(h));
    ok(hist_min(h) == mn && hist_max(h) == mx, "%s: min %lld max %lld (got %lld %lld)", name,
       (long long)mn, (long long)mx, (long long)hist_min(h), (long long)hist_max(h));
    ok(hist_sum(h) == sum, "%s: sum exact %.0f (got %.0f)", name, sum, hist_sum(h));
    ok(rel_err(hist_mean(h), sum / (double)n) < 1e-12, "%s: mean %.3f (got %.3f)", name,
       sum / (double)n, hist_mean(h));

    double worst = 0, worst_p = 0, worst_want = 0, worst_got = 0;
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        double want = exact_pct(vals, n, pcts[i]), got = hist_percentile(h, pcts[i]);
        double e = rel_err(got, want);
        if (e >= worst) {
            worst = e;
            worst_p = pcts[i];
            worst_want = want;
            worst_got = got;
        }
    }
    ok(worst <= tol, "%s: percentiles within %g (worst p(%g): want %.3f got %.3f, err %.2e)", name,
       tol, worst_p, worst_want, worst_got, worst);
    hist_free(h);
}

static int64_t *gen(size_t n, int kind)
{
    int64_t *v = malloc(n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: /* uniform 0..1 s */
            v[i] = (int64_t)(rng() % 1000001);
            break;
        case 1: /* exponential, mean 50 ms */
            v[i] = (int64_t)(-log(rnd01()) * 50000.0);
            break;
        case 2: /* Pareto alpha 1.2 from 2 ms, long tail cut at 60 s */
            v[i] = (int64_t)fmin(2000.0 / pow(rnd01(), 1.0 / 1.2), 60e6);
            break;
        case 3: /* constant */
            v[i] = 12345;
            break;
        case 4: /* log-uniform 1 us .. 10 s */
            v[i] = (int64_t)exp(rnd01() * log(1e7));
            break;
        case 5: /* small values, all in the exact region */
            v[i] = (int64_t)(rng() % 2048);
            break;
        case 6: /* bimodal: fast cache hits and slow misses */
            v[i] = (rng() & 7) ? 800 + (int64_t)(rng() % 400) : 250000 + (int64_t)(rng() % 50000);
            break;
        }
    }
    return v;
}

static void test_accuracy(void)
{
    static const char *const names[] = {"uniform",  "exponential", "pareto", "constant",
                                        "1us..10s", "exact<2048",  "bimodal"};
    for (int kind = 0; kind < 7; kind++) {
        int64_t *v = gen(200000, kind);
        check_dist(names[kind], v, 200000, kind == 5 ? 1e-12 : TOL);
        free(v);
    }
    /* Small odd sizes, where interpolation between neighbours matters most. */
    for (size_t n = 2; n <= 9; n++) {
        char name[32];
        int64_t *v = gen(n, 4);
        snprintf(name, sizeof(name), "log-uniform n=%zu", n);
        check_dist(name, v, n, TOL);
        free(v);
    }

    int64_t one[] = {123456789};
    check_dist("1 sample", one, 1, 0);
    int64_t two[] = {3000, 1000000};
    check_dist("2 samples", two, 2, TOL);
    int64_t two_small[] = {7, 3};
    check_dist("2 small samples", two_small, 2, 0);

    /* Two samples: k6 interpolates; p(50) is the midpoint, p(90) 90% of the way. */
    struct hist *h = hist_new();
    hist_record(h, 100);
    hist_record(h, 200);
    ok(hist_percentile(h, 50) == 150, "p(50) of {100,200} is 150 (got %g)", hist_percentile(h, 50));
    ok(fabs(hist_percentile(h, 90) - 190) < 1e-9, "p(90) of {100,200} is 190 (got %g)",
       hist_percentile(h, 90));
    ok(hist_percentile(h, 0) == 100 && hist_percentile(h, 100) == 200, "p(0)/p(100) are min/max");
    ok(hist_percentile(h, -5) == 100 && hist_percentile(h, 250) == 200,
       "out-of-range p is clamped");
    hist_free(h);
}

static void test_empty_and_clamp(void)
{
    struct hist *h = hist_new();

    ok(h != NULL, "hist_new");
    ok(hist_count(h) == 0 && hist_sum(h) == 0 && hist_min(h) == 0 && hist_max(h) == 0 &&
           hist_mean(h) == 0 && hist_percentile(h, 95) == 0,
       "empty histogram reports zeros");
    uint64_t cur = 0, n;
    int64_t lo, hi;
    ok(!hist_next_bucket(h, &cur, &lo, &hi, &n), "empty histogram has no buckets");

    ok(hist_record(h, -5) == 0, "negative value accepted");
    ok(hist_min(h) == 0 && hist_max(h) == 0 && hist_sum(h) == 0, "negative value clamped to 0");

    hist_record(h, INT64_MAX);
    hist_record(h, INT64_MAX);
    hist_record(h, INT64_MAX);
    hist_record(h, INT64_MAX);
    ok(hist_max(h) == INT64_MAX, "INT64_MAX recorded");
    ok(hist_sum(h) == 4.0 * 9223372036854775807.0, "sum beyond 2^64 kept (%g)", hist_sum(h));
    ok(hist_percentile(h, 100) == (double)INT64_MAX, "p(100) is INT64_MAX");
    cur = 0;
    int nb = 0;
    int64_t last_lo = 0, last_hi = 0;
    while (hist_next_bucket(h, &cur, &lo, &hi, &n)) {
        nb++;
        last_lo = lo;
        last_hi = hi;
    }
    ok(nb == 2 && last_hi == INT64_MAX && last_lo == INT64_MAX - ((INT64_C(1) << 52) - 1),
       "top bucket saturates at INT64_MAX (lo %lld hi %lld)", (long long)last_lo,
       (long long)last_hi);
    hist_free(h);
    hist_free(NULL);
    ok(1, "hist_free(NULL) is a no-op");
}

static void test_buckets(void)
{
    struct hist *h = hist_new();
    int64_t *v = gen(100000, 2);
    static const int64_t fixed[] = {0, 1, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 1000000};

    for (size_t i = 0; i < 100000; i++)
        hist_record(h, v[i]);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        hist_record(h, fixed[i]);

    uint64_t cur = 0, n, total = 0;
    int64_t lo, hi, prev_hi = -1;
    int ordered = 1, narrow = 1, exact_low = 1;
    while (hist_next_bucket(h, &cur, &lo, &hi, &n)) {
        total += n;
        if (lo < prev_hi || hi <= lo || n == 0)
            ordered = 0;
        /* Width is at most 1/1024 of the bucket's lower bound. */
        if ((double)(hi - lo) > (double)lo / 1024.0 && hi - lo > 1)
            narrow = 0;
        if (lo < 2048 && hi - lo != 1)
            exact_low = 0;
        prev_hi = hi;
    }
    ok(total == hist_count(h), "bucket counts add up to count (%llu of %llu)",
       (unsigned long long)total, (unsigned long long)hist_count(h));
    ok(ordered, "buckets ascending, disjoint, non-empty");
    ok(narrow, "buckets no wider than 1/1024 of their value");
    ok(exact_low, "values below 2048 have their own bucket");

    /* Every fixed value falls in a bucket that contains it. */
    int found_all = 1;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        int found = 0;
        cur = 0;
        while (hist_next_bucket(h, &cur, &lo, &hi, &n))
            if (lo <= fixed[i] && fixed[i] < hi)
                found = 1;
        if (!found) {
            found_all = 0;
            printf("# value %lld in no bucket\n", (long long)fixed[i]);
        }
    }
    ok(found_all, "each value lies in some bucket [lo, hi)");

    /* Boundaries of the first log ranges. */
    struct hist *b = hist_new();
    hist_record(b, 2048);
    hist_record(b, 2049);
    hist_record(b, 4095);
    int64_t want[][2] = {{2048, 2050}, {4094, 4096}};
    uint64_t wantn[] = {2, 1};
    cur = 0;
    int i = 0, match = 1;
    while (hist_next_bucket(b, &cur, &lo, &hi, &n)) {
        if (i >= 2 || lo != want[i][0] || hi != want[i][1] || n != wantn[i])
            match = 0;
        i++;
    }
    ok(match && i == 2, "2048 and 2049 share [2048,2050); 4095 is in [4094,4096)");
    hist_free(b);
    free(v);
    hist_free(h);
}

static int same_buckets(const struct hist *a, const struct hist *b)
{
    uint64_t ca = 0, cb = 0, na, nb;
    int64_t la, ha, lb, hb;

    for (;;) {
        bool ma = hist_next_bucket(a, &ca, &la, &ha, &na);
        bool mb = hist_next_bucket(b, &cb, &lb, &hb, &nb);
        if (ma != mb)
            return 0;
        if (!ma)
            return 1;
        if (la != lb || ha != hb || na != nb)
            return 0;
    }
}

static void test_merge(void)
{
    struct hist *all = hist_new(), *part[3], *dst = hist_new();
    int64_t *v = gen(90000, 4);

    for (int i = 0; i < 3; i++)
        part[i] = hist_new();
    for (size_t i = 0; i < 90000; i++) {
        hist_record(all, v[i]);
        /* Parts cover different value ranges, so merge must allocate in dst. */
        hist_record(part[v[i] < 1000 ? 0 : v[i] < 100000 ? 1 : 2], v[i]);
    }
    for (int i = 0; i < 3; i++)
        ok(hist_merge(dst, part[i]) == 0, "merge part %d", i);
    struct hist *empty = hist_new();
    ok(hist_merge(dst, empty) == 0, "merge of an empty histogram");

    ok(hist_count(dst) == hist_count(all) && hist_sum(dst) == hist_sum(all) &&
           hist_min(dst) == hist_min(all) && hist_max(dst) == hist_max(all),
       "merged count/sum/min/max equal the single histogram's");
    ok(same_buckets(dst, all), "merged buckets equal the single histogram's");
    int same = 1;
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        if (hist_percentile(dst, pcts[i]) != hist_percentile(all, pcts[i]))
            same = 0;
    ok(same, "merged percentiles equal the single histogram's");

    /* Merging into an empty histogram copies; min of an empty dst must not stick at 0. */
    struct hist *copy = hist_new();
    hist_merge(copy, part[2]);
    ok(hist_min(copy) == hist_min(part[2]) && hist_count(copy) == hist_count(part[2]),
       "merge into empty copies min (%lld) and count", (long long)hist_min(copy));
    ok(hist_merge(empty, empty) == 0 && hist_count(empty) == 0 && hist_min(empty) == 0,
       "empty into empty stays empty");

    hist_free(copy);
    hist_free(empty);
    for (int i = 0; i < 3; i++)
        hist_free(part[i]);
    hist_free(dst);
    hist_free(all);
    free(v);
}

/* One interval out of two cumulative states: the interval's own histogram, exactly. */
static void test_diff(void)
{
    struct hist *cum = hist_new(), *before = hist_new(), *interval = hist_new(),
                *diff = hist_new();
    int64_t *v = gen(60000, 4);

    for (size_t i = 0; i < 40000; i++)
        hist_record(cum, v[i]);
    hist_merge(before, cum); /* the snapshot at the start of the interval */
    for (size_t i = 40000; i < 60000; i++) {
        hist_record(cum, v[i]);
        hist_record(interval, v[i]);
    }
    ok(hist_diff(diff, cum, before) == 0, "diff of a later and an earlier state");
    ok(hist_count(diff) == hist_count(interval) && hist_sum(diff) == hist_sum(interval),
       "diff count and sum are the interval's (%llu, %.0f)",
       (unsigned long long)hist_count(diff), hist_sum(diff));
    ok(same_buckets(diff, interval), "diff buckets equal the interval's own histogram");
    int close = 1;
    for (size_t i = 1; i + 1 < sizeof(pcts) / sizeof(pcts[0]); i++) {
        double want = hist_percentile(interval, pcts[i]), got = hist_percentile(diff, pcts[i]);
        if (rel_err(got, want) > 1.0 / 1024)
            close = 0;
    }
    ok(close, "diff percentiles within a bucket of the interval's (p95 %.0f vs %.0f)",
       hist_percentile(diff, 95), hist_percentile(interval, 95));
    ok(hist_min(diff) <= hist_min(interval) && hist_min(diff) >= hist_min(interval) -
       hist_min(interval) / 1024 && hist_max(diff) >= hist_max(interval) &&
       hist_max(diff) <= hist_max(cum),
       "diff min/max are the bounds of the interval's extreme buckets");

    /* exact range: values below 2048 come back exactly */
    struct hist *a = hist_new(), *b = hist_new();
    hist_record(a, 5);
    hist_merge(b, a);
    hist_record(a, 700);
    hist_record(a, 1500);
    ok(hist_diff(diff, a, b) == 0 && hist_count(diff) == 2 && hist_min(diff) == 700 &&
       hist_max(diff) == 1500 && hist_sum(diff) == 2200,
       "exact values: min 700, max 1500, sum 2200 (got %lld, %lld, %.0f)",
       (long long)hist_min(diff), (long long)hist_max(diff), hist_sum(diff));
    ok(hist_diff(diff, a, a) == 0 && hist_count(diff) == 0 && hist_min(diff) == 0 &&
       hist_percentile(diff, 95) == 0, "a state minus itself is empty");
    ok(hist_diff(diff, b, a) == -EINVAL && hist_count(diff) == 0,
       "an earlier minus a later state is -EINVAL and leaves dst empty");
    /* same count, different buckets: not an earlier state either */
    struct hist *c = hist_new(), *d = hist_new();
    hist_record(c, 10);
    hist_record(d, 3000000);
    ok(hist_diff(diff, c, d) == -EINVAL && hist_count(diff) == 0,
       "same count, other buckets: -EINVAL");
    ok(hist_diff(diff, d, c) == -EINVAL, "and the other way round");

    hist_free(a);
    hist_free(b);
    hist_free(c);
    hist_free(d);
    hist_free(cum);
    hist_free(before);
    hist_free(interval);
    hist_free(diff);
    free(v);
}

static void test_memory(void)
{
    struct hist *h = hist_new();
    size_t base = hist_bytes(h);

    for (int i = 0; i < 1024; i++)
        hist_record(h, i);
    ok(hist_bytes(h) == base + RANGE_BYTES, "values 0..1023 use one range (%zu bytes)",
       hist_bytes(h) - base);

    /* Latencies 1 us..10 s: 2^0..2^24 → ranges 0..14 at most. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 300000; i++)
            hist_record(h, (int64_t)exp(rnd01() * log(1e7)));
    size_t after = hist_bytes(h);
    ok(after <= base + 15 * RANGE_BYTES, "1us..10s in at most 15 ranges (%zu KiB)", after / 1024);
    for (int i = 0; i < 1000000; i++)
        hist_record(h, (int64_t)exp(rnd01() * log(1e7)));
    ok(hist_bytes(h) == after, "a million more samples in the same range allocate nothing");

    hist_record(h, INT64_MAX);
    hist_record(h, 1);
    for (int k = 0; k < 63; k++)
        hist_record(h, INT64_C(1) << k);
    ok(hist_bytes(h) <= base + 54 * RANGE_BYTES, "full int64 range bounded (%zu KiB)",
       hist_bytes(h) / 1024);

    /* Reset forgets samples but keeps (and reuses) the ranges. */
    size_t before_reset = hist_bytes(h);
    hist_reset(h);
    uint64_t cur = 0, n;
    int64_t lo, hi;
    ok(hist_count(h) == 0 && hist_sum(h) == 0 && hist_min(h) == 0 && hist_max(h) == 0 &&
           hist_percentile(h, 50) == 0 && !hist_next_bucket(h, &cur, &lo, &hi, &n),
       "reset empties the histogram");
    ok(hist_bytes(h) == before_reset, "reset keeps allocated ranges");
    hist_record(h, 5000);
    hist_record(h, 7);
    ok(hist_count(h) == 2 && hist_min(h) == 7 && hist_max(h) == 5000 && hist_sum(h) == 5007,
       "records after reset start fresh");
    hist_free(h);
}

/* Not a test: a figure to notice regressions on the hot path. */
static void report_speed(void)
{
    enum { N = 4000000 };
    struct hist *h = hist_new();
    int64_t *v = gen(1 << 16, 4);
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        hist_record(h, v[i & 0xffff]);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    printf("# hist_record: %.1f ns per sample\n", ns);
    ok(hist_count(h) == N, "speed run recorded %d samples", N);
    free(v);
    hist_free(h);
}

int main(void)
{
    test_empty_and_clamp();
    test_accuracy();
    test_buckets();
    test_merge();
    test_diff();
    test_memory();
    report_speed();
    return tap_done();
}
