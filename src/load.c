/*
 * load: the load phase. The engine's workers do the requests; this thread
 * watches them: the vus gauges, abortOnFail checks once a second, "stage"
 * events, a progress line every few seconds and the live bar on a TTY.
 */
#include "syncgate/load.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "syncgate/auth.h"
#include "syncgate/engine.h"
#include "syncgate/plan.h"
#include "syncgate/sched.h"
#include "syncgate/units.h"

#define TICK (100 * USEC_PER_MSEC)
#define ABORT_EVERY USEC_PER_SEC
#define PROGRESS_EVERY (5 * USEC_PER_SEC)
#define BAR_WIDTH 24

struct watch {
    struct run *r;
    struct engine *e;
    const struct stage *stages;
    size_t nstages;
    int64_t start, total;
    int vus_max;
    struct metrics *gauges;
    pthread_mutex_t *glock;
    size_t stage_logged; /* stages [0, stage_logged) have had their event */
    bool bar;            /* live bar on stderr */
    bool bar_shown;
    struct engine_stats last_progress, last_bar;
    int64_t last_progress_at, last_bar_at;
    double bar_rate;
    struct sat_watch sat;
};

static struct metrics *new_registry_cb(void *ud, pthread_mutex_t **lock)
{
    return run_new_source(ud, lock);
}

/* Each engine thread registers a source, as do the gauges and the smoke phase. */
_Static_assert(ENGINE_MAX_THREADS + 2 <= RUN_MAX_SOURCES, "RUN_MAX_SOURCES too small for the engine");

/* 1-based number of the stage running at t, the last one once the schedule ended. */
static size_t stage_number(const struct watch *w, int64_t t)
{
    size_t stage = sched_stage_at(w->stages, w->nstages, t);
    return stage < w->nstages ? stage + 1 : w->nstages;
}

static void bar_clear(struct watch *w)
{
    if (w->bar_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        w->bar_shown = false;
    }
}

static void set_gauge(struct watch *w, enum metric_id id, double v)
{
    pthread_mutex_lock(w->glock);
    struct series *s = metrics_series(w->gauges, id, NULL);
    if (s)
        series_set(s, v);
    pthread_mutex_unlock(w->glock);
}

/* One "stage" event per stage entered up to time t, 0s stages included. */
static void log_stages(struct watch *w, int64_t t)
{
    size_t cur = sched_stage_at(w->stages, w->nstages, t);
    while (w->stage_logged < w->nstages && w->stage_logged <= cur) {
        size_t i = w->stage_logged++;
        char dur[32];
        cJSON *ev = log_begin(w->r->log, "stage");
        cJSON_AddNumberToObject(ev, "stage", (double)(i + 1));
        cJSON_AddNumberToObject(ev, "stages", (double)w->nstages);
        cJSON_AddStringToObject(
            ev, "duration", units_format_duration(w->stages[i].duration, dur, sizeof(dur)));
        cJSON_AddNumberToObject(ev, "from", i ? w->stages[i - 1].target : 0);
        cJSON_AddNumberToObject(ev, "target", w->stages[i].target);
        cJSON_AddNumberToObject(ev, "elapsed_s", (double)t / USEC_PER_SEC);
        bar_clear(w);
        log_emit(w->r->log, LOG_INFO, ev);
    }
}

static void log_progress(struct watch *w, int64_t now, bool final)
{
    struct engine_stats s;
    int64_t t = now - w->start;
    double span = (double)(now - w->last_progress_at) / USEC_PER_SEC;

    engine_stats(w->e, &s);
    cJSON *ev = log_begin(w->r->log, "progress");
    cJSON_AddNumberToObject(ev, "elapsed_s", (double)(t / USEC_PER_MSEC) / 1000.0);
    cJSON_AddNumberToObject(ev, "vus", s.vus);
    cJSON_AddNumberToObject(ev, "vus_max", w->vus_max);
    cJSON_AddNumberToObject(ev, "stage", (double)stage_number(w, t));
    cJSON_AddNumberToObject(ev, "stages", (double)w->nstages);
    cJSON_AddNumberToObject(ev, "requests", (double)s.requests);
    cJSON_AddNumberToObject(ev, "failures", (double)s.failures);
    cJSON_AddNumberToObject(ev, "iterations", (double)s.iterations);
    uint64_t done = s.requests - w->last_progress.requests;
    cJSON_AddNumberToObject(ev, "req_s", span > 0 ? (double)(int64_t)((double)done / span) : 0);
    if (final)
        cJSON_AddBoolToObject(ev, "final", true);
    bar_clear(w);
    log_emit(w->r->log, LOG_INFO, ev);
    w->last_progress = s;
    w->last_progress_at = now;
}

static void bar_draw(struct watch *w, int64_t now)
{
    struct engine_stats s;
    char el[32], tot[32], bar[BAR_WIDTH + 1];
    int64_t t = now - w->start;
    double frac = w->total > 0 ? (double)t / (double)w->total : 1;

    engine_stats(w->e, &s);
    if (now - w->last_bar_at >= USEC_PER_SEC) {
        w->bar_rate = (double)(s.requests - w->last_bar.requests) * USEC_PER_SEC /
                      (double)(now - w->last_bar_at);
        w->last_bar = s;
        w->last_bar_at = now;
    }
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    units_format_duration(t / USEC_PER_SEC * USEC_PER_SEC, el, sizeof(el));
    units_format_duration(w->total, tot, sizeof(tot));
    fprintf(stderr, "\r load [%s] %3d%% %s/%s  vus %d/%d  stage %zu/%zu  %.0f req/s  %llu failed",
            bar, (int)(frac * 100), el, tot, s.vus, w->vus_max,
            stage_number(w, t), w->nstages, w->bar_rate,
            (unsigned long long)s.failures);
    fputs("\033[K", stderr); /* clear what a longer previous line left */
    fflush(stderr);
    w->bar_shown = true;
}

static void check_aborts(struct watch *w, int64_t now)
{
    const struct threshold_set *ts = &w->r->cfg->load.thresholds;
    bool any = false;
    for (size_t i = 0; i < ts->n && !any; i++)
        any = ts->t[i].abort_on_fail;
    if (!any)
        return;
    struct metrics *snap = metrics_new();
    if (!snap)
        return;
    bar_clear(w);
    if (run_snapshot(w->r, snap) == 0 &&
        run_check_aborts(w->r, ts, snap, "load", now - w->start))
        engine_stop(w->e);
    metrics_free(snap);
}

static void log_saturation(struct run *r)
{
    const struct sat_report *s = &r->saturation;
    cJSON *ev = log_begin(r->log, "saturation");
    cJSON_AddBoolToObject(ev, "saturated", s->saturated);
    cJSON_AddNumberToObject(ev, "windows", s->windows);
    cJSON_AddNumberToObject(ev, "saturated_windows", s->saturated_windows);
    cJSON_AddNumberToObject(ev, "capacity_cpus", s->capacity);
    cJSON_AddStringToObject(ev, "capacity_source", s->source);
    cJSON_AddNumberToObject(ev, "cpu_peak", (double)(int)(s->cpu_peak * 1000) / 1000);
    cJSON_AddNumberToObject(ev, "lag_peak", (double)(int)(s->lag_peak * 1000) / 1000);
    log_emit(r->log, s->saturated ? LOG_WARN : LOG_INFO, ev);
}

/* Watch the workers until they are done; returns when the phase is over. */
static void watch(struct watch *w)
{
    int64_t next_tick = w->start + TICK, next_abort = w->start + ABORT_EVERY;
    int64_t next_progress = w->start + PROGRESS_EVERY, end = w->start + w->total;
    bool stopping = false;

    w->last_progress_at = w->last_bar_at = w->start;
    log_stages(w, 0);
    for (;;) {
        /* with no VU at all there is no worker to wait for: keep the schedule */
        bool done = engine_wait(w->e, next_tick < end ? next_tick : end);
        int64_t now = units_now_mono();
        if (done && (engine_threads(w->e) > 0 || stopping || now >= end))
            break;
        if (!stopping && run_should_stop(w->r)) {
            engine_stop(w->e);
            stopping = true;
        }
        /* past the end the workers are winding down: their counts mean nothing */
        if (!stopping && now < end) {
            struct engine_stats s;
            engine_stats(w->e, &s);
            sat_sample(&w->sat, (struct sat_point){now, sat_probe_demand(), s.lag_usec});
            set_gauge(w, M_VUS, s.vus);
            log_stages(w, now - w->start);
            if (now >= next_abort) {
                check_aborts(w, now);
                next_abort += ABORT_EVERY;
            }
            if (now >= next_progress) {
                log_progress(w, now, false);
                next_progress += PROGRESS_EVERY;
            }
            if (w->bar)
                bar_draw(w, now);
        }
        while (next_tick <= now)
            next_tick += TICK;
    }
}

static void unauthorized_cb(void *ud)
{
    auth_unauthorized(ud);
}

int load_run(struct run *r)
{
    const struct config *c = r->cfg;
    struct plan plan;
    char why[256];
    int err = 0;

    err = plan_build(&plan, c, PLAN_LOAD, why, sizeof(why));
    if (err < 0) {
        log_msg(r->log, LOG_ERROR, "load_error", "%s",
                err == -EINVAL ? why : "out of memory while planning the load");
        return err;
    }
    size_t n = plan.n;

    struct engine_opts o = {
        .stages = c->load.stages,
        .nstages = c->load.nstages,
        .plan = &plan,
        .token = r->auth ? auth_token : NULL,
        .token_ud = r->auth,
        .unauthorized = r->auth ? unauthorized_cb : NULL,
        .graceful_ramp_down = c->load.graceful_ramp_down,
        .request_timeout = c->load.request_timeout,
        .threads = c->load.threads,
        .scenario = "load",
        .ca_file = c->ca_file,
        .new_registry = new_registry_cb,
        .registry_ud = r,
    };
    struct watch w = {
        .r = r,
        .stages = c->load.stages,
        .nstages = c->load.nstages,
        .bar = !c->quiet && isatty(STDERR_FILENO),
    };
    w.e = engine_new(&o, &err);
    if (!w.e) {
        log_msg(r->log, LOG_ERROR, "load_error", "cannot prepare the load engine: %s",
                strerror(-err));
        plan_clear(&plan);
        return err;
    }
    w.total = engine_duration(w.e);
    w.vus_max = engine_vus_max(w.e);
    if (!(w.gauges = run_new_source(r, &w.glock))) {
        log_msg(r->log, LOG_ERROR, "load_error",
                "cannot register the vus gauges: out of memory or too many threads");
        engine_free(w.e);
        plan_clear(&plan);
        return -ENOMEM;
    }
    set_gauge(&w, M_VUS_MAX, w.vus_max);

    cJSON *ev = log_begin(r->log, "load_start");
    char dur[32];
    cJSON_AddNumberToObject(ev, "vus_max", w.vus_max);
    cJSON_AddStringToObject(ev, "duration", units_format_duration(w.total, dur, sizeof(dur)));
    cJSON_AddNumberToObject(ev, "stages", (double)w.nstages);
    cJSON_AddNumberToObject(ev, "journeys", (double)n);
    cJSON_AddNumberToObject(ev, "threads", engine_threads(w.e));
    log_emit(r->log, LOG_INFO, ev);

    char sat_source[96];
    double capacity = sat_probe_capacity(engine_threads(w.e), sat_source, sizeof(sat_source));
    w.start = units_now_mono();
    sat_init(&w.sat, capacity, engine_threads(w.e), (struct sat_point){w.start, sat_probe_demand(), 0});
    if ((err = engine_start(w.e, w.start)) < 0) {
        log_msg(r->log, LOG_ERROR, "load_error", "cannot start the load engine: %s",
                strerror(-err));
        engine_free(w.e);
        plan_clear(&plan);
        return err;
    }
    watch(&w);
    sat_finish(&w.sat);
    sat_result(&w.sat, sat_source, &r->saturation);
    log_saturation(r);
    engine_join(w.e);
    set_gauge(&w, M_VUS, 0); /* every VU has stopped, whatever the last sample said */
    log_progress(&w, units_now_mono(), true);
    engine_free(w.e);
    plan_clear(&plan);
    return 0;
}
