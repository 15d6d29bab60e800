/* Unit tests for snapshot (and the parts of hist and metrics it rests on): a registry
 * survives the wire exactly, and the merge of instances' registries sent as reports is the
 * registry of one process that recorded every sample. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.pb-c.h"
#include "syncgate/hist.h"
#include "syncgate/metrics.h"
#include "syncgate/snapshot.h"
#include "tap.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool hist_same(const struct hist *a, const struct hist *b)
{
    struct hist_totals ta, tb;
    hist_get_totals(a, &ta);
    hist_get_totals(b, &tb);
    if (memcmp(&ta, &tb, sizeof(ta)) != 0)
        return false;
    uint32_t ia = 0, ib = 0;
    uint64_t na, nb;
    for (;;) {
        bool ma = hist_next_index(a, &ia, &na), mb = hist_next_index(b, &ib, &nb);
        if (ma != mb)
            return false;
        if (!ma)
            return true;
        if (ia != ib || na != nb)
            return false;
        ia++, ib++;
    }
}

/* Every series of a is in b with the same value (gauges: value and range), and b has no
 * other; versions too when versions is set. */
static bool registry_same(const struct metrics *a, const struct metrics *b, bool versions)
{
    if (metrics_nseries(a) != metrics_nseries(b) || metrics_dropped(a) != metrics_dropped(b) ||
        metrics_grouped(a) != metrics_grouped(b))
        return false;
    for (const struct series *s = metrics_first(a); s; s = s->next) {
        struct series *o = metrics_series((struct metrics *)b, s->id, &s->tags);
        if (!o || (versions && o->version != s->version))
            return false;
        switch (metric_def(s->id)->type) {
        case METRIC_COUNTER:
            if (o->v.counter != s->v.counter)
                return false;
            break;
        case METRIC_RATE:
            if (o->v.rate.pass != s->v.rate.pass || o->v.rate.total != s->v.rate.total)
                return false;
            break;
        case METRIC_GAUGE:
            if (o->v.gauge.set != s->v.gauge.set || o->v.gauge.value != s->v.gauge.value ||
                o->v.gauge.min != s->v.gauge.min || o->v.gauge.max != s->v.gauge.max)
                return false;
            break;
        case METRIC_TREND:
            if (!hist_same(o->v.trend, s->v.trend))
                return false;
            break;
        }
    }
    return metrics_nseries(a) == metrics_nseries(b);
}

static const char *const names[] = {"product", "order", "inventory", "a name with spaces ✓"};
static const char *const statuses[] = {"200", "201", "503", "0"};

/* One sample into registry m: a request of some service with its duration. */
static void record(struct metrics *m, uint64_t x)
{
    struct tagset t = {0};
    tagset_set(&t, "scenario", "load");
    tagset_set(&t, "name", names[x % 4]);
    tagset_set(&t, "status", statuses[(x >> 3) % 4]);
    tagset_set(&t, "method", "GET");
    int64_t us = (int64_t)((x >> 8) % 3000000); /* 0 .. 3 s */
    if ((x >> 40) % 97 == 0)
        us = (int64_t)((x >> 8) % 4000000000000ll); /* now and then something huge */
    series_trend(metrics_series(m, M_HTTP_REQ_DURATION, &t), us);
    series_trend(metrics_series(m, M_HTTP_REQ_WAITING, &t), us / 2);
    series_add(metrics_series(m, M_HTTP_REQS, &t), 1);
    series_add(metrics_series(m, M_DATA_RECEIVED, &t), (double)(x % 1500));
    series_rate(metrics_series(m, M_HTTP_REQ_FAILED, &t), ((x >> 3) % 4) >= 2);
    struct tagset c = {0};
    tagset_set(&c, "check", "status 200");
    tagset_set(&c, "name", names[x % 4]);
    series_rate(metrics_series(m, M_CHECKS, &c), ((x >> 3) % 4) == 0);
}

static int roundtrip(const struct metrics *m, const struct snapshot_meta *in, struct metrics *out,
                     struct snapshot_meta *meta)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = snapshot_encode(m, in, &buf, &len);
    if (rc == 0)
        rc = snapshot_decode(buf, len, out, meta);
    free(buf);
    return rc;
}

static void test_parts_equal_whole(void)
{
    enum { NPARTS = 7, SAMPLES = 60000 };
    struct metrics *whole = metrics_new(), *parts[NPARTS], *merged = metrics_new();
    for (int i = 0; i < NPARTS; i++)
        parts[i] = metrics_new();
    for (int k = 0; k < SAMPLES; k++) {
        uint64_t x = next();
        record(whole, x);
        record(parts[next() % NPARTS], x); /* any instance may see any sample */
    }
    bool all = true;
    size_t bytes = 0;
    for (int i = 0; i < NPARTS; i++) {
        struct metrics *got = metrics_new();
        struct snapshot_meta meta = {.index = (uint32_t)i}, back;
        uint8_t *buf = NULL;
        size_t len = 0;
        all &= snapshot_encode(parts[i], &meta, &buf, &len) == 0 &&
               snapshot_decode(buf, len, got, &back) == 0 && back.index == (uint32_t)i;
        bytes += len;
        free(buf);
        all &= metrics_merge_instances(merged, got) == 0;
        metrics_free(got);
    }
    ok(all, "parts: 7 registries encoded, decoded and merged (%zu bytes in all)", bytes);
    ok(registry_same(whole, merged, false),
       "parts: the merge of 7 instances' reports equals the registry that recorded all 60000 "
       "samples: every series, counter, rate, and trend to the bucket and exact sum");

    /* the coordinator's way: keep the bytes, check them once, add them into each merge */
    struct metrics *direct = metrics_new();
    bool read_ok = true;
    for (int i = 0; i < NPARTS; i++) {
        struct snapshot_meta meta = {.index = (uint32_t)i, .seq = 9}, back;
        uint8_t *buf = NULL;
        size_t len = 0;
        read_ok &= snapshot_encode(parts[i], &meta, &buf, &len) == 0 &&
                   snapshot_read(buf, len, &back) == 0 && back.index == (uint32_t)i &&
                   back.seq == 9 && snapshot_merge(buf, len, direct) == 0;
        free(buf);
    }
    ok(read_ok && registry_same(whole, direct, false),
       "parts: reports checked by snapshot_read and added by snapshot_merge make the whole too");
    metrics_free(direct);
    struct metric_view vw, vm;
    metrics_view(whole, M_HTTP_REQ_DURATION, NULL, &vw);
    metrics_view(merged, M_HTTP_REQ_DURATION, NULL, &vm);
    ok(hist_percentile(vw.trend, 95) == hist_percentile(vm.trend, 95) &&
           hist_percentile(vw.trend, 99) == hist_percentile(vm.trend, 99) &&
           hist_mean(vw.trend) == hist_mean(vm.trend),
       "parts: p95 %.0f, p99 %.0f and the mean of the merge are the whole's",
       hist_percentile(vm.trend, 95), hist_percentile(vm.trend, 99));
    metric_view_clear(&vw);
    metric_view_clear(&vm);
    for (int i = 0; i < NPARTS; i++)
        metrics_free(parts[i]);
    metrics_free(whole);
    metrics_free(merged);
}

static void test_roundtrip(void)
{
    struct metrics *m = metrics_new(), *got = metrics_new();
    for (int k = 0; k < 5000; k++)
        record(m, next());
    struct tagset none = {0}, sc = {0};
    series_set(metrics_series(m, M_VUS, &none), 7);
    series_set(metrics_series(m, M_VUS, &none), 3);
    series_set(metrics_series(m, M_VUS_MAX, &none), 10);
    tagset_set(&sc, "scenario", "checkout");
    series_trend(metrics_series(m, M_ITERATION_LATENESS, &sc), 0); /* a zero sample */
    metrics_series(m, M_ITERATION_DURATION, &sc);                   /* an empty trend */
    metrics_series(m, M_DROPPED_ITERATIONS, &sc);                   /* a counter never added */
    metrics_add_lost(m, 3, 5);
    struct snapshot_meta in = {.index = 4, .seq = 17, .final = true, .elapsed = 123456789,
                               .nscenarios = 2, .started = {10, 20}, .due = {11, 21},
                               .has_saturation = true, .failure = 116, .undelivered = true};
    in.saturation = (struct sat_report){.measured = true, .saturated = true, .windows = 30,
                                        .saturated_windows = 9, .capacity = 1.5,
                                        .cpu_peak = 0.97, .lag_peak = 0.2};
    snprintf(in.reason, sizeof(in.reason), "auth failed");
    struct snapshot_meta out;
    ok(roundtrip(m, &in, got, &out) == 0, "roundtrip: encoded and decoded");
    ok(registry_same(m, got, true), "roundtrip: every series, its value and its version back "
                                    "exactly, and the dropped and grouped counts");
    struct series *v = metrics_series(got, M_VUS, &none);
    ok(v && v->v.gauge.value == 3 && v->v.gauge.min == 3 && v->v.gauge.max == 7,
       "roundtrip: a gauge keeps its last value and its range");
    ok(out.index == 4 && out.seq == 17 && out.final && out.elapsed == 123456789 &&
           out.nscenarios == 2 && out.started[1] == 20 && out.due[0] == 11 &&
           out.has_saturation && out.saturation.saturated && out.saturation.windows == 30 &&
           out.saturation.capacity == 1.5 && out.failure == 116 && out.undelivered &&
           !strcmp(out.reason, "auth failed"),
       "roundtrip: the rest of the report (scenarios' progress, saturation, failure) too");
    /* decoding again into the same registry replaces, never adds */
    ok(roundtrip(m, &in, got, &out) == 0 && registry_same(m, got, true),
       "roundtrip: a second report into the same registry replaces the first");
    struct metrics *empty = metrics_new();
    struct snapshot_meta z = {0};
    ok(roundtrip(empty, &z, got, &out) == 0 && metrics_nseries(got) == metrics_nseries(m) &&
           metrics_series(got, M_HTTP_REQS, NULL)->v.counter == 0 && metrics_dropped(got) == 0,
       "roundtrip: an empty report empties the registry (its series are kept for reuse)");

    /* gauges of instances add up; others merge as within one process */
    struct metrics *a = metrics_new(), *b = metrics_new(), *sum = metrics_new();
    series_set(metrics_series(a, M_VUS, &none), 4);
    series_set(metrics_series(b, M_VUS, &none), 6);
    series_set(metrics_series(b, M_VUS, &none), 5);
    metrics_merge_instances(sum, a);
    metrics_merge_instances(sum, b);
    v = metrics_series(sum, M_VUS, &none);
    ok(v->v.gauge.value == 9 && v->v.gauge.min == 9 && v->v.gauge.max == 10,
       "instances: VUs of two instances add up (value 4 + 5, max 4 + 6)");
    metrics_free(a);
    metrics_free(b);
    metrics_free(sum);
    metrics_free(empty);
    metrics_free(m);
    metrics_free(got);
}

/* A report built by hand, packed; NULL-safe for the test's fields. */
static int decode_built(Syncgate__Fleet__Report *r)
{
    size_t n = syncgate__fleet__report__get_packed_size(r);
    uint8_t *buf = malloc(n + 1);
    syncgate__fleet__report__pack(r, buf);
    struct metrics *m = metrics_new();
    struct snapshot_meta meta;
    int rc = snapshot_decode(buf, n, m, &meta);
    if (snapshot_read(buf, n, &meta) != rc) /* the check alone agrees with the decoding */
        rc = -EDOM;
    metrics_free(m);
    free(buf);
    return rc;
}

static void test_bad(void)
{
    struct metrics *m = metrics_new();
    struct snapshot_meta meta;
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)next();
    ok(snapshot_decode(junk, sizeof(junk), m, &meta) == -EINVAL &&
           snapshot_read(junk, sizeof(junk), &meta) == -EINVAL,
       "bad: random bytes are refused (decode and read)");

    Syncgate__Fleet__Report r = SYNCGATE__FLEET__REPORT__INIT;
    Syncgate__Fleet__Series s = SYNCGATE__FLEET__SERIES__INIT, *sp = &s;
    Syncgate__Fleet__Trend t = SYNCGATE__FLEET__TREND__INIT;
    r.series = &sp;
    r.n_series = 1;
    s.metric = "no_such_metric";
    ok(decode_built(&r) == -EINVAL, "bad: an unknown metric is refused");
    s.metric = "http_req_failed";
    s.pass = 3;
    s.total = 2;
    ok(decode_built(&r) == -EINVAL, "bad: a rate with more passes than samples is refused");
    s.metric = "http_req_duration";
    s.trend = NULL;
    ok(decode_built(&r) == -EINVAL, "bad: a trend without its histogram is refused");
    uint32_t idx[] = {5, 3};
    uint64_t cnt[] = {1, 1};
    s.trend = &t;
    t.count = 3; /* two buckets of one sample each: not 3 */
    t.min = 5;
    t.max = 8;
    t.index_delta = idx;
    t.n = cnt;
    t.n_index_delta = t.n_n = 2;
    ok(decode_built(&r) == -EINVAL, "bad: bucket counts that do not add up to the count");
    t.count = 2;
    t.max = 7;
    ok(decode_built(&r) == -EINVAL, "bad: a max outside the last bucket");
    t.max = 8;
    ok(decode_built(&r) == 0, "good: the same histogram told right is taken");
    idx[1] = HIST_BUCKETS;
    ok(decode_built(&r) == -EINVAL, "bad: a bucket index past the last bucket");
    idx[1] = 3;
    Syncgate__Fleet__Tag tg[TAGS_MAX + 1], *tp[TAGS_MAX + 1];
    char keys[TAGS_MAX + 1][8];
    for (int i = 0; i <= TAGS_MAX; i++) {
        syncgate__fleet__tag__init(&tg[i]);
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        tg[i].key = keys[i];
        tg[i].value = "v";
        tp[i] = &tg[i];
    }
    s.tags = tp;
    s.n_tags = TAGS_MAX + 1;
    ok(decode_built(&r) == -EINVAL, "bad: more tags than a series holds");
    s.n_tags = 2;
    tg[1].key = "k0";
    ok(decode_built(&r) == -EINVAL, "bad: the same tag twice");
    s.n_tags = 0;
    Syncgate__Fleet__Progress pr = SYNCGATE__FLEET__PROGRESS__INIT, *pp[CONFIG_MAX_SCENARIOS + 1];
    for (int i = 0; i <= CONFIG_MAX_SCENARIOS; i++)
        pp[i] = &pr;
    r.scenarios = pp;
    r.n_scenarios = CONFIG_MAX_SCENARIOS + 1;
    ok(decode_built(&r) == -EINVAL, "bad: more scenarios than a profile has");

    /* hist_add_parts on its own: a failure leaves the histogram as it was */
    struct hist *h = hist_new();
    hist_record(h, 42);
    struct hist_totals tot = {.count = 1, .sum_lo = 9, .min = 9, .max = 9};
    uint32_t i9 = 9, i8 = 8;
    uint64_t one = 1;
    ok(hist_add_parts(h, &tot, &i8, &one, 1) == -EINVAL && hist_count(h) == 1 &&
           hist_add_parts(h, &tot, &i9, &one, 1) == 0 && hist_count(h) == 2 &&
           hist_sum(h) == 51 && hist_min(h) == 9 && hist_max(h) == 42,
       "hist_add_parts: refuses a min outside its bucket unchanged, adds a good part");
    hist_free(h);
    metrics_free(m);
}

int main(void)
{
    test_parts_equal_whole();
    test_roundtrip();
    test_bad();
    return tap_done();
}
