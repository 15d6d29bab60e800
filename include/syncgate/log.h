/*
 * log: one line per event, JSON (for Loki) or plain text (for people).
 *
 * Every line carries time, level, event, environment, test_type and testid;
 * callers add their own fields to the cJSON object they get from log_begin()
 * and hand it back to log_emit(), which prints it as one line under
 * LOG_MAX_LINE bytes (longer string fields are truncated) and frees it.
 * Thread-safe: lines from different threads never interleave.
 * Never put secrets in a field.
 */
#ifndef SYNCGATE_LOG_H
#define SYNCGATE_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "syncgate/config.h"

#define LOG_MAX_LINE (16 * 1024 - 1)

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log;

/*
 * New logger writing to out. fmt AUTO means JSON unless stdout is a TTY. The
 * strings are copied. quiet drops LOG_INFO and below. NULL on ENOMEM.
 */
struct log *log_new(FILE *out, enum log_format fmt, bool quiet, const char *environment,
                    const char *testid);
void log_free(struct log *l);

/* The phase label for the following lines ("smoke", "load"); copied. */
void log_set_test_type(struct log *l, const char *test_type);

/* A new event object with the common fields; NULL on ENOMEM (log_emit accepts NULL). */
cJSON *log_begin(struct log *l, const char *event);
/* Print ev at level and free it. */
void log_emit(struct log *l, enum log_level level, cJSON *ev);

/*
 * A line made elsewhere (a child's own log line), written as it is plus a
 * newline, never interleaved with other lines. Dropped when quiet and it is
 * not a warning or an error (judged by its "level" field when it has one).
 */
void log_raw(struct log *l, const char *line, size_t len);

/* Convenience: an event with a single "message" field. */
void log_msg(struct log *l, enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
