/* serve_http: the HTTP layer of `syncgate serve` on libmicrohttpd. */
#include "syncgate/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

/* Worker threads answering requests (each with its own epoll set). */
#define HTTP_THREADS 4
#define HTTP_MAX_CONNECTIONS 1000
/* An idle or trickling client is dropped after this many seconds. */
#define HTTP_CONNECTION_TIMEOUT 30

struct serve_http {
    struct MHD_Daemon *d;
    const char *token;
    size_t token_len;
    struct log *log;
    serve_handler handler;
    void *ud;
};

/* Per request, from its first call to its completion. */
struct reqstate {
    struct api_route route;
    int route_rc;
    bool refused;  /* a response was queued before the body was read */
    bool too_big;
    char *body;
    size_t len;
};

void serve_resp_json(struct serve_resp *resp, int status, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    free(resp->body);
    resp->type = "application/json";
    if (!text) {
        resp->status = 500;
        resp->body = strdup("{\"error\":\"out of memory\"}");
    } else {
        resp->status = status;
        resp->body = text;
    }
    resp->len = resp->body ? strlen(resp->body) : 0;
}

void serve_resp_error(struct serve_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    if (o)
        cJSON_AddStringToObject(o, "error", msg);
    serve_resp_json(resp, status, o);
}

struct args_ctx {
    int (*cb)(void *ud, const char *key, const char *value);
    void *ud;
    int rc;
};

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct args_ctx *a = cls;
    (void)kind;
    a->rc = a->cb(a->ud, key, value);
    return a->rc ? MHD_NO : MHD_YES;
}

int serve_req_args(const struct serve_req *req,
                   int (*cb)(void *ud, const char *key, const char *value), void *ud)
{
    struct args_ctx a = {cb, ud, 0};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &a);
    return a.rc;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, n, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, const char *method,
                                 struct serve_resp *r)
{
    struct MHD_Response *mr;
    if (r->fd >= 0) {
        mr = MHD_create_response_from_fd64(r->fd_size, r->fd); /* takes the descriptor */
        r->fd = -1;
    } else {
        mr = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                             MHD_RESPMEM_MUST_COPY);
    }
    free(r->body);
    r->body = NULL;
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->type ? r->type : "application/json");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    if (r->report)
        MHD_add_response_header(mr, "Content-Security-Policy",
                                "default-src 'none'; style-src 'unsafe-inline'; "
                                "img-src data:; base-uri 'none'; form-action 'none'; "
                                "frame-ancestors 'none'");
    if (r->location[0])
        MHD_add_response_header(mr, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->status == 401)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"syncgate\"");
    (void)method; /* HEAD: libmicrohttpd sends the headers only */
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return rc;
}

static enum MHD_Result refuse(struct MHD_Connection *c, const char *method, int status,
                              const char *allow, const char *fmt, const char *arg)
{
    struct serve_resp r = {.fd = -1};
    serve_resp_error(&r, status, fmt, arg);
    if (!allow)
        return send_resp(c, method, &r);
    /* 405 names the methods the path takes */
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(r.len, r.body, MHD_RESPMEM_MUST_COPY);
    free(r.body);
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, mr);
    MHD_destroy_response(mr);
    return rc;
}

static bool authorized(struct serve_http *h, struct MHD_Connection *c)
{
    size_t len = 0;
    const char *given =
        api_bearer(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                   &len);
    /* compared even when missing, so that the time taken says nothing */
    bool okay = api_token_equal(h->token, h->token_len, given ? given : "", given ? len : 0);
    return given && okay;
}

/* The checks made before any of the body is read. 0: go on; else a response was queued. */
static int first_call(struct serve_http *h, struct MHD_Connection *c, const char *url,
                      const char *method, struct reqstate *rs, enum MHD_Result *ret)
{
    char who[64];
    rs->route_rc = api_route(method, url, &rs->route);
    if (rs->route_rc == -ENOENT) {
        *ret = refuse(c, method, 404, NULL, "no such endpoint: %s", url);
        return 1;
    }
    if (rs->route.ep != API_HEALTHZ && !authorized(h, c)) {
        client_address(c, who, sizeof(who));
        cJSON *ev = log_begin(h->log, "unauthorized");
        cJSON_AddStringToObject(ev, "method", method);
        cJSON_AddStringToObject(ev, "path", url);
        cJSON_AddStringToObject(ev, "client", who);
        log_emit(h->log, LOG_WARN, ev);
        *ret = refuse(c, method, 401, NULL, "%s",
                      "missing or wrong bearer token: send Authorization: Bearer <token>");
        return 1;
    }
    if (rs->route_rc == -EPERM) {
        *ret = refuse(c, method, 405, rs->route.allow, "%s not allowed here", method);
        return 1;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
        *ret = refuse(c, method, 413, NULL, "request body over %s bytes", "65536");
        return 1;
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    /* "application/json", perhaps with parameters ("; charset=utf-8") */
    if (ct && rs->route.ep == API_RUN &&
        (strncasecmp(ct, "application/json", 16) != 0 || !strchr(" \t;", ct[16]))) {
        *ret = refuse(c, method, 415, NULL, "%s", "the body must be JSON (Content-Type: application/json)");
        return 1;
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    struct serve_http *h = cls;
    struct reqstate *rs = *con_cls;
    enum MHD_Result ret;
    (void)version;

    if (!rs) {
        if (!(rs = calloc(1, sizeof(*rs))))
            return MHD_NO;
        *con_cls = rs;
        if (first_call(h, c, url, method, rs, &ret)) {
            rs->refused = true;
            return ret;
        }
        return MHD_YES;
    }
    if (rs->refused) {
        *upload_size = 0; /* a response is queued: drop whatever else comes */
        return MHD_YES;
    }
    if (*upload_size) {
        /* chunked bodies carry no Content-Length: the cap is enforced here too */
        if (!rs->too_big && rs->len + *upload_size <= API_MAX_BODY) {
            char *b = realloc(rs->body, rs->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + rs->len, upload, *upload_size);
            rs->len += *upload_size;
            b[rs->len] = '\0';
            rs->body = b;
        } else {
            rs->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rs->too_big)
        return refuse(c, method, 413, NULL, "request body over %s bytes", "65536");

    struct serve_req req = {method, url, rs->route, rs->body ? rs->body : "", rs->len, c};
    struct serve_resp resp = {.status = 500, .fd = -1};
    h->handler(h->ud, &req, &resp);
    ret = send_resp(c, method, &resp);
    if (resp.fd >= 0)
        close(resp.fd);
    free(resp.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct reqstate *rs = *con_cls;
    (void)cls, (void)c, (void)toe;
    if (rs) {
        free(rs->body);
        free(rs);
    }
    *con_cls = NULL;
}

/* libmicrohttpd's own complaints (a broken client, a failed accept) as log lines. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    log_vmsg(cls, LOG_DEBUG, "http_server", fmt, ap);
}

struct serve_http *serve_http_start(const struct sockaddr *addr, size_t addrlen,
                                    const char *token, size_t token_len, struct log *log,
                                    serve_handler handler, void *ud, int *port, int *err)
{
    struct serve_http *h = calloc(1, sizeof(*h));
    (void)addrlen;
    if (!h) {
        *err = -ENOMEM;
        return NULL;
    }
    h->token = token;
    h->token_len = token_len;
    h->log = log;
    h->handler = handler;
    h->ud = ud;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            /* first, so that it takes every message */
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, log,
                            MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONNECTION_TIMEOUT,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
                            MHD_OPTION_END);
    if (!h->d) {
        *err = errno ? -errno : -EADDRINUSE;
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : 0;
    return h;
}

void serve_http_stop(struct serve_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
