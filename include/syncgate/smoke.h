/*
 * smoke: the readiness wait and the one-VU smoke pass through the gateway.
 *
 * Every request goes to gateway.url + path with the consumer header (and the
 * Kong key header when a key is configured). Each target gets two named
 * checks, "<name> status <code>" and "<name> latency < <max>", recorded in
 * the checks rate with tags check, name and scenario "smoke". Connect errors
 * and 502/503/504 are retried up to smoke.retries times, after a wait of
 * SMOKE_RETRY_WAIT_FIRST that doubles up to SMOKE_RETRY_WAIT_MAX, so a target
 * takes at most (retries + 1) x request_timeout + retries x 1 s (the bound
 * docs/operations.md sizes activeDeadlineSeconds with); every attempt is a
 * request in http_reqs and a log line. 429s and Kong's rate-limit headers are
 * logged as "rate_limited" events.
 */
#ifndef SYNCGATE_SMOKE_H
#define SYNCGATE_SMOKE_H

#include <stdbool.h>
#include <stddef.h>

#include "syncgate/run.h"
#include "syncgate/units.h"

#define SMOKE_RETRY_WAIT_FIRST (200 * USEC_PER_MSEC) /* before the first retry */
#define SMOKE_RETRY_WAIT_MAX (1 * USEC_PER_SEC)      /* the longest wait between attempts */

/*
 * Wait until gateway.url + gateway.ready_path answers gateway.ready_status,
 * polling with capped exponential backoff for at most gateway.ready_timeout.
 * Returns 0 when ready (or no ready path is set), -ETIMEDOUT when the timeout
 * passed, -EINTR when the run was stopped, or another negative errno.
 */
int smoke_wait_ready(struct run *r);

/*
 * Run the smoke pass, recording into a registry made with run_new_source().
 * Returns 0 when the pass ran (checks may have failed: thresholds decide),
 * -EINTR when stopped, or a negative errno for a local failure (out of
 * memory, libcurl setup).
 */
int smoke_run(struct run *r);

/*
 * Keep one response header line (line, len bytes, not NUL-terminated, CRLF
 * allowed) for the rate_limited event when it is a rate-limit header
 * (RateLimit*, X-RateLimit*, Retry-After, any case): append it to buf (n
 * bytes, *used of them taken, always NUL-terminated), after "; " when buf is
 * not empty, without its line end, every other byte as sent (a NUL as '?'):
 * the log masks what it quotes and escapes the rest. A line that does not
 * fit whole is left out. Pure: the header callback's work,
 * apart so it can be fuzzed. Returns true when the line was kept.
 */
bool smoke_capture_header(char *buf, size_t n, size_t *used, const char *line, size_t len);

#endif
