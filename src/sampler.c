/* sampler: one timeline point per interval from two cumulative snapshots. */
#include "syncgate/sampler.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "syncgate/units.h"

int sampler_point(struct sampler_state *st, const struct metrics *snap, int64_t now,
                  struct timeline_point *out)
{
    struct metric_view reqs, failed, vus, dur;
    struct hist *interval = hist_new();
    int rc = -ENOMEM;

    if (!interval)
        return -ENOMEM;
    if (metrics_view(snap, M_HTTP_REQS, NULL, &reqs) < 0)
        goto out_hist;
    metric_view_clear(&reqs);
    if (metrics_view(snap, M_HTTP_REQ_FAILED, NULL, &failed) < 0)
        goto out_hist;
    metric_view_clear(&failed);
    if (metrics_view(snap, M_VUS, NULL, &vus) < 0)
        goto out_hist;
    metric_view_clear(&vus);
    if (metrics_view(snap, M_HTTP_REQ_DURATION, NULL, &dur) < 0)
        goto out_hist;

    uint64_t nreq = (uint64_t)reqs.counter, nfailed = failed.pass;
    *out = (struct timeline_point){
        .t = st->t,
        .span = now - st->t,
        .requests = nreq >= st->requests ? nreq - st->requests : 0,
        .failed = nfailed >= st->failed ? nfailed - st->failed : 0,
        .vus = vus.gauge_set ? (int)vus.gauge_value : 0,
        .p95 = NAN,
    };
    if (!dur.trend) {
        /* no request had a duration yet */
        rc = 0;
    } else if (!st->duration) {
        if (hist_count(dur.trend))
            out->p95 = hist_percentile(dur.trend, 95);
        rc = 0;
    } else {
        rc = hist_diff(interval, dur.trend, st->duration);
        if (rc == -EINVAL)
            rc = 0; /* the sources changed under us: no p95 for this interval */
        else if (rc == 0 && hist_count(interval))
            out->p95 = hist_percentile(interval, 95);
    }
    if (rc == 0) {
        st->t = now;
        st->requests = nreq;
        st->failed = nfailed;
        if (dur.trend) {
            hist_free(st->duration);
            st->duration = dur.trend; /* taken from the view */
            dur.trend = NULL;
        }
    }
    metric_view_clear(&dur);
out_hist:
    hist_free(interval);
    return rc;
}

void sampler_state_clear(struct sampler_state *st)
{
    hist_free(st->duration);
    st->duration = NULL;
}

struct sampler {
    struct run *r;
    struct timeline *tl;
    int64_t interval;
    struct sampler_state st;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

static void take(struct sampler *s)
{
    struct metrics *snap = metrics_new();
    struct timeline_point p;
    int64_t now = units_now_mono() - s->r->start_mono;

    if (snap && run_snapshot(s->r, snap) == 0 && now > s->st.t &&
        sampler_point(&s->st, snap, now, &p) == 0)
        timeline_add(s->tl, &p);
    metrics_free(snap); /* out of memory: this interval is folded into the next */
}

static void *sampler_main(void *ud)
{
    struct sampler *s = ud;
    int64_t next = s->r->start_mono + s->interval;

    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec ts = {(time_t)(next / USEC_PER_SEC),
                              (long)(next % USEC_PER_SEC) * 1000};
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stop)
            break;
        int64_t now = units_now_mono();
        if (now < next)
            continue;
        pthread_mutex_unlock(&s->lock);
        take(s);
        pthread_mutex_lock(&s->lock);
        while (next <= now)
            next += s->interval;
    }
    pthread_mutex_unlock(&s->lock);
    take(s); /* the last stretch, up to the end */
    return NULL;
}

struct sampler *sampler_start(struct run *r, struct timeline *tl, int64_t interval, int *err)
{
    struct sampler *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;

    if (!s) {
        *err = -ENOMEM;
        return NULL;
    }
    s->r = r;
    s->tl = tl;
    s->interval = interval > 0 ? interval : SAMPLER_INTERVAL;
    s->st.t = units_now_mono() - r->start_mono;
    pthread_mutex_init(&s->lock, NULL);
    /* units_now_mono() is CLOCK_MONOTONIC: the wait must use the same clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&s->thread, NULL, sampler_main, s);
    if (rc) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        *err = -rc;
        return NULL;
    }
    return s;
}

void sampler_stop(struct sampler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    sampler_state_clear(&s->st);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
