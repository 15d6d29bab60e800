/*
 * sampler: feeds a run's timeline (see timeline.h) once per interval.
 *
 * A thread of its own merges the run's sources (run_snapshot) every interval
 * and turns two consecutive cumulative snapshots into one timeline point: the
 * requests and failures completed in between, the VU gauge, and the p95 of
 * the requests of that interval alone (hist_diff of the two cumulative
 * http_req_duration histograms). It holds one histogram between samples, so
 * its memory is flat however long the run. It never touches the load hot
 * path: producers only wait for it during one merge, as for remote write.
 *
 * sampler_point() is the pure step, unit-tested on hand-made registries.
 */
#ifndef SYNCGATE_SAMPLER_H
#define SYNCGATE_SAMPLER_H

#include <stdint.h>

#include "syncgate/hist.h"
#include "syncgate/metrics.h"
#include "syncgate/run.h"
#include "syncgate/timeline.h"

#define SAMPLER_INTERVAL (1000000) /* usec */

/* What the previous sample saw (cumulative since the run started). */
struct sampler_state {
    int64_t t;         /* usec since the run started */
    uint64_t requests; /* http_reqs */
    uint64_t failed;   /* http_req_failed true */
    struct hist *duration; /* http_req_duration, every series merged; NULL until the first */
};

/*
 * The point for [st->t, now) from a cumulative snapshot taken at now (usec
 * since the run started); st then describes now. Returns 0 or -ENOMEM (st is
 * unchanged and *out undefined). Counters that went backwards (a source was
 * removed) count as zero for the interval.
 */
int sampler_point(struct sampler_state *st, const struct metrics *snap, int64_t now,
                  struct timeline_point *out);
/* Free st's histogram. */
void sampler_state_clear(struct sampler_state *st);

struct sampler;

/*
 * Start sampling r into tl every interval usec (tl is written by the sampler
 * thread only, until sampler_stop returns). Returns NULL and sets *err
 * (-ENOMEM, or pthread_create's error) on failure.
 */
struct sampler *sampler_start(struct run *r, struct timeline *tl, int64_t interval, int *err);

/* Take a last sample up to now, stop the thread and free; NULL is a no-op. */
void sampler_stop(struct sampler *s);

#endif
