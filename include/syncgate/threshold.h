/*
 * threshold: k6 threshold expressions, parsed and evaluated.
 *
 * Syntax as k6: "<agg> <op> <number>" with agg one of avg, min, max, med,
 * p(N) (trends), count and rate (counters), rate (rates), value (gauges);
 * op one of < <= > >= == === !=. The metric key may select a sub-metric:
 * "http_req_duration{name:product,status:200}". Time trends compare in
 * milliseconds like k6 ("p(95)<500" is 500 ms).
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

struct threshold {
    char *metric_key; /* as written: "http_req_duration{name:product}" */
    char *source;     /* as written: "p(95)<500" */
    enum metric_id metric;
    struct tagset filter; /* strings owned by the threshold */
    enum thr_agg agg;
    double pct; /* for THR_PCT, 0..100 */
    enum thr_op op;
    double bound;
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
 * Evaluate against an aggregate view of t->metric with t->filter applied.
 * elapsed_usec is the run time, used by a counter's rate (per second).
 * Returns true when the threshold holds. *observed gets the value compared
 * (ms for time trends), NAN when there were no samples (then false).
 */
bool threshold_eval(const struct threshold *t, const struct metric_view *v, int64_t elapsed_usec,
                    double *observed);

#endif
