/*
 * Fuzz target: what a distributed run's coordinator reads from its peers, a Report
 * (snapshot.h), and what it does with one. Whatever the bytes: snapshot_read and
 * snapshot_decode agree on accepting them; an accepted report decodes into a registry
 * whose every histogram is whole (its count what its percentiles walk over) and whose
 * rates hold no more passes than samples, merges into a view and re-encodes; decoding
 * the re-encoded report gives the same registry again; nothing leaks (ASan) or reads past
 * the input.
 */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "syncgate/hist.h"
#include "syncgate/metrics.h"
#include "syncgate/snapshot.h"

static void check_registry(const struct metrics *m)
{
    for (const struct series *s = metrics_first(m); s; s = s->next) {
        const struct metric_def *d = metric_def(s->id);
        FUZZ_CHECK(d != NULL, "a series of no metric");
        if (d->type == METRIC_RATE)
            FUZZ_CHECK(s->v.rate.pass <= s->v.rate.total, "more passes than samples");
        if (d->type == METRIC_TREND) {
            uint64_t n = 0, c;
            for (uint32_t i = 0; hist_next_index(s->v.trend, &i, &c); i++)
                n += c;
            FUZZ_CHECK(n == hist_count(s->v.trend), "buckets hold %llu of %llu samples",
                       (unsigned long long)n, (unsigned long long)hist_count(s->v.trend));
            double p = hist_percentile(s->v.trend, 99);
            FUZZ_CHECK(!isnan(p), "a percentile that is not a number");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snapshot_meta meta, again;
    struct metrics *m = metrics_new(), *view = metrics_new(), *back = metrics_new();
    if (!m || !view || !back)
        abort();
    int read = snapshot_read(data, size, &meta);
    int rc = snapshot_decode(data, size, m, &again);
    FUZZ_CHECK(rc != -ENOMEM, "out of memory");
    FUZZ_CHECK((read == 0) == (rc == 0), "read says %d, decode %d", read, rc);
    if (rc == 0) {
        FUZZ_CHECK(meta.index == again.index && meta.seq == again.seq &&
                       meta.nscenarios <= CONFIG_MAX_SCENARIOS,
                   "read and decode disagree on the rest");
        check_registry(m);
        FUZZ_CHECK(snapshot_merge(data, size, view) == 0, "an accepted report does not merge");
        uint8_t *buf = NULL;
        size_t len = 0;
        FUZZ_CHECK(snapshot_encode(m, &meta, &buf, &len) == 0, "cannot encode what was decoded");
        FUZZ_CHECK(snapshot_decode(buf, len, back, &again) == 0, "its own encoding is refused");
        FUZZ_CHECK(metrics_nseries(back) == metrics_nseries(m), "series lost on the way back");
        free(buf);
    }
    metrics_free(m);
    metrics_free(view);
    metrics_free(back);
    return 0;
}
