/* peer: a distributed run's instance talking to its coordinator. See peer.h and fleet.h. */
#include "syncgate/peer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "fleet.pb-c.h"
#include "syncgate/units.h"

#define ANSWER_MAX 65536     /* bytes of an answer kept */
#define CLOCK_REFRESH 5      /* quick exchanges at GO */

struct peer {
    const struct config *cfg;
    struct log *log;
    CURL *easy;
    struct curl_slist *headers;
    char base[CONFIG_MAX_URL];
    char err[CURL_ERROR_SIZE];
    char *answer;
    size_t answer_len;
    bool answer_cut;
    struct fleet_clock clock;
    int64_t last_ok; /* mono usec of the last answered exchange */
    int64_t reached; /* mono usec when a connection to the coordinator first failed after
                        being made (it exists: its silence from then on counts), 0: never */
    uint64_t seq;    /* reports sent */
    _Atomic bool lost;

    /* the report thread */
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool quit;
    peer_snapshot_cb cb;
    void *ud;
    volatile int *fleet_stop;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct peer *p = ud;
    size_t n = size * nmemb;
    if (p->answer_len + n > ANSWER_MAX) {
        p->answer_cut = true;
        n = ANSWER_MAX - p->answer_len;
    }
    memcpy(p->answer + p->answer_len, ptr, n);
    p->answer_len += n;
    p->answer[p->answer_len] = '\0';
    return size * nmemb;
}

struct peer *peer_new(const struct config *cfg, struct log *log, int *err)
{
    struct peer *p = calloc(1, sizeof(*p));
    char *auth = NULL;
    if (!p || !(p->answer = malloc(ANSWER_MAX + 1)) || !(p->easy = curl_easy_init()))
        goto nomem;
    p->cfg = cfg;
    p->log = log;
    fleet_clock_init(&p->clock);
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    const char *h = cfg->scaleout.host;
    bool v6 = strchr(h, ':') != NULL;
    snprintf(p->base, sizeof(p->base), "http://%s%s%s:%d", v6 ? "[" : "", h, v6 ? "]" : "",
             cfg->scaleout.port);
    if (asprintf(&auth, "Authorization: Bearer %s", cfg->scaleout.token) < 0) {
        auth = NULL;
        goto nomem;
    }
    struct curl_slist *l = curl_slist_append(NULL, auth);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    if (!l)
        goto nomem;
    p->headers = l;
    if (!(l = curl_slist_append(p->headers, "Content-Type: application/x-protobuf")) ||
        !(l = curl_slist_append(p->headers, "Expect:")))
        goto nomem;
    CURL *c = p->easy;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(FLEET_REQUEST_TIMEOUT / USEC_PER_MSEC));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return p;
nomem:
    peer_free(p);
    *err = -ENOMEM;
    return NULL;
}

static void report_stop(struct peer *p)
{
    if (!p->running)
        return;
    pthread_mutex_lock(&p->lock);
    p->quit = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    p->running = false;
}

void peer_free(struct peer *p)
{
    if (!p)
        return;
    report_stop(p);
    if (p->easy)
        curl_easy_cleanup(p->easy);
    curl_slist_free_all(p->headers);
    free(p->answer);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The outcome of one exchange. */
enum outcome { OK, NO_ANSWER, REFUSED };

/*
 * POST body to path; on 200 parse the Status into st and sample the clock. NO_ANSWER: no
 * HTTP answer at all (or a 5xx); REFUSED: another status (*code; the text in p->answer).
 */
static enum outcome exchange(struct peer *p, const char *path, const uint8_t *body, size_t len,
                             struct peer_status *st, long *code)
{
    char url[CONFIG_MAX_URL + 64];
    snprintf(url, sizeof(url), "%s%s", p->base, path);
    curl_easy_setopt(p->easy, CURLOPT_URL, url);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    p->answer_len = 0;
    p->answer_cut = false;
    p->answer[0] = '\0';
    p->err[0] = '\0';
    *code = 0;
    int64_t t0 = units_now_mono();
    /* never wait past the point where the coordinator counts as lost (plus a little) */
    int64_t timeout = FLEET_REQUEST_TIMEOUT;
    if (p->last_ok) {
        int64_t left = p->last_ok + FLEET_PEER_LOST_AFTER + 250 * USEC_PER_MSEC - t0;
        timeout = left < 300 * USEC_PER_MSEC ? 300 * USEC_PER_MSEC : left < timeout ? left : timeout;
    }
    curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)(timeout / USEC_PER_MSEC));
    CURLcode rc = curl_easy_perform(p->easy);
    int64_t t1 = units_now_mono();
    if (rc != CURLE_OK) {
        /* connected, then nothing: the coordinator is there (or was) */
        if (!p->reached && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
                            rc == CURLE_SEND_ERROR || rc == CURLE_PARTIAL_FILE))
            p->reached = t1;
        return NO_ANSWER;
    }
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, code);
    if (*code >= 500)
        return NO_ANSWER;
    if (*code != 200)
        return REFUSED;
    Syncgate__Fleet__Status *s =
        syncgate__fleet__status__unpack(NULL, p->answer_len, (const uint8_t *)p->answer);
    if (!s) {
        snprintf(p->answer, ANSWER_MAX, "the coordinator's answer is not a Status");
        *code = 502;
        return REFUSED;
    }
    p->last_ok = t1;
    fleet_clock_sample(&p->clock, t0, s->now, t1);
    st->state = (unsigned)s->state <= (unsigned)FLEET_DONE ? (enum fleet_state)s->state : FLEET_STOP;
    st->start_remote = s->start;
    st->start_local = s->start ? fleet_clock_local(&p->clock, s->start) : 0;
    st->exit_code = s->exit_code;
    snprintf(st->testid, sizeof(st->testid), "%s", s->testid ? s->testid : "");
    snprintf(st->result, sizeof(st->result), "%s", s->result ? s->result : "");
    snprintf(st->reason, sizeof(st->reason), "%s", s->reason ? s->reason : "");
    syncgate__fleet__status__free_unpacked(s, NULL);
    return OK;
}

/* Sleep until mono time `until` or a stop (checked every 50 ms). */
static void nap(int64_t until, volatile sig_atomic_t *stop)
{
    for (int64_t now; (now = units_now_mono()) < until && !(stop && *stop);) {
        int64_t d = until - now < 50 * USEC_PER_MSEC ? until - now : 50 * USEC_PER_MSEC;
        struct timespec ts = {0, (long)d * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The text of a refusal, one line. */
static const char *refusal(struct peer *p, long code, char *buf, size_t n)
{
    size_t len = p->answer_len;
    while (len && (p->answer[len - 1] == '\n' || p->answer[len - 1] == '\r'))
        len--;
    snprintf(buf, n, "HTTP %ld: %.*s", code, (int)(len < 200 ? len : 200), p->answer);
    return buf;
}

static void log_lost(struct peer *p, const char *during)
{
    int64_t since = p->last_ok ? p->last_ok : p->reached;
    cJSON *ev = log_begin(p->log, "coordinator_lost");
    cJSON_AddStringToObject(ev, "coordinator", p->cfg->scaleout.coordinator);
    cJSON_AddStringToObject(ev, "during", during);
    cJSON_AddNumberToObject(ev, "silent_s",
                            (double)((units_now_mono() - since) / USEC_PER_MSEC) / 1000.0);
    if (p->err[0])
        cJSON_AddStringToObject(ev, "error", p->err);
    log_emit(p->log, LOG_ERROR, ev);
}

int peer_register(struct peer *p, volatile sig_atomic_t *stop, struct peer_status *st)
{
    const struct config *c = p->cfg;
    Syncgate__Fleet__Hello h = SYNCGATE__FLEET__HELLO__INIT;
    h.index = (uint32_t)c->scaleout.index;
    h.instances = (uint32_t)c->scaleout.instances;
    h.digest = fleet_digest(c);
    h.version = SYNCGATE_VERSION;
    h.instance = c->instance;
    uint8_t buf[FLEET_MAX_SMALL_BODY];
    size_t len = syncgate__fleet__hello__get_packed_size(&h);
    if (len > sizeof(buf))
        return -EPROTO;
    syncgate__fleet__hello__pack(&h, buf);
    int64_t deadline = units_now_mono() + c->scaleout.register_timeout;
    unsigned attempts = 0;
    memset(st, 0, sizeof(*st));
    for (;;) {
        long code;
        if (*stop)
            return -EINTR;
        enum outcome o = exchange(p, "/v1/register", buf, len, st, &code);
        attempts++;
        if (o == OK) {
            /* no TESTID: the run's testid is the coordinator's, from this line on */
            if (c->scaleout.testid_generated && st->testid[0])
                log_set_testid(p->log, st->testid);
            cJSON *ev = log_begin(p->log, "peer_register");
            cJSON_AddNumberToObject(ev, "index", c->scaleout.index);
            cJSON_AddNumberToObject(ev, "instances", c->scaleout.instances);
            cJSON_AddStringToObject(ev, "coordinator", c->scaleout.coordinator);
            cJSON_AddNumberToObject(ev, "attempts", attempts);
            cJSON_AddStringToObject(ev, "testid", st->testid);
            log_emit(p->log, LOG_INFO, ev);
            return 0;
        }
        if (o == REFUSED) {
            refusal(p, code, st->reason, sizeof(st->reason));
            return code == 401 || code == 403 ? -EACCES : -EPROTO;
        }
        if (units_now_mono() >= deadline) {
            snprintf(st->reason, sizeof(st->reason), "%s", p->err[0] ? p->err : "no answer");
            return -ETIMEDOUT;
        }
        /* a coordinator that took our connection and went silent is lost, not late */
        if (p->reached && units_now_mono() - p->reached > FLEET_PEER_LOST_AFTER) {
            snprintf(st->reason, sizeof(st->reason), "%s", p->err[0] ? p->err : "no answer");
            p->lost = true;
            log_lost(p, "registration");
            return -EHOSTDOWN;
        }
        nap(units_now_mono() + FLEET_POLL, stop);
    }
}

void peer_clock(const struct peer *p, int64_t *offset, int64_t *rtt)
{
    *offset = p->clock.offset;
    *rtt = p->clock.rtt;
}

int peer_wait(struct peer *p, enum fleet_state until, volatile sig_atomic_t *stop, int failure,
              const char *why, struct peer_status *st)
{
    Syncgate__Fleet__Poll q = SYNCGATE__FLEET__POLL__INIT;
    q.index = (uint32_t)p->cfg->scaleout.index;
    q.failure = failure;
    q.reason = (char *)(why ? why : "");
    uint8_t buf[FLEET_MAX_SMALL_BODY];
    size_t len = syncgate__fleet__poll__get_packed_size(&q);
    if (len > sizeof(buf))
        return -EPROTO;
    syncgate__fleet__poll__pack(&q, buf);
    if (!p->last_ok)
        p->last_ok = units_now_mono();
    for (;;) {
        long code;
        if (*stop)
            return -EINTR;
        int64_t sent = units_now_mono();
        enum outcome o = exchange(p, "/v1/poll", buf, len, st, &code);
        if (o == OK && st->state >= until) {
            if (st->state == FLEET_GO) {
                /* a few more exchanges right now: the freshest, shortest round trip wins */
                for (int k = 0; k < CLOCK_REFRESH; k++) {
                    struct peer_status more;
                    if (units_now_mono() + 100 * USEC_PER_MSEC >=
                            fleet_clock_local(&p->clock, st->start_remote) ||
                        exchange(p, "/v1/poll", buf, len, &more, &code) != OK)
                        break;
                    if (more.state != FLEET_GO) {
                        *st = more;
                        return 0;
                    }
                }
                st->start_local = fleet_clock_local(&p->clock, st->start_remote);
            }
            return 0;
        }
        if (o == REFUSED) {
            /* the coordinator answers but will not have us: as good as lost */
            char r[300];
            snprintf(p->err, sizeof(p->err), "%.200s", refusal(p, code, r, sizeof(r)));
        }
        if (o != OK && units_now_mono() - p->last_ok > FLEET_PEER_LOST_AFTER) {
            p->lost = true;
            log_lost(p, until == FLEET_DONE ? "waiting for the verdict" : "waiting for the start");
            return -EHOSTDOWN;
        }
        nap(sent + FLEET_POLL, stop);
    }
}

/* One report: the snapshot through cb, encoded and sent. Returns the outcome. */
static enum outcome send_report(struct peer *p, peer_snapshot_cb cb, void *ud, bool final,
                                struct peer_status *st)
{
    struct metrics *m = metrics_new();
    struct snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    uint8_t *body = NULL;
    size_t len = 0;
    enum outcome o = NO_ANSWER;
    if (m && cb(ud, m, &meta) == 0) {
        meta.index = (uint32_t)p->cfg->scaleout.index;
        meta.seq = p->seq;
        meta.final = final;
        if (snapshot_encode(m, &meta, &body, &len) == 0) {
            char path[64];
            long code;
            snprintf(path, sizeof(path), "/v1/report?index=%d", p->cfg->scaleout.index);
            o = exchange(p, path, body, len, st, &code);
            if (o == OK)
                p->seq++;
            else if (o == REFUSED) {
                char r[300];
                snprintf(p->err, sizeof(p->err), "%.200s", refusal(p, code, r, sizeof(r)));
            }
        }
    }
    free(body);
    metrics_free(m);
    return o;
}

static void *report_main(void *arg)
{
    struct peer *p = arg;
    int64_t next = units_now_mono() + FLEET_INTERVAL;
    bool told = false;
    pthread_mutex_lock(&p->lock);
    while (!p->quit) {
        int64_t now = units_now_mono();
        if (now < next) {
            struct timespec ts = {.tv_sec = next / USEC_PER_SEC,
                                  .tv_nsec = (long)(next % USEC_PER_SEC) * 1000};
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        next += FLEET_INTERVAL;
        if (next < now)
            next = now + FLEET_INTERVAL;
        struct peer_status st;
        enum outcome o = send_report(p, p->cb, p->ud, false, &st);
        if (o != OK) /* the coordinator may be gone: look again soon, not in a second */
            next = units_now_mono() + FLEET_POLL;
        if (o == OK && (st.state == FLEET_STOP || st.state == FLEET_DONE) && !told) {
            told = true;
            *p->fleet_stop = 1;
            cJSON *ev = log_begin(p->log, "coordinator_stop");
            cJSON_AddStringToObject(ev, "state", fleet_state_name(st.state));
            cJSON_AddStringToObject(ev, "reason", st.reason);
            log_emit(p->log, LOG_WARN, ev);
        }
        if (o != OK && !p->lost && units_now_mono() - p->last_ok > FLEET_PEER_LOST_AFTER) {
            p->lost = true;
            *p->fleet_stop = 1;
            log_lost(p, "load");
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int peer_report_start(struct peer *p, peer_snapshot_cb cb, void *ud, volatile int *fleet_stop)
{
    p->cb = cb;
    p->ud = ud;
    p->fleet_stop = fleet_stop;
    p->quit = false;
    if (!p->last_ok)
        p->last_ok = units_now_mono();
    int rc = -pthread_create(&p->thread, NULL, report_main, p);
    p->running = rc == 0;
    return rc;
}

int peer_report_final(struct peer *p, peer_snapshot_cb cb, void *ud, struct peer_status *st)
{
    report_stop(p);
    if (p->lost)
        return -EHOSTDOWN;
    for (;;) {
        int64_t sent = units_now_mono();
        if (send_report(p, cb, ud, true, st) == OK)
            return 0;
        if (units_now_mono() - p->last_ok > FLEET_PEER_LOST_AFTER) {
            p->lost = true;
            log_lost(p, "the final report");
            return -EHOSTDOWN;
        }
        nap(sent + FLEET_POLL, NULL);
    }
}

bool peer_coordinator_lost(const struct peer *p)
{
    return p->lost;
}
