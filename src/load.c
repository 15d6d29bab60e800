/*
 * load: the load phase. The engine's workers run every scenario's
 * iterations; this thread watches them: the vus gauges, each open-model
 * scenario's achieved rate, abortOnFail checks once a second, "stage" and
 * "scenario" events, a progress line every few seconds and the live bar on a
 * TTY.
 */
#include "syncgate/load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syncgate/auth.h"
#include "syncgate/engine.h"
#include "syncgate/executor.h"
#include "syncgate/plan.h"
#include "syncgate/sched.h"
#include "syncgate/split.h"
#include "syncgate/units.h"

#define TICK (100 * USEC_PER_MSEC)
#define ABORT_EVERY USEC_PER_SEC
#define PROGRESS_EVERY (5 * USEC_PER_SEC)
#define BAR_WIDTH 24

/* One scenario as the watcher follows it. */
struct wsc {
    const struct scenario *sc;
    size_t stage_logged; /* ramping-vus: stages [0, stage_logged) have had their event */
    bool started, ended;
    struct series *achieved; /* open model: the achieved_rate gauge */
};

struct watch {
    struct run *r;
    struct engine *e;
    struct wsc *sc;
    size_t nsc;
    int64_t start, total;
    int vus_max;
    struct metrics *gauges;
    pthread_mutex_t *glock;
    bool bar; /* live bar on stderr */
    bool start_told; /* a distributed run: fleet_start logged */
    bool bar_shown;
    struct engine_stats last_progress, last_bar;
    int64_t last_progress_at, last_bar_at;
    double bar_rate;
    struct sat_watch sat;
    unsigned instance, instances; /* this process's slice of the run (split.h) */
};

static struct metrics *new_registry_cb(void *ud, pthread_mutex_t **lock)
{
    return run_new_source(ud, lock);
}

static void unauthorized_cb(void *ud)
{
    auth_unauthorized(ud);
}

/* Each engine thread registers a source, as do the gauges and the smoke phase. */
_Static_assert(ENGINE_MAX_THREADS + 2 <= RUN_MAX_SOURCES, "RUN_MAX_SOURCES too small for the engine");

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

/* Stage and scenario events up to engine time t. */
static void log_scenarios(struct watch *w, int64_t t)
{
    for (size_t i = 0; i < w->nsc; i++) {
        struct wsc *s = &w->sc[i];
        const struct scenario *sc = s->sc;
        int64_t st = t - sc->start_time;
        char dur[32];
        if (st < 0)
            continue;
        if (!s->started && (w->nsc > 1 || sc->start_time > 0)) {
            cJSON *ev = log_begin(w->r->log, "scenario_start");
            cJSON_AddStringToObject(ev, "scenario", sc->name);
            cJSON_AddStringToObject(ev, "executor", executor_names[sc->executor]);
            cJSON_AddNumberToObject(ev, "elapsed_s", (double)t / USEC_PER_SEC);
            bar_clear(w);
            log_emit(w->r->log, LOG_INFO, ev);
        }
        s->started = true;
        if (sc->executor == EX_RAMPING_VUS) {
            size_t cur = sched_stage_at(sc->stages, sc->nstages, st);
            while (s->stage_logged < sc->nstages && s->stage_logged <= cur) {
                size_t k = s->stage_logged++;
                cJSON *ev = log_begin(w->r->log, "stage");
                cJSON_AddStringToObject(ev, "scenario", sc->name);
                cJSON_AddNumberToObject(ev, "stage", (double)(k + 1));
                cJSON_AddNumberToObject(ev, "stages", (double)sc->nstages);
                cJSON_AddStringToObject(ev, "duration", units_format_duration(
                                                            sc->stages[k].duration, dur,
                                                            sizeof(dur)));
                cJSON_AddNumberToObject(ev, "from", k ? sc->stages[k - 1].target : sc->start_vus);
                cJSON_AddNumberToObject(ev, "target", sc->stages[k].target);
                cJSON_AddNumberToObject(ev, "elapsed_s", (double)t / USEC_PER_SEC);
                bar_clear(w);
                log_emit(w->r->log, LOG_INFO, ev);
            }
        }
        if (!s->ended && st >= ex_length(sc) && (w->nsc > 1 || ex_open(sc))) {
            s->ended = true;
            cJSON *ev = log_begin(w->r->log, "scenario_end");
            cJSON_AddStringToObject(ev, "scenario", sc->name);
            cJSON_AddNumberToObject(ev, "elapsed_s", (double)t / USEC_PER_SEC);
            if (ex_open(sc)) {
                uint64_t started, dropped;
                engine_scenario_stats(w->e, i, &started, &dropped);
                cJSON_AddNumberToObject(ev, "iterations_due",
                                        (double)split_due(ex_due_by(sc, st), w->instance,
                                                          w->instances));
                cJSON_AddNumberToObject(ev, "iterations_started", (double)started);
                cJSON_AddNumberToObject(ev, "dropped_iterations", (double)dropped);
            }
            bar_clear(w);
            log_emit(w->r->log, LOG_INFO, ev);
        }
    }
}

/* Each open-model scenario's achieved rate: iterations started over iterations due (this
 * instance's: those it was dealt). */
static void achieved_rates(struct watch *w, int64_t t)
{
    for (size_t i = 0; i < w->nsc; i++) {
        struct wsc *s = &w->sc[i];
        if (!s->achieved || t < s->sc->start_time)
            continue;
        uint64_t started, dropped;
        uint64_t due = split_due(ex_due_by(s->sc, t - s->sc->start_time), w->instance,
                                 w->instances);
        engine_scenario_stats(w->e, i, &started, &dropped);
        if (i < CONFIG_MAX_SCENARIOS) {
            atomic_store(&w->r->started[i], started);
            atomic_store(&w->r->due[i], due);
        }
        pthread_mutex_lock(w->glock);
        series_set(s->achieved, due ? (double)started / (double)due : 1.0);
        pthread_mutex_unlock(w->glock);
    }
}

/* The ramping-vus shorthand's stage at engine time t (1-based), 0 for anything else. */
static size_t stage_number(const struct watch *w, int64_t t)
{
    if (w->nsc != 1 || w->sc[0].sc->executor != EX_RAMPING_VUS)
        return 0;
    const struct scenario *sc = w->sc[0].sc;
    size_t stage = sched_stage_at(sc->stages, sc->nstages, t - sc->start_time);
    return stage < sc->nstages ? stage + 1 : sc->nstages;
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
    if (stage_number(w, t)) {
        cJSON_AddNumberToObject(ev, "stage", (double)stage_number(w, t));
        cJSON_AddNumberToObject(ev, "stages", (double)w->sc[0].sc->nstages);
    } else {
        cJSON_AddNumberToObject(ev, "scenarios", (double)w->nsc);
    }
    cJSON_AddNumberToObject(ev, "requests", (double)s.requests);
    cJSON_AddNumberToObject(ev, "failures", (double)s.failures);
    cJSON_AddNumberToObject(ev, "iterations", (double)s.iterations);
    if (s.dropped)
        cJSON_AddNumberToObject(ev, "dropped_iterations", (double)s.dropped);
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
    char el[32], tot[32], bar[BAR_WIDTH + 1], where[48];
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
    if (stage_number(w, t))
        snprintf(where, sizeof(where), "stage %zu/%zu", stage_number(w, t),
                 w->sc[0].sc->nstages);
    else
        snprintf(where, sizeof(where), "%zu scenarios", w->nsc);
    fprintf(stderr, "\r load [%s] %3d%% %s/%s  vus %d/%d  %s  %.0f req/s  %llu failed", bar,
            (int)(frac * 100), el, tot, s.vus, w->vus_max, where, w->bar_rate,
            (unsigned long long)s.failures);
    if (s.dropped)
        fprintf(stderr, "  %llu dropped", (unsigned long long)s.dropped);
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
    if (run_snapshot(w->r, snap) == 0 && run_check_aborts(w->r, ts, snap, false, now - w->start))
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

/* A distributed run: how well the instances started together (T0 on this clock, how late
 * the first engine thread turned after it), once the first turn came. */
static void log_fleet_start(struct watch *w)
{
    int64_t first = engine_first_turn(w->e);
    if (!w->r->load_at || w->start_told || (!first && engine_threads(w->e) > 0))
        return;
    w->start_told = true;
    cJSON *ev = log_begin(w->r->log, "fleet_start");
    cJSON_AddNumberToObject(ev, "instance", w->instance);
    cJSON_AddNumberToObject(ev, "t0_mono_us", (double)w->start);
    cJSON_AddNumberToObject(ev, "late_us", (double)(first ? first - w->start : 0));
    log_emit(w->r->log, LOG_INFO, ev);
}

/* Watch the workers until they are done; returns when the phase is over. */
static void watch(struct watch *w)
{
    int64_t next_tick = w->start + TICK, next_abort = w->start + ABORT_EVERY;
    int64_t next_progress = w->start + PROGRESS_EVERY, end = w->start + w->total;
    if (engine_threads(w->e) == 0) {
        /* no VU here (an instance whose share is none): nothing can be in flight, so the
         * schedule ends with the scenarios' lengths, not their graceful stops */
        int64_t last = 0;
        for (size_t i = 0; i < w->nsc; i++) {
            int64_t stop = w->sc[i].sc->start_time + ex_length(w->sc[i].sc);
            last = stop > last ? stop : last;
        }
        end = w->start + last;
    }
    bool stopping = false;

    w->last_progress_at = w->last_bar_at = w->start;
    log_scenarios(w, 0);
    for (;;) {
        /* with no VU at all there is no worker to wait for: keep the schedule */
        bool done = engine_wait(w->e, next_tick < end ? next_tick : end);
        int64_t now = units_now_mono();
        log_fleet_start(w);
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
            log_scenarios(w, now - w->start);
            achieved_rates(w, now - w->start);
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

/* A distributed run starts at T0 (r->load_at) on every instance: sleep until then, a signal
 * or a stop cutting it short. Returns true when T0 came. */
static bool wait_start(struct run *r)
{
    for (;;) {
        if (run_should_stop(r))
            return false;
        int64_t left = r->load_at - units_now_mono();
        if (left <= 0)
            return true;
        /* the last stretch at once, to the microsecond: this is the start skew */
        int64_t step = left > 50 * USEC_PER_MSEC ? left - 20 * USEC_PER_MSEC : left;
        if (step == left) {
            struct timespec ts = {.tv_sec = r->load_at / USEC_PER_SEC,
                                  .tv_nsec = (long)(r->load_at % USEC_PER_SEC) * 1000};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else {
            struct timespec ts = {0, (long)(step < 50 * USEC_PER_MSEC ? step : 50 * USEC_PER_MSEC) * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

static void free_plans(struct plan *plans, size_t n)
{
    for (size_t i = 0; plans && i < n; i++)
        plan_clear(&plans[i]);
    free(plans);
}

int load_run(struct run *r)
{
    const struct config *c = r->cfg;
    size_t n = c->load.nscenarios;
    struct plan *plans = calloc(n ? n : 1, sizeof(*plans));
    struct engine_scenario *es = calloc(n ? n : 1, sizeof(*es));
    struct wsc *wsc = calloc(n ? n : 1, sizeof(*wsc));
    char why[256];
    int err = 0;

    if (!plans || !es || !wsc || !n) {
        log_msg(r->log, LOG_ERROR, "load_error", "%s", n ? "out of memory" : "no scenario");
        free(plans), free(es), free(wsc);
        return n ? -ENOMEM : -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const struct scenario *sc = &c->load.scenarios[i];
        err = plan_build(&plans[i], c, PLAN_LOAD, sc->journey, why, sizeof(why));
        if (err < 0) {
            log_msg(r->log, LOG_ERROR, "load_error", "scenario %s: %s", sc->name,
                    err == -EINVAL ? why : "out of memory while planning the load");
            free_plans(plans, i);
            free(es), free(wsc);
            return err;
        }
        es[i] = (struct engine_scenario){.sc = sc, .plan = &plans[i]};
        wsc[i].sc = sc;
    }

    struct engine_opts o = {
        .scenarios = es,
        .nscenarios = n,
        .token = r->auth ? auth_token : NULL,
        .token_ud = r->auth,
        .unauthorized = r->auth ? unauthorized_cb : NULL,
        .request_timeout = c->load.request_timeout,
        .threads = c->load.threads,
        .ca_file = c->ca_file,
        .new_registry = new_registry_cb,
        .registry_ud = r,
        .instance = (unsigned)c->scaleout.index,
        .instances = (unsigned)c->scaleout.instances,
    };
    struct watch w = {
        .r = r,
        .sc = wsc,
        .nsc = n,
        .bar = !c->quiet && isatty(STDERR_FILENO),
        .instance = o.instance,
        .instances = o.instances,
    };
    w.e = engine_new(&o, &err);
    if (!w.e) {
        log_msg(r->log, LOG_ERROR, "load_error", "cannot prepare the load engine: %s",
                strerror(-err));
        goto out;
    }
    w.total = engine_duration(w.e);
    w.vus_max = engine_vus_max(w.e);
    if (!(w.gauges = run_new_source(r, &w.glock))) {
        log_msg(r->log, LOG_ERROR, "load_error",
                "cannot register the vus gauges: out of memory or too many threads");
        err = -ENOMEM;
        goto out;
    }
    set_gauge(&w, M_VUS_MAX, w.vus_max);
    pthread_mutex_lock(w.glock);
    for (size_t i = 0; i < n; i++)
        if (ex_open(wsc[i].sc)) {
            struct tagset t = {0};
            tagset_set(&t, "scenario", wsc[i].sc->name);
            wsc[i].achieved = metrics_series(w.gauges, M_ACHIEVED_RATE, &t);
        }
    pthread_mutex_unlock(w.glock);

    cJSON *ev = log_begin(r->log, "load_start");
    char dur[32];
    cJSON_AddNumberToObject(ev, "vus_max", w.vus_max);
    cJSON_AddStringToObject(ev, "duration", units_format_duration(w.total, dur, sizeof(dur)));
    cJSON *sj = cJSON_AddArrayToObject(ev, "scenarios");
    for (size_t i = 0; i < n; i++) {
        cJSON *o1 = cJSON_CreateObject();
        cJSON_AddStringToObject(o1, "name", wsc[i].sc->name);
        cJSON_AddStringToObject(o1, "executor", executor_names[wsc[i].sc->executor]);
        cJSON_AddNumberToObject(o1, "journeys", (double)plans[i].n);
        cJSON_AddItemToArray(sj, o1);
    }
    cJSON_AddNumberToObject(ev, "threads", engine_threads(w.e));
    if (w.instances > 1) {
        cJSON_AddNumberToObject(ev, "instance", w.instance);
        cJSON_AddNumberToObject(ev, "instances", w.instances);
    }
    log_emit(r->log, LOG_INFO, ev);

    char sat_source[96];
    double capacity = sat_probe_capacity(engine_threads(w.e), sat_source, sizeof(sat_source));
    /* a distributed run starts at T0 on every instance (r->load_at): the workers are made
     * now and wait for it themselves */
    w.start = r->load_at ? r->load_at : units_now_mono();
    if ((err = engine_start(w.e, w.start)) < 0) {
        log_msg(r->log, LOG_ERROR, "load_error", "cannot start the load engine: %s",
                strerror(-err));
        goto out;
    }
    if (r->load_at && !wait_start(r)) {
        engine_stop(w.e); /* stopped before the start: nothing ran */
        engine_join(w.e);
        err = 0;
        goto out;
    }
    sat_init(&w.sat, capacity, engine_threads(w.e), (struct sat_point){w.start, sat_probe_demand(), 0});
    watch(&w);
    log_fleet_start(&w);
    sat_finish(&w.sat);
    sat_result(&w.sat, sat_source, &r->saturation);
    log_saturation(r);
    engine_join(w.e);
    achieved_rates(&w, units_now_mono() - w.start);
    /* vus keeps the last active count it sampled, as k6's summary shows it */
    log_progress(&w, units_now_mono(), true);
    err = 0;
out:
    engine_free(w.e);
    free_plans(plans, n);
    free(es);
    free(wsc);
    return err;
}
