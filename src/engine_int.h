/*
 * engine internals shared by engine.c (threads, event loops, libcurl's
 * plumbing, setup) and engine_vu.c (what VUs do: iterations, steps,
 * recording, and when they run: the executors of the scenarios). Private to
 * src/: not part of the API.
 */
#ifndef SYNCGATE_ENGINE_INT_H
#define SYNCGATE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "syncgate/engine.h"
#include "syncgate/http.h"
#include "syncgate/jvu.h"

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
    int64_t until;       /* think: when it ends; busy and deactivated: when to abort */
    int64_t lateness;    /* open model: how late the iteration started (usec); -1: closed */
    uint64_t body;       /* response body bytes of the current request */
    uint32_t slot;       /* local slot index in its worker */
    uint32_t iters_done; /* per-vu-iterations: iterations it finished */
    uint16_t scen;       /* its scenario */
    const char *method;  /* method set on the easy handle (a step's string), NULL: none */
    uint8_t state;       /* enum vu_state */
    bool want;           /* active: the executor wants it to run iterations */
    bool finished;       /* ran out of iterations (per-vu and shared iterations) */
    bool large_buffer;   /* switched to RECV_BUFFER_LARGE */
    bool head_done;      /* the current response's head ended (http_head_line) */
    bool keep_body;      /* the current step reads the response body */
    bool keep_headers;   /* the current step reads response headers */
    bool body_set;       /* a request body is set on the handle */
    bool skipped;        /* the iteration ended early: a step could not be sent */
    const struct step *cur_step; /* the step in flight */
    struct jvu j;                /* the journey state */
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
    CURLU *url; /* the fixed URL, parsed once; NULL when it has placeholders */
    struct series *status, *latency;
    struct series *expect[STEP_MAX_EXPECTS];
    struct series *capture[JOURNEY_MAX_CAPTURES];
    struct series *skipped;   /* journey_skipped, made at the first skip */
    struct series *scheduled; /* open model: http_req_duration_scheduled */
    struct http_cache cache;  /* the request series, by status */
};

/* A plan step as the engine sees it (shared, read-only while running). */
struct estep {
    struct tagset tags;  /* name, method, scenario, group, service, the scenario's tags */
    struct tagset ctags; /* check (set per check), name, scenario, group, the scenario's tags */
    struct http_statuses statuses; /* the status labels, shared by every worker */
};

/* A scenario as the engine sees it (shared). Times are from the engine's start. */
struct escen {
    const struct engine_scenario *o;
    const struct scenario *sc;
    struct jvu_ctx ctx;
    _Atomic uint64_t rows;    /* data rows handed out */
    _Atomic uint64_t claimed; /* shared-iterations: iterations taken */
    size_t nsteps;
    size_t *first; /* index of each journey's first step in steps */
    struct estep *steps;
    struct tagset tags; /* scenario and its own tags: iteration series */
    uint32_t slot0;     /* its first VU number (0-based) over every instance */
    int slots;          /* VUs it may use (this instance's share) */
    int workers;        /* open model: the workers that take its iterations */
    uint64_t iterations; /* shared-iterations: this instance's share */
    int64_t start, stop, end; /* start_time; start + length; stop + graceful_stop */
    bool open;
};

/* A scenario inside one worker. */
struct wscen {
    uint32_t first, n; /* its VUs: the worker's vus[first, first + n) */
    uint32_t active;   /* closed: [first, first + active) are wanted */
    uint32_t finished; /* VUs out of iterations */
    uint32_t busy;     /* VUs with a request in flight */
    int64_t next_sched; /* closed: engine time of the next VU change, INT64_MAX: none */
    bool stopped;       /* its length is over: nothing new starts */
    /* open model */
    uint64_t next_k;  /* the next iteration this worker starts */
    int64_t next_due; /* when (mono usec), INT64_MAX: none left */
    uint32_t *idle;   /* free VUs (local indices), a stack */
    uint32_t nidle;
    _Atomic uint64_t started, dropped; /* progress, this worker's (read by engine_stats) */
    struct wstep *steps;
    struct series **group_dur; /* per journey; NULL for the implicit health journeys */
    struct series *iters, *iters_failed, *iter_dur, *dropped_s, *lateness;
};

struct worker {
    struct engine *e;
    int index;
    pthread_t tid;
    bool started;
    int ep, wake;

    pthread_mutex_t *lock; /* guards m; both belong to whoever gave them */
    struct metrics *m;

    struct wscen *scen; /* one per scenario */
    struct mh *mh;
    size_t nmh;
    struct vu *vus;
    uint32_t nslots; /* slots this worker may ever run, all scenarios */
    uint32_t live;   /* VUs wanted or finishing an iteration */

    uint32_t *queue; /* thinking VUs in deadline order (ring) */
    uint32_t qhead, qlen;

    struct fdent *fds;
    size_t nfds;
    uint16_t *dirty;
    size_t ndirty;

    int64_t abort_check; /* mono time of the earliest abort bound, INT64_MAX: none */

    /* progress counters: written by this worker only, read by anyone */
    _Atomic int live_vus;
    _Atomic uint64_t requests, failures, iterations, dropped;
    _Atomic int64_t lag_max; /* the most an open-model iteration started after its due time */
    _Atomic int64_t first_at; /* mono usec of its first turn at or after the start, 0: none yet */
    _Atomic uint64_t lag;     /* usec woken later than computed, beyond ENGINE_LAG_SLACK */
};

struct engine {
    struct engine_opts o;
    struct escen *scen;
    size_t nscen;
    bool want_headers; /* some step reads response headers */
    int nthreads;
    unsigned instance, instances; /* this process's slice (split.h); instances >= 1 */
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

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static inline void counter_inc(_Atomic uint64_t *c)
{
    /* single writer: a plain load and store, no locked instruction */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* ---- engine.c: plumbing ---------------------------------------------------- */

/* The VU's multi handle. */
struct mh *vu_mh(struct worker *w, const struct vu *v);
/* Make the VU's easy handle (first activation). 0 or a negative errno. */
int vu_make(struct worker *w, struct vu *v);

/* ---- engine_vu.c: VUs and executors ------------------------------------------ */

/* A request finished: record it and its checks, then the next step or the end. Under lock. */
void vu_done(struct worker *w, struct mh *mh, CURL *easy, CURLcode rc, int64_t now);
/* Drop the VU's request without recording it. */
void vu_abort(struct worker *w, struct vu *v);
/* VUs whose think time ended: their next iteration (takes the lock itself). */
void worker_think(struct worker *w, int64_t now);
/* Every scenario's executor at time now: start, stop, dispatch iterations (takes the lock
 * itself). */
void worker_executors(struct worker *w, int64_t now);
/* Abort the requests of deactivated VUs past their bound. */
void worker_abort_bound(struct worker *w, int64_t now);
/* The earliest time an executor needs the loop again (mono usec). */
int64_t worker_next_executor_wake(const struct worker *w);
/* Whether every scenario of this worker is over (nothing left to start or finish). */
bool worker_all_done(const struct worker *w, int64_t now);
/* Per-worker scenario state and series; 0 or a negative errno. */
int worker_scen_init(struct engine *e, struct worker *w);
void worker_scen_clear(struct engine *e, struct worker *w);
void publish_vus(struct worker *w);

#endif
