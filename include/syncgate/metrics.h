/*
 * metrics: k6's built-in metrics, their tagged series, and aggregate views.
 *
 * A registry holds one series per (metric, tag set). Counters sum, rates count
 * passes/total, gauges keep their last value (with min/max), trends feed a
 * histogram (values in microseconds for time trends). Series are created on
 * first use and live until the registry is freed; their number is capped
 * (METRICS_MAX_SERIES) so memory stays bounded whatever the targets do. Past
 * the cap a sample is not lost: it goes to its metric's grouped series, which
 * keeps only the scenario tag, so totals, rates and every threshold judged on
 * a whole phase still count it. Tag strings are copied (interned) on creation.
 *
 * A registry is single-threaded: the load engine gives every thread its own
 * and merges them for reporting (metrics_merge). Pure module: no I/O.
 */
#ifndef SYNCGATE_METRICS_H
#define SYNCGATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/hist.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_RATE, METRIC_TREND };
enum metric_unit { UNIT_NONE, UNIT_TIME, UNIT_DATA };

enum metric_id {
    M_ACHIEVED_RATE,
    M_CHECKS,
    M_DATA_RECEIVED,
    M_DATA_SENT,
    M_DROPPED_ITERATIONS,
    M_GROUP_DURATION,
    M_HTTP_REQ_BLOCKED,
    M_HTTP_REQ_CONNECTING,
    M_HTTP_REQ_DURATION,
    M_HTTP_REQ_DURATION_SCHEDULED,
    M_HTTP_REQ_FAILED,
    M_HTTP_REQ_RECEIVING,
    M_HTTP_REQ_SENDING,
    M_HTTP_REQ_TLS_HANDSHAKING,
    M_HTTP_REQ_WAITING,
    M_HTTP_REQS,
    M_ITERATION_DURATION,
    M_ITERATION_LATENESS,
    M_ITERATIONS,
    M_JOURNEY_SKIPPED,
    M_VUS,
    M_VUS_MAX,
    M_COUNT
};

struct metric_def {
    const char *name; /* k6 name, e.g. "http_req_duration" */
    enum metric_type type;
    enum metric_unit unit;
};

/* Definition of a built-in metric (ids are in name order). */
const struct metric_def *metric_def(enum metric_id id);
/* Id of the metric called name (exact k6 name), or -1 when there is none. */
int metric_lookup(const char *name);

#define TAGS_MAX 12
#define METRICS_MAX_SERIES 4096
/* Room past the cap for the grouped series: one per metric and scenario value. */
#define METRICS_GROUPED_MAX (4 * M_COUNT)

struct tag {
    const char *key;
    const char *value;
};

/* Up to TAGS_MAX tags kept sorted by key (byte order), keys unique. */
struct tagset {
    unsigned n;
    struct tag t[TAGS_MAX];
};

/*
 * The label names a series can get without the profile: the run's identity
 * (testid, instance, environment, test_type) and k6's default system tags
 * (name, method, status, error_code, proto, url, group...), whether syncgate
 * sets them today or not; NULL-terminated, in the order messages list them.
 * Every tag syncgate sets on a series must be in it (tests/unit/test_rw.c
 * checks what the recorders produce), and the profile's static labels may
 * use none of them.
 */
extern const char *const metrics_reserved_tags[];
/* Whether name is in metrics_reserved_tags or starts with "__" (Prometheus's). */
bool metrics_tag_reserved(const char *name);

/* Set key to value (replacing an existing key). Strings are borrowed. -E2BIG when full. */
int tagset_set(struct tagset *ts, const char *key, const char *value);
/* Value of key or NULL. */
const char *tagset_get(const struct tagset *ts, const char *key);
/* True when every tag of filter is present with the same value in ts. */
bool tagset_matches(const struct tagset *ts, const struct tagset *filter);

struct series {
    enum metric_id id;
    struct tagset tags; /* strings owned by the registry */
    union {
        double counter;
        struct {
            double value, min, max;
            bool set;
        } gauge;
        struct {
            uint64_t pass, total;
        } rate;
        struct hist *trend;
    } v;
    uint64_t version; /* bumped by every update; lets outputs send only what changed */
    struct series *hnext, *next; /* hash chain; creation order */
};

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Find or create the series of metric id with exactly these tags; once
 * METRICS_MAX_SERIES exist, a new tag set gets the metric's grouped series
 * instead (tags cut to "scenario"; counted by metrics_grouped). Returns NULL
 * only when memory ran out (or METRICS_GROUPED_MAX grouped series exist,
 * which takes more than four scenarios); callers count that as a dropped
 * sample and go on.
 */
struct series *metrics_series(struct metrics *m, enum metric_id id, const struct tagset *tags);

void series_add(struct series *s, double v);     /* counter */
void series_set(struct series *s, double v);     /* gauge */
void series_rate(struct series *s, bool pass);   /* rate */
void series_trend(struct series *s, int64_t v);  /* trend */

/* First series in creation order (then s->next), or NULL. */
struct series *metrics_first(const struct metrics *m);
/*
 * Number of series; samples dropped because no series could be made; tag sets
 * sent to a grouped series because the cap was reached (merges add up the
 * sources' counts).
 */
size_t metrics_nseries(const struct metrics *m);
uint64_t metrics_dropped(const struct metrics *m);
uint64_t metrics_grouped(const struct metrics *m);

/*
 * Add every series of src into dst (counters and rates add, trends merge,
 * gauges take src's value and widen min/max); past dst's cap they land in
 * its grouped series. Returns 0 or -ENOMEM (memory, never the cap).
 */
int metrics_merge(struct metrics *dst, const struct metrics *src);

/*
 * metrics_merge for registries of different instances of one distributed run (processes
 * running side by side, fleet.h): the same, except that gauges add up (value, min and
 * max), as the VUs of pods that run together do. (A min or max added up bounds the
 * whole's: the instances' extremes need not fall at the same moment.)
 */
int metrics_merge_instances(struct metrics *dst, const struct metrics *src);

/* Fold src into dst, two series of the same metric, as metrics_merge does (src may live
 * outside any registry), or as metrics_merge_instances does. Returns 0 or -ENOMEM. */
int series_merge(struct series *dst, const struct series *src);
int series_merge_instances(struct series *dst, const struct series *src);

/*
 * Empty every series (counters 0, rates 0/0, gauges unset, trends empty with their memory
 * kept, versions 0) and the dropped and grouped counts; the series stay. For a registry
 * refilled from another's copy again and again (snapshot.h).
 */
void metrics_zero(struct metrics *m);
/* Add to the counts metrics_dropped and metrics_grouped return (a copy's, snapshot.h). */
void metrics_add_lost(struct metrics *m, uint64_t dropped, uint64_t grouped);

/* Aggregate over every series of one metric whose tags match a filter. */
struct metric_view {
    enum metric_id id;
    size_t nseries;
    double counter;
    double gauge_value, gauge_min, gauge_max;
    bool gauge_set;
    uint64_t pass, total;
    struct hist *trend; /* owned by the view; NULL unless a trend */
};

/*
 * Fill v with the aggregate of metric id over the series matching filter
 * (NULL or empty filter: all). Returns 0 or -ENOMEM. Release with
 * metric_view_clear().
 */
int metrics_view(const struct metrics *m, enum metric_id id, const struct tagset *filter,
                 struct metric_view *v);
void metric_view_clear(struct metric_view *v);
/* metrics_view() leaving out the series whose tag except->key is except->value. */
int metrics_view_except(const struct metrics *m, enum metric_id id, const struct tagset *filter,
                        const struct tag *except, struct metric_view *v);
/* True when the view saw at least one sample (a gauge counts once set). */
bool metric_view_has_samples(const struct metric_view *v);

#endif
