/*
 * snapshot: a metrics registry, and what else a peer of a distributed run reports, as the
 * Report message of proto/fleet.proto (protobuf-c), exactly: every series with its tags
 * and version, counters and rates as they are, gauges with their range, trends as their
 * histogram's exact totals and non-empty buckets. Decoding one instance's report gives
 * back its registry, so the coordinator's merge of every instance's registry
 * (metrics_merge_instances) is what one process recording every sample would hold, to the
 * bucket. Pure module: no I/O.
 */
#ifndef SYNCGATE_SNAPSHOT_H
#define SYNCGATE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/metrics.h"
#include "syncgate/saturation.h"

/* The most a report may take on the wire. */
#define SNAPSHOT_MAX_BYTES (64u * 1024 * 1024)

/* What a peer reports besides its registry. */
struct snapshot_meta {
    uint32_t index;   /* its instance index */
    uint64_t seq;     /* reports sent before this one */
    bool final;       /* its load is over: nothing will change any more */
    int64_t elapsed;  /* usec since its load began */
    size_t nscenarios;
    uint64_t started[CONFIG_MAX_SCENARIOS], due[CONFIG_MAX_SCENARIOS]; /* open model so far */
    bool has_saturation;
    struct sat_report saturation; /* final: its saturation watch (source not sent) */
    int failure;                  /* its own failure (an exit code), 0: none */
    char reason[256];
    bool undelivered; /* final: its remote write lost samples */
};

/*
 * Encode m (borrowed; not changed) and meta as a Report into a malloc'd buffer (*out,
 * *len bytes; free() it). Returns 0, -E2BIG over SNAPSHOT_MAX_BYTES, or -ENOMEM.
 */
int snapshot_encode(const struct metrics *m, const struct snapshot_meta *meta, uint8_t **out,
                    size_t *len);

/*
 * Check a Report as snapshot_decode would, without keeping its registry: meta gets the
 * rest. Returns 0 or -EINVAL (-ENOMEM). What the coordinator does when a report comes: it
 * keeps the bytes (tens of KB), not the registry they make (megabytes of histogram ranges).
 */
int snapshot_read(const uint8_t *buf, size_t len, struct snapshot_meta *meta);

/*
 * Add the registry of a Report to dst as metrics_merge_instances would add it (gauges add
 * up). Returns 0, -EINVAL (as snapshot_decode; dst may then hold part of it), -ENOMEM.
 */
int snapshot_merge(const uint8_t *buf, size_t len, struct metrics *dst);

/*
 * Decode a Report: into is emptied (metrics_zero, its series kept for reuse) and filled
 * with the registry, meta with the rest. Returns 0; -EINVAL when buf is not a Report or
 * holds what no registry does (an unknown metric, more than TAGS_MAX tags, a histogram
 * whose parts do not add up, a rate with more passes than samples, more than
 * CONFIG_MAX_SCENARIOS scenarios); -ENOMEM. On failure into holds part of the report:
 * decode into a spare registry and keep the last good one.
 */
int snapshot_decode(const uint8_t *buf, size_t len, struct metrics *into,
                    struct snapshot_meta *meta);

#endif
