/* auth: the shared OAuth2 client-credentials token, fetched once and renewed by a thread. */
#include "syncgate/auth.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "syncgate/http.h"
#include "syncgate/units.h"

#define RETRY_MIN USEC_PER_SEC
#define RETRY_MAX (30 * USEC_PER_SEC)
#define RENEW_AHEAD_MAX (60 * USEC_PER_SEC)

struct auth {
    const struct auth_config *cfg;
    const char *ca_file;
    int64_t timeout;
    struct log *log;
    CURL *easy;
    struct curl_slist *headers;
    char basic[3 * 1024];
    char *form;
    char *resp;
    size_t resp_len;

    /* the token, behind a sequence lock: odd while the writer changes it */
    _Atomic uint64_t seq;
    char token[AUTH_TOKEN_MAX];
    _Atomic size_t token_len;

    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    int64_t renew_at;              /* mono usec; INT64_MAX: only on a 401 */
    _Atomic uint64_t generation;   /* tokens fetched */
    _Atomic uint64_t refused_gen;  /* the generation a 401 was reported for */
    _Atomic bool want_renewal;
};

/* ---- pure parts ------------------------------------------------------------- */

static ssize_t b64(const unsigned char *in, size_t len, char *out, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (len + 2) / 3 * 4;
    if (need + 1 > n)
        return -ENOSPC;
    char *p = out;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *p++ = tbl[v >> 18 & 63];
        *p++ = tbl[v >> 12 & 63];
        *p++ = i + 1 < len ? tbl[v >> 6 & 63] : '=';
        *p++ = i + 2 < len ? tbl[v & 63] : '=';
    }
    *p = '\0';
    return (ssize_t)need;
}

/* application/x-www-form-urlencoded (RFC 6749 appendix B) of s appended at *len. */
static bool form_encode(const char *s, char *out, size_t n, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (*len + 4 > n)
            return false;
        if (plain) {
            out[(*len)++] = (char)*p;
        } else if (*p == ' ') {
            out[(*len)++] = '+';
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[*p >> 4];
            out[(*len)++] = hex[*p & 15];
        }
    }
    out[*len] = '\0';
    return true;
}

ssize_t auth_basic(const char *id, const char *secret, char *out, size_t n)
{
    char creds[2 * 3 * 4096 + 2];
    size_t len = 0;
    if (!form_encode(id, creds, sizeof(creds), &len) || len + 2 > sizeof(creds))
        return -ENOSPC;
    creds[len++] = ':';
    creds[len] = '\0';
    bool ok = form_encode(secret, creds, sizeof(creds), &len);
    ssize_t rc = ok ? b64((const unsigned char *)creds, len, out, n) : -ENOSPC;
    explicit_bzero(creds, sizeof(creds));
    return rc;
}

ssize_t auth_parse_token(const char *body, size_t len, char *token, size_t n, int64_t *expires,
                         char *why, size_t wn)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    ssize_t rc = -EPROTO;
    *expires = 0;
    if (!root || !cJSON_IsObject(root)) {
        snprintf(why, wn, "the answer is not a JSON object");
        goto out;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    if (!cJSON_IsString(tok) || !*tok->valuestring) {
        snprintf(why, wn, "the answer has no access_token");
        goto out;
    }
    size_t tl = strlen(tok->valuestring);
    if (tl >= n) {
        snprintf(why, wn, "the access_token is longer than %zu bytes", n - 1);
        goto out;
    }
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)tok->valuestring[i] < 0x21 || tok->valuestring[i] == 0x7f) {
            snprintf(why, wn, "the access_token holds spaces or control characters");
            goto out;
        }
    if (type && (!cJSON_IsString(type) || strcasecmp(type->valuestring, "bearer"))) {
        snprintf(why, wn, "token_type is not Bearer");
        goto out;
    }
    if (exp) {
        /* RFC 6749 says a number; some servers send a numeric string */
        double v = cJSON_IsNumber(exp)   ? exp->valuedouble
                   : cJSON_IsString(exp) ? strtod(exp->valuestring, NULL)
                                         : -1;
        if (!(v >= 0 && v <= 10.0 * 365 * 24 * 3600)) {
            snprintf(why, wn, "expires_in is not a number of seconds");
            goto out;
        }
        *expires = (int64_t)v;
    }
    memcpy(token, tok->valuestring, tl + 1);
    rc = (ssize_t)tl;
out:
    if (root && cJSON_IsObject(root)) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "access_token");
        if (cJSON_IsString(t))
            explicit_bzero(t->valuestring, strlen(t->valuestring));
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- the token -------------------------------------------------------------- */

int auth_token(void *ud, char *buf, size_t n)
{
    struct auth *a = ud;
    for (;;) {
        uint64_t s0 = atomic_load_explicit(&a->seq, memory_order_acquire);
        if (s0 & 1)
            continue; /* a renewal is writing: a few microseconds */
        size_t len = atomic_load_explicit(&a->token_len, memory_order_relaxed);
        if (len >= n)
            return -ENOSPC;
        memcpy(buf, a->token, len);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&a->seq, memory_order_relaxed) == s0) {
            buf[len] = '\0';
            return (int)len;
        }
    }
}

static void set_token(struct auth *a, const char *t, size_t len)
{
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_acq_rel);
    atomic_thread_fence(memory_order_release);
    memcpy(a->token, t, len + 1);
    atomic_store_explicit(&a->token_len, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_release);
}

/* ---- fetching ----------------------------------------------------------------- */

static size_t body_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    struct auth *a = ud;
    size_t n = size * nmemb;
    if (a->resp_len + n > AUTH_RESPONSE_MAX)
        return 0; /* a token endpoint has no business sending more */
    memcpy(a->resp + a->resp_len, p, n);
    a->resp_len += n;
    return n;
}

/* The endpoint's own error code (RFC 6749 5.2) into why, whole or not at all: why goes to
 * a log line, which masks any secret the endpoint quotes back, but only a whole one. */
static void endpoint_error(struct auth *a, long status, char *why, size_t n)
{
    char code[80] = "";
    cJSON *root = cJSON_ParseWithLength(a->resp, a->resp_len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (cJSON_IsString(e) && strlen(e->valuestring) <= 64)
        snprintf(code, sizeof(code), "\"%s\"", e->valuestring);
    else if (cJSON_IsString(e))
        snprintf(code, sizeof(code), "(an error code too long to show)");
    cJSON_Delete(root);
    snprintf(why, n, "the token endpoint answered %ld%s%s", status, code[0] ? " " : "", code);
}

/* One token request; on success the token is in place. */
static int fetch(struct auth *a, char *why, size_t n)
{
    char tok[AUTH_TOKEN_MAX], msg[256];
    long status = 0;
    int64_t expires = 0;
    int rc;

    a->resp_len = 0;
    CURLcode cc = curl_easy_perform(a->easy);
    if (cc != CURLE_OK) {
        struct http_result r;
        /* only the failure's kind is used: whether a head came does not change it */
        http_result_from_curl(&r, a->easy, cc, true);
        snprintf(why, n, "the token endpoint could not be reached: %s (%s)",
                 http_error_name(r.error), curl_easy_strerror(cc));
        return r.error == HTTP_ERR_TIMEOUT   ? -ETIMEDOUT
               : r.error == HTTP_ERR_REFUSED ? -ECONNREFUSED
                                             : -EIO;
    }
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        endpoint_error(a, status, why, n);
        explicit_bzero(a->resp, a->resp_len);
        return status == 400 || status == 401 || status == 403 ? -EACCES : -EPROTO;
    }
    ssize_t len = auth_parse_token(a->resp, a->resp_len, tok, sizeof(tok), &expires, msg,
                                   sizeof(msg));
    explicit_bzero(a->resp, a->resp_len);
    if (len < 0) {
        snprintf(why, n, "the token endpoint answered 200 but %s", msg);
        return (int)len;
    }
    set_token(a, tok, (size_t)len);
    /* masked in every log line from now on, whatever a server quotes back */
    if (a->log)
        log_add_secret(a->log, tok);
    explicit_bzero(tok, sizeof(tok));
    atomic_fetch_add(&a->generation, 1);
    int64_t life = expires * USEC_PER_SEC, ahead = life / 5;
    if (ahead > RENEW_AHEAD_MAX)
        ahead = RENEW_AHEAD_MAX;
    pthread_mutex_lock(&a->lock);
    a->renew_at = expires > 0 ? units_now_mono() + life - ahead : INT64_MAX;
    pthread_mutex_unlock(&a->lock);
    rc = 0;
    return rc;
}

static void log_renewal(struct auth *a, const char *event, const char *why, bool ok)
{
    cJSON *ev = log_begin(a->log, event);
    cJSON_AddNumberToObject(ev, "tokens", (double)atomic_load(&a->generation));
    if (why)
        cJSON_AddStringToObject(ev, "message", why);
    log_emit(a->log, ok ? LOG_INFO : LOG_WARN, ev);
}

static void *renew_main(void *arg)
{
    struct auth *a = arg;
    int64_t retry = RETRY_MIN;
    char why[400];

    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        int64_t now = units_now_mono();
        bool due = atomic_load(&a->want_renewal) || now >= a->renew_at;
        if (!due) {
            int64_t until = a->renew_at;
            if (until - now > USEC_PER_SEC)
                until = now + USEC_PER_SEC; /* a 401 may come at any time */
            struct timespec ts = {.tv_sec = until / USEC_PER_SEC,
                                  .tv_nsec = (long)(until % USEC_PER_SEC) * 1000};
            pthread_cond_timedwait(&a->cond, &a->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&a->lock);
        bool on_401 = atomic_exchange(&a->want_renewal, false);
        int rc = fetch(a, why, sizeof(why));
        if (rc == 0) {
            retry = RETRY_MIN;
            log_renewal(a, "token_renewed", on_401 ? "after a 401" : "ahead of its expiry", true);
        } else {
            log_renewal(a, "token_renewal_failed", why, false);
        }
        pthread_mutex_lock(&a->lock);
        if (rc < 0) {
            a->renew_at = units_now_mono() + retry;
            retry = retry * 2 > RETRY_MAX ? RETRY_MAX : retry * 2;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static int prepare(struct auth *a)
{
    const struct auth_config *c = a->cfg;
    char line[sizeof(a->basic) + 32];
    size_t flen = 0, fcap = 64 + 3 * (c->scope ? strlen(c->scope) : 0);

    if (auth_basic(c->client_id, c->client_secret, a->basic, sizeof(a->basic)) < 0)
        return -ENOSPC;
    snprintf(line, sizeof(line), "Authorization: Basic %s", a->basic);
    a->headers = curl_slist_append(NULL, line);
    explicit_bzero(line, sizeof(line));
    if (a->headers)
        a->headers = curl_slist_append(a->headers, "Accept: application/json");
    a->form = malloc(fcap);
    a->resp = malloc(AUTH_RESPONSE_MAX);
    if (!a->headers || !a->form || !a->resp || !(a->easy = curl_easy_init()))
        return -ENOMEM;
    strcpy(a->form, "grant_type=client_credentials");
    flen = strlen(a->form);
    if (c->scope) {
        strcpy(a->form + flen, "&scope=");
        flen += 7;
        form_encode(c->scope, a->form, fcap, &flen);
    }
    CURL *e = a->easy;
    curl_easy_setopt(e, CURLOPT_URL, c->token_url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->form);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, http_timeout_ms(a->timeout));
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (a->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file);
    return 0;
}

static void auth_free(struct auth *a)
{
    if (!a)
        return;
    curl_easy_cleanup(a->easy);
    curl_slist_free_all(a->headers);
    explicit_bzero(a->basic, sizeof(a->basic));
    explicit_bzero(a->token, sizeof(a->token));
    free(a->form);
    free(a->resp);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

struct auth *auth_start(const struct auth_config *cfg, const char *ca_file, int64_t timeout,
                        struct log *log, int *err, char *why, size_t n)
{
    struct auth *a = calloc(1, sizeof(*a));
    int rc = -ENOMEM;
    if (!a)
        goto fail;
    a->cfg = cfg;
    a->ca_file = ca_file;
    a->timeout = timeout > 0 ? timeout : 10 * USEC_PER_SEC;
    a->log = log;
    a->renew_at = INT64_MAX;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = prepare(a)) < 0) {
        snprintf(why, n, rc == -ENOSPC ? "the client id or secret is too long" : "out of memory");
        goto fail;
    }
    if ((rc = fetch(a, why, n)) < 0)
        goto fail;
    /* the thread must not take signals meant for the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = -pthread_create(&a->thread, NULL, renew_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        snprintf(why, n, "cannot start the token renewal thread");
        goto fail;
    }
    a->running = true;
    return a;
fail:
    auth_free(a);
    *err = rc;
    return NULL;
}

void auth_stop(struct auth *a)
{
    if (!a)
        return;
    if (a->running) {
        pthread_mutex_lock(&a->lock);
        a->stopping = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    auth_free(a);
}

void auth_unauthorized(struct auth *a)
{
    uint64_t g = atomic_load(&a->generation);
    if (atomic_exchange(&a->refused_gen, g) == g)
        return; /* this token was reported already */
    atomic_store(&a->want_renewal, true);
    /* signalling needs no lock; at worst the thread sees the flag at its next wake-up */
    pthread_cond_signal(&a->cond);
}

uint64_t auth_fetches(const struct auth *a)
{
    return atomic_load(&a->generation);
}
