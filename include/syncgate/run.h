/*
 * run: the shared state of one invocation, owned by main.c and handed to the
 * phases (smoke, load) and the outputs (remote write, reports).
 *
 * Producers of metrics (the smoke VU, every load-engine thread) each own a
 * registry guarded by their own mutex and register it as a source;
 * run_snapshot() merges all sources into a fresh registry for whoever needs a
 * consistent view (periodic remote write, abortOnFail checks, the final
 * report). Producers never wait for consumers longer than one merge.
 */
#ifndef SYNCGATE_RUN_H
#define SYNCGATE_RUN_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/log.h"
#include "syncgate/metrics.h"
#include "syncgate/saturation.h"

struct baseline_set;

#define RUN_MAX_SOURCES 512 /* every load thread, the gauges and smoke: see load.c */

struct run_source {
    struct metrics *m;
    pthread_mutex_t *lock;
    bool owned; /* made by run_new_source: freed by run_clear */
};

struct run {
    const struct config *cfg;
    struct log *log;
    volatile sig_atomic_t *stop; /* nonzero once SIGTERM/SIGINT arrived */
    volatile int aborted;        /* set when an abortOnFail threshold fired */
    struct auth *auth;           /* the shared OAuth2 token, when journeys use one */
    int64_t start_mono;          /* usec, units_now_mono() at start */
    struct sat_report saturation; /* the load phase's saturation watch (load_run) */
    const struct baseline_set *baselines; /* for abortOnFail on baseline thresholds; NULL */

    /* A distributed run (fleet.h). */
    volatile int fleet_stop; /* the instances must stop: a peer was lost (coordinator), the
                                coordinator said STOP or was lost (peer); run_should_stop */
    /* The coordinator: adds the other instances' registries to dst in every run_snapshot
     * (NULL when alone, and on a peer). Returns 0 or -ENOMEM. */
    int (*merge_others)(void *ud, struct metrics *dst);
    void *merge_ud;
    int64_t load_at; /* when the load's schedule starts (mono usec, T0); 0: when ready */
    /* Open-model scenarios, per scenario of the profile: iterations started and due on this
     * instance so far (load.c writes them; a peer reports them) */
    _Atomic uint64_t started[CONFIG_MAX_SCENARIOS], due[CONFIG_MAX_SCENARIOS];

    pthread_mutex_t lock; /* guards the source list */
    size_t nsources;
    struct run_source sources[RUN_MAX_SOURCES];
};

/* Initialise r (cfg, log and stop are borrowed). Returns 0. */
int run_init(struct run *r, const struct config *cfg, struct log *log,
             volatile sig_atomic_t *stop);
/* Free the owned sources. */
void run_clear(struct run *r);

/* Register a producer's registry and its lock. Returns 0 or -E2BIG. */
int run_add_source(struct run *r, struct metrics *m, pthread_mutex_t *lock);
/*
 * Make a registry and its lock owned by r (freed by run_clear, so it still
 * counts in the final snapshot after its producer finished). Returns the
 * registry and stores its lock in *lock, or NULL (ENOMEM, E2BIG).
 */
struct metrics *run_new_source(struct run *r, pthread_mutex_t **lock);

/* Unregister (the producer is about to free m). */
void run_remove_source(struct run *r, struct metrics *m);

/*
 * Merge every source into dst (normally fresh), and on a distributed run's coordinator
 * every other instance's latest registry (merge_others): the whole run, which thresholds,
 * reports and the summary judge. Returns 0 or -ENOMEM.
 */
int run_snapshot(struct run *r, struct metrics *dst);

/* This process's sources only: what its own remote write pushes and a peer reports. */
int run_snapshot_local(struct run *r, struct metrics *dst);

/* Set every series of gauge id in every source to v (a phase's VUs gone once it ended). */
void run_set_gauge(struct run *r, enum metric_id id, double v);

/* True when the run should stop: a signal or an abort. */
bool run_should_stop(const struct run *r);

/*
 * Evaluate the abortOnFail thresholds of ts on snap, over the smoke phase's
 * series or the load phase's (threshold_view), at elapsed usec since the phase began
 * (delayAbortEval respected). Returns true (and logs a "threshold" event with
 * abort=true, and sets r->aborted) when one of them failed.
 */
bool run_check_aborts(struct run *r, const struct threshold_set *ts, const struct metrics *snap,
                      bool smoke, int64_t elapsed);

#endif
