/*
 * engine: the event-driven load engine on libcurl's multi interface.
 *
 * A fixed set of worker threads, each with its own epoll loop, its own
 * metrics registry (the caller's, guarded by its own mutex) and its share of the VU slots
 * (slot i runs on thread i % nthreads). Each thread follows the ramping-VUs
 * schedule (sched.h) on its own, from the common start time: no thread ever
 * waits for another. Inside a thread, VUs are spread over several multi
 * handles of at most ENGINE_MULTI_SIZE transfers, because libcurl searches a
 * multi handle's whole connection cache for every request.
 *
 * A VU is one reusable easy handle running journeys (plan.h, jvu.h): an
 * iteration picks a journey, sends its steps one after another, records each
 * response and its checks, optionally thinks (an engine timer, no blocking),
 * and loops. Its easy handle is made the first time the slot is activated
 * and then reused for every request (keep-alive); nothing is allocated per
 * request. A deactivated VU finishes its iteration (graceful ramp-down) and
 * an abort (stop, end of schedule, ramp-down bound) drops in-flight requests
 * without recording them.
 *
 * Recorded per request (tags name, method, scenario, group and service for
 * journey steps, and those http_record adds): every k6 http_* metric,
 * data_sent/received, the step's checks; per journey: group_duration (named
 * journeys) and journey_skipped when a step could not be sent; per
 * iteration: iterations and iteration_duration (steps plus think time). The
 * vus/vus_max gauges are the caller's to record, from engine_vus().
 */
#ifndef SYNCGATE_ENGINE_H
#define SYNCGATE_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/metrics.h"
#include "syncgate/plan.h"

#define ENGINE_MULTI_SIZE 50
#define ENGINE_MAX_THREADS 256

/* One scenario to run; both borrowed, they must outlive the engine. */
struct engine_scenario {
    const struct scenario *sc; /* when iterations start (executor.h), name and tags */
    const struct plan *plan;   /* what an iteration does (think times included) */
};

struct engine_opts {
    const struct engine_scenario *scenarios; /* run side by side on the same threads */
    size_t nscenarios;
    /* ${auth.token}: copies the token (see struct jvu_ctx); NULL without auth */
    int (*token)(void *ud, char *buf, size_t n);
    void *token_ud;
    void (*unauthorized)(void *ud); /* a request that carried the token was answered 401 */
    int64_t request_timeout;    /* usec, 0: none */
    int threads;                /* 0: one per CPU this process may run on */
    /*
     * A distributed run: this process is instance `instance` of `instances` and runs its
     * slice of every scenario (split.h): its share of the VUs at every instant, of the
     * open model's iterations (k mod instances == instance) and of shared iterations.
     * 0 instances (or 1): the whole.
     */
    unsigned instance, instances;
    const char *ca_file;        /* CA bundle for HTTPS (borrowed); NULL: the system's */
    /*
     * Called once per worker thread by engine_new for the registry that
     * thread records into and the lock guarding it; both stay the caller's
     * (they must outlive the engine). NULL means out of memory.
     */
    struct metrics *(*new_registry)(void *ud, pthread_mutex_t **lock);
    void *registry_ud;
};

struct engine;

/*
 * Prepare an engine: parse the plan's fixed URLs, get the per-thread registries
 * (o->new_registry), make the event loops, raise the open-file limit (soft to
 * hard). No thread runs and no request is sent yet. Returns NULL with *err set to a negative errno
 * (-EINVAL for a URL libcurl rejects, -ENOMEM, ...).
 */
struct engine *engine_new(const struct engine_opts *o, int *err);

/* Free an engine that is not running (joined or never started). NULL is a no-op. */
void engine_free(struct engine *e);

/* Number of worker threads. */
int engine_threads(const struct engine *e);

/*
 * Start the workers; the schedule's time 0 is start (units_now_mono()
 * clock): now, or ahead (a distributed run's T0: the workers wait for it on
 * their own timers, so nothing is made at that instant). Returns 0 or a
 * negative errno (then nothing runs).
 */
int engine_start(struct engine *e, int64_t start);

/* When the first worker turned at or after the start (mono usec), 0: not yet or no worker. */
int64_t engine_first_turn(const struct engine *e);

/* Ask every worker to stop now (in-flight requests are dropped). Thread-safe. */
void engine_stop(struct engine *e);

/*
 * Wait until every worker has finished (the schedule ended, or engine_stop)
 * or the monotonic clock reaches until (usec). Returns true when all finished.
 */
bool engine_wait(struct engine *e, int64_t until);

/* Wait for every worker to finish. */
void engine_join(struct engine *e);

/* VU slots of every scenario together (this instance's), and when the last scenario ends (usec from start,
 * graceful stops included; the engine stops earlier when every scenario is done). */
int engine_vus_max(const struct engine *e);
int64_t engine_duration(const struct engine *e);

/* Live counters for progress, read without locks (they may lag slightly). */
struct engine_stats {
    int vus;            /* VUs active or finishing a request */
    uint64_t requests;  /* finished and recorded */
    uint64_t failures;  /* of those, not the expected response */
    uint64_t iterations;
    uint64_t dropped;   /* open-model iterations that found no free VU */
    int64_t lag_max;    /* the latest an open-model iteration started after its due time */
    uint64_t lag_usec;  /* summed over workers: how late their loops ran for their
                           deadlines, beyond 2 ms a turn (the saturation watch) */
};
void engine_stats(const struct engine *e, struct engine_stats *s);

/* Open-model iterations of scenario i started and dropped so far (all workers). */
void engine_scenario_stats(const struct engine *e, size_t i, uint64_t *started,
                           uint64_t *dropped);

#endif
