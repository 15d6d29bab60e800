/*
 * rw: Prometheus remote write 1.0 encoding of metrics snapshots, with the
 * series names and labels of k6's experimental-prometheus-rw output.
 *
 * An encoder turns successive snapshots of a metrics registry (as produced by
 * run_snapshot) into request bodies: a protobuf WriteRequest compressed in
 * snappy's *block* format. It remembers every series it has sent, so that a
 * body holds only the series whose version changed since the previous one,
 * every series' millisecond timestamps strictly increase (two encodes within
 * the same millisecond still get distinct timestamps), and stale markers can
 * be sent for everything at the end.
 *
 * Series per k6 metric type:
 *   counter  k6_<m>_total        cumulative value
 *   rate     k6_<m>_rate         passes / total
 *   gauge    k6_<m>              last value (k6_vus, k6_vus_max)
 *   trend    k6_<m>_<stat>       one per trend stat, in seconds for time trends
 *            (p(95) -> p95, p(99.9) -> p999, p(0.95) -> p095; count is a number)
 *   trend    k6_<m>_seconds      one native histogram (schema 3, integer
 *            buckets) instead, when native histograms are on
 *
 * Labels of every series, first one wins when two end up with the same name:
 * __name__, testid, instance, environment, test_type (the configured value,
 * else the series' scenario tag, else the current phase set with
 * rw_encoder_set_test_type), the series' tags (never "url"), then the
 * profile's static labels. Names are sanitised (any character outside
 * [a-zA-Z0-9_], or a leading digit, becomes '_'); names that are empty or
 * start with "__" are dropped, as are empty values. Values are cut to
 * RW_MAX_VALUE bytes and invalid UTF-8 bytes become '_'. Labels are sorted
 * by name in byte order.
 *
 * Pure module: no I/O, no clock (timestamps are arguments), no global state.
 * An encoder is not thread-safe; rw_push owns one per push thread.
 */
#ifndef SYNCGATE_RW_H
#define SYNCGATE_RW_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/metrics.h"

/* Bits of Prometheus' stale marker, and of the only NaN syncgate sends otherwise. */
#define RW_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)
#define RW_NAN_BITS UINT64_C(0x7ff8000000000001)

#define RW_HIST_SCHEMA 3
#define RW_DEFAULT_TREND_STATS "p(95),p(99),min,max"
#define RW_MAX_STATS 16
#define RW_MAX_VALUE 1024 /* bytes kept of one label value */
/* Series remembered over a run; later new series are not sent (counted). */
#define RW_MAX_SERIES (4 * METRICS_MAX_SERIES)

enum rw_stat_kind {
    RW_STAT_AVG,
    RW_STAT_MIN,
    RW_STAT_MAX,
    RW_STAT_MED,
    RW_STAT_COUNT,
    RW_STAT_SUM,
    RW_STAT_PCT
};

struct rw_stat {
    enum rw_stat_kind kind;
    double p;        /* percentile 0..100 for RW_STAT_PCT */
    char suffix[24]; /* series name suffix: "p95", "p999", "min" */
};

/*
 * Parse a K6_PROMETHEUS_RW_TREND_STATS list ("p(95),p(99.9),min,max,avg,med,
 * count,sum"; blanks around items and empty items allowed, repeats ignored)
 * into out[0..max). Returns the number of stats, or -EINVAL (with a message
 * in err) for an unknown stat, a percentile that is not plain decimal digits
 * in 0..100, a list without any stat, or more than max stats.
 */
int rw_parse_trend_stats(const char *list, struct rw_stat *out, size_t max, char *err,
                         size_t errlen);

/*
 * Sanitise a label name into out (at most outlen-1 bytes, NUL-terminated).
 * Returns the length, or 0 when the label must be dropped (empty, or a
 * reserved "__" name).
 */
size_t rw_label_name(const char *in, char *out, size_t outlen);

/*
 * Sanitise a label value into out: cut to RW_MAX_VALUE bytes (and outlen-1)
 * at a character boundary, invalid UTF-8 bytes replaced by '_'. Returns the
 * length (0: drop the label).
 */
size_t rw_label_value(const char *in, char *out, size_t outlen);

/*
 * Index of the schema-3 native histogram bucket holding v > 0: the k with
 * 2^((k-1)/8) < v <= 2^(k/8).
 */
int32_t rw_hist_index(double v);

/* A request body: snappy block of a packed WriteRequest. */
struct rw_batch {
    uint8_t *body; /* malloc'd; NULL when len is 0 */
    size_t len;
    size_t nseries;  /* TimeSeries in it */
    size_t nsamples; /* float samples plus histogram samples */
};

/* Free the body and zero b; safe on a zeroed batch. */
void rw_batch_clear(struct rw_batch *b);

struct rw_encoder;

/*
 * New encoder for the run described by c: testid, instance, environment,
 * test_type, metrics.labels, metrics.rw.trend_stats (NULL: the default) and
 * metrics.rw.native_histogram. Strings are copied. Returns NULL with a
 * message in err on a bad trend stats list or when out of memory.
 */
struct rw_encoder *rw_encoder_new(const struct config *c, char *err, size_t errlen);
/* Free; NULL is a no-op. */
void rw_encoder_free(struct rw_encoder *e);

/* Which series of a snapshot rw_encode takes. */
enum rw_select {
    RW_CHANGED, /* those whose version changed since they were last encoded */
    RW_ALL,     /* every series */
    RW_FINAL,   /* the changed ones, and those encoded only once so far: at the end of a
                 * run every series has two points (rate and irate need two), while a
                 * counter that stopped changing keeps its last two points distinct */
};

/*
 * Encode the series of snap that sel selects at now_ms (wall clock, ms since
 * the epoch). Each series' sample is stamped max(now_ms, its previous
 * timestamp + 1). Returns 0 with out filled (out->len == 0 when nothing was
 * selected), or -ENOMEM (the encoder's memory of what was sent is then
 * unchanged).
 */
int rw_encode(struct rw_encoder *e, const struct metrics *snap, int64_t now_ms,
              enum rw_select sel, struct rw_batch *out);

/*
 * Encode one stale marker (a sample whose bits are RW_STALE_NAN_BITS) for
 * every series ever encoded, each stamped after its last sample and no
 * earlier than now_ms. Returns 0 (out->len == 0 when nothing was ever sent)
 * or -ENOMEM.
 */
int rw_encode_stale(struct rw_encoder *e, int64_t now_ms, struct rw_batch *out);

/*
 * The test_type of series that have neither a configured test_type nor a
 * scenario tag (vus, vus_max): the phase now running ("smoke", "load";
 * NULL: none). Such a series seen in two phases becomes two series. Copied.
 * Returns 0 or -ENOMEM (the previous value is kept).
 */
int rw_encoder_set_test_type(struct rw_encoder *e, const char *test_type);

/*
 * One sample of a series of syncgate's own (not a k6 metric): the run's
 * result series (history.h). Labels are the common ones (testid, instance,
 * environment, test_type: the configured one, else the "scenario" label),
 * then these (strings borrowed), then the profile's static labels, first one
 * winning, sanitised and sorted as above.
 */
struct rw_info {
    const char *name;
    struct tagset labels;
    double value;
};

/*
 * Encode items as one body at now_ms. They are not remembered: neither
 * re-sent by rw_encode nor given stale markers (they stay visible to instant
 * queries for Prometheus' lookback time, so alerts see them). Returns 0 with
 * out filled (out->len == 0 when n is 0) or -ENOMEM.
 */
int rw_encode_info(struct rw_encoder *e, const struct rw_info *items, size_t n, int64_t now_ms,
                   struct rw_batch *out);

/* Series remembered, and samples of new series not sent because RW_MAX_SERIES was reached. */
size_t rw_encoder_nseries(const struct rw_encoder *e);
uint64_t rw_encoder_dropped(const struct rw_encoder *e);

/*
 * Delivery (src/rw_push.c): a push thread that, every push interval, takes a
 * snapshot through snapshot_cb, encodes what changed and appends the body to
 * one FIFO queue bounded in bytes (when full, the oldest waiting bodies are
 * dropped and counted). Bodies are POSTed one at a time, in order, with
 * libcurl: a later body never overtakes an earlier one. 2xx: delivered.
 * 5xx, timeouts and connection errors: the same body is sent again after a
 * capped exponential backoff with jitter (backoff_min doubling up to
 * backoff_max, each wait drawn from [d/2, d]). 429: the same, or longer when
 * the receiver's Retry-After (seconds or an HTTP date, at most
 * retry_after_max) asks for more: the backoff is a floor no answer can lower,
 * so a receiver answering at once cannot make the push thread spin.
 * Any other status: dropped at once, the receiver's body logged (the first
 * RW_MAX_BODY bytes are captured; log_add_quote masks secrets in them and
 * cuts them to LOG_QUOTE_MAX). Headers Content-Encoding, Content-Type,
 * X-Prometheus-Remote-Write-Version and User-Agent are always syncgate's;
 * user headers with those names (or Authorization when a username or bearer
 * token is set, Host, Content-Length, Expect, Transfer-Encoding) are
 * ignored. A bearer token wins over username/password.
 *
 * The load loop is never blocked: the only contact is snapshot_cb, which
 * runs on the push thread (run_snapshot fits: it merges under each source's
 * own short lock). Log events: remote_write_start, remote_write_error,
 * remote_write_rejected, remote_write_queue_full, remote_write_resumed,
 * remote_write_done. Credentials never appear in logs: the URL is shown
 * through config_redact_url, and the log masks every registered secret in
 * what a receiver answers.
 */
struct log;

#define RW_MAX_BODY 4096                       /* bytes of a receiver's answer captured */
#define RW_QUEUE_MAX_BYTES (64u * 1024 * 1024) /* default queue bound */

typedef int (*rw_snapshot_cb)(struct metrics *dst, void *ud);

/*
 * Whether a user header name (any case) is one syncgate sets itself on a push
 * (Content-Encoding, Content-Type, X-Prometheus-Remote-Write-Version,
 * User-Agent, Content-Length, Host, Expect, Transfer-Encoding). The
 * configuration rejects these, so what is accepted is what is sent.
 */
bool rw_header_reserved(const char *name);

/* Tunables; zero fields take the defaults shown. */
struct rw_push_opts {
    size_t queue_max_bytes;  /* RW_QUEUE_MAX_BYTES */
    int64_t request_timeout; /* usec per attempt: 5 s */
    int64_t backoff_min;     /* usec: 100 ms */
    int64_t backoff_max;     /* usec: 5 s */
    int64_t retry_after_max; /* usec: 60 s */
    /*
     * A stop flag (the program's signal flag), or NULL. Once *interrupt is
     * nonzero, the final drain ends at most interrupt_drain usec later
     * (default 1 s), however long rw_push_stop's drain_usec, so a signal
     * during the final flush still ends the program promptly.
     */
    volatile sig_atomic_t *interrupt;
    int64_t interrupt_drain;
};

struct rw_stats {
    uint64_t pushes;              /* bodies accepted (2xx) */
    uint64_t rejected;            /* bodies dropped on a 4xx (other than 429) or 1xx/3xx */
    uint64_t retries;             /* attempts repeated after 5xx, 429, timeout, network error */
    uint64_t queue_dropped;       /* bodies pushed out of the full queue */
    uint64_t samples_sent;        /* samples in accepted bodies */
    uint64_t samples_dropped;     /* samples rejected, pushed out, or over RW_MAX_SERIES */
    uint64_t samples_undelivered; /* samples still queued when the drain time ran out */
    uint64_t bytes_sent;          /* compressed bytes of accepted bodies */
    uint64_t snapshot_errors;     /* snapshots that failed (nothing encoded for that tick) */
    int last_status;              /* last HTTP status; 0: none yet or no answer */
    char last_error[256];         /* last failure, e.g. "HTTP 503" or a libcurl message */
};

struct rw_push;

/*
 * Start pushing to c->metrics.rw.server_url every c->metrics.rw.push_interval
 * (5 s when 0). c is read during this call only; log (may be NULL) and ud
 * must outlive the push. opts may be NULL. The program must have called
 * curl_global_init() first. snapshot_cb runs on the push thread; with
 * run_snapshot use a two-line adapter (its arguments are the other way round).
 * Returns NULL with a message in err when there is no server URL, the trend
 * stats are invalid, or a resource (memory, libcurl, thread) could not be had.
 */
struct rw_push *rw_push_start(const struct config *c, struct log *log, rw_snapshot_cb snapshot_cb,
                              void *ud, const struct rw_push_opts *opts, char *err, size_t errlen);

/*
 * The phase now running, used as test_type for series without one (see
 * rw_encoder_set_test_type; cut to 63 bytes). Call it between phases: the
 * push thread first encodes what changed under the previous phase (so its
 * vus end at their last value), then switches; this waits for that, at most
 * 2 s. Any thread. Returns 0.
 */
int rw_push_set_test_type(struct rw_push *p, const char *test_type);

/* A consistent copy of the counters so far (any thread). */
void rw_push_stats(struct rw_push *p, struct rw_stats *out);

/*
 * Items (rw_encode_info) the final flush sends after the last snapshot and
 * its stale markers: the run's result series. Borrowed until rw_push_stop
 * returns; a later call replaces the earlier one. Any thread. Returns 0.
 */
int rw_push_set_final(struct rw_push *p, const struct rw_info *items, size_t n);

/*
 * End the push: one last snapshot, sending every series if anything was lost
 * before (else what changed), then stale markers when enabled, then keep
 * delivering for at most drain_usec. Joins the thread; snapshot_cb is not
 * called after this returns. Fills out (may be NULL). Returns 0 when
 * everything encoded was delivered, -EIO when samples were dropped or left
 * undelivered (the stats say which). Call once.
 */
int rw_push_stop(struct rw_push *p, int64_t drain_usec, struct rw_stats *out);

/* Free; stops first (with no drain time) when rw_push_stop was not called. NULL: no-op. */
void rw_push_free(struct rw_push *p);

#endif
