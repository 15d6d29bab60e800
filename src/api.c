/* api: routes, run requests, list queries and tokens of the serve API (pure). */
#include "syncgate/api.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "syncgate/config.h"
#include "utf8.h"

/* ---- routes ---- */

static bool parse_id(const char *s, size_t len, int64_t *id)
{
    int64_t v = 0;
    if (len == 0 || len > 16 || s[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return v > 0 && v <= (INT64_C(1) << 53);
}

int api_route(const char *method, const char *path, struct api_route *r)
{
    static const char prefix[] = "/api/tests/";
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");

    memset(r, 0, sizeof(*r));
    r->allow = "GET, HEAD";
    if (!strcmp(path, "/healthz"))
        r->ep = API_HEALTHZ;
    else if (!strcmp(path, "/metrics"))
        r->ep = API_METRICS;
    else if (!strcmp(path, "/api/tests"))
        r->ep = API_LIST;
    else if (!strcmp(path, "/api/tests/run")) {
        r->ep = API_RUN;
        r->allow = "POST";
        return post ? 0 : -EPERM;
    } else if (!strncmp(path, prefix, sizeof(prefix) - 1)) {
        const char *id = path + sizeof(prefix) - 1, *slash = strchr(id, '/');
        size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
        if (!parse_id(id, idlen, &r->id))
            return -ENOENT;
        if (!slash)
            r->ep = API_GET;
        else if (!strcmp(slash, "/report.html"))
            r->ep = API_REPORT;
        else if (!strcmp(slash, "/summary.json"))
            r->ep = API_SUMMARY;
        else if (!strcmp(slash, "/log"))
            r->ep = API_LOG;
        else if (!strcmp(slash, "/cancel")) {
            r->ep = API_CANCEL;
            r->allow = "POST";
            return post ? 0 : -EPERM;
        } else
            return -ENOENT;
    } else
        return -ENOENT;
    return get ? 0 : -EPERM;
}

/* ---- POST /api/tests/run ---- */

enum ov_kind { OV_DURATION, OV_COUNT, OV_STAGES };

static const struct {
    const char *key;
    enum ov_kind kind;
} overrides[] = {
    {"smoke.duration", OV_DURATION},
    {"smoke.iterations", OV_COUNT},
    {"smoke.think_time", OV_DURATION},
    {"smoke.retries", OV_COUNT},
    {"smoke.request_timeout", OV_DURATION},
    {"load.stages", OV_STAGES},
    {"load.think_time", OV_DURATION},
    {"load.graceful_ramp_down", OV_DURATION},
    {"load.request_timeout", OV_DURATION},
    {"load.threads", OV_COUNT},
    {"gateway.ready.timeout", OV_DURATION},
};

#define NOVERRIDES (sizeof(overrides) / sizeof(overrides[0]))

const char *const api_override_keys[] = {
    "smoke.duration",     "smoke.iterations",       "smoke.think_time",
    "smoke.retries",      "smoke.request_timeout",  "load.stages",
    "load.think_time",    "load.graceful_ramp_down", "load.request_timeout",
    "load.threads",       "gateway.ready.timeout",  NULL,
};

_Static_assert(sizeof(api_override_keys) / sizeof(api_override_keys[0]) == NOVERRIDES + 1,
               "api_override_keys lists every override");

bool api_profile_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > API_MAX_PROFILE_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
              name[i] == '_' || name[i] == '-'))
            return false;
    return true;
}

/* A JSON key for a message: escaped, quoted, cut when long. */
static const char *shown(const char *s, char *buf, size_t n)
{
    return utf8_escape(s, strlen(s), true, buf, n);
}

/* Whether an object names a key twice (cJSON keeps both; the API takes neither). */
static const char *duplicate_key(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                return a->string;
    return NULL;
}

static bool is_count(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
           v->valuedouble <= 1e9 && v->valuedouble == floor(v->valuedouble);
}

static bool is_duration(const cJSON *v)
{
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= 32;
}

static int check_stages(const cJSON *v, char *err, size_t n)
{
    char b[128];
    int i = 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0 ||
        cJSON_GetArraySize(v) > CONFIG_MAX_STAGES) {
        snprintf(err, n, "overrides: \"load.stages\" must be a list of 1 to %d "
                         "{\"duration\": \"30s\", \"target\": 10} objects", CONFIG_MAX_STAGES);
        return -EINVAL;
    }
    for (const cJSON *s = v->child; s; s = s->next, i++) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "duration");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "target");
        if (!cJSON_IsObject(s) || cJSON_GetArraySize(s) != 2 || duplicate_key(s) ||
            !is_duration(d) || !is_count(t)) {
            snprintf(err, n, "overrides: \"load.stages\"[%d] must be {\"duration\": "
                             "\"30s\", \"target\": 10}%s%s", i,
                     cJSON_IsObject(s) && s->child ? ", got a field " : "",
                     cJSON_IsObject(s) && s->child ? shown(s->child->string, b, sizeof(b)) : "");
            return -EINVAL;
        }
    }
    return 0;
}

static int parse_overrides(const cJSON *ov, struct api_run_request *r, char *err, size_t n)
{
    char b[128];
    const char *dup;
    if (!cJSON_IsObject(ov)) {
        snprintf(err, n, "overrides: expected an object of profile keys and values");
        return -EINVAL;
    }
    if ((dup = duplicate_key(ov))) {
        snprintf(err, n, "overrides: %s given twice", shown(dup, b, sizeof(b)));
        return -EINVAL;
    }
    for (const cJSON *v = ov->child; v; v = v->next) {
        size_t k = 0;
        while (k < NOVERRIDES && strcmp(overrides[k].key, v->string))
            k++;
        if (k == NOVERRIDES) {
            snprintf(err, n,
                     "overrides: %s cannot be overridden; these can: smoke.duration, "
                     "smoke.iterations, smoke.think_time, smoke.retries, smoke.request_timeout, "
                     "load.stages, load.think_time, load.graceful_ramp_down, "
                     "load.request_timeout, load.threads, gateway.ready.timeout",
                     shown(v->string, b, sizeof(b)));
            return -EINVAL;
        }
        switch (overrides[k].kind) {
        case OV_DURATION:
            if (!is_duration(v)) {
                snprintf(err, n, "overrides: \"%s\" must be a duration string such as \"30s\"",
                         overrides[k].key);
                return -EINVAL;
            }
            break;
        case OV_COUNT:
            if (!is_count(v)) {
                snprintf(err, n, "overrides: \"%s\" must be a whole number from 0",
                         overrides[k].key);
                return -EINVAL;
            }
            break;
        case OV_STAGES:
            if (check_stages(v, err, n) < 0)
                return -EINVAL;
            break;
        }
        /* a JSON value is a YAML value too: --set reads it as such */
        char *text = cJSON_PrintUnformatted(v);
        if (!text || asprintf(&r->sets[r->nsets], "%s=%s", overrides[k].key, text) < 0) {
            r->sets[r->nsets] = NULL;
            free(text);
            return -ENOMEM;
        }
        r->nsets++;
        free(text);
    }
    return (r->overrides = cJSON_PrintUnformatted(ov)) ? 0 : -ENOMEM;
}

void api_run_request_clear(struct api_run_request *r)
{
    for (size_t i = 0; i < r->nsets; i++)
        free(r->sets[i]);
    free(r->overrides);
    memset(r, 0, sizeof(*r));
}

int api_parse_run(const char *body, size_t len, struct api_run_request *r, char *err, size_t n)
{
    const char *end = NULL;
    char b[128];
    const char *dup;
    int rc = -EINVAL;

    memset(r, 0, sizeof(*r));
    if (len == 0) {
        snprintf(err, n, "empty body: send {\"testType\": \"smoke\"} (or load, run)");
        return -EINVAL;
    }
    if (len > API_MAX_BODY) {
        snprintf(err, n, "body over %d bytes", API_MAX_BODY);
        return -EINVAL;
    }
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (root && end) {
        /* only white space after the value */
        for (const char *p = end; p < body + len; p++)
            if (!strchr(" \t\r\n", *p)) {
                cJSON_Delete(root);
                root = NULL;
                break;
            }
    }
    if (!root) {
        snprintf(err, n, "malformed JSON: expected one object such as {\"testType\": \"smoke\"}");
        return -EINVAL;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, n, "expected a JSON object such as {\"testType\": \"smoke\"}");
        goto out;
    }
    if ((dup = duplicate_key(root))) {
        snprintf(err, n, "field %s given twice", shown(dup, b, sizeof(b)));
        goto out;
    }
    for (const cJSON *f = root->child; f; f = f->next)
        if (strcmp(f->string, "testType") && strcmp(f->string, "profile") &&
            strcmp(f->string, "overrides")) {
            snprintf(err, n, "unknown field %s; fields: testType, profile, overrides",
                     shown(f->string, b, sizeof(b)));
            goto out;
        }
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(root, "testType");
    if (!tt) {
        snprintf(err, n, "testType: required: \"smoke\", \"load\" or \"run\"");
        goto out;
    }
    if (!cJSON_IsString(tt) || (strcmp(tt->valuestring, "smoke") && strcmp(tt->valuestring, "load") &&
                                strcmp(tt->valuestring, "run"))) {
        snprintf(err, n, "testType: expected \"smoke\", \"load\" or \"run\"%s%s",
                 cJSON_IsString(tt) ? ", got " : "",
                 cJSON_IsString(tt) ? shown(tt->valuestring, b, sizeof(b)) : "");
        goto out;
    }
    snprintf(r->test_type, sizeof(r->test_type), "%s", tt->valuestring);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "profile");
    if (pr) {
        if (!cJSON_IsString(pr) || !api_profile_name_ok(pr->valuestring)) {
            snprintf(err, n, "profile: expected a profile name ([a-z0-9_-], at most %d "
                             "characters)%s%s", API_MAX_PROFILE_NAME,
                     cJSON_IsString(pr) ? ", got " : "",
                     cJSON_IsString(pr) ? shown(pr->valuestring, b, sizeof(b)) : "");
            goto out;
        }
        snprintf(r->profile, sizeof(r->profile), "%s", pr->valuestring);
    }
    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(root, "overrides");
    rc = ov ? parse_overrides(ov, r, err, n) : (r->overrides = strdup("{}")) ? 0 : -ENOMEM;
    if (rc == -ENOMEM)
        snprintf(err, n, "out of memory");
out:
    cJSON_Delete(root);
    if (rc < 0)
        api_run_request_clear(r);
    return rc;
}

/* ---- GET /api/tests ---- */

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    if (!*s || strlen(s) > 18)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -EINVAL;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

int api_parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    const char *p = s;
    int64_t plain;

    if (parse_int(s, 0, INT64_C(253402300799), &plain) == 0) {
        *ms = plain * 1000;
        return 0;
    }
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -EINVAL;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -EINVAL;
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
            digits(&p, 2, &sec))
            return -EINVAL;
        if (*p == '.') {
            int nd = 0;
            p++;
            while (*p >= '0' && *p <= '9') {
                if (nd < 3)
                    frac = frac * 10 + (*p - '0');
                nd++;
                p++;
            }
            if (nd == 0 || nd > 9)
                return -EINVAL;
            for (; nd < 3; nd++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z')
            p++;
        else if (*p == '+' || *p == '-') {
            int oh, om, sign = *p++ == '-' ? -1 : 1;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -EINVAL;
            off = sign * (oh * 60 + om);
        } else
            return -EINVAL;
        if (*p)
            return -EINVAL;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    /* timegm normalises 31 February into March: refuse dates that do not exist */
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != mo - 1)
        return -EINVAL;
    *ms = ((int64_t)t - (int64_t)off * 60) * 1000 + frac;
    return 0;
}

enum { Q_LIMIT, Q_ENV, Q_RESULT, Q_TYPE, Q_PROFILE, Q_STATE, Q_SINCE, Q_BEFORE, Q_COUNT };

static const char *const qnames[Q_COUNT] = {"limit", "environment", "result", "testType",
                                             "profile", "state", "since", "before"};

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(v, *set))
            return true;
    return false;
}

int api_parse_list_arg(struct rundb_filter *f, unsigned *seen, const char *key,
                       const char *value, char *err, size_t n)
{
    static const char *const results[] = {"passed", "failed", "inconclusive", "interrupted",
                                          "error", NULL};
    static const char *const types[] = {"smoke", "load", "run", NULL};
    static const char *const states[] = {"running", "finished", "interrupted", NULL};
    char b[128], b2[128];
    int q = 0;
    int64_t v;

    while (q < Q_COUNT && strcmp(qnames[q], key))
        q++;
    if (q == Q_COUNT) {
        snprintf(err, n, "unknown query parameter %s; parameters: limit, environment, result, "
                         "testType, profile, state, since, before",
                 shown(key, b, sizeof(b)));
        return -EINVAL;
    }
    if (*seen & (1u << q)) {
        snprintf(err, n, "query parameter %s given twice", qnames[q]);
        return -EINVAL;
    }
    *seen |= 1u << q;
    if (!value)
        value = "";
    switch (q) {
    case Q_LIMIT:
        if (parse_int(value, 1, RUNDB_MAX_LIST, &v) < 0)
            goto bad;
        f->limit = (size_t)v;
        return 0;
    case Q_ENV: {
        size_t len = strlen(value);
        bool printable = len > 0 && len <= 256;
        for (size_t i = 0; i < len && printable; i++)
            printable = (unsigned char)value[i] >= 0x20 && value[i] != 0x7f;
        if (!printable)
            goto bad;
        f->environment = value;
        return 0;
    }
    case Q_RESULT:
        if (!one_of(value, results))
            goto bad;
        f->result = value;
        return 0;
    case Q_TYPE:
        if (!one_of(value, types))
            goto bad;
        f->test_type = value;
        return 0;
    case Q_PROFILE:
        if (!api_profile_name_ok(value))
            goto bad;
        f->profile = value;
        return 0;
    case Q_STATE:
        if (!one_of(value, states))
            goto bad;
        f->state = value;
        return 0;
    case Q_SINCE:
        if (api_parse_time(value, &f->since_ms) < 0)
            goto bad;
        return 0;
    case Q_BEFORE:
        if (parse_int(value, 1, INT64_C(1) << 53, &f->before_id) < 0)
            goto bad;
        return 0;
    }
bad:;
    static const char *const expect[Q_COUNT] = {
        "a whole number from 1 to 500",
        "1 to 256 printable characters",
        "passed, failed, inconclusive, interrupted or error",
        "smoke, load or run",
        "a profile name ([a-z0-9_-])",
        "running, finished or interrupted",
        "a time such as 2026-01-31T12:00:00Z, a date, or seconds since the epoch",
        "a run id",
    };
    snprintf(err, n, "query parameter %s: expected %s, got %s", qnames[q], expect[q],
             shown(value, b2, sizeof(b2)));
    return -EINVAL;
}

/* ---- tokens ---- */

const char *api_bearer(const char *h, size_t *len)
{
    if (!h || strncasecmp(h, "Bearer", 6) || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return h;
}

bool api_token_equal(const char *expected, size_t elen, const char *given, size_t glen)
{
    /* every byte of expected is visited whatever given holds; lengths differ: not equal */
    unsigned char diff = elen != glen;
    for (size_t i = 0; i < elen; i++)
        diff |= (unsigned char)(expected[i] ^ (i < glen ? given[i] : 0));
    return diff == 0;
}
