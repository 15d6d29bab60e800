/*
 * Fuzz target: threshold expressions. The input's first line is the metric
 * key ("http_req_duration{name:product}"), the rest the expression
 * ("p(95)<500" or "p(95) <= baseline * 1.2"). A parsed threshold must copy,
 * evaluate without samples to a failure (never a vacuous pass), evaluate over
 * samples that match its own filter to a number, never hold against a missing
 * baseline, and name its statistic and key within bounded buffers.
 */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "syncgate/metrics.h"
#include "syncgate/threshold.h"
#include "syncgate/units.h"

static void check_eval(const struct threshold *t, const uint8_t *data, size_t size)
{
    struct metrics *m = metrics_new();
    struct metric_view v;
    double observed = 0;
    if (!m)
        return;
    FUZZ_CHECK(metrics_view(m, t->metric, &t->filter, &v) == 0, "view of an empty registry");
    FUZZ_CHECK(!threshold_eval(t, &v, USEC_PER_SEC, &observed), "passed with no samples: %s",
               t->source);
    FUZZ_CHECK(isnan(observed), "observed %g with no samples", observed);
    metric_view_clear(&v);

    /* A few samples in a series carrying exactly the filter's tags. */
    struct series *s = metrics_series(m, t->metric, &t->filter);
    if (s) {
        for (size_t i = 0; i < 4; i++) {
            int64_t x = size ? data[i % size] * 1000 + (int64_t)i : (int64_t)i;
            switch (metric_def(t->metric)->type) {
            case METRIC_COUNTER:
                series_add(s, (double)x);
                break;
            case METRIC_GAUGE:
                series_set(s, (double)x);
                break;
            case METRIC_RATE:
                series_rate(s, x & 1);
                break;
            case METRIC_TREND:
                series_trend(s, x);
                break;
            }
        }
        FUZZ_CHECK(metrics_view(m, t->metric, &t->filter, &v) == 0, "view");
        FUZZ_CHECK(v.nseries == 1, "filter %s matched %zu series", t->metric_key, v.nseries);
        threshold_eval(t, &v, USEC_PER_SEC, &observed);
        FUZZ_CHECK(!isnan(observed), "observed NaN over samples: %s %s", t->metric_key, t->source);
        metric_view_clear(&v);
    }
    metrics_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    char *nl = strchr(text, '\n');
    const char *key = text, *expr = "";
    if (nl) {
        *nl = '\0';
        expr = nl + 1;
    }

    struct threshold t, copy;
    char err[256];
    memset(&t, 0, sizeof(t));
    err[0] = '\0';
    int rc = threshold_parse(&t, key, expr, err, sizeof(err));
    if (rc == 0) {
        FUZZ_CHECK((int)t.metric >= 0 && t.metric < M_COUNT, "metric %d", (int)t.metric);
        FUZZ_CHECK(t.metric_key && t.source, "strings not kept");
        FUZZ_CHECK(isfinite(t.bound), "bound %g", t.bound);
        FUZZ_CHECK(!t.baseline || (isfinite(t.operand) && isnan(threshold_limit(&t, NAN)) &&
                                   !threshold_holds(&t, 1, threshold_limit(&t, NAN))),
                   "a missing baseline held: %s", t.source);
        FUZZ_CHECK(t.baseline || threshold_limit(&t, NAN) == t.bound, "static limit");
        char stat[32], canon[4096];
        FUZZ_CHECK(threshold_stat(&t, stat, sizeof(stat)) > 0, "statistic name of %s", t.source);
        FUZZ_CHECK(threshold_key(&t, canon, sizeof(canon)) > 0, "canonical key of %s", t.metric_key);
        FUZZ_CHECK(t.agg != THR_PCT || (t.pct >= 0 && t.pct <= 100), "p(%g)", t.pct);
        FUZZ_CHECK(t.filter.n <= TAGS_MAX, "%u tags", t.filter.n);
        FUZZ_CHECK(threshold_copy(&copy, &t) == 0, "copy failed");
        FUZZ_CHECK(copy.metric == t.metric && copy.agg == t.agg && copy.op == t.op &&
                       copy.filter.n == t.filter.n && strcmp(copy.source, t.source) == 0,
                   "copy differs");
        check_eval(&copy, data, size);
        threshold_clear(&copy);
        threshold_clear(&t);
        threshold_clear(&t); /* clearing twice must be safe */
    } else {
        FUZZ_CHECK(rc == -EINVAL, "rc %d", rc);
        FUZZ_CHECK(err[0] != '\0', "refused without a reason: \"%s\" \"%s\"", key, expr);
        /* The reason must fit any buffer: a 1-byte one gets just the terminator. */
        char *tiny = malloc(1);
        if (tiny) {
            memset(&t, 0, sizeof(t));
            FUZZ_CHECK(threshold_parse(&t, key, expr, tiny, 1) == rc && tiny[0] == '\0',
                       "second parse differs");
            free(tiny);
        }
    }
    free(text);
    return 0;
}
