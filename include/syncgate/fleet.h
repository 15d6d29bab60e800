/*
 * fleet: one gate run by several instances of syncgate (the pods of a Kubernetes Indexed
 * Job), with one verdict. What every part of it shares; the parts are:
 *   split.h     each instance's slice of the load (pure arithmetic)
 *   snapshot.h  an instance's metrics on the wire, exactly (protobuf-c)
 *   coord.h     instance 0, the coordinator: an HTTP server (libmicrohttpd)
 *   peer.h      every other instance: its client (libcurl)
 *   main.c      the order of things in each
 *
 * The protocol (proto/fleet.proto; POST bodies and answers are protobuf, every request
 * carries "Authorization: Bearer <the shared token>", every answer to a registered peer is
 * a Status):
 *   1. A peer registers (POST /v1/register, Hello: its index, the instance count, the
 *      digest of what must agree: fleet_digest). The coordinator refuses a wrong token
 *      (403: nothing changes), an index or count that does not fit, or another
 *      configuration (409: the run fails).
 *   2. It polls (POST /v1/poll) every FLEET_POLL until the state is GO, STOP or DONE.
 *      Every answer carries the coordinator's monotonic clock: the peer keeps the exchange
 *      with the shortest round trip and takes the clock at its midpoint (fleet_clock).
 *   3. The coordinator alone waits for the targets, reads baselines and runs smoke; when
 *      smoke passed and every peer is in, it answers GO with T0, FLEET_START_MARGIN ahead
 *      on its clock; each instance starts its load at T0 on its own clock. Smoke failed:
 *      STOP, and load starts nowhere.
 *   4. During load every peer reports its registry (POST /v1/report) every FLEET_INTERVAL;
 *      the coordinator keeps each peer's latest and judges abortOnFail on the merge of all
 *      of them and its own. When it stops (abort, signal, lost peer), the answers say
 *      STOP and the peers stop within an interval. Its last report says final.
 *   5. The coordinator judges the merge, writes the one summary and outputs, and answers
 *      DONE with the verdict's exit code; every instance exits with it.
 * Failure is never a pass: a peer that never registers (SYNCGATE_REGISTER_TIMEOUT) or that
 * says nothing for FLEET_LOST_AFTER makes the coordinator stop the run and exit 115,
 * naming it; a peer that hears nothing from the coordinator for FLEET_PEER_LOST_AFTER
 * stops and exits 115.
 *
 * This file's functions are pure: no I/O, no clock (times are arguments).
 */
#ifndef SYNCGATE_FLEET_H
#define SYNCGATE_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/units.h"

#define FLEET_INTERVAL USEC_PER_SEC                    /* reports during load */
#define FLEET_POLL (250 * USEC_PER_MSEC)               /* polls while waiting */
#define FLEET_LOST_AFTER (3 * FLEET_INTERVAL)          /* a silent peer is lost after this */
#define FLEET_PEER_LOST_AFTER (4 * USEC_PER_SEC)       /* a silent coordinator, for a peer:
                                                          it stops within 5 s of its end */
#define FLEET_START_MARGIN (1 * USEC_PER_SEC)          /* T0 is this far ahead of GO */
#define FLEET_REQUEST_TIMEOUT (2 * USEC_PER_SEC)       /* one request of a peer */
#define FLEET_VERDICT_LINGER (5 * USEC_PER_SEC)        /* the coordinator waits for peers to
                                                          read the verdict at most this */
#define FLEET_MAX_SMALL_BODY 4096                      /* Hello, Poll */

/* The coordinator's states, as Status says them. */
enum fleet_state { FLEET_WAITING, FLEET_GO, FLEET_STOP, FLEET_DONE };
/* "waiting", "go", "stop", "done". */
const char *fleet_state_name(enum fleet_state s);

/*
 * What every instance of a run must agree on, hashed: the instance count, the
 * environment, the testid when one was given (TESTID), and every scenario (executor,
 * counts, durations, stages, start times, its journey). Pods started from one Job template
 * agree; a pod left over from another profile or version does not.
 */
uint64_t fleet_digest(const struct config *c);

/*
 * The coordinator's clock as a peer sees it (NTP's idea, over the peer's own
 * requests): an exchange sent at local time t0, answered with the coordinator's
 * clock `remote`, received at t1, says that remote was read about (t0 + t1) / 2 here,
 * within half the round trip. The exchange with the shortest round trip wins.
 */
struct fleet_clock {
    int64_t offset; /* remote - local */
    int64_t rtt;    /* of the exchange kept; -1: none yet */
    unsigned samples;
};
void fleet_clock_init(struct fleet_clock *c);
/* One exchange; ignored when t1 < t0. Returns true when it became the one kept. */
bool fleet_clock_sample(struct fleet_clock *c, int64_t t0, int64_t remote, int64_t t1);
/* The coordinator's time `remote` on the local clock. */
int64_t fleet_clock_local(const struct fleet_clock *c, int64_t remote);

#endif
