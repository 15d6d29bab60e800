/*
 * digest: the verdict said briefly, for people and for machines.
 *
 * The same facts feed the pod's termination message and the webhook's text
 * (digest_text: the result, the exit code, the testid, every threshold that
 * did not pass with its value, limit and baseline, the saturation watch, and
 * where to look), the webhook's JSON body and the "syncgate" object of the
 * --summary-export file (digest_json: every threshold's outcome and reason,
 * observed value, limit and, for baseline thresholds, the baseline and the
 * runs it came from). Nothing secret is ever part of it: no URL but the
 * configured dashboard link and the baseline source with its user info and
 * query removed.
 *
 * Pure module: no I/O.
 */
#ifndef SYNCGATE_DIGEST_H
#define SYNCGATE_DIGEST_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "syncgate/report.h"

/* Exit codes' results: "passed", "failed", "inconclusive", "interrupted", "not ready",
 * "undelivered", "invalid configuration", "auth failed", "error". */
const char *digest_result(int exit_code);

/*
 * One threshold in one line, after its scenario, key and expression:
 * "observed 28.1ms > limit 24.2ms = baseline 20.2ms * 1.2 (median of 5 runs)",
 * "inconclusive: generator saturated (observed 12.3ms)". Returns buf.
 */
const char *digest_item(const struct verdict_item *it, const struct config *c, char *buf, size_t n);

/*
 * The digest as text: whole lines, at most n-1 bytes (the termination
 * message allows 4096); when lines do not fit, the last one that does says
 * how many were left out. Returns the length.
 */
size_t digest_text(const struct report_ctx *ctx, const struct verdict *v, char *buf, size_t n);

/* The link or hint to the dashboard of this run, "{testid}" filled in. Returns buf. */
const char *digest_dashboard(const struct config *c, char *buf, size_t n);

/* The digest as a JSON object (NULL on ENOMEM); the caller owns it. */
cJSON *digest_json(const struct report_ctx *ctx, const struct verdict *v);

#endif
