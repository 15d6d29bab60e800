/* Unit tests for digest: the termination message text, its bound, the JSON object, no secrets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/digest.h"
#include "syncgate/http.h"
#include "syncgate/notify.h"
#include "tap.h"

static void setup(struct config *c, const char *extra)
{
    char yaml[8192];
    struct diag d;
    config_init(c);
    snprintf(yaml, sizeof(yaml),
             "environment: staging\ntestid: t-123\nrevision: abc123\n"
             "metrics: {remote_write: {server_url: 'http://prom:9090/api/v1/write', "
             "bearer_token: hunter2-bearer}}\n%s",
             extra);
    if (config_apply_profile(c, yaml, strlen(yaml), "t.yaml", &d) != 0)
        printf("# profile: %s %s %s\n", d.where, d.key, d.msg);
    /* as if read from SYNCGATE_WEBHOOK_URL: a secret that must never show */
    free(c->notify.webhook_url);
    c->notify.webhook_url = strdup("https://hooks.example/T0/B0/hunter2-webhook");
}

static struct baseline_run runs[] = {{"run-a", 20, 3}, {"run-b", 21, 2}, {"run-c", 19, 1}};

static void test_text(void)
{
    struct config c;
    setup(&c, "load: {thresholds: {http_req_duration: ['p(95)<500', 'p(95) <= baseline * 1.2'], "
              "http_req_failed: ['rate<0.01']}}\n");
    struct verdict v;
    memset(&v, 0, sizeof(v));
    v.n = 3;
    v.items[0] = (struct verdict_item){.t = &c.load.thresholds.t[0],
                                       .scenario = "load",
                                       .outcome = OUTCOME_PASSED,
                                       .passed = true,
                                       .observed = 28,
                                       .limit = 500};
    struct baseline b = {.t = &c.load.thresholds.t[1],
                         .scenario = "load",
                         .status = BASELINE_FOUND,
                         .value = 20,
                         .nruns = 3,
                         .runs = runs};
    v.items[1] = (struct verdict_item){.t = &c.load.thresholds.t[1],
                                       .scenario = "load",
                                       .outcome = OUTCOME_FAILED,
                                       .observed = 28.25,
                                       .limit = 24,
                                       .base = &b,
                                       .samples = 900};
    v.items[2] = (struct verdict_item){.t = &c.load.thresholds.t[2],
                                       .scenario = "load",
                                       .outcome = OUTCOME_INCONCLUSIVE,
                                       .reason = REASON_SATURATED,
                                       .observed = 0.001,
                                       .limit = 0.01};
    v.failed = v.inconclusive = true;
    struct sat_report sat = {.measured = true,
                             .saturated = true,
                             .windows = 3,
                             .saturated_windows = 3,
                             .capacity = 1,
                             .cpu_peak = 0.99};
    snprintf(sat.source, sizeof(sat.source), "1 CPU in the affinity mask");
    struct baseline_set set;
    memset(&set, 0, sizeof(set));
    snprintf(set.source, sizeof(set.source), "http://prom:9090/");
    struct report_ctx ctx = {.cfg = &c, .exit_code = 99, .baselines = &set, .saturation = &sat};

    char text[NOTIFY_TERMINATION_MAX + 1];
    size_t n = digest_text(&ctx, &v, text, sizeof(text));
    ok(n == strlen(text) && n > 0 && text[n - 1] == '\n', "whole lines (%zu bytes)", n);
    ok(strstr(text,
              "syncgate failed (exit 99): environment staging, testid t-123, revision abc123") !=
           NULL,
       "first line: result, exit code, environment, testid, revision");
    ok(strstr(text,
              "failed: load http_req_duration p(95) <= baseline * 1.2: observed 28.25ms > limit "
              "24ms = baseline 20ms * 1.2 (median of 3 runs)") != NULL,
       "a failed baseline threshold with observed, limit, baseline and runs");
    ok(strstr(text,
              "inconclusive: load http_req_failed rate<0.01: the load generator was saturated") !=
           NULL,
       "an inconclusive threshold and why");
    ok(!strstr(text, "p(95)<500"), "passed thresholds are not listed");
    ok(strstr(text, "load generator saturated in 3 of 3 s") != NULL, "the saturation watch");
    ok(strstr(text, "baseline: missing: inconclusive") != NULL, "the missing policy");
    ok(strstr(text, "dashboard: Grafana \"KubeStock - K6 Test Metrics\"") && strstr(text, "t-123"),
       "a dashboard hint with the testid");
    ok(!strstr(text, "hunter2"), "no secret in the text");

    /* the dashboard link, {testid} filled in */
    free(c.notify.dashboard_url);
    c.notify.dashboard_url = strdup("https://grafana.example/d/k6?var-testid={testid}&x={testid}");
    char dash[256];
    ok(!strcmp(digest_dashboard(&c, dash, sizeof(dash)),
               "https://grafana.example/d/k6?var-testid=t-123&x=t-123"),
       "dashboard_url with the testid (%s)", dash);

    /* JSON: every threshold with outcome, reason, values and the baseline's runs */
    cJSON *j = digest_json(&ctx, &v);
    char *js = cJSON_PrintUnformatted(j);
    cJSON *th = cJSON_GetObjectItem(j, "thresholds");
    cJSON *t1 = cJSON_GetArrayItem(th, 1), *t2 = cJSON_GetArrayItem(th, 2);
    cJSON *bj = cJSON_GetObjectItem(t1, "baseline");
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(bj, "runs"), 0);
    ok(js && !strcmp(cJSON_GetObjectItem(j, "result")->valuestring, "failed") &&
           cJSON_GetObjectItem(j, "exit_code")->valuedouble == 99 && cJSON_GetArraySize(th) == 3,
       "json: result, exit code, three thresholds");
    ok(t1 && !strcmp(cJSON_GetObjectItem(t1, "outcome")->valuestring, "failed") &&
           cJSON_GetObjectItem(t1, "observed")->valuedouble == 28.25 &&
           cJSON_GetObjectItem(t1, "limit")->valuedouble == 24 &&
           cJSON_GetObjectItem(bj, "value")->valuedouble == 20 &&
           !strcmp(cJSON_GetObjectItem(bj, "status")->valuestring, "found") && r0 &&
           !strcmp(cJSON_GetObjectItem(r0, "testid")->valuestring, "run-a"),
       "json: a baseline threshold with its baseline and runs");
    ok(t2 && !strcmp(cJSON_GetObjectItem(t2, "reason")->valuestring, "generator saturated") &&
           cJSON_GetObjectItem(cJSON_GetObjectItem(j, "saturation"), "saturated")->type ==
               cJSON_True,
       "json: reason and saturation");
    ok(js && !strstr(js, "hunter2"), "no secret in the JSON");
    free(js);
    cJSON_Delete(j);

    /* 4 KiB bound: 60 failing thresholds with long keys do not fit; the text says so */
    struct config big;
    char yaml[16384] = "load:\n  thresholds:\n";
    for (int i = 0; i < 60; i++)
        snprintf(
            yaml + strlen(yaml), sizeof(yaml) - strlen(yaml),
            "    'http_req_duration{name:service-with-a-rather-long-name-%02d}': ['p(99)<1']\n", i);
    setup(&big, yaml);
    struct verdict bv;
    memset(&bv, 0, sizeof(bv));
    bv.n = big.load.thresholds.n;
    for (size_t i = 0; i < bv.n; i++)
        bv.items[i] = (struct verdict_item){.t = &big.load.thresholds.t[i],
                                            .scenario = "load",
                                            .outcome = OUTCOME_FAILED,
                                            .observed = 12.5,
                                            .limit = 1};
    struct report_ctx bctx = {.cfg = &big, .exit_code = 99};
    n = digest_text(&bctx, &bv, text, sizeof(text));
    ok(bv.n == 60 && n <= NOTIFY_TERMINATION_MAX && n == strlen(text),
       "60 failures: %zu bytes, within 4096", n);
    ok(strstr(text, "more lines left out") && text[n - 1] == '\n',
       "the cut is said, on a whole line");
    ok(strstr(text, "syncgate failed (exit 99)") == text, "the first line survives the cut");
    char tiny[64];
    n = digest_text(&bctx, &bv, tiny, sizeof(tiny));
    ok(n < sizeof(tiny) && n == strlen(tiny), "a tiny buffer is never overrun (%zu)", n);
    config_clear(&big);
    config_clear(&c);
}

static void test_results(void)
{
    ok(!strcmp(digest_result(0), "passed") && !strcmp(digest_result(99), "failed") &&
           !strcmp(digest_result(114), "inconclusive") &&
           !strcmp(digest_result(105), "interrupted") && !strcmp(digest_result(112), "not ready") &&
           !strcmp(digest_result(113), "undelivered") &&
           !strcmp(digest_result(116), "auth failed") && !strcmp(digest_result(1), "error"),
       "exit codes named");
}

int main(void)
{
    test_text();
    test_results();
    return tap_done();
}
