/* smoke: readiness wait and one VU checking every service through the gateway. */
#include "syncgate/smoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "syncgate/http.h"
#include "syncgate/units.h"

#define RL_HEADERS_MAX 1024 /* rate-limit headers kept per response */

struct smoke {
    struct run *r;
    const struct config *c;
    CURL *easy;
    struct curl_slist *headers;
    char ratelimit[RL_HEADERS_MAX]; /* "RateLimit-Limit: 5; Retry-After: 1" */
    size_t rl_len;
    uint64_t body;     /* response body bytes of the current request */
    bool head_done;    /* the current response's head ended (http_head_line) */
    char safe_url[512]; /* gateway.url for logs: no user info, no query */
    /* what each target's requests are recorded as: services, then the gateway */
    struct http_shape shapes[CONFIG_MAX_SERVICES + 1];
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

static size_t discard_cb(char *p, size_t size, size_t n, void *ud)
{
    struct smoke *s = ud;
    (void)p;
    /* MAXFILESIZE only sees Content-Length: a body without one is cut here */
    s->body += size * n;
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
    /* The text reaches a JSON log line: a hostile server must not inject bytes into it. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        *p++ = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    *p = '\0';
    *used += sep + len;
    return true;
}

/* Keep Kong's rate-limit headers (and Retry-After) for the rate_limited event. */
static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
    struct smoke *s = ud;
    http_head_line(&s->head_done, p, size * n);
    smoke_capture_header(s->ratelimit, sizeof(s->ratelimit), &s->rl_len, p, size * n);
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
    http_safe_url(c->gateway.url, s->safe_url, sizeof(s->safe_url));
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
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard_cb);
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
}

/* One request to the gateway. */
static void smoke_fetch(struct smoke *s, const char *path, const char *method, int64_t timeout,
                        struct http_result *res)
{
    /* configuration bounds both parts, so the whole URL always fits */
    char url[CONFIG_MAX_URL + CONFIG_MAX_PATH + 1];
    snprintf(url, sizeof(url), "%s%s", s->c->gateway.url, path);
    s->rl_len = 0;
    s->ratelimit[0] = '\0';
    s->body = 0;
    s->head_done = false;
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, http_timeout_ms(timeout));
    CURLcode rc = curl_easy_perform(s->easy);
    http_result_from_curl(res, s->easy, rc, s->head_done);
}

int smoke_wait_ready(struct run *r)
{
    const struct config *c = r->cfg;
    if (!c->gateway.ready_path)
        return 0;
    struct smoke s;
    int rc = smoke_init(&s, r);
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
        cJSON_AddStringToObject(ev, "path", c->gateway.ready_path);
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
    cJSON_AddStringToObject(ev, "path", c->gateway.ready_path);
    cJSON_AddNumberToObject(ev, "attempts", attempts);
    cJSON_AddNumberToObject(ev, "elapsed_ms", (double)(units_now_mono() - start) / 1000.0);
    log_emit(r->log, rc == 0 ? LOG_INFO : LOG_ERROR, ev);
    smoke_clear(&s);
    return rc;
}

static bool retryable(const struct http_result *res)
{
    switch (res->error) {
    case HTTP_ERR_DNS:
    case HTTP_ERR_REFUSED:
    case HTTP_ERR_CONNECT:
        return true;
    case HTTP_ERR_NONE:
        return res->status == 502 || res->status == 503 || res->status == 504;
    default:
        return false;
    }
}

static void record_check(struct smoke *s, struct metrics *m, const char *name, const char *check,
                         bool pass, const struct http_result *res, int attempts)
{
    struct tagset t = {0};
    struct series *se;
    tagset_set(&t, "check", check);
    tagset_set(&t, "name", name);
    tagset_set(&t, "scenario", "smoke");
    if ((se = metrics_series(m, M_CHECKS, &t)))
        series_rate(se, pass);
    if (pass)
        return;
    cJSON *ev = log_begin(s->r->log, "check");
    cJSON_AddStringToObject(ev, "check", check);
    cJSON_AddStringToObject(ev, "name", name);
    cJSON_AddBoolToObject(ev, "passed", false);
    cJSON_AddNumberToObject(ev, "status", res->status);
    if (res->error != HTTP_ERR_NONE)
        cJSON_AddStringToObject(ev, "error", http_error_name(res->error));
    cJSON_AddNumberToObject(ev, "duration_ms", (double)res->duration / 1000.0);
    cJSON_AddNumberToObject(ev, "attempts", attempts);
    log_emit(s->r->log, LOG_WARN, ev);
}

/* Request one target with bounded retries, then record its two checks. */
static void smoke_target(struct smoke *s, struct metrics *m, pthread_mutex_t *lock,
                         struct http_shape *shape, const char *name, const char *path,
                         const char *method, int expect, int64_t max_latency)
{
    struct http_result res;
    int attempts = 0;
    int64_t backoff = 200 * USEC_PER_MSEC;

    if (!shape->tags.n) {
        tagset_set(&shape->tags, "name", name);
        tagset_set(&shape->tags, "method", method);
        tagset_set(&shape->tags, "scenario", "smoke");
        shape->expect_status = expect;
    }
    for (;;) {
        smoke_fetch(s, path, method, s->c->smoke.request_timeout, &res);
        if (res.error == HTTP_ERR_ABORTED)
            return; /* stopped by a signal: neither a request nor a check */
        attempts++;
        pthread_mutex_lock(lock);
        http_record(m, shape, &res);
        pthread_mutex_unlock(lock);
        if (res.status == 429 || s->rl_len) {
            cJSON *ev = log_begin(s->r->log, "rate_limited");
            cJSON_AddStringToObject(ev, "name", name);
            cJSON_AddStringToObject(ev, "path", path);
            cJSON_AddNumberToObject(ev, "status", res.status);
            cJSON_AddStringToObject(ev, "headers", s->ratelimit);
            if (res.status == 429)
                cJSON_AddStringToObject(ev, "message",
                                        "429 during smoke: the test-runner rate-limit "
                                        "exemption is not in effect");
            log_emit(s->r->log, res.status == 429 ? LOG_WARN : LOG_DEBUG, ev);
        }
        if (!retryable(&res) || attempts > s->c->smoke.retries)
            break;
        cJSON *ev = log_begin(s->r->log, "retry");
        cJSON_AddStringToObject(ev, "name", name);
        cJSON_AddNumberToObject(ev, "attempt", attempts);
        cJSON_AddNumberToObject(ev, "status", res.status);
        if (res.error != HTTP_ERR_NONE)
            cJSON_AddStringToObject(ev, "error", http_error_name(res.error));
        log_emit(s->r->log, LOG_WARN, ev);
        if (!nap(s->r, backoff))
            return;
        backoff *= 2;
    }

    char check[256], lat[32];
    pthread_mutex_lock(lock);
    snprintf(check, sizeof(check), "%s status %d", name, expect);
    record_check(s, m, name, check, res.error == HTTP_ERR_NONE && res.status == expect, &res,
                 attempts);
    snprintf(check, sizeof(check), "%s latency < %s", name,
             units_format_duration(max_latency, lat, sizeof(lat)));
    record_check(s, m, name, check, res.status > 0 && res.duration < max_latency, &res,
                 attempts);
    pthread_mutex_unlock(lock);
}

int smoke_run(struct run *r)
{
    const struct config *c = r->cfg;
    struct smoke s;
    pthread_mutex_t *lock;
    struct metrics *m = run_new_source(r, &lock);
    struct tagset t = {0};
    struct series *se;
    int rc;

    if (!m)
        return -ENOMEM;
    if ((rc = smoke_init(&s, r)) < 0) {
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
        if (c->gateway.ready_path)
            smoke_target(&s, m, lock, &s.shapes[CONFIG_MAX_SERVICES], "gateway",
                         c->gateway.ready_path, "GET", c->gateway.ready_status, USEC_PER_SEC);
        for (size_t i = 0; i < c->nservices && !run_should_stop(r); i++) {
            const struct service *sv = &c->services[i];
            if (sv->smoke_path)
                smoke_target(&s, m, lock, &s.shapes[i], sv->name, sv->smoke_path, sv->method,
                             sv->expect_status, sv->max_latency);
        }
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
