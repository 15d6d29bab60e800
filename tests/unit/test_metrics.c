/* Unit tests for the metrics registry: tag sets, series, merge, views. */
#include <string.h>

#include "syncgate/metrics.h"
#include "tap.h"

static struct tagset tags2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct tagset t = {0};
    tagset_set(&t, k1, v1);
    if (k2)
        tagset_set(&t, k2, v2);
    return t;
}

static void test_tagset(void)
{
    struct tagset t = {0};
    tagset_set(&t, "status", "200");
    tagset_set(&t, "name", "product");
    tagset_set(&t, "method", "GET");
    ok(t.n == 3 && !strcmp(t.t[0].key, "method") && !strcmp(t.t[1].key, "name") &&
           !strcmp(t.t[2].key, "status"),
       "tags are kept sorted by key");
    tagset_set(&t, "status", "500");
    ok(t.n == 3 && !strcmp(tagset_get(&t, "status"), "500"), "setting a key again replaces it");
    ok(tagset_get(&t, "nope") == NULL, "missing key gives NULL");

    struct tagset f = tags2("name", "product", NULL, NULL);
    ok(tagset_matches(&t, &f), "filter {name:product} matches");
    f = tags2("name", "order", NULL, NULL);
    ok(!tagset_matches(&t, &f), "filter {name:order} does not match");
    f = tags2("name", "product", "group", "x");
    ok(!tagset_matches(&t, &f), "filter with a tag the series lacks does not match");
    ok(tagset_matches(&t, NULL), "NULL filter matches everything");

    struct tagset full = {0};
    char keys[TAGS_MAX + 1][8];
    int rc = 0;
    for (int i = 0; i <= TAGS_MAX; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        rc = tagset_set(&full, keys[i], "v");
    }
    ok(rc < 0 && full.n == TAGS_MAX, "a full tag set refuses a new key");
}

static void test_series(void)
{
    struct metrics *m = metrics_new();
    char name[16] = "product";
    struct tagset t = tags2("name", name, "status", "200");
    struct series *a = metrics_series(m, M_HTTP_REQS, &t);
    strcpy(name, "changed"); /* the registry must have copied the strings */
    t = tags2("name", "product", "status", "200");
    struct series *b = metrics_series(m, M_HTTP_REQS, &t);
    ok(a && a == b, "same metric and tags give the same series");
    ok(!strcmp(tagset_get(&a->tags, "name"), "product"), "tag strings are copied");
    struct series *c = metrics_series(m, M_HTTP_REQ_FAILED, &t);
    ok(c && c != a, "another metric with the same tags is another series");
    ok(metrics_nseries(m) == 2, "two series exist");

    series_add(a, 1);
    series_add(a, 2);
    ok(a->v.counter == 3 && a->version == 2, "counter sums and versions count updates");
    series_rate(c, true);
    series_rate(c, false);
    series_rate(c, true);
    ok(c->v.rate.pass == 2 && c->v.rate.total == 3, "rate counts passes and total");

    struct series *g = metrics_series(m, M_VUS, NULL);
    series_set(g, 5);
    series_set(g, 2);
    series_set(g, 7);
    ok(g->v.gauge.value == 7 && g->v.gauge.min == 2 && g->v.gauge.max == 7,
       "gauge keeps last, min and max");

    struct series *d = metrics_series(m, M_HTTP_REQ_DURATION, &t);
    series_trend(d, 1000);
    series_trend(d, 3000);
    ok(hist_count(d->v.trend) == 2 && hist_max(d->v.trend) == 3000, "trend feeds its histogram");

    size_t n = 0;
    for (struct series *s = metrics_first(m); s; s = s->next)
        n++;
    ok(n == metrics_nseries(m), "iteration visits every series once");
    metrics_free(m);
}

static void test_cap(void)
{
    struct metrics *m = metrics_new();
    char v[16];
    struct series *last = NULL;
    int all = 1;
    for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
        snprintf(v, sizeof(v), "%d", i);
        struct tagset t = tags2("status", v, "scenario", "load");
        all &= (last = metrics_series(m, M_HTTP_REQS, &t)) != NULL;
        if (last)
            series_add(last, 1);
    }
    ok(all && metrics_nseries(m) == METRICS_MAX_SERIES + 1 && metrics_dropped(m) == 0 &&
           metrics_grouped(m) == 10,
       "past the cap, new tag sets share one grouped series (%zu series, %llu grouped)",
       metrics_nseries(m), (unsigned long long)metrics_grouped(m));
    ok(last && last->tags.n == 1 && !strcmp(tagset_get(&last->tags, "scenario"), "load") &&
           last->v.counter == 10,
       "the grouped series keeps the scenario and every sample");
    struct tagset t = tags2("status", "5", "scenario", "load");
    struct series *s5 = metrics_series(m, M_HTTP_REQS, &t);
    ok(s5 && s5 != last, "existing series stay reachable at the cap");
    struct metric_view mv;
    struct tagset f = tags2("scenario", "load", NULL, NULL);
    metrics_view(m, M_HTTP_REQS, &f, &mv);
    ok(mv.counter == METRICS_MAX_SERIES + 10, "a phase's total counts every sample (%g)",
       mv.counter);

    /* merging two full registries: the result is whole, never an error */
    struct metrics *other = metrics_new(), *dst = metrics_new();
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(v, sizeof(v), "x%d", i);
        struct tagset u = tags2("status", v, "scenario", "load");
        series_add(metrics_series(other, M_HTTP_REQS, &u), 2);
    }
    int rc1 = metrics_merge(dst, m), rc2 = metrics_merge(dst, other);
    metrics_view(dst, M_HTTP_REQS, &f, &mv);
    ok(rc1 == 0 && rc2 == 0 && mv.counter == METRICS_MAX_SERIES + 10 + 2 * METRICS_MAX_SERIES,
       "merging past the cap keeps every sample (%g)", mv.counter);
    ok(metrics_dropped(dst) == 0 && metrics_nseries(dst) <= METRICS_MAX_SERIES + METRICS_GROUPED_MAX,
       "and stays bounded (%zu series)", metrics_nseries(dst));
    metrics_free(other);
    metrics_free(dst);
    metrics_free(m);
}

static void test_merge_and_view(void)
{
    struct metrics *a = metrics_new(), *b = metrics_new(), *all = metrics_new();
    struct tagset p = tags2("name", "product", "status", "200");
    struct tagset o = tags2("name", "order", "status", "500");

    series_add(metrics_series(a, M_HTTP_REQS, &p), 10);
    series_add(metrics_series(b, M_HTTP_REQS, &p), 5);
    series_add(metrics_series(b, M_HTTP_REQS, &o), 2);
    for (int i = 1; i <= 100; i++)
        series_trend(metrics_series(i % 2 ? a : b, M_HTTP_REQ_DURATION, &p), i * 1000);
    series_rate(metrics_series(a, M_CHECKS, &p), true);
    series_rate(metrics_series(b, M_CHECKS, &o), false);
    series_set(metrics_series(a, M_VUS, NULL), 3);
    series_set(metrics_series(b, M_VUS, NULL), 8);

    ok(metrics_merge(all, a) == 0 && metrics_merge(all, b) == 0, "merge succeeds");
    struct metric_view v;
    metrics_view(all, M_HTTP_REQS, NULL, &v);
    ok(v.counter == 17 && v.nseries == 2, "view over all http_reqs sums to 17 (got %g)", v.counter);
    metric_view_clear(&v);

    struct tagset f = tags2("name", "product", NULL, NULL);
    metrics_view(all, M_HTTP_REQS, &f, &v);
    ok(v.counter == 15, "sub-metric {name:product} sums to 15 (got %g)", v.counter);
    metric_view_clear(&v);

    metrics_view(all, M_HTTP_REQ_DURATION, &f, &v);
    ok(v.trend && hist_count(v.trend) == 100 && hist_min(v.trend) == 1000 &&
           hist_max(v.trend) == 100000,
       "merged trend holds both halves");
    metric_view_clear(&v);

    metrics_view(all, M_CHECKS, NULL, &v);
    ok(v.pass == 1 && v.total == 2, "merged rate: 1 of 2");
    metric_view_clear(&v);

    metrics_view(all, M_VUS, NULL, &v);
    ok(v.gauge_set && v.gauge_value == 8 && v.gauge_min == 3 && v.gauge_max == 8,
       "merged gauge: last value 8, range 3..8");
    metric_view_clear(&v);

    f = tags2("name", "identity", NULL, NULL);
    metrics_view(all, M_HTTP_REQ_DURATION, &f, &v);
    ok(!metric_view_has_samples(&v), "a sub-metric nobody recorded has no samples");
    metric_view_clear(&v);
    metrics_view(all, M_ITERATIONS, NULL, &v);
    ok(!metric_view_has_samples(&v), "a counter never created has no samples");
    metric_view_clear(&v);

    ok(metric_lookup("http_req_duration") == M_HTTP_REQ_DURATION && metric_lookup("nope") < 0,
       "metric_lookup finds k6 names only");
    int sorted = 1;
    for (int i = 1; i < M_COUNT; i++)
        sorted &= strcmp(metric_def(i - 1)->name, metric_def(i)->name) < 0;
    ok(sorted, "metric ids are in name order");

    metrics_free(a);
    metrics_free(b);
    metrics_free(all);
}

int main(void)
{
    test_tagset();
    test_series();
    test_cap();
    test_merge_and_view();
    return tap_done();
}
