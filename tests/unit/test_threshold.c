/* Unit tests for threshold: k6 syntax, validation per metric type, evaluation. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "syncgate/threshold.h"
#include "syncgate/units.h"
#include "tap.h"

static const char *op_text(enum thr_op op)
{
    static const char *const t[] = {"<", "<=", ">", ">=", "==", "!="};
    return t[op];
}

/* Parse must succeed with these fields. */
static void good(const char *key, const char *expr, enum metric_id id, enum thr_agg agg, double pct,
                 enum thr_op op, double bound)
{
    struct threshold t;
    char err[256] = "";
    int rc = threshold_parse(&t, key, expr, err, sizeof(err));
    ok(rc == 0 && t.metric == id && t.agg == agg && (agg != THR_PCT || t.pct == pct) &&
           t.op == op && t.bound == bound && strcmp(t.source, expr) == 0 &&
           strcmp(t.metric_key, key) == 0 && !t.abort_on_fail && t.delay_abort_eval == 0,
       "parse %s: \"%s\" -> agg %d %s %g (rc %d%s%s)", key, expr, agg, op_text(op), bound, rc,
       rc ? ": " : "", err);
    threshold_clear(&t);
}

/* Parse must fail with -EINVAL, an error containing want, and nothing left to free. */
static void bad(const char *key, const char *expr, const char *want)
{
    struct threshold t;
    char err[256] = "";
    memset(&t, 0xa5, sizeof(t));
    int rc = threshold_parse(&t, key, expr, err, sizeof(err));
    ok(rc == -EINVAL && strstr(err, want) && t.metric_key == NULL && t.source == NULL &&
           t.filter.n == 0,
       "reject %s: \"%s\" with \"%s\" (rc %d, err \"%s\")", key, expr, want, rc, err);
}

static void test_parse_good(void)
{
    good("http_req_duration", "p(95)<500", M_HTTP_REQ_DURATION, THR_PCT, 95, THR_LT, 500);
    good("http_req_duration", "p(95) < 500", M_HTTP_REQ_DURATION, THR_PCT, 95, THR_LT, 500);
    good("http_req_duration", "  p(99.9)<1000 ", M_HTTP_REQ_DURATION, THR_PCT, 99.9, THR_LT, 1000);
    good("http_req_duration", "p( 50 )<1", M_HTTP_REQ_DURATION, THR_PCT, 50, THR_LT, 1);
    good("http_req_duration", "p(0)>=0", M_HTTP_REQ_DURATION, THR_PCT, 0, THR_GE, 0);
    good("http_req_duration", "p(100)<=1e3", M_HTTP_REQ_DURATION, THR_PCT, 100, THR_LE, 1000);
    good("http_req_duration", "avg<200", M_HTTP_REQ_DURATION, THR_AVG, 0, THR_LT, 200);
    good("http_req_duration", "med<=100", M_HTTP_REQ_DURATION, THR_MED, 0, THR_LE, 100);
    good("http_req_waiting", "min>-1.5", M_HTTP_REQ_WAITING, THR_MIN, 0, THR_GT, -1.5);
    good("iteration_duration", "max===5", M_ITERATION_DURATION, THR_MAX, 0, THR_EQ, 5);
    good("checks", "rate==1.0", M_CHECKS, THR_RATE, 0, THR_EQ, 1.0);
    good("checks", "rate != 0", M_CHECKS, THR_RATE, 0, THR_NE, 0);
    good("http_req_failed", "rate<0.01", M_HTTP_REQ_FAILED, THR_RATE, 0, THR_LT, 0.01);
    good("http_req_failed", "rate<.5", M_HTTP_REQ_FAILED, THR_RATE, 0, THR_LT, 0.5);
    good("http_reqs", "count>10", M_HTTP_REQS, THR_COUNT, 0, THR_GT, 10);
    good("http_reqs", "rate>=100", M_HTTP_REQS, THR_RATE, 0, THR_GE, 100);
    good("dropped_iterations", "count==0", M_DROPPED_ITERATIONS, THR_COUNT, 0, THR_EQ, 0);
    good("vus", "value>0", M_VUS, THR_VALUE, 0, THR_GT, 0);
    good("vus_max", "value<=50", M_VUS_MAX, THR_VALUE, 0, THR_LE, 50);
    good(" http_req_duration ", "avg<1", M_HTTP_REQ_DURATION, THR_AVG, 0, THR_LT, 1);

    /* Sub-metric keys: tags sorted by key, spaces and quotes stripped. */
    static const struct {
        const char *key;
        unsigned n;
        const char *k0, *v0, *k1, *v1;
    } subs[] = {
        {"http_req_duration{name:product,status:200}", 2, "name", "product", "status", "200"},
        {"http_req_duration{status:200,name:product}", 2, "name", "product", "status", "200"},
        {"http_req_duration{ name : product , status: 200 }", 2, "name", "product", "status",
         "200"},
        {"http_req_duration {name:product}", 1, "name", "product", NULL, NULL},
        {"http_req_duration{name:'product'}", 1, "name", "product", NULL, NULL},
        {"http_req_duration{\"name\":\"product\"}", 1, "name", "product", NULL, NULL},
        {"http_req_duration{name: ' spaced ' }", 1, "name", "spaced", NULL, NULL},
        {"checks{check:product status 200}", 1, "check", "product status 200", NULL, NULL},
        {"http_req_duration{url:http://x:80/a}", 1, "url", "http://x:80/a", NULL, NULL},
        {"http_req_duration{expected_response:true}", 1, "expected_response", "true", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        struct threshold t;
        char err[256] = "";
        const char *expr = strncmp(subs[i].key, "checks", 6) == 0 ? "rate==1" : "p(95)<500";
        int rc = threshold_parse(&t, subs[i].key, expr, err, sizeof(err));
        int match = rc == 0 && t.filter.n == subs[i].n &&
                    strcmp(t.filter.t[0].key, subs[i].k0) == 0 &&
                    strcmp(t.filter.t[0].value, subs[i].v0) == 0 &&
                    (subs[i].n < 2 || (strcmp(t.filter.t[1].key, subs[i].k1) == 0 &&
                                       strcmp(t.filter.t[1].value, subs[i].v1) == 0)) &&
                    strcmp(t.metric_key, subs[i].key) == 0;
        ok(match, "sub-metric key %s (rc %d %s)", subs[i].key, rc, err);
        /* The filter's strings are the threshold's own, not pointers into the key. */
        if (rc == 0)
            ok(t.filter.t[0].key < subs[i].key ||
                   t.filter.t[0].key > subs[i].key + strlen(subs[i].key),
               "filter strings are copies");
        threshold_clear(&t);
    }
    {
        struct threshold t;
        ok(threshold_parse(&t, "http_req_duration{a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8}", "avg<1", NULL,
                           0) == 0 &&
               t.filter.n == 8,
           "eight tags fit (and a NULL err buffer is fine)");
        threshold_clear(&t);
    }
}

static void test_parse_bad(void)
{
    bad("http_req_duraton", "p(95)<500", "unknown metric \"http_req_duraton\"");
    bad("my_custom_metric{a:b}", "avg<1", "unknown metric \"my_custom_metric\"");
    bad("", "avg<1", "empty metric name");
    bad("{name:x}", "avg<1", "empty metric name");

    /* Aggregation must suit the metric type (k6's rules). */
    bad("checks", "p(95)<500", "p(N) is not valid for rate metric checks");
    bad("checks", "count>1", "count is not valid for rate metric checks");
    bad("http_req_failed", "avg<1", "avg is not valid for rate metric http_req_failed");
    bad("http_req_failed", "value<1", "value is not valid for rate metric");
    bad("vus", "avg<5", "avg is not valid for gauge metric vus (use value)");
    bad("vus", "rate<5", "rate is not valid for gauge metric vus");
    bad("vus_max", "count<5", "count is not valid for gauge metric vus_max");
    bad("http_reqs", "value>1",
        "value is not valid for counter metric http_reqs (use count or rate)");
    bad("http_reqs", "p(95)>1", "p(N) is not valid for counter metric http_reqs");
    bad("iterations", "max>1", "max is not valid for counter metric iterations");
    bad("http_req_duration", "rate<1", "rate is not valid for trend metric http_req_duration");
    bad("http_req_duration", "count<1", "count is not valid for trend metric");
    bad("http_req_duration", "value<1", "value is not valid for trend metric");

    /* Expression syntax. */
    bad("http_req_duration", "p95<500", "unknown aggregation \"p95\"");
    bad("http_req_duration", "average<5", "unknown aggregation \"average\"");
    bad("http_req_duration", "<5", "unknown aggregation \"\"");
    bad("http_req_duration", "AVG<5", "unknown aggregation \"AVG\"");
    bad("http_req_duration", "p(101)<1", "percentile \"101\" is not a number from 0 to 100");
    bad("http_req_duration", "p(-1)<1", "percentile \"-1\"");
    bad("http_req_duration", "p(abc)<1", "percentile \"abc\"");
    bad("http_req_duration", "p()<1", "percentile \"\"");
    bad("http_req_duration", "p(95<1", "unknown aggregation \"p(95\"");
    bad("http_req_duration", "avg", "no comparison");
    bad("http_req_duration", "", "no comparison");
    bad("http_req_duration", "avg<", "\"\" is not a number");
    bad("http_req_duration", "avg<abc", "\"abc\" is not a number");
    bad("http_req_duration", "avg<500ms", "\"500ms\" is not a number");
    bad("http_req_duration", "avg<nan", "\"nan\" is not a number");
    bad("http_req_duration", "avg<inf", "\"inf\" is not a number");
    bad("http_req_duration", "avg<0x10", "\"0x10\" is not a number");
    bad("http_req_duration", "avg<1e999", "\"1e999\" is not a number");
    bad("http_req_duration", "avg<1 2", "\"1 2\" is not a number");
    bad("http_req_duration", "avg<<5", "\"<5\" is not a number");
    bad("http_req_duration", "avg<>5", "\">5\" is not a number");
    bad("http_req_duration", "avg=5", "unknown operator");
    bad("http_req_duration", "avg=<5", "unknown operator");
    bad("http_req_duration", "avg!5", "unknown operator");

    /* Sub-metric keys. */
    bad("http_req_duration{name:product", "avg<1", "must end with '}'");
    bad("http_req_duration{name:product}x", "avg<1", "must end with '}'");
    bad("http_req_duration}", "avg<1", "'}' without '{'");
    bad("http_req_duration{}", "avg<1", "empty tag list");
    bad("http_req_duration{ }", "avg<1", "empty tag list");
    bad("http_req_duration{name}", "avg<1", "tag \"name\" is not key:value");
    bad("http_req_duration{name:product,}", "avg<1", "tag \"\" is not key:value");
    bad("http_req_duration{name:}", "avg<1", "tag \"name:\" needs a key and a value");
    bad("http_req_duration{:product}", "avg<1", "needs a key and a value");
    bad("http_req_duration{name:''}", "avg<1", "needs a key and a value");
    bad("http_req_duration{name:'product}", "avg<1", "unbalanced quote");
    bad("http_req_duration{name:product\"}", "avg<1", "unbalanced quote");
    bad("http_req_duration{a:1,a:2}", "avg<1", "tag \"a\" given twice");
    bad("http_req_duration{a:{b}}", "avg<1", "unexpected brace");
    bad("http_req_duration{a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9}", "avg<1", "more than 8 tags");

    {
        char longkey[2048];
        memset(longkey, 'a', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        bad(longkey, "avg<1", "longer than");
    }
    {
        struct threshold t;
        char err[8];
        int rc = threshold_parse(&t, "http_req_duraton", "avg<1", err, sizeof(err));
        ok(rc == -EINVAL && strlen(err) == sizeof(err) - 1, "error text truncated to its buffer");
        ok(threshold_parse(&t, NULL, "avg<1", NULL, 0) == -EINVAL, "NULL key rejected");
    }
}

/* Parse (must work) and evaluate against v. */
static bool eval(const char *key, const char *expr, const struct metric_view *v, int64_t elapsed,
                 double *obs)
{
    struct threshold t;
    char err[256];
    if (threshold_parse(&t, key, expr, err, sizeof(err)) != 0) {
        printf("# parse %s %s: %s\n", key, expr, err);
        *obs = -999;
        return false;
    }
    bool r = threshold_eval(&t, v, elapsed, obs);
    threshold_clear(&t);
    return r;
}

static void expect(const char *key, const char *expr, const struct metric_view *v, int64_t elapsed,
                   bool want, double want_obs, double tol)
{
    double obs = -1;
    bool got = eval(key, expr, v, elapsed, &obs);
    bool obs_ok = isnan(want_obs) ? isnan(obs) : fabs(obs - want_obs) <= tol;
    ok(got == want && obs_ok, "%s %s -> %s, observed %g (got %s, %g)", key, expr,
       want ? "pass" : "fail", want_obs, got ? "pass" : "fail", obs);
}

static void test_eval_trend(void)
{
    struct metric_view v = {.id = M_HTTP_REQ_DURATION, .nseries = 1, .trend = hist_new()};
    const char *k = "http_req_duration";

    /* 1 ms .. 1000 ms in usec: k6 p(95) = 950.05 ms, med 500.5, avg 500.5. */
    for (int i = 1; i <= 1000; i++)
        hist_record(v.trend, i * 1000);

    expect(k, "avg==500.5", &v, 0, true, 500.5, 0);
    expect(k, "avg<500.4", &v, 0, false, 500.5, 0);
    expect(k, "min===1", &v, 0, true, 1, 0);
    expect(k, "max>=1000", &v, 0, true, 1000, 0);
    expect(k, "max>1000", &v, 0, false, 1000, 0);
    expect(k, "med<=501", &v, 0, true, 500.5, 0.5005);
    expect(k, "med<500", &v, 0, false, 500.5, 0.5005);
    expect(k, "p(95)<951", &v, 0, true, 950.05, 0.95);
    expect(k, "p(95)<949", &v, 0, false, 950.05, 0.95);
    expect(k, "p(99.9)<1000", &v, 0, true, 999.001, 1.0);
    expect(k, "p(0)==1", &v, 0, true, 1, 0);
    expect(k, "p(100)==1000", &v, 0, true, 1000, 0);

    /* Every operator, each way, on an exact value (min = 1 ms). */
    static const struct {
        const char *expr;
        bool want;
    } ops[] = {
        {"min<1", false},  {"min<2", true},   {"min<=1", true},  {"min<=0.5", false},
        {"min>1", false},  {"min>0", true},   {"min>=1", true},  {"min>=1.5", false},
        {"min==1", true},  {"min==2", false}, {"min===1", true}, {"min===2", false},
        {"min!=1", false}, {"min!=2", true},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        expect(k, ops[i].expr, &v, 0, ops[i].want, 1, 0);

    /* Milliseconds, not microseconds: 1500 us is 1.5 ms. */
    struct metric_view w = {.id = M_HTTP_REQ_WAITING, .nseries = 1, .trend = hist_new()};
    hist_record(w.trend, 1500);
    expect("http_req_waiting", "max<2", &w, 0, true, 1.5, 0);
    expect("http_req_waiting", "max>1000", &w, 0, false, 1.5, 0);

    /* No samples: fails with NAN, never passes vacuously. */
    hist_reset(w.trend);
    expect("http_req_waiting", "max<1000000", &w, 0, false, NAN, 0);
    expect("http_req_waiting", "p(95)>=0", &w, 0, false, NAN, 0);
    struct metric_view none = {.id = M_HTTP_REQ_WAITING};
    expect("http_req_waiting", "avg>=0", &none, 0, false, NAN, 0);

    /* A view of another metric is not evidence for this one. */
    expect("http_req_waiting", "avg>=0", &v, 0, false, NAN, 0);

    metric_view_clear(&w);
    metric_view_clear(&v);
}

static void test_eval_others(void)
{
    /* Rate metrics: passes / total. */
    struct metric_view c = {.id = M_CHECKS, .nseries = 2, .pass = 99, .total = 100};
    expect("checks", "rate==1.0", &c, 0, false, 0.99, 0);
    expect("checks", "rate>=0.99", &c, 0, true, 0.99, 0);
    c.pass = 100;
    expect("checks", "rate==1.0", &c, 0, true, 1.0, 0);
    struct metric_view f = {.id = M_HTTP_REQ_FAILED, .nseries = 1, .pass = 3, .total = 1000};
    expect("http_req_failed", "rate<0.01", &f, 0, true, 0.003, 1e-15);
    f.pass = 10;
    expect("http_req_failed", "rate<0.01", &f, 0, false, 0.01, 1e-15);
    f.pass = f.total = 0;
    expect("http_req_failed", "rate<0.01", &f, 0, false, NAN, 0);
    expect("http_req_failed", "rate==0", &f, 0, false, NAN, 0);

    /* Counters: count, and rate per second of the run. */
    struct metric_view r = {.id = M_HTTP_REQS, .nseries = 3, .counter = 500};
    expect("http_reqs", "count>10", &r, 0, true, 500, 0);
    expect("http_reqs", "count<500", &r, 0, false, 500, 0);
    expect("http_reqs", "rate>=50", &r, 10 * USEC_PER_SEC, true, 50, 1e-12);
    expect("http_reqs", "rate>50", &r, 10 * USEC_PER_SEC, false, 50, 1e-12);
    expect("http_reqs", "rate==200", &r, 2500 * USEC_PER_MSEC, true, 200, 1e-12);
    expect("http_reqs", "rate>0", &r, 0, false, NAN, 0); /* no run time: no rate */
    struct metric_view r0 = {.id = M_DROPPED_ITERATIONS};
    expect("dropped_iterations", "count==0", &r0, 0, false, NAN, 0);
    expect("dropped_iterations", "count<1", &r0, 5 * USEC_PER_SEC, false, NAN, 0);

    /* Gauges: the last value, once set. */
    struct metric_view g = {.id = M_VUS,
                            .nseries = 1,
                            .gauge_set = true,
                            .gauge_value = 10,
                            .gauge_min = 0,
                            .gauge_max = 20};
    expect("vus", "value>0", &g, 0, true, 10, 0);
    expect("vus", "value>=20", &g, 0, false, 10, 0);
    g.gauge_set = false;
    expect("vus", "value>=0", &g, 0, false, NAN, 0);

    /* observed may be NULL. */
    struct threshold t;
    threshold_parse(&t, "checks", "rate>0.5", NULL, 0);
    ok(threshold_eval(&t, &c, 0, NULL), "observed pointer is optional");
    ok(!threshold_eval(&t, NULL, 0, NULL), "no view fails");
    threshold_clear(&t);
}

/* End to end with the metrics registry: the filter selects the sub-metric's series. */
static void test_submetric_view(void)
{
    struct metrics *m = metrics_new();
    struct tagset prod = {0}, ord = {0};
    tagset_set(&prod, "name", "product");
    tagset_set(&prod, "status", "200");
    tagset_set(&ord, "name", "order");
    tagset_set(&ord, "status", "200");
    struct series *sp = metrics_series(m, M_HTTP_REQ_DURATION, &prod);
    struct series *so = metrics_series(m, M_HTTP_REQ_DURATION, &ord);
    if (!sp || !so) {
        ok(0, "metrics registry available");
        metrics_free(m);
        return;
    }
    for (int i = 0; i < 100; i++) {
        series_trend(sp, 10000);  /* 10 ms */
        series_trend(so, 900000); /* 900 ms */
    }

    static const struct {
        const char *key;
        bool want;
        double obs;
    } cases[] = {
        {"http_req_duration{name:product}", true, 10},
        {"http_req_duration{name:order}", false, 900},
        {"http_req_duration{status:200}", false, 900},
        {"http_req_duration{name:product,status:200}", true, 10},
        {"http_req_duration{name:identity}", false, NAN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct threshold t;
        struct metric_view v;
        double obs = -1;
        int rc = threshold_parse(&t, cases[i].key, "p(95)<500", NULL, 0);
        rc = rc ? rc : metrics_view(m, t.metric, &t.filter, &v);
        bool got = rc == 0 && threshold_eval(&t, &v, 0, &obs);
        double want = cases[i].obs;
        bool obs_ok = isnan(want) ? isnan(obs) : fabs(obs - want) <= want * 1e-3;
        ok(rc == 0 && got == cases[i].want && obs_ok, "%s p(95)<500 -> %s, %g ms (got %g)",
           cases[i].key, cases[i].want ? "pass" : "fail", cases[i].obs, obs);
        if (rc == 0)
            metric_view_clear(&v);
        threshold_clear(&t);
    }
    metrics_free(m);
}

static void test_copy_clear(void)
{
    struct threshold a, b;
    ok(threshold_parse(&a, "http_req_duration{status:200,name:product}", "p(99.9) < 1000", NULL,
                       0) == 0,
       "parse for copy");
    a.abort_on_fail = true;
    a.delay_abort_eval = 2 * USEC_PER_SEC;
    ok(threshold_copy(&b, &a) == 0, "copy");
    ok(b.metric_key != a.metric_key && b.source != a.source &&
           b.filter.t[0].key != a.filter.t[0].key && b.filter.t[1].value != a.filter.t[1].value,
       "copy owns its strings");
    threshold_clear(&a);
    ok(a.metric_key == NULL && a.filter.n == 0, "clear zeroes the struct");
    threshold_clear(&a);
    ok(1, "clear twice is safe");
    ok(strcmp(b.metric_key, "http_req_duration{status:200,name:product}") == 0 &&
           strcmp(b.source, "p(99.9) < 1000") == 0 && b.metric == M_HTTP_REQ_DURATION &&
           b.agg == THR_PCT && b.pct == 99.9 && b.op == THR_LT && b.bound == 1000 &&
           b.abort_on_fail && b.delay_abort_eval == 2 * USEC_PER_SEC && b.filter.n == 2 &&
           strcmp(b.filter.t[0].key, "name") == 0 && strcmp(b.filter.t[0].value, "product") == 0 &&
           strcmp(b.filter.t[1].key, "status") == 0 && strcmp(b.filter.t[1].value, "200") == 0,
       "copy survives the original and keeps every field");
    threshold_clear(&b);

    struct threshold z = {0};
    threshold_clear(&z);
    threshold_clear(NULL);
    ok(z.metric_key == NULL, "clear of a zeroed struct and of NULL are safe");
}

/* Baseline thresholds: parse, the derived limit, and evaluation with it. */
static void test_baseline(void)
{
    static const struct {
        const char *key, *expr;
        enum thr_op op;
        enum thr_base_op bop;
        double operand, base, limit;
    } good_cases[] = {
        {"http_req_duration", "p(95) <= baseline * 1.2", THR_LE, THR_BASE_MUL, 1.2, 100, 120},
        {"http_req_duration", "p(95)<=baseline*1.2", THR_LE, THR_BASE_MUL, 1.2, 100, 120},
        {"http_req_failed", "rate <= baseline + 0.005", THR_LE, THR_BASE_ADD, 0.005, 0.01, 0.015},
        {"http_req_duration", "avg < baseline - 3", THR_LT, THR_BASE_SUB, 3, 10, 7},
        {"http_req_duration", "med < baseline", THR_LT, THR_BASE_NONE, 0, 42, 42},
        {"http_req_duration{name:create order}", "p(99) < baseline * 2", THR_LT, THR_BASE_MUL, 2,
         5, 10},
        {"http_reqs", "rate >= baseline * 0.8", THR_GE, THR_BASE_MUL, 0.8, 100, 80},
        {"checks", "rate >= baseline - 0.01", THR_GE, THR_BASE_SUB, 0.01, 1, 0.99},
    };
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        struct threshold t;
        char err[256] = "";
        int rc = threshold_parse(&t, good_cases[i].key, good_cases[i].expr, err, sizeof(err));
        double lim = rc ? NAN : threshold_limit(&t, good_cases[i].base);
        ok(rc == 0 && t.baseline && t.op == good_cases[i].op && t.base_op == good_cases[i].bop &&
               t.operand == good_cases[i].operand &&
               fabs(lim - good_cases[i].limit) < 1e-12 && isnan(threshold_limit(&t, NAN)),
           "baseline %s \"%s\": limit %g from %g (rc %d %s, got %g)", good_cases[i].key,
           good_cases[i].expr, good_cases[i].limit, good_cases[i].base, rc, err, lim);
        threshold_clear(&t);
    }

    bad("http_req_duration", "p(95) <= baselin * 1.2", "\"baselin * 1.2\" is not a number");
    bad("http_req_duration", "p(95) <= baselines * 1.2", "is not a number");
    bad("http_req_duration", "p(95) <= baseline / 2", "after \"baseline\" expected * N, + N or - N");
    bad("http_req_duration", "p(95) <= baseline * x", "\"x\" after \"baseline *\" is not a number");
    bad("http_req_duration", "p(95) <= baseline *", "\"\" after \"baseline *\" is not a number");
    bad("http_req_duration", "p(95) <= baseline * 0", "factor of baseline must be above 0");
    bad("http_req_duration", "p(95) <= baseline * -1", "factor of baseline must be above 0");
    bad("http_req_duration", "p(95) <= baseline + 1 + 2", "is not a number");
    bad("http_req_duration", "p(95) <= 1.2 * baseline", "\"1.2 * baseline\" is not a number");
    bad("http_req_duration", "baseline <= p(95)", "unknown aggregation \"baseline\"");
    bad("checks", "p(95) <= baseline", "p(N) is not valid for rate metric checks");

    /* A static threshold's limit is its bound whatever the baseline. */
    struct threshold s;
    threshold_parse(&s, "http_req_duration", "p(95)<500", NULL, 0);
    ok(!s.baseline && threshold_limit(&s, 3) == 500 && threshold_limit(&s, NAN) == 500,
       "static threshold: limit is the bound");
    threshold_clear(&s);

    /* Evaluation with a derived limit: 40% slower fails x1.2, 5% slower passes. */
    struct metric_view v = {.id = M_HTTP_REQ_DURATION, .nseries = 1, .trend = hist_new()};
    for (int i = 0; i < 100; i++)
        hist_record(v.trend, 28000); /* 28 ms */
    struct threshold b;
    threshold_parse(&b, "http_req_duration", "p(95) <= baseline * 1.2", NULL, 0);
    double obs = threshold_observe(&b, &v, 0);
    ok(fabs(obs - 28) < 0.03, "observe p(95) = 28 ms (got %g)", obs);
    ok(!threshold_holds(&b, obs, threshold_limit(&b, 20)), "28 ms against baseline 20 x 1.2 fails");
    ok(threshold_holds(&b, obs, threshold_limit(&b, 26.67)), "28 ms against 26.67 x 1.2 passes");
    ok(!threshold_holds(&b, obs, threshold_limit(&b, NAN)), "no baseline never holds");
    ok(!threshold_holds(&b, NAN, 100), "no observation never holds");
    ok(!threshold_eval(&b, &v, 0, &obs) && fabs(obs - 28) < 0.03,
       "threshold_eval of a baseline threshold: false, observed still given");
    ok(threshold_samples(&b, &v) == 100, "samples of a trend: its count");
    struct metric_view f = {.id = M_HTTP_REQ_FAILED, .nseries = 1, .pass = 1, .total = 40};
    struct threshold r;
    threshold_parse(&r, "http_req_failed", "rate <= baseline + 0.005", NULL, 0);
    ok(threshold_samples(&r, &f) == 40, "samples of a rate: its total");
    ok(threshold_samples(&b, &f) == 0, "samples of a view of another metric: 0");
    threshold_clear(&r);
    threshold_clear(&b);
    metric_view_clear(&v);
}

/* Canonical statistic and key names: what the history series are labelled with. */
static void test_names(void)
{
    static const struct {
        const char *key, *expr, *stat, *canon;
    } cases[] = {
        {"http_req_duration", "p(95)<1", "p(95)", "http_req_duration"},
        {"http_req_duration", "p( 99.9 )<1", "p(99.9)", "http_req_duration"},
        {"http_req_duration", "p(95.0)<1", "p(95)", "http_req_duration"},
        {"http_req_duration{ status : 200 , name:'product' }", "avg<1", "avg",
         "http_req_duration{name:product,status:200}"},
        {"http_req_duration {name:create order}", "med<1", "med",
         "http_req_duration{name:create order}"},
        {"http_req_failed", "rate<1", "rate", "http_req_failed"},
        {"http_reqs", "count>1", "count", "http_reqs"},
        {"vus", "value>1", "value", "vus"},
        {"iteration_duration", "max<1", "max", "iteration_duration"},
        {"iteration_duration", "min<1", "min", "iteration_duration"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct threshold t;
        char stat[32] = "", key[256] = "";
        int rc = threshold_parse(&t, cases[i].key, cases[i].expr, NULL, 0);
        int ls = rc ? -1 : threshold_stat(&t, stat, sizeof(stat));
        int lk = rc ? -1 : threshold_key(&t, key, sizeof(key));
        ok(rc == 0 && ls == (int)strlen(cases[i].stat) && !strcmp(stat, cases[i].stat) &&
               lk == (int)strlen(cases[i].canon) && !strcmp(key, cases[i].canon),
           "names of %s %s: %s %s (got %s %s)", cases[i].key, cases[i].expr, cases[i].stat,
           cases[i].canon, stat, key);
        threshold_clear(&t);
    }
    struct threshold t;
    char tiny[8];
    threshold_parse(&t, "http_req_duration{name:product}", "p(99.99)<1", NULL, 0);
    ok(threshold_key(&t, tiny, sizeof(tiny)) == -ENOSPC &&
           threshold_stat(&t, tiny, 4) == -ENOSPC,
       "names that do not fit: -ENOSPC");
    threshold_clear(&t);
}

int main(void)
{
    test_baseline();
    test_names();
    test_parse_good();
    test_parse_bad();
    test_eval_trend();
    test_eval_others();
    test_submetric_view();
    test_copy_clear();
    return tap_done();
}
