/*
 * sched: k6's ramping-VUs schedule as a pure function of time.
 *
 * The schedule starts with `start` VUs (k6's startVUs: 1 for the stages
 * shortcut) and runs its stages back to back. Within a stage the number of
 * active VUs moves linearly from the previous stage's target (`start` before
 * the first stage) to this stage's target, and changes only when the line
 * reaches the next whole VU: the change since the stage began is rounded
 * down, up and down alike, exactly as k6's ramping-vus executor
 * (getRawExecutionSteps): ramping 0 -> 10 over 10s, VU k starts at k seconds
 * and the 10th at the stage's end; ramping 10 -> 0, one VU stops each second
 * and the last at the end. A stage of duration 0 jumps to its target at its
 * start time.
 *
 * VU slots are numbered from 0 and the active VUs are always the slots
 * [0, active): ramping up activates the next slots, ramping down deactivates
 * the highest ones first. A deactivated VU that has a request in flight lets
 * it finish, then stops; if it is still busy graceful_ramp_down after its
 * deactivation, the request is aborted (sched_must_abort). At the end of the
 * schedule everything stops at once, in flight or not.
 *
 * Times are microseconds since the start of the phase. Pure module: no I/O,
 * no clock, no global state.
 */
#ifndef SYNCGATE_SCHED_H
#define SYNCGATE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"

/* Sum of the stage durations (0 when n is 0). */
int64_t sched_duration(const struct stage *st, size_t n);

/* The larger of start and every stage's target: the VU slots to allocate (k6's vus_max). */
int sched_max_vus(const struct stage *st, size_t n, int start);

/*
 * Active VUs at time t, for a schedule starting with `start` VUs. 0 before
 * the start; at t = 0, start (or the target of leading 0s stages, which jump);
 * at or after the end, the last stage's target (the caller stops the run
 * there).
 */
int sched_vus_at(const struct stage *st, size_t n, int start, int64_t t);

/*
 * Index of the stage running at time t: the stage i with
 * start_i <= t < start_i + duration_i (0s stages are never "running").
 * Returns n when t is at or after the end, 0 for t < 0.
 */
size_t sched_stage_at(const struct stage *st, size_t n, int64_t t);

/* Start time of stage i (the total duration for i >= n). */
int64_t sched_stage_start(const struct stage *st, size_t n, size_t i);

/*
 * The earliest time after t at which sched_vus_at() or sched_stage_at()
 * changes, or the end of the schedule; INT64_MAX when t is already at or
 * after the end. Lets a caller sleep exactly until the next VU change.
 */
int64_t sched_next_change(const struct stage *st, size_t n, int start, int64_t t);

/*
 * Of `active` VUs over all slots, how many belong to one thread when slot i
 * is given to thread i % nthreads (slot i is that thread's local slot
 * i / nthreads, so each thread's active VUs are again its lowest local slots).
 */
int sched_thread_share(int active, int thread, int nthreads);

/*
 * Graceful ramp-down: a VU deactivated at `deactivated` whose request is
 * still in flight at `now` must be aborted when the bound has run out.
 */
bool sched_must_abort(int64_t deactivated, int64_t now, int64_t graceful_ramp_down);

#endif
