/*
 * coord: instance 0 of a distributed run (fleet.h), the coordinator. An HTTP server on
 * libmicrohttpd, listening on every address at SYNCGATE_COORDINATOR's port, that
 * registers the peers, answers their polls with the run's state and its monotonic clock,
 * keeps each peer's latest report (snapshot.h), and watches that none goes silent: a
 * peer silent for FLEET_LOST_AFTER, or one that says it failed, is lost; the run's
 * fleet_stop is then set and the peers are told STOP. Every request needs the shared
 * token (constant-time comparison): without it 401, with a wrong one 403, and nothing
 * changes either way.
 *
 * The program drives it (main.c): coord_start before anything else, coord_wait_peers
 * before load, coord_go with T0, coord_merge for every view of the whole run,
 * coord_wait_final after load, coord_done with the verdict, coord_linger before exiting.
 * Log events: fleet_listen, peer_registered, peer_refused, peer_lost, peer_unauthorized,
 * fleet_ready, fleet_go, and at the end fleet_stats (debug: reports taken, their bytes and
 * decoding time, merges and their time: what the peers cost).
 */
#ifndef SYNCGATE_COORD_H
#define SYNCGATE_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/log.h"
#include "syncgate/metrics.h"
#include "syncgate/run.h"
#include "syncgate/saturation.h"

struct coord;

/*
 * Listen on cfg->scaleout.port (IPv6 and IPv4, or IPv4 alone where there is no IPv6)
 * for cfg->scaleout.instances - 1 peers. cfg, log and run are borrowed and must outlive
 * it; run's stop flags make the answers say STOP, and a lost peer sets run->fleet_stop.
 * Returns NULL with *err (negative errno: -EADDRINUSE, -ENOMEM, ...).
 */
struct coord *coord_start(const struct config *cfg, struct log *log, struct run *run, int *err);

/* Stop listening (every connection closed) and free; NULL is a no-op. */
void coord_free(struct coord *c);

/*
 * Wait until every peer has registered. Returns 0; -ETIMEDOUT when the registration
 * timeout (from coord_start) ran out (those that never came are lost); -ECANCELED when a
 * peer was lost or refused (another configuration) before; -EINTR when the run must stop.
 */
int coord_wait_peers(struct coord *c);

/* Tell every peer to start its load at t0 (this process's monotonic clock, usec). */
void coord_go(struct coord *c, int64_t t0);

/*
 * Merge every peer's latest registry into dst (metrics_merge_instances), and set the
 * achieved_rate of each open-model scenario to what every instance started over what
 * was due to every instance (own_started and own_due: this instance's, per scenario of
 * the profile). Returns 0 or -ENOMEM.
 */
int coord_merge(struct coord *c, struct metrics *dst, const uint64_t *own_started,
                const uint64_t *own_due);

/* Fold the peers' saturation watches (their final reports) into s, this instance's. */
void coord_saturation(struct coord *c, struct sat_report *s);

/*
 * After this instance's load: wait until every peer that is not lost has sent its final
 * report, or until deadline (monotonic usec); those still running then are lost. When the
 * run was interrupted (a signal) it waits a second at most and blames nobody.
 * Returns the number of peers lost so far (0: the whole run is in).
 */
int coord_wait_final(struct coord *c, int64_t deadline);

/* Peers lost so far, and one sentence naming them (index, label, why) into why. */
int coord_lost(struct coord *c, char *why, size_t n);

/* Whether a peer's remote write lost samples (its final report said so). */
bool coord_peers_undelivered(struct coord *c);

/* The verdict: every later answer says DONE with exit_code, result and reason. */
void coord_done(struct coord *c, int exit_code, const char *result, const char *reason);

/* Wait until every peer that is not lost has read the verdict, or until deadline (or, for
 * a peer that has not registered yet, until the registration time is over); 2 s at most
 * after a signal. */
void coord_linger(struct coord *c, int64_t deadline);

#endif
