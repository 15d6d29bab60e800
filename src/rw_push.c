/* rw_push: the remote-write push thread, its ordered queue and its retries. */
#include "syncgate/rw.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "syncgate/http.h"
#include "syncgate/log.h"

#ifndef SYNCGATE_VERSION
#define SYNCGATE_VERSION "0"
#endif

struct rw_item {
    struct rw_item *next;
    struct rw_batch b;
    unsigned attempts;
};

struct rw_push {
    struct log *log;
    rw_snapshot_cb snapshot_cb;
    void *ud;
    struct rw_encoder *enc;
    struct rw_push_opts o;
    int64_t interval;
    bool stale_markers;
    char safe_url[CONFIG_MAX_URL + 16]; /* for logs (config_redact_url) */

    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    char body[RW_MAX_BODY + 1]; /* receiver's answer, cut */
    size_t body_len;
    bool body_cut; /* the answer was longer than RW_MAX_BODY */
    char retry_after[64];

    /* Queue, owned by the push thread. The head is the only body in flight. */
    struct rw_item *head, *tail;
    size_t queued_bytes;
    bool in_flight;
    int64_t retry_at;       /* mono usec before which the head is not sent again */
    unsigned failures;      /* consecutive failed attempts: backoff step, "resumed" event */
    bool lost;              /* something was dropped: the final push resends everything */
    uint64_t qfull_pending; /* samples pushed out of the queue, not yet logged */
    int64_t qfull_logged;   /* mono usec of the last queue_full line */
    uint64_t rng;

    pthread_t thread;
    bool started, stopped;
    pthread_mutex_t lock; /* guards the fields below and stats */
    bool stopping;
    int64_t drain_usec;
    bool draining;        /* in the final drain (push thread only) */
    int64_t cut_deadline; /* drain end after an interrupt, 0: none yet (push thread only) */
    const struct rw_info *final; /* rw_push_set_final's items, borrowed */
    size_t nfinal;
    char phase[64]; /* wanted fallback test_type */
    bool phase_dirty;
    pthread_cond_t phase_taken; /* signalled when phase_dirty is cleared */
    struct rw_stats stats;
};

static int64_t now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- logging (never with credentials: the log masks them, and the URL is redacted) ---- */

static void log_event(struct rw_push *p, enum log_level lvl, cJSON *ev)
{
    if (p->log)
        log_emit(p->log, lvl, ev);
    else
        cJSON_Delete(ev);
}

static cJSON *ev_begin(struct rw_push *p, const char *event)
{
    if (!p->log)
        return NULL;
    cJSON *ev = log_begin(p->log, event);
    if (ev)
        cJSON_AddStringToObject(ev, "url", p->safe_url);
    return ev;
}

/* The receiver's answer: it may quote our request (Authorization) back, so it goes
 * through the log's masking and bound. */
static void add_body(struct rw_push *p, cJSON *ev)
{
    if (p->log)
        log_add_quote(p->log, ev, "body", p->body, p->body_len, p->body_cut);
}

/* ---- queue ---- */

static void item_free(struct rw_item *it)
{
    rw_batch_clear(&it->b);
    free(it);
}

static void queue_pop(struct rw_push *p)
{
    struct rw_item *it = p->head;
    p->head = it->next;
    if (!p->head)
        p->tail = NULL;
    p->queued_bytes -= it->b.len;
    item_free(it);
    p->retry_at = 0;
}

/* Drop the oldest body not in flight; false when there is none. */
static bool queue_drop_oldest(struct rw_push *p)
{
    struct rw_item *prev = p->in_flight ? p->head : NULL;
    struct rw_item *it = prev ? prev->next : p->head;
    if (!it)
        return false;
    if (prev)
        prev->next = it->next;
    else
        p->head = it->next;
    if (p->tail == it)
        p->tail = prev;
    /* retry_at stays: the receiver is still failing, whichever body is next. */
    p->queued_bytes -= it->b.len;
    pthread_mutex_lock(&p->lock);
    p->stats.queue_dropped++;
    p->stats.samples_dropped += it->b.nsamples;
    pthread_mutex_unlock(&p->lock);
    item_free(it);
    p->lost = true;
    return true;
}

static void log_queue_full(struct rw_push *p)
{
    cJSON *ev = ev_begin(p, "remote_write_queue_full");
    cJSON_AddNumberToObject(ev, "dropped_samples", (double)p->qfull_pending);
    cJSON_AddNumberToObject(ev, "queue_max_bytes", (double)p->o.queue_max_bytes);
    log_event(p, LOG_WARN, ev);
    p->qfull_pending = 0;
    p->qfull_logged = now_mono();
}

/* Append b (taking its body); makes room by dropping the oldest waiting bodies. */
static void queue_push(struct rw_push *p, struct rw_batch *b)
{
    uint64_t before = p->stats.samples_dropped;
    while (p->queued_bytes + b->len > p->o.queue_max_bytes && queue_drop_oldest(p))
        ;
    struct rw_item *it = NULL;
    if (p->queued_bytes + b->len <= p->o.queue_max_bytes)
        it = calloc(1, sizeof(*it));
    if (!it) {
        pthread_mutex_lock(&p->lock);
        p->stats.queue_dropped++;
        p->stats.samples_dropped += b->nsamples;
        pthread_mutex_unlock(&p->lock);
        rw_batch_clear(b);
        p->lost = true;
    } else {
        it->b = *b;
        memset(b, 0, sizeof(*b));
        if (p->tail)
            p->tail->next = it;
        else
            p->head = it;
        p->tail = it;
        p->queued_bytes += it->b.len;
    }
    p->qfull_pending += p->stats.samples_dropped - before;
    /* A receiver that stays down overflows the queue on every tick: one line per 10 s. */
    if (p->qfull_pending && (!p->qfull_logged || now_mono() - p->qfull_logged >= 10000000))
        log_queue_full(p);
}

/* ---- one tick: snapshot, encode, enqueue ---- */

static void push_encode(struct rw_push *p, enum rw_select sel);

/* Take the phase wanted by rw_push_set_test_type, if any; returns true when it changed. */
static bool take_phase(struct rw_push *p)
{
    char phase[64];
    pthread_mutex_lock(&p->lock);
    bool dirty = p->phase_dirty;
    p->phase_dirty = false;
    memcpy(phase, p->phase, sizeof(phase));
    pthread_mutex_unlock(&p->lock);
    if (dirty)
        rw_encoder_set_test_type(p->enc, phase[0] ? phase : NULL);
    return dirty;
}

/*
 * A phase change between ticks: series named after the phase (vus, vus_max)
 * first get their last values under the phase that ended (smoke's vus back
 * to 0), otherwise they would hold a tick-old value until they go stale.
 */
static void switch_phase(struct rw_push *p)
{
    push_encode(p, RW_CHANGED);
    take_phase(p);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->phase_taken);
    pthread_mutex_unlock(&p->lock);
}

static void push_tick(struct rw_push *p, enum rw_select sel)
{
    take_phase(p);
    push_encode(p, sel);
}

static void push_encode(struct rw_push *p, enum rw_select sel)
{
    struct metrics *snap = metrics_new();
    int rc = snap ? p->snapshot_cb(snap, p->ud) : -ENOMEM;
    struct rw_batch b = {0};
    uint64_t over = rw_encoder_dropped(p->enc);
    if (rc == 0)
        rc = rw_encode(p->enc, snap, now_wall_ms(), sel, &b);
    metrics_free(snap);
    over = rw_encoder_dropped(p->enc) - over;
    pthread_mutex_lock(&p->lock);
    if (rc < 0)
        p->stats.snapshot_errors++;
    p->stats.samples_dropped += over;
    pthread_mutex_unlock(&p->lock);
    if (rc < 0) {
        cJSON *ev = ev_begin(p, "remote_write_error");
        cJSON_AddStringToObject(ev, "error", strerror(-rc));
        cJSON_AddStringToObject(ev, "stage", "snapshot");
        log_event(p, LOG_WARN, ev);
        return;
    }
    if (b.len)
        queue_push(p, &b);
}

static void push_stale(struct rw_push *p)
{
    struct rw_batch b = {0};
    if (rw_encode_stale(p->enc, now_wall_ms(), &b) < 0) {
        pthread_mutex_lock(&p->lock);
        p->stats.snapshot_errors++;
        pthread_mutex_unlock(&p->lock);
        return;
    }
    if (b.len)
        queue_push(p, &b);
}

/* The run's result series, after everything else (never given stale markers). */
static void push_final(struct rw_push *p)
{
    struct rw_batch b = {0};
    pthread_mutex_lock(&p->lock);
    const struct rw_info *items = p->final;
    size_t n = p->nfinal;
    pthread_mutex_unlock(&p->lock);
    if (!n)
        return;
    if (rw_encode_info(p->enc, items, n, now_wall_ms(), &b) < 0) {
        pthread_mutex_lock(&p->lock);
        p->stats.snapshot_errors++;
        pthread_mutex_unlock(&p->lock);
        return;
    }
    if (b.len)
        queue_push(p, &b);
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct rw_push *p = ud;
    size_t n = size * nmemb, room = RW_MAX_BODY - p->body_len;
    size_t k = n < room ? n : room;
    memcpy(p->body + p->body_len, data, k);
    p->body_len += k;
    p->body[p->body_len] = '\0';
    p->body_cut = p->body_cut || k < n;
    return n; /* the rest is read and forgotten */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct rw_push *p = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        size_t i = sizeof(name) - 1, end = n;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (end > i && (data[end - 1] == '\r' || data[end - 1] == '\n' || data[end - 1] == ' '))
            end--;
        size_t len = end - i < sizeof(p->retry_after) - 1 ? end - i : sizeof(p->retry_after) - 1;
        memcpy(p->retry_after, data + i, len);
        p->retry_after[len] = '\0';
    }
    return n;
}

bool rw_header_reserved(const char *name)
{
    static const char *const fixed[] = {
        "content-encoding", "content-type",      "x-prometheus-remote-write-version",
        "user-agent",       "content-length",    "host",
        "expect",           "transfer-encoding",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcasecmp(name, fixed[i]) == 0)
            return true;
    return false;
}

/* Reserved, or Authorization when syncgate sends credentials itself. */
static bool reserved_header(const char *name, bool has_auth)
{
    return rw_header_reserved(name) || (has_auth && strcasecmp(name, "authorization") == 0);
}

static bool header_ok(const char *s)
{
    return s && *s && !strpbrk(s, "\r\n");
}

static int setup_curl(struct rw_push *p, const struct rw_config *rc, const char *ca_file, char *err,
                      size_t errlen)
{
    const char *fixed[] = {
        "Content-Encoding: snappy",
        "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
        ("User-Agent: syncgate/" SYNCGATE_VERSION), /* one element: a joined literal */
        "Expect:", /* no 100-continue round trip for large bodies */
    };
    bool bearer = rc->bearer_token && *rc->bearer_token;
    bool basic = !bearer && rc->username && *rc->username;
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        struct curl_slist *n = curl_slist_append(h, fixed[i]);
        if (!n)
            goto nomem;
        h = n;
    }
    for (size_t i = 0; i < rc->nheaders && i < CONFIG_MAX_HEADERS; i++) {
        const struct kv *kv = &rc->headers[i];
        if (!header_ok(kv->key) || !header_ok(kv->value) || strchr(kv->key, ':') ||
            reserved_header(kv->key, bearer || basic))
            continue;
        size_t len = strlen(kv->key) + strlen(kv->value) + 3;
        char *line = malloc(len);
        if (!line)
            goto nomem;
        snprintf(line, len, "%s: %s", kv->key, kv->value);
        struct curl_slist *n = curl_slist_append(h, line);
        free(line);
        if (!n)
            goto nomem;
        h = n;
    }
    if (bearer && header_ok(rc->bearer_token)) {
        size_t len = strlen(rc->bearer_token) + 32;
        char *line = malloc(len);
        if (!line)
            goto nomem;
        snprintf(line, len, "Authorization: Bearer %s", rc->bearer_token);
        struct curl_slist *n = curl_slist_append(h, line);
        memset(line, 0, len);
        free(line);
        if (!n)
            goto nomem;
        h = n;
    }
    p->headers = h;

    CURL *c = p->easy = curl_easy_init();
    p->multi = curl_multi_init();
    if (!c || !p->multi)
        goto nomem;
    curl_easy_setopt(c, CURLOPT_URL, rc->server_url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, http_timeout_ms(p->o.request_timeout));
    if (basic) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, rc->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, rc->password ? rc->password : "");
    }
    if (ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    if (rc->insecure_skip_tls_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (rc->client_cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, rc->client_cert);
    if (rc->client_key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, rc->client_key);
    return 0;
nomem:
    if (!p->headers)
        curl_slist_free_all(h);
    snprintf(err, errlen, "remote write: cannot set up libcurl (out of memory)");
    return -ENOMEM;
}

/* Wait before the next attempt after `failures` consecutive failures (any body). */
static int64_t backoff(struct rw_push *p, unsigned failures)
{
    int64_t d = p->o.backoff_min;
    for (unsigned i = 1; i < failures && d < p->o.backoff_max; i++)
        d *= 2;
    if (d > p->o.backoff_max)
        d = p->o.backoff_max;
    /* xorshift64*: jitter only, no need for a shared or strong generator. */
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    uint64_t r = p->rng * UINT64_C(2685821657736338717);
    return d / 2 + (int64_t)(r % (uint64_t)(d / 2 + 1));
}

/* Usec to wait from a Retry-After value (at most max; 0 for a date in the past), or -1
 * when absent or unreadable. */
static int64_t retry_after_usec(const char *v, int64_t max)
{
    if (!*v)
        return -1;
    char *end;
    long long secs = strtoll(v, &end, 10);
    int64_t d;
    if (end != v && *end == '\0') {
        d = secs < 0 ? 0 : secs > max / 1000000 ? max : (int64_t)secs * 1000000;
    } else {
        time_t t = curl_getdate(v, NULL);
        if (t == -1)
            return -1;
        time_t now = time(NULL);
        d = t <= now ? 0 : (int64_t)(t - now) * 1000000;
    }
    return d > max ? max : d;
}

static void start_transfer(struct rw_push *p, int64_t timeout)
{
    struct rw_item *it = p->head;
    p->body_len = 0;
    p->body[0] = '\0';
    p->body_cut = false;
    p->retry_after[0] = '\0';
    p->curl_err[0] = '\0';
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, (const char *)it->b.body);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->b.len);
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, http_timeout_ms(timeout));
    it->attempts++;
    if (curl_multi_add_handle(p->multi, p->easy) == CURLM_OK)
        p->in_flight = true;
    else
        p->retry_at = now_mono() + backoff(p, ++p->failures);
}

/* The head's attempt ended with result (and HTTP status when result is OK). */
static void finish_transfer(struct rw_push *p, CURLcode result)
{
    struct rw_item *it = p->head;
    long status = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(p->multi, p->easy);
    p->in_flight = false;

    char what[256];
    if (result != CURLE_OK)
        snprintf(what, sizeof(what), "%s",
                 p->curl_err[0] ? p->curl_err : curl_easy_strerror(result));
    else
        snprintf(what, sizeof(what), "HTTP %ld", status);

    if (result == CURLE_OK && status >= 200 && status < 300) {
        pthread_mutex_lock(&p->lock);
        p->stats.pushes++;
        p->stats.samples_sent += it->b.nsamples;
        p->stats.bytes_sent += it->b.len;
        p->stats.last_status = (int)status;
        pthread_mutex_unlock(&p->lock);
        if (p->failures) {
            cJSON *ev = ev_begin(p, "remote_write_resumed");
            cJSON_AddNumberToObject(ev, "failed_attempts", p->failures);
            log_event(p, LOG_INFO, ev);
        }
        p->failures = 0;
        queue_pop(p);
        return;
    }

    bool retry = result != CURLE_OK || status == 429 || status >= 500;
    pthread_mutex_lock(&p->lock);
    p->stats.last_status = (int)status;
    snprintf(p->stats.last_error, sizeof(p->stats.last_error), "%s", what);
    if (retry)
        p->stats.retries++;
    else {
        p->stats.rejected++;
        p->stats.samples_dropped += it->b.nsamples;
    }
    pthread_mutex_unlock(&p->lock);
    p->failures++;

    if (!retry) {
        /* The receiver refused this body for good: say why, in its own words. */
        cJSON *ev = ev_begin(p, "remote_write_rejected");
        cJSON_AddNumberToObject(ev, "status", (double)status);
        add_body(p, ev);
        cJSON_AddNumberToObject(ev, "dropped_samples", (double)it->b.nsamples);
        log_event(p, LOG_ERROR, ev);
        p->lost = true;
        p->failures = 0;
        queue_pop(p);
        return;
    }
    /* The backoff is a floor: a receiver's Retry-After can lengthen the wait, never
     * shorten it (429 with Retry-After: 0, or a date in the past, would otherwise be
     * asked again at once, thousands of times a second, on the load's CPU). */
    int64_t wait = backoff(p, p->failures);
    if (status == 429) {
        int64_t asked = retry_after_usec(p->retry_after, p->o.retry_after_max);
        if (asked > wait)
            wait = asked;
    }
    p->retry_at = now_mono() + wait;
    cJSON *ev = ev_begin(p, "remote_write_error");
    cJSON_AddStringToObject(ev, "error", what);
    if (status)
        cJSON_AddNumberToObject(ev, "status", (double)status);
    if (p->body_len)
        add_body(p, ev);
    cJSON_AddNumberToObject(ev, "attempt", it->attempts);
    cJSON_AddNumberToObject(ev, "retry_in_ms", (double)(wait / 1000));
    cJSON_AddNumberToObject(ev, "queued", (double)p->queued_bytes);
    log_event(p, LOG_WARN, ev);
}

/* Advance transfers: collect a finished one, start the next when due. */
static void pump(struct rw_push *p, int64_t deadline)
{
    for (;;) {
        int running = 0, left;
        curl_multi_perform(p->multi, &running);
        CURLMsg *m;
        while ((m = curl_multi_info_read(p->multi, &left)))
            if (m->msg == CURLMSG_DONE && m->easy_handle == p->easy)
                finish_transfer(p, m->data.result);
        int64_t now = now_mono();
        if (p->in_flight || !p->head || now < p->retry_at || (deadline && now >= deadline))
            return;
        int64_t timeout = p->o.request_timeout;
        if (deadline && deadline - now < timeout)
            timeout = deadline - now;
        start_transfer(p, timeout);
    }
}

static void wait_events(struct rw_push *p, int64_t until)
{
    /* a signal cannot wake the poll: look at the flag often enough while draining */
    int64_t max_ms = p->o.interrupt && p->draining ? 50 : 1000;
    int64_t now = now_mono();
    if (!p->in_flight && p->head && p->retry_at > now && p->retry_at < until)
        until = p->retry_at;
    if (!p->in_flight && p->head && p->retry_at <= now)
        until = now;
    int64_t ms = (until - now + 999) / 1000;
    if (ms < 0)
        ms = 0;
    if (ms > max_ms)
        ms = max_ms;
    curl_multi_poll(p->multi, NULL, 0, (int)ms, NULL);
}

static bool is_stopping(struct rw_push *p)
{
    pthread_mutex_lock(&p->lock);
    bool s = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* The drain's end: deadline, or sooner once the interrupt flag is up. */
static int64_t drain_deadline(struct rw_push *p, int64_t deadline)
{
    if (!p->cut_deadline && p->o.interrupt && *p->o.interrupt)
        p->cut_deadline = now_mono() + p->o.interrupt_drain;
    return p->cut_deadline && p->cut_deadline < deadline ? p->cut_deadline : deadline;
}

/* Pushes come every second during the first push interval, then every interval: a run
 * shorter than the interval still gives its series two points (pushed once early, then by
 * the final flush), which irate() and rate() need. */
#define RW_EARLY_PUSH_USEC 1000000

static void *push_main(void *arg)
{
    struct rw_push *p = arg;
    int64_t start = now_mono();
    int64_t early = p->interval < RW_EARLY_PUSH_USEC ? p->interval : RW_EARLY_PUSH_USEC;
    int64_t next = start + early;
    while (!is_stopping(p)) {
        pthread_mutex_lock(&p->lock);
        bool dirty = p->phase_dirty;
        pthread_mutex_unlock(&p->lock);
        if (dirty)
            switch_phase(p);
        int64_t now = now_mono();
        if (now >= next) {
            push_tick(p, RW_CHANGED);
            int64_t step = now - start < p->interval ? early : p->interval;
            next += step;
            if (next <= now)
                next = now + step;
        }
        pump(p, 0);
        wait_events(p, next);
    }

    pthread_mutex_lock(&p->lock);
    int64_t deadline = now_mono() + p->drain_usec;
    pthread_mutex_unlock(&p->lock);
    p->draining = true;
    /* what changed, and what was sent only once (its second point); all after a loss */
    push_tick(p, p->lost ? RW_ALL : RW_FINAL);
    if (p->stale_markers)
        push_stale(p);
    push_final(p);
    for (;;) {
        deadline = drain_deadline(p, deadline);
        pump(p, deadline);
        if (!p->head || now_mono() >= deadline)
            break;
        wait_events(p, deadline);
    }
    if (p->in_flight) {
        curl_multi_remove_handle(p->multi, p->easy);
        p->in_flight = false;
    }
    if (p->qfull_pending)
        log_queue_full(p);
    uint64_t left = 0;
    while (p->head) {
        left += p->head->b.nsamples;
        queue_pop(p);
    }
    pthread_mutex_lock(&p->lock);
    p->stats.samples_undelivered += left;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct rw_push *rw_push_start(const struct config *c, struct log *log, rw_snapshot_cb snapshot_cb,
                              void *ud, const struct rw_push_opts *opts, char *err, size_t errlen)
{
    const struct rw_config *rc = &c->metrics.rw;
    if (!rc->server_url || !*rc->server_url) {
        snprintf(err, errlen, "remote write: no server URL");
        return NULL;
    }
    struct rw_push *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "remote write: out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->phase_taken, NULL);
    p->log = log;
    p->snapshot_cb = snapshot_cb;
    p->ud = ud;
    if (opts)
        p->o = *opts;
    if (!p->o.queue_max_bytes)
        p->o.queue_max_bytes = RW_QUEUE_MAX_BYTES;
    if (p->o.request_timeout <= 0)
        p->o.request_timeout = 5000000;
    if (p->o.backoff_min <= 0)
        p->o.backoff_min = 100000;
    if (p->o.backoff_max <= 0)
        p->o.backoff_max = 5000000;
    if (p->o.backoff_max < p->o.backoff_min)
        p->o.backoff_max = p->o.backoff_min;
    if (p->o.retry_after_max <= 0)
        p->o.retry_after_max = 60000000;
    if (p->o.interrupt_drain <= 0)
        p->o.interrupt_drain = 1000000;
    p->interval = rc->push_interval > 0 ? rc->push_interval : 5000000;
    p->stale_markers = rc->stale_markers;
    p->rng = (uint64_t)now_mono() ^ (uint64_t)(uintptr_t)p ^ UINT64_C(0x9e3779b97f4a7c15);
    config_redact_url(rc->server_url, p->safe_url, sizeof(p->safe_url));

    p->enc = rw_encoder_new(c, err, errlen);
    if (!p->enc || setup_curl(p, rc, c->ca_file, err, errlen) < 0) {
        rw_push_free(p);
        return NULL;
    }
    int e = pthread_create(&p->thread, NULL, push_main, p);
    if (e) {
        snprintf(err, errlen, "remote write: cannot start thread: %s", strerror(e));
        rw_push_free(p);
        return NULL;
    }
    p->started = true;
    cJSON *ev = ev_begin(p, "remote_write_start");
    cJSON_AddNumberToObject(ev, "push_interval_ms", (double)(p->interval / 1000));
    cJSON_AddBoolToObject(ev, "native_histogram", rc->native_histogram);
    cJSON_AddBoolToObject(ev, "stale_markers", rc->stale_markers);
    log_event(p, LOG_INFO, ev);
    return p;
}

int rw_push_set_test_type(struct rw_push *p, const char *test_type)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->phase, sizeof(p->phase), "%s", test_type ? test_type : "");
    p->phase_dirty = true;
    if (p->started && !p->stopping) {
        /* The caller is between phases: wait (bounded) until what the ending
         * phase left has been encoded, before the next phase records anything. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        curl_multi_wakeup(p->multi);
        int rc = 0;
        while (p->phase_dirty && !p->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->phase_taken, &p->lock, &until);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int rw_push_set_final(struct rw_push *p, const struct rw_info *items, size_t n)
{
    pthread_mutex_lock(&p->lock);
    p->final = items;
    p->nfinal = n;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void rw_push_stats(struct rw_push *p, struct rw_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

int rw_push_stop(struct rw_push *p, int64_t drain_usec, struct rw_stats *out)
{
    if (p->started && !p->stopped) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        p->drain_usec = drain_usec > 0 ? drain_usec : 0;
        pthread_mutex_unlock(&p->lock);
        curl_multi_wakeup(p->multi);
        pthread_join(p->thread, NULL);
        p->stopped = true;

        struct rw_stats s;
        rw_push_stats(p, &s);
        cJSON *ev = ev_begin(p, "remote_write_done");
        cJSON_AddNumberToObject(ev, "pushes", (double)s.pushes);
        cJSON_AddNumberToObject(ev, "retries", (double)s.retries);
        cJSON_AddNumberToObject(ev, "rejected", (double)s.rejected);
        cJSON_AddNumberToObject(ev, "samples_sent", (double)s.samples_sent);
        cJSON_AddNumberToObject(ev, "samples_dropped", (double)s.samples_dropped);
        cJSON_AddNumberToObject(ev, "samples_undelivered", (double)s.samples_undelivered);
        if (s.last_error[0])
            cJSON_AddStringToObject(ev, "last_error", s.last_error);
        log_event(p, s.samples_dropped || s.samples_undelivered ? LOG_WARN : LOG_INFO, ev);
    }
    struct rw_stats s;
    rw_push_stats(p, &s);
    if (out)
        *out = s;
    return s.samples_dropped || s.samples_undelivered ? -EIO : 0;
}

void rw_push_free(struct rw_push *p)
{
    if (!p)
        return;
    if (p->started && !p->stopped)
        rw_push_stop(p, 0, NULL);
    while (p->head)
        queue_pop(p);
    if (p->multi && p->easy)
        curl_multi_remove_handle(p->multi, p->easy);
    if (p->easy)
        curl_easy_cleanup(p->easy);
    if (p->multi)
        curl_multi_cleanup(p->multi);
    curl_slist_free_all(p->headers);
    rw_encoder_free(p->enc);
    pthread_cond_destroy(&p->phase_taken);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
