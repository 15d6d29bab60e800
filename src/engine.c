/*
 * engine: worker threads, each an epoll loop driving several libcurl multi
 * handles with curl_multi_socket_action. See engine.h for the model.
 */
#include "syncgate/engine.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine_int.h"
#include "syncgate/executor.h"
#include "syncgate/sched.h"
#include "syncgate/split.h"
#include "syncgate/units.h"

#define EVENT_BATCH 256
/* Longest epoll sleep: a safety net, every real deadline is computed. */
#define MAX_SLEEP (250 * USEC_PER_MSEC)
/* Lateness not counted as lag: epoll's millisecond rounding and scheduler noise. */
#define ENGINE_LAG_SLACK (2 * USEC_PER_MSEC)
/* Sockets are looked up by fd; never index further than this. */
#define MAX_FDS (1 << 20)

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
    /* every response: libcurl reports a head cut short as a success */
    http_head_line(&v->head_done, ptr, n);
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

struct mh *vu_mh(struct worker *w, const struct vu *v)
{
    return &w->mh[v->slot / ENGINE_MULTI_SIZE];
}

int vu_make(struct worker *w, struct vu *v)
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
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, v);
    rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY);
    rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    rc |= curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, w);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, w);
    rc |= curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER_SMALL);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    if (e->o.request_timeout > 0)
        rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, http_timeout_ms(e->o.request_timeout));
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
    next = min64(next, worker_next_executor_wake(w));
    next = min64(next, w->abort_check);
    if (w->qlen)
        next = min64(next, w->vus[w->queue[w->qhead]].until);
    for (size_t i = 0; i < w->nmh; i++)
        if (w->mh[i].deadline >= 0)
            next = min64(next, w->mh[i].deadline);
    return next;
}

/* epoll_wait to a microsecond deadline: an arrival due in 300 us must not wait a whole
 * millisecond (epoll_pwait2 takes a timespec; epoll_wait, its fallback, milliseconds). */
static int worker_wait(struct worker *w, struct epoll_event *evs, int64_t wake, int64_t now)
{
    static _Atomic int no_pwait2;
    int64_t d = wake > now ? wake - now : 0;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = d / USEC_PER_SEC, .tv_nsec = (long)(d % USEC_PER_SEC) * 1000};
        int n = epoll_pwait2(w->ep, evs, EVENT_BATCH, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    return epoll_wait(w->ep, evs, EVENT_BATCH, (int)((d + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
}

static void worker_finish(struct worker *w)
{
    for (uint32_t i = 0; i < w->nslots; i++) {
        struct vu *v = &w->vus[i];
        vu_abort(w, v);
        v->want = false;
    }
    w->live = 0;
    w->qlen = 0;
    publish_vus(w);
}

static void worker_release_curl(struct worker *w);

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct engine *e = w->e;
    struct epoll_event evs[EVENT_BATCH];

    for (;;) {
        int64_t now = units_now_mono();
        if (now >= e->start && !atomic_load_explicit(&w->first_at, memory_order_relaxed))
            atomic_store_explicit(&w->first_at, now, memory_order_relaxed);
        if (atomic_load_explicit(&e->stop, memory_order_relaxed) || now - e->start >= e->total ||
            worker_all_done(w, now))
            break;
        worker_timers(w, now);
        worker_collect(w);
        worker_think(w, now);
        worker_executors(w, now);
        if (now >= w->abort_check)
            worker_abort_bound(w, now);

        now = units_now_mono(); /* the steps above took time and may have armed timers */
        int64_t wake = worker_next_wake(w, now);
        int n = worker_wait(w, evs, wake, now);
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

/* Number of distinct scheme://host:port among the steps of every plan (connections per VU). */
static int distinct_origins(const struct engine *e)
{
    const char *seen[256];
    size_t nseen = 0;
    for (size_t s = 0; s < e->nscen; s++) {
        const struct plan *p = e->scen[s].ctx.plan;
        for (size_t i = 0; i < p->n; i++)
            for (size_t k = 0; k < p->j[i].j->nsteps; k++) {
                const struct plan_step *ps = &p->j[i].steps[k];
                /* a full URL (implicit journeys) has its origin in front */
                const char *o = *ps->base ? ps->base : ps->s->path.src;
                const char *auth = strstr(o, "://");
                size_t len = *ps->base || !auth ? strlen(o)
                                                : (size_t)(auth + 3 - o) + strcspn(auth + 3, "/?#");
                bool dup = false;
                for (size_t j = 0; j < nseen && !dup; j++)
                    dup = !strncmp(seen[j], o, len) &&
                          (seen[j][len] == '\0' || strchr("/?#", seen[j][len]));
                if (!dup && nseen < sizeof(seen) / sizeof(seen[0]))
                    seen[nseen++] = o;
            }
    }
    return nseen ? (int)nseen : 1;
}

static void worker_release_curl(struct worker *w)
{
    for (uint32_t i = 0; i < w->nslots; i++)
        vu_abort(w, &w->vus[i]);
    for (size_t i = 0; i < w->nmh; i++) {
        if (w->mh[i].multi)
            curl_multi_cleanup(w->mh[i].multi); /* closes pooled connections */
        w->mh[i].multi = NULL;
    }
    for (uint32_t i = 0; i < w->nslots; i++) {
        curl_easy_cleanup(w->vus[i].easy);
        w->vus[i].easy = NULL;
    }
}

static void worker_clear(struct engine *e, struct worker *w)
{
    worker_release_curl(w);
    worker_scen_clear(e, w);
    for (uint32_t i = 0; w->vus && i < w->nslots; i++)
        jvu_clear(&w->vus[i].j);
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

static int worker_init(struct engine *e, struct worker *w, int index, size_t nfds)
{
    const struct engine_opts *o = &e->o;

    w->e = e;
    w->index = index;
    w->ep = w->wake = -1;
    w->abort_check = INT64_MAX;
    for (size_t i = 0; i < e->nscen; i++) {
        int n = sched_thread_share(e->scen[i].slots, index, e->nthreads);
        if (!e->scen[i].open || index < e->scen[i].workers)
            w->nslots += (uint32_t)n;
    }
    w->nmh = (w->nslots + ENGINE_MULTI_SIZE - 1) / ENGINE_MULTI_SIZE;
    w->nfds = nfds;

    w->m = o->new_registry(o->registry_ud, &w->lock);
    w->mh = calloc(w->nmh ? w->nmh : 1, sizeof(*w->mh));
    w->vus = calloc(w->nslots ? w->nslots : 1, sizeof(*w->vus));
    w->queue = calloc(w->nslots ? w->nslots : 1, sizeof(*w->queue));
    w->dirty = calloc(w->nmh ? w->nmh : 1, sizeof(*w->dirty));
    /* indexed by fd; pages are only touched for fds this worker sees */
    w->fds = calloc(nfds, sizeof(*w->fds));
    if (!w->m || !w->mh || !w->vus || !w->queue || !w->dirty || !w->fds)
        return -ENOMEM;
    if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) < 0)
        return -errno;
    int rc = worker_scen_init(e, w);
    if (rc < 0)
        return rc;

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
    return 0;
}

/* The engine's view of scenario i: steps, tags, VU numbers and times. */
static int escen_init(struct engine *e, size_t i, uint32_t slot0)
{
    const struct engine_scenario *o = &e->o.scenarios[i];
    struct escen *es = &e->scen[i];
    const struct plan *p = o->plan;
    const struct scenario *sc = o->sc;

    es->o = o;
    es->sc = sc;
    es->ctx = (struct jvu_ctx){.plan = p, .token = e->o.token, .token_ud = e->o.token_ud,
                               .rows = &es->rows, .row_offset = e->instance,
                               .row_stride = e->instances};
    es->open = ex_open(sc);
    es->slots = split_slots(sc, e->instance, e->instances);
    es->slot0 = slot0;
    es->iterations = split_shared_iterations(sc, e->instance, e->instances);
    es->workers = es->slots < e->nthreads ? es->slots : e->nthreads;
    es->start = sc->start_time;
    es->stop = sc->start_time + ex_length(sc);
    es->end = ex_end(sc);
    tagset_set(&es->tags, "scenario", sc->name);
    for (size_t t = 0; t < sc->ntags; t++)
        tagset_set(&es->tags, sc->tags[t].key, sc->tags[t].value);
    es->nsteps = plan_nsteps(p);
    es->first = calloc(p->n ? p->n : 1, sizeof(*es->first));
    es->steps = calloc(es->nsteps ? es->nsteps : 1, sizeof(*es->steps));
    if (!es->first || !es->steps)
        return -ENOMEM;
    for (size_t j = 0, si = 0; j < p->n; j++) {
        es->first[j] = si;
        for (size_t k = 0; k < p->j[j].j->nsteps; k++, si++) {
            const struct plan_step *ps = &p->j[j].steps[k];
            struct estep *st = &es->steps[si];
            e->want_headers |= ps->s->wants_headers;
            plan_tags(&p->j[j], ps, sc->name, &st->tags, &st->ctags);
            for (size_t t = 0; t < sc->ntags; t++) {
                tagset_set(&st->tags, sc->tags[t].key, sc->tags[t].value);
                tagset_set(&st->ctags, sc->tags[t].key, sc->tags[t].value);
            }
        }
    }
    return 0;
}

struct engine *engine_new(const struct engine_opts *o, int *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    int rc = -ENOMEM;
    uint32_t slots = 0;

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
    e->instances = o->instances > 1 ? o->instances : 1;
    e->instance = o->instance;
    if (!o->nscenarios || o->nscenarios > UINT16_MAX || e->instance >= e->instances)
        goto fail;
    for (size_t i = 0; i < o->nscenarios; i++) {
        if (!o->scenarios[i].plan || !o->scenarios[i].plan->n)
            goto fail;
        int n = split_slots(o->scenarios[i].sc, e->instance, e->instances);
        e->total = e->total > ex_end(o->scenarios[i].sc) ? e->total : ex_end(o->scenarios[i].sc);
        e->vus_max += n;
    }
    e->noproxy = !proxy_configured();
    e->nthreads = o->threads > 0 ? o->threads : cpu_count();
    if (e->nthreads > ENGINE_MAX_THREADS)
        e->nthreads = ENGINE_MAX_THREADS;
    if (e->nthreads > e->vus_max)
        e->nthreads = e->vus_max; /* 0 VUs: no worker at all */

    rc = -ENOMEM;
    e->nscen = o->nscenarios;
    if (!(e->scen = calloc(e->nscen, sizeof(*e->scen))))
        goto fail;
    for (size_t i = 0; i < e->nscen; i++) {
        if ((rc = escen_init(e, i, slots)) < 0)
            goto fail;
        /* VU numbers count every instance's VUs: the whole scenario's slots */
        slots += (uint32_t)ex_slots(e->o.scenarios[i].sc);
    }
    e->maxconnects = distinct_origins(e);

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
    for (size_t i = 0; e->scen && i < e->nscen; i++) {
        free(e->scen[i].first);
        free(e->scen[i].steps);
    }
    free(e->scen);
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
    /* open-model due times were kept relative to the scenario: now they have a clock */
    for (int i = 0; i < e->nthreads; i++)
        for (size_t k = 0; k < e->nscen; k++)
            if (e->scen[k].open && e->w[i].scen[k].next_due != INT64_MAX)
                e->w[i].scen[k].next_due += start + e->scen[k].start;
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
        s->dropped += atomic_load_explicit(&w->dropped, memory_order_relaxed);
        s->lag_usec += atomic_load_explicit(&w->lag, memory_order_relaxed);
        int64_t lag = atomic_load_explicit(&w->lag_max, memory_order_relaxed);
        if (lag > s->lag_max)
            s->lag_max = lag;
    }
}

void engine_scenario_stats(const struct engine *e, size_t i, uint64_t *started,
                           uint64_t *dropped)
{
    *started = *dropped = 0;
    for (int k = 0; k < e->nthreads && i < e->nscen; k++) {
        *started += atomic_load_explicit(&e->w[k].scen[i].started, memory_order_relaxed);
        *dropped += atomic_load_explicit(&e->w[k].scen[i].dropped, memory_order_relaxed);
    }
}

int64_t engine_first_turn(const struct engine *e)
{
    int64_t first = 0;
    for (int i = 0; i < e->nthreads; i++) {
        int64_t t = atomic_load_explicit(&e->w[i].first_at, memory_order_relaxed);
        if (t && (!first || t < first))
            first = t;
    }
    return first;
}

int engine_vus_max(const struct engine *e)
{
    return e->vus_max;
}

int64_t engine_duration(const struct engine *e)
{
    return e->total;
}
