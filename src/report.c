/* report: verdict over thresholds, text summary, JSON summary, JUnit. */
#include "syncgate/report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "syncgate/digest.h"
#include "syncgate/http.h"
#include "syncgate/threshold.h"
#include "syncgate/units.h"

#define MAX_CHECKS 256

/* The sub-metric k6 prints in every summary: the duration of the expected responses. */
#define EXPECTED_KEY "http_req_duration{expected_response:true}"
static const struct tagset expected_filter = {1, {{"expected_response", "true"}}};

struct check_sum {
    const char *name;
    const char *group; /* "::journey", or "" for the root group */
    uint64_t pass, fail;
};

/* Checks by group and name, in the order they first ran; root checks first, then each
 * journey's in the order the journeys first ran (k6 prints groups that way). */
static size_t collect_checks(const struct metrics *m, struct check_sum *out, size_t max)
{
    size_t n = 0;
    for (const struct series *s = metrics_first(m); s; s = s->next) {
        /* a check made ready but never run (a journey not picked) is not shown */
        const char *name = s->id == M_CHECKS && s->v.rate.total ? tagset_get(&s->tags, "check")
                                                                 : NULL;
        const char *group = name ? tagset_get(&s->tags, "group") : NULL;
        if (!name)
            continue;
        if (!group)
            group = "";
        size_t i = 0;
        while (i < n && (strcmp(out[i].name, name) || strcmp(out[i].group, group)))
            i++;
        if (i == n) {
            if (n == max)
                continue;
            /* after the last check of its group, or at the end for a new group */
            size_t at = n;
            for (size_t k = 0; k < n; k++)
                if (!strcmp(out[k].group, group))
                    at = k + 1;
            if (!*group && at == n)
                for (at = 0; at < n && !*out[at].group; at++)
                    ;
            memmove(&out[at + 1], &out[at], (n - at) * sizeof(out[0]));
            out[at] = (struct check_sum){name, group, 0, 0};
            n++;
            i = at;
        }
        out[i].pass += s->v.rate.pass;
        out[i].fail += s->v.rate.total - s->v.rate.pass;
    }
    return n;
}

/* What a phase without any threshold is judged by: every check must pass. */
static const struct threshold_set implicit_set = {
    .n = 1,
    .t = {{.metric_key = (char *)"checks",
           .source = (char *)"rate==1.0",
           .metric = M_CHECKS,
           .agg = THR_RATE,
           .op = THR_EQ,
           .bound = 1.0}},
};

const char *outcome_name(enum outcome o)
{
    switch (o) {
    case OUTCOME_PASSED: return "passed";
    case OUTCOME_FAILED: return "failed";
    case OUTCOME_INCONCLUSIVE: return "inconclusive";
    }
    return "?";
}

const char *outcome_reason_name(enum outcome_reason r)
{
    switch (r) {
    case REASON_NONE: return "";
    case REASON_NO_SAMPLES: return "no samples";
    case REASON_FEW_SAMPLES: return "too few samples";
    case REASON_NO_BASELINE: return "no baseline";
    case REASON_BASELINE_ERROR: return "baseline query failed";
    case REASON_SATURATED: return "generator saturated";
    }
    return "?";
}

/* Latency: a time trend, what a saturated client measures wrong. */
static bool is_latency(const struct threshold *t)
{
    const struct metric_def *d = metric_def(t->metric);
    return d && d->type == METRIC_TREND && d->unit == UNIT_TIME;
}

/* One threshold's outcome, once observed and samples are known. */
static void decide(struct verdict_item *it, const struct report_ctx *ctx)
{
    const struct threshold *t = it->t;
    const struct config *c = ctx->cfg;
    const struct sat_report *sat = ctx->saturation;

    it->limit = t->baseline ? NAN : t->bound;
    if (t->baseline) {
        it->base = ctx->baselines ? baseline_find(ctx->baselines, t) : NULL;
        if (it->base && it->base->status == BASELINE_FOUND)
            it->limit = threshold_limit(t, it->base->value);
    }
    if (isnan(it->observed)) {
        it->outcome = OUTCOME_FAILED;
        it->reason = REASON_NO_SAMPLES;
        return;
    }
    if (is_latency(t) && !strcmp(it->scenario, "load") && sat && sat->measured &&
        sat->saturated) {
        it->outcome = OUTCOME_INCONCLUSIVE;
        it->reason = REASON_SATURATED;
        return;
    }
    if (t->baseline) {
        const struct metric_def *d = metric_def(t->metric);
        bool counted = d->type == METRIC_TREND || d->type == METRIC_RATE;
        if (!it->base || it->base->status == BASELINE_FAILED) {
            it->outcome = OUTCOME_INCONCLUSIVE;
            it->reason = REASON_BASELINE_ERROR;
            return;
        }
        if (counted && it->samples < (uint64_t)c->baseline.min_count) {
            it->outcome = OUTCOME_INCONCLUSIVE;
            it->reason = REASON_FEW_SAMPLES;
            return;
        }
        if (it->base->status == BASELINE_MISSING) {
            it->reason = REASON_NO_BASELINE;
            it->outcome = c->baseline.missing == BASELINE_MISSING_PASS   ? OUTCOME_PASSED
                          : c->baseline.missing == BASELINE_MISSING_FAIL ? OUTCOME_FAILED
                                                                         : OUTCOME_INCONCLUSIVE;
            return;
        }
    }
    it->reason = REASON_NONE;
    it->outcome = threshold_holds(t, it->observed, it->limit) ? OUTCOME_PASSED : OUTCOME_FAILED;
}

static int judge(struct verdict *v, const struct report_ctx *ctx, const struct threshold_set *ts,
                 const char *scenario)
{
    bool implicit = ts->n == 0;
    if (implicit)
        ts = &implicit_set;
    for (size_t i = 0; i < ts->n && v->n < sizeof(v->items) / sizeof(v->items[0]); i++) {
        const struct threshold *t = &ts->t[i];
        struct metric_view mv;
        struct verdict_item *it = &v->items[v->n++];

        if (threshold_view(t, ctx->m, !strcmp(scenario, "smoke"), &mv) < 0)
            return -ENOMEM;
        memset(it, 0, sizeof(*it));
        it->t = t;
        it->scenario = scenario;
        it->implicit = implicit;
        it->observed = threshold_observe(t, &mv, ctx->elapsed);
        it->samples = threshold_samples(t, &mv);
        metric_view_clear(&mv);
        decide(it, ctx);
        it->passed = it->outcome == OUTCOME_PASSED;
        v->failed |= it->outcome == OUTCOME_FAILED;
        v->inconclusive |= it->outcome == OUTCOME_INCONCLUSIVE;
    }
    return 0;
}

int report_verdict(const struct report_ctx *ctx, struct verdict *v)
{
    struct check_sum checks[MAX_CHECKS];
    size_t n = collect_checks(ctx->m, checks, MAX_CHECKS);
    int rc = 0;

    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v->checks_total += checks[i].pass + checks[i].fail;
        v->checks_failed += checks[i].fail;
    }
    if (ctx->cfg->no_thresholds)
        return 0; /* --no-thresholds: nothing is judged, as k6 */
    if (ctx->smoke_ran)
        rc = judge(v, ctx, &ctx->cfg->smoke.thresholds, "smoke");
    if (rc == 0 && ctx->load_ran)
        rc = judge(v, ctx, &ctx->cfg->load.thresholds, "load");
    return rc;
}

/* ---- failures by kind ---- */

/* Distinct status labels collected before the rest count as "status_other". */
#define MAX_STATUS_KINDS 64

size_t report_errors(const struct metrics *m, struct report_error *out, size_t max)
{
    uint64_t kinds[HTTP_ERR__COUNT] = {0}, other = 0, status_other = 0;
    struct {
        const char *label; /* borrowed from the series */
        uint64_t count;
    } st[MAX_STATUS_KINDS];
    size_t nst = 0;

    /* http_req_failed's passes are the failed requests: the same count, series by series */
    for (const struct series *s = metrics_first(m); s; s = s->next) {
        if (s->id != M_HTTP_REQ_FAILED || s->v.rate.pass == 0)
            continue;
        uint64_t count = s->v.rate.pass;
        const char *code = tagset_get(&s->tags, "error_code");
        const char *status = tagset_get(&s->tags, "status");
        int code_num = code ? atoi(code) : 0;
        if (code_num > 0 && code_num < 1400) { /* 1400 on: k6's codes for HTTP statuses */
            kinds[http_error_from_code(code_num)] += count;
            continue;
        }
        if (!status) {
            other += count;
            continue;
        }
        size_t i = 0;
        while (i < nst && strcmp(st[i].label, status) < 0)
            i++;
        if (i < nst && strcmp(st[i].label, status) == 0) {
            st[i].count += count;
        } else if (nst == MAX_STATUS_KINDS) {
            status_other += count;
        } else {
            memmove(&st[i + 1], &st[i], (nst - i) * sizeof(st[0]));
            st[i].label = status;
            st[i].count = count;
            nst++;
        }
    }

    /* every kind in order, then cut to max with the rest added up, never lost */
    struct report_error all[HTTP_ERR__COUNT + MAX_STATUS_KINDS + 2];
    size_t n = 0, nstatus_from;
    for (int e = HTTP_ERR_NONE + 1; e < HTTP_ERR__COUNT; e++)
        if (kinds[e]) {
            snprintf(all[n].kind, sizeof(all[n].kind), "%s", http_error_name(e));
            all[n++].count = kinds[e];
        }
    nstatus_from = n;
    for (size_t i = 0; i < nst; i++) {
        snprintf(all[n].kind, sizeof(all[n].kind), "status_%s", st[i].label);
        all[n++].count = st[i].count;
    }
    if (status_other) {
        snprintf(all[n].kind, sizeof(all[n].kind), "status_other");
        all[n++].count = status_other;
    }
    if (max == 0)
        return 0;
    if (n + (other > 0) <= max) {
        memcpy(out, all, n * sizeof(all[0]));
    } else {
        /* keep max-1 entries (max-2 when "other" has its own), fold the rest into one */
        size_t keep = max - 1 - (other > 0 && max >= 2);
        uint64_t fold = 0;
        for (size_t i = keep; i < n; i++)
            fold += all[i].count;
        memcpy(out, all, keep * sizeof(all[0]));
        bool statuses_only = keep >= nstatus_from;
        if (!statuses_only || max < 2) {
            fold += other; /* one "other" holds everything cut */
            other = 0;
        }
        snprintf(all[keep].kind, sizeof(all[keep].kind), "%s",
                 statuses_only && max >= 2 ? "status_other" : "other");
        all[keep].count = fold;
        out[keep] = all[keep];
        n = keep + 1;
    }
    if (other) {
        snprintf(out[n].kind, sizeof(out[n].kind), "other");
        out[n++].count = other;
    }
    return n;
}

/* ---- text summary ---- */

static char *fmt_bytes(double b, char *buf, size_t n)
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4) {
        b /= 1000;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", b, units[u]);
    return buf;
}

static void metric_label(FILE *out, const char *label, const char *mark)
{
    int dots = 32 - (int)strlen(label);
    fprintf(out, "   %s %s", mark, label);
    for (int i = 0; i < dots; i++)
        fputc('.', out);
    fputs(": ", out);
}

/*
 * One trend statistic named as in k6's summaryTrendStats ("avg", "min", "med", "max",
 * "count", "p(N)") of h, in the trend's unit (usec for time trends). NAN for a name that is
 * none of these (configuration checked the list).
 */
static double trend_stat(const struct hist *h, const char *name, size_t len)
{
    char buf[32];
    if (len >= sizeof(buf))
        return NAN;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (!strcmp(buf, "avg"))
        return hist_mean(h);
    if (!strcmp(buf, "min"))
        return (double)hist_min(h);
    if (!strcmp(buf, "med"))
        return hist_percentile(h, 50);
    if (!strcmp(buf, "max"))
        return (double)hist_max(h);
    if (!strcmp(buf, "count"))
        return (double)hist_count(h);
    if (len > 3 && !strncmp(buf, "p(", 2) && buf[len - 1] == ')')
        return hist_percentile(h, strtod(buf + 2, NULL));
    return NAN;
}

static void print_view(FILE *out, const struct metric_view *mv, double secs, const char *stats)
{
    const struct metric_def *d = metric_def(mv->id);
    char a[32], b[32];
    switch (d->type) {
    case METRIC_COUNTER:
        if (d->unit == UNIT_DATA)
            fprintf(out, "%-10s %s/s\n", fmt_bytes(mv->counter, a, sizeof(a)),
                    fmt_bytes(mv->counter / secs, b, sizeof(b)));
        else
            fprintf(out, "%-10.0f %.6g/s\n", mv->counter, mv->counter / secs);
        break;
    case METRIC_RATE:
        fprintf(out, "%.2f%%  ✓ %-8llu ✗ %llu\n",
                mv->total ? 100.0 * (double)mv->pass / (double)mv->total : 0.0,
                (unsigned long long)mv->pass, (unsigned long long)(mv->total - mv->pass));
        break;
    case METRIC_GAUGE:
        fprintf(out, "%-10g min=%-8g max=%g\n", mv->gauge_value, mv->gauge_min, mv->gauge_max);
        break;
    case METRIC_TREND: {
        /* k6's columns: summary_trend_stats (--summary-trend-stats) */
        bool first = true;
        for (const char *p = stats; *p;) {
            size_t len = strcspn(p, ",");
            const char *name = p;
            size_t nl = len;
            while (nl && *name == ' ')
                name++, nl--;
            while (nl && name[nl - 1] == ' ')
                nl--;
            double v = trend_stat(mv->trend, name, nl);
            if (!isnan(v)) {
                bool count = nl == 5 && !strncmp(name, "count", 5);
                fprintf(out, "%s%.*s=", first ? "" : " ", (int)nl, name);
                if (count || d->unit != UNIT_TIME)
                    fprintf(out, "%.6g", v);
                else
                    fputs(units_format_latency(v, a, sizeof(a)), out);
                first = false;
            }
            p += len + (p[len] == ',');
        }
        fputc('\n', out);
        break;
    }
    }
}

/* A metric's own line mark: ✓/✗ when thresholds judge exactly this key. */
static const char *mark_for(const struct verdict *v, const char *key)
{
    const char *mark = " ";
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->items[i].t->metric_key, key) == 0) {
            if (v->items[i].outcome == OUTCOME_FAILED)
                return "✗";
            if (v->items[i].outcome == OUTCOME_INCONCLUSIVE)
                mark = "?";
            else if (mark[0] == ' ')
                mark = "✓";
        }
    return mark;
}

void report_text(FILE *out, const struct report_ctx *ctx, const struct verdict *v, bool color)
{
    const char *green = color ? "\033[32m" : "", *red = color ? "\033[31m" : "",
               *yellow = color ? "\033[33m" : "", *reset = color ? "\033[0m" : "";
    struct check_sum checks[MAX_CHECKS];
    size_t nchecks = collect_checks(ctx->m, checks, MAX_CHECKS);
    double secs = ctx->elapsed > 0 ? (double)ctx->elapsed / USEC_PER_SEC : 1e-6;
    char key[512];

    fputc('\n', out);
    for (size_t i = 0; i < nchecks; i++) {
        const struct check_sum *c = &checks[i];
        const char *pad = *c->group ? "  " : "";
        if (*c->group && (i == 0 || strcmp(checks[i - 1].group, c->group)))
            fprintf(out, "%s     █ %s\n\n", i ? "\n" : "", c->group + 2);
        if (!c->fail) {
            fprintf(out, "%s     %s✓ %s%s\n", pad, green, c->name, reset);
            continue;
        }
        uint64_t total = c->pass + c->fail;
        fprintf(out, "%s     %s✗ %s%s\n%s      ↳  %.0f%% — ✓ %llu / ✗ %llu\n", pad, red,
                c->name, reset, pad, 100.0 * (double)c->pass / (double)total,
                (unsigned long long)c->pass, (unsigned long long)c->fail);
    }
    if (nchecks)
        fputc('\n', out);

    for (int id = 0; id < M_COUNT; id++) {
        struct metric_view mv;
        if (metrics_view(ctx->m, id, NULL, &mv) < 0)
            continue;
        if (metric_view_has_samples(&mv)) {
            metric_label(out, metric_def(id)->name, mark_for(v, metric_def(id)->name));
            print_view(out, &mv, secs, ctx->cfg->summary_trend_stats);
        }
        metric_view_clear(&mv);
        /* k6 always shows the expected responses' duration (unless a threshold names it) */
        bool named = false;
        for (size_t i = 0; i < v->n; i++)
            named |= !strcmp(v->items[i].t->metric_key, EXPECTED_KEY);
        if (id == M_HTTP_REQ_DURATION && !named &&
            metrics_view(ctx->m, id, &expected_filter, &mv) == 0) {
            if (metric_view_has_samples(&mv)) {
                metric_label(out, "{ expected_response:true }", " ");
                print_view(out, &mv, secs, ctx->cfg->summary_trend_stats);
            }
            metric_view_clear(&mv);
        }
        /* Sub-metrics named by thresholds, like k6 prints them. */
        for (size_t i = 0; i < v->n; i++) {
            const struct threshold *t = v->items[i].t;
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                seen |= !strcmp(v->items[j].t->metric_key, t->metric_key);
            if ((int)t->metric != id || !t->filter.n || seen)
                continue;
            if (metrics_view(ctx->m, id, &t->filter, &mv) < 0)
                continue;
            snprintf(key, sizeof(key), "{ %s }", strchr(t->metric_key, '{') + 1);
            key[strlen(key) - 1] = '\0';
            strcat(key, " }");
            metric_label(out, key, mark_for(v, t->metric_key));
            if (metric_view_has_samples(&mv))
                print_view(out, &mv, secs, ctx->cfg->summary_trend_stats);
            else
                fputs("no samples\n", out);
            metric_view_clear(&mv);
        }
    }

    struct report_error errs[REPORT_MAX_ERRORS];
    size_t nerrs = report_errors(ctx->m, errs, REPORT_MAX_ERRORS);
    if (nerrs) {
        metric_label(out, "failed requests by kind", " ");
        for (size_t i = 0; i < nerrs; i++)
            fprintf(out, "%s%s=%llu", i ? " " : "", errs[i].kind,
                    (unsigned long long)errs[i].count);
        fputc('\n', out);
    }

    report_scenarios_text(out, ctx);

    if (v->n) {
        char detail[1024];
        bool any_baseline = false;
        fputs("\n   thresholds:\n", out);
        for (size_t i = 0; i < v->n; i++) {
            const struct verdict_item *it = &v->items[i];
            const char *col = it->outcome == OUTCOME_PASSED ? green
                              : it->outcome == OUTCOME_FAILED ? red
                                                              : yellow;
            const char *mark = it->outcome == OUTCOME_PASSED ? "✓"
                               : it->outcome == OUTCOME_FAILED ? "✗"
                                                               : "?";
            fprintf(out, "     %s%s %-6s %s %s%s%s (%s%s)\n", col, mark, it->scenario,
                    it->t->metric_key, it->t->source, it->implicit ? " (implicit)" : "", reset,
                    it->outcome == OUTCOME_INCONCLUSIVE ? "inconclusive: " : "",
                    digest_item(it, ctx->cfg, detail, sizeof(detail)));
            any_baseline |= it->t->baseline;
            if (it->base && it->base->nruns) {
                fputs("         baseline runs:", out);
                for (size_t k = 0; k < it->base->nruns; k++)
                    fprintf(out, "%s %s=%.6g", k ? "," : "", it->base->runs[k].testid,
                            it->base->runs[k].value);
                fputc('\n', out);
            }
        }
        if (any_baseline) {
            const struct config *c = ctx->cfg;
            fprintf(out,
                    "\n   baseline: %s of the newest %d history runs (at least %d, within %s) "
                    "from %s; with fewer, missing: %s%s\n",
                    config_aggregate_names[c->baseline.aggregate], c->baseline.runs,
                    c->baseline.min_runs, units_format_duration(c->baseline.max_age, detail, 64),
                    ctx->baselines && ctx->baselines->source[0] ? ctx->baselines->source
                                                                : "(no source)",
                    config_missing_names[c->baseline.missing],
                    c->baseline.missing == BASELINE_MISSING_INCONCLUSIVE
                        ? " (the default: such a run ends inconclusive and still becomes history)"
                        : "");
            if (c->baseline.pin_testid)
                fprintf(out, "   baseline pinned to run %s\n", c->baseline.pin_testid);
        }
    }
    const struct sat_report *sat = ctx->saturation;
    if (sat && sat->measured)
        fprintf(out,
                "\n   load generator: %s%s%s (%u of %u s saturated; peak CPU %.0f%% of %.3g CPU%s "
                "(%s), peak loop lag %.0f%%)%s\n",
                sat->saturated ? yellow : "", sat->saturated ? "SATURATED" : "not saturated",
                reset, sat->saturated_windows, sat->windows, sat->cpu_peak * 100, sat->capacity,
                sat->capacity == 1 ? "" : "s", sat->source, sat->lag_peak * 100,
                sat->saturated ? ": latency thresholds are inconclusive" : "");
    if (ctx->rw_status)
        fprintf(out, "\n   remote write: %s\n", ctx->rw_status);
    if (ctx->instances > 1)
        fprintf(out, "\n   instances: %u, judged on their merged metrics%s%s%s%s%s\n",
                ctx->instances, ctx->lost ? "; " : "", ctx->lost ? red : "",
                ctx->lost ? "LOST: " : "", ctx->lost ? ctx->lost : "", ctx->lost ? reset : "");
    bool incon = ctx->exit_code == 114 || ctx->exit_code == 115;
    const char *rcol = ctx->exit_code == 0 ? green : incon ? yellow : red;
    const char *rword = ctx->exit_code == 0   ? "PASSED"
                        : ctx->exit_code == 115 ? "INCONCLUSIVE (peers lost)"
                        : incon                 ? "INCONCLUSIVE"
                                                : "FAILED";
    fprintf(out, "\n   result: %s%s%s (exit code %d)\n\n", rcol, rword, reset, ctx->exit_code);
}

/* ---- JSON summary (k6 --summary-export shape) ---- */

/* k6's id of a check or group: the hex MD5 of its path ("::<name>" for a check at the root). */
static void k6_id(const char *path, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!EVP_Digest(path, strlen(path), md, &n, EVP_md5(), NULL) || n != 16)
        return;
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static double ms(double usec)
{
    return usec / 1000.0;
}

static cJSON *view_json(const struct metric_view *mv, double secs, const char *stats)
{
    const struct metric_def *d = metric_def(mv->id);
    cJSON *o = cJSON_CreateObject();
    switch (d->type) {
    case METRIC_COUNTER:
        cJSON_AddNumberToObject(o, "count", mv->counter);
        cJSON_AddNumberToObject(o, "rate", mv->counter / secs);
        break;
    case METRIC_RATE:
        cJSON_AddNumberToObject(o, "passes", (double)mv->pass);
        cJSON_AddNumberToObject(o, "fails", (double)(mv->total - mv->pass));
        cJSON_AddNumberToObject(o, "value",
                                mv->total ? (double)mv->pass / (double)mv->total : 0.0);
        break;
    case METRIC_GAUGE:
        cJSON_AddNumberToObject(o, "value", mv->gauge_value);
        cJSON_AddNumberToObject(o, "min", mv->gauge_min);
        cJSON_AddNumberToObject(o, "max", mv->gauge_max);
        break;
    case METRIC_TREND: {
        const struct hist *h = mv->trend;
        cJSON_AddNumberToObject(o, "avg", ms(hist_mean(h)));
        cJSON_AddNumberToObject(o, "min", ms((double)hist_min(h)));
        cJSON_AddNumberToObject(o, "med", ms(hist_percentile(h, 50)));
        cJSON_AddNumberToObject(o, "max", ms((double)hist_max(h)));
        cJSON_AddNumberToObject(o, "p(90)", ms(hist_percentile(h, 90)));
        cJSON_AddNumberToObject(o, "p(95)", ms(hist_percentile(h, 95)));
        cJSON_AddNumberToObject(o, "p(99)", ms(hist_percentile(h, 99)));
        /* and any other column --summary-trend-stats asked for (count, p(99.9)...) */
        for (const char *p = stats ? stats : ""; *p;) {
            size_t len = strcspn(p, ","), nl = len;
            const char *name = p;
            char key[32];
            while (nl && *name == ' ')
                name++, nl--;
            while (nl && name[nl - 1] == ' ')
                nl--;
            p += len + (p[len] == ',');
            if (nl >= sizeof(key))
                continue;
            memcpy(key, name, nl);
            key[nl] = '\0';
            double v = trend_stat(h, name, nl);
            if (isnan(v) || cJSON_GetObjectItemCaseSensitive(o, key))
                continue;
            cJSON_AddNumberToObject(o, key, strcmp(key, "count") ? ms(v) : v);
        }
        break;
    }
    }
    return o;
}

/* Replace path with text as one step: written to a temporary file beside it, then
 * renamed, so a signal that ends the process midway (a second SIGTERM exits at once)
 * leaves either the old file or the new one, never a truncated one. A path that is
 * not a plain file (/dev/stdout, any symlink, a FIFO) is written in place. */
int report_write_file(const char *path, const char *text)
{
    struct stat st;
    size_t len = strlen(text);
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "w");
        if (!f)
            return -errno;
        fwrite(text, 1, len, f);
        return fclose(f) == 0 ? 0 : -errno;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -errno;
    mode_t mask = umask(0); /* the mode fopen() would have given */
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask) == 0 ? 0 : -errno;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int report_json(const char *path, const struct report_ctx *ctx, const struct verdict *v)
{
    struct check_sum checks[MAX_CHECKS];
    size_t nchecks = collect_checks(ctx->m, checks, MAX_CHECKS);
    double secs = ctx->elapsed > 0 ? (double)ctx->elapsed / USEC_PER_SEC : 1e-6;
    cJSON *root = cJSON_CreateObject();
    cJSON *group = cJSON_AddObjectToObject(root, "root_group");
    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    char buf[512];

    char id[33];
    cJSON_AddStringToObject(group, "name", "");
    cJSON_AddStringToObject(group, "path", "");
    k6_id("", id);
    cJSON_AddStringToObject(group, "id", id);
    cJSON *groups = cJSON_AddObjectToObject(group, "groups");
    cJSON *root_checks = cJSON_AddObjectToObject(group, "checks");
    for (size_t i = 0; i < nchecks; i++) {
        cJSON *cj = root_checks;
        if (*checks[i].group) {
            /* a journey is a k6 group: {name, path "::name", groups, checks} */
            cJSON *g = cJSON_GetObjectItemCaseSensitive(groups, checks[i].group + 2);
            if (!g) {
                g = cJSON_AddObjectToObject(groups, checks[i].group + 2);
                cJSON_AddStringToObject(g, "name", checks[i].group + 2);
                cJSON_AddStringToObject(g, "path", checks[i].group);
                k6_id(checks[i].group, id);
                cJSON_AddStringToObject(g, "id", id);
                cJSON_AddObjectToObject(g, "groups");
                cJSON_AddObjectToObject(g, "checks");
            }
            cj = cJSON_GetObjectItemCaseSensitive(g, "checks");
        }
        cJSON *c = cJSON_AddObjectToObject(cj, checks[i].name);
        snprintf(buf, sizeof(buf), "%s::%s", checks[i].group, checks[i].name);
        k6_id(buf, id);
        cJSON_AddStringToObject(c, "name", checks[i].name);
        cJSON_AddStringToObject(c, "path", buf);
        cJSON_AddStringToObject(c, "id", id);
        cJSON_AddNumberToObject(c, "passes", (double)checks[i].pass);
        cJSON_AddNumberToObject(c, "fails", (double)checks[i].fail);
    }

    for (int mid = 0; mid < M_COUNT; mid++) {
        struct metric_view mv;
        if (metrics_view(ctx->m, mid, NULL, &mv) < 0)
            continue;
        if (metric_view_has_samples(&mv))
            cJSON_AddItemToObject(metrics, metric_def(mid)->name,
                                  view_json(&mv, secs, ctx->cfg->summary_trend_stats));
        metric_view_clear(&mv);
    }
    /* k6 always reports the duration of the expected responses apart */
    struct metric_view ev;
    if (metrics_view(ctx->m, M_HTTP_REQ_DURATION, &expected_filter, &ev) == 0) {
        if (metric_view_has_samples(&ev))
            cJSON_AddItemToObject(metrics, EXPECTED_KEY, view_json(&ev, secs, ctx->cfg->summary_trend_stats));
        metric_view_clear(&ev);
    }
    /* Thresholds under their metric key, true meaning failed (k6's convention). */
    for (size_t i = 0; i < v->n; i++) {
        const struct threshold *t = v->items[i].t;
        cJSON *m = cJSON_GetObjectItemCaseSensitive(metrics, t->metric_key);
        if (!m) {
            struct metric_view mv;
            if (metrics_view(ctx->m, t->metric, &t->filter, &mv) < 0)
                continue;
            m = view_json(&mv, secs, ctx->cfg->summary_trend_stats);
            metric_view_clear(&mv);
            cJSON_AddItemToObject(metrics, t->metric_key, m);
        }
        cJSON *th = cJSON_GetObjectItemCaseSensitive(m, "thresholds");
        if (!th)
            th = cJSON_AddObjectToObject(m, "thresholds");
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(th, t->source);
        bool failed = !v->items[i].passed || (prev && cJSON_IsTrue(prev));
        cJSON_DeleteItemFromObjectCaseSensitive(th, t->source);
        cJSON_AddBoolToObject(th, t->source, failed);
    }

    /* Not in k6's shape: thresholds syncgate added because a phase had none. */
    cJSON *imp = NULL;
    for (size_t i = 0; i < v->n; i++) {
        if (!v->items[i].implicit)
            continue;
        if (!imp)
            imp = cJSON_AddArrayToObject(root, "implicit_thresholds");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "scenario", v->items[i].scenario);
        cJSON_AddStringToObject(o, "metric", v->items[i].t->metric_key);
        cJSON_AddStringToObject(o, "threshold", v->items[i].t->source);
        cJSON_AddItemToArray(imp, o);
    }

    /* Not in k6's shape: every threshold's outcome, reason, value, limit and baseline, the
     * saturation watch and the result (k6's booleans above say "not passed" for both
     * failed and inconclusive). */
    cJSON *detail = digest_json(ctx, v);
    if (detail)
        cJSON_AddItemToObject(root, "syncgate", detail);

    /* Not in k6's shape either: what each load scenario did (rates, drops, lateness). */
    cJSON *sj = report_scenarios_json(ctx);
    if (sj)
        cJSON_AddItemToObject(root, "scenarios", sj);

    /* Not in k6's shape: failed requests by kind, so a run can tell a timeout from a reset. */
    struct report_error errs[REPORT_MAX_ERRORS];
    size_t nerrs = report_errors(ctx->m, errs, REPORT_MAX_ERRORS);
    cJSON *ej = cJSON_AddObjectToObject(root, "errors");
    for (size_t i = 0; i < nerrs; i++)
        cJSON_AddNumberToObject(ej, errs[i].kind, (double)errs[i].count);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -ENOMEM;
    int rc = report_write_file(path, text);
    free(text);
    return rc;
}

/* ---- JUnit ---- */

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            fputc((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ? '?' : *s, f);
        }
    }
}

int report_junit(const char *path, const struct report_ctx *ctx, const struct verdict *v)
{
    struct check_sum checks[MAX_CHECKS];
    size_t nchecks = collect_checks(ctx->m, checks, MAX_CHECKS), nfail = 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -errno;
    for (size_t i = 0; i < nchecks; i++)
        nfail += checks[i].fail > 0;
    size_t tfail = 0, terr = 0;
    char detail[1024];
    for (size_t i = 0; i < v->n; i++) {
        tfail += v->items[i].outcome == OUTCOME_FAILED;
        terr += v->items[i].outcome == OUTCOME_INCONCLUSIVE;
    }

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<testsuites name=\"syncgate\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
               "time=\"%.3f\">\n",
            nchecks + v->n, nfail + tfail, terr, (double)ctx->elapsed / USEC_PER_SEC);
    fprintf(f, "  <testsuite name=\"checks\" tests=\"%zu\" failures=\"%zu\">\n", nchecks, nfail);
    for (size_t i = 0; i < nchecks; i++) {
        fputs("    <testcase classname=\"syncgate.checks", f);
        if (*checks[i].group) {
            fputc('.', f);
            xml_escaped(f, checks[i].group + 2);
        }
        fputs("\" name=\"", f);
        xml_escaped(f, checks[i].name);
        if (!checks[i].fail) {
            fputs("\"/>\n", f);
            continue;
        }
        fprintf(f, "\"><failure message=\"%llu of %llu failed\"/></testcase>\n",
                (unsigned long long)checks[i].fail,
                (unsigned long long)(checks[i].pass + checks[i].fail));
    }
    fprintf(f,
            "  </testsuite>\n  <testsuite name=\"thresholds\" tests=\"%zu\" failures=\"%zu\" "
            "errors=\"%zu\">\n",
            v->n, tfail, terr);
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict_item *it = &v->items[i];
        fprintf(f, "    <testcase classname=\"syncgate.thresholds.%s\" name=\"", it->scenario);
        xml_escaped(f, it->t->metric_key);
        fputc(' ', f);
        xml_escaped(f, it->t->source);
        if (it->implicit)
            fputs(" (implicit)", f);
        if (it->passed) {
            fputs("\"/>\n", f);
            continue;
        }
        /* Inconclusive is an error (the test could not be judged), never a skip that CI
         * would count as fine. */
        fputs(it->outcome == OUTCOME_FAILED ? "\"><failure message=\""
                                            : "\"><error type=\"inconclusive\" message=\"",
              f);
        xml_escaped(f, digest_item(it, ctx->cfg, detail, sizeof(detail)));
        fputs("\"/></testcase>\n", f);
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    int rc = fclose(f) == 0 ? report_write_file(path, text) : -ENOMEM;
    free(text);
    return rc;
}
