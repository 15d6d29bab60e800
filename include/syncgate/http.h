/*
 * http: one finished HTTP request, as k6 would record it.
 *
 * Both smoke (easy interface) and load (multi interface) describe a finished
 * transfer with struct http_result, filled from libcurl's timing infos, and
 * record it with http_record(), so every phase produces the same k6 metrics
 * and tags. Failures are classified into kinds with k6's error codes.
 */
#ifndef SYNCGATE_HTTP_H
#define SYNCGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "syncgate/metrics.h"

enum http_error {
    HTTP_ERR_NONE,
    HTTP_ERR_DNS,       /* k6 1101: host not found */
    HTTP_ERR_REFUSED,   /* k6 1212 */
    HTTP_ERR_RESET,     /* k6 1220 */
    HTTP_ERR_CONNECT,   /* k6 1200: other dial errors */
    HTTP_ERR_TIMEOUT,   /* k6 1050: request timeout */
    HTTP_ERR_TLS,       /* k6 1300 family */
    HTTP_ERR_PROTOCOL,  /* k6 1000: malformed response, too large, closed early */
    HTTP_ERR_ABORTED,   /* stopped by us (signal, ramp-down bound): not recorded */
    HTTP_ERR__COUNT
};

/*
 * Largest response body accepted (bytes). Bodies are never kept, but one
 * larger than this fails the request as a protocol error (k6 1000): a health
 * endpoint streaming without end would otherwise hold a VU forever.
 */
#define HTTP_MAX_BODY (64 * 1024 * 1024)

struct http_result {
    int status; /* 0 when no whole response was received (any error, as k6) */
    enum http_error error;
    long proto; /* CURL_HTTP_VERSION_* of the response, 0 without one */
    /* k6 timing parts in microseconds; duration = sending + waiting + receiving */
    int64_t blocked, connecting, tls_handshaking, sending, waiting, receiving, duration;
    uint64_t bytes_sent, bytes_received;
};

/* Short kind name ("refused", "timeout", ...) and k6 error code (0 for none). */
const char *http_error_name(enum http_error e);
int http_error_code(enum http_error e);
/* The kind a k6 error code (an error_code tag) stands for; unknown codes: protocol. */
enum http_error http_error_from_code(int code);

/*
 * A timeout in usec as libcurl's CURLOPT_*TIMEOUT_MS wants it: rounded up,
 * never below 1 ms, because 0 ms means "no timeout at all" to libcurl.
 */
long http_timeout_ms(int64_t usec);

/* Classify a libcurl result code. */
enum http_error http_error_from_curl(CURLcode rc);

/*
 * Follow a response head through the lines libcurl's header callback gets
 * (line, len bytes, line end included): *complete becomes false at a status
 * line ("HTTP/...") and true at the blank line that ends a head. libcurl
 * itself reports success for a response that ends after its status line or
 * amid its headers; only this tells such a response from a whole one. Interim
 * (1xx) heads end too, and the final status line that follows resets the flag.
 */
void http_head_line(bool *complete, const char *line, size_t len);

/*
 * Fill r from a finished easy handle and its result code. head_complete says
 * whether the response head ended (http_head_line): a response cut short
 * before then is a protocol failure, whatever libcurl returned. As in k6, a
 * request that failed (any error kind) has status 0 and no proto, whatever
 * part of a response came before the failure.
 */
void http_result_from_curl(struct http_result *r, CURL *easy, CURLcode rc, bool head_complete);

/*
 * Status codes are the server's to pick, so the label values they become are
 * bounded per request shape (one step: service, method, scenario), whatever
 * the server sends: expected statuses (a bounded list in the configuration)
 * and the first HTTP_SHAPE_STATUSES other statuses from 100 to 599 that a
 * shape sees keep their number; later ones are grouped by class ("1xx" to
 * "5xx"); statuses outside 100..599 are all "invalid" (RFC 9110 has no such
 * status); no response is "0". The table is shared by every thread recording
 * the shape (claims are atomic), so the bound holds for the whole run.
 * Zero-initialise.
 */
#define HTTP_SHAPE_STATUSES 8

struct http_statuses {
    _Atomic int code[HTTP_SHAPE_STATUSES]; /* 0: free */
};

/*
 * The label value of status, written to buf (n >= 8) or a constant; expected
 * says whether the shape expects it (then it keeps its number); claims a free
 * slot for a new status in range.
 */
const char *http_status_label(struct http_statuses *st, int status, bool expected, char *buf,
                              size_t n);

/* k6's proto tag value for a CURL_HTTP_VERSION_* ("HTTP/1.1", "HTTP/2.0"), NULL for none. */
const char *http_proto_name(long curl_version);

/*
 * The series one kind of result (status, error kind, protocol) of one request
 * shape feeds, found once and then reused: series live as long as their
 * registry, so a cache belongs to one registry and one shape. Zero-initialise.
 */
#define HTTP_CACHE_SLOTS 4
#define HTTP_SERIES 11 /* http_reqs, _failed, data_sent/received, 7 duration trends */

struct http_cache {
    struct {
        bool used;
        int status;
        enum http_error error;
        long proto;
        struct series *s[HTTP_SERIES];
    } slot[HTTP_CACHE_SLOTS];
    unsigned next; /* slot to reuse when all are taken */
};

/*
 * Record r into m the way k6 does, with the caller's judgement of the
 * response (expected: the step's statuses and no failure): http_reqs,
 * http_req_failed (failed = not expected) and the duration trends with the
 * base tags plus status (http_status_label over st, the shape's table),
 * expected_response, proto and error_code (the failure's kind, else 1000 +
 * the status from 400 up: 1503; 1400 and 1500 for statuses grouped as 4xx
 * and 5xx); data_sent and data_received with the scenario tag only, as k6
 * tags them (per iteration, not per request). Unlike k6, a request that got
 * no response records no http_req_duration (and parts), so duration
 * thresholds can never pass on an unreachable target. Safe from several
 * threads on one st, each with its own registry and cache. No hashing or tag
 * building on a cache hit.
 */
void http_record_judged(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        struct http_statuses *st, const struct http_result *r, bool expected);

/*
 * http_record_judged() without a cache, judging by one expected status
 * (expect_status > 0; else any 2xx or 3xx). Returns whether r was expected.
 */
bool http_record(struct metrics *m, const struct tagset *base, struct http_statuses *st,
                 const struct http_result *r, int expect_status);

#endif
