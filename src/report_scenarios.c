/* report_scenarios: each load scenario in the summary and the export. See report.h. */
#include "syncgate/report.h"

#include <math.h>

#include <cjson/cJSON.h>

#include "syncgate/executor.h"
#include "syncgate/hist.h"
#include "syncgate/units.h"

static double scenario_stat(const struct metrics *m, enum metric_id id, const char *name,
                            double pct)
{
    struct tagset t = {0};
    struct metric_view v;
    double out = NAN;
    tagset_set(&t, "scenario", name);
    if (metrics_view(m, id, &t, &v) < 0)
        return NAN;
    if (metric_view_has_samples(&v)) {
        const struct metric_def *d = metric_def(id);
        if (d->type == METRIC_COUNTER)
            out = v.counter;
        else if (d->type == METRIC_GAUGE)
            out = v.gauge_value;
        else if (d->type == METRIC_TREND)
            out = hist_percentile(v.trend, pct) / 1000.0;
    } else if (metric_def(id)->type == METRIC_COUNTER) {
        out = 0;
    }
    metric_view_clear(&v);
    return out;
}

size_t report_scenarios(const struct report_ctx *ctx, struct report_scenario *out, size_t max)
{
    const struct config *c = ctx->cfg;
    size_t n = 0;
    if (!ctx->load_ran)
        return 0;
    for (size_t i = 0; i < c->load.nscenarios && n < max; i++) {
        const struct scenario *sc = &c->load.scenarios[i];
        struct report_scenario *r = &out[n++];
        r->sc = sc;
        r->iterations = scenario_stat(ctx->m, M_ITERATIONS, sc->name, 0);
        r->dropped = scenario_stat(ctx->m, M_DROPPED_ITERATIONS, sc->name, 0);
        r->lateness_p99 = scenario_stat(ctx->m, M_ITERATION_LATENESS, sc->name, 99);
        r->scheduled_p99 = scenario_stat(ctx->m, M_HTTP_REQ_DURATION_SCHEDULED, sc->name, 99);
        r->achieved = scenario_stat(ctx->m, M_ACHIEVED_RATE, sc->name, 0);
        r->due = r->target_rate = NAN;
        if (ex_open(sc)) {
            r->due = (double)ex_due_by(sc, ex_length(sc));
            r->target_rate = r->due * USEC_PER_SEC / (double)ex_length(sc);
        }
    }
    return n;
}

void report_scenarios_text(FILE *out, const struct report_ctx *ctx)
{
    struct report_scenario rs[CONFIG_MAX_SCENARIOS];
    size_t n = report_scenarios(ctx, rs, CONFIG_MAX_SCENARIOS);
    /* the one scenario of the stages shorthand needs no line of its own */
    if (n == 0 || (n == 1 && !ctx->cfg->load.scenarios_given))
        return;
    fputs("\n   scenarios:\n", out);
    for (size_t i = 0; i < n; i++) {
        const struct report_scenario *r = &rs[i];
        fprintf(out, "     %s: %s, %.0f iterations", r->sc->name, executor_names[r->sc->executor],
                isnan(r->iterations) ? 0 : r->iterations);
        if (ex_open(r->sc)) {
            fprintf(out, " of %.0f due (%.2f/s target, %.2f%% achieved), %.0f dropped", r->due,
                    r->target_rate, isnan(r->achieved) ? 0 : 100 * r->achieved, r->dropped);
            if (!isnan(r->lateness_p99))
                fprintf(out, ", lateness p(99)=%.3fms", r->lateness_p99);
            if (!isnan(r->scheduled_p99))
                fprintf(out, ", http_req_duration_scheduled p(99)=%.3fms", r->scheduled_p99);
        }
        fputc('\n', out);
    }
}

cJSON *report_scenarios_json(const struct report_ctx *ctx)
{
    struct report_scenario rs[CONFIG_MAX_SCENARIOS];
    size_t n = report_scenarios(ctx, rs, CONFIG_MAX_SCENARIOS);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++) {
        const struct report_scenario *r = &rs[i];
        cJSON *s = cJSON_AddObjectToObject(o, r->sc->name);
        cJSON_AddStringToObject(s, "executor", executor_names[r->sc->executor]);
        cJSON_AddNumberToObject(s, "iterations", isnan(r->iterations) ? 0 : r->iterations);
        if (!ex_open(r->sc))
            continue;
        cJSON_AddNumberToObject(s, "iterations_due", r->due);
        cJSON_AddNumberToObject(s, "dropped_iterations", r->dropped);
        cJSON_AddNumberToObject(s, "target_rate", r->target_rate);
        cJSON_AddNumberToObject(s, "achieved_rate", isnan(r->achieved) ? 0 : r->achieved);
        if (!isnan(r->lateness_p99))
            cJSON_AddNumberToObject(s, "iteration_lateness_p99", r->lateness_p99);
        if (!isnan(r->scheduled_p99))
            cJSON_AddNumberToObject(s, "http_req_duration_scheduled_p99", r->scheduled_p99);
    }
    return o;
}
