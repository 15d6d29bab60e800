/* Unit tests for api: routes, run request bodies, list queries, times, bearer tokens. */
#include <errno.h>
#include <string.h>

#include "syncgate/api.h"
#include "tap.h"

static void test_routes(void)
{
    struct api_route r;
    ok(api_route("GET", "/healthz", &r) == 0 && r.ep == API_HEALTHZ, "GET /healthz");
    ok(api_route("HEAD", "/metrics", &r) == 0 && r.ep == API_METRICS, "HEAD /metrics");
    ok(api_route("POST", "/api/tests/run", &r) == 0 && r.ep == API_RUN, "POST /api/tests/run");
    ok(api_route("GET", "/api/tests/run", &r) == -EPERM && !strcmp(r.allow, "POST"),
       "GET /api/tests/run: 405, Allow: POST");
    ok(api_route("GET", "/api/tests", &r) == 0 && r.ep == API_LIST, "GET /api/tests");
    ok(api_route("GET", "/api/tests/42", &r) == 0 && r.ep == API_GET && r.id == 42,
       "GET /api/tests/42");
    ok(api_route("GET", "/api/tests/7/report.html", &r) == 0 && r.ep == API_REPORT && r.id == 7,
       "GET /api/tests/7/report.html");
    ok(api_route("GET", "/api/tests/7/summary.json", &r) == 0 && r.ep == API_SUMMARY,
       "GET /api/tests/7/summary.json");
    ok(api_route("GET", "/api/tests/7/log", &r) == 0 && r.ep == API_LOG, "GET /api/tests/7/log");
    ok(api_route("POST", "/api/tests/7/cancel", &r) == 0 && r.ep == API_CANCEL && r.id == 7,
       "POST /api/tests/7/cancel");
    ok(api_route("DELETE", "/api/tests/7", &r) == -EPERM && !strcmp(r.allow, "GET, HEAD"),
       "DELETE /api/tests/7: 405");
    ok(api_route("GET", "/api/tests/7/cancel", &r) == -EPERM, "GET .../cancel: 405");
    static const char *const unknown[] = {
        "/", "/api", "/api/tests/", "/api/tests/0", "/api/tests/007", "/api/tests/-1",
        "/api/tests/1x", "/api/tests/99999999999999999", "/api/tests/1/", "/api/tests/1/other",
        "/api/tests/1/report.html/", "/healthz/", "/HEALTHZ", "/api/tests/run/", "",
    };
    int all = 1;
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        if (api_route("GET", unknown[i], &r) != -ENOENT) {
            all = 0;
            ok(0, "GET %s should be 404", unknown[i]);
        }
    ok(all, "unknown paths, zero, leading zeros, signs, huge ids, trailing slashes: 404");
}

static void test_run_body(void)
{
    struct api_run_request r;
    char err[600] = "";
#define PARSE(s) api_parse_run(s, strlen(s), &r, err, sizeof(err))

    ok(PARSE("{\"testType\": \"smoke\"}") == 0 && !strcmp(r.test_type, "smoke") &&
           r.profile[0] == '\0' && r.nsets == 0 && !strcmp(r.overrides, "{}"),
       "the seed's body: smoke, default profile, no overrides");
    api_run_request_clear(&r);
    ok(PARSE(" \n{\"testType\":\"load\",\"profile\":\"staging\"}\r\n ") == 0 &&
           !strcmp(r.test_type, "load") && !strcmp(r.profile, "staging"),
       "load with a profile, white space around");
    api_run_request_clear(&r);
    ok(PARSE("{\"testType\":\"run\",\"profile\":\"prod-2_a\",\"overrides\":{"
             "\"load.stages\":[{\"duration\":\"10s\",\"target\":5},{\"target\":0,"
             "\"duration\":\"5s\"}],\"smoke.duration\":\"2s\",\"load.threads\":2}}") == 0 &&
           r.nsets == 3 &&
           !strcmp(r.sets[0], "load.stages=[{\"duration\":\"10s\",\"target\":5},{\"target\":0,"
                              "\"duration\":\"5s\"}]") &&
           !strcmp(r.sets[1], "smoke.duration=\"2s\"") && !strcmp(r.sets[2], "load.threads=2"),
       "overrides become --set KEY=VALUE with JSON values (%s)", r.nsets ? r.sets[0] : err);
    ok(r.overrides && strstr(r.overrides, "\"smoke.duration\":\"2s\""),
       "the accepted overrides as JSON for the history");
    api_run_request_clear(&r);
    api_run_request_clear(&r);

    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"", "empty body"},
        {"{", "malformed JSON"},
        {"{\"testType\":\"smoke\"} x", "malformed JSON"},
        {"{\"testType\":\"smoke\"}{}", "malformed JSON"},
        {"[\"smoke\"]", "expected a JSON object"},
        {"\"smoke\"", "expected a JSON object"},
        {"{}", "testType: required"},
        {"{\"testType\":\"soak\"}", "testType: expected \"smoke\", \"load\" or \"run\", got \"soak\""},
        {"{\"testType\":1}", "testType: expected"},
        {"{\"testType\":\"smoke\",\"testType\":\"load\"}", "field \"testType\" given twice"},
        {"{\"testType\":\"smoke\",\"url\":\"http://evil\"}", "unknown field \"url\""},
        {"{\"testType\":\"smoke\",\"profile\":\"../etc/passwd\"}", "profile: expected a profile name"},
        {"{\"testType\":\"smoke\",\"profile\":\"Staging\"}", "profile: expected a profile name"},
        {"{\"testType\":\"smoke\",\"profile\":\"\"}", "profile: expected a profile name"},
        {"{\"testType\":\"smoke\",\"profile\":\"staging.yaml\"}", "profile: expected"},
        {"{\"testType\":\"smoke\",\"profile\":null}", "profile: expected"},
        {"{\"testType\":\"smoke\",\"overrides\":[]}", "overrides: expected an object"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"gateway.url\":\"http://x\"}}",
         "overrides: \"gateway.url\" cannot be overridden"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"services\":[]}}", "cannot be overridden"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.thresholds\":{}}}", "cannot be overridden"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.duration\":5}}",
         "\"smoke.duration\" must be a duration string"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.duration\":\"\"}}", "must be a duration"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.retries\":-1}}", "must be a whole number"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.retries\":1.5}}", "must be a whole number"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.retries\":\"2\"}}", "must be a whole number"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.stages\":[]}}", "must be a list of 1 to"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.stages\":{}}}", "must be a list"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.stages\":[{\"duration\":\"1s\"}]}}",
         "\"load.stages\"[0] must be"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.stages\":[{\"duration\":\"1s\","
         "\"target\":1,\"url\":\"x\"}]}}", "\"load.stages\"[0] must be"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"load.stages\":[{\"duration\":\"1s\","
         "\"target\":1},5]}}", "\"load.stages\"[1] must be"},
        {"{\"testType\":\"smoke\",\"overrides\":{\"smoke.duration\":\"1s\",\"smoke.duration\":"
         "\"2s\"}}", "given twice"},
        {"{\"testType\":\"smoke\",\"\\u001b[31mx\":1}", "unknown field \"\\x1b[31mx\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = PARSE(bad[i].body);
        ok(rc == -EINVAL && strstr(err, bad[i].msg) && r.nsets == 0 && !r.overrides,
           "bad body %s: %s", bad[i].body, err);
    }
    /* more stages than a profile may have */
    char big[8192] = "{\"testType\":\"load\",\"overrides\":{\"load.stages\":[";
    for (int i = 0; i < 65; i++)
        strcat(big, i ? ",{\"duration\":\"1s\",\"target\":1}" : "{\"duration\":\"1s\",\"target\":1}");
    strcat(big, "]}}");
    ok(PARSE(big) == -EINVAL && strstr(err, "1 to 64"), "65 stages: refused (%s)", err);
    /* a body with a NUL inside */
    ok(api_parse_run("{\"testType\":\"smoke\"}\0junk", 25, &r, err, sizeof(err)) == -EINVAL,
       "bytes after a NUL count: refused");
    ok(api_parse_run("{}", API_MAX_BODY + 1, &r, err, sizeof(err)) == -EINVAL &&
           strstr(err, "body over"), "a body over the cap: refused");
    ok(api_override_keys[0] && !strcmp(api_override_keys[5], "load.stages"),
       "override keys are listed");
#undef PARSE
}

static void test_list_args(void)
{
    struct rundb_filter f = {0};
    unsigned seen = 0;
    char err[300];
    ok(api_parse_list_arg(&f, &seen, "limit", "5", err, sizeof(err)) == 0 && f.limit == 5,
       "limit=5");
    ok(api_parse_list_arg(&f, &seen, "limit", "6", err, sizeof(err)) == -EINVAL &&
           strstr(err, "given twice"), "limit twice: refused");
    ok(api_parse_list_arg(&f, &seen, "environment", "staging", err, sizeof(err)) == 0 &&
           !strcmp(f.environment, "staging"), "environment=staging");
    ok(api_parse_list_arg(&f, &seen, "result", "failed", err, sizeof(err)) == 0 &&
           !strcmp(f.result, "failed"), "result=failed");
    ok(api_parse_list_arg(&f, &seen, "testType", "load", err, sizeof(err)) == 0 &&
           !strcmp(f.test_type, "load"), "testType=load");
    ok(api_parse_list_arg(&f, &seen, "since", "2026-01-01T00:00:00Z", err, sizeof(err)) == 0 &&
           f.since_ms == 1767225600000LL, "since=2026-01-01T00:00:00Z");
    ok(api_parse_list_arg(&f, &seen, "before", "10", err, sizeof(err)) == 0 && f.before_id == 10,
       "before=10");
    ok(api_parse_list_arg(&f, &seen, "state", "running", err, sizeof(err)) == 0, "state=running");
    ok(api_parse_list_arg(&f, &seen, "profile", "production", err, sizeof(err)) == 0,
       "profile=production");
    static const char *const bad[][3] = {
        {"limit", "0", "limit: expected a whole number from 1 to 500, got \"0\""},
        {"limit", "501", "from 1 to 500"},
        {"limit", "-1", "from 1 to 500"},
        {"limit", "", "from 1 to 500"},
        {"limit", NULL, "from 1 to 500"},
        {"limit", "1e3", "from 1 to 500"},
        {"result", "PASSED", "result: expected passed, failed"},
        {"testType", "soak", "expected smoke, load or run"},
        {"state", "done", "expected running, finished or interrupted"},
        {"since", "yesterday", "since: expected a time"},
        {"since", "2026-02-30", "since: expected a time"},
        {"profile", "../x", "a profile name"},
        {"environment", "", "printable"},
        {"environment", "a\nb", "printable"},
        {"before", "x", "a run id"},
        {"sort", "id", "unknown query parameter \"sort\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rundb_filter g = {0};
        unsigned s = 0;
        err[0] = '\0';
        ok(api_parse_list_arg(&g, &s, bad[i][0], bad[i][1], err, sizeof(err)) == -EINVAL &&
               strstr(err, bad[i][2]),
           "bad %s (case %zu): %s", bad[i][0], i, err);
    }
}

static void test_times(void)
{
    int64_t ms = 0;
    ok(api_parse_time("2026-01-01T00:00:00Z", &ms) == 0 && ms == 1767225600000LL, "Z");
    ok(api_parse_time("2026-01-01T01:00:00.250+01:00", &ms) == 0 && ms == 1767225600250LL,
       "offset and fraction");
    ok(api_parse_time("2025-12-31T19:00:00-05:00", &ms) == 0 && ms == 1767225600000LL,
       "negative offset");
    ok(api_parse_time("2026-01-01", &ms) == 0 && ms == 1767225600000LL, "a date: midnight UTC");
    ok(api_parse_time("1767225600", &ms) == 0 && ms == 1767225600000LL, "seconds since the epoch");
    ok(api_parse_time("2026-01-01 00:00:00z", &ms) == 0, "space and lower-case z");
    static const char *const bad[] = {"", "2026-1-1", "2026-13-01", "2026-02-29",
                                      "2026-01-01T00:00", "2026-01-01T00:00:00",
                                      "2026-01-01T24:00:00Z", "2026-01-01T00:00:00+1:00",
                                      "2026-01-01T00:00:00Zjunk", "1969-12-31", "12ab",
                                      "2026-01-01T00:00:00.Z", "99999999999999"};
    int all = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (api_parse_time(bad[i], &ms) != -EINVAL) {
            all = 0;
            ok(0, "time %s should be refused", bad[i]);
        }
    ok(all, "malformed times, impossible dates, missing zones: refused");
}

static void test_tokens(void)
{
    size_t len = 0;
    const char *t = api_bearer("Bearer abc.def", &len);
    ok(t && len == 7 && !strncmp(t, "abc.def", len), "Bearer abc.def");
    t = api_bearer("bearer   tok  ", &len);
    ok(t && len == 3 && !strncmp(t, "tok", 3), "scheme in any case, spaces around");
    ok(!api_bearer("Basic dXNlcjpwdw==", &len) && !api_bearer("Bearer", &len) &&
           !api_bearer("Bearer   ", &len) && !api_bearer("Bearerx tok", &len) &&
           !api_bearer(NULL, &len),
       "other schemes, no token, no separator: none");
    ok(api_token_equal("secret", 6, "secret", 6), "equal tokens");
    ok(!api_token_equal("secret", 6, "secreT", 6) && !api_token_equal("secret", 6, "secret2", 7) &&
           !api_token_equal("secret", 6, "secre", 5) && !api_token_equal("secret", 6, "", 0),
       "a different byte, longer, shorter, empty: not equal");
}

int main(void)
{
    test_routes();
    test_run_body();
    test_list_args();
    test_times();
    test_tokens();
    return tap_done();
}
