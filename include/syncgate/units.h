/*
 * units: durations in k6's notation and a monotonic/wall clock.
 *
 * All durations inside syncgate are int64_t microseconds ("usec"). k6 writes
 * durations as Go durations ("0s", "500ms", "30s", "1m30s", "2h", "1.5s",
 * "250us"), optionally after a whole number of days ("1d", "1d23h", as k6's
 * ParseExtendedDuration); a bare "0" is accepted, any other unit-less number
 * is not (k6 would read it as milliseconds: a typo more often than a plan).
 * Pure module: no I/O, no global state (the clock functions only read clocks).
 */
#ifndef SYNCGATE_UNITS_H
#define SYNCGATE_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_MSEC INT64_C(1000)
#define USEC_PER_SEC INT64_C(1000000)

/* Longest accepted duration: 100 days. Anything longer is a typo, not a plan. */
#define UNITS_MAX_DURATION (INT64_C(100) * 24 * 3600 * USEC_PER_SEC)

/*
 * Parse a k6 duration. Returns 0 and stores microseconds in *out, or -EINVAL
 * for malformed text and -ERANGE for negative or longer than
 * UNITS_MAX_DURATION. *out is untouched on failure.
 */
int units_parse_duration(const char *s, int64_t *out);

/*
 * Format usec the way k6 prints durations ("1m30s", "500ms", "0s",
 * "1.5s"). Always NUL-terminates when n > 0; returns buf.
 */
char *units_format_duration(int64_t usec, char *buf, size_t n);

/*
 * Format a latency for the text summary like k6 ("12.34ms", "1.2s", "850µs").
 */
char *units_format_latency(double usec, char *buf, size_t n);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in microseconds. */
int64_t units_now_mono(void);
int64_t units_now_wall(void);

#endif
