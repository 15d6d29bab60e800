/* metrics: built-in k6 metrics and their tagged series. */
#include "syncgate/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Kept in enum metric_id order, which is name order. */
static const struct metric_def defs[M_COUNT] = {
    [M_ACHIEVED_RATE] = {"achieved_rate", METRIC_GAUGE, UNIT_NONE},
    [M_CHECKS] = {"checks", METRIC_RATE, UNIT_NONE},
    [M_DATA_RECEIVED] = {"data_received", METRIC_COUNTER, UNIT_DATA},
    [M_DATA_SENT] = {"data_sent", METRIC_COUNTER, UNIT_DATA},
    [M_DROPPED_ITERATIONS] = {"dropped_iterations", METRIC_COUNTER, UNIT_NONE},
    [M_GROUP_DURATION] = {"group_duration", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_BLOCKED] = {"http_req_blocked", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_CONNECTING] = {"http_req_connecting", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_DURATION] = {"http_req_duration", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_DURATION_SCHEDULED] = {"http_req_duration_scheduled", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_FAILED] = {"http_req_failed", METRIC_RATE, UNIT_NONE},
    [M_HTTP_REQ_RECEIVING] = {"http_req_receiving", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_SENDING] = {"http_req_sending", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_TLS_HANDSHAKING] = {"http_req_tls_handshaking", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQ_WAITING] = {"http_req_waiting", METRIC_TREND, UNIT_TIME},
    [M_HTTP_REQS] = {"http_reqs", METRIC_COUNTER, UNIT_NONE},
    [M_ITERATION_DURATION] = {"iteration_duration", METRIC_TREND, UNIT_TIME},
    [M_ITERATION_LATENESS] = {"iteration_lateness", METRIC_TREND, UNIT_TIME},
    [M_ITERATIONS] = {"iterations", METRIC_COUNTER, UNIT_NONE},
    [M_JOURNEY_SKIPPED] = {"journey_skipped", METRIC_COUNTER, UNIT_NONE},
    [M_VUS] = {"vus", METRIC_GAUGE, UNIT_NONE},
    [M_VUS_MAX] = {"vus_max", METRIC_GAUGE, UNIT_NONE},
};

const struct metric_def *metric_def(enum metric_id id)
{
    return (unsigned)id < M_COUNT ? &defs[id] : NULL;
}

int metric_lookup(const char *name)
{
    for (int i = 0; i < M_COUNT; i++)
        if (strcmp(defs[i].name, name) == 0)
            return i;
    return -1;
}

const char *const metrics_reserved_tags[] = {
    /* the run's identity, on every series (rw) */
    "testid", "instance", "environment", "test_type",
    /* k6's default system tags: set by http, smoke and engine, or by k6 where a
     * dashboard may expect them (proto, url, group...) */
    "name", "method", "status", "expected_response", "scenario", "check", "error",
    "error_code", "proto", "subproto", "tls_version", "url", "group", "service",
    NULL,
};

bool metrics_tag_reserved(const char *name)
{
    if (strncmp(name, "__", 2) == 0)
        return true;
    for (size_t i = 0; metrics_reserved_tags[i]; i++)
        if (strcmp(name, metrics_reserved_tags[i]) == 0)
            return true;
    return false;
}

int tagset_set(struct tagset *ts, const char *key, const char *value)
{
    unsigned i = 0;
    while (i < ts->n && strcmp(ts->t[i].key, key) < 0)
        i++;
    if (i < ts->n && strcmp(ts->t[i].key, key) == 0) {
        ts->t[i].value = value;
        return 0;
    }
    if (ts->n == TAGS_MAX)
        return -E2BIG;
    memmove(&ts->t[i + 1], &ts->t[i], (ts->n - i) * sizeof(ts->t[0]));
    ts->t[i] = (struct tag){key, value};
    ts->n++;
    return 0;
}

const char *tagset_get(const struct tagset *ts, const char *key)
{
    for (unsigned i = 0; i < ts->n; i++)
        if (strcmp(ts->t[i].key, key) == 0)
            return ts->t[i].value;
    return NULL;
}

bool tagset_matches(const struct tagset *ts, const struct tagset *filter)
{
    if (!filter)
        return true;
    for (unsigned i = 0; i < filter->n; i++) {
        const char *v = tagset_get(ts, filter->t[i].key);
        if (!v || strcmp(v, filter->t[i].value) != 0)
            return false;
    }
    return true;
}

/* Power of two, comfortably above METRICS_MAX_SERIES so chains stay short. */
#define NBUCKETS 8192

struct metrics {
    struct series *buckets[NBUCKETS];
    struct series *first, *last;
    size_t nseries;
    uint64_t dropped, grouped;
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

static void series_free(struct series *s)
{
    if (!s)
        return;
    if (defs[s->id].type == METRIC_TREND)
        hist_free(s->v.trend);
    for (unsigned i = 0; i < s->tags.n; i++) {
        free((char *)s->tags.t[i].key);
        free((char *)s->tags.t[i].value);
    }
    free(s);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct series *s = m->first;
    while (s) {
        struct series *next = s->next;
        series_free(s);
        s = next;
    }
    free(m);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return (h ^ 0xff) * UINT64_C(1099511628211); /* separator: "ab","c" != "a","bc" */
}

static uint64_t series_hash(enum metric_id id, const struct tagset *tags)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ (uint64_t)id;
    for (unsigned i = 0; tags && i < tags->n; i++)
        h = fnv(fnv(h, tags->t[i].key), tags->t[i].value);
    return h;
}

static bool tags_equal(const struct tagset *a, const struct tagset *b)
{
    unsigned bn = b ? b->n : 0;
    if (a->n != bn)
        return false;
    for (unsigned i = 0; i < bn; i++)
        if (strcmp(a->t[i].key, b->t[i].key) != 0 || strcmp(a->t[i].value, b->t[i].value) != 0)
            return false;
    return true;
}

static struct series *series_make(enum metric_id id, const struct tagset *tags)
{
    struct series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = id;
    for (unsigned i = 0; tags && i < tags->n; i++) {
        s->tags.t[i].key = strdup(tags->t[i].key);
        s->tags.t[i].value = strdup(tags->t[i].value);
        s->tags.n = i + 1;
        if (!s->tags.t[i].key || !s->tags.t[i].value)
            goto fail;
    }
    if (defs[id].type == METRIC_TREND && !(s->v.trend = hist_new()))
        goto fail;
    return s;
fail:
    series_free(s);
    return NULL;
}

static struct series *find(const struct metrics *m, enum metric_id id, const struct tagset *tags,
                           uint64_t h)
{
    for (struct series *s = m->buckets[h & (NBUCKETS - 1)]; s; s = s->hnext)
        if (s->id == id && tags_equal(&s->tags, tags))
            return s;
    return NULL;
}

struct series *metrics_series(struct metrics *m, enum metric_id id, const struct tagset *tags)
{
    uint64_t h = series_hash(id, tags);
    struct series *s = find(m, id, tags, h);
    if (s)
        return s;
    struct tagset grouped = {0};
    if (m->nseries >= METRICS_MAX_SERIES) {
        /* full: the sample still counts, in the series that keeps only its scenario */
        const char *scenario = tags ? tagset_get(tags, "scenario") : NULL;
        if (scenario)
            tagset_set(&grouped, "scenario", scenario);
        tags = &grouped;
        h = series_hash(id, tags);
        m->grouped++;
        if ((s = find(m, id, tags, h)))
            return s;
    }
    s = m->nseries < METRICS_MAX_SERIES + METRICS_GROUPED_MAX ? series_make(id, tags) : NULL;
    if (!s) {
        m->dropped++;
        return NULL;
    }
    struct series **b = &m->buckets[h & (NBUCKETS - 1)];
    s->hnext = *b;
    *b = s;
    if (m->last)
        m->last->next = s;
    else
        m->first = s;
    m->last = s;
    m->nseries++;
    return s;
}

void series_add(struct series *s, double v)
{
    s->v.counter += v;
    s->version++;
}

void series_set(struct series *s, double v)
{
    if (!s->v.gauge.set || v < s->v.gauge.min)
        s->v.gauge.min = v;
    if (!s->v.gauge.set || v > s->v.gauge.max)
        s->v.gauge.max = v;
    s->v.gauge.value = v;
    s->v.gauge.set = true;
    s->version++;
}

void series_rate(struct series *s, bool pass)
{
    s->v.rate.pass += pass;
    s->v.rate.total++;
    s->version++;
}

void series_trend(struct series *s, int64_t v)
{
    hist_record(s->v.trend, v);
    s->version++;
}

struct series *metrics_first(const struct metrics *m)
{
    return m->first;
}

size_t metrics_nseries(const struct metrics *m)
{
    return m->nseries;
}

uint64_t metrics_dropped(const struct metrics *m)
{
    return m->dropped;
}

uint64_t metrics_grouped(const struct metrics *m)
{
    return m->grouped;
}

/* Fold src's value into dst (same metric); shared by merge and views. Gauges of different
 * instances (sum) add up; else src's value is the latest. */
static int series_fold_as(struct series *dst, const struct series *src, bool sum)
{
    switch (defs[src->id].type) {
    case METRIC_COUNTER:
        dst->v.counter += src->v.counter;
        break;
    case METRIC_RATE:
        dst->v.rate.pass += src->v.rate.pass;
        dst->v.rate.total += src->v.rate.total;
        break;
    case METRIC_GAUGE:
        /* Gauges have one writer; merging takes the latest value and widens the range. */
        if (!src->v.gauge.set)
            break;
        if (dst->v.gauge.set && sum) {
            dst->v.gauge.value += src->v.gauge.value;
            dst->v.gauge.min += src->v.gauge.min;
            dst->v.gauge.max += src->v.gauge.max;
        } else if (dst->v.gauge.set) {
            dst->v.gauge.value = src->v.gauge.value;
            dst->v.gauge.min = fmin(dst->v.gauge.min, src->v.gauge.min);
            dst->v.gauge.max = fmax(dst->v.gauge.max, src->v.gauge.max);
        } else {
            dst->v.gauge = src->v.gauge;
        }
        break;
    case METRIC_TREND:
        if (hist_merge(dst->v.trend, src->v.trend) < 0)
            return -ENOMEM;
        break;
    }
    /* Versions add up so a merged snapshot changes whenever any source did. */
    dst->version += src->version;
    return 0;
}

static int series_fold(struct series *dst, const struct series *src)
{
    return series_fold_as(dst, src, false);
}

static int merge(struct metrics *dst, const struct metrics *src, bool sum)
{
    dst->dropped += src->dropped;
    dst->grouped += src->grouped;
    for (const struct series *s = src->first; s; s = s->next) {
        struct series *d = metrics_series(dst, s->id, &s->tags);
        if (!d && dst->nseries >= METRICS_MAX_SERIES + METRICS_GROUPED_MAX)
            continue; /* counted as dropped; only a registry of five scenarios gets here */
        if (!d)
            return -ENOMEM;
        int rc = series_fold_as(d, s, sum);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int metrics_merge(struct metrics *dst, const struct metrics *src)
{
    return merge(dst, src, false);
}

int series_merge(struct series *dst, const struct series *src)
{
    return series_fold(dst, src);
}

int series_merge_instances(struct series *dst, const struct series *src)
{
    return series_fold_as(dst, src, true);
}

int metrics_merge_instances(struct metrics *dst, const struct metrics *src)
{
    return merge(dst, src, true);
}

void metrics_zero(struct metrics *m)
{
    for (struct series *s = m->first; s; s = s->next) {
        struct hist *h = defs[s->id].type == METRIC_TREND ? s->v.trend : NULL;
        memset(&s->v, 0, sizeof(s->v));
        if (h) {
            hist_reset(h);
            s->v.trend = h;
        }
        s->version = 0;
    }
    m->dropped = m->grouped = 0;
}

void metrics_add_lost(struct metrics *m, uint64_t dropped, uint64_t grouped)
{
    m->dropped += dropped;
    m->grouped += grouped;
}

int metrics_view(const struct metrics *m, enum metric_id id, const struct tagset *filter,
                 struct metric_view *v)
{
    return metrics_view_except(m, id, filter, NULL, v);
}

int metrics_view_except(const struct metrics *m, enum metric_id id, const struct tagset *filter,
                        const struct tag *except, struct metric_view *v)
{
    memset(v, 0, sizeof(*v));
    v->id = id;
    struct series acc = {.id = id};
    if (defs[id].type == METRIC_TREND && !(acc.v.trend = hist_new()))
        return -ENOMEM;
    for (const struct series *s = m->first; s; s = s->next) {
        if (s->id != id || !tagset_matches(&s->tags, filter))
            continue;
        const char *ev = except ? tagset_get(&s->tags, except->key) : NULL;
        if (ev && !strcmp(ev, except->value))
            continue;
        if (series_fold(&acc, s) < 0) {
            hist_free(acc.v.trend);
            return -ENOMEM;
        }
        v->nseries++;
    }
    switch (defs[id].type) {
    case METRIC_COUNTER:
        v->counter = acc.v.counter;
        break;
    case METRIC_RATE:
        v->pass = acc.v.rate.pass;
        v->total = acc.v.rate.total;
        break;
    case METRIC_GAUGE:
        v->gauge_set = acc.v.gauge.set;
        v->gauge_value = acc.v.gauge.value;
        v->gauge_min = acc.v.gauge.min;
        v->gauge_max = acc.v.gauge.max;
        break;
    case METRIC_TREND:
        v->trend = acc.v.trend;
        break;
    }
    return 0;
}

void metric_view_clear(struct metric_view *v)
{
    hist_free(v->trend);
    v->trend = NULL;
}

bool metric_view_has_samples(const struct metric_view *v)
{
    switch (defs[v->id].type) {
    case METRIC_COUNTER:
        return v->nseries > 0;
    case METRIC_RATE:
        return v->total > 0;
    case METRIC_GAUGE:
        return v->gauge_set;
    case METRIC_TREND:
        return v->trend && hist_count(v->trend) > 0;
    }
    return false;
}
