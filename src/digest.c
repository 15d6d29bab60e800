/* digest: the verdict said briefly (see digest.h). */
#include "syncgate/digest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "syncgate/threshold.h"
#include "syncgate/units.h"

const char *digest_result(int exit_code)
{
    /* main.c's exit codes (README, "Exit codes") */
    switch (exit_code) {
    case 0:
        return "passed";
    case 99:
        return "failed";
    case 114:
        return "inconclusive";
    case 105:
        return "interrupted";
    case 112:
        return "not ready";
    case 113:
        return "undelivered";
    case 104:
        return "invalid configuration";
    case 115:
        return "peers lost";
    case 116:
        return "auth failed";
    default:
        return "error";
    }
}

/* A threshold value with its unit: ms for time trends. */
static const char *value(const struct threshold *t, double x, char *buf, size_t n)
{
    const struct metric_def *d = metric_def(t->metric);
    bool ms = d && d->type == METRIC_TREND && d->unit == UNIT_TIME;
    if (isnan(x))
        snprintf(buf, n, "none");
    else
        snprintf(buf, n, "%.6g%s", x, ms ? "ms" : "");
    return buf;
}

static const char *op_text(enum thr_op op)
{
    static const char *const t[] = {"<", "<=", ">", ">=", "==", "!="};
    return t[op];
}

/* The opposite comparison, for saying why a threshold failed. */
static const char *op_negated(enum thr_op op)
{
    static const char *const t[] = {">=", ">", "<=", "<", "!=", "=="};
    return t[op];
}

struct out {
    char *buf;
    size_t n, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->len >= o->n)
        return;
    va_start(ap, fmt);
    int r = vsnprintf(o->buf + o->len, o->n - o->len, fmt, ap);
    va_end(ap);
    if (r > 0)
        o->len = o->len + (size_t)r < o->n ? o->len + (size_t)r : o->n - 1;
}

/* "baseline 20.2ms * 1.2 (median of 5 runs)" and the like. */
static void put_baseline(struct out *o, const struct verdict_item *it, const struct config *c)
{
    const struct threshold *t = it->t;
    const struct baseline *b = it->base;
    char a[48];
    static const char opch[] = {' ', '*', '+', '-'};
    put(o, "baseline %s", value(t, b->value, a, sizeof(a)));
    if (t->base_op != THR_BASE_NONE)
        put(o, " %c %g", opch[t->base_op], t->operand);
    if (c->baseline.pin_testid)
        put(o, " (pinned run %s)", c->baseline.pin_testid);
    else
        put(o, " (%s of %zu run%s)", config_aggregate_names[c->baseline.aggregate], b->nruns,
            b->nruns == 1 ? "" : "s");
}

const char *digest_item(const struct verdict_item *it, const struct config *c, char *buf, size_t n)
{
    struct out o = {buf, n, 0};
    const struct threshold *t = it->t;
    char a[48], b[48];
    if (n)
        buf[0] = '\0';
    value(t, it->observed, a, sizeof(a));
    switch (it->reason) {
    case REASON_NONE:
        put(&o, "observed %s %s limit %s", a,
            it->outcome == OUTCOME_PASSED ? op_text(t->op) : op_negated(t->op),
            value(t, it->limit, b, sizeof(b)));
        if (it->base && it->base->status == BASELINE_FOUND) {
            put(&o, " = ");
            put_baseline(&o, it, c);
        }
        break;
    case REASON_NO_SAMPLES:
        put(&o, "no samples");
        break;
    case REASON_FEW_SAMPLES:
        put(&o, "%llu samples, fewer than baseline.min_count %d (observed %s)",
            (unsigned long long)it->samples, c->baseline.min_count, a);
        break;
    case REASON_NO_BASELINE:
        put(&o,
            "no baseline yet: %zu of baseline.min_runs %d runs, so %s as baseline.missing "
            "says (observed %s)",
            it->base ? it->base->nruns : 0, c->baseline.min_runs, outcome_name(it->outcome), a);
        break;
    case REASON_BASELINE_ERROR:
        put(&o, "baseline query failed: %s (observed %s)", it->base ? it->base->error : "not read",
            a);
        break;
    case REASON_SATURATED:
        put(&o, "the load generator was saturated (observed %s", a);
        if (!isnan(it->limit))
            put(&o, ", limit %s", value(t, it->limit, b, sizeof(b)));
        put(&o, ")");
        break;
    }
    return buf;
}

const char *digest_dashboard(const struct config *c, char *buf, size_t n)
{
    const char *u = c->notify.dashboard_url;
    struct out o = {buf, n, 0};
    if (n)
        buf[0] = '\0';
    if (!u) {
        put(&o, "Grafana \"KubeStock - K6 Test Metrics\" (uid k6-performance-metrics), testid %s",
            c->testid);
        return buf;
    }
    for (const char *p = u; *p; p++) {
        if (!strncmp(p, "{testid}", 8)) {
            put(&o, "%s", c->testid);
            p += 7;
        } else {
            put(&o, "%c", *p);
        }
    }
    return buf;
}

size_t digest_text(const struct report_ctx *ctx, const struct verdict *v, char *buf, size_t n)
{
    const struct config *c = ctx->cfg;
    char line[1536], item[1024];
    size_t len = 0, left_out = 0;
    /* Lines are added whole; the last ~80 bytes are kept for "... N more". */
    size_t room = n > 96 ? n - 80 : n;

#define LINE(...)                                                                                  \
    do {                                                                                           \
        int w_ = snprintf(line, sizeof(line), __VA_ARGS__);                                        \
        size_t l_ = w_ < 0 ? 0 : (size_t)w_ < sizeof(line) ? (size_t)w_ : sizeof(line) - 1;        \
        if (len + l_ + 2 <= room) {                                                                \
            memcpy(buf + len, line, l_);                                                           \
            len += l_;                                                                             \
            buf[len++] = '\n';                                                                     \
        } else {                                                                                   \
            left_out++;                                                                            \
        }                                                                                          \
    } while (0)

    if (!n)
        return 0;
    buf[0] = '\0';
    LINE("syncgate %s (exit %d): environment %s, testid %s%s%s", digest_result(ctx->exit_code),
         ctx->exit_code, c->environment, c->testid, c->revision ? ", revision " : "",
         c->revision ? c->revision : "");
    size_t npass = 0;
    for (size_t i = 0; i < v->n; i++)
        npass += v->items[i].outcome == OUTCOME_PASSED;
    LINE("thresholds: %zu passed, %zu failed or inconclusive; checks: %zu of %zu failed", npass,
         v->n - npass, v->checks_failed, v->checks_total);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < v->n; i++) {
            const struct verdict_item *it = &v->items[i];
            enum outcome want = pass ? OUTCOME_INCONCLUSIVE : OUTCOME_FAILED;
            if (it->outcome != want)
                continue;
            LINE("%s: %s %s %s: %s", outcome_name(it->outcome), it->scenario, it->t->metric_key,
                 it->t->source, digest_item(it, c, item, sizeof(item)));
        }
    if (ctx->instances > 1)
        LINE("instances: %u, one verdict on their merged metrics%s%s", ctx->instances,
             ctx->lost ? "; lost: " : "", ctx->lost ? ctx->lost : "");
    const struct sat_report *s = ctx->saturation;
    if (s && s->measured && s->saturated)
        LINE("load generator saturated in %u of %u s (peak CPU %.0f%% of %.2g CPUs, %s): latency "
             "thresholds are inconclusive",
             s->saturated_windows, s->windows, s->cpu_peak * 100, s->capacity, s->source);
    bool any_baseline = false;
    for (size_t i = 0; i < v->n; i++)
        any_baseline |= v->items[i].t->baseline;
    if (any_baseline)
        LINE("baseline: missing: %s, min_runs %d, runs %d, aggregate %s",
             config_missing_names[c->baseline.missing], c->baseline.min_runs, c->baseline.runs,
             config_aggregate_names[c->baseline.aggregate]);
    LINE("dashboard: %s", digest_dashboard(c, item, sizeof(item)));
#undef LINE
    if (left_out && len + 40 < n)
        len += (size_t)snprintf(buf + len, n - len, "... %zu more line%s left out\n", left_out,
                                left_out == 1 ? "" : "s");
    if (len >= n)
        len = n - 1;
    buf[len] = '\0';
    return len;
}

static cJSON *number_or_null(double x)
{
    return isnan(x) || isinf(x) ? cJSON_CreateNull() : cJSON_CreateNumber(x);
}

cJSON *digest_json(const struct report_ctx *ctx, const struct verdict *v)
{
    const struct config *c = ctx->cfg;
    char buf[1024];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "result", digest_result(ctx->exit_code));
    cJSON_AddNumberToObject(o, "exit_code", ctx->exit_code);
    cJSON_AddStringToObject(o, "testid", c->testid);
    cJSON_AddStringToObject(o, "environment", c->environment);
    if (c->test_type)
        cJSON_AddStringToObject(o, "test_type", c->test_type);
    if (c->revision)
        cJSON_AddStringToObject(o, "revision", c->revision);
    cJSON_AddStringToObject(o, "dashboard", digest_dashboard(c, buf, sizeof(buf)));
    cJSON *ths = cJSON_AddArrayToObject(o, "thresholds");
    bool any_baseline = false;
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict_item *it = &v->items[i];
        cJSON *t = cJSON_CreateObject();
        cJSON_AddItemToArray(ths, t);
        cJSON_AddStringToObject(t, "scenario", it->scenario);
        cJSON_AddStringToObject(t, "metric", it->t->metric_key);
        cJSON_AddStringToObject(t, "threshold", it->t->source);
        if (it->implicit)
            cJSON_AddBoolToObject(t, "implicit", true);
        cJSON_AddStringToObject(t, "outcome", outcome_name(it->outcome));
        if (it->reason != REASON_NONE)
            cJSON_AddStringToObject(t, "reason", outcome_reason_name(it->reason));
        cJSON_AddItemToObject(t, "observed", number_or_null(it->observed));
        cJSON_AddNumberToObject(t, "samples", (double)it->samples);
        cJSON_AddItemToObject(t, "limit", number_or_null(it->limit));
        cJSON_AddStringToObject(t, "detail", digest_item(it, c, buf, sizeof(buf)));
        if (!it->t->baseline)
            continue;
        any_baseline = true;
        cJSON *b = cJSON_AddObjectToObject(t, "baseline");
        const struct baseline *base = it->base;
        static const char *const st[] = {"found", "missing", "failed"};
        cJSON_AddStringToObject(b, "status", base ? st[base->status] : "failed");
        cJSON_AddItemToObject(b, "value", number_or_null(base ? base->value : NAN));
        if (base && base->status == BASELINE_FAILED)
            cJSON_AddStringToObject(b, "error", base->error);
        cJSON *runs = cJSON_AddArrayToObject(b, "runs");
        for (size_t k = 0; base && k < base->nruns; k++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddItemToArray(runs, r);
            cJSON_AddStringToObject(r, "testid", base->runs[k].testid);
            cJSON_AddItemToObject(r, "value", number_or_null(base->runs[k].value));
            cJSON_AddNumberToObject(r, "finished", base->runs[k].finished);
        }
    }
    if (any_baseline) {
        cJSON *b = cJSON_AddObjectToObject(o, "baseline");
        if (ctx->baselines && ctx->baselines->source[0])
            cJSON_AddStringToObject(b, "source", ctx->baselines->source);
        cJSON_AddStringToObject(b, "missing", config_missing_names[c->baseline.missing]);
        cJSON_AddNumberToObject(b, "min_runs", c->baseline.min_runs);
        cJSON_AddNumberToObject(b, "runs", c->baseline.runs);
        cJSON_AddStringToObject(b, "aggregate", config_aggregate_names[c->baseline.aggregate]);
        cJSON_AddNumberToObject(b, "min_count", c->baseline.min_count);
        if (c->baseline.pin_testid)
            cJSON_AddStringToObject(b, "pin_testid", c->baseline.pin_testid);
    }
    if (ctx->instances > 1) {
        cJSON *j = cJSON_AddObjectToObject(o, "instances");
        cJSON_AddNumberToObject(j, "count", ctx->instances);
        if (ctx->lost)
            cJSON_AddStringToObject(j, "lost", ctx->lost);
        else
            cJSON_AddNullToObject(j, "lost");
    }
    const struct sat_report *s = ctx->saturation;
    if (s && s->measured) {
        cJSON *j = cJSON_AddObjectToObject(o, "saturation");
        cJSON_AddBoolToObject(j, "saturated", s->saturated);
        cJSON_AddNumberToObject(j, "windows", s->windows);
        cJSON_AddNumberToObject(j, "saturated_windows", s->saturated_windows);
        cJSON_AddNumberToObject(j, "capacity_cpus", s->capacity);
        cJSON_AddStringToObject(j, "capacity_source", s->source);
        cJSON_AddNumberToObject(j, "cpu_peak", s->cpu_peak);
        cJSON_AddNumberToObject(j, "lag_peak", s->lag_peak);
    }
    return o;
}
