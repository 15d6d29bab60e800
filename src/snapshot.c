/* snapshot: a registry on the wire between a distributed run's instances. See snapshot.h. */
#include "syncgate/snapshot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.pb-c.h"
#include "syncgate/hist.h"

/* Everything one Report points to, allocated in a few blocks. */
struct enc {
    Syncgate__Fleet__Series *series, **series_p;
    Syncgate__Fleet__Tag *tags, **tags_p;
    Syncgate__Fleet__Trend *trends;
    uint32_t *index;
    uint64_t *n;
    Syncgate__Fleet__Progress *prog, **prog_p;
};

static void enc_free(struct enc *e)
{
    free(e->series);
    free(e->series_p);
    free(e->tags);
    free(e->tags_p);
    free(e->trends);
    free(e->index);
    free(e->n);
    free(e->prog);
    free(e->prog_p);
}

static void put_trend(Syncgate__Fleet__Trend *t, const struct hist *h, uint32_t *index,
                      uint64_t *n, size_t *used)
{
    struct hist_totals tot;
    hist_get_totals(h, &tot);
    syncgate__fleet__trend__init(t);
    t->count = tot.count;
    t->sum_lo = tot.sum_lo;
    t->sum_hi = tot.sum_hi;
    t->min = tot.min;
    t->max = tot.max;
    t->index_delta = index + *used;
    t->n = n + *used;
    uint32_t i = 0, prev = 0;
    uint64_t c;
    size_t k = 0;
    for (; hist_next_index(h, &i, &c); i++, k++) {
        t->index_delta[k] = i - prev;
        t->n[k] = c;
        prev = i;
    }
    t->n_index_delta = t->n_n = k;
    *used += k;
}

int snapshot_encode(const struct metrics *m, const struct snapshot_meta *meta, uint8_t **out,
                    size_t *len)
{
    struct enc e = {0};
    size_t ns = 0, ntags = 0, ntrends = 0, nb = 0;
    int rc = -ENOMEM;

    for (const struct series *s = metrics_first(m); s; s = s->next) {
        ns++;
        ntags += s->tags.n;
        if (metric_def(s->id)->type == METRIC_TREND) {
            ntrends++;
            uint32_t i = 0;
            uint64_t c;
            for (; hist_next_index(s->v.trend, &i, &c); i++)
                nb++;
        }
    }
    size_t nsc = meta->nscenarios < CONFIG_MAX_SCENARIOS ? meta->nscenarios : CONFIG_MAX_SCENARIOS;
    e.series = calloc(ns ? ns : 1, sizeof(*e.series));
    e.series_p = calloc(ns ? ns : 1, sizeof(*e.series_p));
    e.tags = calloc(ntags ? ntags : 1, sizeof(*e.tags));
    e.tags_p = calloc(ntags ? ntags : 1, sizeof(*e.tags_p));
    e.trends = calloc(ntrends ? ntrends : 1, sizeof(*e.trends));
    e.index = calloc(nb ? nb : 1, sizeof(*e.index));
    e.n = calloc(nb ? nb : 1, sizeof(*e.n));
    e.prog = calloc(nsc ? nsc : 1, sizeof(*e.prog));
    e.prog_p = calloc(nsc ? nsc : 1, sizeof(*e.prog_p));
    if (!e.series || !e.series_p || !e.tags || !e.tags_p || !e.trends || !e.index || !e.n ||
        !e.prog || !e.prog_p)
        goto out;

    size_t k = 0, kt = 0, ktr = 0, kb = 0;
    for (const struct series *s = metrics_first(m); s; s = s->next, k++) {
        Syncgate__Fleet__Series *o = &e.series[k];
        syncgate__fleet__series__init(o);
        e.series_p[k] = o;
        o->metric = (char *)metric_def(s->id)->name;
        o->version = s->version;
        o->tags = &e.tags_p[kt];
        o->n_tags = s->tags.n;
        for (unsigned t = 0; t < s->tags.n; t++, kt++) {
            syncgate__fleet__tag__init(&e.tags[kt]);
            e.tags[kt].key = (char *)s->tags.t[t].key;
            e.tags[kt].value = (char *)s->tags.t[t].value;
            e.tags_p[kt] = &e.tags[kt];
        }
        switch (metric_def(s->id)->type) {
        case METRIC_COUNTER:
            o->counter = s->v.counter;
            break;
        case METRIC_GAUGE:
            o->gauge = s->v.gauge.value;
            o->gauge_min = s->v.gauge.min;
            o->gauge_max = s->v.gauge.max;
            o->gauge_set = s->v.gauge.set;
            break;
        case METRIC_RATE:
            o->pass = s->v.rate.pass;
            o->total = s->v.rate.total;
            break;
        case METRIC_TREND:
            put_trend(&e.trends[ktr], s->v.trend, e.index, e.n, &kb);
            o->trend = &e.trends[ktr++];
            break;
        }
    }

    Syncgate__Fleet__Report r = SYNCGATE__FLEET__REPORT__INIT;
    Syncgate__Fleet__Saturation sat = SYNCGATE__FLEET__SATURATION__INIT;
    r.index = meta->index;
    r.seq = meta->seq;
    r.final = meta->final;
    r.elapsed = meta->elapsed;
    r.series = e.series_p;
    r.n_series = ns;
    for (size_t i = 0; i < nsc; i++) {
        syncgate__fleet__progress__init(&e.prog[i]);
        e.prog[i].started = meta->started[i];
        e.prog[i].due = meta->due[i];
        e.prog_p[i] = &e.prog[i];
    }
    r.scenarios = e.prog_p;
    r.n_scenarios = nsc;
    r.dropped = metrics_dropped(m);
    r.grouped = metrics_grouped(m);
    if (meta->has_saturation) {
        const struct sat_report *s = &meta->saturation;
        sat.measured = s->measured;
        sat.saturated = s->saturated;
        sat.windows = s->windows;
        sat.saturated_windows = s->saturated_windows;
        sat.capacity = s->capacity;
        sat.cpu_peak = s->cpu_peak;
        sat.lag_peak = s->lag_peak;
        r.saturation = &sat;
    }
    r.failure = meta->failure;
    r.reason = (char *)meta->reason;
    r.undelivered = meta->undelivered;

    size_t size = syncgate__fleet__report__get_packed_size(&r);
    if (size > SNAPSHOT_MAX_BYTES) {
        rc = -E2BIG;
        goto out;
    }
    if (!(*out = malloc(size ? size : 1)))
        goto out;
    *len = syncgate__fleet__report__pack(&r, *out);
    rc = 0;
out:
    enc_free(&e);
    return rc;
}

/*
 * One series of a report: checked, and added to dst when dst is not NULL (as
 * metrics_merge_instances adds: gauges add up). index: room for the buckets of the biggest
 * trend of the report.
 */
static int take_series(struct metrics *dst, const Syncgate__Fleet__Series *o, uint32_t *index)
{
    int id = o->metric ? metric_lookup(o->metric) : -1;
    if (id < 0 || o->n_tags > TAGS_MAX)
        return -EINVAL;
    struct tagset ts = {0};
    for (size_t t = 0; t < o->n_tags; t++) {
        const Syncgate__Fleet__Tag *tg = o->tags[t];
        if (!tg->key || !tg->value || !*tg->key || tagset_get(&ts, tg->key))
            return -EINVAL;
        tagset_set(&ts, tg->key, tg->value);
    }
    struct series tmp = {.id = (enum metric_id)id, .version = o->version};
    switch (metric_def(tmp.id)->type) {
    case METRIC_COUNTER:
        if (!isfinite(o->counter))
            return -EINVAL;
        tmp.v.counter = o->counter;
        break;
    case METRIC_GAUGE:
        tmp.v.gauge.value = o->gauge;
        tmp.v.gauge.min = o->gauge_min;
        tmp.v.gauge.max = o->gauge_max;
        tmp.v.gauge.set = o->gauge_set;
        break;
    case METRIC_RATE:
        if (o->pass > o->total)
            return -EINVAL;
        tmp.v.rate.pass = o->pass;
        tmp.v.rate.total = o->total;
        break;
    case METRIC_TREND: {
        /* straight into the registry's histogram: no copy of it is made */
        const Syncgate__Fleet__Trend *t = o->trend;
        if (!t || t->n_index_delta != t->n_n || t->n_n > HIST_BUCKETS)
            return -EINVAL;
        uint64_t at = 0;
        for (size_t i = 0; i < t->n_n; i++) {
            at += t->index_delta[i];
            index[i] = at < HIST_BUCKETS ? (uint32_t)at : HIST_BUCKETS;
        }
        struct hist_totals tot = {t->count, t->sum_lo, t->sum_hi, t->min, t->max};
        if (tot.count == 0)
            tot.min = UINT64_MAX, tot.max = 0;
        if (hist_check_parts(&tot, index, t->n, t->n_n) < 0)
            return -EINVAL;
        if (!dst)
            return 0;
        struct series *d = metrics_series(dst, tmp.id, &ts);
        if (!d)
            return -ENOMEM;
        int rc = hist_add_parts(d->v.trend, &tot, index, t->n, t->n_n);
        if (rc == 0)
            d->version += tmp.version;
        return rc;
    }
    }
    if (!dst)
        return 0;
    struct series *d = metrics_series(dst, tmp.id, &ts);
    if (!d)
        return -ENOMEM;
    return series_merge_instances(d, &tmp);
}

/* Check a report; add its registry to dst (NULL: check only); its rest into meta (NULL:
 * not wanted). */
static int walk(const uint8_t *buf, size_t len, struct metrics *dst, struct snapshot_meta *meta)
{
    if (meta)
        memset(meta, 0, sizeof(*meta));
    if (len > SNAPSHOT_MAX_BYTES)
        return -EINVAL;
    Syncgate__Fleet__Report *r = syncgate__fleet__report__unpack(NULL, len, buf);
    if (!r)
        return -EINVAL;
    int rc = r->n_scenarios > CONFIG_MAX_SCENARIOS ? -EINVAL : 0;
    size_t most = 1;
    for (size_t i = 0; i < r->n_series; i++)
        if (r->series[i]->trend && r->series[i]->trend->n_n > most)
            most = r->series[i]->trend->n_n;
    uint32_t *index = rc || most > HIST_BUCKETS ? NULL : malloc(most * sizeof(*index));
    if (!rc && !index)
        rc = most > HIST_BUCKETS ? -EINVAL : -ENOMEM;
    for (size_t i = 0; !rc && i < r->n_series; i++)
        rc = take_series(dst, r->series[i], index);
    free(index);
    if (!rc && dst)
        metrics_add_lost(dst, r->dropped, r->grouped);
    if (!rc && meta) {
        meta->index = r->index;
        meta->seq = r->seq;
        meta->final = r->final;
        meta->elapsed = r->elapsed;
        meta->nscenarios = r->n_scenarios;
        for (size_t i = 0; i < r->n_scenarios; i++) {
            meta->started[i] = r->scenarios[i]->started;
            meta->due[i] = r->scenarios[i]->due;
        }
        if (r->saturation) {
            const Syncgate__Fleet__Saturation *s = r->saturation;
            meta->has_saturation = true;
            meta->saturation = (struct sat_report){
                .measured = s->measured, .saturated = s->saturated, .windows = s->windows,
                .saturated_windows = s->saturated_windows, .capacity = s->capacity,
                .cpu_peak = s->cpu_peak, .lag_peak = s->lag_peak};
        }
        meta->failure = r->failure;
        snprintf(meta->reason, sizeof(meta->reason), "%s", r->reason ? r->reason : "");
        meta->undelivered = r->undelivered;
    }
    syncgate__fleet__report__free_unpacked(r, NULL);
    return rc;
}

int snapshot_read(const uint8_t *buf, size_t len, struct snapshot_meta *meta)
{
    return walk(buf, len, NULL, meta);
}

int snapshot_merge(const uint8_t *buf, size_t len, struct metrics *dst)
{
    return walk(buf, len, dst, NULL);
}

int snapshot_decode(const uint8_t *buf, size_t len, struct metrics *into,
                    struct snapshot_meta *meta)
{
    metrics_zero(into);
    return walk(buf, len, into, meta);
}
