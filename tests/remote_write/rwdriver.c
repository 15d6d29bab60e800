/*
 * rwdriver: drives rw_push like a run would, without the syncgate binary.
 *
 * A producer thread records k6-style metrics into its own registry (under
 * its own lock) every --tick-ms: one request to "product" (status 200) and,
 * every fifth tick, one to "inventory" (status 503, failed); checks, vus,
 * vus_max, iterations, data counters and every request trend. The push
 * thread snapshots through a callback that merges under that lock, as
 * run_snapshot does; the phase (--phase, default "load") is set as the
 * fallback test_type. After --run-ms the producer stops and rw_push_stop
 * drains for --drain-ms. The result is one JSON object on stdout: the push
 * stats, the totals recorded (so a test can compare them with what a
 * receiver got), the producer's longest stall and how long stop took.
 * Log lines (JSON) go to stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "syncgate/config.h"
#include "syncgate/log.h"
#include "syncgate/metrics.h"
#include "syncgate/rw.h"

struct producer {
    pthread_mutex_t lock;
    struct metrics *m;
    int64_t tick_us, run_us;
    atomic_bool stop;
    uint64_t requests, failed, ticks;
    int64_t max_stall_us;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int snapshot_cb(struct metrics *dst, void *ud)
{
    struct producer *p = ud;
    pthread_mutex_lock(&p->lock);
    int rc = metrics_merge(dst, p->m);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static void record_request(struct producer *p, const char *name, const char *status, bool fail,
                           int64_t dur)
{
    struct tagset t = {0};
    tagset_set(&t, "name", name);
    tagset_set(&t, "method", "GET");
    tagset_set(&t, "status", status);
    tagset_set(&t, "expected_response", fail ? "false" : "true");
    tagset_set(&t, "scenario", "load");
    static const enum metric_id trends[] = {
        M_HTTP_REQ_DURATION, M_HTTP_REQ_BLOCKED, M_HTTP_REQ_CONNECTING, M_HTTP_REQ_TLS_HANDSHAKING,
        M_HTTP_REQ_SENDING,  M_HTTP_REQ_WAITING, M_HTTP_REQ_RECEIVING,
    };
    series_add(metrics_series(p->m, M_HTTP_REQS, &t), 1);
    series_rate(metrics_series(p->m, M_HTTP_REQ_FAILED, &t), fail);
    for (size_t i = 0; i < sizeof(trends) / sizeof(trends[0]); i++)
        series_trend(metrics_series(p->m, trends[i], &t), i == 0 ? dur : dur / (int64_t)(i + 3));
    struct tagset s = {0};
    tagset_set(&s, "scenario", "load");
    series_add(metrics_series(p->m, M_DATA_SENT, &s), 120);
    series_add(metrics_series(p->m, M_DATA_RECEIVED, &s), 800);
    struct tagset c = {0};
    char check[64];
    snprintf(check, sizeof(check), "%s status 200", name);
    tagset_set(&c, "check", check);
    tagset_set(&c, "name", name);
    tagset_set(&c, "scenario", "load");
    series_rate(metrics_series(p->m, M_CHECKS, &c), !fail);
}

static void *produce(void *arg)
{
    struct producer *p = arg;
    int64_t start = mono_us();
    uint64_t x = 0x2545f4914f6cdd1dull;
    struct tagset none = {0}, s = {0};
    tagset_set(&s, "scenario", "load");
    while (!atomic_load(&p->stop)) {
        int64_t t0 = mono_us();
        pthread_mutex_lock(&p->lock);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t dur = 1000 + (int64_t)(x % 200000); /* 1..201 ms */
        record_request(p, "product", "200", false, dur);
        p->requests++;
        if (p->ticks % 5 == 4) {
            record_request(p, "inventory", "503", true, dur / 2);
            p->requests++;
            p->failed++;
        }
        series_set(metrics_series(p->m, M_VUS, &none), 5);
        series_set(metrics_series(p->m, M_VUS_MAX, &none), 10);
        series_add(metrics_series(p->m, M_ITERATIONS, &s), 1);
        series_trend(metrics_series(p->m, M_ITERATION_DURATION, &s), dur + 500);
        p->ticks++;
        pthread_mutex_unlock(&p->lock);
        int64_t t1 = mono_us();
        /* A stall is the lock wait plus the recording: what the load loop would feel. */
        if (t1 - t0 > p->max_stall_us)
            p->max_stall_us = t1 - t0;
        if (t1 - start >= p->run_us)
            break;
        struct timespec d = {0, (long)p->tick_us * 1000};
        nanosleep(&d, NULL);
    }
    return NULL;
}

static int64_t arg_ms(const char *v)
{
    return (int64_t)atoll(v) * 1000;
}

int main(int argc, char **argv)
{
    struct config c;
    memset(&c, 0, sizeof(c));
    struct rw_push_opts o = {0};
    struct producer p = {.tick_us = 20000, .run_us = 2000000};
    int64_t drain = 5000000;
    const char *phase = "load";
    c.testid = "rwtest";
    c.instance = "driver-1";
    c.environment = "staging";
    c.metrics.rw.push_interval = 200000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool used = true;
        if (strcmp(a, "--stale") == 0)
            c.metrics.rw.stale_markers = true, used = false;
        else if (strcmp(a, "--native") == 0)
            c.metrics.rw.native_histogram = true, used = false;
        else if (!v)
            goto usage;
        else if (strcmp(a, "--url") == 0)
            c.metrics.rw.server_url = (char *)v;
        else if (strcmp(a, "--interval-ms") == 0)
            c.metrics.rw.push_interval = arg_ms(v);
        else if (strcmp(a, "--tick-ms") == 0)
            p.tick_us = arg_ms(v);
        else if (strcmp(a, "--run-ms") == 0)
            p.run_us = arg_ms(v);
        else if (strcmp(a, "--drain-ms") == 0)
            drain = arg_ms(v);
        else if (strcmp(a, "--trend-stats") == 0)
            c.metrics.rw.trend_stats = (char *)v;
        else if (strcmp(a, "--testid") == 0)
            c.testid = (char *)v;
        else if (strcmp(a, "--phase") == 0)
            phase = v;
        else if (strcmp(a, "--test-type") == 0)
            c.test_type = (char *)v;
        else if (strcmp(a, "--username") == 0)
            c.metrics.rw.username = (char *)v;
        else if (strcmp(a, "--password") == 0)
            c.metrics.rw.password = (char *)v;
        else if (strcmp(a, "--bearer") == 0)
            c.metrics.rw.bearer_token = (char *)v;
        else if (strcmp(a, "--queue-bytes") == 0)
            o.queue_max_bytes = (size_t)atoll(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            o.request_timeout = arg_ms(v);
        else if (strcmp(a, "--backoff-min-ms") == 0)
            o.backoff_min = arg_ms(v);
        else if (strcmp(a, "--backoff-max-ms") == 0)
            o.backoff_max = arg_ms(v);
        else if (strcmp(a, "--retry-after-max-ms") == 0)
            o.retry_after_max = arg_ms(v);
        else if ((strcmp(a, "--header") == 0 || strcmp(a, "--label") == 0) && strchr(v, '=')) {
            char *dup = strdup(v), *eq = strchr(dup, '=');
            *eq = '\0';
            struct kv kv = {dup, eq + 1};
            if (a[2] == 'h' && c.metrics.rw.nheaders < CONFIG_MAX_HEADERS)
                c.metrics.rw.headers[c.metrics.rw.nheaders++] = kv;
            else if (a[2] == 'l' && c.metrics.nlabels < CONFIG_MAX_LABELS)
                c.metrics.labels[c.metrics.nlabels++] = kv;
        } else
            goto usage;
        i += used;
    }
    if (!c.metrics.rw.server_url)
        goto usage;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct log *log = log_new(stderr, LOG_FORMAT_JSON, false, c.environment, c.testid);
    pthread_mutex_init(&p.lock, NULL);
    p.m = metrics_new();
    char err[256];
    struct rw_push *push = rw_push_start(&c, log, snapshot_cb, &p, &o, err, sizeof(err));
    if (!push) {
        fprintf(stderr, "rwdriver: %s\n", err);
        return 1;
    }
    rw_push_set_test_type(push, phase);
    pthread_t th;
    pthread_create(&th, NULL, produce, &p);
    pthread_join(th, NULL);

    struct rw_stats st;
    int64_t t0 = mono_us();
    int rc = rw_push_stop(push, drain, &st);
    int64_t stop_us = mono_us() - t0;
    rw_push_free(push);

    printf("{\"rc\": %d, \"pushes\": %llu, \"rejected\": %llu, \"retries\": %llu, "
           "\"queue_dropped\": %llu, \"samples_sent\": %llu, \"samples_dropped\": %llu, "
           "\"samples_undelivered\": %llu, \"bytes_sent\": %llu, \"snapshot_errors\": %llu, "
           "\"last_status\": %d, \"requests\": %llu, \"failed\": %llu, \"iterations\": %llu, "
           "\"max_stall_ms\": %.3f, \"stop_ms\": %.3f}\n",
           rc, (unsigned long long)st.pushes, (unsigned long long)st.rejected,
           (unsigned long long)st.retries, (unsigned long long)st.queue_dropped,
           (unsigned long long)st.samples_sent, (unsigned long long)st.samples_dropped,
           (unsigned long long)st.samples_undelivered, (unsigned long long)st.bytes_sent,
           (unsigned long long)st.snapshot_errors, st.last_status, (unsigned long long)p.requests,
           (unsigned long long)p.failed, (unsigned long long)p.ticks, p.max_stall_us / 1000.0,
           stop_us / 1000.0);

    metrics_free(p.m);
    pthread_mutex_destroy(&p.lock);
    log_free(log);
    for (size_t i = 0; i < c.metrics.rw.nheaders; i++)
        free(c.metrics.rw.headers[i].key);
    for (size_t i = 0; i < c.metrics.nlabels; i++)
        free(c.metrics.labels[i].key);
    curl_global_cleanup();
    return 0;
usage:
    fprintf(stderr,
            "usage: rwdriver --url URL [--interval-ms N] [--tick-ms N] [--run-ms N] "
            "[--drain-ms N] [--stale] [--native] [--trend-stats S] [--testid S] "
            "[--test-type S] [--phase S] [--username U --password P] [--bearer T] [--header K=V] "
            "[--label K=V] [--queue-bytes N] [--timeout-ms N] [--backoff-min-ms N] "
            "[--backoff-max-ms N] [--retry-after-max-ms N]\n");
    return 2;
}
