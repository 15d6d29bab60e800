/* serve_api: the endpoints of `syncgate serve`. */
#include "syncgate/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void healthz(struct serve *s, struct serve_resp *resp)
{
    struct rundb_stats st;
    cJSON *o = cJSON_CreateObject();
    /* the one dependency that can fail under us: the database on its volume */
    bool db = rundb_stats(s->h, &st) == 0;
    cJSON_AddStringToObject(o, "status", db ? "ok" : "database unavailable");
    cJSON_AddStringToObject(o, "version", SYNCGATE_VERSION);
    int64_t id = serve_runs_active_id(s);
    if (id)
        cJSON_AddNumberToObject(o, "running", (double)id);
    else
        cJSON_AddNullToObject(o, "running");
    serve_resp_json(resp, db ? 200 : 503, o);
}

static void metrics(struct serve *s, struct serve_resp *resp)
{
    struct rundb_stats st;
    char *text = NULL;
    size_t len = 0;
    if (rundb_stats(s->h, &st) < 0) {
        serve_resp_error(resp, 503, "cannot read the history");
        return;
    }
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        serve_resp_error(resp, 500, "out of memory");
        return;
    }
    const struct {
        const char *result;
        uint64_t n;
    } by[] = {{"passed", st.passed},
              {"failed", st.failed},
              {"inconclusive", st.inconclusive},
              {"interrupted", st.interrupted},
              {"error", st.error}};
    fputs("# HELP syncgate_serve_runs Runs kept in the history, by result.\n"
          "# TYPE syncgate_serve_runs gauge\n",
          f);
    for (size_t i = 0; i < sizeof(by) / sizeof(by[0]); i++)
        fprintf(f, "syncgate_serve_runs{result=\"%s\"} %llu\n", by[i].result,
                (unsigned long long)by[i].n);
    int64_t active = serve_runs_active_id(s);
    fprintf(f,
            "# HELP syncgate_serve_running Whether a run is in progress (1) or not (0).\n"
            "# TYPE syncgate_serve_running gauge\nsyncgate_serve_running %d\n",
            active ? 1 : 0);
    if (st.last_id) {
        fprintf(f,
                "# HELP syncgate_serve_last_run_passed 1 when the last finished run passed, "
                "0 when not.\n"
                "# TYPE syncgate_serve_last_run_passed gauge\nsyncgate_serve_last_run_passed %d\n",
                !strcmp(st.last_result, "passed"));
        fprintf(f,
                "# HELP syncgate_serve_last_run_info The last finished run: its id and result.\n"
                "# TYPE syncgate_serve_last_run_info gauge\n"
                "syncgate_serve_last_run_info{id=\"%lld\",result=\"%s\"} 1\n",
                (long long)st.last_id, st.last_result);
        if (st.last_exit_code >= 0)
            fprintf(f,
                    "# HELP syncgate_serve_last_run_exit_code Exit code of the last finished "
                    "run.\n# TYPE syncgate_serve_last_run_exit_code gauge\n"
                    "syncgate_serve_last_run_exit_code %d\n",
                    st.last_exit_code);
        fprintf(f,
                "# HELP syncgate_serve_last_run_finished_timestamp_seconds When the last run "
                "finished.\n# TYPE syncgate_serve_last_run_finished_timestamp_seconds gauge\n"
                "syncgate_serve_last_run_finished_timestamp_seconds %.3f\n",
                (double)st.last_finished_ms / 1000.0);
    }
    if (fclose(f) != 0) {
        free(text);
        serve_resp_error(resp, 500, "out of memory");
        return;
    }
    resp->status = 200;
    resp->type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = text;
    resp->len = len;
}

struct list_ctx {
    struct rundb_filter f;
    unsigned seen;
    char err[512];
};

static int list_arg(void *ud, const char *key, const char *value)
{
    struct list_ctx *c = ud;
    return api_parse_list_arg(&c->f, &c->seen, key, value, c->err, sizeof(c->err)) < 0;
}

static void list(struct serve *s, const struct serve_req *req, struct serve_resp *resp)
{
    struct list_ctx c = {0};
    cJSON *runs;
    if (serve_req_args(req, list_arg, &c)) {
        serve_resp_error(resp, 400, "%s", c.err);
        return;
    }
    if (rundb_list(s->h, &c.f, &runs) < 0) {
        serve_resp_error(resp, 500, "cannot read the history");
        return;
    }
    int n = cJSON_GetArraySize(runs);
    for (cJSON *r = runs->child; r; r = r->next)
        serve_runs_add_progress(s, r);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "runs", runs);
    cJSON_AddNumberToObject(o, "count", n);
    size_t limit = c.f.limit ? c.f.limit : 20;
    cJSON *last = cJSON_GetArrayItem(runs, n - 1);
    /* a full page may have more behind it: the next page starts before its last id */
    if (n > 0 && (size_t)n == limit && last)
        cJSON_AddNumberToObject(o, "nextBefore",
                                cJSON_GetObjectItemCaseSensitive(last, "id")->valuedouble);
    serve_resp_json(resp, 200, o);
}

static void get(struct serve *s, int64_t id, struct serve_resp *resp)
{
    cJSON *o;
    if (serve_run_get(s, id, &o, resp) < 0)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/api/tests/%lld", (long long)id);
    cJSON *links = cJSON_AddObjectToObject(o, "links");
    static const char *const files[][2] = {{"report", "/report.html"},
                                           {"summary", "/summary.json"},
                                           {"log", "/log"}};
    for (size_t i = 0; i < 3; i++) {
        char l[96];
        snprintf(l, sizeof(l), "%s%s", path, files[i][1]);
        cJSON_AddStringToObject(links, files[i][0], l);
    }
    serve_runs_add_progress(s, o);
    serve_resp_json(resp, 200, o);
}

/* One of a run's files, sent from disk. */
static void run_file(struct serve *s, int64_t id, const char *name, const char *type,
                     const char *what, struct serve_resp *resp)
{
    char path[PATH_MAX];
    cJSON *o;
    if (serve_run_get(s, id, &o, resp) < 0)
        return;
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
    bool running = cJSON_IsString(state) && !strcmp(state->valuestring, "running");
    cJSON_Delete(o);
    int fd = open(serve_run_file(s, id, name, path, sizeof(path)), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        if (running && strcmp(name, "stderr.log") != 0)
            serve_resp_error(resp, 409, "run %lld is still running: its %s is written when it "
                                        "ends", (long long)id, what);
        else
            serve_resp_error(resp, 404, "run %lld has no %s (it ended before writing one, or "
                                        "retention removed it)", (long long)id, what);
        return;
    }
    resp->status = 200;
    resp->type = type;
    resp->fd = fd;
    resp->fd_size = (uint64_t)st.st_size;
    resp->report = !strcmp(name, "report.html");
}

void serve_api_handle(void *ud, const struct serve_req *req, struct serve_resp *resp)
{
    struct serve *s = ud;
    switch (req->route.ep) {
    case API_HEALTHZ:
        healthz(s, resp);
        return;
    case API_METRICS:
        metrics(s, resp);
        return;
    case API_RUN: {
        struct api_run_request r;
        char err[1024];
        if (api_parse_run(req->body, req->len, &r, err, sizeof(err)) < 0) {
            serve_resp_error(resp, 400, "%s", err);
            return;
        }
        serve_runs_start(s, &r, resp);
        api_run_request_clear(&r);
        return;
    }
    case API_LIST:
        list(s, req, resp);
        return;
    case API_GET:
        get(s, req->route.id, resp);
        return;
    case API_REPORT:
        run_file(s, req->route.id, "report.html", "text/html; charset=utf-8", "report", resp);
        return;
    case API_SUMMARY:
        run_file(s, req->route.id, "summary.json", "application/json", "summary", resp);
        return;
    case API_LOG:
        run_file(s, req->route.id, "stderr.log", "text/plain; charset=utf-8", "log", resp);
        return;
    case API_CANCEL:
        serve_runs_cancel(s, req->route.id, resp);
        return;
    }
    serve_resp_error(resp, 500, "unhandled endpoint");
}
