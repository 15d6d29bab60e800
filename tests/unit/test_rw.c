/* Unit tests for rw: names, labels, stats, timestamps, stale markers, native histograms. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote.pb-c.h"
#include "syncgate/http.h"
#include "syncgate/metrics.h"
#include "syncgate/rw.h"
#include "tap.h"

/* ---- helpers ---- */

static Prometheus__WriteRequest *decode(const struct rw_batch *b)
{
    size_t n = 0;
    if (b->len >= 4 && memcmp(b->body, "\xff\x06\x00\x00", 4) == 0)
        return NULL; /* framed format: never acceptable */
    if (snappy_validate_compressed_buffer((const char *)b->body, b->len) != SNAPPY_OK)
        return NULL;
    if (snappy_uncompressed_length((const char *)b->body, b->len, &n) != SNAPPY_OK)
        return NULL;
    char *raw = malloc(n ? n : 1);
    if (!raw || snappy_uncompress((const char *)b->body, b->len, raw, &n) != SNAPPY_OK) {
        free(raw);
        return NULL;
    }
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, (uint8_t *)raw);
    free(raw);
    return wr;
}

static const char *label(const Prometheus__TimeSeries *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_labels; i++)
        if (strcmp(ts->labels[i]->name, name) == 0)
            return ts->labels[i]->value;
    return NULL;
}

static const Prometheus__TimeSeries *find(const Prometheus__WriteRequest *wr, const char *name)
{
    for (size_t i = 0; wr && i < wr->n_timeseries; i++) {
        const char *n = label(wr->timeseries[i], "__name__");
        if (n && strcmp(n, name) == 0)
            return wr->timeseries[i];
    }
    return NULL;
}

static double value_of(const Prometheus__WriteRequest *wr, const char *name)
{
    const Prometheus__TimeSeries *ts = find(wr, name);
    return ts && ts->n_samples == 1 ? ts->samples[0]->value : -12345.0;
}

static int64_t ts_of(const Prometheus__WriteRequest *wr, const char *name)
{
    const Prometheus__TimeSeries *ts = find(wr, name);
    return ts && ts->n_samples == 1 ? ts->samples[0]->timestamp : -1;
}

static uint64_t bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(a) > 1 ? fabs(a) : 1);
}

/* Labels strictly increasing by bytes (so also unique), none empty. */
static bool labels_valid(const Prometheus__TimeSeries *ts)
{
    for (size_t i = 0; i < ts->n_labels; i++) {
        if (!*ts->labels[i]->name || !*ts->labels[i]->value)
            return false;
        if (i && strcmp(ts->labels[i - 1]->name, ts->labels[i]->name) >= 0)
            return false;
    }
    return true;
}

static struct config base_config(void)
{
    static struct kv labels[] = {
        {"team", "kubestock"}, {"bad-name.x", "v"}, {"testid", "override"},
        {"empty", ""},         {"__reserved", "x"},
    };
    struct config c;
    memset(&c, 0, sizeof(c));
    c.testid = "t1";
    c.instance = "host-1";
    c.environment = "staging";
    c.metrics.nlabels = sizeof(labels) / sizeof(labels[0]);
    memcpy(c.metrics.labels, labels, sizeof(labels));
    return c;
}

static struct tagset http_tags(const char *status)
{
    struct tagset t = {0};
    tagset_set(&t, "name", "product");
    tagset_set(&t, "method", "GET");
    tagset_set(&t, "status", status);
    tagset_set(&t, "expected_response", "true");
    tagset_set(&t, "scenario", "load");
    return t;
}

/* ---- tests ---- */

static void test_stats(void)
{
    struct rw_stat st[RW_MAX_STATS];
    char err[256];
    int n = rw_parse_trend_stats(RW_DEFAULT_TREND_STATS, st, RW_MAX_STATS, err, sizeof(err));
    ok(n == 4 && strcmp(st[0].suffix, "p95") == 0 && strcmp(st[1].suffix, "p99") == 0 &&
           strcmp(st[2].suffix, "min") == 0 && strcmp(st[3].suffix, "max") == 0,
       "default trend stats p95,p99,min,max (n=%d)", n);
    ok(st[0].kind == RW_STAT_PCT && st[0].p == 95.0, "p(95) is percentile 95");
    n = rw_parse_trend_stats("p(99.9), p(0.95) ,avg,med,count,sum,avg", st, RW_MAX_STATS, err,
                             sizeof(err));
    ok(n == 6, "blanks allowed, repeats ignored (n=%d)", n);
    ok(n == 6 && strcmp(st[0].suffix, "p999") == 0 && near(st[0].p, 99.9), "p(99.9) -> p999");
    ok(n == 6 && strcmp(st[1].suffix, "p095") == 0 && near(st[1].p, 0.95), "p(0.95) -> p095");
    ok(n == 6 && st[2].kind == RW_STAT_AVG && st[3].kind == RW_STAT_MED &&
           st[4].kind == RW_STAT_COUNT && st[5].kind == RW_STAT_SUM,
       "avg, med, count, sum");
    const char *bad[] = {"p(101)", "p95", "p()", "p(9x)", "p(.5)", "p(5.)",
                         "mean",   "",    " , ", "p(-1)", "p(1e2)"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        n = rw_parse_trend_stats(bad[i], st, RW_MAX_STATS, err, sizeof(err));
        ok(n == -EINVAL && err[0], "rejects \"%s\" (%s)", bad[i], err);
    }
    n = rw_parse_trend_stats("min,,max,", st, RW_MAX_STATS, err, sizeof(err));
    ok(n == 2 && st[0].kind == RW_STAT_MIN && st[1].kind == RW_STAT_MAX,
       "empty items skipped like the config parser does (n=%d)", n);
    n = rw_parse_trend_stats("min,max,avg", st, 2, err, sizeof(err));
    ok(n == -EINVAL, "more stats than room is an error");
}

static void test_label_text(void)
{
    char out[64];
    ok(rw_label_name("expected_response", out, sizeof(out)) == 17 &&
           strcmp(out, "expected_response") == 0,
       "valid name kept");
    ok(rw_label_name("a-b.c/d", out, sizeof(out)) == 7 && strcmp(out, "a_b_c_d") == 0,
       "invalid characters become _ (%s)", out);
    ok(rw_label_name("9lives", out, sizeof(out)) == 6 && strcmp(out, "_lives") == 0,
       "leading digit becomes _ (%s)", out);
    ok(rw_label_name("x9", out, sizeof(out)) == 2 && strcmp(out, "x9") == 0, "digits later kept");
    ok(rw_label_name("__name__", out, sizeof(out)) == 0, "reserved __ name dropped");
    ok(rw_label_name("-_x", out, sizeof(out)) == 0, "name sanitised into __ dropped");
    ok(rw_label_name("", out, sizeof(out)) == 0, "empty name dropped");
    ok(rw_label_name("caf\xc3\xa9", out, sizeof(out)) == 5 && strcmp(out, "caf__") == 0,
       "non-ASCII name bytes become _ (%s)", out);

    static char big[4096], vout[4096];
    ok(rw_label_value("h\xc3\xa9llo \xe2\x9c\x93", vout, sizeof(vout)) == 10 &&
           strcmp(vout, "h\xc3\xa9llo \xe2\x9c\x93") == 0,
       "valid UTF-8 value kept");
    ok(rw_label_value("a\xff"
                      "b",
                      vout, sizeof(vout)) == 3 &&
           strcmp(vout, "a_b") == 0,
       "invalid byte becomes _ (%s)", vout);
    ok(rw_label_value("\xe2\x82", vout, sizeof(vout)) == 2 && strcmp(vout, "__") == 0,
       "truncated sequence becomes _ per byte");
    ok(rw_label_value("\xc0\xaf", vout, sizeof(vout)) == 2 && strcmp(vout, "__") == 0,
       "overlong encoding rejected");
    ok(rw_label_value("\xed\xa0\x80", vout, sizeof(vout)) == 3 && strcmp(vout, "___") == 0,
       "surrogate rejected");
    ok(rw_label_value("", vout, sizeof(vout)) == 0, "empty value means drop");
    memset(big, 'a', 2000);
    big[2000] = '\0';
    ok(rw_label_value(big, vout, sizeof(vout)) == RW_MAX_VALUE, "value cut to RW_MAX_VALUE");
    memset(big, 'a', RW_MAX_VALUE - 1);
    memcpy(big + RW_MAX_VALUE - 1, "\xc3\xa9", 3);
    ok(rw_label_value(big, vout, sizeof(vout)) == RW_MAX_VALUE - 1, "cut at a character boundary");
}

/* Reference: the smallest k with 2^(k/8) >= v, found by walking, no frexp. */
static int32_t ref_index(double v)
{
    int32_t k = 0;
    while (exp2(k / 8.0) < v)
        k++;
    while (exp2((k - 1) / 8.0) >= v)
        k--;
    return k;
}

static void test_hist_index(void)
{
    ok(rw_hist_index(1.0) == 0, "1 is in bucket 0 (upper bound inclusive)");
    ok(rw_hist_index(2.0) == 8, "2 is in bucket 8");
    ok(rw_hist_index(0.5) == -8, "0.5 is in bucket -8");
    ok(rw_hist_index(1.0001) == 1, "just above 1 is in bucket 1");
    int bad = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = exp2((double)(x % 4000000) / 100000.0 - 20.0); /* 2^-20 .. 2^20 */
        if (rw_hist_index(v) != ref_index(v))
            bad++;
    }
    ok(bad == 0, "bucket index matches the reference on 20000 values (%d differ)", bad);
}

static void test_encode(void)
{
    struct config c = base_config();
    char err[256];
    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    ok(e != NULL, "encoder created");
    struct metrics *m = metrics_new();

    struct tagset t = http_tags("200");
    struct series *reqs = metrics_series(m, M_HTTP_REQS, &t);
    series_add(reqs, 3);
    struct series *failed = metrics_series(m, M_HTTP_REQ_FAILED, &t);
    series_rate(failed, true);
    series_rate(failed, false);
    series_rate(failed, false);
    series_rate(failed, false);
    struct series *dur = metrics_series(m, M_HTTP_REQ_DURATION, &t);
    for (int i = 1; i <= 100; i++)
        series_trend(dur, i * 1000); /* 1..100 ms */
    struct tagset none = {0};
    struct series *vus = metrics_series(m, M_VUS, &none);
    series_set(vus, 7);
    struct tagset ct = {0};
    tagset_set(&ct, "check", "product status 200");
    tagset_set(&ct, "name", "product");
    tagset_set(&ct, "scenario", "smoke");
    tagset_set(&ct, "url", "http://x/secret?id=1");
    tagset_set(&ct, "group", "");
    tagset_set(&ct, "bad key", "a\xff");
    struct series *checks = metrics_series(m, M_CHECKS, &ct);
    series_rate(checks, true);

    struct rw_batch b = {0};
    int64_t now = 1700000000000;
    ok(rw_encode(e, m, now, RW_CHANGED, &b) == 0 && b.len > 0, "first encode has a body");
    Prometheus__WriteRequest *wr = decode(&b);
    ok(wr != NULL, "body is a snappy block of a WriteRequest");
    /* counter, rate, 4 trend stats, gauge, checks */
    ok(wr && wr->n_timeseries == 8 && b.nseries == 8 && b.nsamples == 8,
       "8 series (%zu, nseries %zu, nsamples %zu)", wr ? wr->n_timeseries : 0, b.nseries,
       b.nsamples);
    bool sorted = wr != NULL;
    for (size_t i = 0; wr && i < wr->n_timeseries; i++)
        sorted = sorted && labels_valid(wr->timeseries[i]);
    ok(sorted, "every label set sorted by bytes, unique, no empty value");

    const Prometheus__TimeSeries *ts = find(wr, "k6_http_reqs_total");
    ok(ts && ts->n_samples == 1 && ts->samples[0]->value == 3 && ts->samples[0]->timestamp == now,
       "k6_http_reqs_total = 3 at now");
    const char *want[][2] = {
        {"__name__", "k6_http_reqs_total"},
        {"bad_name_x", "v"},
        {"environment", "staging"},
        {"expected_response", "true"},
        {"instance", "host-1"},
        {"method", "GET"},
        {"name", "product"},
        {"scenario", "load"},
        {"status", "200"},
        {"team", "kubestock"},
        {"test_type", "load"},
        {"testid", "t1"},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    bool same = ts && ts->n_labels == nwant;
    for (size_t i = 0; same && i < nwant; i++)
        same = strcmp(ts->labels[i]->name, want[i][0]) == 0 &&
               strcmp(ts->labels[i]->value, want[i][1]) == 0;
    ok(same, "exact label set: identity, tags, static labels; testid not overridden");

    ok(near(value_of(wr, "k6_http_req_failed_rate"), 0.25), "k6_http_req_failed_rate = 0.25");
    ok(value_of(wr, "k6_vus") == 7, "k6_vus = 7");
    ts = find(wr, "k6_vus");
    ok(ts && ts->n_labels == 6 && !label(ts, "scenario") && !label(ts, "test_type"),
       "gauge without tags has identity and static labels only (%zu)", ts ? ts->n_labels : 0);
    struct hist *h = dur->v.trend;
    ok(near(value_of(wr, "k6_http_req_duration_p95"), hist_percentile(h, 95) / 1e6),
       "p95 in seconds (%g)", value_of(wr, "k6_http_req_duration_p95"));
    ok(near(value_of(wr, "k6_http_req_duration_p99"), hist_percentile(h, 99) / 1e6),
       "p99 in seconds");
    ok(near(value_of(wr, "k6_http_req_duration_min"), 0.001), "min = 0.001 s");
    ok(near(value_of(wr, "k6_http_req_duration_max"), 0.1), "max = 0.1 s");
    ok(!find(wr, "k6_http_req_duration_seconds"), "no native histogram unless asked");

    ts = find(wr, "k6_checks_rate");
    ok(ts && value_of(wr, "k6_checks_rate") == 1.0, "k6_checks_rate = 1");
    ok(ts && !label(ts, "url"), "url tag never becomes a label");
    ok(ts && !label(ts, "group"), "empty tag dropped");
    ok(ts && label(ts, "bad_key") && strcmp(label(ts, "bad_key"), "a_") == 0,
       "tag name and value sanitised");
    ok(ts && label(ts, "check") && strcmp(label(ts, "check"), "product status 200") == 0,
       "check label");
    ok(ts && label(ts, "test_type") && strcmp(label(ts, "test_type"), "smoke") == 0,
       "test_type from the scenario tag when not configured");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    /* Nothing changed: nothing to send. */
    ok(rw_encode(e, m, now, RW_CHANGED, &b) == 0 && b.len == 0 && b.body == NULL,
       "unchanged snapshot gives an empty batch");

    /* The final flush of a short run: every series sent once gets its second point. */
    {
        struct rw_encoder *f = rw_encoder_new(&c, err, sizeof(err));
        struct rw_batch fb;
        rw_encode(f, m, now, RW_CHANGED, &fb);
        size_t all = fb.nseries;
        rw_batch_clear(&fb);
        ok(rw_encode(f, m, now + 1, RW_FINAL, &fb) == 0 && fb.nseries == all,
           "final: every series sent once is sent again, unchanged (%zu of %zu)", fb.nseries, all);
        rw_batch_clear(&fb);
        ok(rw_encode(f, m, now + 2, RW_FINAL, &fb) == 0 && fb.len == 0,
           "final: a series with two points already is not repeated unchanged");
        rw_batch_clear(&fb);
        rw_encoder_free(f);
    }

    /* One series changes within the same millisecond: only it, one ms later. */
    series_add(reqs, 2);
    ok(rw_encode(e, m, now, RW_CHANGED, &b) == 0 && b.len > 0, "changed series encoded");
    wr = decode(&b);
    ok(wr && wr->n_timeseries == 1 && value_of(wr, "k6_http_reqs_total") == 5,
       "only the changed series (%zu)", wr ? wr->n_timeseries : 0);
    ok(ts_of(wr, "k6_http_reqs_total") == now + 1, "same ms: timestamp bumped to now+1");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    /* A clock going backwards still gives increasing timestamps; all=true sends all. */
    ok(rw_encode(e, m, now - 5000, RW_ALL, &b) == 0, "encode all");
    wr = decode(&b);
    ok(wr && wr->n_timeseries == 8, "all=true sends every series");
    ok(ts_of(wr, "k6_http_reqs_total") == now + 2 && ts_of(wr, "k6_vus") == now + 1,
       "per-series timestamps strictly increase (%lld, %lld)",
       (long long)ts_of(wr, "k6_http_reqs_total"), (long long)ts_of(wr, "k6_vus"));
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    /* Versions through a merged snapshot, as run_snapshot builds it. */
    struct metrics *snap = metrics_new();
    metrics_merge(snap, m);
    ok(rw_encode(e, snap, now + 10, RW_CHANGED, &b) == 0 && b.len == 0,
       "merged snapshot of an unchanged registry sends nothing");
    metrics_free(snap);
    series_set(vus, 7); /* same value, new observation */
    snap = metrics_new();
    metrics_merge(snap, m);
    ok(rw_encode(e, snap, now + 10, RW_CHANGED, &b) == 0 && b.nseries == 1,
       "gauge set again to the same value is sent (%zu)", b.nseries);
    metrics_free(snap);
    rw_batch_clear(&b);

    /* Ordinary NaN never carries the stale bits. */
    series_set(vus, from_bits(RW_STALE_NAN_BITS));
    rw_encode(e, m, now + 20, RW_CHANGED, &b);
    wr = decode(&b);
    double v = value_of(wr, "k6_vus");
    ok(isnan(v) && bits(v) == RW_NAN_BITS, "a stale-looking gauge value is sent as plain NaN");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    series_set(vus, NAN);
    rw_encode(e, m, now + 21, RW_CHANGED, &b);
    wr = decode(&b);
    v = value_of(wr, "k6_vus");
    ok(isnan(v) && bits(v) == RW_NAN_BITS, "NaN sent with bits 0x7ff8000000000001");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    /* Stale markers: every series ever sent, after its last sample. */
    ok(rw_encode_stale(e, now, &b) == 0 && b.len > 0, "stale batch");
    wr = decode(&b);
    ok(wr && wr->n_timeseries == 8, "stale marker for every series (%zu)",
       wr ? wr->n_timeseries : 0);
    bool all_stale = wr != NULL;
    for (size_t i = 0; wr && i < wr->n_timeseries; i++)
        all_stale = all_stale && wr->timeseries[i]->n_samples == 1 &&
                    bits(wr->timeseries[i]->samples[0]->value) == RW_STALE_NAN_BITS;
    ok(all_stale, "stale markers carry bits 0x7ff0000000000002");
    ok(ts_of(wr, "k6_vus") == now + 22 && ts_of(wr, "k6_http_reqs_total") == now + 3 &&
           ts_of(wr, "k6_checks_rate") == now + 2,
       "stale marker after each series' last sample (%lld %lld %lld)",
       (long long)ts_of(wr, "k6_vus"), (long long)ts_of(wr, "k6_http_reqs_total"),
       (long long)ts_of(wr, "k6_checks_rate"));
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    ok(rw_encoder_nseries(e) == 5 && rw_encoder_dropped(e) == 0, "5 series remembered");

    rw_encoder_free(e);
    /* A configured test_type wins over the scenario tag. */
    c.test_type = "smoke";
    e = rw_encoder_new(&c, err, sizeof(err));
    rw_encode(e, m, now, RW_CHANGED, &b);
    wr = decode(&b);
    ts = find(wr, "k6_http_reqs_total");
    ok(ts && strcmp(label(ts, "test_type"), "smoke") == 0, "configured test_type wins");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    rw_encoder_free(e);

    c.metrics.rw.trend_stats = "p(99.9),count,sum,avg,med";
    e = rw_encoder_new(&c, err, sizeof(err));
    rw_encode(e, m, now, RW_CHANGED, &b);
    wr = decode(&b);
    ok(near(value_of(wr, "k6_http_req_duration_p999"), hist_percentile(h, 99.9) / 1e6),
       "p999 series");
    ok(value_of(wr, "k6_http_req_duration_count") == 100, "count is a number, not seconds");
    ok(near(value_of(wr, "k6_http_req_duration_sum"), 5.05), "sum in seconds (%g)",
       value_of(wr, "k6_http_req_duration_sum"));
    ok(near(value_of(wr, "k6_http_req_duration_avg"), 0.0505), "avg in seconds");
    ok(near(value_of(wr, "k6_http_req_duration_med"), hist_percentile(h, 50) / 1e6),
       "med in seconds");
    ok(!find(wr, "k6_http_req_duration_p95"), "only the configured stats");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    rw_encoder_free(e);

    c.metrics.rw.trend_stats = "p(95),bogus";
    err[0] = '\0';
    e = rw_encoder_new(&c, err, sizeof(err));
    ok(e == NULL && strstr(err, "bogus"), "bad trend stats refused (%s)", err);
    metrics_free(m);
}

/* Expand spans + deltas into (index, count) pairs. */
static size_t expand(const Prometheus__Histogram *hg, int32_t *idx, int64_t *cnt, size_t max)
{
    size_t n = 0, d = 0;
    int32_t at = 0;
    int64_t c = 0;
    for (size_t s = 0; s < hg->n_positive_spans; s++) {
        at += hg->positive_spans[s]->offset;
        for (uint32_t k = 0; k < hg->positive_spans[s]->length; k++) {
            if (d >= hg->n_positive_deltas || n >= max)
                return (size_t)-1;
            c += hg->positive_deltas[d++];
            idx[n] = at++;
            cnt[n++] = c;
        }
    }
    return d == hg->n_positive_deltas ? n : (size_t)-1;
}

static void test_phase(void)
{
    struct config c = base_config();
    char err[256];
    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    struct metrics *m = metrics_new();
    struct tagset none = {0};
    struct series *vus = metrics_series(m, M_VUS, &none);
    struct tagset t = http_tags("200");
    struct series *reqs = metrics_series(m, M_HTTP_REQS, &t);
    series_set(vus, 1);
    series_add(reqs, 1);
    struct rw_batch b = {0};
    int64_t now = 1700000000000;

    ok(rw_encoder_set_test_type(e, "smoke") == 0, "phase set");
    rw_encode(e, m, now, RW_CHANGED, &b);
    Prometheus__WriteRequest *wr = decode(&b);
    const Prometheus__TimeSeries *ts = find(wr, "k6_vus");
    ok(ts && label(ts, "test_type") && strcmp(label(ts, "test_type"), "smoke") == 0,
       "gauge without scenario takes the phase as test_type");
    ts = find(wr, "k6_http_reqs_total");
    ok(ts && strcmp(label(ts, "test_type"), "load") == 0, "a scenario tag still wins");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    rw_encoder_set_test_type(e, "load");
    series_set(vus, 2);
    series_add(reqs, 1);
    rw_encode(e, m, now, RW_CHANGED, &b);
    wr = decode(&b);
    ts = find(wr, "k6_vus");
    ok(ts && strcmp(label(ts, "test_type"), "load") == 0 && ts->samples[0]->value == 2 &&
           ts->samples[0]->timestamp == now,
       "next phase: a new k6_vus series with test_type=load (its own timestamps)");
    ts = find(wr, "k6_http_reqs_total");
    ok(ts && ts->samples[0]->timestamp == now + 1, "tagged series unaffected by the phase");
    ok(rw_encoder_nseries(e) == 3, "both phases' gauges remembered (%zu)", rw_encoder_nseries(e));
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    rw_encode_stale(e, now, &b);
    wr = decode(&b);
    int nvus = 0;
    for (size_t i = 0; wr && i < wr->n_timeseries; i++)
        nvus += strcmp(label(wr->timeseries[i], "__name__"), "k6_vus") == 0;
    ok(nvus == 2, "stale markers for the gauge of both phases (%d)", nvus);
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    rw_encoder_free(e);
    metrics_free(m);
}

static void test_native(void)
{
    struct config c = base_config();
    c.metrics.rw.native_histogram = true;
    char err[256];
    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    struct metrics *m = metrics_new();
    struct tagset t = http_tags("200");
    struct series *dur = metrics_series(m, M_HTTP_REQ_DURATION, &t);
    struct series *reqs = metrics_series(m, M_HTTP_REQS, &t);
    series_add(reqs, 1);

    /* Exact below 2048 us; larger ones chosen away from bucket edges (checked). */
    int64_t vals[] = {0,    0,    1,    3,    7,     7,      100,    101,    1500,
                      2000, 5000, 5000, 5000, 47000, 120000, 120000, 900000, 3000000};
    size_t nv = sizeof(vals) / sizeof(vals[0]);
    int32_t ridx[64];
    int64_t rcnt[64];
    size_t rn = 0;
    uint64_t rzero = 0;
    double rsum = 0;
    bool away = true;
    for (size_t i = 0; i < nv; i++) {
        series_trend(dur, vals[i]);
        rsum += vals[i] / 1e6;
        if (vals[i] == 0) {
            rzero++;
            continue;
        }
        int32_t k = ref_index(vals[i] / 1e6);
        if (vals[i] >= 2048) /* inexact source buckets: must not straddle an edge */
            away = away && ref_index(vals[i] * 1.002 / 1e6) == k &&
                   ref_index(vals[i] * 0.998 / 1e6) == k;
        size_t j = 0;
        while (j < rn && ridx[j] != k)
            j++;
        if (j == rn) {
            ridx[rn] = k;
            rcnt[rn++] = 0;
        }
        rcnt[j]++;
    }
    ok(away, "test values sit away from bucket edges");

    struct rw_batch b = {0};
    int64_t now = 1700000000000;
    ok(rw_encode(e, m, now, RW_CHANGED, &b) == 0, "encode with native histograms");
    Prometheus__WriteRequest *wr = decode(&b);
    ok(wr && wr->n_timeseries == 2, "one histogram series plus the counter");
    ok(!find(wr, "k6_http_req_duration_p95"), "no stat series in native mode");
    const Prometheus__TimeSeries *ts = find(wr, "k6_http_req_duration_seconds");
    ok(ts && ts->n_samples == 0 && ts->n_histograms == 1, "k6_http_req_duration_seconds: "
                                                          "one histogram, no float sample");
    ok(ts && labels_valid(ts) && strcmp(label(ts, "testid"), "t1") == 0, "histogram labels");
    const Prometheus__Histogram *hg = ts && ts->n_histograms ? ts->histograms[0] : NULL;
    ok(hg && hg->schema == 3, "schema 3");
    ok(hg && hg->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT && hg->count_int == nv,
       "integer count %llu", hg ? (unsigned long long)hg->count_int : 0ull);
    ok(hg && hg->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT &&
           hg->zero_count_int == rzero,
       "zero bucket holds the 0 values");
    ok(hg && hg->zero_threshold > 0 && hg->zero_threshold < 1e-30, "tiny zero threshold");
    ok(hg && near(hg->sum, rsum), "sum in seconds (%g vs %g)", hg ? hg->sum : 0, rsum);
    ok(hg && hg->timestamp == now, "histogram timestamp");
    ok(hg && hg->n_negative_spans == 0 && hg->n_positive_counts == 0, "positive integer buckets");

    int32_t idx[256];
    int64_t cnt[256];
    size_t n = hg ? expand(hg, idx, cnt, 256) : (size_t)-1;
    /* Compare non-empty buckets; spans never pad with zeros, so all are non-empty. */
    bool match = n == rn;
    for (size_t i = 0; match && i < n; i++)
        match = idx[i] == ridx[i] && cnt[i] == rcnt[i];
    ok(match, "buckets, spans and deltas match the reference (%zu vs %zu buckets)", n, rn);
    bool gaps = true;
    for (size_t s = 1; hg && s < hg->n_positive_spans; s++)
        gaps = gaps && hg->positive_spans[s]->offset > 0;
    ok(hg && hg->n_positive_spans >= 2 && gaps, "separate spans with positive gaps (%zu spans)",
       hg ? hg->n_positive_spans : 0);
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    /* Cumulative: the next histogram includes the earlier samples. */
    series_trend(dur, 5000);
    rw_encode(e, m, now, RW_CHANGED, &b);
    wr = decode(&b);
    ts = find(wr, "k6_http_req_duration_seconds");
    hg = ts && ts->n_histograms ? ts->histograms[0] : NULL;
    ok(wr && wr->n_timeseries == 1 && hg && hg->count_int == nv + 1 && hg->timestamp == now + 1,
       "changed histogram only, cumulative, timestamp bumped");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    rw_encode_stale(e, now, &b);
    wr = decode(&b);
    ts = find(wr, "k6_http_req_duration_seconds");
    ok(ts && ts->n_samples == 1 && bits(ts->samples[0]->value) == RW_STALE_NAN_BITS &&
           ts->samples[0]->timestamp == now + 2,
       "histogram series gets a stale marker");
    prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);

    rw_encoder_free(e);
    metrics_free(m);
}

/* Syncgate's own series: common labels, own labels, static labels; not remembered, never staled. */
static void test_info(void)
{
    struct config c = base_config();
    char err[128];
    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    struct rw_info items[2];
    memset(items, 0, sizeof(items));
    items[0].name = "syncgate_run_info";
    tagset_set(&items[0].labels, "scenario", "load");
    tagset_set(&items[0].labels, "result", "passed");
    tagset_set(&items[0].labels, "history", "true");
    tagset_set(&items[0].labels, "team", "mine"); /* the static label's name: this one wins */
    items[0].value = 1700000000.5;
    items[1].name = "syncgate_threshold_observed";
    tagset_set(&items[1].labels, "scenario", "load");
    tagset_set(&items[1].labels, "metric", "http_req_duration{name:product}");
    tagset_set(&items[1].labels, "stat", "p(95)");
    items[1].value = 12.5;

    struct rw_batch b;
    ok(rw_encode_info(e, items, 0, 1000, &b) == 0 && b.len == 0, "no items: empty body");
    int rc = rw_encode_info(e, items, 2, 1000, &b);
    Prometheus__WriteRequest *wr = rc == 0 ? decode(&b) : NULL;
    const Prometheus__TimeSeries *ri = find(wr, "syncgate_run_info");
    const Prometheus__TimeSeries *ob = find(wr, "syncgate_threshold_observed");
    ok(wr && wr->n_timeseries == 2 && ri && ob, "two series encoded (rc %d)", rc);
    ok(ri && labels_valid(ri) && !strcmp(label(ri, "testid"), "t1") &&
           !strcmp(label(ri, "instance"), "host-1") &&
           !strcmp(label(ri, "environment"), "staging") &&
           !strcmp(label(ri, "test_type"), "load") && !strcmp(label(ri, "scenario"), "load") &&
           !strcmp(label(ri, "result"), "passed") && !strcmp(label(ri, "history"), "true") &&
           !strcmp(label(ri, "team"), "mine") && !strcmp(label(ri, "bad_name_x"), "v"),
       "run info: common, own and static labels, test_type from the scenario");
    ok(ri && ri->n_samples == 1 && ri->samples[0]->value == 1700000000.5 &&
           ri->samples[0]->timestamp == 1000,
       "run info value and timestamp");
    ok(ob && !strcmp(label(ob, "metric"), "http_req_duration{name:product}") &&
           !strcmp(label(ob, "stat"), "p(95)") && value_of(wr, "syncgate_threshold_observed") == 12.5,
       "observed: metric key and stat as labels, the value as is");
    if (wr)
        prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    ok(rw_encoder_nseries(e) == 0, "info series are not remembered");
    ok(rw_encode_stale(e, 2000, &b) == 0 && b.len == 0, "so they get no stale markers");
    rw_encoder_free(e);

    /* A configured test_type wins over the scenario. */
    c.test_type = "nightly";
    e = rw_encoder_new(&c, err, sizeof(err));
    rc = rw_encode_info(e, items, 1, 1000, &b);
    wr = rc == 0 ? decode(&b) : NULL;
    ri = find(wr, "syncgate_run_info");
    ok(ri && !strcmp(label(ri, "test_type"), "nightly"), "configured test_type wins");
    if (wr)
        prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    rw_encoder_free(e);
}

/*
 * Every label syncgate puts on a series is a reserved name, so a static label can
 * never collide with one: record what the HTTP recorder makes of a success, a
 * failure by status and failures by kind (the tags smoke and load set on top:
 * name, method, scenario, check), encode without static labels, and look at
 * every label name that comes out.
 */
static void test_reserved_labels(void)
{
    struct config c;
    memset(&c, 0, sizeof(c));
    c.testid = "t1";
    c.instance = "host-1";
    c.environment = "staging";
    char err[256];
    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    struct metrics *m = metrics_new();
    struct tagset base = {0};
    tagset_set(&base, "name", "product");
    tagset_set(&base, "method", "GET");
    tagset_set(&base, "scenario", "load");
    const struct http_result results[] = {
        {.status = 200, .duration = 1000, .proto = CURL_HTTP_VERSION_1_1},
        {.status = 503, .duration = 1000, .proto = CURL_HTTP_VERSION_1_1},
        {.status = 0, .error = HTTP_ERR_REFUSED},
        {.status = 0, .error = HTTP_ERR_TIMEOUT},
        {.status = 200, .error = HTTP_ERR_PROTOCOL},
    };
    struct http_statuses st = {0};
    for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
        http_record(m, &base, &st, &results[i], 200);
    struct tagset ct = {0};
    tagset_set(&ct, "check", "product status 200");
    tagset_set(&ct, "name", "product");
    tagset_set(&ct, "scenario", "smoke");
    series_rate(metrics_series(m, M_CHECKS, &ct), true);
    series_set(metrics_series(m, M_VUS, NULL), 1);

    bool tags_ok = true;
    for (const struct series *s = metrics_first(m); s; s = s->next)
        for (unsigned i = 0; i < s->tags.n; i++)
            if (!metrics_tag_reserved(s->tags.t[i].key)) {
                printf("# tag %s of a recorded series is not reserved\n", s->tags.t[i].key);
                tags_ok = false;
            }
    ok(tags_ok, "every tag the recorders set is in metrics_reserved_tags");

    struct rw_batch b = {0};
    Prometheus__WriteRequest *wr =
        e && rw_encode(e, m, 1700000000000, RW_CHANGED, &b) == 0 ? decode(&b) : NULL;
    bool labels_ok = wr != NULL && wr->n_timeseries > 0;
    for (size_t i = 0; wr && i < wr->n_timeseries; i++)
        for (size_t k = 0; k < wr->timeseries[i]->n_labels; k++)
            if (!metrics_tag_reserved(wr->timeseries[i]->labels[k]->name)) {
                printf("# label %s of a pushed series is not reserved\n",
                     wr->timeseries[i]->labels[k]->name);
                labels_ok = false;
            }
    ok(labels_ok, "every label pushed without static labels is reserved (%zu series)",
       wr ? wr->n_timeseries : 0);
    ok(metrics_tag_reserved("error_code") && metrics_tag_reserved("proto") &&
           metrics_tag_reserved("__anything") && !metrics_tag_reserved("team") &&
           !metrics_tag_reserved("flow"),
       "error_code, proto and __ names reserved; team and flow (user tags) are not");
    if (wr)
        prometheus__write_request__free_unpacked(wr, NULL);
    rw_batch_clear(&b);
    metrics_free(m);
    rw_encoder_free(e);
}

int main(void)
{
    test_info();
    test_stats();
    test_label_text();
    test_hist_index();
    test_encode();
    test_phase();
    test_native();
    test_reserved_labels();
    return tap_done();
}
