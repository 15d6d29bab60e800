/*
 * rwfixture: a remote-write receiver for tests. It decodes every push
 * (snappy block + WriteRequest) and writes one JSON line per request to the
 * log file, then answers as the script says for that request's index.
 *
 *   rwfixture --log FILE [--port N] [--port-file FILE] [--script SPEC] [--default STATUS]
 *
 * SPEC is a comma list of INDEX=ACTION, indexes counting every request from 0:
 *   500, 503, 400 ...     answer that status (4xx/5xx bodies say "fixture: <status>")
 *   400:TEXT              answer 400 (or any status) with TEXT as the body
 *   429:VALUE             answer 429 with Retry-After: VALUE (seconds, an HTTP date, anything)
 *   429                   answer 429 without Retry-After
 *   echo:STATUS           answer STATUS with a body quoting the request's header lines as
 *                         received (Authorization included), as careless servers do
 *   delay:MS              wait MS milliseconds, then answer 204
 *   close                 close the connection without answering
 * TEXT and VALUE are percent-decoded (%2C is a comma, %0A a line feed, %1B an ESC, %FF a
 * byte that is not UTF-8), so any bytes but NUL can be sent.
 * Unlisted requests get 204, or what --default ACTION says (an ACTION as above). The log line has: index, t_ms
 * (monotonic, ms since start, when the request was complete), done_ms (when answered), method,
 * path, headers ([name, value] pairs as received), body_len, body_sha (FNV-1a 64 of the raw body,
 * hex), framed, error, status, series. Sample values are written as {"v": "%.17g" or "NaN", "bits":
 * hex, "ts": ms}. SIGTERM/SIGINT end it cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <snappy-c.h>

#include "remote.pb-c.h"

#define MAX_CONNS 16
#define MAX_HEAD (64 * 1024)
#define MAX_BODY (64 * 1024 * 1024)
#define MAX_SCRIPT 256

struct action {
    int index;
    int status; /* 0: none */
    char retry_after[256]; /* "": no header */
    int delay_ms;
    bool close, echo;
    char body[4096];
};

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
};

static volatile sig_atomic_t quit;
static struct action script[MAX_SCRIPT];
static size_t nscript;
static FILE *log_out;
static int64_t t0;
static struct action default_action = {.status = 204};

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - t0) / 1e6;
}

/* src percent-decoded into dst (n bytes); false when it does not fit or holds %00. */
static bool pct_decode(const char *src, char *dst, size_t n)
{
    size_t k = 0;
    for (const char *p = src; *p; p++) {
        unsigned v;
        char c = *p;
        if (c == '%' && sscanf(p + 1, "%2x", &v) == 1 && p[1] && p[2]) {
            if (v == 0)
                return false;
            c = (char)v;
            p += 2;
        }
        if (k + 1 >= n)
            return false;
        dst[k++] = c;
    }
    dst[k] = '\0';
    return true;
}

/* One ACTION (see the top of this file) into a; 0 or -1. */
static int parse_action(char *what, struct action *a)
{
    if (strncmp(what, "delay:", 6) == 0) {
        a->delay_ms = atoi(what + 6);
        return 0;
    }
    if (strcmp(what, "close") == 0) {
        a->close = true;
        return 0;
    }
    if (strncmp(what, "echo:", 5) == 0) {
        a->echo = true;
        what += 5;
    }
    a->status = atoi(what);
    char *colon = strchr(what, ':');
    if (colon && a->status == 429 && !pct_decode(colon + 1, a->retry_after, sizeof(a->retry_after)))
        return -1;
    if (colon && a->status != 429 && !pct_decode(colon + 1, a->body, sizeof(a->body)))
        return -1;
    return a->status < 100 || a->status > 599 ? -1 : 0;
}

static int parse_script(const char *spec)
{
    char *dup = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(dup, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        if (nscript == MAX_SCRIPT) {
            rc = -1;
            break;
        }
        struct action *a = &script[nscript++];
        memset(a, 0, sizeof(*a));
        char *eq = strchr(item, '=');
        if (!eq) {
            rc = -1;
            break;
        }
        *eq = '\0';
        a->index = atoi(item);
        rc = parse_action(eq + 1, a);
    }
    free(dup);
    return rc;
}

static const struct action *action_for(int index)
{
    for (size_t i = 0; i < nscript; i++)
        if (script[i].index == index)
            return &script[i];
    return NULL;
}

static void fmt_double(double v, char *buf, size_t n)
{
    if (isnan(v))
        snprintf(buf, n, "NaN");
    else
        snprintf(buf, n, "%.17g", v);
}

static cJSON *decode_series(const Prometheus__TimeSeries *ts)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *labels = cJSON_AddArrayToObject(o, "labels");
    for (size_t i = 0; i < ts->n_labels; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(ts->labels[i]->name));
        cJSON_AddItemToArray(pair, cJSON_CreateString(ts->labels[i]->value));
        cJSON_AddItemToArray(labels, pair);
    }
    cJSON *samples = cJSON_AddArrayToObject(o, "samples");
    for (size_t i = 0; i < ts->n_samples; i++) {
        char v[64], b[32];
        uint64_t bits;
        memcpy(&bits, &ts->samples[i]->value, sizeof(bits));
        fmt_double(ts->samples[i]->value, v, sizeof(v));
        snprintf(b, sizeof(b), "%016" PRIx64, bits);
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "v", v);
        cJSON_AddStringToObject(s, "bits", b);
        cJSON_AddNumberToObject(s, "ts", (double)ts->samples[i]->timestamp);
        cJSON_AddItemToArray(samples, s);
    }
    cJSON *hs = cJSON_AddArrayToObject(o, "histograms");
    for (size_t i = 0; i < ts->n_histograms; i++) {
        const Prometheus__Histogram *h = ts->histograms[i];
        cJSON *j = cJSON_CreateObject();
        if (h->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT)
            cJSON_AddNumberToObject(j, "count", (double)h->count_int);
        if (h->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT)
            cJSON_AddNumberToObject(j, "zero_count", (double)h->zero_count_int);
        char v[64];
        fmt_double(h->sum, v, sizeof(v));
        cJSON_AddStringToObject(j, "sum", v);
        cJSON_AddNumberToObject(j, "schema", h->schema);
        cJSON_AddNumberToObject(j, "zero_threshold", h->zero_threshold);
        cJSON_AddNumberToObject(j, "ts", (double)h->timestamp);
        cJSON *spans = cJSON_AddArrayToObject(j, "spans");
        for (size_t k = 0; k < h->n_positive_spans; k++) {
            cJSON *sp = cJSON_CreateArray();
            cJSON_AddItemToArray(sp, cJSON_CreateNumber(h->positive_spans[k]->offset));
            cJSON_AddItemToArray(sp, cJSON_CreateNumber(h->positive_spans[k]->length));
            cJSON_AddItemToArray(spans, sp);
        }
        cJSON *d = cJSON_AddArrayToObject(j, "deltas");
        for (size_t k = 0; k < h->n_positive_deltas; k++)
            cJSON_AddItemToArray(d, cJSON_CreateNumber((double)h->positive_deltas[k]));
        cJSON_AddNumberToObject(j, "negative_spans", (double)h->n_negative_spans);
        cJSON_AddItemToArray(hs, j);
    }
    return o;
}

/* Decode body into rec's "framed", "error" and "series". */
static void decode_body(const char *body, size_t len, cJSON *rec)
{
    bool framed = len >= 4 && memcmp(body, "\xff\x06\x00\x00", 4) == 0;
    cJSON_AddBoolToObject(rec, "framed", framed);
    size_t n = 0;
    if (snappy_validate_compressed_buffer(body, len) != SNAPPY_OK ||
        snappy_uncompressed_length(body, len, &n) != SNAPPY_OK || n > MAX_BODY) {
        cJSON_AddStringToObject(rec, "error", "not a snappy block");
        return;
    }
    char *raw = malloc(n ? n : 1);
    if (!raw || snappy_uncompress(body, len, raw, &n) != SNAPPY_OK) {
        free(raw);
        cJSON_AddStringToObject(rec, "error", "snappy uncompress failed");
        return;
    }
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, (uint8_t *)raw);
    free(raw);
    if (!wr) {
        cJSON_AddStringToObject(rec, "error", "protobuf unpack failed");
        return;
    }
    cJSON_AddNullToObject(rec, "error");
    cJSON *series = cJSON_AddArrayToObject(rec, "series");
    for (size_t i = 0; i < wr->n_timeseries; i++)
        cJSON_AddItemToArray(series, decode_series(wr->timeseries[i]));
    prometheus__write_request__free_unpacked(wr, NULL);
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Handle one complete request at c->buf (head of hlen bytes, body after). Returns false to close.
 */
static bool handle(struct conn *c, size_t hlen, size_t blen, int index)
{
    static char head[MAX_HEAD + 1]; /* the request's head as received (parsing cuts c->buf) */
    snprintf(head, sizeof(head), "%.*s", (int)(hlen - 4), c->buf);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "index", index);
    cJSON_AddNumberToObject(rec, "t_ms", now_ms());
    char *line_end = strstr(c->buf, "\r\n");
    char method[16] = "", path[1024] = "";
    sscanf(c->buf, "%15s %1023s", method, path);
    cJSON_AddStringToObject(rec, "method", method);
    cJSON_AddStringToObject(rec, "path", path);
    cJSON *headers = cJSON_AddArrayToObject(rec, "headers");
    bool keep = true;
    for (char *h = line_end + 2; h < c->buf + hlen - 2;) {
        char *e = strstr(h, "\r\n");
        if (!e || e == h)
            break;
        *e = '\0';
        char *colon = strchr(h, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(h));
            cJSON_AddItemToArray(pair, cJSON_CreateString(v));
            cJSON_AddItemToArray(headers, pair);
            if (strcasecmp(h, "connection") == 0 && strcasecmp(v, "close") == 0)
                keep = false;
        }
        h = e + 2;
    }
    const char *body = c->buf + hlen;
    uint64_t sha = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < blen; i++)
        sha = (sha ^ (unsigned char)body[i]) * UINT64_C(1099511628211);
    char shabuf[32];
    snprintf(shabuf, sizeof(shabuf), "%016" PRIx64, sha);
    cJSON_AddNumberToObject(rec, "body_len", (double)blen);
    cJSON_AddStringToObject(rec, "body_sha", shabuf);
    decode_body(body, blen, rec);

    const struct action *a = action_for(index);
    if (!a)
        a = &default_action;
    int status = a->status ? a->status : 204;
    static char text[MAX_HEAD + 4096], resp[MAX_HEAD + 8192];
    if (a->delay_ms) {
        struct timespec d = {a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000};
        while (nanosleep(&d, &d) < 0 && errno == EINTR && !quit)
            ;
    }
    snprintf(text, sizeof(text), "%s", a->body);
    if (a->echo)
        snprintf(text, sizeof(text), "unauthorized; you sent:\n%s\n", head);
    if (!text[0] && status >= 400)
        snprintf(text, sizeof(text), "fixture: %d\n", status);
    if (a->close) {
        cJSON_AddStringToObject(rec, "answer", "close");
        keep = false;
    } else {
        /* one write: a response split in two waits for a delayed ACK (~40 ms), which
         * would hide a client that retries too fast */
        size_t blen_out = status == 204 ? 0 : strlen(text);
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d %s\r\n%s%s%sContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\n%s\r\n%.*s",
                         status, reason(status), a->retry_after[0] ? "Retry-After: " : "",
                         a->retry_after, a->retry_after[0] ? "\r\n" : "", blen_out,
                         keep ? "" : "Connection: close\r\n", (int)blen_out, text);
        send_all(c->fd, resp, (size_t)n < sizeof(resp) ? (size_t)n : sizeof(resp) - 1);
    }
    cJSON_AddNumberToObject(rec, "status", a->close ? 0 : status);
    cJSON_AddNumberToObject(rec, "done_ms", now_ms());
    char *out = cJSON_PrintUnformatted(rec);
    fprintf(log_out, "%s\n", out);
    fflush(log_out);
    free(out);
    cJSON_Delete(rec);
    return keep;
}

/* Serve every complete request buffered on c. Returns false when c must be closed. */
static bool serve(struct conn *c, int *index)
{
    for (;;) {
        char *end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return c->len < MAX_HEAD;
        size_t hlen = (size_t)(end - c->buf) + 4;
        long long clen = -1;
        for (char *p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                clen = atoll(p + 15);
        }
        if (clen < 0 || clen > MAX_BODY) {
            const char *r = clen < 0 ? "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n"
                                     : "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            send_all(c->fd, r, strlen(r));
            return false;
        }
        if (c->len < hlen + (size_t)clen)
            return true;
        c->buf[hlen - 1] = '\0'; /* headers become a string; the body follows */
        bool keep = handle(c, hlen, (size_t)clen, (*index)++);
        size_t used = hlen + (size_t)clen;
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (!keep)
            return false;
    }
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int main(int argc, char **argv)
{
    const char *log_path = NULL, *port_file = NULL;
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
            log_path = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--default") == 0 && i + 1 < argc) {
            if (parse_action(argv[++i], &default_action) < 0) {
                fprintf(stderr, "rwfixture: bad default action %s\n", argv[i]);
                return 2;
            }
        }
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "--script") == 0 && i + 1 < argc) {
            if (parse_script(argv[++i]) < 0) {
                fprintf(stderr, "rwfixture: bad script %s\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: rwfixture --log FILE [--port N] [--port-file F] "
                            "[--script SPEC]\n");
            return 2;
        }
    }
    if (!log_path || !(log_out = fopen(log_path, "a"))) {
        fprintf(stderr, "rwfixture: cannot open log\n");
        return 2;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0) {
        perror("rwfixture: bind");
        return 1;
    }
    socklen_t alen = sizeof(addr);
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f) {
            perror("rwfixture: port file");
            return 1;
        }
        fprintf(f, "%d\n", ntohs(addr.sin_port));
        fclose(f);
        rename(tmp, port_file);
    }

    struct conn conns[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++)
        conns[i] = (struct conn){.fd = -1};
    int index = 0;
    while (!quit) {
        struct pollfd pfd[MAX_CONNS + 1];
        int map[MAX_CONNS + 1], n = 0;
        pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
                map[n++] = i;
            }
        }
        if (poll(pfd, (nfds_t)n, 200) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (map[k] < 0) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0 && fd >= 0; i++)
                    if (conns[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    if (fd >= 0)
                        close(fd);
                    continue;
                }
                conns[slot].fd = fd;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                continue;
            }
            struct conn *c = &conns[map[k]];
            if (c->cap - c->len < 65536) {
                size_t cap = c->cap ? c->cap * 2 : 131072;
                char *nb = cap <= (size_t)MAX_BODY + MAX_HEAD + 65536 ? realloc(c->buf, cap) : NULL;
                if (!nb) {
                    conn_close(c);
                    continue;
                }
                c->buf = nb;
                c->cap = cap;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
            if (r <= 0) {
                conn_close(c);
                continue;
            }
            c->len += (size_t)r;
            if (!serve(c, &index))
                conn_close(c);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0)
            conn_close(&conns[i]);
    close(lfd);
    fclose(log_out);
    return 0;
}
