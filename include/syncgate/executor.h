/*
 * executor: when iterations start, for each of k6's six executors, as pure
 * functions of time (microseconds since the scenario's own start, that is
 * after its start_time). What an iteration does is the journey's business
 * (plan.h, jvu.h); this module only says when and how many.
 *
 * Closed model (the number of VUs is set, each loops):
 *   constant-vus         vus VUs for duration
 *   ramping-vus          start_vus, then k6's stages of VU targets (sched.h)
 *   per-vu-iterations    vus VUs, each runs exactly `iterations` (max_duration)
 *   shared-iterations    vus VUs share `iterations` in all (max_duration)
 * Open model (iterations arrive at a rate, whatever the VUs are doing):
 *   constant-arrival-rate   `rate` per time_unit for duration: iteration k is
 *                           due at k * time_unit / rate (k = 0 at the start)
 *   ramping-arrival-rate    from start_rate through stages of rate targets; the
 *                           rate moves linearly within a stage and iteration k
 *                           is due when the rate's integral reaches k + 1
 *                           (k6's ramping-arrival-rate, exactly)
 * An open-model iteration that finds no free VU (within max_vus) is dropped.
 * Due times are computed from k alone, never accumulated: they do not drift.
 *
 * After its length a scenario starts nothing new; iterations in flight get
 * graceful_stop to finish, then they are stopped.
 */
#ifndef SYNCGATE_EXECUTOR_H
#define SYNCGATE_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"

/* Names as k6 spells them, indexed by enum executor_kind; NULL-terminated. */
extern const char *const executor_names[];

/* Whether the scenario is open model (arrival rate). */
bool ex_open(const struct scenario *s);

/* How long it starts iterations (duration, the stages, or max_duration). */
int64_t ex_length(const struct scenario *s);

/* When it is over for good, from the phase's start: start_time + length + graceful_stop. */
int64_t ex_end(const struct scenario *s);

/* VU slots it may use: the most VUs it ever runs (max_vus for the open model). */
int ex_slots(const struct scenario *s);

/* Closed model: the VUs that should be running at scenario time t (0 outside [0, length)). */
int ex_vus_at(const struct scenario *s, int64_t t);

/* Closed model: the first time after t when ex_vus_at changes; INT64_MAX after the length. */
int64_t ex_next_change(const struct scenario *s, int64_t t);

/* Open model: when iteration k (0-based) is due, in usec from the scenario's start, or -1
 * when it would come at or after the length (there is no such iteration). */
int64_t ex_due(const struct scenario *s, uint64_t k);

/* Open model: iterations due in [0, t] (all of them for t past the length). */
uint64_t ex_due_by(const struct scenario *s, int64_t t);

/* Open model: the target rate at scenario time t, in iterations per second. */
double ex_rate_at(const struct scenario *s, int64_t t);

#endif
