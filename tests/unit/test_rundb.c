/* Unit tests for history, on a real SQLite file in a temporary directory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "syncgate/rundb.h"
#include "tap.h"

static char dir[] = "/tmp/syncgate-history-XXXXXX";
static char path[256];

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY (86400000LL)

static int64_t add(struct rundb *h, const char *env, const char *type, int64_t created)
{
    int64_t id = 0;
    struct rundb_new r = {"tid-x", "staging", env, type, "{\"smoke.duration\":\"2s\"}",
                            created};
    ok(rundb_insert(h, &r, &id) == 0 && id > 0, "insert %s %s (id %lld)", env, type,
       (long long)id);
    return id;
}

static void end(struct rundb *h, int64_t id, int code, int64_t fin)
{
    struct rundb_end e = {"finished", rundb_result_for_exit(code), code, NULL, fin,
                            code ? "[\"http_req_failed rate<0.01\"]" : NULL,
                            "{\"metrics\":{\"http_reqs\":{\"count\":42}}}"};
    ok(rundb_finish(h, id, &e) == 0, "finish %lld with exit %d", (long long)id, code);
}

static size_t list_n(struct rundb *h, const struct rundb_filter *f, cJSON **arr)
{
    cJSON *a = NULL;
    int rc = rundb_list(h, f, &a);
    size_t n = rc == 0 ? (size_t)cJSON_GetArraySize(a) : (size_t)-1;
    if (arr)
        *arr = a;
    else
        cJSON_Delete(a);
    return n;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double numv(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void test_runs(void)
{
    struct rundb *h;
    char err[256];
    ok(rundb_open(&h, path, err, sizeof(err)) == 0, "open creates the file (%s)", path);
    ok(access(path, F_OK) == 0, "the file exists");

    int64_t a = add(h, "staging", "smoke", T0);
    int64_t b = add(h, "staging", "load", T0 + 1000);
    int64_t c = add(h, "production", "smoke", T0 + 2000);
    end(h, a, 0, T0 + 5000);
    end(h, b, 99, T0 + 65000);

    cJSON *r = NULL;
    ok(rundb_get(h, b, &r) == 0, "get a finished run");
    ok(r && !strcmp(str(r, "state"), "finished") && !strcmp(str(r, "result"), "failed") &&
           numv(r, "exitCode") == 99 && !strcmp(str(r, "testType"), "load") &&
           !strcmp(str(r, "createdAt"), "2026-01-01T00:00:01.000Z") &&
           !strcmp(str(r, "finishedAt"), "2026-01-01T00:01:05.000Z") &&
           numv(r, "durationMs") == 64000,
       "its fields: finished, failed, 99, load, times in RFC 3339, duration");
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(r, "failedThresholds");
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(r, "summary");
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(r, "overrides");
    ok(cJSON_GetArraySize(ft) == 1 && !strcmp(cJSON_GetArrayItem(ft, 0)->valuestring,
                                              "http_req_failed rate<0.01"),
       "failed thresholds kept as a list");
    ok(cJSON_IsObject(sum) && cJSON_GetObjectItemCaseSensitive(sum, "metrics") &&
           !strcmp(str(ov, "smoke.duration"), "2s"),
       "summary and overrides come back as JSON");
    cJSON_Delete(r);
    ok(rundb_get(h, c, &r) == 0 && !strcmp(str(r, "state"), "running") &&
           cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "result")) &&
           cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "exitCode")),
       "a running run: no result, no exit code yet");
    cJSON_Delete(r);
    ok(rundb_get(h, 999, &r) == -ENOENT && r == NULL, "get of an unknown id: -ENOENT");
    struct rundb_end e = {"finished", "passed", 0, NULL, T0, NULL, NULL};
    ok(rundb_finish(h, 999, &e) == -ENOENT, "finish of an unknown id: -ENOENT");

    /* filters */
    struct rundb_filter f = {0};
    cJSON *arr;
    ok(list_n(h, &f, &arr) == 3 && numv(cJSON_GetArrayItem(arr, 0), "id") == (double)c &&
           !cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, 0), "summary"),
       "list: all three, newest first, without summaries");
    cJSON_Delete(arr);
    f.environment = "staging";
    ok(list_n(h, &f, NULL) == 2, "environment=staging: 2");
    f.result = "failed";
    ok(list_n(h, &f, &arr) == 1 && numv(cJSON_GetArrayItem(arr, 0), "id") == (double)b,
       "environment=staging and result=failed: the load run");
    cJSON_Delete(arr);
    f = (struct rundb_filter){.test_type = "smoke"};
    ok(list_n(h, &f, NULL) == 2, "test type smoke: 2");
    f = (struct rundb_filter){.since_ms = T0 + 1000};
    ok(list_n(h, &f, NULL) == 2, "since: created at or after");
    f = (struct rundb_filter){.limit = 1};
    ok(list_n(h, &f, NULL) == 1, "limit 1");
    f = (struct rundb_filter){.before_id = c};
    ok(list_n(h, &f, NULL) == 2, "before an id: the older ones");
    f = (struct rundb_filter){.state = "running"};
    ok(list_n(h, &f, NULL) == 1, "state=running: 1");
    f = (struct rundb_filter){.environment = "x' OR '1'='1"};
    ok(list_n(h, &f, NULL) == 0, "a quote in a filter is a value, not SQL");

    struct rundb_stats s;
    ok(rundb_stats(h, &s) == 0 && s.passed == 1 && s.failed == 1 && s.running == 1 &&
           s.last_id == b && !strcmp(s.last_result, "failed") && s.last_exit_code == 99,
       "stats: 1 passed, 1 failed, 1 running, last finished is the failed one");
    rundb_close(h);

    /* restart: the running one was lost with its process */
    ok(rundb_open(&h, path, err, sizeof(err)) == 0, "reopen");
    ok(rundb_mark_lost(h, T0 + 9000, "lost in a restart") == 1, "one running run marked");
    ok(rundb_get(h, c, &r) == 0 && !strcmp(str(r, "state"), "interrupted") &&
           !strcmp(str(r, "result"), "interrupted") &&
           !strcmp(str(r, "reason"), "lost in a restart"),
       "it is interrupted now, with the reason");
    cJSON_Delete(r);
    ok(rundb_mark_lost(h, T0, "x") == 0, "nothing left running");
    f = (struct rundb_filter){0};
    ok(list_n(h, &f, NULL) == 3, "history kept across the restart");
    rundb_close(h);
}

static int64_t gone_ids[64];
static size_t ngone;

static void gone(int64_t id, void *ud)
{
    (void)ud;
    if (ngone < 64)
        gone_ids[ngone++] = id;
}

static void test_prune(void)
{
    struct rundb *h;
    char err[256], p2[300];
    snprintf(p2, sizeof(p2), "%s/prune.db", dir);
    rundb_open(&h, p2, err, sizeof(err));
    int64_t ids[10];
    for (int i = 0; i < 10; i++) {
        ids[i] = add(h, "staging", "smoke", T0 + i * DAY);
        if (i != 2)
            end(h, ids[i], 0, T0 + i * DAY + 1000);
    }
    /* run 2 is still running: it must survive any retention */
    ok(rundb_prune(h, T0 + 10 * DAY, 0, 0, gone, NULL) == 0 && ngone == 0,
       "no limits: nothing deleted");
    ok(rundb_prune(h, T0 + 10 * DAY, 5 * DAY, 0, gone, NULL) == 4 && ngone == 4,
       "older than 5 days: 4 deleted (the running one stays)");
    int right = 1;
    for (size_t i = 0; i < ngone; i++)
        right &= gone_ids[i] != ids[2] && gone_ids[i] < ids[5];
    ok(right, "the callback got the deleted ids, never the running one");
    ngone = 0;
    ok(rundb_prune(h, T0 + 10 * DAY, 0, 3, gone, NULL) == 2 && ngone == 2,
       "keep 3: 2 more deleted");
    struct rundb_filter f = {0};
    cJSON *arr;
    ok(list_n(h, &f, &arr) == 4, "left: the newest 3 and the running one");
    cJSON_Delete(arr);
    /* ids are never reused, so a run's files can never be taken by a later run */
    int64_t next = add(h, "staging", "smoke", T0 + 11 * DAY);
    ok(next == ids[9] + 1, "the next id follows the highest ever given (%lld)", (long long)next);
    rundb_close(h);
}

static void test_schema(void)
{
    struct rundb *h;
    char err[256], p3[300];
    sqlite3 *db;

    snprintf(p3, sizeof(p3), "%s/schema.db", dir);
    ok(rundb_open(&h, p3, err, sizeof(err)) == 0, "a fresh database");
    rundb_close(h);
    sqlite3_open(p3, &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    sqlite3_step(st);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    sqlite3_step(st);
    int wal = !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    ok(v == rundb_schema_version() && v >= 1, "user_version is the schema version (%d)", v);
    ok(wal, "journal mode WAL");
    /* a newer syncgate wrote this file */
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    err[0] = '\0';
    ok(rundb_open(&h, p3, err, sizeof(err)) == -EPROTO && h == NULL &&
           strstr(err, "newer than this syncgate knows"),
       "a newer schema is refused: %s", err);

    /* not a database at all */
    char p4[300];
    snprintf(p4, sizeof(p4), "%s/junk.db", dir);
    FILE *f = fopen(p4, "w");
    fputs("this is not an SQLite database, just some text that is long enough to matter\n", f);
    fclose(f);
    ok(rundb_open(&h, p4, err, sizeof(err)) == -EIO && h == NULL && err[0],
       "a file that is not a database: -EIO, %s", err);
    char p5[300];
    snprintf(p5, sizeof(p5), "%s/missing/dir/x.db", dir);
    ok(rundb_open(&h, p5, err, sizeof(err)) == -EIO && h == NULL,
       "a directory that does not exist: -EIO, %s", err);
    rundb_close(NULL);

    char buf[40];
    ok(!strcmp(rundb_format_time(T0 + 1234, buf, sizeof(buf)), "2026-01-01T00:00:01.234Z"),
       "times in RFC 3339 UTC with milliseconds");
    ok(!strcmp(rundb_result_for_exit(0), "passed") &&
           !strcmp(rundb_result_for_exit(99), "failed") &&
           !strcmp(rundb_result_for_exit(105), "interrupted") &&
           !strcmp(rundb_result_for_exit(114), "inconclusive") &&
           !strcmp(rundb_result_for_exit(112), "failed"),
       "result words for exit codes");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/history.db", dir);
    test_runs();
    test_prune();
    test_schema();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        ok(0, "remove %s", dir);
    return tap_done();
}
