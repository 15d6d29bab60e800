/* run: the invocation's shared state: metric sources, stop flag, aborts. */
#include "syncgate/run.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/baseline.h"
#include "syncgate/units.h"

int run_init(struct run *r, const struct config *cfg, struct log *log,
             volatile sig_atomic_t *stop)
{
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->log = log;
    r->stop = stop;
    r->start_mono = units_now_mono();
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void run_clear(struct run *r)
{
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].owned) {
            metrics_free(r->sources[i].m);
            pthread_mutex_destroy(r->sources[i].lock);
            free(r->sources[i].lock);
        }
    r->nsources = 0;
    pthread_mutex_destroy(&r->lock);
}

struct metrics *run_new_source(struct run *r, pthread_mutex_t **lock)
{
    struct metrics *m = metrics_new();
    pthread_mutex_t *l = malloc(sizeof(*l));
    if (m && l) {
        pthread_mutex_init(l, NULL);
        pthread_mutex_lock(&r->lock);
        if (r->nsources < RUN_MAX_SOURCES) {
            r->sources[r->nsources++] = (struct run_source){m, l, true};
            pthread_mutex_unlock(&r->lock);
            *lock = l;
            return m;
        }
        pthread_mutex_unlock(&r->lock);
        pthread_mutex_destroy(l);
    }
    metrics_free(m);
    free(l);
    return NULL;
}

int run_add_source(struct run *r, struct metrics *m, pthread_mutex_t *lock)
{
    int rc = -E2BIG;
    pthread_mutex_lock(&r->lock);
    if (r->nsources < RUN_MAX_SOURCES) {
        r->sources[r->nsources++] = (struct run_source){m, lock, false};
        rc = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void run_remove_source(struct run *r, struct metrics *m)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nsources; i++)
        if (r->sources[i].m == m) {
            r->sources[i] = r->sources[--r->nsources];
            break;
        }
    pthread_mutex_unlock(&r->lock);
}

int run_snapshot(struct run *r, struct metrics *dst)
{
    int rc = run_snapshot_local(r, dst);
    if (rc == 0 && r->merge_others)
        rc = r->merge_others(r->merge_ud, dst);
    return rc;
}

int run_snapshot_local(struct run *r, struct metrics *dst)
{
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nsources && rc == 0; i++) {
        pthread_mutex_lock(r->sources[i].lock);
        rc = metrics_merge(dst, r->sources[i].m);
        pthread_mutex_unlock(r->sources[i].lock);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void run_set_gauge(struct run *r, enum metric_id id, double v)
{
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nsources; i++) {
        pthread_mutex_lock(r->sources[i].lock);
        for (struct series *s = metrics_first(r->sources[i].m); s; s = s->next)
            if (s->id == id)
                series_set(s, v);
        pthread_mutex_unlock(r->sources[i].lock);
    }
    pthread_mutex_unlock(&r->lock);
}

bool run_should_stop(const struct run *r)
{
    return *r->stop || r->aborted || r->fleet_stop;
}

bool run_check_aborts(struct run *r, const struct threshold_set *ts, const struct metrics *snap,
                      bool smoke, int64_t elapsed)
{
    for (size_t i = 0; i < ts->n; i++) {
        const struct threshold *t = &ts->t[i];
        if (!t->abort_on_fail || elapsed < t->delay_abort_eval)
            continue;
        /* A baseline threshold aborts only against a baseline that was found. */
        const struct baseline *b = t->baseline ? baseline_find(r->baselines, t) : NULL;
        if (t->baseline && (!b || b->status != BASELINE_FOUND))
            continue;
        double limit = threshold_limit(t, b ? b->value : NAN);
        struct metric_view v;
        double observed = NAN;
        if (threshold_view(t, snap, smoke, &v) < 0)
            continue;
        /* Before any sample arrives there is nothing to judge yet: wait. */
        bool judged = metric_view_has_samples(&v);
        if (judged)
            observed = threshold_observe(t, &v, elapsed);
        bool ok = !judged || threshold_holds(t, observed, limit);
        metric_view_clear(&v);
        if (ok)
            continue;
        cJSON *ev = log_begin(r->log, "threshold");
        cJSON_AddStringToObject(ev, "metric", t->metric_key);
        cJSON_AddStringToObject(ev, "threshold", t->source);
        cJSON_AddBoolToObject(ev, "passed", false);
        cJSON_AddNumberToObject(ev, "observed", observed);
        cJSON_AddBoolToObject(ev, "abort", true);
        log_emit(r->log, LOG_ERROR, ev);
        r->aborted = 1;
        return true;
    }
    return false;
}
