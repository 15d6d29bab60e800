/* Unit tests for config (and the doc tree under it): defaults, every profile
 * section, precedence, environment variables, --set, dump and redaction, and
 * bad inputs with the exact where/key/message they must produce. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncgate/config.h"
#include "syncgate/doc.h"
#include "syncgate/units.h"
#include "tap.h"

static char tmpdir[] = "/tmp/syncgate-test-config-XXXXXX";

/* Write text to a file in tmpdir; returns the path (static per name). */
static const char *write_file(const char *name, const char *text, size_t len)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return p;
    fwrite(text, 1, len, f);
    fclose(f);
    return p;
}

static int apply(struct config *c, const char *yaml, struct diag *d)
{
    return config_apply_profile(c, yaml, strlen(yaml), "p.yaml", d);
}

/* Apply yaml on top of defaults; expect failure with where/key/msg substring. */
static void bad(const char *yaml, const char *where, const char *key, const char *msg)
{
    struct config c;
    struct diag d;
    char buf[1400];
    config_init(&c);
    int rc = apply(&c, yaml, &d);
    ok(rc == -EINVAL && !strcmp(d.where, where) && !strcmp(d.key, key) && strstr(d.msg, msg),
       "bad profile -> %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
}

/* Resolve with env/sets; expect failure with where/key/msg substring. */
static void bad_resolve(char *const *envp, const char *set, const char *where, const char *key,
                        const char *msg)
{
    struct config c = {0};
    struct diag d;
    char buf[1400];
    const char *sets[] = {set};
    struct config_cli cli = {.nsets = set ? 1 : 0, .sets = sets};
    int rc = config_resolve(&c, &cli, envp, &d);
    ok(rc == -EINVAL && !strcmp(d.where, where) && !strcmp(d.key, key) && strstr(d.msg, msg),
       "bad input -> %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
}

static void test_defaults(void)
{
    struct config c;
    char host[256] = "";
    ok(config_init(&c) == 0, "config_init");
    gethostname(host, sizeof(host));
    ok(c.nservices == 5, "five default services");
    const char *names[] = {"product", "inventory", "supplier", "order", "identity"};
    const char *paths[] = {"/api/products/health", "/api/inventory/health", "/api/suppliers/health",
                           "/api/orders/health", "/api/identity/health"};
    for (int i = 0; i < 5; i++) {
        char url[128];
        snprintf(url, sizeof(url), "http://%s-service:%d/health", names[i], 3002 + i);
        ok(!strcmp(c.services[i].name, names[i]) && !strcmp(c.services[i].smoke_path, paths[i]) &&
               !strcmp(c.services[i].url, url) && !strcmp(c.services[i].method, "GET") &&
               c.services[i].expect_status == 200 && c.services[i].max_latency == USEC_PER_SEC,
           "default service %s", names[i]);
    }
    ok(!strcmp(c.gateway.consumer_header, "X-Consumer-Username") &&
           !strcmp(c.gateway.consumer, "test-runner") && !strcmp(c.gateway.key_header, "apikey") &&
           !c.gateway.key_file && !c.gateway.key,
       "default consumer header, consumer, key header, no key");
    ok(!strcmp(c.gateway.ready_path, "/health") && c.gateway.ready_timeout == 60 * USEC_PER_SEC &&
           c.gateway.ready_status == 200,
       "default readiness: /health, 60s");
    ok(c.smoke.duration == 5 * USEC_PER_SEC && c.smoke.think_time == USEC_PER_SEC &&
           c.smoke.retries == 2 && c.smoke.request_timeout == 10 * USEC_PER_SEC &&
           c.smoke.iterations == 0,
       "default smoke: 5s, think 1s, 2 retries, 10s timeout");
    ok(c.smoke.thresholds.n == 1 && !strcmp(c.smoke.thresholds.t[0].metric_key, "checks") &&
           !strcmp(c.smoke.thresholds.t[0].source, "rate==1.0"),
       "default smoke threshold checks rate==1.0");
    ok(c.load.nstages == 3 && c.load.stages[0].duration == 30 * USEC_PER_SEC &&
           c.load.stages[0].target == 10 && c.load.stages[1].duration == 60 * USEC_PER_SEC &&
           c.load.stages[1].target == 20 && c.load.stages[2].target == 0,
       "default stages are staging's");
    ok(c.load.thresholds.n == 3 && !strcmp(c.load.thresholds.t[1].source, "p(99)<1000") &&
           !strcmp(c.load.thresholds.t[2].metric_key, "http_req_failed"),
       "default load thresholds");
    ok(c.load.graceful_ramp_down == 10 * USEC_PER_SEC && c.load.think_time == USEC_PER_SEC &&
           c.load.request_timeout == 10 * USEC_PER_SEC,
       "default load timings");
    ok(!c.metrics.rw.server_url && c.metrics.rw.push_interval == 5 * USEC_PER_SEC &&
           !strcmp(c.metrics.rw.trend_stats, "p(95),p(99),min,max") && !c.metrics.require_delivery,
       "default remote write: off, 5s, p(95),p(99),min,max");
    ok(c.testid && strlen(c.testid) == 16 && strspn(c.testid, "0123456789abcdef") == 16,
       "generated testid is 16 hex digits (%s)", c.testid);
    ok(c.instance && !strcmp(c.instance, host), "instance is the host name");
    ok(c.log_format == LOG_FORMAT_AUTO && !c.quiet && !c.summary_export, "default outputs");
    config_clear(&c);
    config_clear(&c); /* twice is safe */
}

static const char full_profile[] =
    "environment: staging\n"
    "test_type: load\n"
    "testid: run-1\n"
    "instance: pod-a\n"
    "gateway:\n"
    "  url: http://kong.example:8000/\n"
    "  consumer_header: X-Who\n"
    "  consumer: gate\n"
    "  key_header: X-Key\n"
    "  ready: {path: /ready, timeout: 2m, status: 204}\n"
    "services:\n"
    "  - name: api-gw\n"
    "    smoke_path: /status\n"
    "    url: https://api.example/health\n"
    "    method: HEAD\n"
    "    expect_status: 204\n"
    "    max_latency: 250ms\n"
    "  - {name: only_smoke, smoke_path: /x, url: null}\n"
    "smoke:\n"
    "  duration: 1m30s\n"
    "  iterations: 3\n"
    "  retries: 0\n"
    "  think_time: 0s\n"
    "  request_timeout: 2s\n"
    "  thresholds: {checks: ['rate>0.9']}\n"
    "load:\n"
    "  stages:\n"
    "    - {duration: 5s, target: 7}\n"
    "    - {duration: 0s, target: 0}\n"
    "  think_time: 100ms\n"
    "  graceful_ramp_down: 3s\n"
    "  request_timeout: 4s\n"
    "  threads: 2\n"
    "  thresholds:\n"
    "    http_req_duration{name:api-gw}: ['p(90)<300']\n"
    "    http_req_failed:\n"
    "      - {threshold: 'rate<0.1', abortOnFail: true, delayAbortEval: 10s}\n"
    "metrics:\n"
    "  labels: {team: kubestock, cluster: eu1}\n"
    "  require_delivery: true\n"
    "  remote_write:\n"
    "    server_url: http://prom:9090/api/v1/write\n"
    "    push_interval: 2s\n"
    "    trend_stats: [p(99.9), avg, count]\n"
    "    trend_as_native_histogram: true\n"
    "    stale_markers: true\n"
    "    insecure_skip_tls_verify: true\n"
    "    username: u\n"
    "    password: pw-secret-1\n"
    "    bearer_token: tok-secret-2\n"
    "    headers: {X-Scope-OrgID: org-secret-3}\n"
    "output:\n"
    "  summary_export: out.json\n"
    "  junit: out.xml\n"
    "  log_format: text\n"
    "  quiet: true\n";

static void test_full_profile(void)
{
    struct config c;
    struct diag d;
    char buf[1400];
    config_init(&c);
    int rc = apply(&c, full_profile, &d);
    ok(rc == 0, "full profile applies (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
    ok(!strcmp(c.environment, "staging") && !strcmp(c.test_type, "load") &&
           !strcmp(c.testid, "run-1") && !strcmp(c.instance, "pod-a"),
       "top-level labels");
    ok(!strcmp(c.gateway.url, "http://kong.example:8000"), "gateway.url loses its trailing '/'");
    ok(!strcmp(c.gateway.consumer_header, "X-Who") && !strcmp(c.gateway.consumer, "gate") &&
           !strcmp(c.gateway.key_header, "X-Key"),
       "gateway headers");
    ok(!strcmp(c.gateway.ready_path, "/ready") && c.gateway.ready_timeout == 120 * USEC_PER_SEC &&
           c.gateway.ready_status == 204,
       "gateway.ready flow mapping");
    ok(c.nservices == 2, "profile services replace the defaults");
    ok(!strcmp(c.services[0].name, "api-gw") && !strcmp(c.services[0].method, "HEAD") &&
           c.services[0].expect_status == 204 && c.services[0].max_latency == 250 * USEC_PER_MSEC &&
           !strcmp(c.services[0].url, "https://api.example/health"),
       "service fields");
    ok(!c.services[1].url && !strcmp(c.services[1].method, "GET") &&
           c.services[1].expect_status == 200,
       "service defaults for unset keys, url null");
    ok(c.smoke.duration == 90 * USEC_PER_SEC && c.smoke.iterations == 3 && c.smoke.retries == 0 &&
           c.smoke.think_time == 0 && c.smoke.request_timeout == 2 * USEC_PER_SEC,
       "smoke section");
    ok(c.smoke.thresholds.n == 1 && !strcmp(c.smoke.thresholds.t[0].source, "rate>0.9"),
       "smoke thresholds replaced");
    ok(c.load.nstages == 2 && c.load.stages[0].target == 7 && c.load.stages[1].duration == 0,
       "load stages");
    ok(c.load.think_time == 100 * USEC_PER_MSEC && c.load.graceful_ramp_down == 3 * USEC_PER_SEC &&
           c.load.request_timeout == 4 * USEC_PER_SEC && c.load.threads == 2,
       "load timings");
    ok(c.load.thresholds.n == 2 &&
           !strcmp(c.load.thresholds.t[0].metric_key, "http_req_duration{name:api-gw}") &&
           !c.load.thresholds.t[0].abort_on_fail,
       "sub-metric threshold");
    ok(c.load.thresholds.t[1].abort_on_fail &&
           c.load.thresholds.t[1].delay_abort_eval == 10 * USEC_PER_SEC &&
           !strcmp(c.load.thresholds.t[1].source, "rate<0.1"),
       "object-form threshold with abortOnFail and delayAbortEval");
    ok(c.metrics.nlabels == 2 && !strcmp(c.metrics.labels[1].key, "cluster") &&
           !strcmp(c.metrics.labels[1].value, "eu1") && c.metrics.require_delivery,
       "labels and require_delivery");
    const struct rw_config *rw = &c.metrics.rw;
    ok(!strcmp(rw->server_url, "http://prom:9090/api/v1/write") &&
           rw->push_interval == 2 * USEC_PER_SEC && !strcmp(rw->trend_stats, "p(99.9),avg,count") &&
           rw->native_histogram && rw->stale_markers && rw->insecure_skip_tls_verify,
       "remote_write section (trend_stats as a YAML list)");
    ok(!strcmp(rw->username, "u") && !strcmp(rw->password, "pw-secret-1") &&
           !strcmp(rw->bearer_token, "tok-secret-2") && rw->nheaders == 1 &&
           !strcmp(rw->headers[0].key, "X-Scope-OrgID"),
       "remote_write credentials and headers");
    ok(!strcmp(c.summary_export, "out.json") && !strcmp(c.junit, "out.xml") &&
           c.log_format == LOG_FORMAT_TEXT && c.quiet,
       "output section");

    /* The dump hides every secret and reads back as the same configuration. */
    size_t need = config_dump(&c, NULL, 0);
    char *text = malloc(need + 1);
    ok(config_dump(&c, text, need + 1) == need && strlen(text) == need, "dump length");
    ok(!strstr(text, "pw-secret-1") && !strstr(text, "tok-secret-2") &&
           !strstr(text, "org-secret-3") && strstr(text, "password: \"<redacted>\"") &&
           strstr(text, "bearer_token: \"<redacted>\"") &&
           strstr(text, "\"X-Scope-OrgID\": \"<redacted>\""),
       "dump redacts password, bearer token and header values");
    char small[32];
    ok(config_dump(&c, small, sizeof(small)) == need && strlen(small) == sizeof(small) - 1,
       "dump into a small buffer truncates and reports the full length");

    struct config c2;
    config_init(&c2);
    rc = config_apply_profile(&c2, text, strlen(text), "dump.yaml", &d);
    ok(rc == 0, "dump reads back as a profile (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
    size_t need2 = config_dump(&c2, NULL, 0);
    char *text2 = malloc(need2 + 1);
    config_dump(&c2, text2, need2 + 1);
    ok(need2 == need && !strcmp(text, text2), "dump of the read-back dump is identical");
    ok(c2.load.thresholds.t[1].abort_on_fail && c2.nservices == 2, "read-back keeps structure");
    free(text);
    free(text2);
    config_clear(&c2);
    config_clear(&c);
}

static void test_precedence(void)
{
    const char *text = "environment: from-profile\n"
                       "gateway: {url: http://profile-gw}\n"
                       "load:\n  think_time: 2s\n"
                       "smoke:\n  duration: 3s\n";
    const char *prof = write_file("prec.yaml", text, strlen(text));

    struct config c = {0};
    struct diag d;
    char buf[1400];
    struct config_cli cli = {.profile = prof};
    char *env0[] = {NULL};
    int rc = config_resolve(&c, &cli, env0, &d);
    ok(rc == 0 && !strcmp(c.environment, "from-profile") &&
           !strcmp(c.gateway.url, "http://profile-gw") && c.load.think_time == 2 * USEC_PER_SEC &&
           c.nservices == 5 && !strcmp(c.profile_path, prof),
       "profile over defaults, sections merge (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");

    char *env1[] = {"ENVIRONMENT=from-env", "GATEWAY_URL=http://env-gw", "UNRELATED=1",
                    "TEST_TYPE=smoke", NULL};
    rc = config_resolve(&c, &cli, env1, &d);
    ok(rc == 0 && !strcmp(c.environment, "from-env") && !strcmp(c.gateway.url, "http://env-gw") &&
           !strcmp(c.test_type, "smoke") && c.smoke.duration == 3 * USEC_PER_SEC,
       "environment over profile");

    const char *sets[] = {"environment=from-set", "gateway.url=http://set-gw",
                          "load.think_time=0s"};
    cli.sets = sets;
    cli.nsets = 3;
    rc = config_resolve(&c, &cli, env1, &d);
    ok(rc == 0 && !strcmp(c.environment, "from-set") && !strcmp(c.gateway.url, "http://set-gw") &&
           c.load.think_time == 0,
       "--set over environment");

    /* The profile may come from SYNCGATE_PROFILE; -p wins over it. */
    char envp_prof[600];
    snprintf(envp_prof, sizeof(envp_prof), "SYNCGATE_PROFILE=%s", prof);
    char *env2[] = {envp_prof, NULL};
    struct config_cli cli2 = {0};
    rc = config_resolve(&c, &cli2, env2, &d);
    ok(rc == 0 && !strcmp(c.environment, "from-profile"), "SYNCGATE_PROFILE names the profile");
    char *env3[] = {"SYNCGATE_PROFILE=/nonexistent/x.yaml", NULL};
    rc = config_resolve(&c, &cli, env3, &d);
    ok(rc == 0, "-p wins over SYNCGATE_PROFILE");

    /* Empty variables count as unset, like the k6 scripts' `|| default`. */
    char *env4[] = {"GATEWAY_URL=", "KONG_CONSUMER_HEADER=", NULL};
    cli.nsets = 0;
    rc = config_resolve(&c, &cli, env4, &d);
    ok(rc == 0 && !strcmp(c.gateway.url, "http://profile-gw") &&
           !strcmp(c.gateway.consumer, "test-runner"),
       "empty environment values are ignored");

    /* Command-line options win over the profile's output section and --set. */
    const char *osets[] = {"output.log_format=text", "output.junit=a.xml"};
    struct config_cli cli3 = {.profile = prof,
                              .summary_export = "s.json",
                              .junit = "j.xml",
                              .log_format = "json",
                              .quiet = true,
                              .nsets = 2,
                              .sets = osets};
    rc = config_resolve(&c, &cli3, env0, &d);
    ok(rc == 0 && !strcmp(c.summary_export, "s.json") && !strcmp(c.junit, "j.xml") &&
           c.log_format == LOG_FORMAT_JSON && c.quiet,
       "command-line options");
    cli3.log_format = "yaml";
    rc = config_resolve(&c, &cli3, env0, &d);
    ok(rc == -EINVAL && !strcmp(d.where, "--log-format") && !strcmp(d.key, "output.log_format") &&
           strstr(d.msg, "allowed: auto, json, text"),
       "bad --log-format -> %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
}

static void test_env(void)
{
    struct config c = {0};
    struct diag d;
    char buf[1400];
    int rc;

    char *env1[] = {"STAGES=[{\"duration\":\"10s\",\"target\":3},{\"duration\":\"1m30s\","
                    "\"target\":8},{\"duration\":\"5s\",\"target\":0}]",
                    "KONG_CONSUMER_HEADER=tester", "TESTID=abc123", NULL};
    rc = config_resolve(&c, NULL, env1, &d);
    ok(rc == 0 && c.load.nstages == 3 && c.load.stages[0].duration == 10 * USEC_PER_SEC &&
           c.load.stages[0].target == 3 && c.load.stages[1].duration == 90 * USEC_PER_SEC &&
           c.load.stages[2].target == 0,
       "STAGES JSON replaces the stages (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
    ok(rc == 0 && !strcmp(c.gateway.consumer, "tester") && !strcmp(c.testid, "abc123"),
       "KONG_CONSUMER_HEADER and TESTID");

    /* --set replaces what STAGES set. */
    const char *sets[] = {"load.stages=[{duration: 1s, target: 2}]"};
    struct config_cli cli = {.nsets = 1, .sets = sets};
    rc = config_resolve(&c, &cli, env1, &d);
    ok(rc == 0 && c.load.nstages == 1 && c.load.stages[0].target == 2 &&
           c.load.stages[0].duration == USEC_PER_SEC,
       "--set load.stages (YAML flow) wins over STAGES");

    char *env2[] = {"PRODUCT_SERVICE_URL=http://p.local:1/h", "ORDER_SERVICE_URL=http://o:2/",
                    NULL};
    rc = config_resolve(&c, NULL, env2, &d);
    ok(rc == 0 && !strcmp(c.services[0].url, "http://p.local:1/h") &&
           !strcmp(c.services[3].url, "http://o:2/") &&
           !strcmp(c.services[1].url, "http://inventory-service:3003/health"),
       "<NAME>_SERVICE_URL overrides that service's url only");

    const char *prof_text = "services:\n  - {name: stock-api, url: 'http://a'}\n";
    const char *prof = write_file("hyphen.yaml", prof_text, strlen(prof_text));
    char *env3[] = {"STOCK_API_SERVICE_URL=http://b", NULL};
    struct config_cli cli2 = {.profile = prof};
    rc = config_resolve(&c, &cli2, env3, &d);
    ok(rc == 0 && c.nservices == 1 && !strcmp(c.services[0].url, "http://b"),
       "service name with '-' maps to '_' in the variable");
    const char *sets2[] = {"services.stock-api.url=http://c", "services[0].expect_status=201"};
    cli2.sets = sets2;
    cli2.nsets = 2;
    rc = config_resolve(&c, &cli2, env3, &d);
    ok(rc == 0 && !strcmp(c.services[0].url, "http://c") && c.services[0].expect_status == 201,
       "--set services.NAME.url and services[0].x");

    char *env4[] = {
        "K6_PROMETHEUS_RW_SERVER_URL=https://prom.example/api/v1/write",
        "K6_PROMETHEUS_RW_PUSH_INTERVAL=250ms",
        "K6_PROMETHEUS_RW_TREND_STATS=p(90), med ,max",
        "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=1",
        "K6_PROMETHEUS_RW_STALE_MARKERS=true",
        "K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY=0",
        "K6_PROMETHEUS_RW_USERNAME=user1",
        "K6_PROMETHEUS_RW_PASSWORD=hunter2-secret",
        "K6_PROMETHEUS_RW_BEARER_TOKEN=bearer-secret",
        "K6_PROMETHEUS_RW_HEADERS_X-Scope-OrgID=tenant-secret",
        "K6_PROMETHEUS_RW_HTTP_HEADERS=X-A: one , x-scope-orgid:lower,X-B:two",
        NULL,
    };
    rc = config_resolve(&c, NULL, env4, &d);
    const struct rw_config *rw = &c.metrics.rw;
    ok(rc == 0, "K6_PROMETHEUS_RW_* resolve (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
    ok(!strcmp(rw->server_url, "https://prom.example/api/v1/write") &&
           rw->push_interval == 250 * USEC_PER_MSEC && !strcmp(rw->trend_stats, "p(90),med,max"),
       "SERVER_URL, PUSH_INTERVAL, TREND_STATS");
    ok(rw->native_histogram && rw->stale_markers && !rw->insecure_skip_tls_verify,
       "booleans from env accept 1/0/true");
    ok(!strcmp(rw->username, "user1") && !strcmp(rw->password, "hunter2-secret") &&
           !strcmp(rw->bearer_token, "bearer-secret"),
       "USERNAME, PASSWORD, BEARER_TOKEN");
    bool h_a = false, h_b = false, h_org = false;
    for (size_t i = 0; i < rw->nheaders; i++) {
        h_a |= !strcmp(rw->headers[i].key, "X-A") && !strcmp(rw->headers[i].value, "one");
        h_b |= !strcmp(rw->headers[i].key, "X-B") && !strcmp(rw->headers[i].value, "two");
        h_org |= !strcmp(rw->headers[i].key, "X-Scope-OrgID") &&
                 !strcmp(rw->headers[i].value, "tenant-secret");
    }
    ok(rw->nheaders == 3 && h_a && h_b && h_org,
       "HTTP_HEADERS pairs, and HEADERS_<Name> wins over them case-insensitively");

    size_t need = config_dump(&c, NULL, 0);
    char *text = malloc(need + 1);
    config_dump(&c, text, need + 1);
    ok(!strstr(text, "hunter2") && !strstr(text, "bearer-secret") &&
           !strstr(text, "tenant-secret") && !strstr(text, "\"one\""),
       "no secret from the environment in the dump");
    free(text);

    /* A key file: read, trailing newline stripped, shown only as redacted. */
    const char *key = write_file("apikey", "s3cr3t-key\r\n", 12);
    char setkey[600];
    snprintf(setkey, sizeof(setkey), "gateway.key_file=%s", key);
    /* gateway.url is a base URL (no query): the remote-write URL carries one here */
    const char *sets3[] = {setkey, "gateway.url=http://u:pa55@gw:8000/",
                           "metrics.remote_write.server_url="
                           "http://rw:9090/write?apikey=k3y&flag&page=2#top"};
    struct config_cli cli3 = {.nsets = 3, .sets = sets3};
    char *env0[] = {NULL};
    rc = config_resolve(&c, &cli3, env0, &d);
    ok(rc == 0 && c.gateway.key && !strcmp(c.gateway.key, "s3cr3t-key") &&
           !strcmp(c.gateway.key_file, key),
       "key_file read, newline stripped");
    need = config_dump(&c, NULL, 0);
    text = malloc(need + 1);
    config_dump(&c, text, need + 1);
    ok(!strstr(text, "s3cr3t") && strstr(text, "# key: <redacted>") && !strstr(text, "pa55") &&
           !strstr(text, "k3y") && strstr(text, "http://u:<redacted>@gw:8000") &&
           strstr(text, "http://rw:9090/write?apikey=<redacted>&flag&page=<redacted>#top"),
       "dump hides the gateway key, a URL password and query values");
    free(text);
    config_clear(&c);
}

static void test_bad(void)
{
    /* YAML level */
    bad("environment: a\nenvironment: b\n", "p.yaml:2:1", "", "duplicate key \"environment\"");
    bad("x: &a [1, 2]\ny: *a\n", "p.yaml:1:4", "", "anchors");
    bad("gateway:\n  url: [1\n", "p.yaml:3:1", "", "invalid YAML");
    bad("- 1\n", "p.yaml:1:1", "", "must be a mapping");
    bad("environment: \"a\xff\"\n", "p.yaml:1:16", "", "UTF-8");
    bad("a: 1\n---\nb: 2\n", "p.yaml:2:1", "", "only one YAML document");
    /* unknown keys at each level */
    bad("gatway: {}\n", "p.yaml:1:1", "gatway", "unknown key \"gatway\"; allowed: environment");
    bad("gateway:\n  ready: {pth: /x}\n", "p.yaml:2:11", "gateway.ready.pth", "allowed: path");
    bad("services:\n  - {name: a, url: 'http://a', port: 1}\n", "p.yaml:2:32", "services[0].port",
        "unknown key");
    bad("metrics:\n  remote_write:\n    pass: x\n", "p.yaml:3:5", "metrics.remote_write.pass",
        "allowed: server_url");
    /* values */
    bad("load:\n  stages:\n    - {duration: 3x, target: 1}\n", "p.yaml:3:18",
        "load.stages[0].duration", "invalid duration \"3x\"");
    bad("load:\n  stages:\n    - {duration: 1s, target: 1}\n    - {duration: 1s, target: "
        "200000}\n",
        "p.yaml:4:30", "load.stages[1].target", "allowed: 0 to 100000");
    bad("load:\n  stages: []\n", "p.yaml:2:11", "load.stages", "at least one stage");
    bad("load:\n  start_vus: 0\n  stages: [{duration: 1s, target: 0}]\n", "p.yaml:3:11",
        "load.stages", "target above 0, or load.start_vus above 0");
    bad("load:\n  start_vus: -1\n", "p.yaml:2:14", "load.start_vus", "allowed: 0 to 100000");
    {
        /* k6 accepts all-0 targets when startVUs (1 by default) is above 0 */
        struct config c;
        struct diag d;
        config_init(&c);
        ok(c.load.start_vus == 1, "start_vus defaults to 1 (k6's stages shortcut)");
        ok(apply(&c, "load:\n  stages: [{duration: 12s, target: 0}]\n", &d) == 0,
           "all-0 targets with start_vus 1: valid, as in k6");
        ok(apply(&c, "load:\n  start_vus: 5\n", &d) == 0 && c.load.start_vus == 5,
           "start_vus from the profile");
        config_clear(&c);
    }
    bad("load:\n  stages: [{target: 1}]\n", "p.yaml:2:12", "load.stages[0].duration", "missing");
    bad("load:\n  think_time: -1s\n", "p.yaml:2:15", "load.think_time", "out of range");
    bad("smoke:\n  request_timeout: 0s\n", "p.yaml:2:20", "smoke.request_timeout",
        "allowed: 1ms to 10m0s");
    bad("services: []\n", "p.yaml:1:11", "services", "at least one service");
    bad("services:\n  - {name: a, url: 'http://a'}\n  - {name: a, url: 'http://b'}\n",
        "p.yaml:3:12", "services[1].name", "duplicate service name \"a\"");
    bad("services:\n  - {name: A, url: 'http://a'}\n", "p.yaml:2:12", "services[0].name",
        "not a service name");
    bad("services:\n  - {name: a, url: 'mailto:x@y'}\n", "p.yaml:2:20", "services[0].url",
        "invalid URL");
    bad("services:\n  - {name: a, url: 'http://a', expect_status: 700}\n", "p.yaml:2:47",
        "services[0].expect_status", "allowed: 100 to 599");
    bad("gateway: {url: 'http://'}\n", "p.yaml:1:16", "gateway.url", "invalid URL");
    /* base URL, URL forms, paths */
    bad("gateway: {url: 'http://gw/?a=1'}\n", "p.yaml:1:16", "gateway.url",
        "a base URL cannot have a query or a fragment");
    bad("gateway: {url: 'http://gw#x'}\n", "p.yaml:1:16", "gateway.url", "query or a fragment");
    bad("gateway: {url: 'http://gw:0'}\n", "p.yaml:1:16", "gateway.url", "port 0");
    bad("gateway: {url: 'http:/gw'}\n", "p.yaml:1:16", "gateway.url", "followed by \"://\"");
    bad("metrics: {remote_write: {server_url: 'https://rw:0/w'}}\n", "p.yaml:1:38",
        "metrics.remote_write.server_url", "port 0");
    {
        static char yaml[CONFIG_MAX_PATH + 64];
        int k = snprintf(yaml, sizeof(yaml), "gateway: {ready: {path: /");
        memset(yaml + k, 'a', CONFIG_MAX_PATH);
        snprintf(yaml + k + CONFIG_MAX_PATH, sizeof(yaml) - (size_t)k - CONFIG_MAX_PATH, "}}\n");
        bad(yaml, "p.yaml:1:25", "gateway.ready.path",
            "path is too long (2048 bytes, at most 2047)");
        yaml[k + CONFIG_MAX_PATH - 1] = '}'; /* exactly CONFIG_MAX_PATH bytes: fine */
        yaml[k + CONFIG_MAX_PATH] = '}';
        yaml[k + CONFIG_MAX_PATH + 1] = '\n';
        yaml[k + CONFIG_MAX_PATH + 2] = '\0';
        struct config c;
        struct diag d;
        config_init(&c);
        ok(apply(&c, yaml, &d) == 0 && strlen(c.gateway.ready_path) == CONFIG_MAX_PATH,
           "a path of exactly CONFIG_MAX_PATH bytes is accepted");
        config_clear(&c);
    }
    /* services, stages, threads */
    {
        /* smoke-only services are valid; load and run refuse them (config_check_load) */
        struct config c;
        struct diag d;
        char buf[1400];
        config_init(&c);
        int rc = config_check_load(&c, &d);
        ok(rc == 0, "defaults have urls: load can run");
        rc = apply(&c, "services:\n  - {name: a, smoke_path: /a}\n", &d);
        ok(rc == 0, "a profile without any url is valid (for smoke)");
        rc = config_check_load(&c, &d);
        ok(rc == -EINVAL && !strcmp(d.where, "p.yaml:2:3") && !strcmp(d.key, "services") &&
               strstr(d.msg, "no service has a url"),
           "but not for load -> %s", diag_format(&d, buf, sizeof(buf)));
        config_clear(&c);
    }
    bad("services:\n  - {name: 1a, url: 'http://a'}\n", "p.yaml:2:12", "services[0].name",
        "not a service name");
    bad("services:\n  - {name: a-b, url: 'http://a'}\n  - {name: a_b, url: 'http://b'}\n",
        "p.yaml:3:12", "services[1].name", "would share the variable A_B_SERVICE_URL");
    bad("load:\n  stages: [{duration: 0s, target: 5}, {duration: 0s, target: 0}]\n", "p.yaml:2:11",
        "load.stages", "every stage lasts 0s");
    bad("load:\n  threads: 257\n", "p.yaml:2:12", "load.threads", "allowed: 0 to 256");
    /* gateway headers */
    bad("gateway: {consumer_header: connection}\n", "p.yaml:1:28", "gateway.consumer_header",
        "set by syncgate itself");
    bad("gateway: {key_header: Transfer-Encoding}\n", "p.yaml:1:23", "gateway.key_header",
        "set by syncgate itself");
    bad("gateway: {key_header: X-Consumer-username}\n", "p.yaml:1:23", "gateway.key_header",
        "is also gateway.consumer_header");
    /* trend stats, label values */
    bad("metrics: {remote_write: {trend_stats: [p(99.9), p(9.99)]}}\n", "p.yaml:1:49",
        "metrics.remote_write.trend_stats", "would both be sent as \"p999\"");
    bad("environment: ' '\n", "p.yaml:1:14", "environment", "must not be blank");
    bad("environment: ' staging'\n", "p.yaml:1:14", "environment", "leading or trailing spaces");
    bad("metrics: {labels: {team: 'a '}}\n", "p.yaml:1:26", "metrics.labels.team",
        "leading or trailing spaces");
    bad("gateway: {consumer_header: 'X:Y'}\n", "p.yaml:1:28", "gateway.consumer_header",
        "invalid header name");
    bad("gateway: {url: {a: 1}}\n", "p.yaml:1:16", "gateway.url", "got a mapping");
    bad("gateway: {key_file: /nonexistent/key}\n", "p.yaml:1:21", "gateway.key_file",
        "cannot read key file");
    bad("smoke: {retries: many}\n", "p.yaml:1:18", "smoke.retries", "expected an integer");
    bad("metrics: {require_delivery: 1}\n", "p.yaml:1:29", "metrics.require_delivery",
        "expected true or false");
    bad("metrics: {labels: {status: x}}\n", "p.yaml:1:20", "metrics.labels.status", "reserved");
    bad("metrics: {labels: {__meta: x}}\n", "p.yaml:1:20", "metrics.labels.__meta", "__");
    bad("metrics: {labels: {9lives: x}}\n", "p.yaml:1:20", "metrics.labels.9lives",
        "invalid label name");
    bad("metrics: {remote_write: {trend_stats: 'p(95),mean'}}\n", "p.yaml:1:39",
        "metrics.remote_write.trend_stats", "invalid trend stat \"mean\"");
    bad("metrics: {remote_write: {headers: {Content-Type: x}}}\n", "p.yaml:1:36",
        "metrics.remote_write.headers.Content-Type", "cannot be overridden");
    bad("load:\n  thresholds:\n    http_req_duration: ['p(95)<500', 'p95 < 1']\n", "p.yaml:3:38",
        "load.thresholds.http_req_duration[1]", "invalid threshold");
    bad("load:\n  thresholds:\n    http_req_duration: 'p(95)<500'\n", "p.yaml:3:24",
        "load.thresholds.http_req_duration", "expected a list of thresholds");
    bad("load:\n  thresholds:\n    http_req_failed: [{threshold: 'rate<0.1', abortOnFail: 1}]\n",
        "p.yaml:3:60", "load.thresholds.http_req_failed[0].abortOnFail", "true or false");
    bad("load:\n  thresholds:\n    http_req_failed: [{threshold: 'rate<0.1', delay: 1s}]\n",
        "p.yaml:3:47", "load.thresholds.http_req_failed[0].delay",
        "allowed: threshold, abortOnFail, delayAbortEval");
    bad("output: {log_format: xml}\n", "p.yaml:1:22", "output.log_format", "allowed: auto, json");
    bad("test_type: soak\n", "p.yaml:1:12", "test_type", "allowed: smoke, load");
    bad("environment: ''\n", "p.yaml:1:14", "environment", "must not be empty");
    bad("environment: \"a\\tb\"\n", "p.yaml:1:14", "environment", "control characters");

    /* size cap */
    size_t big = CONFIG_MAX_PROFILE_BYTES + 10;
    char *huge = malloc(big + 1);
    memset(huge, '#', big);
    huge[big] = '\0';
    struct config c;
    struct diag d;
    config_init(&c);
    ok(config_apply_profile(&c, huge, big, "huge.yaml", &d) == -EINVAL &&
           strstr(d.msg, "larger than"),
       "profile over CONFIG_MAX_PROFILE_BYTES refused");
    config_clear(&c);
    free(huge);

    /* environment and --set */
    char *e1[] = {"STAGES=[{\"duration\":\"30s\",\"target\":10},", NULL};
    bad_resolve(e1, NULL, "env STAGES", "load.stages", "invalid JSON");
    char *e2[] = {"STAGES=[{\"duration\":\"30s\",\"target\":\"ten\"}]", NULL};
    bad_resolve(e2, NULL, "env STAGES", "load.stages[0].target", "expected an integer");
    char *e3[] = {"STAGES=[{\"duration\":30,\"target\":1}]", NULL};
    bad_resolve(e3, NULL, "env STAGES", "load.stages[0].duration", "invalid duration \"30\"");
    char *e4[] = {"CATALOG_SERVICE_URL=http://x", NULL};
    bad_resolve(e4, NULL, "env CATALOG_SERVICE_URL", "services", "no service is called CATALOG");
    char *e5[] = {"GATEWAY_URL=kong-proxy:8000", NULL};
    bad_resolve(e5, NULL, "env GATEWAY_URL", "gateway.url", "invalid URL");
    char *e6[] = {"K6_PROMETHEUS_RW_STALE_MARKERS=yes", NULL};
    bad_resolve(e6, NULL, "env K6_PROMETHEUS_RW_STALE_MARKERS",
                "metrics.remote_write.stale_markers", "true, false, 1 or 0");
    char *e7[] = {"K6_PROMETHEUS_RW_TREND_STATS=p(95),p(200)", NULL};
    bad_resolve(e7, NULL, "env K6_PROMETHEUS_RW_TREND_STATS", "metrics.remote_write.trend_stats",
                "invalid trend stat \"p(200)\"");
    char *e8[] = {"K6_PROMETHEUS_RW_HTTP_HEADERS=novalue", NULL};
    bad_resolve(e8, NULL, "env K6_PROMETHEUS_RW_HTTP_HEADERS", "metrics.remote_write.headers",
                "Name:value pairs");
    char *e9[] = {"K6_PROMETHEUS_RW_PUSH_INTERVAL=0s", NULL};
    bad_resolve(e9, NULL, "env K6_PROMETHEUS_RW_PUSH_INTERVAL",
                "metrics.remote_write.push_interval", "out of range");
    char *e10[] = {"K6_PROMETHEUS_RW_SERVERURL=http://x", NULL};
    bad_resolve(e10, NULL, "env K6_PROMETHEUS_RW_SERVERURL", "", "unknown K6_PROMETHEUS_RW_");
    char *e11[] = {"TEST_TYPE=stress", NULL};
    bad_resolve(e11, NULL, "env TEST_TYPE", "test_type", "allowed: smoke, load");
    char *e0[] = {NULL};
    bad_resolve(e0, "load.think_time=fast", "--set load.think_time=fast", "load.think_time",
                "invalid duration");
    bad_resolve(e0, "load.thinktime=1s", "--set load.thinktime=1s", "load.thinktime",
                "unknown key");
    bad_resolve(e0, "services.catalog.url=http://x", "--set services.catalog.url=http://x",
                "services.catalog.url", "no item named \"catalog\"");
    bad_resolve(e0, "load.stages[7].target=1", "--set load.stages[7].target=1",
                "load.stages[7].target", "out of range");
    bad_resolve(e0, "noequals", "--set noequals", "", "PATH=VALUE");
    bad_resolve(e0, "load.stages=[{duration: 1s", "--set load.stages=[{duration: 1s", "load.stages",
                "invalid YAML");
    bad_resolve(e0, "metrics.remote_write.password=\"a\\nb\"",
                "--set metrics.remote_write.password=<redacted>", "metrics.remote_write.password",
                "(secret value not shown)");
}

static void test_doc(void)
{
    struct doc *doc = doc_new();
    struct doc_node *root, *v;
    struct diag d;
    const char *y = "a: {b: [x, {name: n1, u: 1}]}\nc: ~\n";
    ok(doc_parse_yaml(doc, y, strlen(y), DOC_SRC_FILE, "t.yaml", &root, &d) == 0, "doc parse");
    ok(root->kind == DOC_MAP && root->n == 2 && doc_is_null(doc_map_get(root, "c")),
       "doc map and null");
    struct doc_origin at = doc_origin(doc, DOC_SRC_SET, "--set");
    v = doc_new_scalar(doc, &at, "2", 1, true);
    ok(doc_set_path(doc, root, "a.b.n1.u", v, &at, &d) == 0 &&
           !strcmp(doc_map_get(doc_seq_at(doc_map_get(doc_map_get(root, "a"), "b"), 1), "u")->str,
                   "2"),
       "set by item name");
    v = doc_new_scalar(doc, &at, "z", 1, true);
    ok(doc_set_path(doc, root, "c.d[0].e", v, &at, &d) == 0 &&
           doc_map_get(doc_seq_at(doc_map_get(doc_map_get(root, "c"), "d"), 0), "e") == v,
       "set through null makes maps and lists");
    v = doc_new_scalar(doc, &at, "q", 1, true);
    ok(doc_set_path(doc, root, "a.b[0].x", v, &at, &d) == -EINVAL && strstr(d.msg, "a.b[0]"),
       "set into a scalar fails: %s", d.msg);
    ok(doc_set_path(doc, root, "a..b", v, &at, &d) == -EINVAL, "empty segment refused");
    ok(doc_set_path(doc, root, "t.h{a:b.c}", v, &at, &d) == 0 &&
           doc_map_get(doc_map_get(root, "t"), "h{a:b.c}") == v,
       "braces keep dots in one segment");
    struct doc_node *j;
    ok(doc_parse_json(doc, "{\"a\":[1,2.5,true,null,\"s\"]}", DOC_SRC_ENV, "env X", &j, &d) == 0 &&
           !strcmp(doc_seq_at(doc_map_get(j, "a"), 1)->str, "2.5") &&
           doc_is_null(doc_seq_at(doc_map_get(j, "a"), 3)) &&
           !doc_seq_at(doc_map_get(j, "a"), 4)->plain,
       "JSON to nodes");
    ok(doc_parse_json(doc, "{\"a\":1,\"a\":2}", DOC_SRC_ENV, "env X", &j, &d) == -EINVAL &&
           strstr(d.msg, "duplicate"),
       "JSON duplicate keys refused");
    doc_free(doc);
    doc_free(NULL);

    struct diag dd = {.where = "f.yaml:1:2", .key = "a.b", .msg = "bad"};
    char buf[64];
    ok(!strcmp(diag_format(&dd, buf, sizeof(buf)), "f.yaml:1:2: a.b: bad"), "diag_format");
    dd.key[0] = '\0';
    ok(!strcmp(diag_format(&dd, buf, sizeof(buf)), "f.yaml:1:2: bad"), "diag_format without key");
}

/* A FIFO (or any non-regular file) as the profile fails at once instead of hanging. */
static void test_profile_not_regular(void)
{
    char fifo[600];
    snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", tmpdir);
    if (mkfifo(fifo, 0600)) {
        ok(0, "mkfifo %s: %s", fifo, strerror(errno));
        return;
    }
    struct config c = {0};
    struct diag d;
    char buf[1400];
    struct config_cli cli = {.profile = fifo};
    char *env0[] = {NULL};
    /* a regression would block in open() or read(): SIGALRM then ends the test as failed */
    alarm(10);
    int64_t t0 = units_now_mono();
    int rc = config_resolve(&c, &cli, env0, &d);
    int64_t took = units_now_mono() - t0;
    alarm(0);
    ok(rc == -EINVAL && !strcmp(d.where, fifo) && strstr(d.msg, "FIFO") &&
           strstr(d.msg, "regular file") && took < 2 * USEC_PER_SEC,
       "a FIFO as the profile fails at once -> %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);

    cli.profile = tmpdir;
    rc = config_resolve(&c, &cli, env0, &d);
    ok(rc == -EINVAL && strstr(d.msg, "it is a directory"), "a directory as the profile -> %s",
       diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
}

/* Messages stay one line of text; keys are checked like values; --set hides nested secrets. */
static void test_diag_hygiene(void)
{
    char buf[1400];
    struct diag dd = {
        .where = "env A\nB\xff", .key = "x.\x1b[31m", .msg = "m\r\"q\\\" \xe2\x9c\x93"};
    ok(!strcmp(diag_format(&dd, buf, sizeof(buf)),
               "env A\\x0aB\\xff: x.\\x1b[31m: m\\x0d\"q\\\" \xe2\x9c\x93"),
       "diag_format escapes control bytes and non-UTF-8, keeps UTF-8 -> %s", buf);
    char small[12];
    diag_format(&dd, small, sizeof(small));
    ok(strlen(small) < sizeof(small) && !strchr(small, '\n'), "diag_format cuts to the buffer");

    bad("a:\n  - b: 1\n    \"c\\nd\": 2\n", "p.yaml:3:5", "a[0].c\nd",
        "contains control characters");
    bad("\"\\e[1m\": 1\n", "p.yaml:1:1", "\x1b[1m", "contains control characters");

    char *e1[] = {"STAGES=[{\"duration\":\"1s\",\"target\":1},{\"x\\u0001\":1}]", NULL};
    bad_resolve(e1, NULL, "env STAGES", "load.stages[1].x\x01", "contains control characters");
    char *e2[] = {"STAGES=[{\"duration\":\"1s\\u0000junk\",\"target\":1}]", NULL};
    bad_resolve(e2, NULL, "env STAGES", "load.stages", "NUL characters (\\u0000) are not allowed");
    char *e3[] = {"STAGES=[{\"duration\":\"1s\\\\u0000\",\"target\":1}]", NULL};
    bad_resolve(e3, NULL, "env STAGES", "load.stages[0].duration", "invalid duration");
    char *e4[] = {"product_SERVICE_URL=http://x", NULL};
    bad_resolve(e4, NULL, "env product_SERVICE_URL", "services", "case matters");
    static char longname[400];
    memset(longname, '_', sizeof(longname));
    memcpy(longname, "K6_PROMETHEUS_RW_X", 18);
    snprintf(longname + 300, sizeof(longname) - 300, "=1");
    char *e5[] = {longname, NULL};
    struct config c = {0};
    struct diag d;
    struct config_cli cli0 = {0};
    int rc = config_resolve(&c, &cli0, e5, &d);
    ok(rc == -EINVAL && strstr(d.msg, "variable name is too long"),
       "a 300-byte K6_PROMETHEUS_RW_ name -> %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
    memcpy(longname, "XX", 2); /* not ours: ignored */
    ok(config_resolve(&c, &cli0, e5, &d) == 0, "a 300-byte name of another program is ignored");
    config_clear(&c);

    char *env0[] = {NULL};
    bad_resolve(env0, "metrics={remote_write: {password: pw-s3cret, bogus: 1}}",
                "--set metrics=<redacted>", "metrics.remote_write.bogus", "unknown key");
    bad_resolve(env0, "metrics.remote_write={bearer_token: tk-s3cret, push_interval: x}",
                "--set metrics.remote_write=<redacted>", "metrics.remote_write.push_interval",
                "invalid duration");
    bad_resolve(env0, "metrics[0]={\"pass\\u0077ord\": pw-s3cret}", "--set metrics[0]=<redacted>",
                "metrics[0]", "metrics is not a list");
    bad_resolve(env0, "output.junit={Password: pw-s3cret}", "--set output.junit=<redacted>",
                "output.junit", "expected");
    bad_resolve(env0, "metrics.labels={team: a, \"b\\tc\": d}",
                "--set metrics.labels={team: a, \"b\\tc\": d}", "metrics.labels.b\tc",
                "contains control characters");
    bad_resolve(env0, "load.thresholds.x{a:b=1", "--set load.thresholds.x{a:b=1", "",
                "'{' without a matching '}'");
    bad_resolve(env0, "metrics.remote_write.password{=pw-s3cret",
                "--set metrics.remote_write.password{=<redacted>", "", "without a matching");
}

/* What k6 accepts and syncgate refused: days, a null delayAbortEval, braces in tag values. */
static void test_k6_forms(void)
{
    struct config c;
    struct diag d;
    char buf[1400];
    config_init(&c);
    int rc = apply(&c,
                   "load:\n"
                   "  stages:\n"
                   "    - {duration: 1d, target: 1}\n"
                   "    - {duration: 1d23h, target: 2}\n"
                   "  thresholds:\n"
                   "    http_req_duration{name:http://${}.com}: ['p(95)<500']\n"
                   "    http_req_failed{url:ssh://github.com:grafana/k6,group:::g}: ['rate<1']\n"
                   "    http_reqs:\n"
                   "      - {threshold: 'count>0', abortOnFail: null, delayAbortEval: null}\n"
                   "      - {threshold: 'count>1', abortOnFail: true, delayAbortEval: 1d}\n",
                   &d);
    ok(rc == 0, "k6 forms accepted (%s)", rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
    if (rc == 0) {
        ok(c.load.stages[0].duration == 24 * 3600 * USEC_PER_SEC &&
               c.load.stages[1].duration == 47 * 3600 * USEC_PER_SEC,
           "stage durations with days: 1d, 1d23h");
        const struct threshold *t = c.load.thresholds.t;
        ok(c.load.thresholds.n == 4 && !strcmp(tagset_get(&t[0].filter, "name"), "http://${}.com"),
           "a tag value with braces and colons");
        ok(!strcmp(tagset_get(&t[1].filter, "url"), "ssh://github.com:grafana/k6") &&
               !strcmp(tagset_get(&t[1].filter, "group"), "::g"),
           "colons inside values, k6's group:::g");
        ok(!t[2].abort_on_fail && t[2].delay_abort_eval == 0,
           "abortOnFail: null and delayAbortEval: null mean no abort, no delay");
        ok(t[3].abort_on_fail && t[3].delay_abort_eval == 24 * 3600 * USEC_PER_SEC,
           "delayAbortEval: 1d");
    }
    config_clear(&c);
    bad("load:\n  stages: [{duration: 8d, target: 1}]\n", "p.yaml:2:23",
        "load.stages[0].duration", "allowed: 0s to 168h0m0s");
    bad("load:\n  thresholds:\n    http_reqs: [{threshold: 'count>0', delayAbortEval: ''}]\n",
        "p.yaml:3:56", "load.thresholds.http_reqs[0].delayAbortEval", "invalid duration");
    bad("load:\n  stages: [{duration: 2.1d, target: 1}]\n", "p.yaml:2:23",
        "load.stages[0].duration", "invalid duration \"2.1d\"");
}

/* A distributed run's options: from the environment and --instances only. */
static void test_scaleout(void)
{
    char tok[700], idx[32];
    snprintf(tok, sizeof(tok), "SYNCGATE_PEER_TOKEN_FILE=%s",
             write_file("peer-token", "s3cret-peer-token \n", 19));
    struct config c = {0};
    struct diag d;
    char buf[1400];
    struct config_cli cli = {0};
    char *alone[] = {NULL};
    ok(config_resolve(&c, &cli, alone, &d) == 0 && c.scaleout.instances == 1 &&
           c.scaleout.index == 0 && !c.scaleout.coordinator && !c.scaleout.token &&
           c.scaleout.testid_generated,
       "scale-out: alone by default, the testid generated");
    char host[256];
    snprintf(host, sizeof(host), "%s", c.instance);
    config_clear(&c);

    snprintf(idx, sizeof(idx), "JOB_COMPLETION_INDEX=2");
    char *env[] = {"SYNCGATE_INSTANCES=3", idx, "SYNCGATE_COORDINATOR=[fd00::1]:6565", tok,
                   "SYNCGATE_REGISTER_TIMEOUT=30s", "TESTID=run-7", NULL};
    int rc = config_resolve(&c, &cli, env, &d);
    char want[300];
    snprintf(want, sizeof(want), "%s-2", host);
    ok(rc == 0 && c.scaleout.instances == 3 && c.scaleout.index == 2 &&
           !strcmp(c.scaleout.host, "fd00::1") && c.scaleout.port == 6565 &&
           !strcmp(c.scaleout.token, "s3cret-peer-token") &&
           c.scaleout.register_timeout == 30 * USEC_PER_SEC && !c.scaleout.testid_generated,
       "scale-out: index, count, an IPv6 coordinator, the token (trimmed), the timeout; TESTID "
       "given %s", rc ? diag_format(&d, buf, sizeof(buf)) : "");
    ok(rc == 0 && !strcmp(c.instance, want),
       "scale-out: the instance label gets the index (%s)", c.instance);
    size_t n = config_dump(&c, NULL, 0) + 1;
    char *text = malloc(n);
    config_dump(&c, text, n);
    ok(rc == 0 && strstr(text, "# distributed run: instance 2 of 3 (a peer)") &&
           !strstr(text, "s3cret-peer-token"),
       "scale-out: validate says so in a comment, the token redacted");
    free(text);
    config_clear(&c);

    /* an Indexed Job's pod name already ends with its index: left as it is */
    char *env2[] = {"SYNCGATE_INSTANCES=3", idx, "SYNCGATE_COORDINATOR=coord:1", tok, NULL};
    const char *sets[] = {"instance=load-test-2"};
    struct config_cli cli2 = {.nsets = 1, .sets = sets, .instances = "4"};
    rc = config_resolve(&c, &cli2, env2, &d);
    ok(rc == 0 && !strcmp(c.instance, "load-test-2") && c.scaleout.instances == 4,
       "scale-out: --instances wins over the environment; <job>-<index> keeps its name (%s)",
       c.instance);
    config_clear(&c);
    bad_resolve((char *[]){"SYNCGATE_INSTANCES=2", "SYNCGATE_COORDINATOR=h:1", NULL}, NULL,
                "env SYNCGATE_PEER_TOKEN_FILE", "peer_token_file", "not set, and 2 instances");
}

int main(void)
{
    test_k6_forms();
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_full_profile();
    test_precedence();
    test_env();
    test_bad();
    test_doc();
    test_profile_not_regular();
    test_diag_hygiene();
    test_scaleout();

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", tmpdir);
    return tap_done();
}
