/* http: k6's view of one finished request, from libcurl's infos. */
#include "syncgate/http.h"

#include <errno.h>
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

void http_result_from_curl(struct http_result *r, CURL *e, CURLcode rc)
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
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
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

/* Order of the series in a cache slot; the trends follow the four counters and rates. */
static const enum metric_id series_ids[HTTP_SERIES] = {
    M_HTTP_REQS,        M_HTTP_REQ_FAILED,  M_DATA_SENT,          M_DATA_RECEIVED,
    M_HTTP_REQ_DURATION, M_HTTP_REQ_BLOCKED, M_HTTP_REQ_CONNECTING, M_HTTP_REQ_TLS_HANDSHAKING,
    M_HTTP_REQ_SENDING, M_HTTP_REQ_WAITING, M_HTTP_REQ_RECEIVING,
};

/* Find (or create) the series a result with r's status and error kind feeds. */
static void lookup_series(struct metrics *m, const struct tagset *base,
                          const struct http_result *r, bool expected,
                          struct series *out[HTTP_SERIES])
{
    char stbuf[12], codebuf[12];
    struct tagset t = *base;

    tagset_set(&t, "status", utoa((unsigned)r->status, stbuf, sizeof(stbuf)));
    tagset_set(&t, "expected_response", expected ? "true" : "false");
    if (r->error != HTTP_ERR_NONE)
        tagset_set(&t, "error_code",
                   utoa((unsigned)http_error_code(r->error), codebuf, sizeof(codebuf)));
    for (size_t i = 0; i < HTTP_SERIES; i++)
        /* No response: no duration (k6 records 0 s here, and lies). */
        out[i] = i < 4 || r->status ? metrics_series(m, series_ids[i], &t) : NULL;
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

bool http_record(struct metrics *m, const struct tagset *base, const struct http_result *r,
                 int expect_status)
{
    struct series *s[HTTP_SERIES];
    bool expected = is_expected(r, expect_status);
    lookup_series(m, base, r, expected, s);
    feed(s, r, expected);
    return expected;
}

bool http_record_cached(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        const struct http_result *r, int expect_status)
{
    bool expected = is_expected(r, expect_status);
    http_record_judged(m, c, base, r, expected);
    return expected;
}

void http_record_judged(struct metrics *m, struct http_cache *c, const struct tagset *base,
                        const struct http_result *r, bool expected)
{
    unsigned i;
    for (i = 0; i < HTTP_CACHE_SLOTS; i++)
        if (c->slot[i].used && c->slot[i].status == r->status && c->slot[i].error == r->error)
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
        lookup_series(m, base, r, expected, c->slot[i].s);
    }
    feed(c->slot[i].s, r, expected);
}
