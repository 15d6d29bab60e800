/*
 * threshold: k6 threshold expressions, parsed and evaluated.
 *
 * Syntax as k6: "<agg> <op> <number>" with agg one of avg, min, max, med,
 * p(N) (trends), count and rate (counters), rate (rates), value (gauges);
 * op one of < <= > >= == === !=. The metric key may select a sub-metric:
 * "http_req_duration{name:product,status:200}". Time trends compare in
 * milliseconds like k6 ("p(95)<500" is 500 ms).
 *
 * A baseline threshold compares with this run's history instead of a number:
 * "p(95) <= baseline * 1.2", "rate <= baseline + 0.005", "avg < baseline - 3"
 * (or "baseline" alone). The baseline is the same statistic of earlier runs
 * (see baseline.h); threshold_limit() derives the bound from it.
 *
 * A threshold over a metric with no samples fails: it never passes vacuously.
 * Pure module: no I/O, no global state.
 */
#ifndef SYNCGATE_THRESHOLD_H
#define SYNCGATE_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/metrics.h"

enum thr_agg { THR_AVG, THR_MIN, THR_MAX, THR_MED, THR_PCT, THR_COUNT, THR_RATE, THR_VALUE };
enum thr_op { THR_LT, THR_LE, THR_GT, THR_GE, THR_EQ, THR_NE };
/* How a baseline threshold's bound follows from the baseline value. */
enum thr_base_op { THR_BASE_NONE, THR_BASE_MUL, THR_BASE_ADD, THR_BASE_SUB };

struct threshold {
    char *metric_key; /* as written: "http_req_duration{name:product}" */
    char *source;     /* as written: "p(95)<500" */
    enum metric_id metric;
    struct tagset filter; /* strings owned by the threshold */
    enum thr_agg agg;
    double pct; /* for THR_PCT, 0..100 */
    enum thr_op op;
    double bound;         /* static thresholds */
    bool baseline;        /* "... baseline [* + -] operand": bound from history */
    enum thr_base_op base_op;
    double operand;
    bool abort_on_fail;
    int64_t delay_abort_eval; /* usec */
};

/*
 * Parse metric_key and expr into t. Returns 0, or -EINVAL with a one-line
 * reason in err (e.g. "unknown metric \"http_req_duraton\"",
 * "p(N) is not valid for rate metric checks"). On failure t holds nothing to
 * free. abort_on_fail/delay_abort_eval are left false/0 for the caller.
 */
int threshold_parse(struct threshold *t, const char *metric_key, const char *expr, char *err,
                    size_t errlen);

/* Free what threshold_parse allocated; safe on a zeroed struct. */
void threshold_clear(struct threshold *t);

/* Deep copy. Returns 0 or -ENOMEM. */
int threshold_copy(struct threshold *dst, const struct threshold *src);

/*
 * The view t judges in a phase: smoke's series (scenario "smoke") for smoke;
 * for load, every load scenario's series (any scenario but "smoke") unless t
 * names a scenario itself ({scenario:checkout}). Returns 0 or -ENOMEM; release
 * with metric_view_clear().
 */
int threshold_view(const struct threshold *t, const struct metrics *m, bool smoke,
                   struct metric_view *v);

/*
 * The statistic t compares, computed over an aggregate view of t->metric
 * with t->filter applied: ms for time trends, a ratio for rates, per second
 * for a counter's rate (elapsed_usec is the run time). NAN when the view has
 * no samples.
 */
double threshold_observe(const struct threshold *t, const struct metric_view *v,
                         int64_t elapsed_usec);

/* The number of samples behind that statistic: a trend's count, a rate's total, 1 or 0 else. */
uint64_t threshold_samples(const struct threshold *t, const struct metric_view *v);

/*
 * The bound observed values are compared with: t->bound for a static
 * threshold; for a baseline threshold, baseline combined with t->operand
 * (NAN when baseline is NAN).
 */
double threshold_limit(const struct threshold *t, double baseline);

/* True when observed <op> limit holds; false when either is NAN. */
bool threshold_holds(const struct threshold *t, double observed, double limit);

/*
 * Evaluate a static threshold against a view: threshold_observe() then
 * threshold_holds() with t->bound. *observed gets the value (NAN without
 * samples, then false). Always false for a baseline threshold, whose bound
 * is not known here.
 */
bool threshold_eval(const struct threshold *t, const struct metric_view *v, int64_t elapsed_usec,
                    double *observed);

/*
 * The statistic's canonical name in buf: "p(95)", "p(99.9)", "avg", "med",
 * "min", "max", "count", "rate", "value". Returns its length or -ENOSPC.
 */
int threshold_stat(const struct threshold *t, char *buf, size_t n);

/*
 * The metric key in canonical form, tags sorted and unquoted, without blanks
 * around them: "http_req_duration{name:product,status:200}". Returns its
 * length or -ENOSPC. Two spellings of one sub-metric give the same key.
 */
int threshold_key(const struct threshold *t, char *buf, size_t n);

#endif
