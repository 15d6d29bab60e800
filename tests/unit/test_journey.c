/* Unit tests for journeys: data files, the profile sections (good and bad), plans, the
 * weighted pick, a VU's requests and judgements, and the token helpers. No I/O but temp
 * files for data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "syncgate/auth.h"
#include "syncgate/config.h"
#include "syncgate/data.h"
#include "syncgate/journey.h"
#include "syncgate/jvu.h"
#include "syncgate/plan.h"
#include "tap.h"

static char tmpdir[] = "/tmp/syncgate-test-journey-XXXXXX";
static char csv_path[600], secret_path[600];

static const char services[] =
    "gateway: {url: 'http://gw:8000', ready: {path: /health}}\n"
    "services:\n"
    "  - {name: order, smoke_path: /api/orders/health, url: 'http://orders:3005/health'}\n"
    "  - {name: product, smoke_path: /api/products/health, url: 'http://products:3002/x'}\n";

static int apply(struct config *c, const char *body, struct diag *d)
{
    char *yaml;
    int rc;
    if (asprintf(&yaml, "%s%s", services, body) < 0)
        return -ENOMEM;
    rc = config_apply_profile(c, yaml, strlen(yaml), "p.yaml", d);
    free(yaml);
    return rc;
}

/* The profile body must be refused with msg in the message (key when given). */
static void bad(const char *body, const char *key, const char *msg)
{
    struct config c;
    struct diag d;
    char buf[1400];
    config_init(&c);
    int rc = apply(&c, body, &d);
    ok(rc == -EINVAL && (!key || !strcmp(d.key, key)) && strstr(d.msg, msg) &&
           !strncmp(d.where, "p.yaml:", 7),
       "refused: %s", diag_format(&d, buf, sizeof(buf)));
    config_clear(&c);
}

static void test_data(void)
{
    struct dataset ds;
    char err[256] = "";
    const char csv[] = "\xef\xbb\xbfid,name,note\r\np1,Apple,\"a, b\"\r\n\r\np2,Pear,\"say \"\"hi\"\"\nx\"\np3,Fig,";
    ok(data_parse(&ds, csv, sizeof(csv) - 1, err, sizeof(err)) == 0 && ds.ncols == 3 &&
           ds.nrows == 3,
       "CSV: BOM, CRLF, quoted commas, quotes and line breaks, a blank line, a trailing empty "
       "field (%s)",
       err);
    ok(!strcmp(ds.cols[0], "id") && !strcmp(data_cell(&ds, 0, 2), "a, b") &&
           !strcmp(data_cell(&ds, 1, 2), "say \"hi\"\nx") && !strcmp(data_cell(&ds, 2, 2), "") &&
           !strcmp(data_cell(&ds, 4, 0), "p2"),
       "CSV cells, rows taken round-robin");
    ok(data_column(&ds, "name", 4) == 1 && data_column(&ds, "nope", 4) == -1, "columns by name");
    data_clear(&ds);

    const char json[] = " [{\"id\":\"p1\",\"qty\":2,\"ok\":true},{\"id\":\"p2\",\"qty\":3.5,\"ok\":null}]";
    ok(data_parse(&ds, json, sizeof(json) - 1, err, sizeof(err)) == 0 && ds.ncols == 3 &&
           ds.nrows == 2 && !strcmp(data_cell(&ds, 1, 1), "3.5") &&
           !strcmp(data_cell(&ds, 0, 2), "true") && !strcmp(data_cell(&ds, 1, 2), "null"),
       "JSON array of objects: strings as they are, other values as JSON text");
    data_clear(&ds);

    static const struct {
        const char *text, *msg;
    } bads[] = {
        {"", "empty"},
        {"id,name\n", "no rows"},
        {"id,id\n1,2\n", "appears twice"},
        {"id,\n1,2\n", "no name"},
        {"id,name\n1\n", "line 2: 1 fields where the header has 2"},
        {"id\n\"open\n", "never closed"},
        {"id\nab\"c\n", "quote inside an unquoted field"},
        {"id\n\"a\"b\n", "text after a closing quote"},
        {"id\n\xff\n", "not UTF-8"},
        {"[]", "non-empty JSON array"},
        {"[1]", "element 1 is not an object"},
        {"[{\"a\":1},{\"b\":2}]", "element 2 has no \"a\""},
        {"[{\"a\":1}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        err[0] = '\0';
        int rc = data_parse(&ds, bads[i].text, strlen(bads[i].text), err, sizeof(err));
        ok(rc == -EINVAL && strstr(err, bads[i].msg), "bad data %zu refused: %s", i, err);
    }
    char *big = malloc(DATA_MAX_CELL + 20);
    memset(big, 'x', DATA_MAX_CELL + 10);
    memcpy(big, "id\n", 3);
    big[DATA_MAX_CELL + 10] = '\0';
    ok(data_parse(&ds, big, strlen(big), err, sizeof(err)) == -EINVAL && strstr(err, "longer"),
       "a cell over the cap is refused: %s", err);
    free(big);
    ok(data_load(&ds, "/nonexistent/x.csv", err, sizeof(err)) == -EINVAL &&
           strstr(err, "cannot read"),
       "a missing file: %s", err);
}

static const char journey_yaml[] =
    "auth:\n"
    "  oauth2_client_credentials: {token_url: 'http://id:9000/oauth2/token', client_id: gate,"
    " client_secret_file: %s, scope: 'orders:write'}\n"
    "data: {products: {file: %s}}\n"
    "env_allow: [JT_TENANT]\n"
    "journeys:\n"
    "  - name: order-lifecycle\n"
    "    weight: 3\n"
    "    steps:\n"
    "      - name: create order\n"
    "        service: order\n"
    "        method: POST\n"
    "        path: /api/orders?tenant=${env.JT_TENANT}\n"
    "        headers: {Authorization: 'Bearer ${auth.token}'}\n"
    "        body: {productId: '${data.products.id}', quantity: 2, note: 'q\"x'}\n"
    "        expect:\n"
    "          status: 201\n"
    "          max_latency: 500ms\n"
    "          json: {'$.status': PENDING, '$.quantity': 2, '$.paid': false}\n"
    "          header: {Content-Type: json}\n"
    "        capture: {order_id: '$.id', where: {header: Location}}\n"
    "      - name: get order\n"
    "        service: order\n"
    "        path: /api/orders/${order_id}\n"
    "        expect: {status: [200, 203], json: {'$.id': '${order_id}'}, body_contains: '${where}'}\n"
    "  - name: browse\n"
    "    smoke: false\n"
    "    think_time: 0s\n"
    "    steps:\n"
    "      - {name: list, service: product, path: /api/products}\n";

static void load_journeys(struct config *c)
{
    char yaml[4096];
    struct diag d;
    char buf[1400];
    char *const envp[] = {"JT_TENANT=a b/c", NULL};
    snprintf(yaml, sizeof(yaml), "%s", services);
    snprintf(yaml + strlen(yaml), sizeof(yaml) - strlen(yaml), journey_yaml, secret_path, csv_path);
    const char *sets[] = {NULL};
    (void)sets;
    config_init(c);
    char path[700];
    snprintf(path, sizeof(path), "%s/p.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    struct config_cli cli = {.profile = path};
    int rc = config_resolve(c, &cli, envp, &d);
    ok(rc == 0, "a profile with auth, data, env_allow and two journeys resolves (%s)",
       rc ? diag_format(&d, buf, sizeof(buf)) : "ok");
}

static void test_config(void)
{
    struct config c;
    load_journeys(&c);
    const struct journey_set *js = &c.journeys;
    if (js->n != 2)
        return; /* reported above */
    ok(js->n == 2 && js->auth.enabled && !strcmp(js->auth.client_secret, "s3cret") &&
           js->ndata == 1 && js->data[0].ds.nrows == 2 && js->nenv == 1 &&
           !strcmp(js->env_value[0], "a b/c"),
       "sections converted: two journeys, the secret read, data loaded, env value kept");
    const struct journey *j = &js->j[0];
    ok(!strcmp(j->name, "order-lifecycle") && !strcmp(j->group, "::order-lifecycle") &&
           j->weight == 3 && j->smoke && j->think_time == -1 && j->nsteps == 2 && j->uses_auth &&
           j->uses_data && j->ncaptures == 2,
       "journey fields");
    const struct step *s0 = &j->steps[0], *s1 = &j->steps[1];
    ok(!strcmp(s0->method, "POST") && s0->has_body && s0->body_enc == TPL_ENC_JSON &&
           s0->nstatus == 1 && s0->status[0] == 201 && s0->max_latency == 500000 &&
           s0->nexpects == 4 && s0->ncaptures == 2 && s0->wants_body && s0->wants_headers &&
           s0->headers[0].secret && s0->needs == 0,
       "first step: method, JSON body, status, latency, four expectations, two captures, "
       "Authorization is secret");
    ok(!strcmp(s0->status_check, "create order status 201") &&
           !strcmp(s0->latency_check, "create order latency < 500ms") &&
           !strcmp(s0->expects[0].check, "create order json $.status") &&
           s0->expects[0].type == EXPECT_STRING && s0->expects[1].type == EXPECT_NUMBER &&
           s0->expects[1].number == 2 && s0->expects[2].type == EXPECT_FALSE &&
           !strcmp(s0->expects[3].check, "create order header Content-Type"),
       "check names and expected value types");
    ok(!strcmp(s0->body.src, "{\"productId\":\"${data.products.id}\",\"quantity\":2,"
                             "\"note\":\"q\\\"x\"}"),
       "a YAML body is sent as JSON, numbers bare, quotes escaped: %s", s0->body.src);
    ok(s1->needs == 1 && s1->nstatus == 2 && !strcmp(s1->status_check, "get order status 200/203") &&
           s1->expects[1].kind == EXPECT_BODY,
       "second step needs the first capture; a status list names its check");
    ok(js->j[1].think_time == 0 && !js->j[1].smoke && js->j[1].steps[0].nstatus == 8 &&
           !strcmp(js->j[1].steps[0].status_check, "list status 2xx"),
       "second journey: think_time 0s, smoke false, 2xx by default");

    size_t n = config_dump(&c, NULL, 0) + 1;
    char *dump = malloc(n);
    config_dump(&c, dump, n);
    ok(strstr(dump, "journeys:\n  - name: \"order-lifecycle\"") &&
           strstr(dump, "\"Authorization\": \"<redacted>\"") && !strstr(dump, "s3cret") &&
           !strstr(dump, "a b/c") && strstr(dump, "client_secret_file: \""),
       "validate prints the journeys, never the secret, token header or env values");
    free(dump);

    struct plan p;
    char why[256];
    ok(plan_build(&p, &c, PLAN_LOAD, SCENARIO_JOURNEYS, why, sizeof(why)) == 0 && p.n == 2 && p.nhealth == 0 &&
           p.weights[0] == 3 && p.uses_auth,
       "load plan: the two journeys, weights");
    ok(!strcmp(p.j[0].steps[0].base, "http://orders:3005") && !p.j[0].steps[0].url &&
           !strcmp(p.j[1].steps[0].url, "http://products:3002/api/products") &&
           !strcmp(p.j[0].steps[0].service, "order") && p.j[0].think_time == c.load.think_time,
       "load plan: steps at their service's origin; fixed URLs made once");
    struct tagset tags, ctags;
    plan_tags(&p.j[0], &p.j[0].steps[0], "load", &tags, &ctags);
    ok(!strcmp(tagset_get(&tags, "group"), "::order-lifecycle") &&
           !strcmp(tagset_get(&tags, "service"), "order") &&
           !strcmp(tagset_get(&tags, "name"), "create order") &&
           !strcmp(tagset_get(&ctags, "group"), "::order-lifecycle") &&
           !tagset_get(&ctags, "service"),
       "step tags: name, group and service on requests; group on checks");
    plan_clear(&p);
    ok(plan_build(&p, &c, PLAN_SMOKE, SCENARIO_JOURNEYS, why, sizeof(why)) == 0 && p.n == 4 && p.nhealth == 3 &&
           !strcmp(p.j[0].j->name, "gateway") && !strcmp(p.j[3].j->name, "order-lifecycle") &&
           !strcmp(p.j[3].steps[0].base, "http://gw:8000") &&
           !strcmp(p.j[1].steps[0].url, "http://gw:8000/api/orders/health"),
       "smoke plan: gateway and service health, then the smoke journeys through the gateway");
    plan_tags(&p.j[1], &p.j[1].steps[0], "smoke", &tags, &ctags);
    ok(!tagset_get(&tags, "group") && !tagset_get(&tags, "service") &&
           !strcmp(p.j[1].steps[0].s->status_check, "order status 200") &&
           !strcmp(p.j[1].steps[0].s->latency_check, "order latency < 1s"),
       "implicit health journeys keep the series and checks of before");
    plan_clear(&p);
    config_clear(&c);

    /* without journeys: load requests each service's url, as always */
    config_init(&c);
    ok(plan_build(&p, &c, PLAN_LOAD, SCENARIO_JOURNEYS, why, sizeof(why)) == 0 && p.n == 5 &&
           !strcmp(p.j[0].steps[0].url, "http://product-service:3002/health") &&
           !p.j[0].steps[0].s->latency_check && !*p.j[0].j->group,
       "defaults: five implicit load journeys, one per service url");
    plan_clear(&p);
    config_clear(&c);
}

static void test_bad(void)
{
    const char *j1 = "journeys:\n  - name: j\n    steps:\n      - ";
    char buf[1024];
#define STEP(x) (snprintf(buf, sizeof(buf), "%s%s\n", j1, x), buf)
    bad("journeys: {a: 1}", "journeys", "expected a list of journeys");
    bad("journeys:\n  - {name: J, steps: [{name: a, service: order, path: /}]}", "journeys[0].name",
        "not a journey name");
    bad("journeys:\n  - {name: j}", "journeys[0].steps", "at least one step");
    bad("journeys:\n  - {name: j, steps: [{name: a, service: order, path: /}]}\n"
        "  - {name: j, steps: [{name: a, service: order, path: /}]}",
        "journeys[1]", "used twice");
    bad("journeys:\n  - {name: j, wieght: 2, steps: [{name: a, service: order, path: /}]}",
        "journeys[0]", "unknown key \"wieght\"");
    bad(STEP("{name: a, service: nope, path: /}"), "journeys[0].steps[0].service",
        "no service is called \"nope\"; services: order, product");
    bad(STEP("{name: a, service: order}"), "journeys[0].steps[0]", "missing key \"path\"");
    bad(STEP("{name: a, service: order, path: x}"), "journeys[0].steps[0].path", "not a path");
    bad(STEP("{name: a, service: order, path: '/x/${id}'}"), "journeys[0].steps[0].path",
        "${id} is not captured by any step");
    bad(STEP("{name: a, service: order, path: '/x/${id}', capture: {id: $.id}}"),
        "journeys[0].steps[0].path", "used before the step that captures it");
    bad(STEP("{name: a, service: order, path: '/${data.rows.id}'}"),
        "journeys[0].steps[0].path", "no data set \"rows\"");
    bad(STEP("{name: a, service: order, path: '/${auth.token}'}"), "journeys[0].steps[0].path",
        "needs an auth: section");
    bad(STEP("{name: a, service: order, path: '/${env.HOME}'}"), "journeys[0].steps[0].path",
        "not in env_allow");
    bad(STEP("{name: a, service: order, path: '/${nope'}"), "journeys[0].steps[0].path",
        "without a closing");
    bad(STEP("{name: a, service: order, path: '/', method: GET, body: x}"),
        "journeys[0].steps[0].body", "a GET request has no body");
    bad(STEP("{name: a, service: order, path: '/', method: FETCH}"),
        "journeys[0].steps[0].method", "not a method");
    bad(STEP("{name: a, service: order, path: '/', expect: {json: {'id': 1}}}"),
        "journeys[0].steps[0].expect.json.id", "must start with '$'");
    bad(STEP("{name: a, service: order, path: '/', expect: {json: {'$..id': 1}}}"),
        "journeys[0].steps[0].expect.json.$..id", "expected a member name");
    bad(STEP("{name: a, service: order, path: '/', expect: {status: 700}}"),
        "journeys[0].steps[0].expect.status", "out of range");
    bad(STEP("{name: a, service: order, path: '/', expect: {statsu: 200}}"),
        "journeys[0].steps[0].expect", "unknown key \"statsu\"");
    bad(STEP("{name: a, service: order, path: '/', capture: {1x: $.id}}"),
        "journeys[0].steps[0].capture.1x", "not a capture name");
    bad(STEP("{name: a, service: order, path: '/', capture: {vu: $.id}}"),
        "journeys[0].steps[0].capture.vu", "not a capture name");
    bad(STEP("{name: a, service: order, path: '/', capture: {x: {regex: a}}}"),
        "journeys[0].steps[0].capture.x", "{header: Name}");
    bad(STEP("{name: a, service: order, path: '/', headers: {Host: x}}"),
        "journeys[0].steps[0].headers.Host", "set by syncgate itself");
    bad(STEP("{name: a, service: order, path: '/', headers: {'X A': x}}"),
        "journeys[0].steps[0].headers.X A", "invalid header name");
    bad("journeys:\n  - name: j\n    steps:\n      - {name: a, service: order, path: /}\n"
        "      - {name: a, service: order, path: /}",
        "journeys[0].steps[1].name", "used twice");
    bad("auth: {oauth2_client_credentials: {client_id: x, client_secret: y}}",
        "auth.oauth2_client_credentials.token_url", "missing");
    bad("auth: {oauth2_client_credentials: {token_url: 'http://a/t', client_secret: y}}",
        "auth.oauth2_client_credentials.client_id", "missing");
    bad("auth: {oauth2_client_credentials: {token_url: 'http://a/t', client_id: x}}",
        "auth.oauth2_client_credentials.client_secret_file", "missing");
    bad("auth: {oauth2_client_credentials: {token_url: 'ftp://a/t', client_id: x, "
        "client_secret: y}}",
        "auth.oauth2_client_credentials.token_url", "invalid URL");
    bad("auth: {basic: {}}", "auth", "unknown key \"basic\"");
    bad("auth: {oauth2_client_credentials: {token_url: 'http://a/t', client_id: x, "
        "client_secret_file: /nonexistent/secret}}",
        "auth.oauth2_client_credentials.client_secret_file", "cannot read");
    bad("data: {rows: {file: /nonexistent/x.csv}}", "data.rows.file", "cannot read");
    bad("data: {rows: {path: x.csv}}", "data.rows", "unknown key \"path\"");
    bad("data: {'a-b': x.csv}", "data.a-b", "not a data set name");
    bad("env_allow: [1ABC]", "env_allow[0]", "not a variable name");
    bad("env_allow: {A: 1}", "env_allow", "expected a list");
#undef STEP
    {
        /* a column the data file lacks */
        char body[1200];
        snprintf(body, sizeof(body),
                 "data: {products: {file: %s}}\njourneys:\n  - name: j\n    steps:\n"
                 "      - {name: a, service: order, path: '/${data.products.sku}'}\n",
                 csv_path);
        bad(body, "journeys[0].steps[0].path",
            "data set \"products\" has no column \"sku\"; columns: id, name");
    }
}

static void test_pick(void)
{
    int weights[] = {3, 1, 2};
    int64_t credit[3] = {0};
    int count[3] = {0};
    char seq[13] = "";
    for (int i = 0; i < 600; i++) {
        size_t k = journey_pick(weights, credit, 3);
        count[k]++;
        if (i < 12)
            seq[i] = (char)('a' + k);
    }
    ok(count[0] == 300 && count[1] == 100 && count[2] == 200,
       "weights 3:1:2 give exactly 300/100/200 of 600 picks");
    ok(!strstr(seq, "aaa"), "picks interleave (%s)", seq);
}

/* ---- a VU against canned responses ---- */

static int token(void *ud, char *buf, size_t n)
{
    (void)ud;
    return snprintf(buf, n, "tok-123");
}

static const struct step *s0c(const struct plan *p)
{
    return p->j[0].steps[0].s;
}

static void test_jvu(void)
{
    struct config c;
    struct plan p;
    struct jvu v;
    struct jreq r;
    struct jvu_verdict jv;
    char why[256];
    _Atomic uint64_t rows = 0;

    load_journeys(&c);
    plan_build(&p, &c, PLAN_LOAD, SCENARIO_JOURNEYS, why, sizeof(why));
    struct jvu_ctx ctx = {.plan = &p, .token = token, .rows = &rows};
    ok(jvu_init(&v, 1, &p, 7) == 0, "jvu_init");
    jvu_start_journey(&v, &ctx, 0);
    /* prepared before ok(): arguments are evaluated in no given order */
    why[0] = '\0';
    enum jvu_outcome o = jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    ok(o == JVU_SEND && !strcmp(r.url, "http://orders:3005/api/orders?tenant=a%20b%2Fc") &&
           !r.static_url,
       "step 1 URL: the env value percent-encoded (%s%s)", o == JVU_SEND ? r.url : "", why);
    ok(r.body && !strcmp(r.body, "{\"productId\":\"p1\",\"quantity\":2,\"note\":\"q\\\"x\"}"),
       "step 1 body: data row 0 substituted (%s)", r.body ? r.body : "");
    const char *h[8];
    int nh = 0;
    for (struct curl_slist *l = r.headers; l && nh < 8; l = l->next)
        h[nh++] = l->data;
    ok(nh == 3 && !strcmp(h[0], "Authorization: Bearer tok-123") &&
           !strcmp(h[1], "Content-Type: application/json") && !strcmp(h[2], "Expect:"),
       "step 1 headers: the token, a JSON content type, no Expect: 100-continue");

    /* the server answers: judged and captured */
    jvu_reset_response(&v);
    const char *resp = "{\"id\":\"o42\",\"status\":\"PENDING\",\"quantity\":2.0,\"paid\":false}";
    jvu_body_data(&v, resp, strlen(resp));
    jvu_header_line(&v, p.j[0].steps[0].s, "Content-Type: application/json\r\n", 32);
    jvu_header_line(&v, p.j[0].steps[0].s, "Location: /api/orders/o42\r\n", 27);
    jvu_header_line(&v, p.j[0].steps[0].s, "X-Other: 1\r\n", 12);
    bool more = jvu_judge(&v, &ctx, true, 201, 1000, &jv);
    ok(more && jv.status && jv.latency && jv.nexpects == 4 && jv.expect[0] && jv.expect[1] &&
           jv.expect[2] && jv.expect[3] && jv.captures_failed == 0 && jv.ncaptures == 2 &&
           jv.capture[0] && jv.capture[1] &&
           !strcmp(s0c(&p)->captures[0].check, "create order captures order_id"),
       "step 1: status, latency, every expectation passes, both captures made");
    o = jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    ok(o == JVU_SEND && !strcmp(r.url, "http://orders:3005/api/orders/o42") && !r.body &&
           !r.headers,
       "step 2 uses the captured id (%s)", o == JVU_SEND ? r.url : why);
    jvu_reset_response(&v);
    resp = "{\"id\":\"o42\",\"link\":\"/api/orders/o42\"}";
    jvu_body_data(&v, resp, strlen(resp));
    more = jvu_judge(&v, &ctx, true, 203, 900000, &jv);
    ok(!more && jv.status && !jv.latency && jv.expect[0] && jv.expect[1],
       "step 2: 203 is in its list; the id and the captured Location both match");

    /* next iteration: wrong values, a missing capture skips the rest */
    jvu_start_journey(&v, &ctx, 0);
    o = jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    ok(o == JVU_SEND && strstr(r.body, "\"p2\""), "the next iteration takes the next data row");
    jvu_reset_response(&v);
    resp = "{\"status\":\"PAID\",\"quantity\":\"2\"}";
    jvu_body_data(&v, resp, strlen(resp));
    more = jvu_judge(&v, &ctx, true, 500, 10, &jv);
    ok(more && !jv.status && jv.latency && !jv.expect[0] && !jv.expect[1] && !jv.expect[2] &&
           !jv.expect[3] && jv.captures_failed == 2 && !jv.capture[0] && !jv.capture[1],
       "a wrong status, wrong values, a string for a number, a missing header: every check "
       "fails, nothing is captured");
    ok(jvu_prepare(&v, &ctx, &r, why, sizeof(why)) == JVU_SKIP &&
           strstr(why, "${order_id} was not captured"),
       "the step that needs the capture is skipped: %s", why);

    /* a transport failure: nothing judged as passing */
    jvu_start_journey(&v, &ctx, 0);
    jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    jvu_reset_response(&v);
    more = jvu_judge(&v, &ctx, false, 0, 0, &jv);
    ok(!jv.status && !jv.latency && !jv.expect[0] && !jv.expect[1] && !jv.expect[2] &&
           jv.captures_failed == 2,
       "no response: every check fails");

    /* bodies over the cap and invalid JSON fail JSON checks */
    jvu_start_journey(&v, &ctx, 0);
    jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    jvu_reset_response(&v);
    resp = "{\"id\":\"o1\",\"status\":\"PENDING\",\"quantity\":2,\"paid\":false";
    jvu_body_data(&v, resp, strlen(resp));
    jvu_judge(&v, &ctx, true, 201, 10, &jv);
    ok(!jv.expect[0] && !jv.expect[1] && jv.captures_failed >= 1,
       "truncated JSON fails the JSON checks and captures");
    jvu_start_journey(&v, &ctx, 0);
    jvu_prepare(&v, &ctx, &r, why, sizeof(why));
    jvu_reset_response(&v);
    char *huge = malloc(JVU_RESPONSE_MAX + 2);
    memset(huge, ' ', JVU_RESPONSE_MAX + 1);
    huge[0] = '{';
    jvu_body_data(&v, huge, JVU_RESPONSE_MAX);
    jvu_body_data(&v, "}", 1);
    jvu_body_data(&v, "x", 1);
    free(huge);
    jvu_judge(&v, &ctx, true, 201, 10, &jv);
    ok(v.resp_over && !jv.expect[0], "a body over the cap is not kept; its checks fail");

    /* weights across the VU's own iterations */
    int count[2] = {0};
    for (int i = 0; i < 400; i++)
        count[jvu_start(&v, &ctx)]++;
    ok(count[0] == 300 && count[1] == 100, "a VU picks journeys 3:1 by weight (%d:%d)", count[0],
       count[1]);
    jvu_clear(&v);
    plan_clear(&p);
    config_clear(&c);
}

static void test_auth(void)
{
    char tok[64], why[128], out[64];
    int64_t exp;
    const char ok1[] = "{\"access_token\":\"abc.def\",\"token_type\":\"bearer\",\"expires_in\":300}";
    ok(auth_parse_token(ok1, sizeof(ok1) - 1, tok, sizeof(tok), &exp, why, sizeof(why)) == 7 &&
           !strcmp(tok, "abc.def") && exp == 300,
       "token answer parsed: token and lifetime");
    const char ok2[] = "{\"access_token\":\"x\",\"expires_in\":\"60\"}";
    ok(auth_parse_token(ok2, sizeof(ok2) - 1, tok, sizeof(tok), &exp, why, sizeof(why)) == 1 &&
           exp == 60,
       "expires_in as a numeric string, token_type absent");
    static const struct {
        const char *body, *msg;
    } bads[] = {
        {"not json", "not a JSON object"},
        {"{}", "no access_token"},
        {"{\"access_token\":\"\"}", "no access_token"},
        {"{\"access_token\":\"a b\"}", "spaces"},
        {"{\"access_token\":\"a\",\"token_type\":\"mac\"}", "not Bearer"},
        {"{\"access_token\":\"a\",\"expires_in\":-5}", "expires_in"},
    };
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
        ok(auth_parse_token(bads[i].body, strlen(bads[i].body), tok, sizeof(tok), &exp, why,
                            sizeof(why)) == -EPROTO &&
               strstr(why, bads[i].msg),
           "token answer refused: %s", why);
    char longtok[200];
    snprintf(longtok, sizeof(longtok), "{\"access_token\":\"%0100d\"}", 0);
    ok(auth_parse_token(longtok, strlen(longtok), tok, sizeof(tok), &exp, why, sizeof(why)) ==
           -EPROTO,
       "a token longer than the buffer is refused");
    ok(auth_basic("gate", "s3cret", out, sizeof(out)) == 16 && !strcmp(out, "Z2F0ZTpzM2NyZXQ="),
       "Basic credentials: base64 of id:secret (%s)", out);
    ok(auth_basic("a b", "x:y", out, sizeof(out)) > 0 && !strcmp(out, "YStiOnglM0F5"),
       "id and secret are form-encoded first (RFC 6749 2.3.1): %s", out);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    snprintf(csv_path, sizeof(csv_path), "%s/products.csv", tmpdir);
    snprintf(secret_path, sizeof(secret_path), "%s/secret", tmpdir);
    FILE *f = fopen(csv_path, "w");
    fputs("id,name\np1,Apple\np2,Pear\n", f);
    fclose(f);
    f = fopen(secret_path, "w");
    fputs("s3cret\n", f);
    fclose(f);

    test_data();
    test_config();
    test_bad();
    test_pick();
    test_jvu();
    test_auth();

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
