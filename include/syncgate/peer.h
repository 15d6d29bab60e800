/*
 * peer: every instance of a distributed run but 0 (fleet.h), as the coordinator's client
 * on libcurl. One connection, kept alive, carries every exchange, so each answer's clock
 * reading measures the offset to the coordinator over the path the start time travels
 * (fleet_clock). The program drives it (main.c): peer_register, peer_wait for GO (or STOP,
 * or the verdict), peer_report_start during load, peer_report_final after it, peer_wait
 * again for the verdict. The coordinator silent for FLEET_PEER_LOST_AFTER is lost: the
 * waits return -EHOSTDOWN and the report thread sets the run's fleet_stop.
 * Log events: peer_register, peer_clock, coordinator_lost, coordinator_stop.
 */
#ifndef SYNCGATE_PEER_H
#define SYNCGATE_PEER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/fleet.h"
#include "syncgate/log.h"
#include "syncgate/metrics.h"
#include "syncgate/snapshot.h"

/* What the coordinator said last. */
struct peer_status {
    enum fleet_state state;
    int64_t start_remote; /* GO and later: T0 on the coordinator's clock */
    int64_t start_local;  /* the same on this process's monotonic clock */
    int exit_code;       /* DONE */
    char testid[128];
    char result[32];
    char reason[256];
};

struct peer;

/* A client of cfg's coordinator (borrowed, with log, for the peer's life). NULL with *err. */
struct peer *peer_new(const struct config *cfg, struct log *log, int *err);
/* Stops the report thread if running; NULL is a no-op. */
void peer_free(struct peer *p);

/*
 * Join the run: retried while nothing answers (the coordinator's pod may start later),
 * until the registration timeout. Returns 0 with st filled (testid: the run's, which the
 * log takes when cfg's testid was generated rather than given); -EACCES
 * (the token was refused), -EPROTO (refused: why in st->reason), -ETIMEDOUT, -EHOSTDOWN (a
 * coordinator took the connection and then said nothing for FLEET_PEER_LOST_AFTER), -EINTR
 * (stop became nonzero).
 */
int peer_register(struct peer *p, volatile sig_atomic_t *stop, struct peer_status *st);

/*
 * Poll every FLEET_POLL until the state is at least `until` (FLEET_GO: GO, STOP or DONE;
 * FLEET_DONE: the verdict). failure != 0 tells the coordinator that this instance cannot
 * take part (its exit code, why). At GO the clock is measured again with a few quick
 * exchanges and st->start_local set. Returns 0; -EHOSTDOWN (the coordinator was silent
 * for FLEET_PEER_LOST_AFTER); -EINTR (stop became nonzero).
 */
int peer_wait(struct peer *p, enum fleet_state until, volatile sig_atomic_t *stop, int failure,
              const char *why, struct peer_status *st);

/* The clock offset measured (coordinator minus this process, usec) and its round trip. */
void peer_clock(const struct peer *p, int64_t *offset, int64_t *rtt);

/*
 * What a report holds: this instance's registry (into dst) and the rest (meta: its index
 * and seq are filled in here). Returns 0 or a negative errno (nothing sent then).
 */
typedef int (*peer_snapshot_cb)(void *ud, struct metrics *dst, struct snapshot_meta *meta);

/*
 * Report every FLEET_INTERVAL on a thread of its own until peer_report_final. When the
 * coordinator answers STOP or DONE, or is silent for FLEET_PEER_LOST_AFTER, *fleet_stop
 * becomes 1. Returns 0 or a negative errno (no thread).
 */
int peer_report_start(struct peer *p, peer_snapshot_cb cb, void *ud, volatile int *fleet_stop);

/*
 * Stop the report thread and send the final report (retried until it is taken or the
 * coordinator is lost). Returns 0, or -EHOSTDOWN.
 */
int peer_report_final(struct peer *p, peer_snapshot_cb cb, void *ud, struct peer_status *st);

/* Whether the coordinator was lost (the report thread's verdict included). */
bool peer_coordinator_lost(const struct peer *p);

#endif
