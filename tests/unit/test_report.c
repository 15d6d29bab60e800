/* Unit tests for report: failed requests counted by kind; the three outcomes of thresholds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/http.h"
#include "syncgate/report.h"
#include "tap.h"

/* Record n requests the way http_record does. */
static void record(struct metrics *m, const char *name, int status, enum http_error err,
                   int expect, int n)
{
    struct tagset base = {0};
    struct http_result r = {.status = status, .error = err};
    tagset_set(&base, "name", name);
    tagset_set(&base, "method", "GET");
    tagset_set(&base, "scenario", "load");
    for (int i = 0; i < n; i++)
        http_record(m, &base, &r, expect);
}

static long find(const struct report_error *e, size_t n, const char *kind)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].kind, kind))
            return (long)e[i].count;
    return -1;
}

static void test_kinds(void)
{
    struct metrics *m = metrics_new();
    struct report_error e[REPORT_MAX_ERRORS];

    ok(report_errors(m, e, REPORT_MAX_ERRORS) == 0, "no requests: no errors");
    record(m, "a", 200, HTTP_ERR_NONE, 200, 7);
    ok(report_errors(m, e, REPORT_MAX_ERRORS) == 0, "expected responses are not errors");

    record(m, "a", 503, HTTP_ERR_NONE, 200, 3);
    record(m, "b", 503, HTTP_ERR_NONE, 200, 2); /* another series, same status */
    record(m, "a", 429, HTTP_ERR_NONE, 200, 1);
    record(m, "a", 0, HTTP_ERR_TIMEOUT, 200, 4);
    record(m, "b", 0, HTTP_ERR_RESET, 200, 5);
    record(m, "a", 200, HTTP_ERR_PROTOCOL, 200, 6); /* a status, then a broken body */
    record(m, "b", 0, HTTP_ERR_DNS, 200, 1);
    size_t n = report_errors(m, e, REPORT_MAX_ERRORS);
    ok(n == 6, "six kinds (got %zu)", n);
    ok(find(e, n, "status_503") == 5, "503s of both services add up");
    ok(find(e, n, "status_429") == 1, "429 counted");
    ok(find(e, n, "timeout") == 4 && find(e, n, "reset") == 5 && find(e, n, "dns") == 1,
       "transport failures under their kind");
    ok(find(e, n, "protocol") == 6 && find(e, n, "status_200") == -1,
       "a transport failure after a status counts as the failure, not the status");
    ok(n == 6 && !strcmp(e[0].kind, "dns") && !strcmp(e[1].kind, "reset") &&
           !strcmp(e[2].kind, "timeout") && !strcmp(e[3].kind, "protocol") &&
           !strcmp(e[4].kind, "status_429") && !strcmp(e[5].kind, "status_503"),
       "kinds in http.h order, then statuses ascending");
    ok(report_errors(m, e, 2) == 2 && !strcmp(e[1].kind, "reset"), "max is respected");

    /* expect_status 204: a 200 is a failure */
    record(m, "c", 200, HTTP_ERR_NONE, 204, 2);
    n = report_errors(m, e, REPORT_MAX_ERRORS);
    ok(find(e, n, "status_200") == 2, "an unexpected 200 is status_200");
    metrics_free(m);
}

static void test_many_statuses(void)
{
    struct metrics *m = metrics_new();
    struct report_error e[REPORT_MAX_ERRORS + 8];
    for (int s = 599; s >= 500; s--)
        record(m, "a", s, HTTP_ERR_NONE, 200, 1);
    size_t n = report_errors(m, e, REPORT_MAX_ERRORS + 8);
    ok(n == REPORT_MAX_ERRORS, "a target inventing statuses is capped (%zu)", n);
    int sorted = 1;
    for (size_t i = 1; i < n; i++)
        sorted &= strcmp(e[i - 1].kind, e[i].kind) < 0;
    ok(sorted, "capped statuses still ascending");
    metrics_free(m);
}

/* A config with these load thresholds (YAML flow text). */
static void load_config(struct config *c, const char *thresholds, const char *baseline)
{
    char yaml[1024];
    struct diag d;
    config_init(c);
    snprintf(yaml, sizeof(yaml), "load:\n  thresholds: %s\nbaseline: %s\n", thresholds,
             baseline);
    if (config_apply_profile(c, yaml, strlen(yaml), "t.yaml", &d) != 0)
        printf("# profile: %s %s %s\n", d.where, d.key, d.msg);
}

/* n load requests to service a, each taking ms milliseconds. */
static void record_ms(struct metrics *m, int n, int ms, int status)
{
    struct tagset base = {0};
    struct http_result r = {.status = status, .duration = (int64_t)ms * 1000};
    tagset_set(&base, "name", "a");
    tagset_set(&base, "method", "GET");
    tagset_set(&base, "scenario", "load");
    for (int i = 0; i < n; i++)
        http_record(m, &base, &r, 200);
}

static struct baseline_run one_run = {"r1", 20, 1700000000};

/* A baseline set with one entry per baseline threshold of c, all with this status/value. */
static void baselines_for(struct baseline_set *set, const struct config *c,
                          enum baseline_status st, double value, size_t nruns)
{
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < c->load.thresholds.n; i++) {
        if (!c->load.thresholds.t[i].baseline)
            continue;
        struct baseline *b = &set->items[set->n++];
        b->t = &c->load.thresholds.t[i];
        b->scenario = "load";
        b->status = st;
        b->value = value;
        b->nruns = nruns;
        b->runs = nruns ? &one_run : NULL;
        snprintf(b->error, sizeof(b->error), "%s", st == BASELINE_FAILED ? "Couldn't connect" : "");
    }
}

static const struct verdict_item *item(const struct verdict *v, const char *source)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->items[i].t->source, source))
            return &v->items[i];
    return NULL;
}

static void test_outcomes(void)
{
    struct config c;
    struct metrics *m = metrics_new();
    struct baseline_set set;
    struct verdict v;
    struct sat_report sat = {.measured = true};
    const struct verdict_item *it;

    load_config(&c,
                "{http_req_duration: ['p(95)<500', 'p(95) <= baseline * 1.2'], "
                "http_req_failed: ['rate <= baseline + 0.005'], "
                "'http_req_duration{name:none}': ['p(95)<500']}",
                "{min_count: 50}");
    record_ms(m, 100, 28, 200);
    struct report_ctx ctx = {.cfg = &c, .m = m, .load_ran = true, .elapsed = 1000000,
                             .baselines = &set, .saturation = &sat};

    /* A baseline of 20 ms: 28 ms is 40% slower and fails x1.2; 5% slower passes. */
    baselines_for(&set, &c, BASELINE_FOUND, 20, 1);
    report_verdict(&ctx, &v);
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_FAILED && it->reason == REASON_NONE &&
           fabs(it->limit - 24) < 1e-9 && fabs(it->observed - 28) < 0.05 && it->base &&
           it->samples == 100,
       "40%% slower than the baseline: failed, limit 24 (observed %g)", it ? it->observed : -1);
    ok(v.failed && !v.inconclusive, "the verdict: failed");
    it = item(&v, "p(95)<500");
    ok(it && it->outcome == OUTCOME_PASSED && it->passed && it->limit == 500 && !it->base,
       "a static threshold beside it: passed");
    set.items[0].value = 26.7;
    report_verdict(&ctx, &v);
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_PASSED, "5%% slower: passed");
    it = item(&v, "rate <= baseline + 0.005");
    ok(it && it->outcome == OUTCOME_PASSED && fabs(it->limit - 20.005) < 1e-9,
       "rate against its baseline plus 0.005: passed");

    /* No samples: failed, whatever else. */
    it = item(&v, "p(95)<500");
    for (size_t i = 0; i < v.n; i++)
        if (!strcmp(v.items[i].t->metric_key, "http_req_duration{name:none}"))
            it = &v.items[i];
    ok(it && it->outcome == OUTCOME_FAILED && it->reason == REASON_NO_SAMPLES && isnan(it->observed),
       "a sub-metric with no samples: failed (no samples)");

    /* Baseline read failures: inconclusive, never a pass. */
    baselines_for(&set, &c, BASELINE_FAILED, NAN, 0);
    report_verdict(&ctx, &v);
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_INCONCLUSIVE && it->reason == REASON_BASELINE_ERROR &&
           isnan(it->limit),
       "baseline query failed: inconclusive");
    ctx.baselines = NULL;
    report_verdict(&ctx, &v);
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_INCONCLUSIVE && it->reason == REASON_BASELINE_ERROR,
       "no baselines read at all: inconclusive");
    ctx.baselines = &set;

    /* Missing history: as baseline.missing says. */
    static const struct {
        const char *policy;
        enum outcome want;
    } missing[] = {{"{missing: pass}", OUTCOME_PASSED},
                   {"{missing: fail}", OUTCOME_FAILED},
                   {"{missing: inconclusive}", OUTCOME_INCONCLUSIVE},
                   {"{}", OUTCOME_INCONCLUSIVE}};
    for (size_t k = 0; k < sizeof(missing) / sizeof(missing[0]); k++) {
        struct config c2;
        load_config(&c2, "{http_req_duration: ['p(95) <= baseline * 1.2']}", missing[k].policy);
        baselines_for(&set, &c2, BASELINE_MISSING, NAN, 0);
        ctx.cfg = &c2;
        report_verdict(&ctx, &v);
        ok(v.n == 1 && v.items[0].outcome == missing[k].want &&
               v.items[0].reason == REASON_NO_BASELINE,
           "no baseline yet, baseline %s: %s", missing[k].policy, outcome_name(missing[k].want));
        config_clear(&c2);
    }
    ctx.cfg = &c;

    /* Too few samples for a baseline comparison. */
    struct metrics *few = metrics_new();
    record_ms(few, 10, 28, 200);
    baselines_for(&set, &c, BASELINE_FOUND, 20, 1);
    ctx.m = few;
    report_verdict(&ctx, &v);
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_INCONCLUSIVE && it->reason == REASON_FEW_SAMPLES &&
           it->samples == 10,
       "10 samples under min_count 50: inconclusive");
    it = item(&v, "p(95)<500");
    ok(it && it->outcome == OUTCOME_PASSED, "min_count is for baseline thresholds only");
    ctx.m = m;
    metrics_free(few);

    /* A saturated generator: latency thresholds of load inconclusive, others judged. */
    sat.saturated = true;
    report_verdict(&ctx, &v);
    it = item(&v, "p(95)<500");
    ok(it && it->outcome == OUTCOME_INCONCLUSIVE && it->reason == REASON_SATURATED &&
           it->limit == 500,
       "saturated: a latency threshold is inconclusive");
    it = item(&v, "p(95) <= baseline * 1.2");
    ok(it && it->outcome == OUTCOME_INCONCLUSIVE && it->reason == REASON_SATURATED,
       "saturated: a failing baseline latency threshold too");
    it = item(&v, "rate <= baseline + 0.005");
    ok(it && it->outcome == OUTCOME_PASSED, "saturated: the failure rate is still judged");
    ok(v.inconclusive && v.failed, "saturated verdict: inconclusive, and the no-samples failure stays");
    sat.saturated = false;

    config_clear(&c);
    metrics_free(m);
}

int main(void)
{
    test_outcomes();
    test_kinds();
    test_many_statuses();
    return tap_done();
}
