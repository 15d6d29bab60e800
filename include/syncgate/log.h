/*
 * log: one line per event, JSON (for Loki) or plain text (for people).
 *
 * Every line carries time, level, event, environment, test_type and testid;
 * callers add their own fields to the cJSON object they get from log_begin()
 * and hand it back to log_emit(), which prints it as one line under
 * LOG_MAX_LINE bytes (longer string fields are shortened) and frees it.
 * Thread-safe: lines from different threads never interleave.
 *
 * Every line passes through here, so this is where it is made safe, whatever
 * bytes its fields hold:
 * - Secrets: every value registered with log_add_secret() is replaced by
 *   "<redacted>" in every string of the event (values at any depth, and
 *   keys), in both formats, before anything is rendered; all but the common
 *   labels log_begin() sets, which are configuration values validate prints
 *   anyway and which Loki indexes (a tenant header value that is also the
 *   environment's name must not hide the environment).
 * - One line of well-formed UTF-8: in every string, bytes that are not part
 *   of a well-formed UTF-8 sequence become U+FFFD. JSON lines: cJSON escapes
 *   control characters, and DEL and risky characters (C1 controls,
 *   U+2028/U+2029, bidirectional controls) are \uXXXX escapes too. Text
 *   lines: "time level event key=value...", a value bare when it is plain
 *   (not empty, not starting with '"', no space, no '=', nothing to escape),
 *   else in double quotes with '"' and '\\' backslash-escaped and the bytes
 *   of control and risky characters as \xNN: a field can never start a line,
 *   or a field, of its own.
 * - Text from a response goes in with log_add_quote(): masked, then cut.
 * Code still never puts a secret in a field on purpose; masking is the net.
 */
#ifndef SYNCGATE_LOG_H
#define SYNCGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "syncgate/config.h"

#define LOG_MAX_LINE (16 * 1024 - 1)
/* Secrets shorter than this are masked only where a whole string equals them. */
#define LOG_SECRET_MIN 4
/* Secrets a logger keeps (each with its base64 forms): the first half for good (room for
 * every one a configuration can hold), the later ones oldest first forgotten when full. */
#define LOG_MAX_SECRETS 512
/* Bytes of a longest secret; longer values are refused. */
#define LOG_SECRET_MAX_LEN 16384
/* Bytes of response text (a body, headers) one field quotes, "..." aside. */
#define LOG_QUOTE_MAX 512

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct log;

/*
 * New logger writing to out. fmt AUTO means JSON unless stdout is a TTY. The
 * strings are copied. quiet drops LOG_INFO and below. NULL on ENOMEM.
 */
struct log *log_new(FILE *out, enum log_format fmt, bool quiet, const char *environment,
                    const char *testid);
/* Free l, wiping every secret it kept. NULL is a no-op. */
void log_free(struct log *l);

/*
 * Register a secret: from the next line on, value and its base64 forms
 * (padded and unpadded: how a server echoing Basic credentials or an encoded
 * key would write it) are masked in every line. For Basic credentials,
 * register "user:password" too: its base64 is what the Authorization header
 * carries. value is copied (the copy is wiped at log_free); registering a
 * value again changes nothing. Values of LOG_SECRET_MIN bytes or more are
 * masked wherever they occur, shorter ones only where a whole string equals
 * them (masking "ab" inside every word would wreck the logs; a secret that
 * short protects nothing anyway). Callable from any thread at any time, also
 * mid-run (a token fetched later). With LOG_MAX_SECRETS values kept, a new one
 * makes the logger forget the oldest value registered after the first
 * LOG_MAX_SECRETS / 2 (those stay for good: register the configuration's
 * secrets first; a token renewed all day keeps its recent predecessors).
 * Returns 0, -EINVAL (NULL or longer than LOG_SECRET_MAX_LEN) or -ENOMEM. An
 * empty value is accepted and masks nothing.
 */
int log_add_secret(struct log *l, const char *value);

/* The phase label for the following lines ("smoke", "load"); copied. */
void log_set_test_type(struct log *l, const char *test_type);
/* The testid of the following lines (a distributed run's peer takes the coordinator's);
 * copied. */
void log_set_testid(struct log *l, const char *testid);

/* A new event object with the common fields; NULL on ENOMEM (log_emit accepts NULL). */
cJSON *log_begin(struct log *l, const char *event);
/* Print ev at level and free it. */
void log_emit(struct log *l, enum log_level level, cJSON *ev);

/*
 * Add text quoted from a response (len bytes, any bytes) to ev as the string
 * key: every secret masked first, then cut to LOG_QUOTE_MAX bytes on a
 * character boundary with "..." appended; NUL bytes become U+FFFD. cut says
 * the text was already cut short where it was captured: a tail that begins
 * a secret (LOG_SECRET_MIN bytes or more of it) is masked too. ev NULL: nothing.
 */
void log_add_quote(struct log *l, cJSON *ev, const char *key, const char *text, size_t len,
                   bool cut);

/*
 * A line made elsewhere (a child's own log line, already one line of UTF-8),
 * written as it is plus a newline, never interleaved with other lines; the
 * secrets registered here are masked in it too. Dropped when quiet and it is
 * not a warning or an error (judged by its "level" field when it has one), and
 * when memory runs out.
 */
void log_raw(struct log *l, const char *line, size_t len);

/* Convenience: an event with a single "message" field. */
void log_msg(struct log *l, enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same from a va_list, trailing line ends dropped (a library's messages, e.g.
 * libmicrohttpd's, end with one). */
void log_vmsg(struct log *l, enum log_level level, const char *event, const char *fmt,
              va_list ap) __attribute__((format(printf, 4, 0)));

#endif
