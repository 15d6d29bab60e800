/*
 * engine_vu: what the engine's VUs do and when. A VU runs iterations of its
 * scenario's journeys (steps sent one after another, each response recorded
 * and judged); the scenario's executor says when: closed-model executors keep
 * a number of VUs looping, open-model ones start each iteration at its due
 * time on a free VU or count it dropped. See engine.h and executor.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "syncgate/executor.h"
#include "syncgate/sched.h"
#include "syncgate/split.h"
#include "syncgate/units.h"

void publish_vus(struct worker *w)
{
    atomic_store_explicit(&w->live_vus, (int)w->live, memory_order_relaxed);
}

static struct escen *vu_escen(const struct worker *w, const struct vu *v)
{
    return &w->e->scen[v->scen];
}

static struct wscen *vu_wscen(const struct worker *w, const struct vu *v)
{
    return &w->scen[v->scen];
}

static size_t step_index(const struct escen *es, const struct vu *v)
{
    return es->first[v->j.journey] + v->j.step;
}

/* ---- requests ----------------------------------------------------------------- */

/* Method and body of the next request; options are set only when they change. */
static void vu_set_request(struct vu *v, const char *method, const struct jreq *r)
{
    CURL *c = v->easy;
    bool body = r->body != NULL;
    if (v->method == method && !body && !v->body_set)
        return;
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body || !strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? r->body : "");
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    v->method = method;
    v->body_set = body || !strcmp(method, "POST");
}

static void set_busy(struct worker *w, struct vu *v, bool busy)
{
    struct wscen *ws = vu_wscen(w, v);
    if (busy && v->state != VU_BUSY)
        ws->busy++;
    else if (!busy && v->state == VU_BUSY)
        ws->busy--;
}

static void vu_end_iteration(struct worker *w, struct vu *v, int64_t now);

/* The current step could not be sent: count it and end the iteration here. */
static void vu_skip(struct worker *w, struct vu *v, enum jvu_outcome o, int64_t now)
{
    struct escen *es = vu_escen(w, v);
    struct wstep *ws = &vu_wscen(w, v)->steps[step_index(es, v)];
    if (o == JVU_FAIL) {
        /* the request the step describes cannot exist: its checks fail */
        if (ws->status)
            series_rate(ws->status, false);
        if (ws->latency)
            series_rate(ws->latency, false);
        for (size_t i = 0; i < STEP_MAX_EXPECTS; i++)
            if (ws->expect[i])
                series_rate(ws->expect[i], false);
        for (size_t i = 0; i < JOURNEY_MAX_CAPTURES; i++)
            if (ws->capture[i])
                series_rate(ws->capture[i], false);
    }
    if (!ws->skipped) {
        /* made at the first skip: a journey that never skips has no such series */
        const struct plan_journey *pj = &es->ctx.plan->j[v->j.journey];
        struct tagset st = es->tags;
        tagset_set(&st, "group", pj->j->group);
        tagset_set(&st, "name", pj->steps[v->j.step].s->name);
        ws->skipped = metrics_series(w->m, M_JOURNEY_SKIPPED, &st);
    }
    if (ws->skipped)
        series_add(ws->skipped, 1);
    v->skipped = true;
    vu_end_iteration(w, v, now);
}

/* Send the VU's current step. Called under w->lock (a skip records). */
static void vu_step(struct worker *w, struct vu *v, int64_t now)
{
    struct escen *es = vu_escen(w, v);
    struct jreq r;
    char why[256];
    enum jvu_outcome o = jvu_prepare(&v->j, &es->ctx, &r, why, sizeof(why));
    if (o != JVU_SEND) {
        vu_skip(w, v, o, now);
        return;
    }
    const struct plan_step *ps = jvu_step(&v->j, &es->ctx);
    struct wstep *ws = &vu_wscen(w, v)->steps[step_index(es, v)];
    vu_set_request(v, ps->s->method, &r);
    if (r.static_url && ws->url) {
        curl_easy_setopt(v->easy, CURLOPT_CURLU, ws->url);
    } else {
        curl_easy_setopt(v->easy, CURLOPT_CURLU, NULL);
        curl_easy_setopt(v->easy, CURLOPT_URL, r.url);
    }
    curl_easy_setopt(v->easy, CURLOPT_HTTPHEADER, r.headers);
    v->cur_step = ps->s;
    v->keep_body = ps->s->wants_body;
    v->keep_headers = ps->s->wants_headers;
    if (v->keep_body || v->keep_headers)
        jvu_reset_response(&v->j);
    v->body = 0;
    v->head_done = false;
    set_busy(w, v, true);
    v->state = VU_BUSY;
    if (curl_multi_add_handle(vu_mh(w, v)->multi, v->easy) != CURLM_OK) {
        set_busy(w, v, false); /* cannot happen with a handle we removed ourselves */
        v->state = VU_IDLE;
    }
}

/* The VU has no iteration left to run (per-vu and shared iterations): it stops for good. */
static void vu_finish(struct worker *w, struct vu *v)
{
    struct wscen *ws = vu_wscen(w, v);
    v->finished = true;
    v->want = false;
    ws->finished++;
    w->live--;
    publish_vus(w);
}

/* Start a new iteration: the next journey, its first step. Called under w->lock. */
static void vu_iterate(struct worker *w, struct vu *v, int64_t now)
{
    struct escen *es = vu_escen(w, v);
    const struct scenario *sc = es->sc;
    if (sc->executor == EX_SHARED_ITERATIONS &&
        atomic_fetch_add_explicit(&es->claimed, 1, memory_order_relaxed) >= es->iterations) {
        vu_finish(w, v);
        return;
    }
    jvu_start(&v->j, &es->ctx);
    v->iter_start = now;
    v->skipped = false;
    vu_step(w, v, now);
}

void vu_abort(struct worker *w, struct vu *v)
{
    if (v->state == VU_BUSY) {
        bool open = vu_escen(w, v)->open;
        curl_multi_remove_handle(vu_mh(w, v)->multi, v->easy);
        set_busy(w, v, false);
        /* a deactivated VU finishing its iteration, or an open-model VU in one: done */
        if (!v->want || open) {
            w->live--;
            publish_vus(w);
        }
        if (open) {
            struct wscen *ws = vu_wscen(w, v);
            ws->idle[ws->nidle++] = v->slot;
            v->want = false;
        }
    }
    v->state = VU_IDLE;
}

static void record_iteration(struct worker *w, struct vu *v, int64_t now)
{
    struct wscen *ws = vu_wscen(w, v);
    struct series *it = v->skipped ? ws->iters_failed : ws->iters;
    if (it)
        series_add(it, 1);
    if (ws->iter_dur)
        series_trend(ws->iter_dur, now - v->iter_start);
    counter_inc(&w->iterations);
}

/* The journey ended (done or skipped): think, loop or stop. Called under w->lock. */
static void vu_end_iteration(struct worker *w, struct vu *v, int64_t now)
{
    struct escen *es = vu_escen(w, v);
    struct wscen *ws = vu_wscen(w, v);
    const struct plan_journey *pj = &es->ctx.plan->j[v->j.journey];
    struct series *gd = ws->group_dur[v->j.journey];
    if (gd)
        series_trend(gd, now - v->iter_start);
    bool was_busy = v->state == VU_BUSY;
    set_busy(w, v, false);
    v->state = VU_IDLE;
    v->iters_done++;
    if (es->open) {
        /* an arrival-rate iteration ends with its journey: the rate paces, not think time;
         * the VU goes back to the pool (counted live only while it runs an iteration) */
        record_iteration(w, v, now);
        v->want = false;
        w->live--;
        publish_vus(w);
        ws->idle[ws->nidle++] = v->slot;
        return;
    }
    if (es->sc->executor == EX_PER_VU_ITERATIONS && v->iters_done >= (uint32_t)es->sc->iterations) {
        record_iteration(w, v, now);
        if (v->want)
            vu_finish(w, v);
        else if (was_busy) {
            w->live--;
            publish_vus(w);
        }
        return;
    }
    if (!v->want) {
        /* ramped down or stopped: the iteration was let finish, and ends here */
        if (was_busy) {
            w->live--;
            publish_vus(w);
        }
        if (pj->think_time <= 0)
            record_iteration(w, v, now);
        return;
    }
    if (pj->think_time > 0) {
        v->state = VU_THINKING;
        v->until = now + pj->think_time;
        w->queue[(w->qhead + w->qlen++) % w->nslots] = v->slot;
        return;
    }
    record_iteration(w, v, now);
    vu_iterate(w, v, now);
}

void vu_done(struct worker *w, struct mh *mh, CURL *easy, CURLcode rc, int64_t now)
{
    struct engine *e = w->e;
    struct vu *v = NULL;
    struct http_result res;
    struct jvu_verdict jv;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&v);
    http_result_from_curl(&res, easy, rc, v->head_done);
    curl_multi_remove_handle(mh->multi, easy);

    struct escen *es = vu_escen(w, v);
    size_t si = step_index(es, v);
    struct wstep *ws = &vu_wscen(w, v)->steps[si];
    const struct step *st = v->cur_step;
    bool got = res.error == HTTP_ERR_NONE;
    bool expected = got && step_status_ok(st, res.status);
    http_record_judged(w->m, &ws->cache, &es->steps[si].tags, &es->steps[si].statuses, &res,
                       expected);
    /* coordinated-omission-free: from when the iteration was due, not when it started */
    if (ws->scheduled && v->lateness >= 0 && res.status)
        series_trend(ws->scheduled, res.duration + v->lateness);
    counter_inc(&w->requests);
    if (!expected)
        counter_inc(&w->failures);
    if (got && res.status == 401 && e->o.unauthorized &&
        es->ctx.plan->j[v->j.journey].j->uses_auth)
        e->o.unauthorized(e->o.token_ud);

    bool more = jvu_judge(&v->j, &es->ctx, got, res.status, res.duration, &jv);
    if (ws->status)
        series_rate(ws->status, jv.status);
    if (ws->latency)
        series_rate(ws->latency, jv.latency);
    for (size_t i = 0; i < jv.nexpects; i++)
        if (ws->expect[i])
            series_rate(ws->expect[i], jv.expect[i]);
    for (size_t i = 0; i < jv.ncaptures; i++)
        if (ws->capture[i])
            series_rate(ws->capture[i], jv.capture[i]);

    if (!v->large_buffer && res.bytes_received > RECV_BUFFER_SMALL) {
        v->large_buffer = true;
        curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER_LARGE);
    }
    if (more) {
        set_busy(w, v, false);
        v->state = VU_IDLE;
        vu_step(w, v, now); /* a deactivated VU finishes its journey too */
        return;
    }
    vu_end_iteration(w, v, now);
}

void worker_think(struct worker *w, int64_t now)
{
    bool locked = false;
    while (w->qlen) {
        struct vu *v = &w->vus[w->queue[w->qhead]];
        if (v->until > now)
            break;
        w->qhead = (w->qhead + 1) % w->nslots;
        w->qlen--;
        v->state = VU_IDLE;
        if (!v->want)
            continue; /* ramped down while thinking: the iteration is interrupted */
        if (!locked) {
            pthread_mutex_lock(w->lock);
            locked = true;
        }
        record_iteration(w, v, now);
        vu_iterate(w, v, now);
    }
    if (locked)
        pthread_mutex_unlock(w->lock);
}

/* ---- executors ---------------------------------------------------------------- */

/* Deactivate v: a request in flight may finish its iteration until abort_at. */
static void vu_deactivate(struct worker *w, struct vu *v, int64_t abort_at)
{
    v->want = false;
    if (v->state == VU_BUSY) {
        v->until = abort_at;
        w->abort_check = min64(w->abort_check, abort_at);
    } else {
        w->live--; /* idle or thinking: it stops now (a think is cut short) */
    }
}

/* Closed model: make [first, first + want) of the scenario's VUs active. */
static void closed_target(struct worker *w, struct wscen *ws, const struct escen *es,
                          uint32_t want, int64_t now, int64_t abort_at, bool *locked)
{
    if (want > ws->n)
        want = ws->n;
    while (ws->active < want) {
        struct vu *v = &w->vus[ws->first + ws->active];
        if (v->finished) {
            ws->active++;
            continue;
        }
        if (!v->easy && vu_make(w, v) < 0)
            break; /* out of memory: run with the VUs we have */
        v->want = true;
        ws->active++;
        if (v->state == VU_BUSY)
            continue; /* was finishing its iteration: it just keeps looping */
        w->live++;
        if (v->state == VU_IDLE) {
            if (!*locked) {
                pthread_mutex_lock(w->lock);
                *locked = true;
            }
            vu_iterate(w, v, now);
        }
    }
    while (ws->active > want) {
        struct vu *v = &w->vus[ws->first + --ws->active];
        if (v->want)
            vu_deactivate(w, v, abort_at);
    }
    (void)es;
}

/* Open model: start every iteration due by now on a free VU, or count it dropped. */
static void open_dispatch(struct worker *w, struct wscen *ws, const struct escen *es, int64_t now,
                          bool *locked)
{
    const struct engine *e = w->e;
    while (ws->next_due <= now) {
        int64_t due = ws->next_due;
        int64_t lag = now - due;
        if (lag > atomic_load_explicit(&w->lag_max, memory_order_relaxed))
            atomic_store_explicit(&w->lag_max, lag, memory_order_relaxed);
        if (!*locked) {
            pthread_mutex_lock(w->lock);
            *locked = true;
        }
        struct vu *v = NULL;
        while (ws->nidle && !v) {
            struct vu *c = &w->vus[ws->idle[--ws->nidle]];
            if (c->easy || vu_make(w, c) == 0)
                v = c;
        }
        if (v) {
            v->want = true;
            v->lateness = lag;
            w->live++;
            counter_inc(&ws->started);
            if (ws->lateness)
                series_trend(ws->lateness, lag);
            vu_iterate(w, v, now);
        } else {
            counter_inc(&ws->dropped);
            counter_inc(&w->dropped);
            if (ws->dropped_s)
                series_add(ws->dropped_s, 1);
        }
        ws->next_k += split_worker_step(e->instances, (unsigned)es->workers);
        int64_t d = ex_due(es->sc, ws->next_k);
        ws->next_due = d < 0 ? INT64_MAX : e->start + es->start + d;
    }
    publish_vus(w);
}

void worker_executors(struct worker *w, int64_t now)
{
    const struct engine *e = w->e;
    bool locked = false;
    int64_t t = now - e->start;
    for (size_t i = 0; i < e->nscen; i++) {
        const struct escen *es = &e->scen[i];
        struct wscen *ws = &w->scen[i];
        if (ws->stopped || t < es->start)
            continue;
        if (es->open) {
            open_dispatch(w, ws, es, now, &locked);
        } else if (t >= ws->next_sched) {
            int64_t st = t - es->start;
            int vus = split_vus_at(es->sc, e->instance, e->instances, st);
            uint32_t share = (uint32_t)sched_thread_share(vus, w->index, e->nthreads);
            closed_target(w, ws, es, share, now, now + es->sc->graceful_ramp_down, &locked);
            int64_t next = ex_next_change(es->sc, st);
            ws->next_sched = next == INT64_MAX ? INT64_MAX : es->start + next;
        }
        if (t >= es->stop) {
            /* its length is over: nothing new; iterations in flight get graceful_stop */
            ws->stopped = true;
            ws->next_due = INT64_MAX;
            ws->next_sched = INT64_MAX;
            for (uint32_t k = 0; k < ws->n; k++) {
                struct vu *v = &w->vus[ws->first + k];
                if (v->want)
                    vu_deactivate(w, v, e->start + es->end);
            }
            ws->active = 0;
        }
    }
    if (locked)
        pthread_mutex_unlock(w->lock);
    publish_vus(w);
}

void worker_abort_bound(struct worker *w, int64_t now)
{
    int64_t next = INT64_MAX;
    for (uint32_t i = 0; i < w->nslots; i++) {
        struct vu *v = &w->vus[i];
        if (v->want || v->state != VU_BUSY)
            continue;
        if (now >= v->until)
            vu_abort(w, v);
        else
            next = min64(next, v->until);
    }
    w->abort_check = next;
    publish_vus(w);
}

int64_t worker_next_executor_wake(const struct worker *w)
{
    const struct engine *e = w->e;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < e->nscen; i++) {
        const struct escen *es = &e->scen[i];
        const struct wscen *ws = &w->scen[i];
        if (ws->stopped)
            continue;
        next = min64(next, e->start + es->stop);
        if (es->open)
            next = min64(next, ws->next_due);
        else if (ws->next_sched != INT64_MAX)
            next = min64(next, e->start + ws->next_sched);
    }
    return next;
}

bool worker_all_done(const struct worker *w, int64_t now)
{
    const struct engine *e = w->e;
    for (size_t i = 0; i < e->nscen; i++) {
        const struct escen *es = &e->scen[i];
        const struct wscen *ws = &w->scen[i];
        bool out_of_work = ws->n == 0 || ws->finished == ws->n;
        if ((!ws->stopped && !out_of_work) || ws->busy || now - e->start < es->start)
            return false;
    }
    return true;
}

/* ---- per-worker state ------------------------------------------------------------ */

static void step_series(struct worker *w, const struct estep *es, const struct step *st,
                        struct wstep *ws, bool open)
{
    struct tagset t = es->ctags;
    tagset_set(&t, "check", st->status_check);
    ws->status = metrics_series(w->m, M_CHECKS, &t);
    if (st->latency_check) {
        tagset_set(&t, "check", st->latency_check);
        ws->latency = metrics_series(w->m, M_CHECKS, &t);
    }
    for (size_t i = 0; i < st->nexpects; i++) {
        tagset_set(&t, "check", st->expects[i].check);
        ws->expect[i] = metrics_series(w->m, M_CHECKS, &t);
    }
    for (size_t i = 0; i < st->ncaptures; i++) {
        tagset_set(&t, "check", st->captures[i].check);
        ws->capture[i] = metrics_series(w->m, M_CHECKS, &t);
    }
    if (open)
        ws->scheduled = metrics_series(w->m, M_HTTP_REQ_DURATION_SCHEDULED, &es->tags);
}

int worker_scen_init(struct engine *e, struct worker *w)
{
    uint32_t next = 0;
    w->scen = calloc(e->nscen, sizeof(*w->scen));
    if (!w->scen)
        return -ENOMEM;
    for (size_t i = 0; i < e->nscen; i++) {
        struct escen *es = &e->scen[i];
        struct wscen *ws = &w->scen[i];
        const struct plan *p = es->ctx.plan;
        ws->first = next;
        ws->n = (uint32_t)sched_thread_share(es->slots, w->index, e->nthreads);
        if (es->open && w->index >= es->workers)
            ws->n = 0;
        next += ws->n;
        ws->next_due = INT64_MAX;
        ws->next_sched = es->start; /* closed: the first look is at its start */
        ws->steps = calloc(es->nsteps ? es->nsteps : 1, sizeof(*ws->steps));
        ws->group_dur = calloc(p->n ? p->n : 1, sizeof(*ws->group_dur));
        ws->idle = calloc(ws->n ? ws->n : 1, sizeof(*ws->idle));
        if (!ws->steps || !ws->group_dur || !ws->idle)
            return -ENOMEM;
        if (es->open) {
            ws->next_k = split_worker_first(e->instance, e->instances, (unsigned)w->index);
            int64_t d = ws->n ? ex_due(es->sc, ws->next_k) : -1;
            ws->next_due = d < 0 ? INT64_MAX : d; /* relative until engine_start */
        }
        for (size_t j = 0; j < p->n; j++)
            for (size_t k = 0; k < p->j[j].j->nsteps; k++) {
                const struct plan_step *ps = &p->j[j].steps[k];
                struct wstep *st = &ws->steps[es->first[j] + k];
                if (!ps->url)
                    continue;
                if (!(st->url = curl_url()))
                    return -ENOMEM;
                if (curl_url_set(st->url, CURLUPART_URL, ps->url, 0) != CURLUE_OK)
                    return -EINVAL;
            }
    }
    /* VU slots: a scenario's local slot k is this instance's VU m = k * nthreads + index,
     * which is VU number slot0 + instance + m * instances of the whole run (split.h) */
    for (size_t i = 0; i < e->nscen; i++) {
        struct escen *es = &e->scen[i];
        struct wscen *ws = &w->scen[i];
        for (uint32_t k = 0; k < ws->n; k++) {
            struct vu *v = &w->vus[ws->first + k];
            uint32_t m = k * (uint32_t)e->nthreads + (uint32_t)w->index;
            uint32_t number = es->slot0 + e->instance + m * e->instances;
            v->slot = ws->first + k;
            v->scen = (uint16_t)i;
            v->lateness = -1;
            if (jvu_init(&v->j, number + 1, es->ctx.plan, (uint64_t)units_now_wall()) < 0)
                return -ENOMEM;
            if (es->open)
                ws->idle[ws->nidle++] = ws->first + ws->n - 1 - k; /* lowest slots first */
        }
    }
    /* the registry may already be merged by others (remote write) */
    pthread_mutex_lock(w->lock);
    for (size_t i = 0; i < e->nscen; i++) {
        struct escen *es = &e->scen[i];
        struct wscen *ws = &w->scen[i];
        const struct plan *p = es->ctx.plan;
        for (size_t j = 0; j < p->n; j++) {
            const struct journey *jr = p->j[j].j;
            for (size_t k = 0; k < jr->nsteps; k++) {
                size_t si = es->first[j] + k;
                step_series(w, &es->steps[si], &jr->steps[k], &ws->steps[si], es->open);
            }
            if (*jr->group) {
                struct tagset gt = es->tags;
                tagset_set(&gt, "group", jr->group);
                ws->group_dur[j] = metrics_series(w->m, M_GROUP_DURATION, &gt);
            }
        }
        struct tagset t = es->tags;
        ws->iters = metrics_series(w->m, M_ITERATIONS, &t);
        ws->iter_dur = metrics_series(w->m, M_ITERATION_DURATION, &t);
        if (es->open) {
            ws->lateness = metrics_series(w->m, M_ITERATION_LATENESS, &t);
            ws->dropped_s = metrics_series(w->m, M_DROPPED_ITERATIONS, &t);
        }
        tagset_set(&t, "failed", "true");
        ws->iters_failed = metrics_series(w->m, M_ITERATIONS, &t);
    }
    pthread_mutex_unlock(w->lock);
    return 0;
}

void worker_scen_clear(struct engine *e, struct worker *w)
{
    for (size_t i = 0; w->scen && i < e->nscen; i++) {
        struct wscen *ws = &w->scen[i];
        for (size_t k = 0; ws->steps && k < e->scen[i].nsteps; k++)
            curl_url_cleanup(ws->steps[k].url);
        free(ws->steps);
        free(ws->group_dur);
        free(ws->idle);
    }
    free(w->scen);
    w->scen = NULL;
}
