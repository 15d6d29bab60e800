/*
 * history: what a run leaves in Prometheus for later runs to compare with,
 * and the PromQL that reads it back.
 *
 * The k6 series hold per-series statistics that cannot be added up into the
 * run's own (a p95 of several series is not their p95), so at its end a run
 * pushes, with the same common labels as every series (testid, instance,
 * environment, test_type, the profile's metrics.labels):
 *
 *   syncgate_run_info{scenario, result, history, revision}
 *       one per phase that ran; its value is the Unix time (s) the run
 *       finished. result: passed, failed, inconclusive or interrupted.
 *       history: "true" when later runs may use this run as a baseline:
 *       nothing failed and nothing was inconclusive except for want of a
 *       baseline, and it was neither interrupted nor saturated. revision: the
 *       deployed revision, when known.
 *   syncgate_threshold_observed{scenario, metric, stat}
 *       one per statistic a threshold judged (metric: the canonical key,
 *       "http_req_duration{name:product}"; stat: "p(95)"), valued in the
 *       threshold's units (ms for time trends, a ratio for rates).
 *
 * Later runs find the newest history runs of the same environment,
 * test_type, scenario and metrics.labels that recorded the statistic, and
 * read their values. Cardinality per run: one series per phase plus one per
 * distinct threshold statistic (at most 2 * CONFIG_MAX_THRESHOLDS).
 *
 * Pure module: strings in, strings out; no I/O, no clock.
 */
#ifndef SYNCGATE_HISTORY_H
#define SYNCGATE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/report.h"
#include "syncgate/rw.h"

#define HISTORY_RUN_SERIES "syncgate_run_info"
#define HISTORY_OBSERVED_SERIES "syncgate_threshold_observed"
#define HISTORY_MAX_POINTS 128 /* series read from one answer */
#define HISTORY_MAX_PROMQL 8192

/* Which earlier runs count as the same gate: */
struct history_match {
    const char *environment;
    const char *test_type; /* the configured test_type, else the scenario */
    const char *scenario;
    const struct kv *labels; /* metrics.labels */
    size_t nlabels;
};

/*
 * PromQL for the newest `runs` history runs matching m that recorded stat of
 * the metric key (canonical, threshold_key) within max_age (usec): an instant
 * vector of syncgate_run_info series (value: when each finished). With
 * pin_testid (may be NULL), that run whatever its history label. Writes at
 * most n bytes to buf; returns the length or -ENOSPC.
 */
int history_promql_runs(const struct history_match *m, const char *key, const char *stat, int runs,
                        int64_t max_age, const char *pin_testid, char *buf, size_t n);

/*
 * PromQL for the values of that statistic in the same runs: an instant
 * vector of syncgate_threshold_observed series with their testid labels.
 * Same arguments and return as history_promql_runs.
 */
int history_promql_values(const struct history_match *m, const char *key, const char *stat,
                          int runs, int64_t max_age, const char *pin_testid, char *buf, size_t n);

/* One series of an instant-vector answer. */
struct history_point {
    char testid[257];
    double value;
};

/*
 * Parse a Prometheus /api/v1/query answer (JSON, len bytes) that must be a
 * vector. Fills out[0..max) with each series' testid label and value (a
 * series without testid is skipped; past max they are dropped) and returns
 * how many, or -EINVAL with a one-line reason in err: not JSON, an error
 * answer ("bad_data: ..."; the server's text cut and escaped), or another
 * result type.
 */
int history_parse_vector(const char *body, size_t len, struct history_point *out, size_t max,
                         char *err, size_t errlen);

/*
 * The aggregate of v[0..n) (v is reordered): median (mean of the middle two
 * for an even n), mean, min or max. NAN when n is 0.
 */
double history_aggregate(enum baseline_aggregate agg, double *v, size_t n);

/*
 * The query API base that goes with a remote-write URL: the URL without its
 * "/api/v1/write" ending (http://prom:9090/api/v1/write -> http://prom:9090,
 * http://mimir/prometheus/api/v1/write -> http://mimir/prometheus), else its
 * scheme, host and port. Query and fragment are dropped. Returns the length
 * or -EINVAL (not a URL) / -ENOSPC.
 */
int history_source(const char *rw_url, char *buf, size_t n);

/* What the run's result series say about it as a whole. */
struct history_outcome {
    const char *result;   /* "passed", "failed", "inconclusive", "interrupted" */
    bool history;         /* may serve as a baseline */
    const char *revision; /* NULL: no label */
    double finished;      /* Unix time (s) */
    bool smoke_ran, load_ran;
};

/* The run's result series, built from a verdict; strings owned here. */
struct history_series {
    size_t n;
    struct rw_info items[2 + 2 * CONFIG_MAX_THRESHOLDS];
    char *strs[2 * CONFIG_MAX_THRESHOLDS]; /* canonical keys and stats */
    size_t nstrs;
};

/*
 * Fill s with one syncgate_run_info per phase that ran and one
 * syncgate_threshold_observed per distinct (scenario, key, stat) of v with
 * an observed value. v and o must outlive s's use. Returns 0 or -ENOMEM
 * (s is then cleared). Free with history_series_clear.
 */
int history_series_build(struct history_series *s, const struct verdict *v,
                         const struct history_outcome *o);

/* Free s's strings and zero it; safe on a zeroed one. */
void history_series_clear(struct history_series *s);

/*
 * Whether a run may serve as history: every item passed, or missed only a
 * baseline (whatever baseline.missing made of it).
 */
bool history_eligible(const struct verdict *v);

#endif
