/* baseline: baseline values read back from Prometheus' query API (see baseline.h). */
#include "syncgate/baseline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "syncgate/history.h"
#include "syncgate/http.h"
#include "syncgate/units.h"

#ifndef SYNCGATE_VERSION
#define SYNCGATE_VERSION "0"
#endif

/* One HTTP client for every query of the fetch. */
struct client {
    CURL *easy;
    struct curl_slist *headers;
    char base[CONFIG_MAX_URL + 1]; /* query API base, no trailing slash */
    char *body;
    size_t len;
    bool too_big;
    char curl_err[CURL_ERROR_SIZE];
    int64_t deadline; /* mono usec */
    volatile sig_atomic_t *stop;
    int *queries;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct client *cl = ud;
    size_t n = size * nmemb;
    if (cl->len + n > BASELINE_MAX_BODY) {
        cl->too_big = true;
        return 0;
    }
    char *nb = realloc(cl->body, cl->len + n + 1);
    if (!nb)
        return 0;
    cl->body = nb;
    memcpy(cl->body + cl->len, data, n);
    cl->len += n;
    cl->body[cl->len] = '\0';
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct client *cl = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    return cl->stop && *cl->stop ? 1 : 0;
}

/* Set up the client; the remote-write credentials go only to the source derived from it. */
static int client_init(struct client *cl, const struct config *c, char *err, size_t errlen)
{
    const struct rw_config *rw = &c->metrics.rw;
    bool derived = !c->baseline.source;
    char hdr[CONFIG_MAX_URL + 64];

    if (derived) {
        if (!rw->server_url) {
            snprintf(err, errlen,
                     "no baseline source: set baseline.source or "
                     "K6_PROMETHEUS_RW_SERVER_URL");
            return -EINVAL;
        }
        if (history_source(rw->server_url, cl->base, sizeof(cl->base)) < 0) {
            snprintf(err, errlen, "no query API for the remote-write URL: set baseline.source");
            return -EINVAL;
        }
    } else {
        snprintf(cl->base, sizeof(cl->base), "%s", c->baseline.source);
    }
    cl->easy = curl_easy_init();
    if (!cl->easy) {
        snprintf(err, errlen, "cannot start an HTTP client");
        return -ENOMEM;
    }
    CURL *e = cl->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, cl);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, cl);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cl->curl_err);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    cl->headers = curl_slist_append(NULL, "Accept: application/json");
    if (derived) {
        if (rw->insecure_skip_tls_verify) {
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (rw->client_cert)
            curl_easy_setopt(e, CURLOPT_SSLCERT, rw->client_cert);
        if (rw->client_key)
            curl_easy_setopt(e, CURLOPT_SSLKEY, rw->client_key);
        if (rw->bearer_token) {
            curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
            curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, rw->bearer_token);
        } else if (rw->username) {
            curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(e, CURLOPT_USERNAME, rw->username);
            curl_easy_setopt(e, CURLOPT_PASSWORD, rw->password ? rw->password : "");
        }
        for (size_t i = 0; i < rw->nheaders; i++) {
            snprintf(hdr, sizeof(hdr), "%s: %s", rw->headers[i].key, rw->headers[i].value);
            struct curl_slist *l = curl_slist_append(cl->headers, hdr);
            explicit_bzero(hdr, sizeof(hdr));
            if (l)
                cl->headers = l;
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, cl->headers);
    return 0;
}

static void client_clear(struct client *cl)
{
    if (cl->easy)
        curl_easy_cleanup(cl->easy);
    curl_slist_free_all(cl->headers);
    free(cl->body);
    memset(cl, 0, sizeof(*cl));
}

/*
 * One instant query at time at (Unix s). Returns the number of points, -EIO
 * for a transport failure (err says; later queries would fail alike) or
 * -EINVAL for an answer that is not a vector (err says).
 */
static int query(struct client *cl, const char *promql, double at, struct history_point *pts,
                 size_t max, char *err, size_t errlen)
{
    char url[CONFIG_MAX_URL + 64];
    int64_t left = cl->deadline - units_now_mono();
    if (cl->stop && *cl->stop) {
        snprintf(err, errlen, "interrupted");
        return -EIO;
    }
    if (left < 1000) {
        snprintf(err, errlen, "baseline.timeout spent before this query");
        return -EIO;
    }
    char *q = curl_easy_escape(cl->easy, promql, 0);
    char *body = NULL;
    if (q)
        body = malloc(strlen(q) + 64);
    if (!body) {
        curl_free(q);
        snprintf(err, errlen, "out of memory");
        return -EIO;
    }
    sprintf(body, "query=%s&time=%.3f", q, at);
    curl_free(q);
    snprintf(url, sizeof(url), "%s/api/v1/query", cl->base);
    free(cl->body);
    cl->body = NULL;
    cl->len = 0;
    cl->too_big = false;
    cl->curl_err[0] = '\0';
    curl_easy_setopt(cl->easy, CURLOPT_URL, url);
    curl_easy_setopt(cl->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cl->easy, CURLOPT_TIMEOUT_MS, (long)(left / 1000));
    CURLcode rc = curl_easy_perform(cl->easy);
    free(body);
    (*cl->queries)++;
    long status = 0;
    curl_easy_getinfo(cl->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        if (cl->too_big)
            snprintf(err, errlen, "the answer is larger than %d bytes", BASELINE_MAX_BODY);
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
            snprintf(err, errlen, "interrupted");
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf(err, errlen, "no answer within baseline.timeout");
        else
            snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        return -EIO;
    }
    /* Prometheus answers 400/422/503 with a JSON error body: prefer its words. */
    int n = history_parse_vector(cl->body ? cl->body : "", cl->len, pts, max, err, errlen);
    if (n < 0 && status != 200) {
        char why[200];
        snprintf(why, sizeof(why), "%s", err);
        snprintf(err, errlen, "HTTP %ld: %s", status, why);
        /* 4xx but 429: this query is wrong; anything else: the server is */
        return status >= 400 && status < 500 && status != 429 ? -EINVAL : -EIO;
    }
    return n;
}

static int cmp_newest(const void *a, const void *b)
{
    const struct baseline_run *x = a, *y = b;
    return x->finished > y->finished ? -1 : x->finished < y->finished;
}

/* Read one baseline: the runs with their times, then their values. */
static int read_one(struct client *cl, const struct config *c, struct baseline *b, double now,
                    char *err, size_t errlen)
{
    char key[2048], stat[32], *promql = malloc(HISTORY_MAX_PROMQL);
    struct history_point *runs = calloc(HISTORY_MAX_POINTS, sizeof(*runs));
    struct history_point *vals = calloc(HISTORY_MAX_POINTS, sizeof(*vals));
    double values[HISTORY_MAX_POINTS];
    int rc = -ENOMEM;
    if (!promql || !runs || !vals)
        goto out;
    struct history_match m = {
        .environment = c->environment,
        .test_type = c->test_type ? c->test_type : b->scenario,
        .scenario = b->scenario,
        .labels = c->metrics.labels,
        .nlabels = c->metrics.nlabels,
    };
    if (threshold_key(b->t, key, sizeof(key)) < 0 || threshold_stat(b->t, stat, sizeof(stat)) < 0) {
        snprintf(b->error, sizeof(b->error), "metric key too long");
        b->status = BASELINE_FAILED;
        rc = 0;
        goto out;
    }
    const char *pin = c->baseline.pin_testid;
    int nr = history_promql_runs(&m, key, stat, c->baseline.runs, c->baseline.max_age, pin, promql,
                                 HISTORY_MAX_PROMQL);
    if (nr >= 0)
        nr = query(cl, promql, now, runs, HISTORY_MAX_POINTS, err, errlen);
    int nv = nr >= 0 ? history_promql_values(&m, key, stat, c->baseline.runs, c->baseline.max_age,
                                             pin, promql, HISTORY_MAX_PROMQL)
                     : nr;
    if (nr >= 0 && nv >= 0)
        nv = query(cl, promql, now, vals, HISTORY_MAX_POINTS, err, errlen);
    if (nr == -ENOSPC || nv == -ENOSPC)
        snprintf(err, errlen, "query longer than %d bytes", HISTORY_MAX_PROMQL);
    if (nr < 0 || nv < 0) {
        b->status = BASELINE_FAILED;
        snprintf(b->error, sizeof(b->error), "%s", err);
        rc = nr == -EIO || nv == -EIO ? -EIO : 0;
        goto out;
    }
    /* Join on testid, newest first; a run counted once. */
    b->runs = calloc((size_t)(nr ? nr : 1), sizeof(*b->runs));
    if (!b->runs)
        goto out;
    for (int i = 0; i < nr; i++) {
        bool dup = false;
        for (size_t k = 0; k < b->nruns; k++)
            dup |= !strcmp(b->runs[k].testid, runs[i].testid);
        int j = 0;
        while (j < nv && strcmp(vals[j].testid, runs[i].testid) != 0)
            j++;
        if (dup || j == nv || !isfinite(vals[j].value))
            continue;
        struct baseline_run *r = &b->runs[b->nruns];
        if (!(r->testid = strdup(runs[i].testid)))
            goto out;
        r->value = vals[j].value;
        r->finished = runs[i].value;
        b->nruns++;
    }
    qsort(b->runs, b->nruns, sizeof(b->runs[0]), cmp_newest);
    for (size_t i = 0; i < b->nruns; i++)
        values[i] = b->runs[i].value;
    if (pin && b->nruns == 0) {
        b->status = BASELINE_FAILED;
        snprintf(b->error, sizeof(b->error),
                 "pinned run %.64s has no %s of %.80s in scenario %s within baseline.max_age", pin,
                 stat, key, b->scenario);
    } else if (b->nruns < (size_t)(pin ? 1 : c->baseline.min_runs)) {
        b->status = BASELINE_MISSING;
    } else {
        b->status = BASELINE_FOUND;
        b->value = history_aggregate(c->baseline.aggregate, values, b->nruns);
    }
    rc = 0;
out:
    free(promql);
    free(runs);
    free(vals);
    return rc;
}

static int add_set(struct baseline_set *set, const struct threshold_set *ts, const char *scenario)
{
    for (size_t i = 0; i < ts->n; i++) {
        if (!ts->t[i].baseline)
            continue;
        if (set->n == sizeof(set->items) / sizeof(set->items[0]))
            return -E2BIG;
        struct baseline *b = &set->items[set->n++];
        memset(b, 0, sizeof(*b));
        b->t = &ts->t[i];
        b->scenario = scenario;
        b->value = NAN;
        b->status = BASELINE_FAILED;
        snprintf(b->error, sizeof(b->error), "not read");
    }
    return 0;
}

int baseline_fetch(const struct config *c, bool smoke, bool load, volatile sig_atomic_t *stop,
                   struct baseline_set *set)
{
    struct client cl;
    char err[256] = "";
    memset(set, 0, sizeof(*set));
    memset(&cl, 0, sizeof(cl));
    if (smoke)
        add_set(set, &c->smoke.thresholds, "smoke");
    if (load)
        add_set(set, &c->load.thresholds, "load");
    if (set->n == 0)
        return 0;

    int rc = client_init(&cl, c, err, sizeof(err));
    if (rc == -ENOMEM) {
        client_clear(&cl);
        return rc;
    }
    if (rc == 0) {
        char safe[sizeof(set->source)];
        config_redact_url(cl.base, safe, sizeof(safe));
        snprintf(set->source, sizeof(set->source), "%s", safe);
    }
    cl.deadline = units_now_mono() + c->baseline.timeout;
    cl.stop = stop;
    cl.queries = &set->queries;
    double now = (double)units_now_wall() / USEC_PER_SEC;
    for (size_t i = 0; i < set->n && rc == 0; i++) {
        struct baseline *b = &set->items[i];
        rc = read_one(&cl, c, b, now, err, sizeof(err));
        if (rc == -ENOMEM)
            break;
    }
    /* After a transport failure (or none to send to), what is left fails with the same why. */
    for (size_t i = 0; i < set->n; i++) {
        struct baseline *b = &set->items[i];
        if (b->status == BASELINE_FAILED && !strcmp(b->error, "not read"))
            snprintf(b->error, sizeof(b->error), "%s", err[0] ? err : "not read");
    }
    client_clear(&cl);
    return rc == -ENOMEM ? rc : 0;
}

void baseline_set_clear(struct baseline_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        for (size_t k = 0; k < set->items[i].nruns; k++)
            free(set->items[i].runs[k].testid);
        free(set->items[i].runs);
    }
    memset(set, 0, sizeof(*set));
}

const struct baseline *baseline_find(const struct baseline_set *set, const struct threshold *t)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (set->items[i].t == t)
            return &set->items[i];
    return NULL;
}
