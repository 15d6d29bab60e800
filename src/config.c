/*
 * config: defaults + profile + environment + command line -> struct config.
 *
 * Everything goes through one document tree (doc.h): the built-in defaults
 * are themselves a YAML text, the profile is merged over them, environment
 * variables and --set arguments replace values in the tree, and only then is
 * the tree converted, by the schema tables below, into struct config. So a
 * value gets the same checks and the same message whichever way it came in,
 * and every message can say where the value came from.
 *
 * The edits live in config_edit.c and the dump in config_dump.c; what the
 * three share is declared in config_int.h.
 */
#include "syncgate/config.h"
#include "syncgate/rw.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "syncgate/doc.h"
#include "syncgate/engine.h"
#include "syncgate/journey.h"
#include "syncgate/threshold.h"
#include "syncgate/units.h"

#include "config_int.h"
#include "utf8.h"

#define MS(x) ((int64_t)(x)*USEC_PER_MSEC)
#define SEC(x) ((int64_t)(x)*USEC_PER_SEC)
#define MIN(x) (SEC(x) * 60)
#define HOUR(x) (MIN(x) * 60)
#define DAY(x) (HOUR(x) * 24)

#define MAX_LABEL_VALUE 256 /* environment, testid, static labels */
#define MAX_KEY_BYTES 4096  /* gateway.key_file content */
#define MAX_TREND_STATS 16

/*
 * Built-in defaults: the KubeStock services, addressed by their in-namespace
 * service names. Written as YAML so they go through the same converter.
 */
static const char defaults_yaml[] = "environment: unknown\n"
                                    "test_type: null\n"
                                    "testid: null\n"
                                    "instance: null\n"
                                    "ca_file: null\n"
                                    "revision: null\n"
                                    "gateway:\n"
                                    "  url: http://kong-proxy\n"
                                    "  consumer_header: X-Consumer-Username\n"
                                    "  consumer: test-runner\n"
                                    "  key_file: null\n"
                                    "  key_header: apikey\n"
                                    "  ca_file: null\n"
                                    "  ready: {path: /health, timeout: 60s, status: 200}\n"
                                    "services:\n"
                                    "  - {name: product, smoke_path: /api/products/health,"
                                    " url: 'http://product-service:3002/health'}\n"
                                    "  - {name: inventory, smoke_path: /api/inventory/health,"
                                    " url: 'http://inventory-service:3003/health'}\n"
                                    "  - {name: supplier, smoke_path: /api/suppliers/health,"
                                    " url: 'http://supplier-service:3004/health'}\n"
                                    "  - {name: order, smoke_path: /api/orders/health,"
                                    " url: 'http://order-service:3005/health'}\n"
                                    "  - {name: identity, smoke_path: /api/identity/health,"
                                    " url: 'http://identity-service:3006/health'}\n"
                                    "smoke:\n"
                                    "  duration: 5s\n"
                                    "  iterations: 0\n"
                                    "  retries: 2\n"
                                    "  think_time: 1s\n"
                                    "  request_timeout: 10s\n"
                                    "  thresholds: {checks: ['rate==1.0']}\n"
                                    "load:\n"
                                    "  stages:\n"
                                    "    - {duration: 30s, target: 10}\n"
                                    "    - {duration: 1m, target: 20}\n"
                                    "    - {duration: 30s, target: 0}\n"
                                    "  start_vus: 1\n"
                                    "  think_time: 1s\n"
                                    "  graceful_ramp_down: 10s\n"
                                    "  request_timeout: 10s\n"
                                    "  threads: 0\n"
                                    "  thresholds:\n"
                                    "    http_req_duration: ['p(95)<500', 'p(99)<1000']\n"
                                    "    http_req_failed: ['rate<0.01']\n"
                                    "metrics:\n"
                                    "  labels: {}\n"
                                    "  require_delivery: false\n"
                                    "  remote_write:\n"
                                    "    server_url: null\n"
                                    "    push_interval: 5s\n"
                                    "    trend_stats: 'p(95),p(99),min,max'\n"
                                    "    trend_as_native_histogram: false\n"
                                    "    stale_markers: false\n"
                                    "    insecure_skip_tls_verify: false\n"
                                    "    username: null\n"
                                    "    password: null\n"
                                    "    bearer_token: null\n"
                                    "    client_certificate: null\n"
                                    "    client_certificate_key: null\n"
                                    "    headers: {}\n"
                                    "auth: null\n"
                                    "data: {}\n"
                                    "env_allow: []\n"
                                    "journeys: []\n"
                                    "baseline:\n"
                                    "  source: null\n"
                                    "  runs: 5\n"
                                    "  min_runs: 1\n"
                                    "  aggregate: median\n"
                                    "  max_age: 720h\n"
                                    "  pin_testid: null\n"
                                    "  missing: inconclusive\n"
                                    "  min_count: 100\n"
                                    "  timeout: 10s\n"
                                    "notify:\n"
                                    "  termination_log: /dev/termination-log\n"
                                    "  webhook_url: null\n"
                                    "  webhook_url_file: null\n"
                                    "  format: json\n"
                                    "  timeout: 10s\n"
                                    "  dashboard_url: null\n"
                                    "output:\n"
                                    "  summary_export: null\n"
                                    "  junit: null\n"
                                    "  report: null\n"
                                    "  log_format: auto\n"
                                    "  quiet: false\n"
                                    "  summary_trend_stats: 'avg,min,med,max,p(90),p(95)'\n"
                                    "no_thresholds: false\n";

/* ---- schema -------------------------------------------------------------- */

enum ftype {
    T_STR,        /* char *, checked by aux (a str_check) */
    T_INT,        /* int in [min, max] */
    T_BOOL,       /* bool */
    T_DUR,        /* int64_t usec in [min, max] */
    T_URL,        /* char *: http(s) URL with a host */
    T_HEADER,     /* char *: HTTP header name */
    T_ENUM,       /* int: index in aux (NULL-terminated names) */
    T_SECTION,    /* a mapping of more fields on the same base (aux: fields) */
    T_LIST,       /* services, stages (aux: struct list_spec) */
    T_KV,         /* labels, remote-write headers (aux: struct kv_spec) */
    T_THRESHOLDS, /* struct threshold_set */
    T_STATS,      /* char *: trend stats, a comma list or a YAML list */
    T_KEYFILE,    /* char * path; also reads the secret it holds (aux: struct secret_file) */
    T_LATER,      /* converted after everything else (journeys, auth, data: config_journey.c) */
};

enum {
    F_NULL = 1 << 0,    /* null (or empty) allowed: stored as NULL */
    F_SECRET = 1 << 1,  /* never echo the value */
    F_REQ = 1 << 2,     /* must be present (list items) */
    F_BASEURL = 1 << 3, /* URL used as a prefix: trailing '/' dropped */
    F_FILE = 1 << 4,    /* a path that must be readable now */
    F_PATH = 1 << 5,    /* a path appended to gateway.url: at most CONFIG_MAX_PATH bytes */
};

/* Returns NULL when s is fine, else a message of what is allowed. */
typedef const char *(*str_check)(const char *s);

struct field {
    const char *name;
    enum ftype type;
    unsigned flags;
    size_t off;
    int64_t min, max;
    const void *aux; /* sub-fields, list or map spec, enum names */
    str_check check; /* T_STR: what the text must look like */
};

struct cvt;

struct list_spec {
    size_t arr_off, n_off, item_size, max;
    const char *what;
    const struct field *fields;
    int (*item_init)(void *item);
    void (*item_clear)(void *item);
    int (*check)(struct cvt *cv, void *base, const struct doc_node *list, const char *key);
};

struct kv_spec {
    size_t arr_off, n_off, max;
    bool headers; /* else Prometheus labels */
};

struct cvt {
    struct diag *d;
};

/* A file holding one secret value: where the value goes, and what the messages call it. */
struct secret_file {
    size_t off; /* char * in struct config */
    const char *what;
    bool only_source; /* null file: no value (else the value may come from elsewhere) */
    const char *hint; /* what to do when the file cannot be opened, or NULL */
};

static const char *check_label_value(const char *s);
static const char *check_test_type(const char *s);
static const char *check_path(const char *s);
static const char *check_service_name(const char *s);
static const char *check_method(const char *s);
static const char *check_header_value(const char *s);
static const char *check_summary_trend_stats(const char *s);
static const char *check_secret_url(const char *s);
static const char *check_dashboard_url(const char *s);

const char *const cfg_log_format_names[] = {"auto", "json", "text", NULL};
const char *const config_aggregate_names[] = {"median", "mean", "min", "max", NULL};
const char *const config_missing_names[] = {"pass", "fail", "inconclusive", NULL};
const char *const config_notify_format_names[] = {"json", "slack", NULL};

#define CFG(m) offsetof(struct config, m)

static const struct secret_file gateway_key_file = {
    CFG(gateway.key), "key file", true,
    "give the Kong key's file with KONG_KEY_FILE=FILE (or --set gateway.key_file=FILE), or go "
    "without a key with --set gateway.key_file="};
static const struct secret_file webhook_url_file = {CFG(notify.webhook_url), "webhook URL file", false,
                                                    NULL};

static const struct field ready_fields[] = {
    {"path", T_STR, F_NULL | F_PATH, CFG(gateway.ready_path), 0, 0, NULL, check_path},
    {"timeout", T_DUR, 0, CFG(gateway.ready_timeout), 0, HOUR(1), NULL},
    {"status", T_INT, 0, CFG(gateway.ready_status), 100, 599, NULL},
    {NULL},
};

static const struct field gateway_fields[] = {
    {"url", T_URL, F_BASEURL, CFG(gateway.url), 0, 0, NULL},
    {"consumer_header", T_HEADER, 0, CFG(gateway.consumer_header), 0, 0, NULL},
    {"consumer", T_STR, 0, CFG(gateway.consumer), 0, 0, NULL, check_header_value},
    {"key_file", T_KEYFILE, F_NULL, CFG(gateway.key_file), 0, 0, &gateway_key_file},
    {"key_header", T_HEADER, 0, CFG(gateway.key_header), 0, 0, NULL},
    {"ca_file", T_STR, F_NULL | F_FILE, CFG(gateway.ca_file), 0, 0, NULL},
    {"ready", T_SECTION, 0, 0, 0, 0, ready_fields},
    {NULL},
};

#define SVC(m) offsetof(struct service, m)
static const struct field service_fields[] = {
    {"name", T_STR, F_REQ, SVC(name), 0, 0, NULL, check_service_name},
    {"smoke_path", T_STR, F_NULL | F_PATH, SVC(smoke_path), 0, 0, NULL, check_path},
    {"url", T_URL, F_NULL, SVC(url), 0, 0, NULL},
    {"method", T_STR, 0, SVC(method), 0, 0, NULL, check_method},
    {"expect_status", T_INT, 0, SVC(expect_status), 100, 599, NULL},
    {"max_latency", T_DUR, 0, SVC(max_latency), MS(1), MIN(10), NULL},
    {NULL},
};

#define STG(m) offsetof(struct stage, m)
static const struct field stage_fields[] = {
    {"duration", T_DUR, F_REQ, STG(duration), 0, DAY(7), NULL},
    {"target", T_INT, F_REQ, STG(target), 0, 100000, NULL},
    {NULL},
};

static int service_init(void *item);
static void service_clear(void *item);
static int services_check(struct cvt *cv, void *base, const struct doc_node *list, const char *key);
static int stage_init(void *item);
static int stages_check(struct cvt *cv, void *base, const struct doc_node *list, const char *key);

static const struct list_spec services_spec = {
    CFG(services),  CFG(nservices), sizeof(struct service), CONFIG_MAX_SERVICES, "services",
    service_fields, service_init,   service_clear,          services_check,
};

static const struct list_spec stages_spec = {
    CFG(load.stages), CFG(load.nstages), sizeof(struct stage), CONFIG_MAX_STAGES,
    "stages",         stage_fields,      stage_init,           NULL,
    stages_check,
};

static const struct field smoke_fields[] = {
    {"duration", T_DUR, 0, CFG(smoke.duration), 0, HOUR(1), NULL},
    {"iterations", T_INT, 0, CFG(smoke.iterations), 0, 1000000, NULL},
    {"retries", T_INT, 0, CFG(smoke.retries), 0, 10, NULL},
    {"think_time", T_DUR, 0, CFG(smoke.think_time), 0, MIN(10), NULL},
    {"request_timeout", T_DUR, 0, CFG(smoke.request_timeout), MS(1), MIN(10), NULL},
    {"thresholds", T_THRESHOLDS, 0, CFG(smoke.thresholds), 0, 0, NULL},
    {NULL},
};

static const struct field load_fields[] = {
    {"stages", T_LIST, 0, 0, 0, 0, &stages_spec},
    {"start_vus", T_INT, 0, CFG(load.start_vus), 0, 100000, NULL},
    {"think_time", T_DUR, 0, CFG(load.think_time), 0, MIN(10), NULL},
    {"graceful_ramp_down", T_DUR, 0, CFG(load.graceful_ramp_down), 0, HOUR(1), NULL},
    {"request_timeout", T_DUR, 0, CFG(load.request_timeout), MS(1), MIN(10), NULL},
    {"threads", T_INT, 0, CFG(load.threads), 0, ENGINE_MAX_THREADS, NULL},
    {"thresholds", T_THRESHOLDS, 0, CFG(load.thresholds), 0, 0, NULL},
    {"scenarios", T_LATER, 0, 0, 0, 0, NULL},
    {NULL},
};

static const struct kv_spec labels_spec = {CFG(metrics.labels), CFG(metrics.nlabels),
                                           CONFIG_MAX_LABELS, false};
static const struct kv_spec headers_spec = {CFG(metrics.rw.headers), CFG(metrics.rw.nheaders),
                                            CONFIG_MAX_HEADERS, true};

static const struct field rw_fields[] = {
    {"server_url", T_URL, F_NULL, CFG(metrics.rw.server_url), 0, 0, NULL},
    {"push_interval", T_DUR, 0, CFG(metrics.rw.push_interval), MS(100), HOUR(1), NULL},
    {"trend_stats", T_STATS, 0, CFG(metrics.rw.trend_stats), 0, 0, NULL},
    {"trend_as_native_histogram", T_BOOL, 0, CFG(metrics.rw.native_histogram), 0, 0, NULL},
    {"stale_markers", T_BOOL, 0, CFG(metrics.rw.stale_markers), 0, 0, NULL},
    {"insecure_skip_tls_verify", T_BOOL, 0, CFG(metrics.rw.insecure_skip_tls_verify), 0, 0, NULL},
    {"username", T_STR, F_NULL, CFG(metrics.rw.username), 0, 0, NULL},
    {"password", T_STR, F_NULL | F_SECRET, CFG(metrics.rw.password), 0, 0, NULL},
    {"bearer_token", T_STR, F_NULL | F_SECRET, CFG(metrics.rw.bearer_token), 0, 0, NULL},
    {"client_certificate", T_STR, F_NULL | F_FILE, CFG(metrics.rw.client_cert), 0, 0, NULL},
    {"client_certificate_key", T_STR, F_NULL | F_FILE, CFG(metrics.rw.client_key), 0, 0, NULL},
    {"headers", T_KV, 0, 0, 0, 0, &headers_spec},
    {NULL},
};

static const struct field metrics_fields[] = {
    {"labels", T_KV, 0, 0, 0, 0, &labels_spec},
    {"require_delivery", T_BOOL, 0, CFG(metrics.require_delivery), 0, 0, NULL},
    {"remote_write", T_SECTION, 0, 0, 0, 0, rw_fields},
    {NULL},
};

static const struct field output_fields[] = {
    {"summary_export", T_STR, F_NULL, CFG(summary_export), 0, 0, NULL},
    {"junit", T_STR, F_NULL, CFG(junit), 0, 0, NULL},
    {"report", T_STR, F_NULL, CFG(report), 0, 0, NULL},
    {"log_format", T_ENUM, 0, CFG(log_format), 0, 0, cfg_log_format_names},
    {"quiet", T_BOOL, 0, CFG(quiet), 0, 0, NULL},
    {"summary_trend_stats", T_STR, 0, CFG(summary_trend_stats), 0, 0, NULL,
     check_summary_trend_stats},
    {NULL},
};

static const struct field baseline_fields[] = {
    {"source", T_URL, F_NULL | F_BASEURL, CFG(baseline.source), 0, 0, NULL},
    {"runs", T_INT, 0, CFG(baseline.runs), 1, 100, NULL},
    {"min_runs", T_INT, 0, CFG(baseline.min_runs), 1, 100, NULL},
    {"aggregate", T_ENUM, 0, CFG(baseline.aggregate), 0, 0, config_aggregate_names},
    {"max_age", T_DUR, 0, CFG(baseline.max_age), MIN(1), HOUR(24 * 100), NULL},
    {"pin_testid", T_STR, F_NULL, CFG(baseline.pin_testid), 0, 0, NULL, check_label_value},
    {"missing", T_ENUM, 0, CFG(baseline.missing), 0, 0, config_missing_names},
    {"min_count", T_INT, 0, CFG(baseline.min_count), 0, 100000000, NULL},
    {"timeout", T_DUR, 0, CFG(baseline.timeout), MS(100), MIN(5), NULL},
    {NULL},
};

static const struct field notify_fields[] = {
    {"termination_log", T_STR, F_NULL, CFG(notify.termination_log), 0, 0, NULL},
    {"webhook_url", T_STR, F_NULL | F_SECRET, CFG(notify.webhook_url), 0, 0, NULL,
     check_secret_url},
    {"webhook_url_file", T_KEYFILE, F_NULL, CFG(notify.webhook_url_file), 0, 0, &webhook_url_file},
    {"format", T_ENUM, 0, CFG(notify.format), 0, 0, config_notify_format_names},
    {"timeout", T_DUR, 0, CFG(notify.timeout), MS(100), MIN(1), NULL},
    {"dashboard_url", T_STR, F_NULL, CFG(notify.dashboard_url), 0, 0, NULL, check_dashboard_url},
    {NULL},
};

static const struct field root_fields[] = {
    {"environment", T_STR, 0, CFG(environment), 0, 0, NULL, check_label_value},
    {"test_type", T_STR, F_NULL, CFG(test_type), 0, 0, NULL, check_test_type},
    {"testid", T_STR, F_NULL, CFG(testid), 0, 0, NULL, check_label_value},
    {"instance", T_STR, F_NULL, CFG(instance), 0, 0, NULL, check_label_value},
    {"ca_file", T_STR, F_NULL | F_FILE, CFG(ca_file), 0, 0, NULL},
    {"revision", T_STR, F_NULL, CFG(revision), 0, 0, NULL, check_label_value},
    {"gateway", T_SECTION, 0, 0, 0, 0, gateway_fields},
    {"services", T_LIST, 0, 0, 0, 0, &services_spec},
    {"smoke", T_SECTION, 0, 0, 0, 0, smoke_fields},
    {"load", T_SECTION, 0, 0, 0, 0, load_fields},
    {"metrics", T_SECTION, 0, 0, 0, 0, metrics_fields},
    {"baseline", T_SECTION, 0, 0, 0, 0, baseline_fields},
    {"notify", T_SECTION, 0, 0, 0, 0, notify_fields},
    {"output", T_SECTION, 0, 0, 0, 0, output_fields},
    {"auth", T_LATER, 0, 0, 0, 0, NULL},
    {"data", T_LATER, 0, 0, 0, 0, NULL},
    {"env_allow", T_LATER, 0, 0, 0, 0, NULL},
    {"journeys", T_LATER, 0, 0, 0, 0, NULL},
    {"no_thresholds", T_BOOL, 0, CFG(no_thresholds), 0, 0, NULL},
    {NULL},
};

static const struct field *field_find(const struct field *fields, const char *name)
{
    for (const struct field *f = fields; f->name; f++)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 4, 5))) int cfg_fail(struct diag *d, const struct doc_origin *at,
                                               const char *key, const char *fmt, ...)
{
    memset(d, 0, sizeof(*d));
    if (at)
        doc_where(at, d->where, sizeof(d->where));
    snprintf(d->key, sizeof(d->key), "%s", key ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A value quoted for a message: escaped, cut at 80 bytes, or hidden. */
static const char *quote(const char *s, bool secret, char *buf, size_t n)
{
    if (secret) {
        snprintf(buf, n, "(secret value not shown)");
        return buf;
    }
    return utf8_escape(s, strlen(s), true, buf, n);
}

static const char *kind_name(const struct doc_node *n)
{
    if (n->kind == DOC_MAP)
        return "a mapping";
    if (n->kind == DOC_SEQ)
        return "a list";
    return doc_is_null(n) ? "nothing (null)" : "a scalar";
}

static const char *type_name(const struct field *f)
{
    switch (f->type) {
    case T_INT:
        return "an integer";
    case T_BOOL:
        return "true or false";
    case T_DUR:
        return "a duration (like 500ms, 30s, 1m30s)";
    case T_URL:
        return "a URL (http:// or https://)";
    case T_HEADER:
        return "an HTTP header name";
    case T_ENUM:
        return "a name";
    case T_SECTION:
        return "a mapping";
    case T_LIST:
        return "a list";
    case T_KV:
        return "a mapping of names to values";
    case T_THRESHOLDS:
        return "a mapping of metric names to lists of thresholds";
    case T_STATS:
        return "a list of trend stats";
    default:
        return "a string";
    }
}

/* ---- string checks ------------------------------------------------------- */

bool cfg_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t left = strlen(s), l; left; p += l, left -= l)
        if (!(l = utf8_seq_len(p, left)))
            return false;
    return true;
}

bool cfg_has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* An http(s) URL with a host; a secret (a Slack webhook holds its token), so never quoted. */
static const char *check_secret_url(const char *s)
{
    if (strlen(s) > CONFIG_MAX_URL)
        return "is too long for a URL (at most 2048 bytes)";
    if (cfg_has_control(s))
        return "contains control characters; expected an http:// or https:// URL";
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    const char *why = NULL;
    if (!u)
        return "cannot be checked (out of memory)";
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        why = "is not a URL; expected http://host/... or https://host/...";
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        why = "is not an http:// or https:// URL";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return why;
}

/* A link for people: http(s), no control characters; "{testid}" is filled in later. */
static const char *check_dashboard_url(const char *s)
{
    if (strlen(s) > CONFIG_MAX_URL)
        return "is too long for a URL (at most 2048 bytes)";
    if (cfg_has_control(s))
        return "contains control characters";
    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
        return "is not an http:// or https:// URL";
    return NULL;
}

static const char *check_label_value(const char *s)
{
    size_t len = strlen(s);
    if (!len)
        return "must not be empty (it is a metric label value)";
    if (strspn(s, " ") == len)
        return "must not be blank (it is a metric label value)";
    /* "staging " would be a label value of its own, next to "staging" */
    if (s[0] == ' ' || s[len - 1] == ' ')
        return "has leading or trailing spaces (it is a metric label value)";
    if (len > MAX_LABEL_VALUE)
        return "is too long for a label value (at most 256 bytes)";
    return NULL;
}

static const char *check_test_type(const char *s)
{
    if (strcmp(s, "smoke") && strcmp(s, "load"))
        return "is not a test type; allowed: smoke, load (or null: the phase)";
    return NULL;
}

static const char *check_path(const char *s)
{
    if (s[0] != '/')
        return "is not a path; it must start with '/'";
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '#')
            return "is not a path; spaces and '#' are not allowed";
    return NULL;
}

static const char *check_service_name(const char *s)
{
    /* a letter first: the name becomes <NAME>_SERVICE_URL, and a variable cannot start
     * with a digit (Kubernetes refuses such env names) */
    static const char msg[] = "is not a service name; allowed: a lower-case letter, "
                              "then lower-case letters, digits, '_' and '-' (at most 63)";
    if (!(s[0] >= 'a' && s[0] <= 'z') || strlen(s) > 63)
        return msg;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return msg;
    return NULL;
}

void cfg_service_env_name(const char *name, char *buf, size_t n)
{
    size_t i = 0;
    for (; name[i] && i + sizeof("_SERVICE_URL") < n; i++)
        buf[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    snprintf(buf + i, n - i, "_SERVICE_URL");
}

static const char *check_method(const char *s)
{
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(s, methods[i]))
            return NULL;
    return "is not a method; allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
}

/* k6's summaryTrendStats: avg, min, med, max, count, p(N), comma-separated. */
static const char *check_summary_trend_stats(const char *s)
{
    static const char msg[] = "is not a list of trend stats; allowed, comma-separated: avg, min, "
                              "med, max, count, p(N) with 0 <= N <= 100";
    char buf[256];
    if (!*s || strlen(s) >= sizeof(buf))
        return msg;
    strcpy(buf, s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len && t[len - 1] == ' ')
            t[--len] = '\0';
        char *end;
        double v;
        if (!strcmp(t, "avg") || !strcmp(t, "min") || !strcmp(t, "med") || !strcmp(t, "max") ||
            !strcmp(t, "count"))
            continue;
        if (len < 4 || strncmp(t, "p(", 2) || t[len - 1] != ')' ||
            (v = strtod(t + 2, &end), end != t + len - 1) || !(v >= 0 && v <= 100))
            return msg;
    }
    return NULL;
}

static const char *check_header_value(const char *s)
{
    if (strlen(s) > 1024)
        return "is too long for a header value (at most 1024 bytes)";
    return NULL;
}

static bool header_name_ok(const char *s)
{
    if (!*s || strlen(s) > 256)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!(isalnum(*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

static bool label_name_ok(const char *s)
{
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/* Headers the gateway requests (smoke) must not carry as consumer_header or key_header:
 * set by libcurl or syncgate (Host, Content-Length, User-Agent...), or hop-by-hop and
 * framing headers a proxy acts on. */
static const char *const reserved_gateway_headers[] = {
    "host",    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "expect",         "proxy-connection",  "user-agent", NULL,
};

static bool gateway_header_reserved(const char *name)
{
    for (size_t i = 0; reserved_gateway_headers[i]; i++)
        if (!strcasecmp(name, reserved_gateway_headers[i]))
            return true;
    return false;
}

/* ---- scalar conversion --------------------------------------------------- */

static int set_str(char **dst, const char *s, bool secret)
{
    char *v = s ? strdup(s) : NULL;
    if (s && !v)
        return -ENOMEM;
    if (*dst && secret)
        explicit_bzero(*dst, strlen(*dst));
    free(*dst);
    *dst = v;
    return 0;
}

/* The scalar text of n, or a type error naming what was expected. */
static int want_scalar(struct cvt *cv, const struct doc_node *n, const char *key,
                       const char *expected, const char **out)
{
    if (n->kind != DOC_SCALAR)
        return cfg_fail(cv->d, &n->at, key, "expected %s, got %s", expected, kind_name(n));
    *out = n->str;
    return 0;
}

/* A value quoted for a message as it is shown everywhere: hidden when secret, through
 * config_redact_url when a URL or a path (red: scratch of MAX_STRING + 16 bytes). */
static const char *quote_value(const char *s, bool secret, bool url, char *red, char *buf,
                               size_t n)
{
    return quote(url && !secret ? config_redact_url(s, red, MAX_STRING + 16) : s, secret, buf, n);
}

/* Checks every string value gets, whatever its field; url: a URL or a path. */
static int check_string(struct cvt *cv, const struct doc_node *n, const char *key, bool secret,
                        bool url)
{
    char q[128], red[MAX_STRING + 16];
    if (!cfg_utf8_valid(n->str))
        return cfg_fail(cv->d, &n->at, key, "value is not valid UTF-8");
    if (cfg_has_control(n->str))
        return cfg_fail(cv->d, &n->at, key, "%s contains control characters, which are not allowed",
                    quote_value(n->str, secret, url, red, q, sizeof(q)));
    if (n->len > MAX_STRING)
        return cfg_fail(cv->d, &n->at, key, "value is too long (%zu bytes, at most %d)", n->len,
                    MAX_STRING);
    return 0;
}

static int parse_int(struct cvt *cv, const struct doc_node *n, const char *key, int64_t min,
                     int64_t max, int64_t *out)
{
    const char *s = NULL;
    char q[128];
    int rc = want_scalar(cv, n, key, "an integer", &s);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    bool digits = (s[0] >= '0' && s[0] <= '9') ||
                  ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9');
    if (!digits || *end || errno == ERANGE)
        return cfg_fail(cv->d, &n->at, key, "expected an integer from %lld to %lld, got %s",
                    (long long)min, (long long)max, quote(s, false, q, sizeof(q)));
    if (v < min || v > max)
        return cfg_fail(cv->d, &n->at, key, "%lld is out of range; allowed: %lld to %lld", v,
                    (long long)min, (long long)max);
    *out = v;
    return 0;
}

static int parse_bool(struct cvt *cv, const struct doc_node *n, const char *key, bool *out)
{
    const char *s = NULL;
    char q[128];
    bool env = n->at.src == DOC_SRC_ENV;
    int rc = want_scalar(cv, n, key, "true or false", &s);
    if (rc)
        return rc;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || (env && !strcmp(s, "1")))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE") ||
             (env && !strcmp(s, "0")))
        *out = false;
    else
        return cfg_fail(cv->d, &n->at, key, "expected %s, got %s",
                    env ? "true, false, 1 or 0" : "true or false", quote(s, false, q, sizeof(q)));
    return 0;
}

static int parse_dur(struct cvt *cv, const struct doc_node *n, const char *key, int64_t min,
                     int64_t max, int64_t *out)
{
    const char *s = NULL;
    char q[128], a[32], b[32];
    int rc = want_scalar(cv, n, key, "a duration (like 500ms, 30s, 1m30s)", &s);
    if (rc)
        return rc;
    int64_t v;
    rc = units_parse_duration(s, &v);
    if (rc == -ERANGE)
        return cfg_fail(cv->d, &n->at, key, "duration %s is out of range; allowed: %s to %s",
                    quote(s, false, q, sizeof(q)), units_format_duration(min, a, sizeof(a)),
                    units_format_duration(max, b, sizeof(b)));
    if (rc)
        return cfg_fail(cv->d, &n->at, key,
                    "invalid duration %s; expected a number with a unit: 500ms, 30s, 1m30s, 2h",
                    quote(s, false, q, sizeof(q)));
    if (v < min || v > max)
        return cfg_fail(cv->d, &n->at, key, "duration %s is out of range; allowed: %s to %s",
                    quote(s, false, q, sizeof(q)), units_format_duration(min, a, sizeof(a)),
                    units_format_duration(max, b, sizeof(b)));
    *out = v;
    return 0;
}

/* Append k bytes of p to the string in buf (capacity n, length *len), truncating. */
static void append(char *buf, size_t n, size_t *len, const char *p, size_t k)
{
    size_t room = n - 1 - *len;
    if (k > room)
        k = room;
    memcpy(buf + *len, p, k);
    *len += k;
    buf[*len] = '\0';
}

/* See config.h. Works on the text alone, so a path or a URL libcurl would refuse is
 * hidden the same way. */
const char *config_redact_url(const char *url, char *buf, size_t n)
{
    static const char red[] = "<redacted>";
    const char *scheme_end = strstr(url, "://");
    const char *auth = scheme_end ? scheme_end + 3 : NULL;
    size_t alen = auth ? strcspn(auth, "/?#") : 0;
    const char *at = auth ? memrchr(auth, '@', alen) : NULL;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    size_t len = 0;
    buf[0] = '\0';
    if (colon) {
        append(buf, n, &len, url, (size_t)(colon + 1 - url));
        append(buf, n, &len, red, sizeof(red) - 1);
        url = at;
    }
    size_t head = strcspn(url, "?#");
    append(buf, n, &len, url, head);
    url += head;
    /* name[=value] pairs up to the fragment: keep each name, hide each value */
    while (*url == '?' || *url == '&') {
        size_t name = strcspn(url + 1, "=&#") + 1; /* with its leading ? or & */
        append(buf, n, &len, url, name);
        url += name;
        if (*url == '=') {
            append(buf, n, &len, "=", 1);
            append(buf, n, &len, red, sizeof(red) - 1);
            url += 1 + strcspn(url + 1, "&#");
        }
    }
    append(buf, n, &len, url, strlen(url)); /* the fragment, if any */
    return buf;
}

/* base: a URL that gets paths appended (gateway.url), so no query or fragment. */
static int check_url(struct cvt *cv, const struct doc_node *n, const char *key, const char *s,
                     bool base)
{
    char q[160], red[MAX_STRING + 16];
    const char *why = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, s, 0);
    /* libcurl forgives "http:/host" and "http:///host"; a profile should not rely on that. */
    size_t slen = strcspn(s, ":");
    const char *sep = s[slen] ? s + slen : NULL;
    if (uc)
        why = curl_url_strerror(uc);
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
             (strcmp(scheme, "http") && strcmp(scheme, "https")))
        why = "the scheme must be http or https";
    else if (!sep || strncmp(sep, "://", 3))
        why = "the scheme must be followed by \"://\"";
    else if (sep[3] == '/')
        why = "too many slashes after the scheme";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !host || !*host)
        why = "it has no host";
    else if (!curl_url_get(u, CURLUPART_PORT, &port, 0) && port && strtol(port, NULL, 10) == 0)
        why = "port 0 is not a port a server can listen on";
    else if (base && s[strcspn(s, "?#")])
        why = "a base URL cannot have a query or a fragment: paths are appended to it";
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    if (why)
        return cfg_fail(cv->d, &n->at, key,
                    "invalid URL %s (%s); expected http://host[:port][/path] or https://...",
                    quote(config_redact_url(s, red, sizeof(red)), false, q, sizeof(q)), why);
    return 0;
}

int cfg_read_fd(int fd, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    while (*len + 1 < cap) {
        ssize_t r = read(fd, buf + *len, cap - 1 - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        *len += (size_t)r;
    }
    return 0;
}

/*
 * Read a file that holds one secret value (the gateway key, the webhook URL):
 * its content never reaches a message. The value goes to sf->off in c, the
 * path to the field's own place (path_dst).
 */
static int read_key_file(struct cvt *cv, const struct doc_node *n, const char *key,
                         struct config *c, const struct secret_file *sf, char **path_dst)
{
    char q[160], buf[MAX_KEY_BYTES + 2];
    const char *what = sf->what;
    quote(n->str, false, q, sizeof(q));
    /* O_NONBLOCK: a FIFO with no writer reads as empty instead of hanging the gate */
    int fd = open(n->str, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    /* Outside the pod that mounts the file (a laptop, CI), say how to go on. */
    if (fd < 0)
        return cfg_fail(cv->d, &n->at, key, "cannot read %s %s: %s%s%s", what, q, strerror(errno),
                        sf->hint ? "; " : "", sf->hint ? sf->hint : "");
    size_t len = 0;
    int err = cfg_read_fd(fd, buf, sizeof(buf), &len);
    close(fd);
    int rc = 0;
    if (err) {
        rc = cfg_fail(cv->d, &n->at, key, "cannot read %s %s: %s", what, q, strerror(err));
        goto out;
    }
    if (len > MAX_KEY_BYTES) {
        rc = cfg_fail(cv->d, &n->at, key, "%s %s is larger than %d bytes", what, q,
                      MAX_KEY_BYTES);
        goto out;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (!len) {
        rc = cfg_fail(cv->d, &n->at, key, "%s %s is empty", what, q);
        goto out;
    }
    if (strlen(buf) != len || cfg_has_control(buf)) {
        rc = cfg_fail(cv->d, &n->at, key,
                      "%s %s contains control characters; it must hold one %s", what, q,
                      sf->off == offsetof(struct config, gateway.key) ? "header value" : "URL");
        goto out;
    }
    if (sf->off == offsetof(struct config, notify.webhook_url)) {
        const char *why = check_secret_url(buf);
        if (why) {
            rc = cfg_fail(cv->d, &n->at, key, "%s %s: its content %s", what, q, why);
            goto out;
        }
    }
    rc = set_str((char **)((unsigned char *)c + sf->off), buf, true);
    if (!rc)
        rc = set_str(path_dst, n->str, false);
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* Trend stats: "p(95),p(99),min" or a YAML list; stored as a normalised comma list. */
static int cvt_stats(struct cvt *cv, const struct doc_node *n, const char *key, char **dst)
{
    char out[512] = "", item[64], q[128];
    const char *items[MAX_TREND_STATS + 1];
    const struct doc_node *at[MAX_TREND_STATS + 1];
    char scratch[MAX_STRING + 1];
    size_t nitems = 0;

    if (n->kind == DOC_SEQ) {
        for (const struct doc_node *e = n->head; e; e = e->next) {
            if (e->kind != DOC_SCALAR || doc_is_null(e))
                return cfg_fail(cv->d, &e->at, key, "expected a trend stat name, got %s", kind_name(e));
            int rc = check_string(cv, e, key, false, false);
            if (rc)
                return rc;
            if (nitems > MAX_TREND_STATS)
                break;
            at[nitems] = e;
            items[nitems++] = e->str;
        }
    } else if (n->kind == DOC_SCALAR && !doc_is_null(n)) {
        int rc = check_string(cv, n, key, false, false); /* over MAX_STRING, scratch would cut it */
        if (rc)
            return rc;
        /* Split a copy on commas; items point into scratch. */
        snprintf(scratch, sizeof(scratch), "%s", n->str);
        char *save = NULL;
        for (char *t = strtok_r(scratch, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            char *e = t + strlen(t);
            while (e > t && e[-1] == ' ')
                *--e = '\0';
            if (nitems > MAX_TREND_STATS)
                break;
            at[nitems] = n;
            items[nitems++] = t;
        }
    } else {
        return cfg_fail(cv->d, &n->at, key,
                    "expected a list of trend stats like \"p(95),p(99),min,max\", "
                    "got %s",
                    kind_name(n));
    }
    if (!nitems)
        return cfg_fail(cv->d, &n->at, key, "needs at least one trend stat, like \"p(95),min,max\"");
    if (nitems > MAX_TREND_STATS)
        return cfg_fail(cv->d, &n->at, key, "too many trend stats (at most %d)", MAX_TREND_STATS);

    char suffix[MAX_TREND_STATS + 1][sizeof(((struct rw_stat *)0)->suffix)];
    for (size_t i = 0; i < nitems; i++) {
        const char *s = items[i];
        /* One set of rules: the encoder's own parser judges each item and names its series. */
        struct rw_stat stat;
        char why[128], q2[128];
        bool good = !strchr(s, ',') && rw_parse_trend_stats(s, &stat, 1, why, sizeof(why)) == 1;
        if (!good)
            return cfg_fail(cv->d, &at[i]->at, key,
                        "invalid trend stat %s; allowed: p(N) with 0 <= N <= 100, min, max, avg, "
                        "med, count, sum",
                        quote(s, false, q, sizeof(q)));
        snprintf(suffix[i], sizeof(suffix[i]), "%s", stat.suffix);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(items[j], s))
                return cfg_fail(cv->d, &at[i]->at, key, "trend stat %s is listed twice",
                            quote(s, false, q, sizeof(q)));
            if (!strcmp(suffix[j], suffix[i]))
                return cfg_fail(cv->d, &at[i]->at, key,
                                "trend stats %s and %s would both be sent as \"%s\"",
                                quote(items[j], false, q2, sizeof(q2)),
                                quote(s, false, q, sizeof(q)), suffix[i]);
        }
        snprintf(item, sizeof(item), "%s%s", i ? "," : "", s);
        if (strlen(out) + strlen(item) >= sizeof(out))
            return cfg_fail(cv->d, &n->at, key, "trend stats list is too long");
        strcat(out, item);
    }
    return set_str(dst, out, false);
}

/* ---- structured conversion ------------------------------------------------ */

static int cvt_section(struct cvt *cv, void *base, const struct field *fields,
                       const struct doc_node *n, const char *key);

/* Keys only label messages, so a cut-off key is acceptable. */
static void join_key(char *buf, size_t n, const char *key, const char *name)
{
    if (snprintf(buf, n, "%s%s%s", key, *key ? "." : "", name) >= (int)n)
        buf[n - 1] = '\0';
}

static void index_key(char *buf, size_t n, const char *key, size_t i)
{
    if (snprintf(buf, n, "%s[%zu]", key, i) >= (int)n)
        buf[n - 1] = '\0';
}

static int cvt_list(struct cvt *cv, void *base, const struct list_spec *ls,
                    const struct doc_node *n, const char *key)
{
    char k[256];
    if (n->kind != DOC_SEQ && !doc_is_null(n))
        return cfg_fail(cv->d, &n->at, key, "expected a list of %s, got %s", ls->what, kind_name(n));
    unsigned char *arr = (unsigned char *)base + ls->arr_off;
    size_t *count = (size_t *)((unsigned char *)base + ls->n_off);
    for (size_t i = 0; i < *count; i++)
        if (ls->item_clear)
            ls->item_clear(arr + i * ls->item_size);
    memset(arr, 0, ls->max * ls->item_size);
    *count = 0;
    size_t len = n->kind == DOC_SEQ ? n->n : 0;
    if (len > ls->max)
        return cfg_fail(cv->d, &n->at, key, "too many %s (%zu; at most %zu)", ls->what, len, ls->max);
    size_t i = 0;
    for (const struct doc_node *e = n->kind == DOC_SEQ ? n->head : NULL; e; e = e->next, i++) {
        index_key(k, sizeof(k), key, i);
        void *item = arr + i * ls->item_size;
        int rc = ls->item_init ? ls->item_init(item) : 0;
        if (rc)
            return rc;
        (*count)++;
        if (e->kind != DOC_MAP)
            return cfg_fail(cv->d, &e->at, k, "expected a mapping (one of the %s), got %s", ls->what,
                        kind_name(e));
        rc = cvt_section(cv, item, ls->fields, e, k);
        if (rc)
            return rc;
    }
    return ls->check ? ls->check(cv, base, n, key) : 0;
}

static void kv_clear(struct kv *arr, size_t *count, bool secret)
{
    for (size_t i = 0; i < *count; i++) {
        free(arr[i].key);
        if (secret && arr[i].value)
            explicit_bzero(arr[i].value, strlen(arr[i].value));
        free(arr[i].value);
        arr[i].key = arr[i].value = NULL;
    }
    *count = 0;
}

static int cvt_kv(struct cvt *cv, void *base, const struct kv_spec *ks, const struct doc_node *n,
                  const char *key)
{
    char k[256], q[128];
    struct kv *arr = (struct kv *)((unsigned char *)base + ks->arr_off);
    size_t *count = (size_t *)((unsigned char *)base + ks->n_off);
    const char *what = ks->headers ? "headers" : "labels";
    kv_clear(arr, count, ks->headers);
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(cv->d, &n->at, key, "expected a mapping of %s, got %s", what, kind_name(n));
    if (n->n > ks->max)
        return cfg_fail(cv->d, &n->at, key, "too many %s (%zu; at most %zu)", what, n->n, ks->max);
    for (const struct doc_node *e = n->head; e; e = e->next) {
        join_key(k, sizeof(k), key, e->key);
        quote(e->key, false, q, sizeof(q));
        if (ks->headers) {
            if (!header_name_ok(e->key))
                return cfg_fail(cv->d, &e->key_at, k,
                            "invalid header name %s; allowed: letters, digits and "
                            "!#$%%&'*+-.^_`|~",
                            q);
            if (rw_header_reserved(e->key))
                return cfg_fail(cv->d, &e->key_at, k,
                                "header %s is set by syncgate itself and cannot be overridden", q);
            for (size_t i = 0; i < *count; i++)
                if (!strcasecmp(arr[i].key, e->key))
                    return cfg_fail(cv->d, &e->key_at, k,
                                "header %s is given twice (header names ignore case)", q);
        } else {
            if (!label_name_ok(e->key))
                return cfg_fail(cv->d, &e->key_at, k,
                            "invalid label name %s; allowed: [a-zA-Z_][a-zA-Z0-9_]*", q);
            if (!strncmp(e->key, "__", 2))
                return cfg_fail(cv->d, &e->key_at, k,
                            "label names starting with \"__\" are reserved by Prometheus");
            if (metrics_tag_reserved(e->key)) {
                char names[400];
                size_t len = 0;
                names[0] = '\0';
                for (size_t i = 0; metrics_reserved_tags[i] && len < sizeof(names); i++)
                    len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                            i ? ", " : "", metrics_reserved_tags[i]);
                return cfg_fail(cv->d, &e->key_at, k,
                                "label %s is set by syncgate itself; reserved: %s", q, names);
            }
        }
        if (e->kind != DOC_SCALAR || doc_is_null(e))
            return cfg_fail(cv->d, &e->at, k, "expected a string value, got %s", kind_name(e));
        int rc = check_string(cv, e, k, ks->headers, false);
        if (rc)
            return rc;
        if (!*e->str)
            return cfg_fail(cv->d, &e->at, k, "value must not be empty");
        if (!ks->headers && e->len > MAX_LABEL_VALUE)
            return cfg_fail(cv->d, &e->at, k, "label value is too long (at most %d bytes)",
                        MAX_LABEL_VALUE);
        const char *why = ks->headers ? NULL : check_label_value(e->str);
        if (why)
            return cfg_fail(cv->d, &e->at, k, "%s %s", quote(e->str, false, q, sizeof(q)), why);
        arr[*count].key = strdup(e->key);
        arr[*count].value = strdup(e->str);
        (*count)++;
        if (!arr[*count - 1].key || !arr[*count - 1].value)
            return -ENOMEM;
    }
    return 0;
}

static void thresholds_clear(struct threshold_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        threshold_clear(&set->t[i]);
    memset(set, 0, sizeof(*set));
}

/* One threshold: a string, or {threshold, abortOnFail, delayAbortEval}. */
static int cvt_threshold(struct cvt *cv, struct threshold_set *set, const char *metric,
                         const struct doc_node *e, const char *k)
{
    char kk[300], q[160], err[256];
    const struct doc_node *expr = NULL;
    bool abort_on_fail = false;
    int64_t delay = 0;
    int rc;

    if (e->kind == DOC_SCALAR && !doc_is_null(e)) {
        expr = e;
    } else if (e->kind == DOC_MAP) {
        for (const struct doc_node *o = e->head; o; o = o->next) {
            snprintf(kk, sizeof(kk), "%s.%s", k, o->key);
            if (!strcmp(o->key, "threshold")) {
                if (o->kind != DOC_SCALAR || doc_is_null(o))
                    return cfg_fail(cv->d, &o->at, kk,
                                "expected a threshold like \"p(95)<500\", got %s", kind_name(o));
                expr = o;
            } else if (!strcmp(o->key, "abortOnFail")) {
                /* null is false, as in k6 (JSON null leaves a Go bool alone) */
                rc = doc_is_null(o) ? 0 : parse_bool(cv, o, kk, &abort_on_fail);
                if (rc)
                    return rc;
            } else if (!strcmp(o->key, "delayAbortEval")) {
                /* null is no delay, as in k6 (a null NullDuration) */
                rc = doc_is_null(o) ? 0 : parse_dur(cv, o, kk, 0, DAY(7), &delay);
                if (rc)
                    return rc;
            } else {
                return cfg_fail(cv->d, &o->key_at, kk,
                            "unknown key %s; allowed: threshold, abortOnFail, delayAbortEval",
                            quote(o->key, false, q, sizeof(q)));
            }
        }
        if (!expr)
            return cfg_fail(cv->d, &e->at, k, "missing key \"threshold\" (the expression)");
    } else {
        return cfg_fail(cv->d, &e->at, k,
                    "expected a threshold like \"p(95)<500\" or {threshold: ..., abortOnFail: "
                    "true}, got %s",
                    kind_name(e));
    }
    rc = check_string(cv, expr, k, false, false);
    if (rc)
        return rc;
    if (set->n >= CONFIG_MAX_THRESHOLDS)
        return cfg_fail(cv->d, &e->at, k, "too many thresholds (at most %d per phase)",
                    CONFIG_MAX_THRESHOLDS);
    struct threshold *t = &set->t[set->n];
    memset(t, 0, sizeof(*t));
    err[0] = '\0';
    rc = threshold_parse(t, metric, expr->str, err, sizeof(err));
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return cfg_fail(cv->d, &expr->at, k, "invalid threshold: %s",
                    err[0] ? err : quote(expr->str, false, q, sizeof(q)));
    t->abort_on_fail = abort_on_fail;
    t->delay_abort_eval = delay;
    set->n++;
    return 0;
}

static int cvt_thresholds(struct cvt *cv, struct threshold_set *set, const struct doc_node *n,
                          const char *key)
{
    char k[256], ki[280];
    thresholds_clear(set);
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(cv->d, &n->at, key,
                    "expected a mapping of metric names to lists of thresholds, like "
                    "{http_req_duration: [\"p(95)<500\"]}, got %s",
                    kind_name(n));
    for (const struct doc_node *m = n->head; m; m = m->next) {
        join_key(k, sizeof(k), key, m->key);
        if (m->kind != DOC_SEQ)
            return cfg_fail(cv->d, &m->at, k,
                        "expected a list of thresholds, like [\"p(95)<500\"], got %s",
                        kind_name(m));
        size_t i = 0;
        for (const struct doc_node *e = m->head; e; e = e->next, i++) {
            index_key(ki, sizeof(ki), k, i);
            int rc = cvt_threshold(cv, set, m->key, e, ki);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int cvt_field(struct cvt *cv, void *base, const struct field *f, const struct doc_node *n,
                     const char *key)
{
    unsigned char *p = (unsigned char *)base + f->off;
    char q[160];
    int64_t v = 0;
    int rc;

    switch (f->type) {
    case T_SECTION:
        if (doc_is_null(n))
            return 0;
        return cvt_section(cv, base, f->aux, n, key);
    case T_LIST:
        return cvt_list(cv, base, f->aux, n, key);
    case T_KV:
        return cvt_kv(cv, base, f->aux, n, key);
    case T_THRESHOLDS:
        return cvt_thresholds(cv, (struct threshold_set *)p, n, key);
    case T_STATS:
        return cvt_stats(cv, n, key, (char **)p);
    case T_LATER:
        return 0;
    case T_INT:
        rc = parse_int(cv, n, key, f->min, f->max, &v);
        if (!rc)
            *(int *)p = (int)v;
        return rc;
    case T_BOOL:
        return parse_bool(cv, n, key, (bool *)p);
    case T_DUR:
        return parse_dur(cv, n, key, f->min, f->max, (int64_t *)p);
    case T_ENUM: {
        const char *const *names = f->aux;
        const char *s = NULL;
        char allowed[128] = "";
        rc = want_scalar(cv, n, key, "a name", &s);
        if (rc)
            return rc;
        for (int i = 0; names[i]; i++) {
            if (!strcmp(s, names[i])) {
                *(int *)p = i;
                return 0;
            }
            snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                     i ? ", " : "", names[i]);
        }
        return cfg_fail(cv->d, &n->at, key, "%s is not allowed; allowed: %s",
                    quote(s, false, q, sizeof(q)), allowed);
    }
    default:
        break;
    }

    /* The string-valued types. */
    bool secret = f->flags & F_SECRET;
    char **dst = (char **)p;
    if (n->kind != DOC_SCALAR)
        return cfg_fail(cv->d, &n->at, key, "expected %s, got %s", type_name(f), kind_name(n));
    if (doc_is_null(n) || !*n->str) {
        if (f->flags & F_NULL) {
            if (f->type == T_KEYFILE) {
                const struct secret_file *sf = f->aux;
                if (sf->only_source)
                    set_str((char **)((unsigned char *)base + sf->off), NULL, true);
            }
            return set_str(dst, NULL, secret);
        }
        return cfg_fail(cv->d, &n->at, key, "must not be empty; expected %s", type_name(f));
    }
    bool url = f->type == T_URL || (f->flags & F_PATH);
    rc = check_string(cv, n, key, secret, url);
    if (rc)
        return rc;
    const char *s = n->str;
    switch (f->type) {
    case T_URL: {
        if (n->len > CONFIG_MAX_URL)
            return cfg_fail(cv->d, &n->at, key, "URL is too long (at most %d bytes)",
                            CONFIG_MAX_URL);
        rc = check_url(cv, n, key, s, f->flags & F_BASEURL);
        if (rc)
            return rc;
        rc = set_str(dst, s, false);
        if (!rc && (f->flags & F_BASEURL)) {
            /* A base URL gets paths appended: keep "http://h/api" + "/x" single-slashed. */
            size_t len = strlen(*dst);
            while (len && (*dst)[len - 1] == '/')
                (*dst)[--len] = '\0';
        }
        return rc;
    }
    case T_HEADER:
        if (!header_name_ok(s))
            return cfg_fail(cv->d, &n->at, key,
                        "invalid header name %s; allowed: letters, digits and !#$%%&'*+-.^_`|~",
                        quote(s, false, q, sizeof(q)));
        if (gateway_header_reserved(s))
            return cfg_fail(cv->d, &n->at, key,
                            "header %s is set by syncgate itself and cannot be overridden",
                            quote(s, false, q, sizeof(q)));
        return set_str(dst, s, false);
    case T_KEYFILE:
        return read_key_file(cv, n, key, base, f->aux, dst);
    default: {
        if ((f->flags & F_PATH) && n->len > CONFIG_MAX_PATH)
            return cfg_fail(cv->d, &n->at, key, "path is too long (%zu bytes, at most %d)", n->len,
                            CONFIG_MAX_PATH);
        const char *why = f->check ? f->check(s) : NULL;
        if (why) {
            char red[MAX_STRING + 16];
            return cfg_fail(cv->d, &n->at, key, "%s %s",
                            quote_value(s, secret, url, red, q, sizeof(q)), why);
        }
        if ((f->flags & F_FILE) && access(s, R_OK))
            return cfg_fail(cv->d, &n->at, key, "cannot read %s: %s", quote(s, false, q, sizeof(q)),
                        strerror(errno));
        /* access() passes a directory, which TLS would only refuse at the first request */
        struct stat st;
        if ((f->flags & F_FILE) && stat(s, &st) == 0 && S_ISDIR(st.st_mode))
            return cfg_fail(cv->d, &n->at, key, "cannot read %s: %s", quote(s, false, q, sizeof(q)),
                        strerror(EISDIR));
        return set_str(dst, s, secret);
    }
    }
}

static int cvt_section(struct cvt *cv, void *base, const struct field *fields,
                       const struct doc_node *n, const char *key)
{
    char k[256], q[128], allowed[400];
    if (n->kind != DOC_MAP)
        return cfg_fail(cv->d, &n->at, key, "expected a mapping, got %s", kind_name(n));
    for (const struct doc_node *e = n->head; e; e = e->next) {
        join_key(k, sizeof(k), key, e->key);
        const struct field *f = field_find(fields, e->key);
        if (!f) {
            allowed[0] = '\0';
            for (const struct field *g = fields; g->name; g++)
                snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                         g == fields ? "" : ", ", g->name);
            return cfg_fail(cv->d, &e->key_at, k, "unknown key %s; allowed: %s",
                        quote(e->key, false, q, sizeof(q)), allowed);
        }
        int rc = cvt_field(cv, base, f, e, k);
        if (rc)
            return rc;
    }
    for (const struct field *f = fields; f->name; f++) {
        if ((f->flags & F_REQ) && !doc_map_get(n, f->name)) {
            join_key(k, sizeof(k), key, f->name);
            return cfg_fail(cv->d, &n->at, k, "missing; every item needs \"%s\"", f->name);
        }
    }
    return 0;
}

/* ---- list items ------------------------------------------------------------ */

static int service_init(void *item)
{
    struct service *s = item;
    s->method = strdup("GET");
    s->expect_status = 200;
    s->max_latency = SEC(1);
    return s->method ? 0 : -ENOMEM;
}

static void service_clear(void *item)
{
    struct service *s = item;
    free(s->name);
    free(s->smoke_path);
    free(s->url);
    free(s->method);
    memset(s, 0, sizeof(*s));
}

static int services_check(struct cvt *cv, void *base, const struct doc_node *list, const char *key)
{
    struct config *c = base;
    char k[256], q[128];
    if (!c->nservices)
        return cfg_fail(cv->d, &list->at, key, "needs at least one service");
    size_t i = 0;
    for (const struct doc_node *e = list->head; e; e = e->next, i++) {
        const struct service *s = &c->services[i];
        index_key(k, sizeof(k), key, i);
        if (!s->smoke_path && !s->url)
            return cfg_fail(cv->d, &e->at, k,
                        "service %s has neither smoke_path nor url, so nothing would request it",
                        quote(s->name, false, q, sizeof(q)));
        for (size_t j = 0; j < i; j++) {
            const struct doc_node *nm = doc_map_get(e, "name");
            char var[128], var2[128], q2[128];
            snprintf(k, sizeof(k), "%s[%zu].name", key, i);
            if (!strcmp(c->services[j].name, s->name))
                return cfg_fail(cv->d, &nm->at, k,
                            "duplicate service name %s (also %s[%zu]); names must be unique",
                            quote(s->name, false, q, sizeof(q)), key, j);
            cfg_service_env_name(s->name, var, sizeof(var));
            cfg_service_env_name(c->services[j].name, var2, sizeof(var2));
            if (!strcmp(var, var2))
                return cfg_fail(cv->d, &nm->at, k,
                                "%s and %s (%s[%zu]) would share the variable %s",
                                quote(s->name, false, q, sizeof(q)),
                                quote(c->services[j].name, false, q2, sizeof(q2)), key, j, var);
        }
    }
    /* A service without url is smoke-only, and a profile for `syncgate smoke` may have
     * no url at all: config_check_load refuses that for load and run. */
    doc_where(&list->at, c->services_where, sizeof(c->services_where));
    return 0;
}

static int stage_init(void *item)
{
    memset(item, 0, sizeof(struct stage));
    return 0;
}

static int stages_check(struct cvt *cv, void *base, const struct doc_node *list, const char *key)
{
    struct config *c = base;
    if (!c->load.nstages)
        return cfg_fail(cv->d, &list->at, key,
                    "needs at least one stage, like [{duration: 30s, target: 10}]");
    int64_t total = 0;
    for (size_t i = 0; i < c->load.nstages; i++)
        total += c->load.stages[i].duration; /* at most 64 stages of 7 days: no overflow */
    if (!total)
        return cfg_fail(cv->d, &list->at, key, "every stage lasts 0s, so load would send nothing");
    return 0;
}

int config_check_load(const struct config *c, struct diag *d)
{
    for (size_t i = 0; i < c->nservices; i++)
        if (c->services[i].url)
            return 0;
    cfg_fail(d, NULL, "services", "no service has a url, so load would have nothing to request");
    snprintf(d->where, sizeof(d->where), "%s", c->services_where);
    return -EINVAL;
}

/* ---- defaults, clear ------------------------------------------------------ */

void config_clear(struct config *c)
{
    if (!c)
        return;
    free(c->profile_path);
    free(c->environment);
    free(c->test_type);
    free(c->testid);
    free(c->instance);
    free(c->ca_file);
    free(c->gateway.ca_file);
    free(c->gateway.url);
    free(c->gateway.consumer_header);
    free(c->gateway.consumer);
    free(c->gateway.key_file);
    free(c->gateway.key_header);
    if (c->gateway.key)
        explicit_bzero(c->gateway.key, strlen(c->gateway.key));
    free(c->gateway.key);
    free(c->gateway.ready_path);
    for (size_t i = 0; i < c->nservices && i < CONFIG_MAX_SERVICES; i++)
        service_clear(&c->services[i]);
    thresholds_clear(&c->smoke.thresholds);
    thresholds_clear(&c->load.thresholds);
    kv_clear(c->metrics.labels, &c->metrics.nlabels, false);
    struct rw_config *rw = &c->metrics.rw;
    free(rw->server_url);
    free(rw->trend_stats);
    free(rw->username);
    set_str(&rw->password, NULL, true);
    set_str(&rw->bearer_token, NULL, true);
    free(rw->client_cert);
    free(rw->client_key);
    kv_clear(rw->headers, &rw->nheaders, true);
    free(c->revision);
    free(c->baseline.source);
    free(c->baseline.pin_testid);
    free(c->notify.termination_log);
    set_str(&c->notify.webhook_url, NULL, true);
    free(c->notify.webhook_url_file);
    free(c->notify.dashboard_url);
    free(c->summary_export);
    free(c->junit);
    free(c->summary_trend_stats);
    journey_set_clear(&c->journeys);
    for (size_t i = 0; i < c->load.nscenarios; i++)
        cfg_scenario_clear(&c->load.scenarios[i]);
    free(c->load.scenarios);
    for (size_t i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    free(c->report);
    cfg_scaleout_clear(c);
    memset(c, 0, sizeof(*c));
}

/* Values that are computed rather than written: a fresh testid, the host name. */
static int config_finish(struct config *c, bool *testid_generated)
{
    *testid_generated = !c->testid;
    if (!c->testid) {
        unsigned char rnd[8];
        char hex[2 * sizeof(rnd) + 1];
        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
            /* No entropy yet (early boot): time and pid still differ per run. */
            uint64_t x = (uint64_t)units_now_wall() ^ ((uint64_t)getpid() << 40);
            memcpy(rnd, &x, sizeof(rnd));
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        if (set_str(&c->testid, hex, false))
            return -ENOMEM;
    }
    if (!c->instance) {
        char host[256];
        if (gethostname(host, sizeof(host)) || !host[0])
            snprintf(host, sizeof(host), "unknown");
        host[sizeof(host) - 1] = '\0';
        if (set_str(&c->instance, host, false))
            return -ENOMEM;
    }
    return 0;
}

static int parse_defaults(struct doc *doc, struct doc_node **root, struct diag *d)
{
    return doc_parse_yaml(doc, defaults_yaml, sizeof(defaults_yaml) - 1, DOC_SRC_DEFAULT,
                          "defaults", root, d);
}

/* The node at the NULL-terminated path of keys under root, or NULL (a profile applied
 * alone may lack it). */
static const struct doc_node *node_at(const struct doc_node *root, const char *const *path)
{
    const struct doc_node *n = root;
    for (; n && *path; path++)
        n = n->kind == DOC_MAP ? doc_map_get(n, *path) : NULL;
    return n;
}

#define NODE_AT(root, ...) node_at(root, (const char *const[]){__VA_ARGS__, NULL})

/* Checks across fields, once the whole tree is converted. */
static int check_whole(struct cvt *cv, const struct config *c, const struct doc_node *root)
{
    char q[128];
    /* k6's rule: startVUs or some stage's target above 0 (with start_vus 1, all-0 targets
     * ramp that one VU down) */
    bool vus = c->load.start_vus > 0;
    for (size_t i = 0; i < c->load.nstages; i++)
        vus |= c->load.stages[i].target > 0;
    if (!vus) {
        const struct doc_node *st = NODE_AT(root, "load", "stages");
        return cfg_fail(cv->d, st ? &st->at : NULL, "load.stages",
                        "needs at least one stage with a target above 0, or load.start_vus "
                        "above 0 (all targets and start_vus are 0)");
    }
    const struct doc_node *wu = NODE_AT(root, "notify", "webhook_url");
    const struct doc_node *wf = NODE_AT(root, "notify", "webhook_url_file");
    if (wu && wf && !doc_is_null(wu) && *wu->str && !doc_is_null(wf) && *wf->str)
        return cfg_fail(cv->d, &wf->at, "notify.webhook_url_file",
                        "notify.webhook_url is set too (profile or SYNCGATE_WEBHOOK_URL); set one "
                        "of the two");
    if (c->baseline.min_runs > c->baseline.runs) {
        const struct doc_node *mr = NODE_AT(root, "baseline", "min_runs");
        return cfg_fail(cv->d, mr ? &mr->at : NULL, "baseline.min_runs",
                        "%d is more than baseline.runs (%d): no baseline could ever be made",
                        c->baseline.min_runs, c->baseline.runs);
    }
    if (!strcasecmp(c->gateway.key_header, c->gateway.consumer_header)) {
        /* blame the one the user wrote: key_header, unless it is the default */
        const struct doc_node *kh = NODE_AT(root, "gateway", "key_header");
        const struct doc_node *ch = NODE_AT(root, "gateway", "consumer_header");
        if ((!kh || kh->at.src == DOC_SRC_DEFAULT) && ch)
            return cfg_fail(cv->d, &ch->at, "gateway.consumer_header",
                            "%s is also gateway.key_header; the two headers must differ",
                            quote(c->gateway.consumer_header, false, q, sizeof(q)));
        return cfg_fail(cv->d, kh ? &kh->at : NULL, "gateway.key_header",
                        "%s is also gateway.consumer_header; the two headers must differ",
                        quote(c->gateway.key_header, false, q, sizeof(q)));
    }
    return 0;
}

static int convert(struct config *c, const struct doc_node *root, const struct config_cli *cli,
                   char *const *envp, struct diag *d)
{
    struct cvt cv = {.d = d};
    int rc = cvt_section(&cv, c, root_fields, root, "");
    if (!rc)
        rc = check_whole(&cv, c, root);
    if (!rc)
        rc = cfg_convert_journeys(d, c, root, envp);
    if (!rc)
        rc = cfg_convert_scenarios(d, c, root, cli, envp);
    bool generated = false;
    if (!rc)
        rc = config_finish(c, &generated);
    if (!rc)
        rc = cfg_convert_scaleout(d, c, cli, envp);
    if (!rc)
        c->scaleout.testid_generated = generated;
    return rc;
}

int config_init(struct config *c)
{
    struct diag d;
    struct doc_node *root;
    memset(c, 0, sizeof(*c));
    struct doc *doc = doc_new();
    if (!doc)
        return -ENOMEM;
    int rc = parse_defaults(doc, &root, &d);
    if (!rc)
        rc = convert(c, root, NULL, NULL, &d);
    doc_free(doc);
    if (rc)
        config_clear(c);
    return rc;
}

/* ---- profile ------------------------------------------------------------- */

/* Parse a profile into a tree; the top level must be a mapping (or empty). */
static int profile_parse(struct doc *doc, const char *buf, size_t len, const char *name,
                         struct doc_node **out, struct diag *d)
{
    if (len > CONFIG_MAX_PROFILE_BYTES) {
        struct doc_origin at = {.name = name, .src = DOC_SRC_FILE};
        return cfg_fail(d, &at, "", "profile is larger than %d bytes", CONFIG_MAX_PROFILE_BYTES);
    }
    int rc = doc_parse_yaml(doc, buf, len, DOC_SRC_FILE, name, out, d);
    if (rc)
        return rc;
    if (doc_is_null(*out)) {
        *out = NULL;
        return 0;
    }
    if ((*out)->kind != DOC_MAP)
        return cfg_fail(d, &(*out)->at, "",
                    "a profile must be a mapping of sections (environment, gateway, services, "
                    "smoke, load, metrics, output), got %s",
                    kind_name(*out));
    return 0;
}

int config_apply_profile(struct config *c, const char *buf, size_t len, const char *name,
                         struct diag *d)
{
    struct doc_node *root;
    memset(d, 0, sizeof(*d));
    struct doc *doc = doc_new();
    if (!doc)
        return -ENOMEM;
    int rc = profile_parse(doc, buf, len, name, &root, d);
    if (!rc && root)
        rc = convert(c, root, NULL, NULL, d);
    doc_free(doc);
    return rc;
}

/*
 * Lay src (a profile) over dst (the defaults): sections merge key by key,
 * everything else (lists, label maps, thresholds) is replaced whole, so a
 * profile that lists its services gets exactly those. src's nodes move.
 */
static int merge(struct doc *doc, struct doc_node *dst, struct doc_node *src,
                 const struct field *fields)
{
    struct doc_node *next;
    for (struct doc_node *e = src->head; e; e = next) {
        next = e->next;
        const struct field *f = fields ? field_find(fields, e->key) : NULL;
        struct doc_node *old = doc_map_get(dst, e->key);
        if (f && f->type == T_SECTION && old && old->kind == DOC_MAP) {
            if (doc_is_null(e))
                continue;
            if (e->kind == DOC_MAP) {
                int rc = merge(doc, old, e, f->aux);
                if (rc)
                    return rc;
                continue;
            }
        }
        struct doc_origin key_at = e->key_at;
        if (doc_map_put(doc, dst, e->key, &key_at, e))
            return -ENOMEM;
    }
    return 0;
}

static int read_profile(const char *path, char **out, size_t *len, struct diag *d)
{
    struct doc_origin at = {.name = path, .src = DOC_SRC_FILE};
    /* O_NONBLOCK: opening a FIFO with no writer must not hang; only regular files are read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return cfg_fail(d, &at, "", "cannot read profile: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int err = errno;
        close(fd);
        return cfg_fail(d, &at, "", "cannot read profile: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        const char *kind = S_ISDIR(st.st_mode)    ? "a directory"
                           : S_ISFIFO(st.st_mode) ? "a FIFO (pipe)"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : S_ISCHR(st.st_mode)  ? "a character device"
                           : S_ISBLK(st.st_mode)  ? "a block device"
                                                  : "a special file";
        return cfg_fail(d, &at, "",
                        "cannot read profile: it is %s; a profile must be a regular file", kind);
    }
    size_t cap = 64 * 1024, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > CONFIG_MAX_PROFILE_BYTES) {
                rc = cfg_fail(d, &at, "", "profile is larger than %d bytes", CONFIG_MAX_PROFILE_BYTES);
                break;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cfg_fail(d, &at, "", "cannot read profile: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!rc && n > CONFIG_MAX_PROFILE_BYTES)
        rc = cfg_fail(d, &at, "", "profile is larger than %d bytes", CONFIG_MAX_PROFILE_BYTES);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int config_resolve(struct config *c, const struct config_cli *cli, char *const *envp,
                   struct diag *d)
{
    static const struct config_cli no_cli;
    struct doc_node *root, *prof = NULL;
    char *buf = NULL;
    size_t len = 0;

    memset(d, 0, sizeof(*d));
    config_clear(c);
    if (!cli)
        cli = &no_cli;
    const char *path = cli->profile;
    if (!path || !*path)
        path = cfg_env_get(envp, "SYNCGATE_PROFILE");
    if (path && !*path)
        path = NULL;

    struct doc *doc = doc_new();
    if (!doc)
        return -ENOMEM;
    int rc = parse_defaults(doc, &root, d);
    if (!rc && path) {
        rc = read_profile(path, &buf, &len, d);
        if (!rc)
            rc = profile_parse(doc, buf, len, path, &prof, d);
        free(buf);
        if (!rc && prof)
            rc = merge(doc, root, prof, root_fields);
    }
    struct edit ed = {.doc = doc, .root = root, .d = d};
    if (!rc)
        rc = cfg_apply_env(&ed, envp);
    if (!rc)
        rc = cfg_apply_cli(&ed, cli);
    if (!rc)
        rc = config_init(c);
    if (!rc)
        rc = convert(c, root, cli, envp, d);
    if (!rc && path && !(c->profile_path = strdup(path)))
        rc = -ENOMEM;
    if (rc == -ENOMEM && !d->msg[0])
        snprintf(d->msg, sizeof(d->msg), "out of memory");
    doc_free(doc);
    return rc;
}

/* ---- for config_journey.c -------------------------------------------------- */

const char *cfg_quote(const char *s, bool secret, char *buf, size_t n)
{
    return quote(s, secret, buf, n);
}

const char *cfg_kind_name(const struct doc_node *n)
{
    return kind_name(n);
}

int cfg_check_string(struct diag *d, const struct doc_node *n, const char *key, bool secret)
{
    struct cvt cv = {.d = d};
    return check_string(&cv, n, key, secret, false);
}

int cfg_parse_int(struct diag *d, const struct doc_node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out)
{
    struct cvt cv = {.d = d};
    return parse_int(&cv, n, key, min, max, out);
}

int cfg_parse_bool(struct diag *d, const struct doc_node *n, const char *key, bool *out)
{
    struct cvt cv = {.d = d};
    return parse_bool(&cv, n, key, out);
}

int cfg_parse_dur(struct diag *d, const struct doc_node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out)
{
    struct cvt cv = {.d = d};
    return parse_dur(&cv, n, key, min, max, out);
}

int cfg_check_url(struct diag *d, const struct doc_node *n, const char *key)
{
    struct cvt cv = {.d = d};
    if (n->len > CONFIG_MAX_URL)
        return cfg_fail(d, &n->at, key, "URL is too long (at most %d bytes)", CONFIG_MAX_URL);
    return check_url(&cv, n, key, n->str, false);
}

const char *cfg_check_method(const char *s)
{
    return check_method(s);
}

bool cfg_header_name_ok(const char *s)
{
    return header_name_ok(s);
}

bool cfg_header_reserved(const char *name)
{
    return gateway_header_reserved(name);
}

const char *cfg_check_label(const char *name)
{
    if (!label_name_ok(name))
        return "not a label name; allowed: [a-zA-Z_][a-zA-Z0-9_]*";
    if (!strncmp(name, "__", 2))
        return "label names starting with \"__\" are reserved by Prometheus";
    if (metrics_tag_reserved(name))
        return "the label is set by syncgate itself (or k6 sets it on its series)";
    return NULL;
}

const char *cfg_check_label_value(const char *s)
{
    return check_label_value(s);
}
