/*
 * api: the pure parts of `syncgate serve`'s HTTP API: which endpoint a
 * method and path name, the body of POST /api/tests/run, the query string of
 * GET /api/tests, and the bearer token check. No I/O: the HTTP layer
 * (serve_http) hands these functions what it read, and they say what it
 * means or why it is refused, in one line fit for {"error": "..."}.
 *
 * The body of POST /api/tests/run is a JSON object with these fields only:
 *   testType   "smoke", "load" or "run" (required; the command the run executes)
 *   profile    a profile name, [a-z0-9_-]{1,64} (the file <profiles dir>/<name>.yaml);
 *              absent: the server's default profile
 *   overrides  an object of whitelisted profile keys (api_override_keys) and
 *              values, passed to the run as --set KEY=VALUE
 * Only durations, counts and stages can be overridden: never a URL, a path,
 * a header, a secret or a threshold.
 */
#ifndef SYNCGATE_API_H
#define SYNCGATE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/rundb.h"

#define API_MAX_BODY (64 * 1024)
#define API_MAX_PROFILE_NAME 64
#define API_MAX_OVERRIDES 16

enum api_endpoint {
    API_HEALTHZ, /* GET /healthz (no token) */
    API_METRICS, /* GET /metrics */
    API_RUN,     /* POST /api/tests/run */
    API_LIST,    /* GET /api/tests */
    API_GET,     /* GET /api/tests/{id} */
    API_REPORT,  /* GET /api/tests/{id}/report.html */
    API_SUMMARY, /* GET /api/tests/{id}/summary.json */
    API_LOG,     /* GET /api/tests/{id}/log */
    API_CANCEL,  /* POST /api/tests/{id}/cancel */
};

struct api_route {
    enum api_endpoint ep;
    int64_t id;        /* for the /api/tests/{id}... endpoints: 1..2^53 */
    const char *allow; /* the methods the path takes ("GET, HEAD"), for 405 */
};

/*
 * Match method and path (no query string). Returns 0 with r filled,
 * -ENOENT when no endpoint has that path (404), or -EPERM when the path is
 * known but not with this method (405; r->allow says which methods are).
 * HEAD is accepted wherever GET is.
 */
int api_route(const char *method, const char *path, struct api_route *r);

/* A parsed POST /api/tests/run body. */
struct api_run_request {
    char test_type[8];                       /* smoke, load or run */
    char profile[API_MAX_PROFILE_NAME + 1];  /* "" when not given */
    size_t nsets;
    char *sets[API_MAX_OVERRIDES]; /* "KEY=VALUE" for --set, owned */
    char *overrides; /* the accepted overrides as one JSON object text, owned */
};

/*
 * Parse body (len bytes, not necessarily NUL-terminated). Returns 0, or
 * -EINVAL with the reason in err (malformed JSON, not an object, a missing or
 * unknown field, a field given twice, a wrong type, a bad profile name, an
 * override that is not whitelisted or has the wrong shape), or -ENOMEM. Values
 * are only checked for shape here; the profile's own validation judges them.
 * On failure r holds nothing to free.
 */
int api_parse_run(const char *body, size_t len, struct api_run_request *r, char *err, size_t n);
void api_run_request_clear(struct api_run_request *r);

/* The overridable keys, NULL-terminated, for messages and documentation. */
extern const char *const api_override_keys[];

/* True when name is a valid profile name: [a-z0-9_-]{1,64}. */
bool api_profile_name_ok(const char *name);

/*
 * One query parameter of GET /api/tests into f: limit (1..500), environment,
 * result, testType, profile, state, since (RFC 3339 time, a date, or seconds
 * since the epoch) and before (an id, for paging). *seen tracks which were
 * given, so a repeated one is refused. String values are borrowed: they must
 * outlive f. Returns 0, or -EINVAL with the reason in err.
 */
int api_parse_list_arg(struct rundb_filter *f, unsigned *seen, const char *key,
                       const char *value, char *err, size_t n);

/*
 * A time as ms since the epoch: "2026-01-31T12:00:00Z" (RFC 3339, optional
 * fraction, Z or +hh:mm / -hh:mm), "2026-01-31" (midnight UTC) or whole
 * seconds since the epoch. Returns 0 or -EINVAL.
 */
int api_parse_time(const char *s, int64_t *ms);

/*
 * The token of an Authorization header value "Bearer <token>" (scheme in any
 * case, one or more spaces), with its length in *len; NULL when the value is
 * missing or of another scheme.
 */
const char *api_bearer(const char *header, size_t *len);

/* Compare two tokens in time that depends only on the expected one's length. */
bool api_token_equal(const char *expected, size_t elen, const char *given, size_t glen);

#endif
