/* history: the run's result series and the PromQL that reads them back (see history.h). */
#include "syncgate/history.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "syncgate/threshold.h"
#include "utf8.h"
#include "errbuf.h"

/* Text appended to a bounded buffer; a too-small buffer is remembered, not overrun. */
struct out {
    char *buf;
    size_t n, len;
    bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(o->len < o->n ? o->buf + o->len : NULL, o->len < o->n ? o->n - o->len : 0,
                      fmt, ap);
    va_end(ap);
    if (r < 0 || o->len + (size_t)r >= o->n)
        o->full = true;
    else
        o->len += (size_t)r;
}

/* A PromQL double-quoted string of s: backslash, quote and line breaks escaped. */
static void put_string(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s && !o->full; s++) {
        switch (*s) {
        case '\\':
            put(o, "\\\\");
            break;
        case '"':
            put(o, "\\\"");
            break;
        case '\n':
            put(o, "\\n");
            break;
        case '\r':
            put(o, "\\r");
            break;
        case '\t':
            put(o, "\\t");
            break;
        default:
            put(o, "%c", *s);
        }
    }
    put(o, "\"");
}

/* name="value" as the remote-write encoder writes the label (sanitised), or nothing. */
static void put_matcher(struct out *o, const char *name, const char *value)
{
    char n[256], v[RW_MAX_VALUE + 1];
    if (!value || !rw_label_name(name, n, sizeof(n)) || !rw_label_value(value, v, sizeof(v)))
        return;
    put(o, ",%s=", n);
    put_string(o, v);
}

/* The selector of m's series of one metric name, plus more matchers in extra. */
static void put_selector(struct out *o, const char *series, const struct history_match *m,
                         const char *scenario_only, const char *extra)
{
    put(o, "%s{scenario=", series);
    put_string(o, m->scenario);
    if (!scenario_only) {
        put_matcher(o, "environment", m->environment);
        put_matcher(o, "test_type", m->test_type);
        for (size_t i = 0; i < m->nlabels; i++) {
            /* a static label never overrides a label syncgate sets (first wins) */
            static const char *const own[] = {"testid",   "instance", "environment", "test_type",
                                              "scenario", "result",   "history",     "revision",
                                              "metric",   "stat"};
            bool taken = false;
            for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
                taken |= !strcmp(m->labels[i].key, own[k]);
            if (!taken)
                put_matcher(o, m->labels[i].key, m->labels[i].value);
        }
    }
    put(o, "%s}", extra);
}

/* The observed series of the statistic: ...{..., metric="key", stat="p(95)"}[age]. */
static void put_observed(struct out *o, const struct history_match *m, const char *key,
                         const char *stat, const char *pin, int64_t age_s)
{
    put(o, "last_over_time(" HISTORY_OBSERVED_SERIES "{scenario=");
    put_string(o, m->scenario);
    if (pin) {
        put(o, ",testid=");
        put_string(o, pin);
    } else {
        put_matcher(o, "environment", m->environment);
        put_matcher(o, "test_type", m->test_type);
    }
    put(o, ",metric=");
    put_string(o, key);
    put(o, ",stat=");
    put_string(o, stat);
    put(o, "}[%llds])", (long long)age_s);
}

static int64_t age_seconds(int64_t max_age)
{
    int64_t s = max_age / 1000000;
    return s > 0 ? s : 1;
}

/* The runs part shared by both queries. */
static void put_runs(struct out *o, const struct history_match *m, const char *key,
                     const char *stat, int runs, int64_t age_s, const char *pin)
{
    if (pin) {
        put(o, "last_over_time(" HISTORY_RUN_SERIES "{scenario=");
        put_string(o, m->scenario);
        put(o, ",testid=");
        put_string(o, pin);
        put(o, "}[%llds]) and on(testid) ", (long long)age_s);
        put_observed(o, m, key, stat, pin, age_s);
        return;
    }
    put(o, "topk(%d, last_over_time(", runs);
    put_selector(o, HISTORY_RUN_SERIES, m, NULL, ",history=\"true\"");
    put(o, "[%llds]) and on(testid) ", (long long)age_s);
    put_observed(o, m, key, stat, NULL, age_s);
    put(o, ")");
}

int history_promql_runs(const struct history_match *m, const char *key, const char *stat, int runs,
                        int64_t max_age, const char *pin_testid, char *buf, size_t n)
{
    struct out o = {buf, n, 0, n == 0};
    if (n)
        buf[0] = '\0';
    put_runs(&o, m, key, stat, runs, age_seconds(max_age), pin_testid);
    return o.full ? -ENOSPC : (int)o.len;
}

int history_promql_values(const struct history_match *m, const char *key, const char *stat,
                          int runs, int64_t max_age, const char *pin_testid, char *buf, size_t n)
{
    struct out o = {buf, n, 0, n == 0};
    int64_t age = age_seconds(max_age);
    if (n)
        buf[0] = '\0';
    put_observed(&o, m, key, stat, pin_testid, age);
    put(&o, " and on(testid) (");
    put_runs(&o, m, key, stat, runs, age, pin_testid);
    put(&o, ")");
    return o.full ? -ENOSPC : (int)o.len;
}

/* A value of Prometheus' [time, "value"] pair: "NaN", "+Inf" and numbers. */
static bool sample_value(const cJSON *pair, double *out)
{
    const cJSON *v = cJSON_GetArrayItem(pair, 1);
    char *end;
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(v))
        return false;
    *out = strtod(v->valuestring, &end);
    return end != v->valuestring && *end == '\0';
}

int history_parse_vector(const char *body, size_t len, struct history_point *out, size_t max,
                         char *err, size_t errlen)
{
    char safe[160];
    cJSON *root = cJSON_ParseWithLength(body, len);
    int n = 0;
    if (!root)
        return errbuf_fail(err, errlen, "the answer is not JSON (not a Prometheus query API?)");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsString(status)) {
        n = errbuf_fail(err, errlen, "the answer has no status (not a Prometheus query API?)");
        goto out;
    }
    if (strcmp(status->valuestring, "success") != 0) {
        const cJSON *et = cJSON_GetObjectItemCaseSensitive(root, "errorType");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        const char *msg = cJSON_IsString(e) ? e->valuestring : "no message";
        n = errbuf_fail(
            err, errlen, "%s: %s", cJSON_IsString(et) ? et->valuestring : "error",
            utf8_escape(msg, strlen(msg) > 120 ? 120 : strlen(msg), false, safe, sizeof(safe)));
        goto out;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(data, "resultType");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "vector") != 0 ||
        !cJSON_IsArray(result)) {
        n = errbuf_fail(err, errlen, "the answer is not an instant vector");
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, result)
    {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(item, "metric");
        const cJSON *testid = cJSON_GetObjectItemCaseSensitive(metric, "testid");
        double v;
        if (!cJSON_IsString(testid) || !*testid->valuestring ||
            strlen(testid->valuestring) >= sizeof(out[0].testid) ||
            !sample_value(cJSON_GetObjectItemCaseSensitive(item, "value"), &v))
            continue;
        if ((size_t)n == max)
            break;
        snprintf(out[n].testid, sizeof(out[n].testid), "%s", testid->valuestring);
        out[n].value = v;
        n++;
    }
out:
    cJSON_Delete(root);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double history_aggregate(enum baseline_aggregate agg, double *v, size_t n)
{
    double r;
    if (n == 0)
        return NAN;
    switch (agg) {
    case BASELINE_MEAN:
        r = 0;
        for (size_t i = 0; i < n; i++)
            r += v[i];
        return r / (double)n;
    case BASELINE_MIN:
        r = v[0];
        for (size_t i = 1; i < n; i++)
            r = v[i] < r ? v[i] : r;
        return r;
    case BASELINE_MAX:
        r = v[0];
        for (size_t i = 1; i < n; i++)
            r = v[i] > r ? v[i] : r;
        return r;
    case BASELINE_MEDIAN:
        break;
    }
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int history_source(const char *rw_url, char *buf, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int rc = -EINVAL;
    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, rw_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    size_t plen = path ? strlen(path) : 0;
    static const char suffix[] = "/api/v1/write";
    size_t slen = sizeof(suffix) - 1;
    while (plen && path[plen - 1] == '/')
        plen--;
    if (plen >= slen && memcmp(path + plen - slen, suffix, slen) == 0)
        plen -= slen;
    else
        plen = 0; /* another receiver's path says nothing about its query API */
    int w = snprintf(buf, n, "%s://%s%s%s%.*s", scheme, host, port ? ":" : "", port ? port : "",
                     (int)plen, path ? path : "");
    rc = w < 0 || (size_t)w >= n ? -ENOSPC : w;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

bool history_eligible(const struct verdict *v)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].outcome != OUTCOME_PASSED && v->items[i].reason != REASON_NO_BASELINE)
            return false;
    return true;
}

void history_series_clear(struct history_series *s)
{
    for (size_t i = 0; i < s->nstrs; i++)
        free(s->strs[i]);
    memset(s, 0, sizeof(*s));
}

static char *keep(struct history_series *s, const char *text)
{
    char *c = strdup(text);
    if (c)
        s->strs[s->nstrs++] = c;
    return c;
}

static int add_run(struct history_series *s, const struct history_outcome *o, const char *scenario)
{
    struct rw_info *it = &s->items[s->n++];
    memset(it, 0, sizeof(*it));
    it->name = HISTORY_RUN_SERIES;
    it->value = o->finished;
    tagset_set(&it->labels, "scenario", scenario);
    tagset_set(&it->labels, "result", o->result);
    tagset_set(&it->labels, "history", o->history ? "true" : "false");
    if (o->revision && *o->revision)
        tagset_set(&it->labels, "revision", o->revision);
    return 0;
}

int history_series_build(struct history_series *s, const struct verdict *v,
                         const struct history_outcome *o)
{
    char key[2048], stat[32];
    memset(s, 0, sizeof(*s));
    if (o->smoke_ran)
        add_run(s, o, "smoke");
    if (o->load_ran)
        add_run(s, o, "load");
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict_item *it = &v->items[i];
        if (isnan(it->observed) || threshold_key(it->t, key, sizeof(key)) < 0 ||
            threshold_stat(it->t, stat, sizeof(stat)) < 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < s->n && !seen; j++) {
            const struct rw_info *x = &s->items[j];
            const char *m = tagset_get(&x->labels, "metric");
            seen = m && !strcmp(m, key) && !strcmp(tagset_get(&x->labels, "stat"), stat) &&
                   !strcmp(tagset_get(&x->labels, "scenario"), it->scenario);
        }
        if (seen || s->nstrs + 2 > sizeof(s->strs) / sizeof(s->strs[0]) ||
            s->n == sizeof(s->items) / sizeof(s->items[0]))
            continue;
        const char *k = keep(s, key), *st = keep(s, stat);
        if (!k || !st) {
            history_series_clear(s);
            return -ENOMEM;
        }
        struct rw_info *x = &s->items[s->n++];
        memset(x, 0, sizeof(*x));
        x->name = HISTORY_OBSERVED_SERIES;
        x->value = it->observed;
        tagset_set(&x->labels, "scenario", it->scenario);
        tagset_set(&x->labels, "metric", k);
        tagset_set(&x->labels, "stat", st);
    }
    return 0;
}
