/* Unit tests for report_html: verdict first, sections, charts, escaping, nothing fetched. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/baseline.h"
#include "syncgate/config.h"
#include "syncgate/http.h"
#include "syncgate/report_html.h"
#include "syncgate/threshold.h"
#include "tap.h"

#define EVIL "<script>alert('x')</script>&\"q\""

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void record_in(struct metrics *m, const char *group, const char *name, int status, int n,
                      int64_t dur)
{
    struct tagset base = {0};
    struct http_result r = {.status = status, .duration = dur};
    if (group)
        tagset_set(&base, "group", group);
    tagset_set(&base, "name", name);
    tagset_set(&base, "method", "GET");
    tagset_set(&base, "scenario", "load");
    struct http_statuses st = {0};
    for (int i = 0; i < n; i++)
        http_record(m, &base, &st, &r, 200);
}

static void record(struct metrics *m, const char *name, int status, int n, int64_t dur)
{
    record_in(m, NULL, name, status, n, dur);
}

static void check(struct metrics *m, const char *group, const char *name, const char *chk,
                  int pass, int fail)
{
    struct tagset t = {0};
    tagset_set(&t, "check", chk);
    tagset_set(&t, "name", name);
    tagset_set(&t, "scenario", "load");
    if (group)
        tagset_set(&t, "group", group);
    struct series *s = metrics_series(m, M_CHECKS, &t);
    for (int i = 0; i < pass + fail; i++)
        series_rate(s, i < pass);
}

static char *render(const struct report_ctx *ctx, const struct verdict *v,
                    const struct report_html_info *info)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc = report_html_write(f, ctx, v, info);
    fclose(f);
    ok(rc == 0 && text && len > 0, "renders (%zu bytes)", len);
    return text;
}

static void test_page(void)
{
    struct config cfg;
    struct threshold th[3];
    char err[200];
    config_init(&cfg);
    free(cfg.environment);
    cfg.environment = strdup("staging");
    free(cfg.testid);
    cfg.testid = strdup("tid-" EVIL);

    struct metrics *m = metrics_new();
    record(m, "product", 200, 90, 12000);
    record(m, "product", 503, 10, 40000);
    record(m, EVIL, 200, 5, 3000);
    record_in(m, "::checkout", "create order", 200, 4, 20000);
    check(m, NULL, "product", "product status 200", 90, 10);
    check(m, "::checkout", "order", "order created", 4, 0);
    check(m, "::checkout", "payment", EVIL, 3, 1);
    check(m, "::browse", "list", "list status 200", 0, 0); /* made ready, never run */

    threshold_parse(&th[0], "http_req_duration", "p(95)<500", err, sizeof(err));
    threshold_parse(&th[1], "http_req_failed", "rate<0.01", err, sizeof(err));
    threshold_parse(&th[2], "http_req_duration", "p(95)<500", err, sizeof(err));
    struct verdict v = {.n = 3, .checks_total = 108, .checks_failed = 11, .failed = true,
                        .inconclusive = true};
    v.items[0] = (struct verdict_item){.t = &th[0], .scenario = "load", .passed = true,
                                       .outcome = OUTCOME_PASSED, .observed = 40.0,
                                       .limit = 500};
    v.items[1] = (struct verdict_item){.t = &th[1], .scenario = "load",
                                       .outcome = OUTCOME_FAILED, .observed = 0.1,
                                       .limit = 0.01};
    /* a baseline threshold without enough history */
    struct baseline base = {.t = &th[2], .scenario = "load", .status = BASELINE_MISSING,
                            .value = NAN, .nruns = 1};
    v.items[2] = (struct verdict_item){.t = &th[2], .scenario = "load",
                                       .outcome = OUTCOME_INCONCLUSIVE,
                                       .reason = REASON_NO_BASELINE, .observed = 41.0,
                                       .limit = NAN, .base = &base};

    struct timeline tl;
    timeline_init(&tl, 600, 1000000);
    for (int i = 0; i < 20; i++) {
        struct timeline_point p = {i * 1000000LL, 1000000, (uint64_t)(5 + i), (uint64_t)(i % 2),
                                   i, i >= 8 && i < 10 ? NAN : 12000.0 + i * 100};
        timeline_add(&tl, &p);
    }
    struct report_ctx ctx = {.cfg = &cfg, .m = m, .load_ran = true, .elapsed = 20000000,
                             .exit_code = 99};
    struct report_html_info info = {"load", 1767225600000000LL, &tl};
    char *html = render(&ctx, &v, &info);

    ok(!strncmp(html, "<!DOCTYPE html>", 15), "an HTML5 document");
    char *verdict = strstr(html, "id=\"verdict\"");
    char *thr = strstr(html, "id=\"thresholds\"");
    ok(verdict && thr && verdict < thr && verdict < strstr(html, "id=\"charts\""),
       "the verdict comes first");
    ok(strstr(html, "class=\"verdict failed\"") && strstr(html, ">FAILED<") &&
           strstr(html, "1 of 3 thresholds failed") && strstr(html, "exit code 99"),
       "verdict FAILED, 1 of 3 thresholds, exit code 99");
    ok(strstr(html, "2026-01-01 00:00:00 UTC") != NULL, "start time in UTC");
    ok(count(html, "<tr class=\"threshold ") == 3 &&
           strstr(html, "<td class=\"n observed\">40 ms</td>") &&
           strstr(html, "<td class=\"n observed\">0.1 (10%)</td>"),
       "thresholds with observed values in their units (ms, ratio)");
    ok(strstr(html, "<td class=\"n limit\">500 ms</td>") &&
           strstr(html, "<td class=\"n limit\">0.01 (1%)</td>"),
       "and the limits they were held to");
    ok(count(html, "class=\"n baseline") == 3 &&
           strstr(html, "<td class=\"n baseline\">not enough history (1 run)</td>"),
       "a baseline cell per threshold; a baseline threshold says what history it had");
    ok(strstr(html, "<tr class=\"threshold inconclusive\"><td class=\"undecided\">? "
                    "inconclusive</td>") &&
           strstr(html, ">no baseline</td>"),
       "an inconclusive threshold is marked ? with its reason");

    ok(count(html, "<figure class=\"chart\"") == 4 && strstr(html, "id=\"chart-rps\"") &&
           strstr(html, "id=\"chart-vus\"") && strstr(html, "id=\"chart-p95\"") &&
           strstr(html, "id=\"chart-errors\""),
       "four charts: requests/s, VUs, p95, errors");
    ok(strstr(html, "id=\"chart-rps\"") &&
           strstr(strstr(html, "id=\"chart-rps\""), "data-points=\"20\""),
       "the requests chart has its 20 points");
    char *p95 = strstr(html, "id=\"chart-p95\"");
    char *p95_end = p95 ? strstr(p95, "</figure>") : NULL;
    size_t lines = 0;
    for (char *q = p95; q && q < p95_end && (q = strstr(q, "<polyline")); q++)
        if (q < p95_end)
            lines++;
    ok(p95 && strstr(p95, "data-points=\"18\"") && lines == 2,
       "p95 without requests leaves a gap: 18 points in 2 lines (got %zu lines)", lines);

    char *checks = strstr(html, "id=\"checks\"");
    ok(checks && strstr(checks, "checkout") && strstr(checks, "<h3>"), "checks section");
    char *j_product = checks ? strstr(checks, "</span> product <span") : NULL;
    char *j_checkout = checks ? strstr(checks, "</span> checkout <span") : NULL;
    ok(j_product && j_checkout && count(html, "<div class=\"journey\">") == 2 &&
           !strstr(html, "::checkout") && !strstr(checks, "browse"),
       "checks grouped by journey: the group tag (::checkout shown as checkout), else the "
       "service (product); a journey that never ran is not shown");
    ok(j_checkout && strstr(j_checkout, "7 of 8 passed"), "the journey's totals (7 of 8)");

    char *lat = strstr(html, "id=\"latency\"");
    ok(lat && count(lat, "<tr class=\"service\">") == 3 && strstr(lat, "<td>product</td>"),
       "a latency row per service and journey step");
    ok(lat && strstr(lat, "<td>checkout › create order</td>"),
       "a journey's step is named with its journey");
    ok(lat && strstr(lat, "10%</td>"), "product: 10%% failed");
    ok(strstr(html, "status_503") != NULL, "failed requests by kind");

    ok(!strstr(html, "<script") && !strstr(html, "alert('x')"),
       "strings from the run are escaped: no script element");
    ok(count(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;q&quot;") >= 3,
       "the hostile name shows escaped (check, service, testid)");
    ok(!strstr(html, "http://") && !strstr(html, "https://") && !strstr(html, "src=") &&
           !strstr(html, "href=") && !strstr(html, "url(") && !strstr(html, "@import"),
       "nothing that a browser would fetch: no URL, src, href, url() or @import");

    free(html);
    for (int i = 0; i < 3; i++)
        threshold_clear(&th[i]);
    timeline_clear(&tl);
    metrics_free(m);
    config_clear(&cfg);
}

static void test_empty_and_outcomes(void)
{
    struct config cfg;
    config_init(&cfg);
    struct metrics *m = metrics_new();
    struct verdict v = {0};
    struct report_ctx ctx = {.cfg = &cfg, .m = m, .elapsed = 0, .exit_code = 105};
    struct report_html_info info = {"smoke", 0, NULL};
    char *html = render(&ctx, &v, &info);
    ok(strstr(html, "class=\"verdict interrupted\"") && strstr(html, ">INTERRUPTED<"),
       "exit 105: INTERRUPTED");
    ok(strstr(html, "No thresholds were judged") && strstr(html, "No samples over time") &&
           strstr(html, "No checks ran") && strstr(html, "No requests were made"),
       "an empty run says so in every section");
    free(html);

    static const struct {
        int code;
        const char *cls, *word;
    } cases[] = {{0, "passed", "PASSED"},    {112, "failed", "NOT READY"},
                 {113, "failed", "UNDELIVERED"}, {116, "failed", "AUTH FAILED"},
                 {114, "inconclusive", "INCONCLUSIVE"},
                 {1, "failed", "ERROR"},
                 {42, "failed", "FAILED"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[64], word[64];
        ctx.exit_code = cases[i].code;
        char *h = render(&ctx, &v, &info);
        snprintf(want, sizeof(want), "class=\"verdict %s\"", cases[i].cls);
        snprintf(word, sizeof(word), ">%s<", cases[i].word);
        ok(strstr(h, want) && strstr(h, word), "exit %d: %s", cases[i].code, cases[i].word);
        free(h);
    }
    metrics_free(m);
    config_clear(&cfg);
}

static void test_escape(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    report_html_escape(f, "a<b>&\"'\x01\x7f\xff\xc3\xa9\t");
    report_html_escape(f, NULL);
    fclose(f);
    ok(!strcmp(text, "a&lt;b&gt;&amp;&quot;&#39;\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\t"),
       "escape: markup characters, control bytes and bad UTF-8 replaced, é and tab kept (%s)",
       text);
    free(text);
}

int main(void)
{
    test_escape();
    test_page();
    test_empty_and_outcomes();
    return tap_done();
}
