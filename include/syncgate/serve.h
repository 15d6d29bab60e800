/*
 * serve: `syncgate serve`, the test-runner service (a Deployment's main
 * process). Its parts, one file each:
 *   serve_opts.c  command line and environment -> struct serve_opts (pure)
 *   serve_http.c  the HTTP layer on libmicrohttpd: body caps, bearer token,
 *                 routes, 4xx answers, responses
 *   serve_api.c   the endpoints: JSON in, JSON (or a file) out
 *   serve_runs.c  starting, watching, cancelling and recording runs; one at
 *                 a time, each a child process (runner.h) that runs the same
 *                 command line a Job would
 *   serve.c       start-up, signals, shutdown (serve_main)
 * The shared state is struct serve below; the pure request parsing is in
 * api.h and the history in rundb.h.
 */
#ifndef SYNCGATE_SERVE_H
#define SYNCGATE_SERVE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "syncgate/api.h"
#include "syncgate/config.h"
#include "syncgate/rundb.h"
#include "syncgate/log.h"

#define SERVE_DEFAULT_LISTEN "0.0.0.0:3007"
#define SERVE_DEFAULT_DATA_DIR "/var/lib/syncgate"
#define SERVE_DEFAULT_PROFILES_DIR "/etc/syncgate/profiles"
#define SERVE_MAX_TOKEN 4096
/* Bytes kept of each of a run's output streams (stdout.log, stderr.log). */
#define SERVE_MAX_RUN_LOG (8 * 1024 * 1024)

/* ---- options (serve_opts.c) ---- */

struct serve_opts {
    char *listen;          /* "ADDR:PORT" */
    char *data_dir;        /* history.db and runs/<id>/ */
    char *profiles_dir;    /* <name>.yaml */
    char *default_profile; /* NULL: a request must name one */
    char *token_file;      /* required */
    int64_t retention_age; /* usec; 0: keep whatever the age */
    size_t retention_runs; /* 0: no count limit */
    int64_t stop_timeout;  /* usec a run gets after SIGTERM before SIGKILL */
    enum log_format log_format;
    bool quiet;
};

/*
 * Parse `syncgate serve [options]` (argv[0] is "serve") with envp for the
 * SYNCGATE_* variables; options win over the environment. Returns 0, 1 when
 * --help was asked (nothing else parsed), or -EINVAL with one line in err
 * (option, variable and value named), or -ENOMEM. o is always safe to clear.
 */
int serve_parse_args(int argc, char **argv, char *const *envp, struct serve_opts *o, char *err,
                     size_t n);
void serve_opts_clear(struct serve_opts *o);
/* The usage text of `syncgate serve`. */
extern const char serve_usage[];

/*
 * "HOST:PORT" (IPv4, [IPv6], or empty host for every interface; port
 * 0..65535) as a socket address. Numeric only: no DNS. Returns 0 or -EINVAL.
 */
int serve_parse_listen(const char *s, struct sockaddr_storage *ss, size_t *len);

/* ---- responses (serve_http.c) ---- */

struct serve_resp {
    int status;
    const char *type; /* Content-Type; NULL: application/json */
    char *body;       /* owned (malloc), freed by the HTTP layer */
    size_t len;
    int fd;           /* >= 0: send this file instead of body (the layer closes it) */
    uint64_t fd_size;
    bool report;      /* the HTML report: a Content-Security-Policy that allows nothing external */
    char location[64]; /* Location header when not empty */
};

/* resp = status with o as its JSON body (o is freed). 500 when o could not be printed. */
void serve_resp_json(struct serve_resp *resp, int status, cJSON *o);
/* resp = status with {"error": "<printf>"}. */
void serve_resp_error(struct serve_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct serve_req {
    const char *method, *path;
    struct api_route route;
    const char *body; /* NUL-terminated copy of the body */
    size_t len;
    void *conn; /* for serve_req_args */
};

/* Call cb for every query parameter (value NULL when it has no '='); stops at a nonzero return,
 * which it returns. */
int serve_req_args(const struct serve_req *req,
                   int (*cb)(void *ud, const char *key, const char *value), void *ud);

typedef void (*serve_handler)(void *ud, const struct serve_req *req, struct serve_resp *resp);

struct serve_http;

/*
 * Listen on addr and answer every request: 404/405 for unknown paths and
 * methods, 401 without the bearer token (except /healthz), 413 for bodies
 * over API_MAX_BODY, 415 for a body that says it is not JSON; the rest goes
 * to handler (from the server's threads, concurrently). Returns NULL and
 * *err (negative errno) on failure; *port gets the bound port.
 */
struct serve_http *serve_http_start(const struct sockaddr *addr, size_t addrlen,
                                    const char *token, size_t token_len, struct log *log,
                                    serve_handler handler, void *ud, int *port, int *err);
/* Stop listening and close every connection; NULL is a no-op. */
void serve_http_stop(struct serve_http *h);

/* ---- the service ---- */

struct serve_run; /* the active run (serve_runs.c) */

struct serve {
    struct serve_opts o;
    struct log *log;
    struct rundb *h;
    char *token;
    size_t token_len;
    char exe[PATH_MAX]; /* this binary, run again for every test */
    char runs_dir[PATH_MAX];
    char *const *envp; /* the server's environment, passed on to runs */

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;  /* signalled when the active run ends */
    struct serve_run *active;
    struct serve_run *last; /* finished, its thread not joined yet */
    bool stopping;          /* SIGTERM arrived: no new runs */
};

/* serve_api.c: the handler given to serve_http_start (ud is the struct serve). */
void serve_api_handle(void *ud, const struct serve_req *req, struct serve_resp *resp);

/* serve_runs.c */
/* POST /api/tests/run: 202 with the run, or 400/409/500/503. */
void serve_runs_start(struct serve *s, const struct api_run_request *req,
                      struct serve_resp *resp);
/* POST /api/tests/{id}/cancel: 202, 404 or 409. */
void serve_runs_cancel(struct serve *s, int64_t id, struct serve_resp *resp);
/* A run's history row into *out (0), or a 404/500 answer in resp (< 0). */
int serve_run_get(struct serve *s, int64_t id, cJSON **out, struct serve_resp *resp);
/* Add "progress" to run (a history row) when it is the active run. */
void serve_runs_add_progress(struct serve *s, cJSON *run);
/* The id of the active run, or 0. */
int64_t serve_runs_active_id(struct serve *s);
/* SIGTERM: refuse new runs, stop the active one (SIGTERM, then SIGKILL after
 * o.stop_timeout), record it as interrupted, join its thread. */
void serve_runs_stop(struct serve *s);
/* Apply retention and remove the files of deleted runs. */
void serve_runs_prune(struct serve *s);
/* "<runs_dir>/<id>/<name>" into buf. */
const char *serve_run_file(const struct serve *s, int64_t id, const char *name, char *buf,
                           size_t n);

/* serve.c: the whole service; argv[0] is "serve", self the program's own argv[0]. Returns
 * 0 after a clean stop, -EINVAL for bad options or setup (exit 104), other negative errno
 * for failures (exit 1). */
int serve_main(int argc, char **argv, const char *self);

#endif
