/* threshold: k6 threshold expressions over built-in metrics. */
#include "syncgate/threshold.h"
#include "syncgate/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

/* Longest metric key or expression accepted; k6 keys are short, this only stops abuse. */
#define THR_TEXT_MAX 1024

/* A trimmed slice of the caller's text; parsing borrows and copies only at the end. */
struct span {
    const char *p;
    size_t n;
};

static struct span span_trim(const char *p, size_t n)
{
    while (n > 0 && isspace((unsigned char)*p)) {
        p++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    return (struct span){p, n};
}

static bool span_is(struct span s, const char *word)
{
    return strlen(word) == s.n && memcmp(s.p, word, s.n) == 0;
}

/* Strict number: digits, sign, point and exponent only (no hex, inf or nan), all consumed. */
static bool parse_number(struct span s, double *out)
{
    char buf[64];
    char *end;

    if (s.n == 0 || s.n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!strchr("0123456789+-.eE", s.p[i]))
            return false;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + s.n || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static const char *type_name(enum metric_type type)
{
    switch (type) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_RATE:
        return "rate";
    case METRIC_TREND:
        return "trend";
    }
    return "?";
}

static const char *agg_name(enum thr_agg agg)
{
    static const char *const names[] = {
        [THR_AVG] = "avg",  [THR_MIN] = "min",     [THR_MAX] = "max",   [THR_MED] = "med",
        [THR_PCT] = "p(N)", [THR_COUNT] = "count", [THR_RATE] = "rate", [THR_VALUE] = "value",
    };
    return names[agg];
}

/* k6's rules: which aggregation each metric type offers. */
static bool agg_allowed(enum metric_type type, enum thr_agg agg, const char **hint)
{
    switch (type) {
    case METRIC_COUNTER:
        *hint = "count or rate";
        return agg == THR_COUNT || agg == THR_RATE;
    case METRIC_GAUGE:
        *hint = "value";
        return agg == THR_VALUE;
    case METRIC_RATE:
        *hint = "rate";
        return agg == THR_RATE;
    case METRIC_TREND:
        *hint = "avg, min, max, med or p(N)";
        return agg == THR_AVG || agg == THR_MIN || agg == THR_MAX || agg == THR_MED ||
               agg == THR_PCT;
    }
    *hint = "";
    return false;
}

/* Tag keys and values may be quoted ("name:'product'"): like k6, quote characters at either
 * end are not part of them, and neither are the spaces around them. */
static struct span unquote(struct span s)
{
    while (s.n > 0 && (s.p[0] == '"' || s.p[0] == '\''))
        s = (struct span){s.p + 1, s.n - 1};
    while (s.n > 0 && (s.p[s.n - 1] == '"' || s.p[s.n - 1] == '\''))
        s.n--;
    return span_trim(s.p, s.n);
}

static char *span_dup(struct span s)
{
    char *c = malloc(s.n + 1);

    if (c) {
        memcpy(c, s.p, s.n);
        c[s.n] = '\0';
    }
    return c;
}

static void filter_free(struct tagset *ts)
{
    for (unsigned i = 0; i < ts->n; i++) {
        free((char *)ts->t[i].key);
        free((char *)ts->t[i].value);
    }
    ts->n = 0;
}

/*
 * Parse "name{k:v,...}" into metric id and filter (strings owned by t), by
 * k6's rules (metrics.ParseMetricName): the tag list runs from the first '{'
 * to the last '}', which must end the key, so a value may hold braces and
 * colons ("name:http://${}.com"); items split at commas, each at its first
 * colon.
 */
static int parse_key(struct threshold *t, const char *key, char *err, size_t errlen)
{
    struct span all = span_trim(key, strlen(key));
    const char *brace = memchr(all.p, '{', all.n);
    const char *close = memrchr(all.p, '}', all.n);
    struct span name = span_trim(all.p, brace ? (size_t)(brace - all.p) : all.n);
    char nbuf[128];

    if (!brace && close)
        return errbuf_fail(err, errlen, "metric \"%s\": '}' without '{'", key);
    if (brace && (!close || close < brace || close != all.p + all.n - 1))
        return errbuf_fail(err, errlen, "metric \"%s\": the tag list must end with '}'", key);
    if (name.n == 0)
        return errbuf_fail(err, errlen, "metric \"%s\": empty metric name", key);
    if (name.n >= sizeof(nbuf))
        return errbuf_fail(err, errlen, "unknown metric \"%.*s\"", (int)name.n, name.p);
    memcpy(nbuf, name.p, name.n);
    nbuf[name.n] = '\0';
    int id = metric_lookup(nbuf);
    if (id < 0)
        return errbuf_fail(err, errlen, "unknown metric \"%s\"", nbuf);
    t->metric = (enum metric_id)id;
    if (!brace)
        return 0;

    const char *p = brace + 1, *end = close;
    if (span_trim(p, (size_t)(end - p)).n == 0)
        return errbuf_fail(err, errlen, "metric \"%s\": empty tag list", key);

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        struct span item = span_trim(p, (size_t)(stop - p));
        const char *colon = memchr(item.p, ':', item.n);
        if (!colon)
            return errbuf_fail(err, errlen, "metric \"%s\": tag \"%.*s\" is not key:value", key,
                               (int)item.n, item.p);
        struct span k = unquote(span_trim(item.p, (size_t)(colon - item.p)));
        struct span v = unquote(span_trim(colon + 1, (size_t)(item.p + item.n - colon - 1)));
        if (k.n == 0 || v.n == 0)
            return errbuf_fail(err, errlen, "metric \"%s\": tag \"%.*s\" needs a key and a value",
                               key, (int)item.n, item.p);
        if (t->filter.n == TAGS_MAX)
            return errbuf_fail(err, errlen, "metric \"%s\": more than %d tags", key, TAGS_MAX);
        char *kc = span_dup(k), *vc = span_dup(v);
        if (!kc || !vc) {
            free(kc);
            free(vc);
            return -ENOMEM;
        }
        if (tagset_get(&t->filter, kc)) {
            free(kc);
            free(vc);
            return errbuf_fail(err, errlen, "metric \"%s\": tag \"%.*s\" given twice", key,
                               (int)k.n, k.p);
        }
        tagset_set(&t->filter, kc, vc); /* cannot fail: room was checked above */
        p = stop + 1;
    }
    return 0;
}

/* Operators longest first where they share a prefix. */
static const struct {
    const char *text;
    enum thr_op op;
} ops[] = {
    {"===", THR_EQ}, {"==", THR_EQ}, {"!=", THR_NE}, {"<=", THR_LE},
    {">=", THR_GE},  {"<", THR_LT},  {">", THR_GT},
};

/*
 * The right side of a baseline threshold after the word "baseline": nothing,
 * or one of * + - and a number ("p(95) <= baseline * 1.2").
 */
static int parse_baseline(struct threshold *t, const char *expr, struct span rest, char *err,
                          size_t errlen)
{
    t->baseline = true;
    t->base_op = THR_BASE_NONE;
    if (rest.n == 0)
        return 0;
    switch (rest.p[0]) {
    case '*':
        t->base_op = THR_BASE_MUL;
        break;
    case '+':
        t->base_op = THR_BASE_ADD;
        break;
    case '-':
        t->base_op = THR_BASE_SUB;
        break;
    default:
        return errbuf_fail(
            err, errlen,
            "threshold \"%s\": after \"baseline\" expected * N, + N or - N, got \"%.*s\"", expr,
            (int)rest.n, rest.p);
    }
    struct span num = span_trim(rest.p + 1, rest.n - 1);
    if (!parse_number(num, &t->operand))
        return errbuf_fail(err, errlen,
                           "threshold \"%s\": \"%.*s\" after \"baseline %c\" is not a number", expr,
                           (int)num.n, num.p, rest.p[0]);
    if (t->base_op == THR_BASE_MUL && t->operand <= 0)
        return errbuf_fail(err, errlen, "threshold \"%s\": the factor of baseline must be above 0",
                           expr);
    return 0;
}

static int parse_expr(struct threshold *t, const char *expr, char *err, size_t errlen)
{
    const char *o = strpbrk(expr, "<>=!");
    size_t oplen = 0;

    if (!o)
        return errbuf_fail(err, errlen,
                           "threshold \"%s\": no comparison (expected e.g. \"p(95)<500\")", expr);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(o, ops[i].text, n) == 0) {
            t->op = ops[i].op;
            oplen = n;
            break;
        }
    }
    if (oplen == 0)
        return errbuf_fail(err, errlen,
                           "threshold \"%s\": unknown operator (use <, <=, >, >=, ==, !=)", expr);

    struct span agg = span_trim(expr, (size_t)(o - expr));
    struct span num = span_trim(o + oplen, strlen(o + oplen));

    if (span_is(agg, "avg")) {
        t->agg = THR_AVG;
    } else if (span_is(agg, "min")) {
        t->agg = THR_MIN;
    } else if (span_is(agg, "max")) {
        t->agg = THR_MAX;
    } else if (span_is(agg, "med")) {
        t->agg = THR_MED;
    } else if (span_is(agg, "count")) {
        t->agg = THR_COUNT;
    } else if (span_is(agg, "rate")) {
        t->agg = THR_RATE;
    } else if (span_is(agg, "value")) {
        t->agg = THR_VALUE;
    } else if (agg.n >= 3 && memcmp(agg.p, "p(", 2) == 0 && agg.p[agg.n - 1] == ')') {
        struct span pct = span_trim(agg.p + 2, agg.n - 3);
        if (!parse_number(pct, &t->pct) || t->pct < 0 || t->pct > 100)
            return errbuf_fail(err, errlen,
                               "threshold \"%s\": percentile \"%.*s\" is not a number "
                               "from 0 to 100",
                               expr, (int)pct.n, pct.p);
        t->agg = THR_PCT;
    } else {
        return errbuf_fail(err, errlen,
                           "threshold \"%s\": unknown aggregation \"%.*s\" (expected avg, "
                           "min, max, med, p(N), count, rate or value)",
                           expr, (int)agg.n, agg.p);
    }

    if (num.n >= 8 && memcmp(num.p, "baseline", 8) == 0 &&
        (num.n == 8 || (!isalnum((unsigned char)num.p[8]) && num.p[8] != '_')))
        return parse_baseline(t, expr, span_trim(num.p + 8, num.n - 8), err, errlen);
    if (!parse_number(num, &t->bound))
        return errbuf_fail(err, errlen, "threshold \"%s\": \"%.*s\" is not a number", expr,
                           (int)num.n, num.p);
    return 0;
}

int threshold_parse(struct threshold *t, const char *metric_key, const char *expr, char *err,
                    size_t errlen)
{
    const char *hint;
    int rc;

    memset(t, 0, sizeof(*t));
    if (err && errlen > 0)
        err[0] = '\0';
    if (!metric_key || !expr)
        return errbuf_fail(err, errlen, "threshold without metric or expression");
    if (strlen(metric_key) > THR_TEXT_MAX || strlen(expr) > THR_TEXT_MAX)
        return errbuf_fail(err, errlen, "threshold text longer than %d bytes", THR_TEXT_MAX);

    rc = parse_key(t, metric_key, err, errlen);
    if (rc == 0)
        rc = parse_expr(t, expr, err, errlen);
    if (rc == 0) {
        const struct metric_def *d = metric_def(t->metric);
        if (!agg_allowed(d->type, t->agg, &hint))
            rc = errbuf_fail(err, errlen, "%s is not valid for %s metric %s (use %s)",
                             agg_name(t->agg), type_name(d->type), d->name, hint);
    }
    if (rc == 0) {
        t->metric_key = strdup(metric_key);
        t->source = strdup(expr);
        if (!t->metric_key || !t->source)
            rc = -ENOMEM;
    }
    if (rc == -ENOMEM)
        errbuf_fail(err, errlen, "out of memory");
    if (rc < 0)
        threshold_clear(t);
    return rc;
}

void threshold_clear(struct threshold *t)
{
    if (!t)
        return;
    free(t->metric_key);
    free(t->source);
    filter_free(&t->filter);
    memset(t, 0, sizeof(*t));
}

int threshold_copy(struct threshold *dst, const struct threshold *src)
{
    *dst = *src;
    dst->metric_key = NULL;
    dst->source = NULL;
    dst->filter.n = 0;

    dst->metric_key = src->metric_key ? strdup(src->metric_key) : NULL;
    dst->source = src->source ? strdup(src->source) : NULL;
    if ((src->metric_key && !dst->metric_key) || (src->source && !dst->source))
        goto oom;
    for (unsigned i = 0; i < src->filter.n; i++) {
        char *k = strdup(src->filter.t[i].key), *v = strdup(src->filter.t[i].value);
        if (!k || !v) {
            free(k);
            free(v);
            goto oom;
        }
        /* src is sorted already, so appending keeps the order. */
        dst->filter.t[dst->filter.n++] = (struct tag){k, v};
    }
    return 0;
oom:
    threshold_clear(dst);
    return -ENOMEM;
}

static bool compare(double x, enum thr_op op, double bound)
{
    switch (op) {
    case THR_LT:
        return x < bound;
    case THR_LE:
        return x <= bound;
    case THR_GT:
        return x > bound;
    case THR_GE:
        return x >= bound;
    case THR_EQ:
        return x == bound;
    case THR_NE:
        return x != bound;
    }
    return false;
}

double threshold_observe(const struct threshold *t, const struct metric_view *v,
                         int64_t elapsed_usec)
{
    const struct metric_def *d = metric_def(t->metric);
    double x = NAN;

    if (!d || !v || v->id != t->metric || !metric_view_has_samples(v))
        return NAN;

    switch (t->agg) {
    case THR_COUNT:
        x = v->counter;
        break;
    case THR_RATE:
        if (d->type == METRIC_RATE)
            x = (double)v->pass / (double)v->total;
        else if (elapsed_usec > 0) /* a counter's rate is per second of run time */
            x = v->counter / ((double)elapsed_usec / (double)USEC_PER_SEC);
        break;
    case THR_VALUE:
        x = v->gauge_value;
        break;
    case THR_AVG:
        x = hist_mean(v->trend);
        break;
    case THR_MIN:
        x = (double)hist_min(v->trend);
        break;
    case THR_MAX:
        x = (double)hist_max(v->trend);
        break;
    case THR_MED:
        x = hist_percentile(v->trend, 50);
        break;
    case THR_PCT:
        x = hist_percentile(v->trend, t->pct);
        break;
    }
    /* Trends hold microseconds; k6 thresholds on time are written in milliseconds. */
    if (d->type == METRIC_TREND && d->unit == UNIT_TIME)
        x /= (double)USEC_PER_MSEC;
    return x;
}

uint64_t threshold_samples(const struct threshold *t, const struct metric_view *v)
{
    const struct metric_def *d = metric_def(t->metric);

    if (!d || !v || v->id != t->metric)
        return 0;
    switch (d->type) {
    case METRIC_TREND:
        return v->trend ? hist_count(v->trend) : 0;
    case METRIC_RATE:
        return v->total;
    case METRIC_COUNTER:
    case METRIC_GAUGE:
        return metric_view_has_samples(v) ? 1 : 0;
    }
    return 0;
}

double threshold_limit(const struct threshold *t, double baseline)
{
    if (!t->baseline)
        return t->bound;
    if (isnan(baseline))
        return NAN;
    switch (t->base_op) {
    case THR_BASE_NONE:
        return baseline;
    case THR_BASE_MUL:
        return baseline * t->operand;
    case THR_BASE_ADD:
        return baseline + t->operand;
    case THR_BASE_SUB:
        return baseline - t->operand;
    }
    return NAN;
}

bool threshold_holds(const struct threshold *t, double observed, double limit)
{
    return !isnan(observed) && !isnan(limit) && compare(observed, t->op, limit);
}

bool threshold_eval(const struct threshold *t, const struct metric_view *v, int64_t elapsed_usec,
                    double *observed)
{
    double x = threshold_observe(t, v, elapsed_usec);

    if (observed)
        *observed = x;
    return !t->baseline && threshold_holds(t, x, t->bound);
}

int threshold_stat(const struct threshold *t, char *buf, size_t n)
{
    int len;

    if (t->agg == THR_PCT)
        len = snprintf(buf, n, "p(%g)", t->pct);
    else
        len = snprintf(buf, n, "%s", agg_name(t->agg));
    return len >= 0 && (size_t)len < n ? len : -ENOSPC;
}

int threshold_key(const struct threshold *t, char *buf, size_t n)
{
    const struct metric_def *d = metric_def(t->metric);
    size_t len = 0;
    int w = snprintf(buf, n, "%s", d ? d->name : "?");

    if (w < 0 || (size_t)w >= n)
        return -ENOSPC;
    len = (size_t)w;
    for (unsigned i = 0; i < t->filter.n; i++) {
        w = snprintf(buf + len, n - len, "%s%s:%s%s", i ? "," : "{", t->filter.t[i].key,
                     t->filter.t[i].value, i + 1 == t->filter.n ? "}" : "");
        if (w < 0 || (size_t)w >= n - len)
            return -ENOSPC;
        len += (size_t)w;
    }
    return (int)len;
}

int threshold_view(const struct threshold *t, const struct metrics *m, bool smoke,
                   struct metric_view *v)
{
    static const struct tag smoke_tag = {"scenario", "smoke"};
    struct tagset filter = t->filter;
    if (smoke) {
        tagset_set(&filter, "scenario", "smoke");
        return metrics_view(m, t->metric, &filter, v);
    }
    if (tagset_get(&filter, "scenario"))
        return metrics_view(m, t->metric, &filter, v);
    return metrics_view_except(m, t->metric, &filter, &smoke_tag, v);
}
