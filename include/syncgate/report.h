/*
 * report: the verdict over thresholds and the end-of-test outputs.
 *
 * report_verdict() evaluates every threshold of the phases that ran against
 * the final merged registry (smoke thresholds on scenario "smoke" series, load
 * thresholds on scenario "load" series). A phase with no threshold at all is
 * judged by an implicit "checks: rate==1.0", so failed checks never pass
 * silently; every output marks it implicit. The outputs then render the registry
 * and that verdict: a k6-style text summary, k6's --summary-export JSON shape,
 * and JUnit XML (one testcase per check and per threshold).
 *
 * Every threshold ends with one of three outcomes and a reason:
 *   passed        its statistic held against its bound
 *   failed        it did not, or there were no samples at all (a service
 *                 that never answered is a failure, not a lack of evidence)
 *   inconclusive  it could not be judged: the load generator was saturated
 *                 (latency thresholds of the load phase), the baseline could
 *                 not be read, fewer samples than baseline.min_count (baseline
 *                 thresholds), or no baseline yet with baseline.missing:
 *                 inconclusive (the default; `pass` and `fail` make it so)
 * Pure apart from writing to the FILE it is given.
 */
#ifndef SYNCGATE_REPORT_H
#define SYNCGATE_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "syncgate/baseline.h"
#include "syncgate/config.h"
#include "syncgate/metrics.h"
#include "syncgate/saturation.h"

enum outcome { OUTCOME_PASSED, OUTCOME_FAILED, OUTCOME_INCONCLUSIVE };

/* Why an item ended as it did, beyond its comparison. */
enum outcome_reason {
    REASON_NONE,           /* judged: the statistic against its bound */
    REASON_NO_SAMPLES,     /* no samples: failed */
    REASON_FEW_SAMPLES,    /* fewer than baseline.min_count: inconclusive */
    REASON_NO_BASELINE,    /* fewer than baseline.min_runs runs: as baseline.missing says */
    REASON_BASELINE_ERROR, /* the baseline could not be read: inconclusive */
    REASON_SATURATED,      /* latency measured by a saturated generator: inconclusive */
};

/* "passed", "failed", "inconclusive". */
const char *outcome_name(enum outcome o);
/* "", "no samples", "too few samples", "no baseline", "baseline query failed",
 * "generator saturated". */
const char *outcome_reason_name(enum outcome_reason r);

struct verdict_item {
    const struct threshold *t;
    const char *scenario; /* "smoke" or "load" */
    bool passed;          /* outcome == OUTCOME_PASSED */
    bool implicit;        /* the phase had no threshold: checks rate==1.0 stands in */
    enum outcome outcome;
    enum outcome_reason reason;
    double observed;         /* NAN without samples */
    uint64_t samples;        /* behind observed (threshold_samples) */
    double limit;            /* the bound compared with; NAN when there was none */
    const struct baseline *base; /* baseline thresholds: what was read; else NULL */
};

struct verdict {
    size_t n;
    struct verdict_item items[2 * CONFIG_MAX_THRESHOLDS];
    size_t checks_failed, checks_total; /* over every check sample */
    bool failed;                        /* some threshold failed */
    bool inconclusive;                  /* some threshold was inconclusive */
};

/* Which phases ran (their thresholds are judged) and for how long. */
struct report_ctx {
    const struct config *cfg;
    const struct metrics *m;
    bool smoke_ran, load_ran;
    int64_t elapsed; /* usec, whole run */
    int exit_code;
    const char *rw_status; /* one line about metric delivery, or NULL */
    const struct baseline_set *baselines; /* NULL: none were read */
    const struct sat_report *saturation;  /* the load phase's watch; NULL or !measured: none */
    /* A distributed run (fleet.h): its instance count (0 or 1: alone), and the instances
     * lost, in a sentence naming each and why (NULL: none) */
    unsigned instances;
    const char *lost;
};

/* Evaluate thresholds; returns 0 or -ENOMEM. */
int report_verdict(const struct report_ctx *ctx, struct verdict *v);

/* The k6-style text summary. */
void report_text(FILE *out, const struct report_ctx *ctx, const struct verdict *v, bool color);

/* k6's --summary-export JSON. Returns 0 or negative errno. */
int report_json(const char *path, const struct report_ctx *ctx, const struct verdict *v);

/* JUnit XML. Returns 0 or negative errno. */
int report_junit(const char *path, const struct report_ctx *ctx, const struct verdict *v);

/*
 * Replace the file at path with text in one step (a temporary file beside it,
 * renamed into place), so a signal midway leaves the old file or the new one,
 * never half of one; a path that is not a plain file (/dev/stdout, a symlink,
 * a FIFO) is written in place. Returns 0 or negative errno.
 */
int report_write_file(const char *path, const char *text);

/* Failed requests of one kind, see report_errors(). */
struct report_error {
    char kind[24]; /* "reset", "timeout", ... or "status_503", "status_4xx" */
    uint64_t count;
};

#define REPORT_MAX_ERRORS 32

/*
 * Count the failed requests (every phase: the failures http_req_failed
 * counts) by kind: transport failures under http_error_name() of their
 * error_code tag ("dns", "refused", "reset", "connect", "timeout", "tls",
 * "protocol"), unexpected statuses as "status_" and their status label
 * ("status_503", "status_4xx", "status_invalid"), failures whose series lost
 * its tags at the series cap as "other". Kinds come in http.h order, then
 * statuses in label order; statuses that do not fit in max entries are added
 * up as "status_other", so the counts always add up to the failed requests
 * (with max >= 9; a smaller max folds the rest into its last entry, "other").
 * Returns how many entries were filled. The JSON summary ("errors"), the text
 * summary and the test_finish log event show this.
 */
size_t report_errors(const struct metrics *m, struct report_error *out, size_t max);

/* One load scenario as the run went (report_scenarios). */
struct report_scenario {
    const struct scenario *sc;
    double iterations, dropped;
    double due;          /* open model: iterations its rate asked for over the run */
    double target_rate;  /* open model: mean target, iterations per second */
    double achieved;     /* open model: started / due (the achieved_rate gauge) */
    double lateness_p99; /* open model: ms; NAN without samples */
    double scheduled_p99; /* open model: http_req_duration_scheduled p(99), ms; NAN without */
};

/*
 * What each load scenario did, from the final registry: iterations, and for
 * open-model scenarios what was due, dropped, achieved and how late. Fills at
 * most max entries (the scenarios in configuration order); returns how many.
 */
size_t report_scenarios(const struct report_ctx *ctx, struct report_scenario *out, size_t max);

/* The text summary's "scenarios" block, and the same in the JSON export's "scenarios". */
void report_scenarios_text(FILE *out, const struct report_ctx *ctx);
struct cJSON *report_scenarios_json(const struct report_ctx *ctx);

#endif
