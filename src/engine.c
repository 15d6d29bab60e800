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
#include "syncgate/sched.h"
#include "syncgate/units.h"

#define EVENT_BATCH 256
/* Longest epoll sleep: a safety net, every real deadline is computed. */
#define MAX_SLEEP (250 * USEC_PER_MSEC)
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
    int64_t iter_start;  /* when the current iteration's request started */
    uint64_t body;       /* response body bytes of the current request */
    int64_t until;       /* think: when it ends; busy and deactivated: when deactivated */
    uint32_t slot;       /* local slot index in its worker */
    uint32_t svc;        /* service of the current or next request */
    int16_t method;      /* method id set on the easy handle, -1: none yet */
    uint8_t state;       /* enum vu_state */
    bool want;           /* active per the schedule */
    bool large_buffer;   /* switched to RECV_BUFFER_LARGE */
    bool head_done;      /* the current response's head ended (http_head_line) */
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

/* A service as one worker sees it. */
struct wsvc {
    CURLU *url;
    struct series *check; /* "<name> status <code>" rate, cached */
    struct http_cache cache; /* the request series, by status */
};

struct worker {
    struct engine *e;
    int index;
    pthread_t tid;
    bool started;
    int ep, wake;

    pthread_mutex_t *lock; /* guards m; both belong to whoever gave them */
    struct metrics *m;
    struct series *iters, *iter_dur; /* cached */

    struct wsvc *svcs;
    struct mh *mh;
    size_t nmh;
    struct vu *vus;
    uint32_t nslots;   /* slots this worker may ever run */
    uint32_t active;   /* slots [0, active) want to run */
    uint32_t made;     /* slots [0, made) have an easy handle */
    uint32_t draining; /* deactivated but finishing a request */

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
};

/* A service as the engine sees it (shared, read-only while running). */
struct esvc {
    const struct service *s;
    struct http_shape shape; /* tags name, method, scenario; statuses shared by workers */
    struct tagset ctags; /* check, name, scenario */
    char *check_name;
    int method; /* 0 GET, 1 HEAD, 2+ index of a custom method */
};

struct engine {
    struct engine_opts o;
    struct esvc *svcs;
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

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    /*
     * Bodies are counted, never kept (the recorded sizes come from libcurl's
     * infos). MAXFILESIZE only sees Content-Length: a body without one is cut here.
     */
    struct vu *v = ud;
    size_t n = size * nmemb;
    (void)ptr;
    v->body += n;
    return v->body > HTTP_MAX_BODY ? 0 : n;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *ud)
{
    struct vu *v = ud;
    http_head_line(&v->head_done, line, size * nmemb);
    return size * nmemb;
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
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
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
    v->method = -1;
    return 0;
}

static void vu_set_method(struct vu *v, const struct esvc *s)
{
    if (v->method == s->method)
        return;
    /* only when services differ in method: CUSTOMREQUEST copies its string */
    curl_easy_setopt(v->easy, CURLOPT_CUSTOMREQUEST, s->method >= 2 ? s->s->method : NULL);
    curl_easy_setopt(v->easy, CURLOPT_NOBODY, s->method == 1 ? 1L : 0L);
    if (s->method != 1)
        curl_easy_setopt(v->easy, CURLOPT_HTTPGET, 1L);
    v->method = (int16_t)s->method;
}

/* Start the VU's next request (a new iteration). */
static void vu_send(struct worker *w, struct vu *v, int64_t now)
{
    struct esvc *s = &w->e->svcs[v->svc];
    vu_set_method(v, s);
    curl_easy_setopt(v->easy, CURLOPT_CURLU, w->svcs[v->svc].url);
    v->iter_start = now;
    v->body = 0;
    v->head_done = false;
    v->state = VU_BUSY;
    if (curl_multi_add_handle(vu_mh(w, v)->multi, v->easy) != CURLM_OK)
        v->state = VU_IDLE; /* cannot happen with a handle we removed ourselves */
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
    if (w->iters)
        series_add(w->iters, 1);
    if (w->iter_dur)
        series_trend(w->iter_dur, now - v->iter_start);
    counter_inc(&w->iterations);
}

/* A request finished: record it, then think, loop or stop. Called under w->lock. */
static void vu_done(struct worker *w, struct mh *mh, CURL *easy, CURLcode rc, int64_t now)
{
    const struct engine *e = w->e;
    struct vu *v = NULL;
    struct http_result res;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&v);
    http_result_from_curl(&res, easy, rc, v->head_done);
    curl_multi_remove_handle(mh->multi, easy);

    struct esvc *s = &e->svcs[v->svc];
    bool expected = http_record_cached(w->m, &w->svcs[v->svc].cache, &s->shape, &res);
    if (w->svcs[v->svc].check)
        series_rate(w->svcs[v->svc].check, expected);
    counter_inc(&w->requests);
    if (!expected)
        counter_inc(&w->failures);

    if (!v->large_buffer && res.bytes_received > RECV_BUFFER_SMALL) {
        v->large_buffer = true;
        curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER_LARGE);
    }
    v->svc = (v->svc + 1) % (uint32_t)e->o.nservices;
    v->state = VU_IDLE;
    if (!v->want) {
        /* ramped down: the request was let finish, the iteration ends here */
        w->draining--;
        publish_vus(w);
        if (e->o.think_time <= 0)
            record_iteration(w, v, now);
        return;
    }
    if (e->o.think_time > 0) {
        v->state = VU_THINKING;
        v->until = now + e->o.think_time;
        w->queue[(w->qhead + w->qlen++) % w->nslots] = v->slot;
        return;
    }
    record_iteration(w, v, now);
    vu_send(w, v, now);
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
        vu_send(w, v, now);
    }
    if (locked)
        pthread_mutex_unlock(w->lock);
}

/* Follow the schedule: activate or deactivate slots for time t. */
static void worker_schedule(struct worker *w, int64_t now, int64_t t)
{
    const struct engine *e = w->e;
    int global = sched_vus_at(e->o.stages, e->o.nstages, e->o.start_vus, t);
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
        if (v->state == VU_BUSY)
            w->draining--; /* was finishing a request: it just keeps looping */
        else if (v->state == VU_IDLE)
            vu_send(w, v, now);
    }
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
    w->next_sched = sched_next_change(e->o.stages, e->o.nstages, e->o.start_vus, t);
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

/* Number of distinct scheme://host:port among the services (connections per VU). */
static int distinct_origins(CURLU *const *urls, size_t n)
{
    char *origins[CONFIG_MAX_SERVICES];
    int count = 0;
    for (size_t i = 0; i < n && i < CONFIG_MAX_SERVICES; i++) {
        char *scheme = NULL, *host = NULL, *port = NULL, *o = NULL;
        curl_url_get(urls[i], CURLUPART_SCHEME, &scheme, 0);
        curl_url_get(urls[i], CURLUPART_HOST, &host, 0);
        curl_url_get(urls[i], CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        if (asprintf(&o, "%s://%s:%s", scheme ? scheme : "", host ? host : "",
                     port ? port : "") < 0)
            o = NULL;
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        bool seen = !o;
        for (int j = 0; j < count && !seen; j++)
            seen = strcmp(origins[j], o) == 0;
        if (seen)
            free(o);
        else
            origins[count++] = o;
    }
    for (int j = 0; j < count; j++)
        free(origins[j]);
    return count > 0 ? count : 1;
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
    if (w->svcs)
        for (size_t i = 0; i < e->o.nservices; i++)
            curl_url_cleanup(w->svcs[i].url);
    free(w->svcs);
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
    struct tagset t = {0};

    w->e = e;
    w->index = index;
    w->ep = w->wake = -1;
    w->abort_check = INT64_MAX;
    w->nslots = (uint32_t)sched_thread_share(e->vus_max, index, e->nthreads);
    w->nmh = (w->nslots + ENGINE_MULTI_SIZE - 1) / ENGINE_MULTI_SIZE;
    w->nfds = nfds;

    w->m = o->new_registry(o->registry_ud, &w->lock);
    w->svcs = calloc(o->nservices, sizeof(*w->svcs));
    w->mh = calloc(w->nmh ? w->nmh : 1, sizeof(*w->mh));
    w->vus = calloc(w->nslots ? w->nslots : 1, sizeof(*w->vus));
    w->queue = calloc(w->nslots ? w->nslots : 1, sizeof(*w->queue));
    w->dirty = calloc(w->nmh ? w->nmh : 1, sizeof(*w->dirty));
    /* indexed by fd; pages are only touched for fds this worker sees */
    w->fds = calloc(nfds, sizeof(*w->fds));
    if (!w->m || !w->svcs || !w->mh || !w->vus || !w->queue || !w->dirty || !w->fds)
        return -ENOMEM;
    if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = w->wake};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) < 0)
        return -errno;

    for (size_t i = 0; i < o->nservices; i++) {
        w->svcs[i].url = curl_url();
        if (!w->svcs[i].url)
            return -ENOMEM;
        if (curl_url_set(w->svcs[i].url, CURLUPART_URL, o->services[i]->url, 0) != CURLUE_OK)
            return -EINVAL;
    }
    /* the registry may already be merged by others (remote write) */
    pthread_mutex_lock(w->lock);
    for (size_t i = 0; i < o->nservices; i++)
        w->svcs[i].check = metrics_series(w->m, M_CHECKS, &e->svcs[i].ctags);
    tagset_set(&t, "scenario", o->scenario);
    w->iters = metrics_series(w->m, M_ITERATIONS, &t);
    w->iter_dur = metrics_series(w->m, M_ITERATION_DURATION, &t);
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
        v->svc = global % (uint32_t)o->nservices;
        v->method = -1;
    }
    return 0;
}

static int method_id(const struct esvc *svcs, size_t i)
{
    const char *m = svcs[i].s->method ? svcs[i].s->method : "GET";
    if (strcasecmp(m, "GET") == 0)
        return 0;
    if (strcasecmp(m, "HEAD") == 0)
        return 1;
    for (size_t j = 0; j < i; j++)
        if (svcs[j].method >= 2 && strcmp(svcs[j].s->method, m) == 0)
            return svcs[j].method;
    return 2 + (int)i;
}

struct engine *engine_new(const struct engine_opts *o, int *err)
{
    struct engine *e = calloc(1, sizeof(*e));
    CURLU *urls[CONFIG_MAX_SERVICES] = {0};
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
    if (o->nservices == 0 || o->nservices > CONFIG_MAX_SERVICES)
        goto fail;

    e->total = sched_duration(o->stages, o->nstages);
    e->vus_max = sched_max_vus(o->stages, o->nstages, o->start_vus);
    e->noproxy = !proxy_configured();
    e->nthreads = o->threads > 0 ? o->threads : cpu_count();
    if (e->nthreads > ENGINE_MAX_THREADS)
        e->nthreads = ENGINE_MAX_THREADS;
    if (e->nthreads > e->vus_max)
        e->nthreads = e->vus_max; /* 0 VUs: no worker at all */

    rc = -ENOMEM;
    e->svcs = calloc(o->nservices, sizeof(*e->svcs));
    if (!e->svcs)
        goto fail;
    for (size_t i = 0; i < o->nservices; i++) {
        struct esvc *s = &e->svcs[i];
        s->s = o->services[i];
        s->method = method_id(e->svcs, i);
        if (asprintf(&s->check_name, "%s status %d", s->s->name, s->s->expect_status) < 0) {
            s->check_name = NULL;
            goto fail;
        }
        tagset_set(&s->shape.tags, "name", s->s->name);
        tagset_set(&s->shape.tags, "method", s->s->method ? s->s->method : "GET");
        tagset_set(&s->shape.tags, "scenario", o->scenario);
        s->shape.expect_status = s->s->expect_status;
        tagset_set(&s->ctags, "check", s->check_name);
        tagset_set(&s->ctags, "name", s->s->name);
        tagset_set(&s->ctags, "scenario", o->scenario);
        rc = (urls[i] = curl_url()) ? 0 : -ENOMEM;
        if (rc == 0 && curl_url_set(urls[i], CURLUPART_URL, s->s->url, 0) != CURLUE_OK)
            rc = -EINVAL;
        if (rc < 0)
            goto fail;
    }
    e->maxconnects = distinct_origins(urls, o->nservices);

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
    for (size_t i = 0; i < o->nservices; i++)
        curl_url_cleanup(urls[i]);
    return e;

fail:
    for (size_t i = 0; i < CONFIG_MAX_SERVICES; i++)
        curl_url_cleanup(urls[i]);
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
    if (e->svcs)
        for (size_t i = 0; i < e->o.nservices; i++)
            free(e->svcs[i].check_name);
    free(e->svcs);
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
