/* report_html: the self-contained HTML report (inline CSS and SVG, nothing fetched). */
#include "syncgate/report_html.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syncgate/baseline.h"
#include "syncgate/threshold.h"
#include "syncgate/units.h"
#include "utf8.h"

#define MAX_GROUPS 64
#define MAX_CHECKS 256
#define MAX_ROWS 128

/* ---- text ---- */

void report_html_escape(FILE *out, const char *s)
{
    if (!s)
        return;
    for (size_t i = 0, len = strlen(s), l; i < len; i += l) {
        const unsigned char *u = (const unsigned char *)s + i;
        l = utf8_seq_len(u, len - i);
        if (l == 0) {
            fputs("\xef\xbf\xbd", out); /* U+FFFD for a byte that is not UTF-8 */
            l = 1;
            continue;
        }
        if (l > 1) {
            fwrite(u, 1, l, out);
            continue;
        }
        switch (*u) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default:
            if ((*u < 0x20 && *u != '\t' && *u != '\n') || *u == 0x7f)
                fputs("\xef\xbf\xbd", out);
            else
                fputc(*u, out);
        }
    }
}

#define esc(out, s) report_html_escape(out, s)

/* A number for people: few digits, no exponent for everyday magnitudes. */
static const char *num(double v, char *buf, size_t n)
{
    double a = fabs(v);
    if (isnan(v))
        snprintf(buf, n, "–");
    else if (a >= 1e9)
        snprintf(buf, n, "%.3g", v);
    else if (a >= 100 || v == floor(v))
        snprintf(buf, n, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, n, "%.1f", v);
    else
        snprintf(buf, n, "%.2f", v);
    return buf;
}

/* An axis label: three significant digits at most ("7.5", "250", "1.2e+04"). */
static const char *axis_num(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.3g", v);
    return buf;
}

static const char *ms(double usec, char *buf, size_t n)
{
    char b[32];
    snprintf(buf, n, "%s ms", num(usec / 1000.0, b, sizeof(b)));
    return buf;
}

/* ---- verdict ---- */

struct banner {
    const char *cls, *word, *why;
};

static struct banner banner_of(int code)
{
    switch (code) {
    case 0: return (struct banner){"passed", "PASSED", "every check and threshold passed"};
    case 99: return (struct banner){"failed", "FAILED", "a threshold failed"};
    case 104: return (struct banner){"failed", "INVALID", "invalid configuration: nothing was sent"};
    case 105:
        return (struct banner){"interrupted", "INTERRUPTED",
                                "stopped by a signal before the end; the figures cover what ran"};
    case 112:
        return (struct banner){"failed", "NOT READY",
                                "the gateway never became ready within the readiness timeout"};
    case 113:
        return (struct banner){"failed", "UNDELIVERED",
                                "metrics could not be delivered and the profile requires it"};
    case 114:
        return (struct banner){"inconclusive", "INCONCLUSIVE",
                                "the run could not tell whether the deployment is good"};
    case 115:
        return (struct banner){"inconclusive", "PEERS LOST",
                                "instances of the distributed run were lost: the figures cover "
                                "what they reported"};
    case 116:
        return (struct banner){"failed", "AUTH FAILED",
                                "the OAuth2 token could not be fetched: no journey request "
                                "was sent"};
    case 1: return (struct banner){"failed", "ERROR", "internal failure"};
    default: return (struct banner){"failed", "FAILED", "the run did not pass"};
    }
}

/* ---- figures from the registry ---- */

static void view_or_empty(const struct metrics *m, enum metric_id id, const struct tagset *f,
                          struct metric_view *v)
{
    if (metrics_view(m, id, f, v) < 0)
        memset(v, 0, sizeof(*v));
}

struct overall {
    double requests, failed_ratio, p95, peak_vus, iterations;
    uint64_t failed;
    bool have_p95;
};

static void overall_figures(const struct metrics *m, struct overall *o)
{
    struct metric_view v;
    memset(o, 0, sizeof(*o));
    view_or_empty(m, M_HTTP_REQS, NULL, &v);
    o->requests = v.counter;
    metric_view_clear(&v);
    view_or_empty(m, M_HTTP_REQ_FAILED, NULL, &v);
    o->failed = v.pass;
    o->failed_ratio = v.total ? (double)v.pass / (double)v.total : 0;
    metric_view_clear(&v);
    view_or_empty(m, M_HTTP_REQ_DURATION, NULL, &v);
    if (v.trend && hist_count(v.trend)) {
        o->p95 = hist_percentile(v.trend, 95);
        o->have_p95 = true;
    }
    metric_view_clear(&v);
    view_or_empty(m, M_VUS, NULL, &v);
    o->peak_vus = v.gauge_set ? v.gauge_max : 0;
    metric_view_clear(&v);
    view_or_empty(m, M_ITERATIONS, NULL, &v);
    o->iterations = v.counter;
    metric_view_clear(&v);
}

/* ---- sections ---- */

static void head(FILE *out, const struct report_ctx *ctx, const struct banner *oc,
                 const struct report_html_info *info)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"syncgate " SYNCGATE_VERSION "\">\n<title>",
          out);
    fprintf(out, "%s · ", oc->word);
    esc(out, ctx->cfg->environment);
    fputs(" · ", out);
    esc(out, info->command);
    fputs(" · syncgate</title>\n<style>\n", out);
    fputs(":root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--ink:#1f2328;--mute:#59636e;"
          "--line:#d1d9e0;--bg:#f6f8fa}\n"
          "*{box-sizing:border-box}\n"
          "body{margin:0;font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,"
          "\"DejaVu Sans\",sans-serif;color:var(--ink);background:#fff}\n"
          "main{max-width:1340px;margin:0 auto;padding:0 24px 32px}\n"
          "header.verdict{padding:20px 24px;color:#fff}\n"
          "header.passed{background:var(--ok)}header.failed{background:var(--bad)}"
          "header.interrupted,header.inconclusive{background:var(--warn)}\n"
          ".verdict .inner{max-width:1340px;margin:0 auto;display:flex;flex-wrap:wrap;"
          "align-items:baseline;gap:8px 28px}\n"
          ".verdict .word{font-size:34px;font-weight:700;letter-spacing:.04em}\n"
          ".verdict .why{font-size:16px}\n"
          ".verdict dl{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0 0;width:100%}\n"
          ".verdict dt{opacity:.8}.verdict dd{margin:0 0 0 4px;font-weight:600}\n"
          ".verdict dl div{display:flex}\n"
          ".figures{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0}\n"
          ".figure{border:1px solid var(--line);border-radius:6px;padding:10px 16px;"
          "min-width:150px;background:var(--bg)}\n"
          ".figure b{display:block;font-size:22px}.figure span{color:var(--mute)}\n"
          "h2{font-size:18px;margin:26px 0 10px;padding-bottom:4px;"
          "border-bottom:1px solid var(--line)}\n"
          "h3{font-size:15px;margin:16px 0 6px}\n"
          "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\n"
          "th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);"
          "vertical-align:top}\n"
          "th{background:var(--bg);font-weight:600}\ntd.n,th.n{text-align:right}\n"
          "td.code{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;"
          "word-break:break-all}\n"
          ".pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}"
          ".undecided{color:var(--warn);font-weight:600}\n"
          ".muted{color:var(--mute)}\n"
          ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));"
          "gap:16px}\n"
          "figure.chart{margin:0;border:1px solid var(--line);border-radius:6px;"
          "padding:8px 10px}\n"
          "figure.chart figcaption{font-weight:600;margin-bottom:4px}\n"
          "figure.chart svg{width:100%;height:auto;display:block}\n"
          "svg text{font:12px system-ui,\"DejaVu Sans\",sans-serif;fill:var(--mute)}\n"
          "svg .grid{stroke:var(--line);stroke-width:1}\n"
          "svg .line{fill:none;stroke-width:2;stroke-linejoin:round}\n"
          "svg .area{stroke:none;opacity:.12}\n"
          "footer{color:var(--mute);margin-top:28px;font-size:12px}\n"
          "</style>\n</head>\n",
          out);
}

static void fmt_time(int64_t wall, char *buf, size_t n)
{
    time_t secs = (time_t)(wall / USEC_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void fact(FILE *out, const char *name, const char *value)
{
    fprintf(out, "<div><dt>%s</dt><dd>", name);
    esc(out, value && *value ? value : "–");
    fputs("</dd></div>", out);
}

static void verdict_header(FILE *out, const struct report_ctx *ctx, const struct verdict *v,
                           const struct banner *oc, const struct report_html_info *info)
{
    char buf[128], dur[32];
    size_t failed = 0, inconclusive = 0;
    for (size_t i = 0; i < v->n; i++) {
        failed += v->items[i].outcome == OUTCOME_FAILED;
        inconclusive += v->items[i].outcome == OUTCOME_INCONCLUSIVE;
    }

    fprintf(out, "<body>\n<header class=\"verdict %s\" id=\"verdict\" data-exit-code=\"%d\">"
                 "<div class=\"inner\">\n<div class=\"word\">%s</div>\n<div class=\"why\">",
            oc->cls, ctx->exit_code, oc->word);
    if (ctx->exit_code == 99 && failed)
        fprintf(out, "%zu of %zu thresholds failed", failed, v->n);
    else if (ctx->exit_code == 114 && inconclusive)
        fprintf(out, "%zu of %zu thresholds could not be judged", inconclusive, v->n);
    else
        esc(out, oc->why);
    fprintf(out, " · exit code %d</div>\n<dl>", ctx->exit_code);
    fact(out, "environment", ctx->cfg->environment);
    fact(out, "command", info->command);
    fact(out, "testid", ctx->cfg->testid);
    fact(out, "profile", ctx->cfg->profile_path ? ctx->cfg->profile_path : "built-in defaults");
    fmt_time(info->started_wall, buf, sizeof(buf));
    fact(out, "started", buf);
    fact(out, "duration", units_format_duration(ctx->elapsed / USEC_PER_MSEC * USEC_PER_MSEC,
                                                dur, sizeof(dur)));
    fact(out, "instance", ctx->cfg->instance);
    if (ctx->instances > 1) {
        snprintf(buf, sizeof(buf), "%u, merged", ctx->instances);
        fact(out, "instances", buf);
        if (ctx->lost)
            fact(out, "lost", ctx->lost);
    }
    fputs("</dl>\n</div></header>\n<main>\n", out);
}

static void figure(FILE *out, const char *id, const char *value, const char *label)
{
    fprintf(out, "<div class=\"figure\" id=\"fig-%s\"><b>", id);
    esc(out, value);
    fprintf(out, "</b><span>%s</span></div>\n", label);
}

static void key_figures(FILE *out, const struct report_ctx *ctx, const struct verdict *v)
{
    struct overall o;
    char a[64], b[64];
    double secs = ctx->elapsed > 0 ? (double)ctx->elapsed / USEC_PER_SEC : 0;

    overall_figures(ctx->m, &o);
    fputs("<section class=\"figures\" id=\"figures\">\n", out);
    figure(out, "requests", num(o.requests, a, sizeof(a)), "requests");
    snprintf(b, sizeof(b), "%s/s", num(secs > 0 ? o.requests / secs : 0, a, sizeof(a)));
    figure(out, "rate", b, "average request rate");
    snprintf(b, sizeof(b), "%s%%", num(o.failed_ratio * 100, a, sizeof(a)));
    figure(out, "failed", b, "requests failed");
    figure(out, "p95", o.have_p95 ? ms(o.p95, a, sizeof(a)) : "–", "p95 latency");
    snprintf(b, sizeof(b), "%zu / %zu", v->checks_total - v->checks_failed, v->checks_total);
    figure(out, "checks", b, "checks passed");
    figure(out, "vus", num(o.peak_vus, a, sizeof(a)), "peak VUs");
    fputs("</section>\n", out);
}

/* A value of threshold t in the unit its expression uses (ms, a ratio, per second). */
static void value_text(const struct threshold *t, double v, char *buf, size_t n)
{
    const struct metric_def *d = metric_def(t->metric);
    char a[32];

    if (d->type == METRIC_RATE && t->agg == THR_RATE)
        snprintf(buf, n, "%.4g (%s%%)", v, num(v * 100, a, sizeof(a)));
    else if (d->type == METRIC_COUNTER && t->agg == THR_RATE)
        snprintf(buf, n, "%s/s", num(v, a, sizeof(a)));
    else if (d->type == METRIC_TREND && d->unit == UNIT_TIME && t->agg != THR_COUNT)
        snprintf(buf, n, "%s ms", num(v, a, sizeof(a)));
    else
        snprintf(buf, n, "%s", num(v, a, sizeof(a)));
}

/* What a baseline threshold compared with: the baseline and the runs it came from. */
static void baseline_text(const struct verdict_item *it, char *buf, size_t n)
{
    const struct baseline *b = it->base;
    char v[96];
    if (!b) {
        snprintf(buf, n, "–");
        return;
    }
    switch (b->status) {
    case BASELINE_FOUND:
        value_text(it->t, b->value, v, sizeof(v));
        snprintf(buf, n, "%s from %zu run%s", v, b->nruns, b->nruns == 1 ? "" : "s");
        break;
    case BASELINE_MISSING:
        snprintf(buf, n, "not enough history (%zu run%s)", b->nruns, b->nruns == 1 ? "" : "s");
        break;
    case BASELINE_FAILED:
        snprintf(buf, n, "could not be read");
        break;
    }
}

static void thresholds(FILE *out, const struct verdict *v)
{
    static const char *const cls[] = {[OUTCOME_PASSED] = "passed", [OUTCOME_FAILED] = "failed",
                                      [OUTCOME_INCONCLUSIVE] = "inconclusive"};
    static const char *const mark[] = {[OUTCOME_PASSED] = "pass", [OUTCOME_FAILED] = "fail",
                                       [OUTCOME_INCONCLUSIVE] = "undecided"};
    static const char *const word[] = {[OUTCOME_PASSED] = "✓ passed",
                                       [OUTCOME_FAILED] = "✗ failed",
                                       [OUTCOME_INCONCLUSIVE] = "? inconclusive"};
    char obs[96], lim[96], base[160];

    fputs("<section id=\"thresholds\">\n<h2>Thresholds</h2>\n", out);
    if (v->n == 0) {
        fputs("<p class=\"muted\">No thresholds were judged.</p>\n</section>\n", out);
        return;
    }
    fputs("<table>\n<thead><tr><th>result</th><th>scenario</th><th>metric</th>"
          "<th>threshold</th><th class=\"n\">observed</th><th class=\"n\">limit</th>"
          "<th class=\"n\">baseline</th><th>why</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict_item *it = &v->items[i];
        enum outcome o = it->outcome <= OUTCOME_INCONCLUSIVE ? it->outcome : OUTCOME_FAILED;
        if (isnan(it->observed))
            snprintf(obs, sizeof(obs), "no samples");
        else
            value_text(it->t, it->observed, obs, sizeof(obs));
        if (isnan(it->limit))
            snprintf(lim, sizeof(lim), "–");
        else
            value_text(it->t, it->limit, lim, sizeof(lim));
        baseline_text(it, base, sizeof(base));
        fprintf(out, "<tr class=\"threshold %s\"><td class=\"%s\">%s</td><td>", cls[o],
                mark[o], word[o]);
        esc(out, it->scenario);
        fputs("</td><td class=\"code\">", out);
        esc(out, it->t->metric_key);
        fputs("</td><td class=\"code\">", out);
        esc(out, it->t->source);
        fputs("</td><td class=\"n observed\">", out);
        esc(out, obs);
        fputs("</td><td class=\"n limit\">", out);
        esc(out, lim);
        fprintf(out, "</td><td class=\"n baseline%s\">", it->base ? "" : " muted");
        esc(out, base);
        fputs("</td><td class=\"reason muted\">", out);
        esc(out, outcome_reason_name(it->reason));
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody>\n</table>\n</section>\n", out);
}

/* ---- charts ---- */

enum chart_kind { CH_RPS, CH_VUS, CH_P95, CH_ERRORS };

static const struct {
    const char *id, *title, *color;
} charts[] = {
    [CH_RPS] = {"rps", "Requests per second", "#0969da"},
    [CH_VUS] = {"vus", "Active VUs", "#8250df"},
    [CH_P95] = {"p95", "p95 latency (ms)", "#bf8700"},
    [CH_ERRORS] = {"errors", "Failed requests per second", "#cf222e"},
};

static double chart_value(enum chart_kind k, const struct timeline_point *p)
{
    double secs = p->span > 0 ? (double)p->span / USEC_PER_SEC : 0;
    switch (k) {
    case CH_RPS: return secs > 0 ? (double)p->requests / secs : NAN;
    case CH_VUS: return p->vus;
    case CH_P95: return isnan(p->p95) ? NAN : p->p95 / 1000.0;
    case CH_ERRORS: return secs > 0 ? (double)p->failed / secs : NAN;
    }
    return NAN;
}

/* The smallest 1, 2 or 5 times a power of ten at or above v (1 for nothing). */
static double nice_ceil(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        double step = (double[]){1, 2, 5}[i] * p;
        if (step >= v * (1 - 1e-12))
            return step;
    }
    return 10 * p;
}

#define CW 640
#define CH 210
#define CL 56
#define CR 14
#define CT 12
#define CB 30

static void chart(FILE *out, enum chart_kind k, const struct timeline *tl)
{
    const struct timeline_point *p = tl->p;
    size_t n = tl->n, valued = 0;
    double ymax = 0;
    int64_t t0 = p[0].t, t1 = p[n - 1].t + p[n - 1].span;
    char a[32], b[32];

    for (size_t i = 0; i < n; i++) {
        double y = chart_value(k, &p[i]);
        if (!isnan(y)) {
            valued++;
            if (y > ymax)
                ymax = y;
        }
    }
    ymax = nice_ceil(ymax);
    if (t1 <= t0)
        t1 = t0 + 1;
    const double pw = CW - CL - CR, ph = CH - CT - CB;

    fprintf(out, "<figure class=\"chart\" id=\"chart-%s\"><figcaption>%s</figcaption>\n"
                 "<svg viewBox=\"0 0 %d %d\" width=\"%d\" "
                 "height=\"%d\" role=\"img\" aria-label=\"%s over time\" data-points=\"%zu\">\n",
            charts[k].id, charts[k].title, CW, CH, CW, CH, charts[k].title, valued);
    /* horizontal grid with values, bottom axis with times */
    for (int g = 0; g <= 4; g++) {
        double y = CT + ph - ph * g / 4.0;
        fprintf(out, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                     "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                CL, CW - CR, y, y, CL - 6, y + 4, axis_num(ymax * g / 4.0, a, sizeof(a)));
    }
    for (int g = 0; g <= 4; g++) {
        int64_t t = t0 + (t1 - t0) * g / 4;
        double x = CL + pw * g / 4.0;
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">%s</text>\n", x, CH - 10,
                g == 0 ? "start" : g == 4 ? "end" : "middle",
                units_format_duration(t / USEC_PER_SEC * USEC_PER_SEC, b, sizeof(b)));
    }

    /* one polyline per stretch of points with a value (p95 has gaps) */
    size_t i = 0;
    while (i < n) {
        while (i < n && isnan(chart_value(k, &p[i])))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !isnan(chart_value(k, &p[i])))
            i++;
        if (i - start == 1) {
            const struct timeline_point *q = &p[start];
            double x = CL + pw * (double)(q->t + q->span / 2 - t0) / (double)(t1 - t0);
            double y = CT + ph - ph * chart_value(k, q) / ymax;
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y,
                    charts[k].color);
            continue;
        }
        fprintf(out, "<polyline class=\"line\" stroke=\"%s\" points=\"", charts[k].color);
        for (size_t j = start; j < i; j++) {
            const struct timeline_point *q = &p[j];
            double x = CL + pw * (double)(q->t + q->span / 2 - t0) / (double)(t1 - t0);
            double y = CT + ph - ph * chart_value(k, q) / ymax;
            fprintf(out, "%s%.1f,%.1f", j > start ? " " : "", x, y);
        }
        fputs("\"/>\n", out);
    }
    fputs("</svg></figure>\n", out);
}

static void charts_section(FILE *out, const struct timeline *tl)
{
    char iv[32];
    fputs("<section id=\"charts\">\n<h2>Over time</h2>\n", out);
    if (!tl || tl->n == 0) {
        fputs("<p class=\"muted\">No samples over time were taken.</p>\n</section>\n", out);
        return;
    }
    fprintf(out, "<p class=\"muted\">One point per %s", units_format_duration(tl->interval, iv,
                                                                           sizeof(iv)));
    fputs("; a long run is drawn at a coarser step, each point keeping its span's totals and "
          "its highest VUs and p95.</p>\n<div class=\"charts\">\n",
          out);
    for (int k = 0; k < 4; k++)
        chart(out, (enum chart_kind)k, tl);
    fputs("</div>\n</section>\n", out);
}

/* ---- checks by journey ---- */

/* The journey of a k6 group tag ("::checkout" -> "checkout"); NULL for none or the root. */
static const char *journey_name(const char *group)
{
    if (group && !strncmp(group, "::", 2))
        group += 2;
    return group && *group ? group : NULL;
}

struct check_row {
    const char *group, *check;
    uint64_t pass, fail;
};

static void checks_section(FILE *out, const struct metrics *m)
{
    static const char none[] = "(no name)";
    struct check_row rows[MAX_CHECKS];
    const char *groups[MAX_GROUPS];
    size_t nrows = 0, ngroups = 0;
    char a[32];

    for (const struct series *s = metrics_first(m); s; s = s->next) {
        /* a check made ready but never run (a journey not picked) is not shown */
        if (s->id != M_CHECKS || s->v.rate.total == 0)
            continue;
        const char *check = tagset_get(&s->tags, "check");
        const char *group = journey_name(tagset_get(&s->tags, "group"));
        if (!group)
            group = tagset_get(&s->tags, "name");
        if (!check)
            continue;
        if (!group)
            group = none;
        size_t i = 0;
        while (i < nrows && (strcmp(rows[i].group, group) || strcmp(rows[i].check, check)))
            i++;
        if (i == nrows) {
            if (nrows == MAX_CHECKS)
                continue;
            rows[nrows++] = (struct check_row){group, check, 0, 0};
            size_t g = 0;
            while (g < ngroups && strcmp(groups[g], group))
                g++;
            if (g == ngroups && ngroups < MAX_GROUPS)
                groups[ngroups++] = group;
        }
        rows[i].pass += s->v.rate.pass;
        rows[i].fail += s->v.rate.total - s->v.rate.pass;
    }
    fputs("<section id=\"checks\">\n<h2>Checks by journey</h2>\n", out);
    if (nrows == 0)
        fputs("<p class=\"muted\">No checks ran.</p>\n", out);
    for (size_t g = 0; g < ngroups; g++) {
        uint64_t gp = 0, gf = 0;
        for (size_t i = 0; i < nrows; i++)
            if (rows[i].group == groups[g] || !strcmp(rows[i].group, groups[g])) {
                gp += rows[i].pass;
                gf += rows[i].fail;
            }
        fprintf(out, "<div class=\"journey\"><h3><span class=\"%s\">%s</span> ",
                gf ? "fail" : "pass", gf ? "✗" : "✓");
        esc(out, groups[g]);
        fprintf(out, " <span class=\"muted\">%llu of %llu passed</span></h3>\n",
                (unsigned long long)gp, (unsigned long long)(gp + gf));
        fputs("<table>\n<thead><tr><th>check</th><th class=\"n\">passes</th>"
              "<th class=\"n\">fails</th><th class=\"n\">pass rate</th></tr></thead>\n<tbody>\n",
              out);
        for (size_t i = 0; i < nrows; i++) {
            const struct check_row *r = &rows[i];
            if (strcmp(r->group, groups[g]))
                continue;
            fprintf(out, "<tr class=\"check %s\"><td><span class=\"%s\">%s</span> ",
                    r->fail ? "failed" : "passed", r->fail ? "fail" : "pass",
                    r->fail ? "✗" : "✓");
            esc(out, r->check);
            fprintf(out, "</td><td class=\"n\">%llu</td><td class=\"n\">%llu</td>"
                         "<td class=\"n\">%s%%</td></tr>\n",
                    (unsigned long long)r->pass, (unsigned long long)r->fail,
                    num(100.0 * (double)r->pass / (double)(r->pass + r->fail), a, sizeof(a)));
        }
        fputs("</tbody>\n</table></div>\n", out);
    }
    fputs("</section>\n", out);
}

/* ---- latency by scenario and service ---- */

struct lat_row {
    const char *scenario, *group, *name; /* group: the k6 tag as it is, or NULL */
};

static void latency_section(FILE *out, const struct report_ctx *ctx)
{
    struct lat_row rows[MAX_ROWS];
    size_t n = 0;
    double secs = ctx->elapsed > 0 ? (double)ctx->elapsed / USEC_PER_SEC : 0;
    char c[8][32];

    for (const struct series *s = metrics_first(ctx->m); s; s = s->next) {
        if (s->id != M_HTTP_REQS)
            continue;
        const char *sc = tagset_get(&s->tags, "scenario"), *name = tagset_get(&s->tags, "name");
        const char *group = tagset_get(&s->tags, "group");
        if (!sc || !name)
            continue;
        if (group && !*group)
            group = NULL;
        size_t i = 0;
        while (i < n && (strcmp(rows[i].scenario, sc) || strcmp(rows[i].name, name) ||
                         (rows[i].group == NULL) != (group == NULL) ||
                         (group && strcmp(rows[i].group, group))))
            i++;
        if (i == n && n < MAX_ROWS)
            rows[n++] = (struct lat_row){sc, group, name};
    }
    fputs("<section id=\"latency\">\n<h2>Latency by service and journey step</h2>\n", out);
    if (n == 0) {
        fputs("<p class=\"muted\">No requests were made.</p>\n</section>\n", out);
        return;
    }
    fputs("<table>\n<thead><tr><th>scenario</th><th>service or step</th><th class=\"n\">requests</th>"
          "<th class=\"n\">req/s</th><th class=\"n\">failed</th><th class=\"n\">avg</th>"
          "<th class=\"n\">med</th><th class=\"n\">p90</th><th class=\"n\">p95</th>"
          "<th class=\"n\">p99</th><th class=\"n\">max</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < n; i++) {
        struct tagset f = {0};
        struct metric_view req, failed, dur;
        tagset_set(&f, "scenario", rows[i].scenario);
        tagset_set(&f, "name", rows[i].name);
        if (rows[i].group)
            tagset_set(&f, "group", rows[i].group);
        view_or_empty(ctx->m, M_HTTP_REQS, &f, &req);
        view_or_empty(ctx->m, M_HTTP_REQ_FAILED, &f, &failed);
        view_or_empty(ctx->m, M_HTTP_REQ_DURATION, &f, &dur);
        const struct hist *h = dur.trend && hist_count(dur.trend) ? dur.trend : NULL;
        fputs("<tr class=\"service\"><td>", out);
        esc(out, rows[i].scenario);
        fputs("</td><td>", out);
        if (rows[i].group) { /* a journey's step: "checkout › create order" */
            esc(out, journey_name(rows[i].group));
            fputs(" › ", out);
        }
        esc(out, rows[i].name);
        fprintf(out,
                "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n %s\">%s%%</td>",
                num(req.counter, c[0], 32), num(secs > 0 ? req.counter / secs : 0, c[1], 32),
                failed.pass ? "fail" : "", num(failed.total ? 100.0 * (double)failed.pass /
                                                                  (double)failed.total
                                                            : 0,
                                               c[2], 32));
        if (h)
            fprintf(out,
                    "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
                    "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
                    ms(hist_mean(h), c[3], 32), ms(hist_percentile(h, 50), c[4], 32),
                    ms(hist_percentile(h, 90), c[5], 32), ms(hist_percentile(h, 95), c[6], 32),
                    ms(hist_percentile(h, 99), c[7], 32), ms((double)hist_max(h), c[0], 32));
        else
            fputs("<td class=\"n muted\" colspan=\"6\">no response</td></tr>\n", out);
        metric_view_clear(&req);
        metric_view_clear(&failed);
        metric_view_clear(&dur);
    }
    fputs("</tbody>\n</table>\n</section>\n", out);
}

static void errors_section(FILE *out, const struct report_ctx *ctx)
{
    struct report_error errs[REPORT_MAX_ERRORS];
    size_t n = report_errors(ctx->m, errs, REPORT_MAX_ERRORS);

    fputs("<section id=\"errors\">\n<h2>Failed requests by kind</h2>\n", out);
    if (n == 0)
        fputs("<p class=\"muted\">None.</p>\n", out);
    else {
        fputs("<table>\n<thead><tr><th>kind</th><th class=\"n\">requests</th></tr></thead>\n"
              "<tbody>\n",
              out);
        for (size_t i = 0; i < n; i++) {
            fputs("<tr><td>", out);
            esc(out, errs[i].kind);
            fprintf(out, "</td><td class=\"n\">%llu</td></tr>\n",
                    (unsigned long long)errs[i].count);
        }
        fputs("</tbody>\n</table>\n", out);
    }
    if (ctx->rw_status) {
        fputs("<p>Remote write: ", out);
        esc(out, ctx->rw_status);
        fputs("</p>\n", out);
    }
    fputs("</section>\n", out);
}

int report_html_write(FILE *out, const struct report_ctx *ctx, const struct verdict *v,
                      const struct report_html_info *info)
{
    struct banner oc = banner_of(ctx->exit_code);

    head(out, ctx, &oc, info);
    verdict_header(out, ctx, v, &oc, info);
    key_figures(out, ctx, v);
    thresholds(out, v);
    charts_section(out, info->tl);
    checks_section(out, ctx->m);
    latency_section(out, ctx);
    errors_section(out, ctx);
    fputs("<footer>syncgate " SYNCGATE_VERSION
          " · one self-contained file: nothing in it is fetched from anywhere.</footer>\n"
          "</main>\n</body>\n</html>\n",
          out);
    return ferror(out) ? -EIO : 0;
}

int report_html(const char *path, const struct report_ctx *ctx, const struct verdict *v,
                const struct report_html_info *info)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return -errno;
    int rc = report_html_write(f, ctx, v, info);
    if (fclose(f) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = report_write_file(path, text);
    free(text);
    return rc;
}
