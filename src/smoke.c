/* smoke: readiness wait and one VU checking every service through the gateway. */
#include "syncgate/smoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "syncgate/auth.h"
#include "syncgate/http.h"
#include "syncgate/jvu.h"
#include "syncgate/plan.h"
#include "syncgate/units.h"

#define RL_HEADERS_MAX 1024 /* rate-limit headers kept per response */

struct smoke {
    struct run *r;
    const struct config *c;
    CURL *easy;
    struct curl_slist *headers; /* the gateway's: consumer header and Kong key */
    struct plan plan;
    struct jvu vu;
    struct jvu_ctx ctx;
    _Atomic uint64_t rows;
    const char *extra[2];   /* the same as header lines for journey steps */
    char *extra_lines[2];
    bool keep_body, keep_headers;
    const struct step *cur_step;
    char ratelimit[RL_HEADERS_MAX]; /* "RateLimit-Limit: 5; Retry-After: 1" */
    size_t rl_len;
    uint64_t body;     /* response body bytes of the current request */
    bool head_done;    /* the current response's head ended (http_head_line) */
    char safe_url[CONFIG_MAX_URL + 16];  /* gateway.url for logs (config_redact_url) */
    char safe_path[CONFIG_MAX_PATH + 16]; /* the current path for logs, the same way */
    /* the status labels of each plan step (journey j's steps from first[j] on) */
    struct http_statuses *statuses;
    size_t *first;
};

/* Sleep up to usec, waking early when the run stops. Returns false if stopped. */
static bool nap(struct run *r, int64_t usec)
{
    int64_t end = units_now_mono() + usec;
    while (!run_should_stop(r)) {
        int64_t left = end - units_now_mono();
        if (left <= 0)
            return true;
        if (left > 50 * USEC_PER_MSEC)
            left = 50 * USEC_PER_MSEC;
        struct timespec ts = {0, (long)left * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    return run_should_stop(ud) ? 1 : 0;
}

static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
    struct smoke *s = ud;
    /* MAXFILESIZE only sees Content-Length: a body without one is cut here */
    s->body += size * n;
    if (s->keep_body)
        jvu_body_data(&s->vu, p, size * n);
    return s->body > HTTP_MAX_BODY ? 0 : size * n;
}


static bool has_prefix(const char *line, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    return len >= pl && !strncasecmp(line, prefix, pl);
}

bool smoke_capture_header(char *buf, size_t n, size_t *used, const char *line, size_t len)
{
    if (!has_prefix(line, len, "RateLimit") && !has_prefix(line, len, "X-RateLimit") &&
        !has_prefix(line, len, "Retry-After"))
        return false;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    size_t sep = *used ? 2 : 0;
    /* Whole or not at all: half a header would read as a different limit. */
    if (n == 0 || *used >= n || len + sep >= n - *used)
        return false;
    char *p = buf + *used;
    if (sep) {
        *p++ = ';';
        *p++ = ' ';
    }
    /* Kept as sent, so that the log masks a secret it quotes and escapes the rest;
     * only a NUL, which would end the string early, is replaced. */
    for (size_t i = 0; i < len; i++)
        *p++ = line[i] ? line[i] : '?';
    *p = '\0';
    *used += sep + len;
    return true;
}

/* Keep Kong's rate-limit headers (and Retry-After) for the rate_limited event, and the
 * headers a journey step reads. */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct smoke *s = ud;
    http_head_line(&s->head_done, p, size * n);
    smoke_capture_header(s->ratelimit, sizeof(s->ratelimit), &s->rl_len, p, size * n);
    if (s->keep_headers)
        jvu_header_line(&s->vu, s->cur_step, p, size * n);
    return size * n;
}

/* list with "name: value" appended (NULL when out of memory); the copy is wiped, as the
 * value may be the Kong key, which can be as long as any string value (a JWT, say). */
static struct curl_slist *add_header(struct curl_slist *list, const char *name, const char *value)
{
    char *line;
    if (asprintf(&line, "%s: %s", name, value) < 0)
        return NULL;
    struct curl_slist *h = curl_slist_append(list, line);
    explicit_bzero(line, strlen(line));
    free(line);
    return h;
}

static int smoke_init(struct smoke *s, struct run *r)
{
    const struct config *c = r->cfg;

    memset(s, 0, sizeof(*s));
    s->r = r;
    s->c = c;
    config_redact_url(c->gateway.url, s->safe_url, sizeof(s->safe_url));
    if (!(s->easy = curl_easy_init()))
        return -ENOMEM;
    s->headers = add_header(NULL, c->gateway.consumer_header, c->gateway.consumer);
    if (c->gateway.key && s->headers &&
        !add_header(s->headers, c->gateway.key_header, c->gateway.key))
        return -ENOMEM;
    if (!s->headers)
        return -ENOMEM;
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s->easy, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(s->easy, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_MAX_BODY);
    if (c->gateway.ca_file || c->ca_file)
        curl_easy_setopt(s->easy, CURLOPT_CAINFO, c->gateway.ca_file ? c->gateway.ca_file : c->ca_file);
    return 0;
}

static void smoke_clear(struct smoke *s)
{
    curl_slist_free_all(s->headers);
    curl_easy_cleanup(s->easy);
    plan_clear(&s->plan);
    jvu_clear(&s->vu);
    free(s->statuses);
    free(s->first);
    for (size_t i = 0; i < 2; i++)
        if (s->extra_lines[i]) {
            explicit_bzero(s->extra_lines[i], strlen(s->extra_lines[i]));
            free(s->extra_lines[i]);
        }
}

/* One request: url, method, headers (NULL: the gateway's own), body (NULL: none). */
static void smoke_send(struct smoke *s, const char *url, const char *method,
                       struct curl_slist *headers, const char *body, size_t body_len,
                       int64_t timeout, struct http_result *res)
{
    s->rl_len = 0;
    s->ratelimit[0] = '\0';
    s->body = 0;
    s->head_done = false;
    if (s->keep_body || s->keep_headers)
        jvu_reset_response(&s->vu);
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, headers ? headers : s->headers);
    curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
    if (body || !strcmp(method, "POST")) {
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body ? body : "");
    }
    curl_easy_setopt(s->easy, CURLOPT_NOBODY, !strcmp(method, "HEAD") ? 1L : 0L);
    curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST")
                         ? method
                         : NULL);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, http_timeout_ms(timeout));
    CURLcode rc = curl_easy_perform(s->easy);
    http_result_from_curl(res, s->easy, rc, s->head_done);
}

/* One request to the gateway. */
static void smoke_fetch(struct smoke *s, const char *path, const char *method, int64_t timeout,
                        struct http_result *res)
{
    /* configuration bounds both parts, so the whole URL always fits */
    char url[CONFIG_MAX_URL + CONFIG_MAX_PATH + 1];
    snprintf(url, sizeof(url), "%s%s", s->c->gateway.url, path);
    s->keep_body = s->keep_headers = false;
    smoke_send(s, url, method, NULL, NULL, 0, timeout, res);
}

int smoke_wait_ready(struct run *r)
{
    const struct config *c = r->cfg;
    if (!c->gateway.ready_path)
        return 0;
    struct smoke s;
    int rc = smoke_init(&s, r);
    config_redact_url(c->gateway.ready_path, s.safe_path, sizeof(s.safe_path));
    int64_t start = units_now_mono(), backoff = 100 * USEC_PER_MSEC;
    struct http_result res;
    int attempts = 0;

    while (rc == 0) {
        int64_t left = c->gateway.ready_timeout - (units_now_mono() - start);
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        smoke_fetch(&s, c->gateway.ready_path, "GET", left < 5 * USEC_PER_SEC ? left : 5 * USEC_PER_SEC,
                    &res);
        attempts++;
        if (res.error == HTTP_ERR_NONE && res.status == c->gateway.ready_status)
            break;
        if (run_should_stop(r)) {
            rc = -EINTR;
            break;
        }
        cJSON *ev = log_begin(r->log, "not_ready");
        cJSON_AddStringToObject(ev, "url", s.safe_url);
        cJSON_AddStringToObject(ev, "path", s.safe_path);
        cJSON_AddNumberToObject(ev, "attempt", attempts);
        cJSON_AddNumberToObject(ev, "status", res.status);
        if (res.error != HTTP_ERR_NONE)
            cJSON_AddStringToObject(ev, "error", http_error_name(res.error));
        log_emit(r->log, LOG_DEBUG, ev);
        /* Jitter keeps a fleet of gates from polling in lockstep. */
        int64_t sleep = backoff / 2 + (int64_t)(random() % (backoff / 2 + 1));
        left = c->gateway.ready_timeout - (units_now_mono() - start);
        if (!nap(r, sleep < left ? sleep : left)) {
            rc = -EINTR;
            break;
        }
        backoff = backoff * 2 > 2 * USEC_PER_SEC ? 2 * USEC_PER_SEC : backoff * 2;
    }
    /* A signal or a local failure is not a timeout: only -ETIMEDOUT becomes exit 112. */
    cJSON *ev = log_begin(r->log, rc == 0            ? "ready"
                                  : rc == -ETIMEDOUT ? "ready_timeout"
                                                     : "ready_aborted");
    cJSON_AddStringToObject(ev, "url", s.safe_url);
    cJSON_AddStringToObject(ev, "path", config_redact_url(c->gateway.ready_path, s.safe_path,
                                                          sizeof(s.safe_path)));
    cJSON_AddNumberToObject(ev, "attempts", attempts);
    cJSON_AddNumberToObject(ev, "elapsed_ms", (double)(units_now_mono() - start) / 1000.0);
    log_emit(r->log, rc == 0 ? LOG_INFO : LOG_ERROR, ev);
    smoke_clear(&s);
    return rc;
}

/* Transient failures worth another attempt: connect errors always, 502/503/504 only when
 * repeating the request is harmless (an idempotent method). */
static bool retryable(const struct http_result *res, const char *method)
{
    switch (res->error) {
    case HTTP_ERR_DNS:
    case HTTP_ERR_REFUSED:
    case HTTP_ERR_CONNECT:
        return true;
    case HTTP_ERR_NONE:
        return (res->status == 502 || res->status == 503 || res->status == 504) &&
               strcmp(method, "POST") && strcmp(method, "PATCH");
    default:
        return false;
    }
}

static void record_check(struct smoke *s, struct metrics *m, const struct tagset *ctags,
                         const char *check, bool pass, const struct http_result *res,
                         int attempts)
{
    struct tagset t = *ctags;
    struct series *se;
    tagset_set(&t, "check", check);
    if ((se = metrics_series(m, M_CHECKS, &t)))
        series_rate(se, pass);
    if (pass)
        return;
    cJSON *ev = log_begin(s->r->log, "check");
    cJSON_AddStringToObject(ev, "check", check);
    cJSON_AddStringToObject(ev, "name", tagset_get(ctags, "name"));
    const char *group = tagset_get(ctags, "group");
    if (group)
        cJSON_AddStringToObject(ev, "group", group);
    cJSON_AddBoolToObject(ev, "passed", false);
    if (res) {
        cJSON_AddNumberToObject(ev, "status", res->status);
        if (res->error != HTTP_ERR_NONE)
            cJSON_AddStringToObject(ev, "error", http_error_name(res->error));
        cJSON_AddNumberToObject(ev, "duration_ms", (double)res->duration / 1000.0);
        cJSON_AddNumberToObject(ev, "attempts", attempts);
    }
    log_emit(s->r->log, LOG_WARN, ev);
}

static void log_rate_limited(struct smoke *s, const char *name, const char *path,
                             const struct http_result *res)
{
    cJSON *ev = log_begin(s->r->log, "rate_limited");
    cJSON_AddStringToObject(ev, "name", name);
    /* the query may carry a key: shown as everywhere else */
    cJSON_AddStringToObject(ev, "path", config_redact_url(path, s->safe_path, sizeof(s->safe_path)));
    cJSON_AddNumberToObject(ev, "status", res->status);
    /* whatever the gateway sent: it may quote our key back */
    log_add_quote(s->r->log, ev, "headers", s->ratelimit, s->rl_len, false);
    if (res->status == 429)
        cJSON_AddStringToObject(ev, "message",
                                "429 during smoke: the test-runner rate-limit exemption is not in "
                                "effect");
    log_emit(s->r->log, res->status == 429 ? LOG_WARN : LOG_DEBUG, ev);
}

/*
 * Send one step with bounded retries, recording every attempt. Returns false when the
 * run was stopped (then nothing about the step is recorded).
 */
static bool smoke_attempts(struct smoke *s, struct metrics *m, pthread_mutex_t *lock,
                           const struct plan_step *ps, const struct tagset *tags,
                           struct http_statuses *st,
                           const struct jreq *req, struct http_result *res, int *attempts)
{
    int64_t backoff = SMOKE_RETRY_WAIT_FIRST;
    const char *method = ps->s->method;
    for (;;) {
        smoke_send(s, req->url, method, req->headers, req->body, req->body_len,
                   s->c->smoke.request_timeout, res);
        if (res->error == HTTP_ERR_ABORTED)
            return false; /* stopped by a signal: neither a request nor a check */
        (*attempts)++;
        bool expected = res->error == HTTP_ERR_NONE && step_status_ok(ps->s, res->status);
        pthread_mutex_lock(lock);
        http_record_judged(m, &(struct http_cache){0}, tags, st, res, expected);
        pthread_mutex_unlock(lock);
        if (res->status == 429 || s->rl_len)
            log_rate_limited(s, ps->s->name, req->url + strlen(ps->base), res);
        if (res->status == 401 && s->r->auth && s->ctx.token)
            auth_unauthorized(s->r->auth);
        if (!retryable(res, method) || *attempts > s->c->smoke.retries)
            return true;
        cJSON *ev = log_begin(s->r->log, "retry");
        cJSON_AddStringToObject(ev, "name", ps->s->name);
        cJSON_AddNumberToObject(ev, "attempt", *attempts);
        cJSON_AddNumberToObject(ev, "status", res->status);
        if (res->error != HTTP_ERR_NONE)
            cJSON_AddStringToObject(ev, "error", http_error_name(res->error));
        log_emit(s->r->log, LOG_WARN, ev);
        if (!nap(s->r, backoff))
            return false;
        backoff = backoff * 2 > SMOKE_RETRY_WAIT_MAX ? SMOKE_RETRY_WAIT_MAX : backoff * 2;
    }
}

/* Run journey j of the plan once: every step, its checks, captures for the next steps. */
static void smoke_journey(struct smoke *s, struct metrics *m, pthread_mutex_t *lock, uint32_t j)
{
    const struct plan_journey *pj = &s->plan.j[j];
    int64_t start = units_now_mono();
    bool more = true;

    jvu_start_journey(&s->vu, &s->ctx, j);
    while (more && !run_should_stop(s->r)) {
        const struct plan_step *ps = jvu_step(&s->vu, &s->ctx);
        struct tagset tags, ctags;
        struct jreq req;
        struct http_result res;
        struct jvu_verdict jv;
        char why[256];
        int attempts = 0;

        plan_tags(pj, ps, "smoke", &tags, &ctags);
        enum jvu_outcome o = jvu_prepare(&s->vu, &s->ctx, &req, why, sizeof(why));
        if (o != JVU_SEND) {
            cJSON *ev = log_begin(s->r->log, "journey_skipped");
            cJSON_AddStringToObject(ev, "group", pj->j->group);
            cJSON_AddStringToObject(ev, "name", ps->s->name);
            cJSON_AddStringToObject(ev, "reason", why);
            log_emit(s->r->log, LOG_WARN, ev);
            pthread_mutex_lock(lock);
            if (o == JVU_FAIL) /* the request cannot exist: its checks fail */
                record_check(s, m, &ctags, ps->s->status_check, false, NULL, 0);
            struct tagset st = {0};
            struct series *se;
            tagset_set(&st, "scenario", "smoke");
            tagset_set(&st, "group", pj->j->group);
            tagset_set(&st, "name", ps->s->name);
            if ((se = metrics_series(m, M_JOURNEY_SKIPPED, &st)))
                series_add(se, 1);
            pthread_mutex_unlock(lock);
            break;
        }
        s->cur_step = ps->s;
        s->keep_body = ps->s->wants_body;
        s->keep_headers = ps->s->wants_headers;
        struct http_statuses *st = &s->statuses[s->first[j] + (size_t)(ps - pj->steps)];
        if (!smoke_attempts(s, m, lock, ps, &tags, st, &req, &res, &attempts))
            return;
        more = jvu_judge(&s->vu, &s->ctx, res.error == HTTP_ERR_NONE, res.status, res.duration,
                         &jv);
        pthread_mutex_lock(lock);
        record_check(s, m, &ctags, ps->s->status_check, jv.status, &res, attempts);
        if (ps->s->latency_check)
            record_check(s, m, &ctags, ps->s->latency_check, jv.latency, &res, attempts);
        for (size_t i = 0; i < jv.nexpects; i++)
            record_check(s, m, &ctags, ps->s->expects[i].check, jv.expect[i], &res, attempts);
        for (size_t i = 0; i < jv.ncaptures; i++)
            record_check(s, m, &ctags, ps->s->captures[i].check, jv.capture[i], &res, attempts);
        pthread_mutex_unlock(lock);
    }
    if (*pj->j->group) {
        struct tagset gt = {0};
        struct series *se;
        tagset_set(&gt, "scenario", "smoke");
        tagset_set(&gt, "group", pj->j->group);
        pthread_mutex_lock(lock);
        if ((se = metrics_series(m, M_GROUP_DURATION, &gt)))
            series_trend(se, units_now_mono() - start);
        pthread_mutex_unlock(lock);
    }
}

/* Header lines of the gateway's own headers, for journey steps (which set their own list). */
static int extra_headers(struct smoke *s)
{
    const struct config *c = s->c;
    size_t n = 0;
    if (asprintf(&s->extra_lines[n++], "%s: %s", c->gateway.consumer_header,
                 c->gateway.consumer) < 0)
        return -ENOMEM;
    if (c->gateway.key &&
        asprintf(&s->extra_lines[n++], "%s: %s", c->gateway.key_header, c->gateway.key) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        s->extra[i] = s->extra_lines[i];
    s->ctx.extra = s->extra;
    s->ctx.nextra = n;
    return 0;
}

int smoke_run(struct run *r)
{
    const struct config *c = r->cfg;
    struct smoke s;
    pthread_mutex_t *lock;
    struct metrics *m = run_new_source(r, &lock);
    struct tagset t = {0};
    struct series *se;
    char why[256];
    int rc;

    if (!m)
        return -ENOMEM;
    if ((rc = smoke_init(&s, r)) < 0) {
        smoke_clear(&s);
        return rc;
    }
    rc = plan_build(&s.plan, c, PLAN_SMOKE, SCENARIO_JOURNEYS, why, sizeof(why));
    if (rc == 0) {
        s.statuses = calloc(plan_nsteps(&s.plan) + 1, sizeof(*s.statuses));
        s.first = calloc(s.plan.n + 1, sizeof(*s.first));
        if (!s.statuses || !s.first)
            rc = -ENOMEM;
        for (size_t j = 1; rc == 0 && j < s.plan.n; j++)
            s.first[j] = s.first[j - 1] + s.plan.j[j - 1].j->nsteps;
    }
    if (rc == 0) {
        s.ctx = (struct jvu_ctx){.plan = &s.plan, .rows = &s.rows,
                                 .token = r->auth ? auth_token : NULL, .token_ud = r->auth};
        rc = jvu_init(&s.vu, 1, &s.plan, (uint64_t)units_now_wall());
    }
    if (rc == 0)
        rc = extra_headers(&s);
    if (rc < 0) {
        smoke_clear(&s);
        return rc;
    }
    tagset_set(&t, "scenario", "smoke");
    pthread_mutex_lock(lock);
    if ((se = metrics_series(m, M_VUS, NULL)))
        series_set(se, 1);
    if ((se = metrics_series(m, M_VUS_MAX, NULL)))
        series_set(se, 1);
    pthread_mutex_unlock(lock);

    int64_t start = units_now_mono();
    for (int iter = 0; !run_should_stop(r); iter++) {
        if (c->smoke.iterations ? iter >= c->smoke.iterations
                                : iter > 0 && units_now_mono() - start >= c->smoke.duration)
            break;
        int64_t t0 = units_now_mono();
        /* every iteration checks health; the journeys run once, in the first */
        size_t n = iter == 0 ? s.plan.n : s.plan.nhealth;
        for (size_t j = 0; j < n && !run_should_stop(r); j++)
            smoke_journey(&s, m, lock, (uint32_t)j);
        if (run_should_stop(r))
            break;
        /* Think time, cut short where the duration ends; none after the last iteration. */
        int64_t think = c->smoke.think_time;
        if (c->smoke.iterations && iter + 1 >= c->smoke.iterations)
            think = 0;
        else if (!c->smoke.iterations && c->smoke.duration - (units_now_mono() - start) < think)
            think = c->smoke.duration - (units_now_mono() - start);
        if (think > 0 && !nap(r, think))
            break;
        pthread_mutex_lock(lock);
        if ((se = metrics_series(m, M_ITERATIONS, &t)))
            series_add(se, 1);
        if ((se = metrics_series(m, M_ITERATION_DURATION, &t)))
            series_trend(se, units_now_mono() - t0);
        pthread_mutex_unlock(lock);
    }
    /* vus keeps its last value, as k6's does: main sets it to 0 if load follows */
    smoke_clear(&s);
    return *r->stop ? -EINTR : 0;
}
