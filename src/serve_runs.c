/* serve_runs: one run at a time, as a child process, watched and recorded. */
#include "syncgate/serve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syncgate/runner.h"
#include "syncgate/units.h"

struct serve_run {
    struct serve *s;
    int64_t id;
    char testid[40];
    char test_type[8];
    char profile[API_MAX_PROFILE_NAME + 1];
    char profile_path[PATH_MAX];
    char dir[PATH_MAX];
    char **argv, **envp; /* owned */
    pthread_t thread;
    int64_t start_mono;

    /* guarded by s->lock */
    struct runner *runner;
    bool spawned;  /* runner_start returned (spawn_rc says how) */
    int spawn_rc;
    bool cancel, shutdown, term_sent, killed;
    int64_t stop_asked; /* mono usec of the cancel or shutdown */
    cJSON *progress;
};

static int64_t now_ms(void)
{
    return units_now_wall() / 1000;
}

const char *serve_run_file(const struct serve *s, int64_t id, const char *name, char *buf,
                           size_t n)
{
    snprintf(buf, n, "%.3900s/%lld/%s", s->runs_dir, (long long)id, name);
    return buf;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void free_run(struct serve_run *r)
{
    if (!r)
        return;
    runner_free(r->runner);
    free_strv(r->argv);
    free_strv(r->envp);
    cJSON_Delete(r->progress);
    free(r);
}

/* Join the thread of the run that finished last; call with s->lock held. */
static void reap_last(struct serve *s)
{
    if (s->last) {
        pthread_join(s->last->thread, NULL);
        free_run(s->last);
        s->last = NULL;
    }
}

/* ---- the child's log lines ---- */

static void copy_number(cJSON *dst, const char *to, const cJSON *src, const char *from)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, from);
    if (cJSON_IsNumber(v)) {
        cJSON_DeleteItemFromObjectCaseSensitive(dst, to);
        cJSON_AddNumberToObject(dst, to, v->valuedouble);
    }
}

static void set_string(cJSON *dst, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(dst, key);
    cJSON_AddStringToObject(dst, key, value);
}

/* Every line goes on to the server's own log (Loki sees runs as it sees Jobs); the JSON
 * ones also update the run's progress. */
static void on_line(const char *line, size_t len, void *ud)
{
    struct serve_run *r = ud;
    struct serve *s = r->s;

    log_raw(s->log, line, len);
    cJSON *ev = len && line[0] == '{' ? cJSON_ParseWithLength(line, len) : NULL;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "event");
    if (!cJSON_IsString(name)) {
        cJSON_Delete(ev);
        return;
    }
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(ev, "test_type");
    pthread_mutex_lock(&s->lock);
    cJSON *p = r->progress;
    if (p) {
        set_string(p, "lastEvent", name->valuestring);
        if (cJSON_IsString(tt) && tt->valuestring[0])
            set_string(p, "phase", tt->valuestring);
        if (!strcmp(name->valuestring, "progress")) {
            copy_number(p, "elapsedS", ev, "elapsed_s");
            copy_number(p, "vus", ev, "vus");
            copy_number(p, "vusMax", ev, "vus_max");
            copy_number(p, "requests", ev, "requests");
            copy_number(p, "failures", ev, "failures");
            copy_number(p, "reqPerS", ev, "req_s");
        }
        if (!strcmp(name->valuestring, "progress") || !strcmp(name->valuestring, "stage")) {
            copy_number(p, "stage", ev, "stage");
            copy_number(p, "stages", ev, "stages");
        }
        if (!strcmp(name->valuestring, "check")) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "checksFailed");
            double k = cJSON_IsNumber(n) ? n->valuedouble + 1 : 1;
            cJSON_DeleteItemFromObjectCaseSensitive(p, "checksFailed");
            cJSON_AddNumberToObject(p, "checksFailed", k);
        }
        if (!strcmp(name->valuestring, "test_finish"))
            copy_number(p, "exitCode", ev, "exit_code");
    }
    pthread_mutex_unlock(&s->lock);
    cJSON_Delete(ev);
}

/* Every tick of the wait: the SIGTERM of a cancel or shutdown, then SIGKILL past the timeout. */
static void on_tick(void *ud)
{
    struct serve_run *r = ud;
    struct serve *s = r->s;

    pthread_mutex_lock(&s->lock);
    if ((r->cancel || r->shutdown) && r->runner) {
        if (!r->term_sent) {
            runner_signal(r->runner, SIGTERM);
            r->term_sent = true;
        } else if (!r->killed && units_now_mono() - r->stop_asked > s->o.stop_timeout) {
            runner_signal(r->runner, SIGKILL);
            r->killed = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the end of a run ---- */

/* The summary file as compact JSON text, and its failed thresholds as a JSON array. */
static void read_summary(const char *path, char **summary, char **failed)
{
    *summary = *failed = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > RUNDB_MAX_SUMMARY) {
        close(fd);
        return;
    }
    char *text = malloc((size_t)st.st_size + 1);
    ssize_t n = text ? read(fd, text, (size_t)st.st_size) : -1;
    close(fd);
    if (n < 0) {
        free(text);
        return;
    }
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return;
    cJSON *list = cJSON_CreateArray();
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    for (const cJSON *m = metrics ? metrics->child : NULL; m && list; m = m->next) {
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(m, "thresholds");
        for (const cJSON *t = th ? th->child : NULL; t; t = t->next)
            if (cJSON_IsTrue(t)) { /* k6's convention: true means failed */
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "metric", m->string);
                cJSON_AddStringToObject(o, "threshold", t->string);
                cJSON_AddItemToArray(list, o);
            }
    }
    *summary = cJSON_PrintUnformatted(root);
    *failed = list ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    cJSON_Delete(root);
}

static const char *exit_reason(int code)
{
    switch (code) {
    case 99: return "a threshold failed";
    case 104: return "invalid configuration: nothing was sent (see the run's log)";
    case 112: return "the gateway never became ready within the readiness timeout";
    case 113: return "metrics could not be delivered and the profile requires it";
    case 116: return "the OAuth2 token could not be fetched: no journey request was sent";
    case 1: return "internal failure (see the run's log)";
    default: return NULL;
    }
}

static void record_end(struct serve_run *r, int wait_rc, int status)
{
    struct serve *s = r->s;
    char reason[256] = "", path[PATH_MAX];
    char *summary = NULL, *failed = NULL;
    struct rundb_end e = {.exit_code = -1, .finished_ms = now_ms()};

    pthread_mutex_lock(&s->lock);
    bool cancel = r->cancel, shutdown = r->shutdown, killed = r->killed;
    pthread_mutex_unlock(&s->lock);

    if (wait_rc < 0) {
        e.state = "finished";
        e.result = "error";
        snprintf(reason, sizeof(reason), "lost track of the run: %s", strerror(-wait_rc));
    } else if (WIFEXITED(status)) {
        e.exit_code = WEXITSTATUS(status);
        e.result = rundb_result_for_exit(e.exit_code);
        e.state = e.exit_code == 105 ? "interrupted" : "finished";
        if (e.exit_code == 105)
            snprintf(reason, sizeof(reason), "%s",
                     cancel     ? "cancelled through the API"
                     : shutdown ? "the server was stopped while the run was in progress"
                                : "interrupted by a signal");
        else if (exit_reason(e.exit_code))
            snprintf(reason, sizeof(reason), "%s", exit_reason(e.exit_code));
    } else {
        int sig = WTERMSIG(status);
        if (killed) {
            e.state = "interrupted";
            e.result = "interrupted";
            snprintf(reason, sizeof(reason), "%s, and killed after it did not stop within %llds",
                     cancel ? "cancelled through the API" : "the server was stopped",
                     (long long)(s->o.stop_timeout / USEC_PER_SEC));
        } else {
            e.state = "finished";
            e.result = "error";
            snprintf(reason, sizeof(reason), "the run died of signal %d (%s)", sig,
                     strsignal(sig));
        }
    }
    read_summary(serve_run_file(s, r->id, "summary.json", path, sizeof(path)), &summary, &failed);
    e.summary = summary;
    e.failed_thresholds = failed;
    e.reason = reason[0] ? reason : NULL;
    int rc = rundb_finish(s->h, r->id, &e);

    cJSON *ev = log_begin(s->log, "run_finish");
    cJSON_AddNumberToObject(ev, "id", (double)r->id);
    cJSON_AddStringToObject(ev, "run_testid", r->testid);
    cJSON_AddStringToObject(ev, "state", e.state);
    cJSON_AddStringToObject(ev, "result", e.result);
    if (e.exit_code >= 0)
        cJSON_AddNumberToObject(ev, "exit_code", e.exit_code);
    if (e.reason)
        cJSON_AddStringToObject(ev, "reason", e.reason);
    cJSON_AddNumberToObject(ev, "duration_ms",
                            (double)((units_now_mono() - r->start_mono) / USEC_PER_MSEC));
    if (rc < 0)
        cJSON_AddStringToObject(ev, "history_error", strerror(-rc));
    log_emit(s->log, rc < 0 || !strcmp(e.result, "error") ? LOG_ERROR : LOG_INFO, ev);
    free(summary);
    free(failed);
}

static void *supervise(void *ud)
{
    struct serve_run *r = ud;
    struct serve *s = r->s;
    char out[PATH_MAX], err[PATH_MAX];
    struct runner *runner = NULL;
    int status = 0;

    struct runner_spec spec = {
        .exe = s->exe,
        .argv = r->argv,
        .envp = r->envp,
        .out_path = serve_run_file(s, r->id, "stdout.log", out, sizeof(out)),
        .err_path = serve_run_file(s, r->id, "stderr.log", err, sizeof(err)),
        .max_bytes = SERVE_MAX_RUN_LOG,
    };
    /* forked from this thread, which lives exactly as long as the child: PDEATHSIG */
    int rc = runner_start(&runner, &spec, on_line, r);
    pthread_mutex_lock(&s->lock);
    r->runner = runner;
    r->spawned = true;
    r->spawn_rc = rc;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);

    if (rc == 0) {
        rc = runner_wait(runner, &status, on_tick, r);
        record_end(r, rc, status);
    } else {
        char reason[256];
        snprintf(reason, sizeof(reason), "cannot start %.150s: %s", s->exe, strerror(-rc));
        struct rundb_end e = {"finished", "error", -1, reason, now_ms(), NULL, NULL};
        rundb_finish(s->h, r->id, &e);
        log_msg(s->log, LOG_ERROR, "run_error", "run %lld: %s", (long long)r->id, reason);
    }
    serve_runs_prune(s);
    pthread_mutex_lock(&s->lock);
    s->active = NULL;
    s->last = r; /* joined and freed by the next start, or at shutdown */
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- starting ---- */

/* "a, b, c" of the profile names in the directory, for a message. */
static void list_profiles(const char *dir, char *buf, size_t n)
{
    DIR *d = opendir(dir);
    size_t k = 0;
    buf[0] = '\0';
    if (!d) {
        snprintf(buf, n, "none (cannot read %s: %s)", dir, strerror(errno));
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        char name[API_MAX_PROFILE_NAME + 1];
        if (len < 6 || len - 5 > API_MAX_PROFILE_NAME || strcmp(e->d_name + len - 5, ".yaml"))
            continue;
        memcpy(name, e->d_name, len - 5);
        name[len - 5] = '\0';
        if (!api_profile_name_ok(name) || k + len + 3 >= n)
            continue;
        k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", name);
    }
    closedir(d);
    if (!k)
        snprintf(buf, n, "none");
}

static void new_testid(char *buf, size_t n)
{
    unsigned char b[8];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        uint64_t t = (uint64_t)units_now_wall() ^ ((uint64_t)getpid() << 32);
        memcpy(b, &t, sizeof(b));
    }
    snprintf(buf, n, "%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7]);
}

/* The server's environment for the child: its own TESTID, none of the SYNCGATE_ variables
 * (the server's own settings; the run gets its profile with -p). */
static char **child_env(char *const *envp, const char *testid)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **e = calloc(n + 2, sizeof(char *));
    size_t k = 0;
    if (!e)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(envp[i], "TESTID=", 7) || !strncmp(envp[i], "SYNCGATE_", 9))
            continue;
        if (!(e[k++] = strdup(envp[i])))
            goto fail;
    }
    if (asprintf(&e[k], "TESTID=%s", testid) < 0) {
        e[k] = NULL;
        goto fail;
    }
    return e;
fail:
    free_strv(e);
    return NULL;
}

static char **child_argv(const struct serve *s, const struct serve_run *r,
                         const struct api_run_request *req)
{
    char summary[PATH_MAX], report[PATH_MAX];
    const char *fixed[] = {
        s->exe, r->test_type, "-p", r->profile_path, "--log-format", "json",
        "--summary-export", serve_run_file(s, r->id, "summary.json", summary, sizeof(summary)),
        "--report", serve_run_file(s, r->id, "report.html", report, sizeof(report)),
        /* a profile's own JUnit path is not the service's to write, and the pod's
         * termination message is the server's, not its last run's */
        "--set", "output.junit=null", "--set", "notify.termination_log=null",
    };
    size_t nf = sizeof(fixed) / sizeof(fixed[0]);
    char **v = calloc(nf + 2 * req->nsets + 1, sizeof(char *));
    size_t k = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < nf; i++)
        if (!(v[k++] = strdup(fixed[i])))
            goto fail;
    for (size_t i = 0; i < req->nsets; i++)
        if (!(v[k++] = strdup("--set")) || !(v[k++] = strdup(req->sets[i])))
            goto fail;
    return v;
fail:
    free_strv(v);
    return NULL;
}

/* The run as a job would see it, checked here so that a bad request starts nothing.
 * Returns 0 with the environment label in env, or -EINVAL with why in msg. */
static int validate(const struct serve_run *r, const struct api_run_request *req, char *env,
                    size_t envn, char *msg, size_t n)
{
    struct config cfg;
    struct diag d;
    char why[2048];
    const char *sets[API_MAX_OVERRIDES + 1];
    struct config_cli cli = {.profile = r->profile_path, .sets = sets};
    int rc;

    memset(&d, 0, sizeof(d));
    for (size_t i = 0; i < req->nsets; i++)
        sets[cli.nsets++] = req->sets[i];
    if (config_init(&cfg) < 0)
        return -ENOMEM;
    rc = config_resolve(&cfg, &cli, r->envp, &d);
    if (rc == 0 && strcmp(r->test_type, "smoke") != 0)
        rc = config_check_load(&cfg, &d);
    if (rc < 0)
        snprintf(msg, n, "profile %s: %s", r->profile, diag_format(&d, why, sizeof(why)));
    else
        snprintf(env, envn, "%s", cfg.environment ? cfg.environment : "");
    config_clear(&cfg);
    return rc < 0 ? -EINVAL : 0;
}

static cJSON *run_json(struct serve *s, int64_t id)
{
    cJSON *o = NULL;
    if (rundb_get(s->h, id, &o) < 0)
        return NULL;
    serve_runs_add_progress(s, o);
    return o;
}

void serve_runs_start(struct serve *s, const struct api_run_request *req,
                      struct serve_resp *resp)
{
    const char *profile = req->profile[0] ? req->profile : s->o.default_profile;
    char msg[3000], env[300];
    struct stat st;

    if (!profile) {
        serve_resp_error(resp, 400, "profile: none given and the server has no default "
                                    "profile (--default-profile)");
        return;
    }
    struct serve_run *r = calloc(1, sizeof(*r));
    if (!r) {
        serve_resp_error(resp, 500, "out of memory");
        return;
    }
    r->s = s;
    snprintf(r->test_type, sizeof(r->test_type), "%s", req->test_type);
    snprintf(r->profile, sizeof(r->profile), "%s", profile);
    snprintf(r->profile_path, sizeof(r->profile_path), "%s/%s.yaml", s->o.profiles_dir, profile);
    if (stat(r->profile_path, &st) < 0 || !S_ISREG(st.st_mode)) {
        list_profiles(s->o.profiles_dir, msg, sizeof(msg));
        serve_resp_error(resp, 400, "profile: no profile \"%s\"; profiles: %s", profile, msg);
        free_run(r);
        return;
    }
    new_testid(r->testid, sizeof(r->testid));

    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        serve_resp_error(resp, 503, "the server is shutting down");
        goto out;
    }
    if (s->active) {
        cJSON *o = cJSON_CreateObject();
        snprintf(msg, sizeof(msg), "run %lld is still running: one run at a time",
                 (long long)s->active->id);
        cJSON_AddStringToObject(o, "error", msg);
        cJSON_AddNumberToObject(o, "running", (double)s->active->id);
        serve_resp_json(resp, 409, o);
        goto out;
    }
    reap_last(s);
    if (!(r->envp = child_env(s->envp, r->testid))) {
        serve_resp_error(resp, 500, "out of memory");
        goto out;
    }
    if (validate(r, req, env, sizeof(env), msg, sizeof(msg)) < 0) {
        serve_resp_error(resp, 400, "%s", msg);
        goto out;
    }
    struct rundb_new hn = {r->testid, r->profile, env, r->test_type, req->overrides,
                             now_ms()};
    if (rundb_insert(s->h, &hn, &r->id) < 0) {
        serve_resp_error(resp, 500, "cannot record the run in the history");
        goto out;
    }
    r->dir[0] = '\0';
    snprintf(r->dir, sizeof(r->dir), "%.4000s/%lld", s->runs_dir, (long long)r->id);
    r->argv = child_argv(s, r, req);
    if (!r->argv || (mkdir(r->dir, 0750) < 0 && errno != EEXIST)) {
        snprintf(msg, sizeof(msg), "cannot prepare %.2000s: %s", r->dir,
                 r->argv ? strerror(errno) : "out of memory");
        struct rundb_end e = {"finished", "error", -1, msg, now_ms(), NULL, NULL};
        rundb_finish(s->h, r->id, &e);
        serve_resp_error(resp, 500, "%s", msg);
        goto out;
    }
    r->progress = cJSON_CreateObject();
    r->start_mono = units_now_mono();
    s->active = r;
    if (pthread_create(&r->thread, NULL, supervise, r) != 0) {
        s->active = NULL;
        struct rundb_end e = {"finished", "error", -1, "cannot start a thread", now_ms(),
                                NULL, NULL};
        rundb_finish(s->h, r->id, &e);
        serve_resp_error(resp, 500, "cannot start a thread for the run");
        goto out;
    }
    while (!r->spawned)
        pthread_cond_wait(&s->cond, &s->lock);
    int spawn_rc = r->spawn_rc;
    int64_t id = r->id;
    r = NULL; /* the thread owns it now */
    pthread_mutex_unlock(&s->lock);

    if (spawn_rc < 0) {
        serve_resp_error(resp, 500, "cannot start the run: %s", strerror(-spawn_rc));
        return;
    }
    cJSON *ev = log_begin(s->log, "run_start");
    cJSON_AddNumberToObject(ev, "id", (double)id);
    cJSON_AddStringToObject(ev, "run_testid", hn.testid);
    cJSON_AddStringToObject(ev, "profile", hn.profile);
    cJSON_AddStringToObject(ev, "test_type_requested", hn.test_type);
    cJSON_AddStringToObject(ev, "overrides", req->overrides ? req->overrides : "{}");
    log_emit(s->log, LOG_INFO, ev);
    cJSON *o = run_json(s, id);
    if (!o) {
        serve_resp_error(resp, 500, "cannot read run %lld back", (long long)id);
        return;
    }
    serve_resp_json(resp, 202, o);
    snprintf(resp->location, sizeof(resp->location), "/api/tests/%lld", (long long)id);
    return;
out:
    pthread_mutex_unlock(&s->lock);
    free_run(r);
}

/* ---- cancel, progress, stop ---- */

void serve_runs_cancel(struct serve *s, int64_t id, struct serve_resp *resp)
{
    pthread_mutex_lock(&s->lock);
    bool active = s->active && s->active->id == id;
    if (active && !s->active->cancel) {
        s->active->cancel = true;
        s->active->stop_asked = units_now_mono();
        if (s->active->runner) {
            runner_signal(s->active->runner, SIGTERM);
            s->active->term_sent = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    cJSON *o = NULL;
    if (serve_run_get(s, id, &o, resp) < 0)
        return;
    if (!active) {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
        serve_resp_error(resp, 409, "run %lld is not running (%s)", (long long)id,
                         cJSON_IsString(state) ? state->valuestring : "?");
        cJSON_Delete(o);
        return;
    }
    log_msg(s->log, LOG_INFO, "run_cancel", "run %lld: cancel asked through the API",
            (long long)id);
    cJSON_AddBoolToObject(o, "cancelRequested", true);
    serve_runs_add_progress(s, o);
    serve_resp_json(resp, 202, o);
}

int serve_run_get(struct serve *s, int64_t id, cJSON **out, struct serve_resp *resp)
{
    int rc = rundb_get(s->h, id, out);
    if (rc == -ENOENT)
        serve_resp_error(resp, 404, "no run %lld", (long long)id);
    else if (rc < 0)
        serve_resp_error(resp, 500, "cannot read the history");
    return rc < 0 ? rc : 0;
}

void serve_runs_add_progress(struct serve *s, cJSON *run)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(run, "id");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(run, "state");
    /* a run recorded as ended is over, even while its thread still tidies up */
    if (!cJSON_IsString(state) || strcmp(state->valuestring, "running") != 0)
        return;
    pthread_mutex_lock(&s->lock);
    if (s->active && cJSON_IsNumber(id) && (int64_t)id->valuedouble == s->active->id &&
        s->active->progress) {
        cJSON *p = cJSON_Duplicate(s->active->progress, true);
        if (p) {
            cJSON_AddNumberToObject(p, "runningForS",
                                    (double)((units_now_mono() - s->active->start_mono) /
                                             USEC_PER_MSEC) / 1000.0);
            cJSON_AddItemToObject(run, "progress", p);
        }
        if (s->active->cancel)
            cJSON_AddBoolToObject(run, "cancelRequested", true);
    }
    pthread_mutex_unlock(&s->lock);
}

int64_t serve_runs_active_id(struct serve *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t id = s->active ? s->active->id : 0;
    pthread_mutex_unlock(&s->lock);
    return id;
}

void serve_runs_stop(struct serve *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    if (s->active) {
        struct serve_run *r = s->active;
        log_msg(s->log, LOG_INFO, "run_stop", "run %lld: stopping it before the server stops",
                (long long)r->id);
        r->shutdown = true;
        r->stop_asked = units_now_mono();
        if (r->runner && !r->term_sent) {
            runner_signal(r->runner, SIGTERM);
            r->term_sent = true;
        }
        /* the run's tick kills it after stop_timeout, so this wait ends */
        while (s->active)
            pthread_cond_wait(&s->cond, &s->lock);
    }
    reap_last(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- retention ---- */

static void remove_run_dir(int64_t id, void *ud)
{
    struct serve *s = ud;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%.4000s/%lld", s->runs_dir, (long long)id);
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

void serve_runs_prune(struct serve *s)
{
    int n = rundb_prune(s->h, now_ms(), s->o.retention_age / 1000, s->o.retention_runs,
                          remove_run_dir, s);
    if (n > 0) {
        cJSON *ev = log_begin(s->log, "retention");
        cJSON_AddNumberToObject(ev, "deleted", n);
        log_emit(s->log, LOG_INFO, ev);
    } else if (n < 0) {
        log_msg(s->log, LOG_WARN, "retention", "cannot apply retention: %s", strerror(-n));
    }
}
