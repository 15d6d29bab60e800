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
    int status; /* 0 when no response was received */
    enum http_error error;
    /* k6 timing parts in microseconds; duration = sending + waiting + receiving */
    int64_t blocked, connecting, tls_handshaking, sending, waiting, receiving, duration;
    uint64_t bytes_sent, bytes_received;
};

/* Short kind name ("refused", "timeout", ...) and k6 error code (0 for none). */
const char *http_error_name(enum http_error e);
int http_error_code(enum http_error e);
/* The kind a k6 error code (an error_code tag) stands for; unknown codes: protocol. */
enum http_error http_error_from_code(int code);

/* Classify a libcurl result code. */
enum http_error http_error_from_curl(CURLcode rc);

/* Fill r from a finished easy handle and its result code. */
void http_result_from_curl(struct http_result *r, CURL *easy, CURLcode rc);

/*
 * Record r into m the way k6 does: http_reqs, http_req_failed (failed =
 * status not in expect), data_sent/received, and the duration trends.
 * base holds the request's tags (name, method, scenario); status,
 * expected_response and error_code are added here. Unlike k6, a request that
 * got no response records no http_req_duration (and parts), so duration
 * thresholds can never pass on an unreachable target.
 * Returns whether the response was the expected one.
 */
bool http_record(struct metrics *m, const struct tagset *base, const struct http_result *r,
                 int expect_status);

/*
 * The series one kind of result (status, error kind) of one request shape
 * feeds, found once and then reused: series live as long as their registry,
 * so a cache belongs to one registry and one base tag set. Zero-initialise.
 */
#define HTTP_CACHE_SLOTS 4
#define HTTP_SERIES 11 /* http_reqs, _failed, data_sent/received, 7 duration trends */

struct http_cache {
    struct {
        bool used;
        int status;
        enum http_error error;
        struct series *s[HTTP_SERIES];
    } slot[HTTP_CACHE_SLOTS];
    unsigned next; /* slot to reuse when all are taken */
};

/* http_record_cached() with the caller's own judgement of the response (a journey step
 * expects a list of statuses). */
void http_record_judged(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        const struct http_result *r, bool expected);

/* http_record() through a cache: no hashing or tag building on a hit. */
bool http_record_cached(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        const struct http_result *r, int expect_status);

#endif
