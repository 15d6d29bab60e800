/* coord: the coordinator of a distributed run on libmicrohttpd. See coord.h and fleet.h. */
#include "syncgate/coord.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "fleet.pb-c.h"
#include "syncgate/api.h"
#include "syncgate/executor.h"
#include "syncgate/fleet.h"
#include "syncgate/snapshot.h"
#include "syncgate/units.h"

#define HTTP_THREADS 2
#define HTTP_CONNECTION_TIMEOUT 60 /* s: peers keep one connection alive between requests */
#define WATCH_EVERY (100 * USEC_PER_MSEC)
#define REFUSED_GRACE (300 * USEC_PER_MSEC)

enum route { R_REGISTER, R_POLL, R_REPORT };

/* One peer, index 1 .. n-1. */
struct cpeer {
    /* Its latest report as it came (checked): tens of KB, where the registry it makes takes
     * megabytes of histogram ranges; decoded into each merge (snapshot_merge). */
    pthread_mutex_t lock; /* report, meta; held while merging or swapping */
    uint8_t *report;
    size_t report_len;
    struct snapshot_meta meta; /* of report */
    bool has_report;
    /* under the coordinator's lock */
    bool registered, lost, final, verdict_seen;
    int64_t last_seen;
    int64_t refused_at;      /* refused (another configuration...): lost a moment later, once
                                the answer saying why is on its way */
    char refused_why[192];
    char label[128]; /* its instance label */
    char why[192];   /* lost: why */
};

struct coord {
    struct MHD_Daemon *d;
    const struct config *cfg;
    struct log *log;
    struct run *run;
    uint64_t digest;
    unsigned n;
    int64_t started;

    pthread_mutex_t lock; /* everything below, and the peers' state */
    pthread_cond_t cond;  /* a peer registered, reported, was lost or read the verdict */
    enum fleet_state state;
    int64_t t0;
    int exit_code;
    char result[32], reason[256];
    struct cpeer *peers;
    int nlost;
    uint64_t refused_auth;  /* requests refused for the token since the last log line */
    int64_t auth_logged;

    pthread_t watchdog;
    bool watching, quit;

    /* what the peers cost (fleet_stats, logged at the end) */
    _Atomic uint64_t reports, report_bytes, decode_us, merges, merged_peers, merge_us;
};

/* Per request, from its first call to its completion. */
struct req {
    enum route route;
    bool refused;
    uint8_t *body;
    size_t len, cap, max;
    bool too_big;
};

/* ---- state --------------------------------------------------------------------- */

static int64_t now_mono(void)
{
    return units_now_mono();
}

/* Mark peer i lost; c->lock held. Returns true when it was not lost already. */
static bool lose(struct coord *c, unsigned i, const char *fmt, ...)
{
    struct cpeer *p = &c->peers[i];
    if (p->lost)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
    p->lost = true;
    c->nlost++;
    c->run->fleet_stop = 1;
    pthread_cond_broadcast(&c->cond);
    return true;
}

static void log_lost(struct coord *c, unsigned i)
{
    struct cpeer *p = &c->peers[i];
    cJSON *ev = log_begin(c->log, "peer_lost");
    cJSON_AddNumberToObject(ev, "index", i);
    if (p->label[0])
        cJSON_AddStringToObject(ev, "instance", p->label);
    cJSON_AddStringToObject(ev, "message", p->why);
    log_emit(c->log, LOG_ERROR, ev);
}

/* The state a peer is told; c->lock held. */
static enum fleet_state told_state(struct coord *c, const char **reason)
{
    const struct run *r = c->run;
    *reason = c->reason;
    if (c->state == FLEET_DONE || c->state == FLEET_STOP)
        return c->state;
    if (run_should_stop(r)) {
        *reason = c->nlost           ? "instances were lost"
                  : r->aborted       ? "an abortOnFail threshold failed on the merged metrics"
                  : *r->stop         ? "the coordinator was interrupted"
                                     : "the coordinator stopped";
        return FLEET_STOP;
    }
    return c->state;
}

static void emit_unauthorized(struct coord *c, const char *url, const char *what, uint64_t n);

static void *watchdog_main(void *arg)
{
    struct coord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->quit) {
        int64_t now = now_mono();
        unsigned newly[64];
        size_t nnew = 0;
        uint64_t refused = 0;
        if (c->refused_auth && now - c->auth_logged >= USEC_PER_SEC) {
            refused = c->refused_auth;
            c->refused_auth = 0;
            c->auth_logged = now;
        }
        if (c->state != FLEET_DONE)
            for (unsigned i = 1; i < c->n; i++) {
                struct cpeer *p = &c->peers[i];
                if (p->refused_at && !p->lost && now - p->refused_at >= REFUSED_GRACE) {
                    if (lose(c, i, "refused: %.160s", p->refused_why) &&
                        nnew < sizeof(newly) / sizeof(newly[0]))
                        newly[nnew++] = i;
                    continue;
                }
                if (!p->registered || p->lost || p->final || now - p->last_seen <= FLEET_LOST_AFTER)
                    continue;
                if (lose(c, i, "no word for %.1f s (it died, or cannot reach the coordinator)",
                         (double)(now - p->last_seen) / USEC_PER_SEC) &&
                    nnew < sizeof(newly) / sizeof(newly[0]))
                    newly[nnew++] = i;
            }
        pthread_mutex_unlock(&c->lock);
        for (size_t k = 0; k < nnew; k++)
            log_lost(c, newly[k]);
        if (refused)
            emit_unauthorized(c, "/v1/*", "requests without the right token", refused);
        struct timespec ts = {0, (long)WATCH_EVERY * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- answers ------------------------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *type,
                              const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"syncgate\"");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len > sizeof(msg) - 2)
        len = (int)sizeof(msg) - 2;
    msg[len++] = '\n';
    return answer(conn, status, "text/plain; charset=utf-8", msg, (size_t)len);
}

/* The Status of the run as peer `index` is told it; c->lock held. */
static enum MHD_Result send_status(struct coord *c, struct MHD_Connection *conn, unsigned index)
{
    Syncgate__Fleet__Status st = SYNCGATE__FLEET__STATUS__INIT;
    const char *reason;
    enum fleet_state s = told_state(c, &reason);
    st.state = (Syncgate__Fleet__Status__State)s;
    st.now = now_mono();
    st.start = c->state == FLEET_WAITING ? 0 : c->t0;
    st.exit_code = c->exit_code;
    st.testid = c->cfg->testid;
    st.result = c->result;
    st.reason = (char *)reason;
    if (s == FLEET_DONE && index > 0 && index < c->n && !c->peers[index].verdict_seen) {
        c->peers[index].verdict_seen = true;
        pthread_cond_broadcast(&c->cond);
    }
    uint8_t buf[1024];
    size_t len = syncgate__fleet__status__get_packed_size(&st);
    if (len > sizeof(buf))
        return refuse(conn, 500, "status too large");
    syncgate__fleet__status__pack(&st, buf);
    return answer(conn, 200, "application/x-protobuf", buf, len);
}

/* ---- the three requests ------------------------------------------------------------ */

static enum MHD_Result on_register(struct coord *c, struct MHD_Connection *conn,
                                   const struct req *q)
{
    Syncgate__Fleet__Hello *h = syncgate__fleet__hello__unpack(NULL, q->len, q->body);
    if (!h)
        return refuse(conn, 400, "the body is not a Hello message");
    char why[192] = "";
    unsigned i = h->index;
    if (i == 0 || i >= c->n)
        snprintf(why, sizeof(why), "index %u is not a peer's: this run has instances 1 to %u "
                 "besides the coordinator (0)", i, c->n - 1);
    else if (h->instances != c->n)
        snprintf(why, sizeof(why), "it was told %u instances, the coordinator %u", h->instances,
                 c->n);
    else if (!h->version || strcmp(h->version, SYNCGATE_VERSION))
        snprintf(why, sizeof(why), "syncgate %s, the coordinator %s: every instance must run "
                 "the same version", h->version ? h->version : "?", SYNCGATE_VERSION);
    else if (h->digest != c->digest)
        snprintf(why, sizeof(why), "its configuration differs from the coordinator's (instance "
                 "count, environment, testid, scenarios or journeys): every instance must run "
                 "the same profile");
    char label[128];
    snprintf(label, sizeof(label), "%s", h->instance ? h->instance : "");
    syncgate__fleet__hello__free_unpacked(h, NULL);

    pthread_mutex_lock(&c->lock);
    bool ok = !why[0];
    /* too late to take part once the load started; once it is over, it learns the verdict */
    if (ok && (c->state == FLEET_GO || c->state == FLEET_STOP) && !c->peers[i].registered &&
        !c->peers[i].lost)
        snprintf(why, sizeof(why), "the run started without it (%s)",
                 fleet_state_name(c->state)), ok = false;
    if (ok && c->peers[i].lost && c->state != FLEET_DONE)
        snprintf(why, sizeof(why), "it was counted lost already: %.150s", c->peers[i].why),
            ok = false;
    bool newly = false;
    if (ok) {
        struct cpeer *p = &c->peers[i];
        newly = !p->registered;
        p->registered = true;
        p->last_seen = now_mono();
        snprintf(p->label, sizeof(p->label), "%s", label);
        pthread_cond_broadcast(&c->cond);
    } else if (i > 0 && i < c->n && c->state != FLEET_DONE && !c->peers[i].refused_at) {
        /* an instance of this run that cannot take part: the run cannot be whole (the
         * watchdog counts it lost once this answer is on its way) */
        snprintf(c->peers[i].label, sizeof(c->peers[i].label), "%s", label);
        snprintf(c->peers[i].refused_why, sizeof(c->peers[i].refused_why), "%s", why);
        c->peers[i].refused_at = now_mono();
    }
    enum MHD_Result rc = ok ? send_status(c, conn, i) : MHD_YES;
    pthread_mutex_unlock(&c->lock);
    if (newly) {
        cJSON *ev = log_begin(c->log, "peer_registered");
        cJSON_AddNumberToObject(ev, "index", i);
        cJSON_AddStringToObject(ev, "instance", label);
        log_emit(c->log, LOG_INFO, ev);
    }
    if (!ok) {
        cJSON *ev = log_begin(c->log, "peer_refused");
        cJSON_AddNumberToObject(ev, "index", i);
        cJSON_AddStringToObject(ev, "instance", label);
        cJSON_AddStringToObject(ev, "message", why);
        log_emit(c->log, LOG_ERROR, ev);
        return refuse(conn, 409, "%s", why);
    }
    return rc;
}

/* A registered peer's word: fresh, or refused (409) when it is not one. c->lock held. */
static bool known_peer(struct coord *c, unsigned i)
{
    if (i == 0 || i >= c->n || !c->peers[i].registered)
        return false;
    c->peers[i].last_seen = now_mono();
    return true;
}

static enum MHD_Result on_poll(struct coord *c, struct MHD_Connection *conn, const struct req *q)
{
    Syncgate__Fleet__Poll *p = syncgate__fleet__poll__unpack(NULL, q->len, q->body);
    if (!p)
        return refuse(conn, 400, "the body is not a Poll message");
    unsigned i = p->index;
    int failure = p->failure;
    char reason[160];
    snprintf(reason, sizeof(reason), "%s", p->reason ? p->reason : "");
    syncgate__fleet__poll__free_unpacked(p, NULL);
    pthread_mutex_lock(&c->lock);
    if (!known_peer(c, i)) {
        pthread_mutex_unlock(&c->lock);
        return refuse(conn, 409, "instance %u is not registered", i);
    }
    bool lost_now = failure && c->state != FLEET_DONE &&
                    lose(c, i, "failed (exit code %d): %s", failure, reason);
    enum MHD_Result rc = send_status(c, conn, i);
    pthread_mutex_unlock(&c->lock);
    if (lost_now)
        log_lost(c, i);
    return rc;
}

static enum MHD_Result on_report(struct coord *c, struct MHD_Connection *conn, struct req *q)
{
    /* the sender's index is in the query too, checked against the report's */
    const char *ix = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "index");
    char *end = NULL;
    unsigned long i = ix ? strtoul(ix, &end, 10) : 0;
    pthread_mutex_lock(&c->lock);
    bool known = ix && *ix && !*end && i < c->n && known_peer(c, (unsigned)i);
    pthread_mutex_unlock(&c->lock);
    if (!known)
        return refuse(conn, 409, "instance %s is not registered", ix ? ix : "(no index=)");
    struct cpeer *p = &c->peers[i];
    struct snapshot_meta meta;
    int64_t t0 = now_mono();
    int rc = q->body ? snapshot_read(q->body, q->len, &meta) : -EINVAL;
    atomic_fetch_add(&c->decode_us, (uint64_t)(now_mono() - t0));
    atomic_fetch_add(&c->reports, 1);
    atomic_fetch_add(&c->report_bytes, q->len);
    if (rc == 0 && meta.index != i)
        rc = -EINVAL;
    if (rc == 0) {
        pthread_mutex_lock(&p->lock);
        /* the newest report wins (its bytes are taken over); an older one arriving late is
         * dropped */
        if (!p->has_report || meta.seq >= p->meta.seq) {
            uint8_t *old = p->report;
            p->report = q->body;
            p->report_len = q->len;
            p->meta = meta;
            p->has_report = true;
            q->body = old;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (rc < 0)
        return rc == -ENOMEM ? refuse(conn, 500, "out of memory")
                             : refuse(conn, 400, "the body is not a valid Report of instance %lu", i);

    pthread_mutex_lock(&c->lock);
    bool lost_now = meta.failure && c->state != FLEET_DONE &&
                    lose(c, i, "failed (exit code %d): %s", meta.failure, meta.reason);
    if (meta.final && !p->final) {
        p->final = true;
        pthread_cond_broadcast(&c->cond);
    }
    enum MHD_Result res = send_status(c, conn, i);
    pthread_mutex_unlock(&c->lock);
    if (lost_now)
        log_lost(c, i);
    return res;
}

/* ---- the HTTP layer --------------------------------------------------------------- */

static bool authorized(struct coord *c, struct MHD_Connection *conn, bool *given)
{
    size_t len = 0;
    const char *tok =
        api_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                   &len);
    const char *want = c->cfg->scaleout.token;
    /* compared even when missing, so that the time taken says nothing */
    bool same = api_token_equal(want, strlen(want), tok ? tok : "", tok ? len : 0);
    *given = tok != NULL;
    return tok && same;
}

static void emit_unauthorized(struct coord *c, const char *url, const char *what, uint64_t n)
{
    cJSON *ev = log_begin(c->log, "peer_unauthorized");
    cJSON_AddStringToObject(ev, "path", url);
    cJSON_AddStringToObject(ev, "message", what);
    cJSON_AddNumberToObject(ev, "refused", (double)n);
    log_emit(c->log, LOG_WARN, ev);
}

/* A refused token: one log line a second at most, with how many were refused since the
 * last (the watchdog says the rest). */
static void log_unauthorized(struct coord *c, const char *url, bool given)
{
    pthread_mutex_lock(&c->lock);
    c->refused_auth++;
    int64_t now = now_mono();
    uint64_t n = 0;
    if (now - c->auth_logged >= USEC_PER_SEC) {
        n = c->refused_auth;
        c->refused_auth = 0;
        c->auth_logged = now;
    }
    pthread_mutex_unlock(&c->lock);
    if (n)
        emit_unauthorized(c, url, given ? "wrong token" : "no bearer token", n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct coord *c = cls;
    struct req *q = *con_cls;
    (void)version;
    if (!q) {
        if (!(q = calloc(1, sizeof(*q))))
            return MHD_NO;
        *con_cls = q;
        q->refused = true;
        int route = !strcmp(url, "/v1/register") ? R_REGISTER
                    : !strcmp(url, "/v1/poll")   ? R_POLL
                    : !strcmp(url, "/v1/report") ? R_REPORT
                                                 : -1;
        bool given;
        if (route < 0)
            return refuse(conn, 404, "no such endpoint");
        if (!authorized(c, conn, &given)) {
            log_unauthorized(c, url, given);
            return refuse(conn, given ? 403 : 401, "%s",
                          given ? "wrong token" : "missing bearer token");
        }
        if (strcmp(method, "POST"))
            return refuse(conn, 405, "POST only");
        q->route = (enum route)route;
        q->max = route == R_REPORT ? SNAPSHOT_MAX_BYTES : FLEET_MAX_SMALL_BODY;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
        if (want > q->max)
            return refuse(conn, 413, "body over %zu bytes", q->max);
        q->refused = false;
        if (want && !(q->body = malloc(want)))
            return refuse(conn, 500, "out of memory");
        q->cap = want;
        return MHD_YES;
    }
    if (q->refused) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > q->max) {
            q->too_big = true;
            return MHD_YES;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n)
                cap *= 2;
            if (cap > q->max)
                cap = q->max;
            uint8_t *b = realloc(q->body, cap);
            if (!b)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    if (q->too_big)
        return refuse(conn, 413, "body over %zu bytes", q->max);
    static const uint8_t none[1];
    struct req view = *q;
    if (!view.body)
        view.body = (uint8_t *)none;
    switch (q->route) {
    case R_REGISTER: return on_register(c, conn, &view);
    case R_POLL: return on_poll(c, conn, &view);
    case R_REPORT: return on_report(c, conn, q); /* may take the body over */
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *q = *con_cls;
    (void)cls, (void)conn, (void)toe;
    if (q) {
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    log_vmsg(cls, LOG_DEBUG, "fleet_http", fmt, ap);
}

static struct MHD_Daemon *listen_on(struct coord *c, unsigned extra_flags)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     extra_flags;
    return MHD_start_daemon(flags, (uint16_t)c->cfg->scaleout.port, NULL, NULL, on_request, c,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, c->log,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * c->n + 64),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONNECTION_TIMEOUT,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, c,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)(c->n + 64),
                            MHD_OPTION_END);
}

/* ---- the program's side ----------------------------------------------------------- */

struct coord *coord_start(const struct config *cfg, struct log *log, struct run *run, int *err)
{
    struct coord *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    c->cfg = cfg;
    c->log = log;
    c->run = run;
    c->n = (unsigned)cfg->scaleout.instances;
    c->digest = fleet_digest(cfg);
    c->started = now_mono();
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->peers = calloc(c->n, sizeof(*c->peers));
    if (!c->peers) {
        *err = -ENOMEM;
        coord_free(c);
        return NULL;
    }
    for (unsigned i = 0; i < c->n; i++)
        pthread_mutex_init(&c->peers[i].lock, NULL);
    errno = 0;
    c->d = listen_on(c, MHD_USE_DUAL_STACK);
    if (!c->d) /* no IPv6 in this network namespace */
        c->d = listen_on(c, 0);
    if (!c->d) {
        *err = errno ? -errno : -EADDRINUSE;
        coord_free(c);
        return NULL;
    }
    if (pthread_create(&c->watchdog, NULL, watchdog_main, c) != 0) {
        *err = -EAGAIN;
        coord_free(c);
        return NULL;
    }
    c->watching = true;
    cJSON *ev = log_begin(log, "fleet_listen");
    cJSON_AddNumberToObject(ev, "port", cfg->scaleout.port);
    cJSON_AddNumberToObject(ev, "instances", c->n);
    log_emit(log, LOG_INFO, ev);
    return c;
}

void coord_free(struct coord *c)
{
    if (!c)
        return;
    if (c->d)
        MHD_stop_daemon(c->d);
    if (c->d && c->log) {
        /* the coordinator's work for its peers: what scaling to many pods costs */
        cJSON *ev = log_begin(c->log, "fleet_stats");
        cJSON_AddNumberToObject(ev, "instances", c->n);
        cJSON_AddNumberToObject(ev, "reports", (double)c->reports);
        cJSON_AddNumberToObject(ev, "report_bytes", (double)c->report_bytes);
        cJSON_AddNumberToObject(ev, "decode_us", (double)c->decode_us);
        cJSON_AddNumberToObject(ev, "merges", (double)c->merges);
        cJSON_AddNumberToObject(ev, "merged_peers", (double)c->merged_peers);
        cJSON_AddNumberToObject(ev, "merge_us", (double)c->merge_us);
        log_emit(c->log, LOG_DEBUG, ev);
    }
    if (c->watching) {
        pthread_mutex_lock(&c->lock);
        c->quit = true;
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->watchdog, NULL);
    }
    for (unsigned i = 0; c->peers && i < c->n; i++) {
        free(c->peers[i].report);
        pthread_mutex_destroy(&c->peers[i].lock);
    }
    free(c->peers);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Wait on c->cond until until (mono usec) or a signal of it; c->lock held. */
static void wait_until(struct coord *c, int64_t until)
{
    int64_t t = until < now_mono() + 100 * USEC_PER_MSEC ? until : now_mono() + 100 * USEC_PER_MSEC;
    struct timespec ts = {.tv_sec = t / USEC_PER_SEC, .tv_nsec = (long)(t % USEC_PER_SEC) * 1000};
    pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

int coord_wait_peers(struct coord *c)
{
    int64_t deadline = c->started + c->cfg->scaleout.register_timeout;
    unsigned newly[64];
    size_t nnew = 0;
    int rc;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        unsigned in = 0;
        for (unsigned i = 1; i < c->n; i++)
            in += c->peers[i].registered && !c->peers[i].lost;
        if (c->nlost) {
            rc = -ECANCELED;
            break;
        }
        if (in == c->n - 1) {
            rc = 0;
            break;
        }
        if (run_should_stop(c->run)) {
            rc = -EINTR;
            break;
        }
        if (now_mono() >= deadline) {
            char t[32];
            units_format_duration(c->cfg->scaleout.register_timeout, t, sizeof(t));
            for (unsigned i = 1; i < c->n; i++)
                if (!c->peers[i].registered &&
                    lose(c, i, "never registered within %s (SYNCGATE_REGISTER_TIMEOUT)", t) &&
                    nnew < sizeof(newly) / sizeof(newly[0]))
                    newly[nnew++] = i;
            rc = -ETIMEDOUT;
            break;
        }
        wait_until(c, deadline);
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t k = 0; k < nnew; k++)
        log_lost(c, newly[k]);
    if (rc == 0) {
        cJSON *ev = log_begin(c->log, "fleet_ready");
        cJSON_AddNumberToObject(ev, "instances", c->n);
        cJSON_AddNumberToObject(ev, "waited_s",
                                (double)((now_mono() - c->started) / USEC_PER_MSEC) / 1000.0);
        log_emit(c->log, LOG_INFO, ev);
    }
    return rc;
}

void coord_go(struct coord *c, int64_t t0)
{
    pthread_mutex_lock(&c->lock);
    c->t0 = t0;
    if (c->state == FLEET_WAITING)
        c->state = FLEET_GO;
    pthread_mutex_unlock(&c->lock);
    cJSON *ev = log_begin(c->log, "fleet_go");
    cJSON_AddNumberToObject(ev, "instances", c->n);
    cJSON_AddNumberToObject(ev, "start_in_ms", (double)((t0 - now_mono()) / 1000));
    log_emit(c->log, LOG_INFO, ev);
}

int coord_merge(struct coord *c, struct metrics *dst, const uint64_t *own_started,
                const uint64_t *own_due)
{
    const struct config *cfg = c->cfg;
    uint64_t started[CONFIG_MAX_SCENARIOS] = {0}, due[CONFIG_MAX_SCENARIOS] = {0};
    size_t nsc = cfg->load.nscenarios < CONFIG_MAX_SCENARIOS ? cfg->load.nscenarios
                                                             : CONFIG_MAX_SCENARIOS;
    for (size_t k = 0; k < nsc; k++) {
        started[k] = own_started ? own_started[k] : 0;
        due[k] = own_due ? own_due[k] : 0;
    }
    int rc = 0;
    int64_t t0 = now_mono();
    uint64_t merged = 0;
    for (unsigned i = 1; i < c->n && rc == 0; i++) {
        struct cpeer *p = &c->peers[i];
        pthread_mutex_lock(&p->lock);
        if (p->has_report) {
            merged++;
            rc = snapshot_merge(p->report, p->report_len, dst);
            for (size_t k = 0; k < nsc && k < p->meta.nscenarios; k++) {
                started[k] += p->meta.started[k];
                due[k] += p->meta.due[k];
            }
        }
        pthread_mutex_unlock(&p->lock);
    }
    atomic_fetch_add(&c->merge_us, (uint64_t)(now_mono() - t0));
    atomic_fetch_add(&c->merges, 1);
    atomic_fetch_add(&c->merged_peers, merged);
    /* a ratio does not add up: the whole run's iterations started over those due */
    for (size_t k = 0; rc == 0 && k < nsc; k++) {
        if (!ex_open(&cfg->load.scenarios[k]))
            continue;
        struct tagset t = {0};
        tagset_set(&t, "scenario", cfg->load.scenarios[k].name);
        for (struct series *s = metrics_first(dst); s; s = s->next)
            if (s->id == M_ACHIEVED_RATE && tagset_matches(&s->tags, &t) && s->v.gauge.set) {
                double v = due[k] ? (double)started[k] / (double)due[k] : 1.0;
                s->v.gauge.value = s->v.gauge.min = s->v.gauge.max = v;
            }
    }
    return rc;
}

void coord_saturation(struct coord *c, struct sat_report *s)
{
    unsigned saturated_at = 0, peers = 0;
    for (unsigned i = 1; i < c->n; i++) {
        struct cpeer *p = &c->peers[i];
        pthread_mutex_lock(&p->lock);
        if (p->has_report && p->meta.has_saturation && p->meta.saturation.measured) {
            const struct sat_report *o = &p->meta.saturation;
            peers++;
            s->measured = true;
            if (o->saturated && !saturated_at)
                saturated_at = i;
            s->saturated |= o->saturated;
            s->windows += o->windows;
            s->saturated_windows += o->saturated_windows;
            s->capacity += o->capacity;
            s->cpu_peak = fmax(s->cpu_peak, o->cpu_peak);
            s->lag_peak = fmax(s->lag_peak, o->lag_peak);
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (!peers)
        return;
    char src[sizeof(s->source)];
    if (saturated_at)
        snprintf(src, sizeof(src), "%u instances; instance %u was saturated", peers + 1,
                 saturated_at);
    else
        snprintf(src, sizeof(src), "%u instances; %.60s", peers + 1, s->source);
    snprintf(s->source, sizeof(s->source), "%s", src);
}

int coord_wait_final(struct coord *c, int64_t deadline)
{
    unsigned newly[64];
    size_t nnew = 0;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        unsigned missing = 0;
        for (unsigned i = 1; i < c->n; i++)
            missing += !c->peers[i].lost && !c->peers[i].final;
        if (!missing)
            break;
        if (*c->run->stop && deadline > now_mono() + USEC_PER_SEC)
            deadline = now_mono() + USEC_PER_SEC; /* interrupted: what comes in a second */
        if (now_mono() >= deadline && *c->run->stop)
            break; /* the verdict is "interrupted" anyway: nobody is blamed */
        if (now_mono() >= deadline) {
            for (unsigned i = 1; i < c->n; i++)
                if (!c->peers[i].lost && !c->peers[i].final &&
                    lose(c, i, "sent no final report in time") &&
                    nnew < sizeof(newly) / sizeof(newly[0]))
                    newly[nnew++] = i;
            break;
        }
        wait_until(c, deadline);
    }
    int n = c->nlost;
    pthread_mutex_unlock(&c->lock);
    for (size_t k = 0; k < nnew; k++)
        log_lost(c, newly[k]);
    return n;
}

int coord_lost(struct coord *c, char *why, size_t n)
{
    size_t len = 0;
    if (n)
        why[0] = '\0';
    pthread_mutex_lock(&c->lock);
    int lost = c->nlost;
    for (unsigned i = 1; i < c->n && n; i++) {
        const struct cpeer *p = &c->peers[i];
        if (!p->lost || len >= n - 1)
            continue;
        int w = snprintf(why + len, n - len, "%sinstance %u%s%s%s: %s", len ? "; " : "", i,
                         p->label[0] ? " (" : "", p->label, p->label[0] ? ")" : "", p->why);
        len = w < 0 ? len : len + (size_t)w < n ? len + (size_t)w : n - 1;
    }
    pthread_mutex_unlock(&c->lock);
    return lost;
}

bool coord_peers_undelivered(struct coord *c)
{
    bool any = false;
    for (unsigned i = 1; i < c->n; i++) {
        pthread_mutex_lock(&c->peers[i].lock);
        any |= c->peers[i].has_report && c->peers[i].meta.undelivered;
        pthread_mutex_unlock(&c->peers[i].lock);
    }
    return any;
}

void coord_done(struct coord *c, int exit_code, const char *result, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    c->state = FLEET_DONE;
    c->exit_code = exit_code;
    snprintf(c->result, sizeof(c->result), "%s", result ? result : "");
    snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void coord_linger(struct coord *c, int64_t deadline)
{
    pthread_mutex_lock(&c->lock);
    /* a peer that has not come yet (the run ended before it could: smoke failed) still
     * gets the verdict when it comes within the registration time */
    int64_t reg_end = c->started + c->cfg->scaleout.register_timeout;
    for (unsigned i = 1; i < c->n; i++)
        if (!c->peers[i].registered && !c->peers[i].lost && reg_end > deadline)
            deadline = reg_end;
    for (;;) {
        unsigned waiting = 0;
        for (unsigned i = 1; i < c->n; i++)
            waiting += !c->peers[i].lost && !c->peers[i].verdict_seen;
        if (*c->run->stop && deadline > now_mono() + 2 * USEC_PER_SEC)
            deadline = now_mono() + 2 * USEC_PER_SEC; /* a signal: whoever sent it waits */
        if (!waiting || now_mono() >= deadline)
            break;
        wait_until(c, deadline);
    }
    pthread_mutex_unlock(&c->lock);
}
