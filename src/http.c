/* http: k6's view of one finished request, from libcurl's infos. */
#include "syncgate/http.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

static const struct {
    const char *name;
    int code;
} errors[HTTP_ERR__COUNT] = {
    [HTTP_ERR_NONE] = {"", 0},
    [HTTP_ERR_DNS] = {"dns", 1101},
    [HTTP_ERR_REFUSED] = {"refused", 1212},
    [HTTP_ERR_RESET] = {"reset", 1220},
    [HTTP_ERR_CONNECT] = {"connect", 1200},
    [HTTP_ERR_TIMEOUT] = {"timeout", 1050},
    [HTTP_ERR_TLS] = {"tls", 1300},
    [HTTP_ERR_PROTOCOL] = {"protocol", 1000},
    [HTTP_ERR_ABORTED] = {"aborted", 0},
};

const char *http_error_name(enum http_error e)
{
    return (unsigned)e < HTTP_ERR__COUNT ? errors[e].name : "unknown";
}

int http_error_code(enum http_error e)
{
    return (unsigned)e < HTTP_ERR__COUNT ? errors[e].code : 1000;
}

enum http_error http_error_from_code(int code)
{
    for (int e = HTTP_ERR_NONE + 1; e < HTTP_ERR__COUNT; e++)
        if (code != 0 && errors[e].code == code)
            return (enum http_error)e;
    return HTTP_ERR_PROTOCOL;
}

long http_timeout_ms(int64_t usec)
{
    if (usec <= 1000)
        return 1;
    int64_t ms = usec / 1000 + (usec % 1000 != 0);
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

enum http_error http_error_from_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return HTTP_ERR_NONE;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HTTP_ERR_DNS;
    case CURLE_COULDNT_CONNECT:
        return HTTP_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_ERR_TIMEOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        return HTTP_ERR_RESET;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return HTTP_ERR_TLS;
    case CURLE_ABORTED_BY_CALLBACK:
        return HTTP_ERR_ABORTED;
    default:
        return HTTP_ERR_PROTOCOL;
    }
}

static int64_t info_usec(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;
    return curl_easy_getinfo(e, what, &v) == CURLE_OK && v > 0 ? (int64_t)v : 0;
}

static int64_t pos(int64_t v)
{
    return v > 0 ? v : 0;
}

void http_head_line(bool *complete, const char *line, size_t len)
{
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0)
        *complete = false;
    else if ((len == 2 && line[0] == '\r' && line[1] == '\n') || (len == 1 && line[0] == '\n'))
        *complete = true;
}

void http_result_from_curl(struct http_result *r, CURL *e, CURLcode rc, bool head_complete)
{
    long status = 0, oserr = 0;
    curl_off_t up = 0, down = 0, hdr = 0, reqsize = 0;

    memset(r, 0, sizeof(*r));
    r->error = http_error_from_curl(rc);
    if (r->error == HTTP_ERR_CONNECT || r->error == HTTP_ERR_RESET) {
        curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == ECONNREFUSED)
            r->error = HTTP_ERR_REFUSED;
        else if (r->error == HTTP_ERR_RESET && oserr != ECONNRESET && oserr != EPIPE)
            r->error = HTTP_ERR_PROTOCOL;
    }
    /* libcurl keeps the status of a head that never ended: that was no response */
    if (!head_complete && r->error == HTTP_ERR_NONE)
        r->error = HTTP_ERR_PROTOCOL;
    /* k6 tags a failed request status 0 without proto, whatever came before the failure */
    if (r->error == HTTP_ERR_NONE) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &r->proto);
    }
    r->status = (int)status;

    /* libcurl's timestamps all count from the start of the transfer. */
    int64_t dns = info_usec(e, CURLINFO_NAMELOOKUP_TIME_T);
    int64_t conn = info_usec(e, CURLINFO_CONNECT_TIME_T);
    int64_t tls = info_usec(e, CURLINFO_APPCONNECT_TIME_T);
    int64_t pre = info_usec(e, CURLINFO_PRETRANSFER_TIME_T);
    int64_t first = info_usec(e, CURLINFO_STARTTRANSFER_TIME_T);
    int64_t total = info_usec(e, CURLINFO_TOTAL_TIME_T);
    int64_t ready = tls > conn ? tls : conn;

    r->blocked = dns;
    r->connecting = conn ? pos(conn - dns) : 0;
    r->tls_handshaking = tls ? pos(tls - conn) : 0;
    r->sending = pos(pre - ready);
    r->waiting = first ? pos(first - pre) : 0;
    r->receiving = first ? pos(total - first) : 0;
    r->duration = r->sending + r->waiting + r->receiving;

    curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
    curl_easy_getinfo(e, CURLINFO_HEADER_SIZE, &hdr);
    r->bytes_sent = (uint64_t)(reqsize + up);
    r->bytes_received = (uint64_t)(hdr + down);
}

/* Decimal without printf: this runs once per request. */
static const char *utoa(unsigned v, char *buf, size_t n)
{
    char *p = buf + n - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v && p > buf);
    return p;
}

static bool is_expected(const struct http_result *r, int expect_status)
{
    return r->error == HTTP_ERR_NONE &&
           (expect_status > 0 ? r->status == expect_status : r->status >= 200 && r->status < 400);
}

const char *http_status_label(struct http_statuses *st, int status, bool expected, char *buf,
                              size_t n)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    if (status == 0)
        return "0";
    if (status < 100 || status > 599)
        return "invalid";
    bool exact = expected;
    for (size_t i = 0; i < HTTP_SHAPE_STATUSES && !exact; i++) {
        int seen = atomic_load_explicit(&st->code[i], memory_order_relaxed);
        if (seen == 0) {
            /* claim the free slot; another thread may take it first with its own status */
            int cur = 0;
            if (atomic_compare_exchange_strong(&st->code[i], &cur, status) || cur == status)
                exact = true;
        } else if (seen == status) {
            exact = true;
        }
    }
    if (!exact)
        return classes[status / 100 - 1];
    return utoa((unsigned)status, buf, n);
}

const char *http_proto_name(long v)
{
    switch (v) {
    case CURL_HTTP_VERSION_1_0:
        return "HTTP/1.0";
    case CURL_HTTP_VERSION_1_1:
        return "HTTP/1.1";
    case CURL_HTTP_VERSION_2_0:
        return "HTTP/2.0";
    case CURL_HTTP_VERSION_3:
        return "HTTP/3.0";
    default:
        return NULL;
    }
}

/* k6's error_code of a response by its status label: 1000 + status from 400 on. */
static int status_error_code(int status, const char *label)
{
    if (label[0] == '4' || label[0] == '5')
        return label[1] == 'x' ? (label[0] - '0') * 100 + 1000 : 1000 + status;
    return 0; /* 1xx-3xx, and "invalid", which has no one status to add */
}

/* Order of the series in a cache slot; the trends follow the four counters and rates. */
static const enum metric_id series_ids[HTTP_SERIES] = {
    M_HTTP_REQS,        M_HTTP_REQ_FAILED,  M_DATA_SENT,          M_DATA_RECEIVED,
    M_HTTP_REQ_DURATION, M_HTTP_REQ_BLOCKED, M_HTTP_REQ_CONNECTING, M_HTTP_REQ_TLS_HANDSHAKING,
    M_HTTP_REQ_SENDING, M_HTTP_REQ_WAITING, M_HTTP_REQ_RECEIVING,
};

/* Find (or create) the series a result with r's status and error kind feeds. */
static void lookup_series(struct metrics *m, const struct tagset *base, struct http_statuses *st,
                          const struct http_result *r, bool expected,
                          struct series *out[HTTP_SERIES])
{
    char stbuf[12], codebuf[12];
    struct tagset t = *base, data = {0};
    const char *label = http_status_label(st, r->status, expected, stbuf, sizeof(stbuf));
    const char *proto = http_proto_name(r->proto);
    int code = r->error != HTTP_ERR_NONE ? http_error_code(r->error)
                                         : status_error_code(r->status, label);

    tagset_set(&t, "status", label);
    tagset_set(&t, "expected_response", expected ? "true" : "false");
    if (proto)
        tagset_set(&t, "proto", proto);
    if (code)
        tagset_set(&t, "error_code", utoa((unsigned)code, codebuf, sizeof(codebuf)));
    /* k6 counts bytes per iteration and tags them as the iteration ends: the scenario (the
     * group then is the root's, empty, which no output keeps) */
    const char *scenario = tagset_get(base, "scenario");
    if (scenario)
        tagset_set(&data, "scenario", scenario);
    for (size_t i = 0; i < HTTP_SERIES; i++) {
        const struct tagset *tags = i == 2 || i == 3 ? &data : &t;
        /* No response: no duration (k6 records 0 s here, and lies). */
        out[i] = i < 4 || r->status ? metrics_series(m, series_ids[i], tags) : NULL;
    }
}

static void feed(struct series *const s[HTTP_SERIES], const struct http_result *r, bool expected)
{
    const int64_t parts[] = {r->duration, r->blocked, r->connecting, r->tls_handshaking,
                             r->sending, r->waiting, r->receiving};
    if (s[0])
        series_add(s[0], 1);
    if (s[1])
        series_rate(s[1], !expected);
    if (s[2])
        series_add(s[2], (double)r->bytes_sent);
    if (s[3])
        series_add(s[3], (double)r->bytes_received);
    for (size_t i = 4; i < HTTP_SERIES && r->status; i++)
        if (s[i])
            series_trend(s[i], parts[i - 4]);
}

void http_record_judged(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        struct http_statuses *st, const struct http_result *r, bool expected)
{
    unsigned i;
    for (i = 0; i < HTTP_CACHE_SLOTS; i++)
        if (c->slot[i].used && c->slot[i].status == r->status && c->slot[i].error == r->error &&
            c->slot[i].proto == r->proto)
            break;
    if (i == HTTP_CACHE_SLOTS) {
        /* A new kind of result: take a free slot, else the oldest one. */
        for (i = 0; i < HTTP_CACHE_SLOTS && c->slot[i].used; i++)
            ;
        if (i == HTTP_CACHE_SLOTS)
            i = c->next++ % HTTP_CACHE_SLOTS;
        c->slot[i].used = true;
        c->slot[i].status = r->status;
        c->slot[i].error = r->error;
        c->slot[i].proto = r->proto;
        lookup_series(m, base, st, r, expected, c->slot[i].s);
    }
    feed(c->slot[i].s, r, expected);
}

bool http_record(struct metrics *m, const struct tagset *base, struct http_statuses *st,
                 const struct http_result *r, int expect_status)
{
    struct http_cache c = {0};
    bool expected = is_expected(r, expect_status);
    http_record_judged(m, &c, base, st, r, expected);
    return expected;
}
