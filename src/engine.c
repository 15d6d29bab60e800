/*
 * engine: worker threads, each an epoll loop driving several libcurl multi
 * handles with curl_multi_socket_action. See engine.h for the model.
 */
#include "syncgate/engine.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "syncgate/http.h"
#include "syncgate/jvu.h"
#include "syncgate/sched.h"
#include "syncgate/units.h"

#define EVENT_BATCH 256
/* Longest epoll sleep: a safety net, every real deadline is computed. */
#define MAX_SLEEP (250 * USEC_PER_MSEC)
/* Lateness not counted as lag: epoll's millisecond rounding and scheduler noise. */
#define ENGINE_LAG_SLACK (2 * USEC_PER_MSEC)
/* Sockets are looked up by fd; never index further than this. */
#define MAX_FDS (1 << 20)
/*
 * libcurl's receive buffer is 16 KiB per handle by default, the biggest part
 * of a VU's memory. Health responses fit in 1 KiB, so every VU starts there
 * and a VU that receives a bigger response gets the default size back once,
 * to keep the syscalls per response few.
 */
#define RECV_BUFFER_SMALL 1024
#define RECV_BUFFER_LARGE (16 * 1024)

enum vu_state { VU_IDLE, VU_BUSY, VU_THINKING };

struct vu {
    CURL *easy;
    int64_t iter_start;  /* when the current iteration started */
    int64_t until;       /* think: when it ends; busy and deactivated: when deactivated */
    uint64_t body;       /* response body bytes of the current request */
    uint32_t slot;       /* local slot index in its worker */
    const char *method;  /* method set on the easy handle (a step's string), NULL: none */
    uint8_t state;       /* enum vu_state */
    bool want;           /* active per the schedule */
    bool large_buffer;   /* switched to RECV_BUFFER_LARGE */
    bool keep_body;      /* the current step reads the response body */
    bool keep_headers;   /* the current step reads response headers */
    bool body_set;       /* a request body is set on the handle */
    bool skipped;        /* the iteration ended early: a step could not be sent */
    const struct step *cur_step; /* the step in flight */
    struct jvu j;        /* the journey state */
};

/* One multi handle and its pending timeout. */
struct mh {
    CURLM *multi;
    struct worker *w;
    int64_t deadline; /* usec (mono); -1: none */
    bool dirty;       /* socket_action was called: messages may wait */
};

/* What the epoll set and libcurl each think of one fd. */
struct fdent {
    uint32_t registered; /* events registered in epoll, 0: not registered */
    uint32_t wanted;     /* what libcurl currently wants, 0 after CURL_POLL_REMOVE */
    uint16_t multi;      /* owning multi handle */
    bool ours;           /* opened by our opensocket callback: closed by ours too */
};

/* A plan step as one worker sees it: its parsed fixed URL and its series. */
struct wstep {
    CURLU *url;                /* the fixed URL, parsed once; NULL when it has placeholders */
    struct series *status, *latency;
    struct series *expect[STEP_MAX_EXPECTS];
    struct series *capture[JOURNEY_MAX_CAPTURES];
    struct series *skipped;    /* journey_skipped */
    struct http_cache cache;   /* the request series, by status */
};

/* A plan journey as one worker sees it. */
struct wjourney {
    struct series *group_dur; /* NULL for the implicit health journeys */
};

struct worker {
    struct engine *e;
    int index;
    pthread_t tid;
    bool started;
    int ep, wake;

    pthread_mutex_t *lock; /* guards m; both belong to whoever gave them */
    struct metrics *m;
    struct series *iters, *iters_failed, *iter_dur; /* cached */

    struct wstep *steps;       /* plan steps, flattened (see struct engine's first) */
    struct wjourney *journeys;
    struct mh *mh;
    size_t nmh;
    struct vu *vus;
    uint32_t nslots;   /* slots this worker may ever run */
    uint32_t active;   /* slots [0, active) want to run */
    uint32_t made;     /* slots [0, made) have an easy handle */
    uint32_t draining; /* deactivated but finishing an iteration */

    uint32_t *queue; /* thinking VUs in deadline order (ring) */
    uint32_t qhead, qlen;

    struct fdent *fds;
    size_t nfds;
    uint16_t *dirty;
    size_t ndirty;

    int64_t next_sched;  /* schedule time of the next VU change */
    int64_t abort_check; /* mono time of the earliest ramp-down bound, INT64_MAX: none */

    /* progress counters: written by this worker only, read by anyone */
    _Atomic int live_vus;
    _Atomic uint64_t requests, failures, iterations;
    _Atomic uint64_t lag; /* usec woken later than computed, beyond ENGINE_LAG_SLACK */
};

/* A plan step as the engine sees it (shared, read-only while running). */
struct estep {
    struct tagset tags;  /* name, method, scenario, group, service */
    struct tagset ctags; /* check (set per check), name, scenario, group */
};

struct engine {
    struct engine_opts o;
    struct jvu_ctx ctx;
    _Atomic uint64_t rows; /* data rows handed out */
    size_t nsteps;
    size_t *first;         /* index of each journey's first step in the flattened steps */
    struct estep *steps;
    bool want_headers;     /* some step reads response headers */
    int nthreads;
    struct worker *w;
    int64_t start, total;
    int vus_max;
    long maxconnects;
    bool noproxy;
    atomic_int stop;

    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    int running; /* workers still looping, under done_lock */
};

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void counter_inc(_Atomic uint64_t *c)
{
    /* single writer: a plain load and store, no locked instruction */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void publish_vus(struct worker *w)
{
    atomic_store_explicit(&w->live_vus, (int)(w->active + w->draining), memory_order_relaxed);
}

/* ---- libcurl callbacks ---------------------------------------------------- */

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    /*
     * Bodies are counted and kept only for a step that checks or captures from
     * them (the recorded sizes come from libcurl's infos). MAXFILESIZE only sees
     * Content-Length: a body without one is cut here.
     */
    struct vu *v = ud;
    size_t n = size * nmemb;
    v->body += n;
    if (v->keep_body)
        jvu_body_data(&v->j, ptr, n);
    return v->body > HTTP_MAX_BODY ? 0 : n;
}

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct vu *v = ud;
    size_t n = size * nmemb;
    if (v->keep_headers)
        jvu_header_line(&v->j, v->cur_step, ptr, n);
    return n;
}

static curl_socket_t opensocket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct worker *w = ud;
    (void)purpose;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if ((size_t)fd >= w->nfds) {
        close(fd);
        errno = EMFILE;
        return CURL_SOCKET_BAD;
    }
    /* a recycled fd number starts clean: the old one left epoll when it was closed */
    w->fds[fd] = (struct fdent){.ours = true};
    return fd;
}

static int closesocket_cb(void *ud, curl_socket_t fd)
{
    struct worker *w = ud;
    if ((size_t)fd < w->nfds)
        w->fds[fd] = (struct fdent){0};
    return close(fd);
}

static void epoll_set(struct worker *w, int fd, struct fdent *f, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int op = events == 0 ? EPOLL_CTL_DEL : f->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(w->ep, op, fd, &ev);
    if (rc < 0 && errno == ENOENT && op == EPOLL_CTL_MOD)
        rc = epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && errno == EEXIST && op == EPOLL_CTL_ADD)
        rc = epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev);
    f->registered = rc == 0 || events == 0 ? events : 0;
}

/*
 * Registrations of our own sockets survive CURL_POLL_REMOVE: on a keep-alive
 * connection libcurl asks for IN, then REMOVE, then IN again for every
 * request, and skipping those epoll_ctl calls is worth about a fifth of the
 * throughput. An idle socket that fires anyway is unregistered lazily (see
 * worker_dispatch). Sockets libcurl made without us (its resolver's wake-up
 * pair) can be closed behind our back, so those follow libcurl exactly.
 */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    struct mh *mh = ud;
    struct worker *w = mh->w;
    (void)easy;
    (void)sockp;
    if (fd < 0 || (size_t)fd >= w->nfds)
        return 0;
    struct fdent *f = &w->fds[fd];
    uint32_t want = what == CURL_POLL_IN      ? EPOLLIN
                    : what == CURL_POLL_OUT   ? EPOLLOUT
                    : what == CURL_POLL_INOUT ? EPOLLIN | EPOLLOUT
                                              : 0;
    f->multi = (uint16_t)(mh - w->mh);
    f->wanted = want;
    if (want == 0) {
        if (!f->ours && f->registered)
            epoll_set(w, fd, f, 0);
        return 0;
    }
    if (f->registered != want)
        epoll_set(w, fd, f, want);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
    struct mh *mh = ud;
    (void)multi;
    /* 0 means "now": no clock read, and always due however stale the loop's clock is */
    mh->deadline = timeout_ms < 0    ? -1
                   : timeout_ms == 0 ? 0
                                     : units_now_mono() + (int64_t)timeout_ms * USEC_PER_MSEC;
    return 0;
}

/* ---- VUs ------------------------------------------------------------------ */

static struct mh *vu_mh(struct worker *w, const struct vu *v)
{
    return &w->mh[v->slot / ENGINE_MULTI_SIZE];
}

static int vu_make(struct worker *w, struct vu *v)
{
    const struct engine *e = w->e;
    CURL *c = curl_easy_init();
    if (!c)
        return -ENOMEM;
    CURLcode rc = CURLE_OK;
    rc |= curl_easy_setopt(c, CURLOPT_PRIVATE, v);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, v);
    if (e->want_headers) {
        rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
        rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, v);
    }
    rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY);
    rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, w);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, w);
    rc |= curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER_SMALL);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    if (e->o.request_timeout > 0)
        rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                               (long)((e->o.request_timeout + 999) / USEC_PER_MSEC));
    if (e->noproxy)
        rc |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (e->o.ca_file)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, e->o.ca_file);
    if (rc != CURLE_OK) {
        curl_easy_cleanup(c);
        return -EINVAL;
    }
    v->easy = c;
    v->method = NULL;
    return 0;
}

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

static size_t step_index(const struct engine *e, const struct vu *v)
{
    return e->first[v->j.journey] + v->j.step;
}

static void vu_end_iteration(struct worker *w, struct vu *v, int64_t now);

/* The current step could not be sent: count it and end the iteration here. */
static void vu_skip(struct worker *w, struct vu *v, enum jvu_outcome o, int64_t now)
{
    struct wstep *ws = &w->steps[step_index(w->e, v)];
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
        const struct plan_journey *pj = &w->e->o.plan->j[v->j.journey];
        struct tagset st = {0};
        tagset_set(&st, "scenario", w->e->o.scenario);
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
    struct engine *e = w->e;
    struct jreq r;
    char why[256];
    enum jvu_outcome o = jvu_prepare(&v->j, &e->ctx, &r, why, sizeof(why));
    if (o != JVU_SEND) {
        vu_skip(w, v, o, now);
        return;
    }
    const struct plan_step *ps = jvu_step(&v->j, &e->ctx);
    struct wstep *ws = &w->steps[step_index(e, v)];
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
    v->state = VU_BUSY;
    if (curl_multi_add_handle(vu_mh(w, v)->multi, v->easy) != CURLM_OK)
        v->state = VU_IDLE; /* cannot happen with a handle we removed ourselves */
}

/* Start a new iteration: the next journey, its first step. Called under w->lock. */
static void vu_iterate(struct worker *w, struct vu *v, int64_t now)
{
    jvu_start(&v->j, &w->e->ctx);
    v->iter_start = now;
    v->skipped = false;
    vu_step(w, v, now);
}

/* Drop the VU's request without recording it. */
static void vu_abort(struct worker *w, struct vu *v)
{
    if (v->state == VU_BUSY)
        curl_multi_remove_handle(vu_mh(w, v)->multi, v->easy);
    if (!v->want && v->state == VU_BUSY)
        w->draining--;
    v->state = VU_IDLE;
}

static void record_iteration(struct worker *w, struct vu *v, int64_t now)
{
    struct series *it = v->skipped ? w->iters_failed : w->iters;
    if (it)
        series_add(it, 1);
    if (w->iter_dur)
        series_trend(w->iter_dur, now - v->iter_start);
    counter_inc(&w->iterations);
}

/* The journey ended (done or skipped): think, loop or stop. Called under w->lock. */
static void vu_end_iteration(struct worker *w, struct vu *v, int64_t now)
{
    const struct engine *e = w->e;
    const struct plan_journey *pj = &e->o.plan->j[v->j.journey];
    struct series *gd = w->journeys[v->j.journey].group_dur;
    if (gd)
        series_trend(gd, now - v->iter_start);
    bool was_busy = v->state == VU_BUSY;
    v->state = VU_IDLE;
    if (!v->want) {
        /* ramped down: the iteration was let finish, and ends here */
        if (was_busy)
            w->draining--;
        publish_vus(w);
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

/* A request finished: record it and its checks, then the next step or the end. Under w->lock. */
static void vu_done(struct worker *w, struct mh *mh, CURL *easy, CURLcode rc, int64_t now)
{
    struct engine *e = w->e;
    struct vu *v = NULL;
    struct http_result res;
    struct jvu_verdict jv;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&v);
    http_result_from_curl(&res, easy, rc);
    curl_multi_remove_handle(mh->multi, easy);

    size_t si = step_index(e, v);
    struct wstep *ws = &w->steps[si];
    const struct step *st = v->cur_step;
    bool got = res.error == HTTP_ERR_NONE;
    bool expected = got && step_status_ok(st, res.status);
    http_record_judged(w->m, &ws->cache, &e->steps[si].tags, &res, expected);
    counter_inc(&w->requests);
    if (!expected)
        counter_inc(&w->failures);
    if (got && res.status == 401 && e->o.unauthorized && e->o.plan->j[v->j.journey].j->uses_auth)
        e->o.unauthorized(e->o.token_ud);

    bool more = jvu_judge(&v->j, &e->ctx, got, res.status, res.duration, &jv);
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
        vu_step(w, v, now); /* a deactivated VU finishes its journey too */
        return;
    }
    vu_end_iteration(w, v, now);
}

/* ---- the worker loop ------------------------------------------------------ */

static void worker_collect(struct worker *w)
{
    bool locked = false;
    int64_t now = 0;
    for (size_t i = 0; i < w->ndirty; i++) {
        struct mh *mh = &w->mh[w->dirty[i]];
        CURLMsg *msg;
        int left;
        mh->dirty = false;
        while ((msg = curl_multi_info_read(mh->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (!locked) {
                pthread_mutex_lock(w->lock);
                locked = true;
                now = units_now_mono();
            }
            vu_done(w, mh, msg->easy_handle, msg->data.result, now);
        }
    }
    w->ndirty = 0;
    if (locked)
        pthread_mutex_unlock(w->lock);
}

static void mark_dirty(struct worker *w, struct mh *mh)
{
    if (!mh->dirty) {
        mh->dirty = true;
        w->dirty[w->ndirty++] = (uint16_t)(mh - w->mh);
    }
}

static void worker_timers(struct worker *w, int64_t now)
{
    int running;
    for (size_t i = 0; i < w->nmh; i++) {
        struct mh *mh = &w->mh[i];
        if (mh->deadline >= 0 && mh->deadline <= now) {
            mh->deadline = -1;
            curl_multi_socket_action(mh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            mark_dirty(w, mh);
        }
    }
}

static void worker_think(struct worker *w, int64_t now)
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

/* Follow the schedule: activate or deactivate slots for time t. */
static void worker_schedule(struct worker *w, int64_t now, int64_t t)
{
    const struct engine *e = w->e;
    bool locked = false;
    int global = sched_vus_at(e->o.stages, e->o.nstages, t);
    uint32_t local = (uint32_t)sched_thread_share(global, w->index, e->nthreads);
    if (local > w->nslots)
        local = w->nslots;

    while (w->active < local) {
        struct vu *v = &w->vus[w->active];
        if (!v->easy && vu_make(w, v) < 0)
            break; /* out of memory: run with the VUs we have */
        if (w->active >= w->made)
            w->made = w->active + 1;
        v->want = true;
        w->active++;
        if (v->state == VU_BUSY) {
            w->draining--; /* was finishing its iteration: it just keeps looping */
        } else if (v->state == VU_IDLE) {
            if (!locked) {
                pthread_mutex_lock(w->lock);
                locked = true;
            }
            vu_iterate(w, v, now);
        }
    }
    if (locked)
        pthread_mutex_unlock(w->lock);
    while (w->active > local) {
        struct vu *v = &w->vus[--w->active];
        v->want = false;
        if (v->state == VU_BUSY) {
            w->draining++;
            v->until = now;
            w->abort_check = min64(w->abort_check, now + e->o.graceful_ramp_down);
        }
    }
    publish_vus(w);
    w->next_sched = sched_next_change(e->o.stages, e->o.nstages, t);
}

/* Abort ramped-down requests that outlived graceful_ramp_down. */
static void worker_ramp_down_bound(struct worker *w, int64_t now)
{
    int64_t grace = w->e->o.graceful_ramp_down, next = INT64_MAX;
    for (uint32_t i = w->active; i < w->made && w->draining; i++) {
        struct vu *v = &w->vus[i];
        if (v->want || v->state != VU_BUSY)
            continue;
        if (sched_must_abort(v->until, now, grace))
            vu_abort(w, v);
        else
            next = min64(next, v->until + grace);
    }
    w->abort_check = next;
    publish_vus(w);
}

static void worker_dispatch(struct worker *w, const struct epoll_event *ev)
{
    int fd = ev->data.fd, running;
    if (fd == w->wake) {
        uint64_t n;
        ssize_t r = read(w->wake, &n, sizeof(n));
        (void)r;
        return;
    }
    struct fdent *f = &w->fds[fd];
    if (!f->wanted) {
        /* an idle kept registration fired (peer closed a pooled connection) */
        if (f->registered)
            epoll_set(w, fd, f, 0);
        return;
    }
    int flags = 0;
    if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        flags |= CURL_CSELECT_IN;
    if (ev->events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (ev->events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    struct mh *mh = &w->mh[f->multi];
    curl_multi_socket_action(mh->multi, fd, flags, &running);
    mark_dirty(w, mh);
}

static int64_t worker_next_wake(const struct worker *w, int64_t now)
{
    const struct engine *e = w->e;
    int64_t next = min64(now + MAX_SLEEP, e->start + e->total);
    if (w->next_sched != INT64_MAX)
        next = min64(next, e->start + w->next_sched);
    next = min64(next, w->abort_check);
    if (w->qlen)
        next = min64(next, w->vus[w->queue[w->qhead]].until);
    for (size_t i = 0; i < w->nmh; i++)
        if (w->mh[i].deadline >= 0)
            next = min64(next, w->mh[i].deadline);
    return next;
}

static void worker_finish(struct worker *w)
{
    for (uint32_t i = 0; i < w->made; i++) {
        struct vu *v = &w->vus[i];
        vu_abort(w, v);
        v->want = false;
    }
    w->active = w->draining = 0;
    w->qlen = 0;
    publish_vus(w);
}

static void worker_release_curl(struct worker *w);

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct engine *e = w->e;
    struct epoll_event evs[EVENT_BATCH];

    w->next_sched = 0;
    for (;;) {
        int64_t now = units_now_mono();
        if (atomic_load_explicit(&e->stop, memory_order_relaxed) || now - e->start >= e->total)
            break;
        worker_timers(w, now);
        worker_collect(w);
        worker_think(w, now);
        if (now - e->start >= w->next_sched)
            worker_schedule(w, now, now - e->start);
        if (now >= w->abort_check)
            worker_ramp_down_bound(w, now);

        now = units_now_mono(); /* the steps above took time and may have armed timers */
        int64_t wake = worker_next_wake(w, now);
        int timeout = 0;
        if (wake > now)
            timeout = (int)((wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        int n = epoll_wait(w->ep, evs, EVENT_BATCH, timeout);
        for (int i = 0; i < n; i++)
            worker_dispatch(w, &evs[i]);
        worker_collect(w);
        /* saturation watch: how late this turn ends for the deadline it aimed at
         * (from when it began if that was due already: no time counted twice) */
        int64_t late = units_now_mono() - (wake > now ? wake : now) - ENGINE_LAG_SLACK;
        if (late > 0)
            atomic_store_explicit(&w->lag, atomic_load_explicit(&w->lag, memory_order_relaxed) +
                                  (uint64_t)late, memory_order_relaxed);
    }
    worker_finish(w);
    /* closing the pooled connections is part of this thread's work, not the caller's */
    worker_release_curl(w);

    pthread_mutex_lock(&e->done_lock);
    if (--e->running == 0)
        pthread_cond_broadcast(&e->done_cond);
    pthread_mutex_unlock(&e->done_lock);
    return NULL;
}

/* ---- setup and teardown --------------------------------------------------- */

static int cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Raise the soft open-file limit to the hard one; returns the limit in effect. */
static size_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > MAX_FDS ? MAX_FDS : (size_t)rl.rlim_cur;
}

static bool proxy_configured(void)
{
    static const char *const vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                       "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return true;
    }
    return false;
}

/* Number of distinct scheme://host:port among the plan's steps (connections per VU). */
static int distinct_origins(const struct plan *p)
{
    const char *seen[256];
    size_t nseen = 0;
    for (size_t i = 0; i < p->n; i++)
        for (size_t k = 0; k < p->j[i].j->nsteps; k++) {
            const struct plan_step *ps = &p->j[i].steps[k];
            /* a full URL (implicit journeys) is its own origin's only user here */
            const char *o = *ps->base ? ps->base : ps->s->path.src;
            size_t len = *ps->base ? strlen(o) : (size_t)(strstr(o, "://") ? strstr(o, "://") + 3 - o + strcspn(strstr(o, "://") + 3, "/?#") : strlen(o));
            bool dup = false;
            for (size_t j = 0; j < nseen && !dup; j++)
                dup = strlen(seen[j]) >= len && !strncmp(seen[j], o, len) &&
                      (seen[j][len] == '\0' || strchr("/?#", seen[j][len]));
            if (!dup && nseen < sizeof(seen) / sizeof(seen[0]))
                seen[nseen++] = o;
        }
    return nseen ? (int)nseen : 1;
}

static void worker_release_curl(struct worker *w)
{
    for (uint32_t i = 0; i < w->made; i++)
        vu_abort(w, &w->vus[i]);
    for (size_t i = 0; i < w->nmh; i++) {
        if (w->mh[i].multi)
            curl_multi_cleanup(w->mh[i].multi); /* closes pooled connections */
        w->mh[i].multi = NULL;
    }
    for (uint32_t i = 0; i < w->made; i++) {
        curl_easy_cleanup(w->vus[i].easy);
        w->vus[i].easy = NULL;
    }
    w->made = 0;
}

static void worker_clear(struct engine *e, struct worker *w)
{
    worker_release_curl(w);
    if (w->steps)
        for (size_t i = 0; i < e->nsteps; i++)
            curl_url_cleanup(w->steps[i].url);
    for (uint32_t i = 0; w->vus && i < w->nslots; i++)
        jvu_clear(&w->vus[i].j);
    free(w->steps);
    free(w->journeys);
    free(w->mh);
    free(w->vus);
    free(w->queue);
    free(w->fds);
    free(w->dirty);
    if (w->ep >= 0)
        close(w->ep);
    if (w->wake >= 0)
        close(w->wake);
}

/* The checks of one step, cached in ws (the registry may be merged by others: under lock). */
static void worker_step_series(struct worker *w, const struct estep *es, const struct step *st,
                               struct wstep *ws)
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
}

static int worker_init(struct engine *e, struct worker *w, int index, size_t nfds)
{
    const struct engine_opts *o = &e->o;
    const struct plan *p = o->plan;
    struct tagset t = {0};

    w->e = e;
    w->index = index;
    w->ep = w->wake = -1;
    w->abort_check = INT64_MAX;
    w->nslots = (uint32_t)sched_thread_share(e->vus_max, index, e->nthreads);
    w->nmh = (w->nslots + ENGINE_MULTI_SIZE - 1) / ENGINE_MULTI_SIZE;
    w->nfds = nfds;

    w->m = o->new_registry(o->registry_ud, &w->lock);
    w->steps = calloc(e->nsteps, sizeof(*w->steps));
    w->journeys = calloc(p->n, sizeof(*w->journeys));
    w->mh = calloc(w->nmh ? w->nmh : 1, sizeof(*w->mh));
    w->vus = calloc(w->nslots ? w->nslots : 1, sizeof(*w->vus));
    w->queue = calloc(w->nslots ? w->nslots : 1, sizeof(*w->queue));
    w->dirty = calloc(w->nmh ? w->nmh : 1, sizeof(*w->dirty));
    /* indexed by fd; pages are only touched for fds this worker sees */
    w->fds = calloc(nfds, sizeof(*w->fds));
    if (!w->m || !w->steps || !w->journeys || !w->mh || !w->vus || !w->queue || !w->dirty ||
        !w->fds)
        return -ENOMEM;
    if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) < 0)
        return -errno;

    for (size_t j = 0; j < p->n; j++)
        for (size_t k = 0; k < p->j[j].j->nsteps; k++) {
            const struct plan_step *ps = &p->j[j].steps[k];
            struct wstep *ws = &w->steps[e->first[j] + k];
            if (!ps->url)
                continue;
            if (!(ws->url = curl_url()))
                return -ENOMEM;
            if (curl_url_set(ws->url, CURLUPART_URL, ps->url, 0) != CURLUE_OK)
                return -EINVAL;
        }
    /* the registry may already be merged by others (remote write) */
    pthread_mutex_lock(w->lock);
    for (size_t j = 0; j < p->n; j++) {
        const struct journey *jr = p->j[j].j;
        for (size_t k = 0; k < jr->nsteps; k++) {
            size_t si = e->first[j] + k;
            worker_step_series(w, &e->steps[si], &jr->steps[k], &w->steps[si]);
        }
        if (*jr->group) {
            struct tagset gt = {0};
            tagset_set(&gt, "scenario", o->scenario);
            tagset_set(&gt, "group", jr->group);
            w->journeys[j].group_dur = metrics_series(w->m, M_GROUP_DURATION, &gt);
        }
    }
    tagset_set(&t, "scenario", o->scenario);
    w->iters = metrics_series(w->m, M_ITERATIONS, &t);
    w->iter_dur = metrics_series(w->m, M_ITERATION_DURATION, &t);
    tagset_set(&t, "failed", "true");
    w->iters_failed = metrics_series(w->m, M_ITERATIONS, &t);
    pthread_mutex_unlock(w->lock);

    for (size_t i = 0; i < w->nmh; i++) {
        struct mh *mh = &w->mh[i];
        size_t handles = w->nslots - i * ENGINE_MULTI_SIZE;
        if (handles > ENGINE_MULTI_SIZE)
            handles = ENGINE_MULTI_SIZE;
        mh->w = w;
        mh->deadline = -1;
        if (!(mh->multi = curl_multi_init()))
            return -ENOMEM;
        curl_multi_setopt(mh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(mh->multi, CURLMOPT_SOCKETDATA, mh);
        curl_multi_setopt(mh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(mh->multi, CURLMOPT_TIMERDATA, mh);
        /* a cache smaller than the transfers closes connections all the time */
        curl_multi_setopt(mh->multi, CURLMOPT_MAXCONNECTS, (long)handles * e->maxconnects);
    }
    for (uint32_t i = 0; i < w->nslots; i++) {
        struct vu *v = &w->vus[i];
        uint32_t global = i * (uint32_t)e->nthreads + (uint32_t)index;
        v->slot = i;
        if (jvu_init(&v->j, global + 1, p, (uint64_t)units_now_wall()) < 0)
            return -ENOMEM;
    }
    return 0;
}

struct engine *engine_new(const struct engine_opts *o, int *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    const struct plan *p = o->plan;
    int rc = -ENOMEM;

    if (!e)
        goto fail;
    e->o = *o;
    pthread_mutex_init(&e->done_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    rc = -EINVAL;
    if (!p || p->n == 0)
        goto fail;

    e->ctx = (struct jvu_ctx){.plan = p, .token = o->token, .token_ud = o->token_ud,
                              .rows = &e->rows};
    e->total = sched_duration(o->stages, o->nstages);
    e->vus_max = sched_max_vus(o->stages, o->nstages);
    e->noproxy = !proxy_configured();
    e->nthreads = o->threads > 0 ? o->threads : cpu_count();
    if (e->nthreads > ENGINE_MAX_THREADS)
        e->nthreads = ENGINE_MAX_THREADS;
    if (e->nthreads > e->vus_max)
        e->nthreads = e->vus_max; /* 0 VUs: no worker at all */

    rc = -ENOMEM;
    e->nsteps = plan_nsteps(p);
    e->first = calloc(p->n, sizeof(*e->first));
    e->steps = calloc(e->nsteps ? e->nsteps : 1, sizeof(*e->steps));
    if (!e->first || !e->steps)
        goto fail;
    for (size_t j = 0, si = 0; j < p->n; j++) {
        e->first[j] = si;
        for (size_t k = 0; k < p->j[j].j->nsteps; k++, si++) {
            const struct plan_step *ps = &p->j[j].steps[k];
            struct estep *es = &e->steps[si];
            e->want_headers |= ps->s->wants_headers;
            plan_tags(&p->j[j], ps, o->scenario, &es->tags, &es->ctags);
        }
    }
    e->maxconnects = distinct_origins(p);

    size_t nfds = raise_nofile();
    e->w = calloc(e->nthreads ? (size_t)e->nthreads : 1, sizeof(*e->w));
    if (!e->w) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < e->nthreads; i++)
        e->w[i].ep = e->w[i].wake = -1;
    for (int i = 0; i < e->nthreads; i++)
        if ((rc = worker_init(e, &e->w[i], i, nfds)) < 0)
            goto fail;
    return e;

fail:
    engine_free(e);
    *err = rc;
    return NULL;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    if (e->w)
        for (int i = 0; i < e->nthreads; i++)
            worker_clear(e, &e->w[i]);
    free(e->w);
    free(e->first);
    free(e->steps);
    pthread_cond_destroy(&e->done_cond);
    pthread_mutex_destroy(&e->done_lock);
    free(e);
}

int engine_threads(const struct engine *e)
{
    return e->nthreads;
}

int engine_start(struct engine *e, int64_t start)
{
    sigset_t all, old;
    int rc = 0;

    e->start = start;
    /* signals belong to the thread that decides what to do with them */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_mutex_lock(&e->done_lock);
    for (int i = 0; i < e->nthreads; i++) {
        rc = -pthread_create(&e->w[i].tid, NULL, worker_main, &e->w[i]);
        if (rc < 0)
            break;
        e->w[i].started = true;
        e->running++;
    }
    pthread_mutex_unlock(&e->done_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        engine_stop(e);
        engine_join(e);
    }
    return rc;
}

void engine_stop(struct engine *e)
{
    uint64_t one = 1;
    atomic_store(&e->stop, 1);
    for (int i = 0; i < e->nthreads; i++)
        if (e->w[i].wake >= 0) {
            ssize_t r = write(e->w[i].wake, &one, sizeof(one));
            (void)r;
        }
}

bool engine_wait(struct engine *e, int64_t until)
{
    struct timespec ts = {.tv_sec = until / USEC_PER_SEC,
                          .tv_nsec = (long)(until % USEC_PER_SEC) * 1000};
    bool done;
    pthread_mutex_lock(&e->done_lock);
    while (e->running > 0 && units_now_mono() < until)
        if (pthread_cond_timedwait(&e->done_cond, &e->done_lock, &ts) == ETIMEDOUT)
            break;
    done = e->running == 0;
    pthread_mutex_unlock(&e->done_lock);
    return done;
}

void engine_join(struct engine *e)
{
    for (int i = 0; i < e->nthreads; i++)
        if (e->w[i].started) {
            pthread_join(e->w[i].tid, NULL);
            e->w[i].started = false;
        }
}

void engine_stats(const struct engine *e, struct engine_stats *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < e->nthreads; i++) {
        const struct worker *w = &e->w[i];
        s->vus += atomic_load_explicit(&w->live_vus, memory_order_relaxed);
        s->requests += atomic_load_explicit(&w->requests, memory_order_relaxed);
        s->failures += atomic_load_explicit(&w->failures, memory_order_relaxed);
        s->iterations += atomic_load_explicit(&w->iterations, memory_order_relaxed);
        s->lag_usec += atomic_load_explicit(&w->lag, memory_order_relaxed);
    }
}

int engine_vus_max(const struct engine *e)
{
    return e->vus_max;
}

int64_t engine_duration(const struct engine *e)
{
    return e->total;
}
