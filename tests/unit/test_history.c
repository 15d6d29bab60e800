/* Unit tests for history: PromQL built, answers parsed, aggregates, result series. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "syncgate/history.h"
#include "syncgate/threshold.h"
#include "tap.h"

static const struct kv labels[] = {{"team", "kube\"stock"}, {"bad-name", "v"}, {"result", "x"}};

static struct history_match match(void)
{
    struct history_match m = {
        .environment = "staging",
        .test_type = "load",
        .scenario = "load",
        .labels = labels,
        .nlabels = sizeof(labels) / sizeof(labels[0]),
    };
    return m;
}

static void test_promql(void)
{
    struct history_match m = match();
    char q[HISTORY_MAX_PROMQL];
    int n = history_promql_runs(&m, "http_req_duration{name:product}", "p(95)", 5,
                                30LL * 24 * 3600 * 1000000, NULL, q, sizeof(q));
    const char *want =
        "topk(5, last_over_time(syncgate_run_info{scenario=\"load\",environment=\"staging\","
        "test_type=\"load\",team=\"kube\\\"stock\",bad_name=\"v\",history=\"true\"}[2592000s]) "
        "and on(testid) last_over_time(syncgate_threshold_observed{scenario=\"load\","
        "environment=\"staging\",test_type=\"load\",metric=\"http_req_duration{name:product}\","
        "stat=\"p(95)\"}[2592000s]))";
    if (!ok(n == (int)strlen(want) && !strcmp(q, want), "runs query"))
        printf("# got  %s\n# want %s\n", q, want);

    n = history_promql_values(&m, "http_req_failed", "rate", 3, 3600LL * 1000000, NULL, q,
                              sizeof(q));
    want = "last_over_time(syncgate_threshold_observed{scenario=\"load\",environment=\"staging\","
           "test_type=\"load\",metric=\"http_req_failed\",stat=\"rate\"}[3600s]) and on(testid) "
           "(topk(3, last_over_time(syncgate_run_info{scenario=\"load\",environment=\"staging\","
           "test_type=\"load\",team=\"kube\\\"stock\",bad_name=\"v\",history=\"true\"}[3600s]) "
           "and on(testid) last_over_time(syncgate_threshold_observed{scenario=\"load\","
           "environment=\"staging\",test_type=\"load\",metric=\"http_req_failed\",stat=\"rate\"}"
           "[3600s])))";
    if (!ok(n == (int)strlen(want) && !strcmp(q, want), "values query"))
        printf("# got  %s\n# want %s\n", q, want);

    n = history_promql_runs(&m, "http_req_duration", "avg", 5, 60LL * 1000000, "run\\7", q,
                            sizeof(q));
    want = "last_over_time(syncgate_run_info{scenario=\"load\",testid=\"run\\\\7\"}[60s]) and "
           "on(testid) last_over_time(syncgate_threshold_observed{scenario=\"load\","
           "testid=\"run\\\\7\",metric=\"http_req_duration\",stat=\"avg\"}[60s])";
    if (!ok(n == (int)strlen(want) && !strcmp(q, want),
            "pinned runs query: that testid, any history label"))
        printf("# got  %s\n# want %s\n", q, want);
    n = history_promql_values(&m, "http_req_duration", "avg", 5, 60LL * 1000000, "run\\7", q,
                              sizeof(q));
    ok(n > 0 && strstr(q, "testid=\"run\\\\7\"") && !strstr(q, "history=") && !strstr(q, "topk"),
       "pinned values query (%s)", q);

    ok(history_promql_runs(&m, "http_req_duration", "avg", 5, 60, NULL, q, 40) == -ENOSPC &&
           strlen(q) < 40,
       "a query that does not fit: -ENOSPC, never overrun");
    n = history_promql_runs(&m, "x", "avg", 5, 10, NULL, q, sizeof(q));
    ok(n > 0 && strstr(q, "[1s]"), "an age under a second becomes 1s");
}

static void test_parse(void)
{
    struct history_point p[4];
    char err[200];
    const char *ok_body =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
        "{\"metric\":{\"testid\":\"a\",\"stat\":\"p(95)\"},\"value\":[1700000000.1,\"20.5\"]},"
        "{\"metric\":{\"stat\":\"p(95)\"},\"value\":[1700000000.1,\"1\"]},"
        "{\"metric\":{\"testid\":\"b\"},\"value\":[1700000000.1,\"NaN\"]},"
        "{\"metric\":{\"testid\":\"c\"},\"value\":[1700000000.1,\"1e3\"]},"
        "{\"metric\":{\"testid\":\"d\"},\"value\":[1700000000.1,\"oops\"]}]}}";
    int n = history_parse_vector(ok_body, strlen(ok_body), p, 4, err, sizeof(err));
    ok(n == 3 && !strcmp(p[0].testid, "a") && p[0].value == 20.5 && !strcmp(p[1].testid, "b") &&
           isnan(p[1].value) && !strcmp(p[2].testid, "c") && p[2].value == 1000,
       "vector parsed; series without testid or value skipped (n %d)", n);
    ok(history_parse_vector(ok_body, strlen(ok_body), p, 1, err, sizeof(err)) == 1,
       "at most max points");
    const char *empty =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
    ok(history_parse_vector(empty, strlen(empty), p, 4, err, sizeof(err)) == 0, "empty vector: 0");

    static const struct {
        const char *body, *want;
    } bad[] = {
        {"<html>502 Bad Gateway</html>", "not JSON"},
        {"", "not JSON"},
        {"{\"data\":{}}", "no status"},
        {"{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error at char 3\"}",
         "bad_data: parse error at char 3"},
        {"{\"status\":\"error\",\"errorType\":\"x\",\"error\":\"line\\nbreak\\u001b[31m\"}",
         "x: line\\x0abreak\\x1b[31m"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
         "not an instant vector"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\"}}", "not an instant vector"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        n = history_parse_vector(bad[i].body, strlen(bad[i].body), p, 4, err, sizeof(err));
        ok(n == -EINVAL && strstr(err, bad[i].want),
           "bad answer %zu: -EINVAL \"%s\" (got %d \"%s\")", i, bad[i].want, n, err);
    }
    char longmsg[2000] = "{\"status\":\"error\",\"errorType\":\"e\",\"error\":\"";
    size_t l = strlen(longmsg);
    memset(longmsg + l, 'z', 1500);
    strcpy(longmsg + l + 1500, "\"}");
    n = history_parse_vector(longmsg, strlen(longmsg), p, 4, err, sizeof(err));
    ok(n == -EINVAL && strlen(err) < 160, "a long server message is cut (%zu bytes)", strlen(err));
}

static void test_aggregate(void)
{
    double a[] = {30, 10, 20, 50, 40};
    ok(history_aggregate(BASELINE_MEDIAN, a, 5) == 30, "median of 5");
    double b[] = {4, 1, 3, 2};
    ok(history_aggregate(BASELINE_MEDIAN, b, 4) == 2.5, "median of 4: mean of the middle two");
    double c[] = {1, 2, 6};
    ok(history_aggregate(BASELINE_MEAN, c, 3) == 3, "mean");
    ok(history_aggregate(BASELINE_MIN, c, 3) == 1 && history_aggregate(BASELINE_MAX, c, 3) == 6,
       "min and max");
    double d[] = {7};
    ok(history_aggregate(BASELINE_MEDIAN, d, 1) == 7, "one run: its value");
    ok(isnan(history_aggregate(BASELINE_MEDIAN, d, 0)), "no runs: NAN");
}

static void test_source(void)
{
    static const struct {
        const char *rw, *want;
    } cases[] = {
        {"http://prometheus:9090/api/v1/write", "http://prometheus:9090"},
        {"http://127.0.0.1:9090/api/v1/write/", "http://127.0.0.1:9090"},
        {"https://mimir.example/prometheus/api/v1/write?x=1", "https://mimir.example/prometheus"},
        {"http://vm:8428/api/v1/import/prometheus", "http://vm:8428"},
        {"http://user:pw@prom/api/v1/write", "http://prom"},
        {"http://[::1]:9090/api/v1/write", "http://[::1]:9090"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = history_source(cases[i].rw, buf, sizeof(buf));
        ok(n == (int)strlen(cases[i].want) && !strcmp(buf, cases[i].want),
           "source of %s: %s (got %s)", cases[i].rw, cases[i].want, n >= 0 ? buf : "error");
    }
    ok(history_source("not a url", buf, sizeof(buf)) == -EINVAL, "not a URL: -EINVAL");
    ok(history_source("http://prometheus:9090/api/v1/write", buf, 8) == -ENOSPC,
       "too small: -ENOSPC");
}

static struct threshold thr[4];

static void test_series(void)
{
    threshold_parse(&thr[0], "http_req_duration{ name : product }", "p(95)<500", NULL, 0);
    threshold_parse(&thr[1], "http_req_duration{name:product}", "p(95) <= baseline * 1.2", NULL, 0);
    threshold_parse(&thr[2], "http_req_failed", "rate<0.01", NULL, 0);
    threshold_parse(&thr[3], "checks", "rate==1.0", NULL, 0);
    struct verdict v;
    memset(&v, 0, sizeof(v));
    v.n = 5;
    v.items[0] = (struct verdict_item){
        .t = &thr[0], .scenario = "load", .observed = 12.5, .outcome = OUTCOME_PASSED};
    v.items[1] = (struct verdict_item){.t = &thr[1],
                                       .scenario = "load",
                                       .observed = 12.5,
                                       .outcome = OUTCOME_INCONCLUSIVE,
                                       .reason = REASON_NO_BASELINE};
    v.items[2] = (struct verdict_item){.t = &thr[2],
                                       .scenario = "load",
                                       .observed = NAN,
                                       .outcome = OUTCOME_FAILED,
                                       .reason = REASON_NO_SAMPLES};
    v.items[3] = (struct verdict_item){
        .t = &thr[3], .scenario = "smoke", .observed = 1, .outcome = OUTCOME_PASSED};
    v.items[4] = (struct verdict_item){
        .t = &thr[3], .scenario = "load", .observed = 0.5, .outcome = OUTCOME_PASSED};
    struct history_outcome o = {.result = "failed",
                                .history = false,
                                .revision = "abc123",
                                .finished = 1700000000,
                                .smoke_ran = true,
                                .load_ran = true};
    struct history_series s;
    ok(history_series_build(&s, &v, &o) == 0, "build");
    /* 2 run infos + p(95) once (two thresholds, one statistic) + checks twice (two scenarios) */
    ok(s.n == 5, "five series: a run info per phase, one per distinct statistic (got %zu)", s.n);
    const struct rw_info *ri = &s.items[0], *ri2 = &s.items[1];
    ok(!strcmp(ri->name, "syncgate_run_info") &&
           !strcmp(tagset_get(&ri->labels, "scenario"), "smoke") &&
           !strcmp(tagset_get(&ri2->labels, "scenario"), "load") &&
           !strcmp(tagset_get(&ri->labels, "result"), "failed") &&
           !strcmp(tagset_get(&ri->labels, "history"), "false") &&
           !strcmp(tagset_get(&ri->labels, "revision"), "abc123") && ri->value == 1700000000,
       "run info labels and value");
    const struct rw_info *p95 = &s.items[2];
    ok(!strcmp(p95->name, "syncgate_threshold_observed") &&
           !strcmp(tagset_get(&p95->labels, "metric"), "http_req_duration{name:product}") &&
           !strcmp(tagset_get(&p95->labels, "stat"), "p(95)") && p95->value == 12.5,
       "observed: canonical key, stat, value");
    ok(!strcmp(tagset_get(&s.items[3].labels, "scenario"), "smoke") &&
           !strcmp(tagset_get(&s.items[4].labels, "scenario"), "load") && s.items[4].value == 0.5,
       "one statistic in two scenarios: two series");
    history_series_clear(&s);
    ok(s.n == 0, "clear");

    o.revision = NULL;
    o.smoke_ran = false;
    history_series_build(&s, &v, &o);
    ok(s.n == 4 && !tagset_get(&s.items[0].labels, "revision"),
       "no revision: no label; no smoke: no smoke info");
    history_series_clear(&s);

    /* Eligibility: a missing baseline is fine, anything else that did not pass is not. */
    struct verdict e;
    memset(&e, 0, sizeof(e));
    e.n = 2;
    e.items[0] = v.items[0];
    e.items[1] = v.items[1];
    ok(history_eligible(&e), "passed plus no-baseline: history");
    e.items[1].outcome = OUTCOME_FAILED; /* missing: fail */
    ok(history_eligible(&e), "no baseline under missing: fail is still history");
    e.items[1].reason = REASON_NONE;
    ok(!history_eligible(&e), "a real failure: not history");
    e.items[1].outcome = OUTCOME_INCONCLUSIVE;
    e.items[1].reason = REASON_SATURATED;
    ok(!history_eligible(&e), "saturated: not history");
    e.n = 0;
    ok(history_eligible(&e), "no thresholds: history");
    for (int i = 0; i < 4; i++)
        threshold_clear(&thr[i]);
}

int main(void)
{
    test_promql();
    test_parse();
    test_aggregate();
    test_source();
    test_series();
    return tap_done();
}
