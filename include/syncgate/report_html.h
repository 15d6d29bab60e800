/*
 * report_html: one self-contained HTML page per run, for people.
 *
 * The page opens with the verdict (passed, failed, interrupted...) and the
 * run's key figures, then the thresholds with their observed values (and a
 * column for baselines), charts over time of requests/s, active VUs, p95
 * latency and failed requests/s drawn from the run's timeline, the checks
 * grouped by journey (the check's "group" tag when it has one, else the
 * service name), a latency table per scenario and service, and the failed
 * requests by kind.
 *
 * Self-contained: inline CSS and inline SVG only; no script, font, image or
 * link that a browser would fetch, so it opens from a file, an API response
 * or an archived CI artefact alike. Every string that comes from the run
 * (check names, tag values, the profile path) is escaped for HTML, and bytes
 * that are not UTF-8 are replaced.
 *
 * Pure apart from writing the file it is given.
 */
#ifndef SYNCGATE_REPORT_HTML_H
#define SYNCGATE_REPORT_HTML_H

#include <stdint.h>
#include <stdio.h>

#include "syncgate/report.h"
#include "syncgate/timeline.h"

/* What the page says besides the registry and verdict of report.h. */
struct report_html_info {
    const char *command;       /* "run", "smoke" or "load" */
    int64_t started_wall;      /* usec since the epoch */
    const struct timeline *tl; /* NULL or empty: no charts, a note instead */
};

/* Render the page to out. Returns 0, or -ENOMEM / -EIO. */
int report_html_write(FILE *out, const struct report_ctx *ctx, const struct verdict *v,
                      const struct report_html_info *info);

/* Render the page into path (see report_write_file). Returns 0 or negative errno. */
int report_html(const char *path, const struct report_ctx *ctx, const struct verdict *v,
                const struct report_html_info *info);

/* text escaped for HTML element content and attribute values (& < > " '), control
 * characters other than tab and line feed, and bytes that are not UTF-8, as U+FFFD. */
void report_html_escape(FILE *out, const char *text);

#endif
