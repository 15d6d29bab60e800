/*
 * rundb: the run history of `syncgate serve`: the runs it started, kept in
 * SQLite.
 *
 * One table, `runs`: id (never reused), testid, profile, environment, test
 * type, overrides, state (running, finished, interrupted), result (passed,
 * failed, inconclusive, interrupted, error), exit code, reason, created and
 * finished times (ms since the epoch), the failed thresholds and the
 * k6-style summary JSON. The schema is versioned with PRAGMA user_version
 * and brought up to date by ordered migrations when the file is opened; a
 * file from a newer syncgate is refused rather than guessed at. The
 * database runs in WAL mode, so readers never wait for the writer.
 *
 * Rows come back as cJSON objects in the API's shape (camelCase keys, times
 * in RFC 3339 UTC), owned by the caller. Clocks are arguments. Thread-safe:
 * the connection is opened in SQLite's serialized mode and every call is one
 * statement or one transaction.
 */
#ifndef SYNCGATE_RUNDB_H
#define SYNCGATE_RUNDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Biggest summary JSON stored with a run; a bigger one is left out (reason says so). */
#define RUNDB_MAX_SUMMARY (4 * 1024 * 1024)
#define RUNDB_MAX_LIST 500

struct rundb;

/* The schema version this build writes (the number of migrations). */
int rundb_schema_version(void);

/*
 * Open (creating when missing) the database at path and migrate it. Returns
 * 0 and *out, or negative errno with a one-line reason in err: -EPROTO for a
 * file written by a newer schema, -EIO for anything SQLite refused.
 */
int rundb_open(struct rundb **out, const char *path, char *err, size_t errlen);
/* Close; NULL is a no-op. */
void rundb_close(struct rundb *h);

/*
 * Every run still marked running (the process that ran it died) becomes
 * interrupted, finished at now_ms, with reason. Returns how many, or
 * negative errno.
 */
int rundb_mark_lost(struct rundb *h, int64_t now_ms, const char *reason);

/* A run about to start. Strings are copied; overrides is a JSON object text or NULL. */
struct rundb_new {
    const char *testid, *profile, *environment, *test_type, *overrides;
    int64_t created_ms;
};

/* Insert a running run. Returns 0 and *id, or negative errno. */
int rundb_insert(struct rundb *h, const struct rundb_new *r, int64_t *id);

/* How a run ended. */
struct rundb_end {
    const char *state;  /* "finished" or "interrupted" */
    const char *result; /* see rundb_result_for_exit() */
    int exit_code;      /* -1: none (killed by a signal, never started) */
    const char *reason; /* NULL or one line */
    int64_t finished_ms;
    const char *failed_thresholds; /* JSON array text, or NULL for [] */
    const char *summary;           /* JSON object text, or NULL */
};

/* Record the end of run id. Returns 0, -ENOENT (no such run) or negative errno. */
int rundb_finish(struct rundb *h, int64_t id, const struct rundb_end *e);

/* The result word for a run's exit code: 0 passed, 105 interrupted, 114
 * inconclusive, any other failed. */
const char *rundb_result_for_exit(int exit_code);

/* One run with everything (summary parsed). Returns 0, -ENOENT, or negative errno. */
int rundb_get(struct rundb *h, int64_t id, cJSON **out);

/* What GET /api/tests may filter on; zero/NULL fields do not filter. */
struct rundb_filter {
    size_t limit; /* 1..RUNDB_MAX_LIST; 0 means 20 */
    const char *environment, *result, *test_type, *profile, *state;
    int64_t since_ms; /* created at or after */
    int64_t before_id; /* ids below this one (paging) */
};

/* Runs matching f, newest first, without their summaries. Returns 0 or negative errno. */
int rundb_list(struct rundb *h, const struct rundb_filter *f, cJSON **out);

/* For /metrics: runs per result, runs per state, and the last finished run. */
struct rundb_stats {
    uint64_t passed, failed, inconclusive, interrupted, error, running;
    int64_t last_id; /* 0: none finished yet */
    char last_result[16];
    int last_exit_code; /* -1: none */
    int64_t last_finished_ms;
};

int rundb_stats(struct rundb *h, struct rundb_stats *st);

/*
 * Delete finished runs older than max_age_ms (0: no age limit) and all but
 * the newest max_runs (0: no count limit); running runs are never deleted.
 * gone(id, ud) is called for each deleted run (to remove its files). Returns
 * how many were deleted, or negative errno.
 */
int rundb_prune(struct rundb *h, int64_t now_ms, int64_t max_age_ms, size_t max_runs,
                  void (*gone)(int64_t id, void *ud), void *ud);

/* ms since the epoch as RFC 3339 UTC with milliseconds ("2025-01-31T12:00:00.000Z"). */
const char *rundb_format_time(int64_t ms, char *buf, size_t n);

#endif
