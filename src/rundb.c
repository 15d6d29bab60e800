/* rundb: the run history of serve in SQLite, schema by ordered migrations under PRAGMA user_version. */
#include "syncgate/rundb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

struct rundb {
    sqlite3 *db;
};

/*
 * The migrations, in order: migrations[i] takes a database from version i to
 * i + 1. Never edit one that shipped; add the next.
 */
static const char *const migrations[] = {
    /* 1: the runs table */
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  testid TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  environment TEXT NOT NULL,"
    "  test_type TEXT NOT NULL,"
    "  overrides TEXT NOT NULL DEFAULT '{}',"
    "  state TEXT NOT NULL CHECK (state IN ('running', 'finished', 'interrupted')),"
    "  result TEXT CHECK (result IN ('passed', 'failed', 'inconclusive', 'interrupted',"
    "                                'error')),"
    "  exit_code INTEGER,"
    "  reason TEXT,"
    "  created_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  failed_thresholds TEXT NOT NULL DEFAULT '[]',"
    "  summary TEXT"
    ");"
    "CREATE INDEX runs_created ON runs (created_ms);"
    "CREATE INDEX runs_environment ON runs (environment, id);"
    "CREATE INDEX runs_state ON runs (state);",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int rundb_schema_version(void)
{
    return NMIGRATIONS;
}

static int fail(struct rundb *h, char *err, size_t n, const char *what)
{
    if (err && n)
        snprintf(err, n, "%s: %s", what, h->db ? sqlite3_errmsg(h->db) : "out of memory");
    return -EIO;
}

static int exec(struct rundb *h, const char *sql)
{
    return sqlite3_exec(h->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int user_version(struct rundb *h, int *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct rundb *h, char *err, size_t n)
{
    int v;
    if (user_version(h, &v) < 0)
        return fail(h, err, n, "cannot read the schema version");
    if (v > NMIGRATIONS) {
        snprintf(err, n,
                 "schema version %d is newer than this syncgate knows (%d): refusing to use it",
                 v, NMIGRATIONS);
        return -EPROTO;
    }
    for (; v < NMIGRATIONS; v++) {
        char sql[64];
        /* one transaction per step: a crash leaves a database at some version, never between */
        if (exec(h, "BEGIN IMMEDIATE") < 0)
            return fail(h, err, n, "cannot start a migration");
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (exec(h, migrations[v]) < 0 || exec(h, sql) < 0) {
            char what[64];
            snprintf(what, sizeof(what), "migration to schema version %d failed", v + 1);
            int rc = fail(h, err, n, what);
            exec(h, "ROLLBACK");
            return rc;
        }
        if (exec(h, "COMMIT") < 0)
            return fail(h, err, n, "cannot commit a migration");
    }
    return 0;
}

int rundb_open(struct rundb **out, const char *path, char *err, size_t n)
{
    struct rundb *h = calloc(1, sizeof(*h));
    int rc;

    *out = NULL;
    if (!h) {
        snprintf(err, n, "out of memory");
        return -ENOMEM;
    }
    if (sqlite3_open_v2(path, &h->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        rc = fail(h, err, n, "cannot open the database");
        goto bad;
    }
    sqlite3_busy_timeout(h->db, 5000);
    sqlite3_extended_result_codes(h->db, 1);
    /* WAL: readers (the API) never wait for the writer (a run ending) */
    if (exec(h, "PRAGMA journal_mode = WAL") < 0 || exec(h, "PRAGMA synchronous = NORMAL") < 0 ||
        exec(h, "PRAGMA foreign_keys = ON") < 0) {
        rc = fail(h, err, n, "cannot set up the database");
        goto bad;
    }
    if ((rc = migrate(h, err, n)) < 0)
        goto bad;
    *out = h;
    return 0;
bad:
    rundb_close(h);
    return rc;
}

void rundb_close(struct rundb *h)
{
    if (!h)
        return;
    sqlite3_close(h->db);
    free(h);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

int rundb_mark_lost(struct rundb *h, int64_t now_ms, const char *reason)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "UPDATE runs SET state = 'interrupted', result = 'interrupted', "
                           "finished_ms = ?1, reason = ?2 WHERE state = 'running' RETURNING id",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, now_ms);
    bind_text(st, 2, reason);
    /* RETURNING counts this statement's rows, whatever other threads do meanwhile */
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        n++;
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? n : -EIO;
}

int rundb_insert(struct rundb *h, const struct rundb_new *r, int64_t *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "INSERT INTO runs (testid, profile, environment, test_type, "
                           "overrides, state, created_ms) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6) RETURNING id",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    bind_text(st, 1, r->testid);
    bind_text(st, 2, r->profile);
    bind_text(st, 3, r->environment);
    bind_text(st, 4, r->test_type);
    bind_text(st, 5, r->overrides ? r->overrides : "{}");
    sqlite3_bind_int64(st, 6, r->created_ms);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    if (rc == 0)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int rundb_finish(struct rundb *h, int64_t id, const struct rundb_end *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "UPDATE runs SET state = ?2, result = ?3, exit_code = ?4, reason = ?5, "
                           "finished_ms = ?6, failed_thresholds = ?7, summary = ?8 WHERE id = ?1 "
                           "RETURNING id",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, e->state);
    bind_text(st, 3, e->result);
    if (e->exit_code >= 0)
        sqlite3_bind_int(st, 4, e->exit_code);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, e->reason);
    sqlite3_bind_int64(st, 6, e->finished_ms);
    bind_text(st, 7, e->failed_thresholds ? e->failed_thresholds : "[]");
    if (e->summary && strlen(e->summary) <= RUNDB_MAX_SUMMARY)
        bind_text(st, 8, e->summary);
    else
        sqlite3_bind_null(st, 8);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : -EIO;
    sqlite3_finalize(st);
    return rc;
}

const char *rundb_result_for_exit(int code)
{
    switch (code) {
    case 0: return "passed";
    case 105: return "interrupted";
    case 114: return "inconclusive";
    default: return "failed";
    }
}

const char *rundb_format_time(int64_t ms, char *buf, size_t n)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
    return buf;
}

#define COLUMNS                                                                                  \
    "id, testid, profile, environment, test_type, overrides, state, result, exit_code, reason, " \
    "created_ms, finished_ms, failed_thresholds"

/* A row of COLUMNS (plus summary at column 13 when with_summary) as the API's object. */
static cJSON *row_json(sqlite3_stmt *st, bool with_summary)
{
    cJSON *o = cJSON_CreateObject();
    char t[40];
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    static const char *const names[] = {"testid", "profile", "environment", "testType"};
    for (int i = 0; i < 4; i++)
        cJSON_AddStringToObject(o, names[i], (const char *)sqlite3_column_text(st, 1 + i));
    cJSON *ov = cJSON_Parse((const char *)sqlite3_column_text(st, 5));
    cJSON_AddItemToObject(o, "overrides", ov ? ov : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "state", (const char *)sqlite3_column_text(st, 6));
    if (sqlite3_column_type(st, 7) == SQLITE_NULL)
        cJSON_AddNullToObject(o, "result");
    else
        cJSON_AddStringToObject(o, "result", (const char *)sqlite3_column_text(st, 7));
    if (sqlite3_column_type(st, 8) == SQLITE_NULL)
        cJSON_AddNullToObject(o, "exitCode");
    else
        cJSON_AddNumberToObject(o, "exitCode", sqlite3_column_int(st, 8));
    if (sqlite3_column_type(st, 9) != SQLITE_NULL)
        cJSON_AddStringToObject(o, "reason", (const char *)sqlite3_column_text(st, 9));
    int64_t created = sqlite3_column_int64(st, 10);
    cJSON_AddStringToObject(o, "createdAt", rundb_format_time(created, t, sizeof(t)));
    if (sqlite3_column_type(st, 11) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "finishedAt");
    } else {
        int64_t fin = sqlite3_column_int64(st, 11);
        cJSON_AddStringToObject(o, "finishedAt", rundb_format_time(fin, t, sizeof(t)));
        cJSON_AddNumberToObject(o, "durationMs", (double)(fin - created));
    }
    cJSON *ft = cJSON_Parse((const char *)sqlite3_column_text(st, 12));
    cJSON_AddItemToObject(o, "failedThresholds", ft ? ft : cJSON_CreateArray());
    if (with_summary) {
        cJSON *s = sqlite3_column_type(st, 13) == SQLITE_NULL
                       ? NULL
                       : cJSON_Parse((const char *)sqlite3_column_text(st, 13));
        cJSON_AddItemToObject(o, "summary", s ? s : cJSON_CreateNull());
    }
    return o;
}

int rundb_get(struct rundb *h, int64_t id, cJSON **out)
{
    sqlite3_stmt *st;
    *out = NULL;
    if (sqlite3_prepare_v2(h->db, "SELECT " COLUMNS ", summary FROM runs WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = (*out = row_json(st, true)) ? 0 : -ENOMEM;
    else
        rc = step == SQLITE_DONE ? -ENOENT : -EIO;
    sqlite3_finalize(st);
    return rc;
}

int rundb_list(struct rundb *h, const struct rundb_filter *f, cJSON **out)
{
    sqlite3_stmt *st;
    size_t limit = f->limit ? f->limit : 20;
    *out = NULL;
    if (limit > RUNDB_MAX_LIST)
        limit = RUNDB_MAX_LIST;
    /* every filter is always bound; a NULL one matches everything */
    if (sqlite3_prepare_v2(h->db,
                           "SELECT " COLUMNS " FROM runs WHERE"
                           " (?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR result = ?2)"
                           " AND (?3 IS NULL OR test_type = ?3) AND (?4 IS NULL OR profile = ?4)"
                           " AND (?5 IS NULL OR state = ?5) AND created_ms >= ?6"
                           " AND (?7 = 0 OR id < ?7)"
                           " ORDER BY id DESC LIMIT ?8",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    bind_text(st, 1, f->environment);
    bind_text(st, 2, f->result);
    bind_text(st, 3, f->test_type);
    bind_text(st, 4, f->profile);
    bind_text(st, 5, f->state);
    sqlite3_bind_int64(st, 6, f->since_ms);
    sqlite3_bind_int64(st, 7, f->before_id);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)limit);
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? 0 : -ENOMEM, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = row_json(st, false);
        if (!o)
            rc = -ENOMEM;
        else
            cJSON_AddItemToArray(arr, o);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = -EIO;
    sqlite3_finalize(st);
    if (rc < 0)
        cJSON_Delete(arr);
    else
        *out = arr;
    return rc;
}

int rundb_stats(struct rundb *h, struct rundb_stats *s)
{
    sqlite3_stmt *st;
    int rc = 0, step;
    memset(s, 0, sizeof(*s));
    s->last_exit_code = -1;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT state, coalesce(result, ''), count(*) FROM runs "
                           "GROUP BY state, result",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        const char *res = (const char *)sqlite3_column_text(st, 1);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);
        if (!strcmp(state, "running"))
            s->running += n;
        else if (!strcmp(res, "passed"))
            s->passed += n;
        else if (!strcmp(res, "failed"))
            s->failed += n;
        else if (!strcmp(res, "inconclusive"))
            s->inconclusive += n;
        else if (!strcmp(res, "interrupted"))
            s->interrupted += n;
        else
            s->error += n;
    }
    if (step != SQLITE_DONE)
        rc = -EIO;
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT id, result, exit_code, finished_ms FROM runs "
                           "WHERE state != 'running' ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        s->last_id = sqlite3_column_int64(st, 0);
        snprintf(s->last_result, sizeof(s->last_result), "%s",
                 sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
        s->last_exit_code =
            sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 2);
        s->last_finished_ms = sqlite3_column_int64(st, 3);
    } else if (step != SQLITE_DONE) {
        rc = -EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

int rundb_prune(struct rundb *h, int64_t now_ms, int64_t max_age_ms, size_t max_runs,
                  void (*gone)(int64_t id, void *ud), void *ud)
{
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step;

    if (max_age_ms <= 0 && max_runs == 0)
        return 0;
    if (exec(h, "BEGIN IMMEDIATE") < 0)
        return -EIO;
    /* the newest max_runs stay whatever their age says; running runs always stay */
    if (sqlite3_prepare_v2(h->db,
                           "SELECT id FROM runs WHERE state != 'running' AND ("
                           " (?1 > 0 AND created_ms < ?2) OR"
                           " (?3 > 0 AND id NOT IN (SELECT id FROM runs ORDER BY id DESC"
                           "                        LIMIT ?3)))",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = -EIO;
        goto out;
    }
    sqlite3_bind_int64(st, 1, max_age_ms);
    sqlite3_bind_int64(st, 2, now_ms - max_age_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max_runs);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            int64_t *m = realloc(ids, ncap * sizeof(*ids));
            if (!m) {
                rc = -ENOMEM;
                goto out;
            }
            ids = m;
            cap = ncap;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (step != SQLITE_DONE) {
        rc = -EIO;
        goto out;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(h->db, "DELETE FROM runs WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        st = NULL;
        rc = -EIO;
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = -EIO;
    }
out:
    sqlite3_finalize(st);
    if (rc == 0 && exec(h, "COMMIT") == 0) {
        for (size_t i = 0; gone && i < n; i++)
            gone(ids[i], ud);
        rc = (int)n;
    } else {
        exec(h, "ROLLBACK");
        if (rc == 0)
            rc = -EIO;
    }
    free(ids);
    return rc;
}
