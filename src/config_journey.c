/*
 * config_journey: the profile's journeys, auth, data and env_allow sections,
 * converted into struct journey_set once the rest of the configuration is
 * known, so every template can be checked against what it refers to: a
 * capture made by an earlier step, a column of a data file, an allowed
 * environment variable, the auth section. A mistake is reported like every
 * other configuration error: file:line:col, the key, and what is wrong.
 */
#include "config_int.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "syncgate/config.h"
#include "syncgate/doc.h"
#include "syncgate/units.h"

#define MAX_SECRET_BYTES 4096 /* a client secret file */
#define MAX_NAME 128          /* a journey or step name */

/* One conversion: where messages go, what the templates may use. */
struct jc {
    struct diag *d;
    struct config *c;
    struct journey_set *js;
    char *const *envp;
};

/* Keys only label messages: a long one is cut, never an error. */
static void keyf(char *buf, size_t n, const char *fmt, const char *a, size_t i, const char *b)
{
    if (snprintf(buf, n, fmt, a, i, b) >= (int)n)
        buf[n - 1] = '\0';
}

static void kjoin(char *buf, size_t n, const char *a, const char *b, const char *c)
{
    if (snprintf(buf, n, "%s.%s%s", a, b, c) >= (int)n)
        buf[n - 1] = '\0';
}

/* A non-null scalar with a checked string, or an error naming what was expected. */
static int want_string(struct jc *x, const struct doc_node *n, const char *key, const char *what,
                       bool secret)
{
    if (n->kind != DOC_SCALAR || doc_is_null(n) || !*n->str)
        return cfg_fail(x->d, &n->at, key, "expected %s, got %s", what,
                        n->kind == DOC_SCALAR && !doc_is_null(n) ? "an empty string"
                                                                 : cfg_kind_name(n));
    return cfg_check_string(x->d, n, key, secret);
}

static int unknown_key(struct jc *x, const struct doc_node *e, const char *key,
                       const char *allowed)
{
    char q[128];
    return cfg_fail(x->d, &e->key_at, key, "unknown key %s; allowed: %s",
                    cfg_quote(e->key, false, q, sizeof(q)), allowed);
}

/* A relative file named in a profile is found next to the profile, as k6's open() finds
 * files next to the script; from the environment or --set, in the working directory. */
static void beside_profile(const struct doc_node *n, char *out, size_t len)
{
    const char *slash = n->at.name ? strrchr(n->at.name, '/') : NULL;
    if (n->str[0] != '/' && n->at.src == DOC_SRC_FILE && slash)
        snprintf(out, len, "%.*s/%s", (int)(slash - n->at.name), n->at.name, n->str);
    else
        snprintf(out, len, "%s", n->str);
}

/* ---- env_allow ------------------------------------------------------------- */

static bool env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static int cvt_env_allow(struct jc *x, const struct doc_node *n)
{
    char k[64], q[128];
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_SEQ)
        return cfg_fail(x->d, &n->at, "env_allow",
                        "expected a list of environment variable names, got %s",
                        cfg_kind_name(n));
    if (n->n > JOURNEY_MAX_ENV)
        return cfg_fail(x->d, &n->at, "env_allow", "too many names (at most %d)",
                        JOURNEY_MAX_ENV);
    size_t i = 0;
    for (const struct doc_node *e = n->head; e; e = e->next, i++) {
        snprintf(k, sizeof(k), "env_allow[%zu]", i);
        int rc = want_string(x, e, k, "an environment variable name", false);
        if (rc)
            return rc;
        if (!env_name_ok(e->str) || e->len > 128)
            return cfg_fail(x->d, &e->at, k,
                            "%s is not a variable name; allowed: letters, digits and '_', not "
                            "starting with a digit",
                            cfg_quote(e->str, false, q, sizeof(q)));
        const char *v = cfg_env_get(x->envp, e->str);
        x->js->env_name[x->js->nenv] = strdup(e->str);
        x->js->env_value[x->js->nenv] = v ? strdup(v) : NULL;
        x->js->nenv++;
        if (!x->js->env_name[x->js->nenv - 1] || (v && !x->js->env_value[x->js->nenv - 1]))
            return -ENOMEM;
    }
    return 0;
}

/* ---- auth ------------------------------------------------------------------ */

/* A secret read from a file: trailing line ends dropped, never shown in a message. */
static int read_secret(struct jc *x, const struct doc_node *n, const char *key, char **out)
{
    char q[160], buf[MAX_SECRET_BYTES + 2];
    size_t len = 0;
    int err = 0, rc = 0;
    cfg_quote(n->str, false, q, sizeof(q));
    int fd = open(n->str, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cfg_fail(x->d, &n->at, key, "cannot read %s: %s", q, strerror(errno));
    err = cfg_read_fd(fd, buf, sizeof(buf), &len);
    close(fd);
    if (err)
        rc = cfg_fail(x->d, &n->at, key, "cannot read %s: %s", q, strerror(err));
    else if (len > MAX_SECRET_BYTES)
        rc = cfg_fail(x->d, &n->at, key, "%s is larger than %d bytes", q, MAX_SECRET_BYTES);
    if (!rc) {
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        buf[len] = '\0';
        if (!len)
            rc = cfg_fail(x->d, &n->at, key, "%s is empty", q);
        else if (strlen(buf) != len || cfg_has_control(buf))
            rc = cfg_fail(x->d, &n->at, key, "%s holds control characters", q);
        else if (!(*out = strdup(buf)))
            rc = -ENOMEM;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static int cvt_auth(struct jc *x, const struct doc_node *n)
{
    static const char allowed[] = "token_url, client_id, client_secret_file, client_secret, scope";
    struct auth_config *a = &x->js->auth;
    const struct doc_node *secret_file = NULL, *secret = NULL;
    char k[128];
    int rc;

    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, "auth",
                        "expected a mapping like {oauth2_client_credentials: {...}}, got %s",
                        cfg_kind_name(n));
    for (const struct doc_node *e = n->head; e; e = e->next)
        if (strcmp(e->key, "oauth2_client_credentials"))
            return unknown_key(x, e, "auth", "oauth2_client_credentials");
    const struct doc_node *o = doc_map_get(n, "oauth2_client_credentials");
    if (!o || doc_is_null(o))
        return 0;
    if (o->kind != DOC_MAP)
        return cfg_fail(x->d, &o->at, "auth.oauth2_client_credentials",
                        "expected a mapping of %s, got %s", allowed, cfg_kind_name(o));
    for (const struct doc_node *e = o->head; e; e = e->next) {
        snprintf(k, sizeof(k), "auth.oauth2_client_credentials.%s", e->key);
        bool null = doc_is_null(e);
        if (!strcmp(e->key, "token_url")) {
            if (null)
                continue;
            if ((rc = want_string(x, e, k, "a URL", false)) || (rc = cfg_check_url(x->d, e, k)))
                return rc;
            if (!(a->token_url = strdup(e->str)))
                return -ENOMEM;
        } else if (!strcmp(e->key, "client_id") || !strcmp(e->key, "scope")) {
            if (null)
                continue;
            if ((rc = want_string(x, e, k, "a string", false)))
                return rc;
            char **dst = !strcmp(e->key, "scope") ? &a->scope : &a->client_id;
            if (!(*dst = strdup(e->str)))
                return -ENOMEM;
        } else if (!strcmp(e->key, "client_secret_file")) {
            secret_file = null ? NULL : e;
        } else if (!strcmp(e->key, "client_secret")) {
            if (!null && (rc = want_string(x, e, k, "a string", true)))
                return rc;
            secret = null ? NULL : e;
        } else {
            return unknown_key(x, e, "auth.oauth2_client_credentials", allowed);
        }
    }
    if (!a->token_url && !a->client_id && !secret_file && !secret && !a->scope)
        return 0; /* every key null: no auth */
    if (!a->token_url)
        return cfg_fail(x->d, &o->at, "auth.oauth2_client_credentials.token_url",
                        "missing: the token endpoint (env AUTH_TOKEN_URL)");
    if (!a->client_id)
        return cfg_fail(x->d, &o->at, "auth.oauth2_client_credentials.client_id",
                        "missing: the OAuth2 client id (env AUTH_CLIENT_ID)");
    if (secret) {
        if (!(a->client_secret = strdup(secret->str)))
            return -ENOMEM;
    } else if (secret_file) {
        snprintf(k, sizeof(k), "auth.oauth2_client_credentials.client_secret_file");
        if ((rc = want_string(x, secret_file, k, "a file name", false)))
            return rc;
        char path[PATH_MAX];
        beside_profile(secret_file, path, sizeof(path));
        struct doc_node at = *secret_file;
        at.str = path;
        if ((rc = read_secret(x, &at, k, &a->client_secret)))
            return rc;
        if (!(a->client_secret_file = strdup(path)))
            return -ENOMEM;
    } else {
        return cfg_fail(x->d, &o->at, "auth.oauth2_client_credentials.client_secret_file",
                        "missing: the file holding the client secret (a mounted Secret; env "
                        "AUTH_CLIENT_SECRET_FILE, or AUTH_CLIENT_SECRET for the value)");
    }
    a->enabled = true;
    return 0;
}

/* ---- data ------------------------------------------------------------------ */

/* Rows written in the profile (a list of mappings of scalars), read as a JSON data file
 * would be, so they get the same rules and messages. */
static int inline_rows(struct jc *x, const struct doc_node *n, const char *key,
                       struct dataset *out)
{
    char err[256];
    if (n->kind != DOC_SEQ || n->n == 0)
        return cfg_fail(x->d, &n->at, key, "expected a list of rows like [{id: p1}, {id: p2}]");
    cJSON *arr = cJSON_CreateArray();
    for (const struct doc_node *r = n->head; arr && r; r = r->next) {
        if (r->kind != DOC_MAP || r->n == 0) {
            cJSON_Delete(arr);
            return cfg_fail(x->d, &r->at, key, "a row is a mapping of column names to values");
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        for (const struct doc_node *c = r->head; c; c = c->next) {
            int rc = c->kind == DOC_SCALAR ? cfg_check_string(x->d, c, key, false)
                                           : cfg_fail(x->d, &c->at, key,
                                                      "a cell is a scalar, got %s",
                                                      cfg_kind_name(c));
            if (rc) {
                cJSON_Delete(arr);
                return rc;
            }
            cJSON_AddStringToObject(o, c->key, doc_is_null(c) ? "" : c->str);
        }
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (!text)
        return -ENOMEM;
    int rc = data_parse(out, text, strlen(text), err, sizeof(err));
    free(text);
    if (rc == -EINVAL)
        return cfg_fail(x->d, &n->at, key, "%s", err);
    return rc;
}

static int cvt_data(struct jc *x, const struct doc_node *n)
{
    char k[200], q[160], err[256], path[PATH_MAX];
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, "data",
                        "expected a mapping of data set names to {file: ...}, got %s",
                        cfg_kind_name(n));
    if (n->n > JOURNEY_MAX_DATA)
        return cfg_fail(x->d, &n->at, "data", "too many data sets (at most %d)",
                        JOURNEY_MAX_DATA);
    for (const struct doc_node *e = n->head; e; e = e->next) {
        const struct doc_node *file = e;
        snprintf(k, sizeof(k), "data.%s", e->key);
        if (!env_name_ok(e->key) || strchr(e->key, '.'))
            return cfg_fail(x->d, &e->key_at, k,
                            "%s is not a data set name; allowed: letters, digits and '_'",
                            cfg_quote(e->key, false, q, sizeof(q)));
        struct data_source *ds = &x->js->data[x->js->ndata];
        if (e->kind == DOC_MAP) {
            for (const struct doc_node *f = e->head; f; f = f->next)
                if (strcmp(f->key, "file") && strcmp(f->key, "rows"))
                    return unknown_key(x, f, k, "file, rows");
            file = doc_map_get(e, "file");
            const struct doc_node *rows = doc_map_get(e, "rows");
            if (file && rows)
                return cfg_fail(x->d, &e->at, k, "give file or rows, not both");
            if (rows) {
                snprintf(k, sizeof(k), "data.%s.rows", e->key);
                int rc = inline_rows(x, rows, k, &ds->ds);
                if (rc)
                    return rc;
                x->js->ndata++;
                if (!(ds->name = strdup(e->key)))
                    return -ENOMEM;
                continue;
            }
            if (!file)
                return cfg_fail(x->d, &e->at, k,
                                "missing key \"file\" (a CSV or JSON file) or \"rows\"");
            snprintf(k, sizeof(k), "data.%s.file", e->key);
        }
        int rc = want_string(x, file, k, "a file name", false);
        if (rc)
            return rc;
        beside_profile(file, path, sizeof(path));
        rc = data_load(&ds->ds, path, err, sizeof(err));
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            return cfg_fail(x->d, &file->at, k, "data file %s: %s",
                            cfg_quote(path, false, q, sizeof(q)), err);
        x->js->ndata++;
        if (!(ds->name = strdup(e->key)) || !(ds->file = strdup(path)))
            return -ENOMEM;
    }
    return 0;
}

/* ---- templates ------------------------------------------------------------- */

/* What a template may refer to at one place of one journey. */
struct scope {
    struct journey *j;
    size_t made; /* capture slots made by earlier steps: bits in made_mask */
    uint64_t made_mask;
};

static int tpl_error(struct jc *x, const struct doc_node *n, const char *key, const char *what,
                     const char *msg)
{
    char q[200];
    return cfg_fail(x->d, &n->at, key, "%s %s: %s", what, cfg_quote(n->str, false, q, sizeof(q)),
                    msg);
}

/* Parse n's text into t and bind every placeholder; needs gets the capture slots used. */
static int bind_template(struct jc *x, const struct scope *sc, const struct doc_node *n,
                         const char *key, const char *what, struct tpl *t, uint64_t *needs)
{
    char err[400], msg[600];
    int rc = tpl_parse(t, n->str, err, sizeof(err), NULL);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return tpl_error(x, n, key, what, err);
    for (size_t i = 0; i < t->nseg; i++) {
        struct tpl_seg *s = &t->seg[i];
        const char *name = t->src + s->name;
        int nl = (int)s->name_len;
        msg[0] = '\0';
        switch (s->kind) {
        case TPL_CAPTURE: {
            s->a = -1;
            for (size_t k = 0; k < sc->j->ncaptures; k++)
                if (strlen(sc->j->captures[k]) == s->name_len &&
                    !memcmp(sc->j->captures[k], name, s->name_len))
                    s->a = (int)k;
            if (s->a < 0)
                snprintf(msg, sizeof(msg),
                         "${%.*s} is not captured by any step of journey \"%s\" (capture: {%.*s: "
                         "\"$.path\"} makes it)",
                         nl, name, sc->j->name, nl, name);
            else if (!(sc->made_mask & (UINT64_C(1) << s->a)))
                snprintf(msg, sizeof(msg),
                         "${%.*s} is used before the step that captures it: only earlier steps' "
                         "captures exist here",
                         nl, name);
            else if (needs)
                *needs |= UINT64_C(1) << s->a;
            break;
        }
        case TPL_DATA: {
            s->a = -1;
            for (size_t k = 0; k < x->js->ndata; k++)
                if (strlen(x->js->data[k].name) == s->name_len &&
                    !memcmp(x->js->data[k].name, name, s->name_len))
                    s->a = (int)k;
            if (s->a < 0) {
                snprintf(msg, sizeof(msg), "no data set \"%.*s\" (define it under data:)", nl,
                         name);
                break;
            }
            const struct dataset *ds = &x->js->data[s->a].ds;
            s->b = data_column(ds, t->src + s->col, s->col_len);
            if (s->b < 0) {
                size_t ml = (size_t)snprintf(msg, sizeof(msg),
                                             "data set \"%.*s\" has no column \"%.*s\"; columns:",
                                             nl, name, (int)s->col_len, t->src + s->col);
                for (size_t c = 0; c < ds->ncols && ml < sizeof(msg) - 80; c++)
                    ml += (size_t)snprintf(msg + ml, sizeof(msg) - ml, "%s %.60s",
                                           c ? "," : "", ds->cols[c]);
            }
            sc->j->uses_data = true;
            break;
        }
        case TPL_AUTH:
            if (!x->js->auth.enabled)
                snprintf(msg, sizeof(msg),
                         "${auth.token} needs an auth: section (oauth2_client_credentials)");
            sc->j->uses_auth = true;
            break;
        case TPL_ENV:
            s->a = -1;
            for (size_t k = 0; k < x->js->nenv; k++)
                if (strlen(x->js->env_name[k]) == s->name_len &&
                    !memcmp(x->js->env_name[k], name, s->name_len))
                    s->a = (int)k;
            if (s->a < 0)
                snprintf(msg, sizeof(msg),
                         "${env.%.*s}: the variable is not in env_allow (a profile reads only "
                         "the variables it lists)",
                         nl, name);
            else if (!x->js->env_value[s->a])
                snprintf(msg, sizeof(msg), "${env.%.*s}: the variable is not set", nl, name);
            break;
        default:
            break;
        }
        if (msg[0]) {
            tpl_clear(t);
            return tpl_error(x, n, key, what, msg);
        }
    }
    return 0;
}

/* ---- steps ----------------------------------------------------------------- */

/* A YAML body (mapping or list) written out as JSON text, templates kept in strings. */
static int body_json(struct jc *x, const struct doc_node *n, const char *key, char **out,
                     size_t *len, size_t *cap, int depth)
{
#define PUT(s, l)                                                                              \
    do {                                                                                       \
        size_t l_ = (l);                                                                       \
        if (*len + l_ + 1 > TPL_MAX_TEXT)                                                      \
            return cfg_fail(x->d, &n->at, key, "body is longer than %d bytes", TPL_MAX_TEXT);   \
        if (*len + l_ + 1 > *cap) {                                                            \
            size_t nc = *cap ? *cap * 2 : 256;                                                 \
            while (nc < *len + l_ + 1)                                                         \
                nc *= 2;                                                                       \
            char *nb = realloc(*out, nc);                                                      \
            if (!nb)                                                                           \
                return -ENOMEM;                                                                \
            *out = nb;                                                                         \
            *cap = nc;                                                                         \
        }                                                                                      \
        memcpy(*out + *len, (s), l_);                                                          \
        *len += l_;                                                                            \
        (*out)[*len] = '\0';                                                                   \
    } while (0)
    if (depth > 16)
        return cfg_fail(x->d, &n->at, key, "body nested too deeply");
    if (n->kind == DOC_SCALAR) {
        int rc = cfg_check_string(x->d, n, key, false);
        if (rc)
            return rc;
        char *end;
        bool literal = n->plain && (doc_is_null(n) || !strcmp(n->str, "true") ||
                                    !strcmp(n->str, "false") ||
                                    (n->len && (strtod(n->str, &end), *end == '\0') &&
                                     strspn(n->str, "0123456789+-.eE") == n->len));
        if (literal) {
            const char *t = doc_is_null(n) ? "null" : n->str;
            PUT(t, strlen(t));
            return 0;
        }
        PUT("\"", 1);
        for (const char *p = n->str; *p; p++) {
            char esc[8];
            if (*p == '"' || *p == '\\') {
                esc[0] = '\\';
                esc[1] = *p;
                PUT(esc, 2);
            } else {
                PUT(p, 1);
            }
        }
        PUT("\"", 1);
        return 0;
    }
    bool map = n->kind == DOC_MAP;
    PUT(map ? "{" : "[", 1);
    for (const struct doc_node *e = n->head; e; e = e->next) {
        if (e != n->head)
            PUT(",", 1);
        if (map) {
            PUT("\"", 1);
            for (const char *p = e->key; *p; p++) {
                if (*p == '"' || *p == '\\')
                    PUT("\\", 1);
                PUT(p, 1);
            }
            PUT("\":", 2);
        }
        int rc = body_json(x, e, key, out, len, cap, depth + 1);
        if (rc)
            return rc;
    }
    PUT(map ? "}" : "]", 1);
    return 0;
#undef PUT
}

static int cvt_status(struct jc *x, struct step *s, const struct doc_node *n, const char *key)
{
    int64_t v;
    int rc;
    if (n->kind == DOC_SEQ) {
        if (n->n == 0 || n->n > STEP_MAX_STATUS)
            return cfg_fail(x->d, &n->at, key, "expected 1 to %d statuses", STEP_MAX_STATUS);
        for (const struct doc_node *e = n->head; e; e = e->next) {
            if ((rc = cfg_parse_int(x->d, e, key, 100, 599, &v)))
                return rc;
            s->status[s->nstatus++] = (int)v;
        }
        return 0;
    }
    if ((rc = cfg_parse_int(x->d, n, key, 100, 599, &v)))
        return rc;
    s->status[0] = (int)v;
    s->nstatus = 1;
    return 0;
}

static int new_expect(struct jc *x, struct step *s, const struct doc_node *n, const char *key,
                      struct step_expect **out)
{
    if (s->nexpects == STEP_MAX_EXPECTS)
        return cfg_fail(x->d, &n->at, key, "too many expectations in one step (at most %d)",
                        STEP_MAX_EXPECTS);
    *out = &s->expects[s->nexpects++];
    return 0;
}

static int cvt_expect(struct jc *x, struct scope *sc, struct step *s, const struct doc_node *n,
                      const char *key)
{
    static const char allowed[] = "status, max_latency, json, header, body_contains";
    char k[400], q[200], err[300];
    int rc;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, key, "expected a mapping of %s, got %s", allowed,
                        cfg_kind_name(n));
    for (const struct doc_node *e = n->head; e; e = e->next) {
        kjoin(k, sizeof(k), key, e->key, "");
        if (!strcmp(e->key, "status")) {
            if ((rc = cvt_status(x, s, e, k)))
                return rc;
        } else if (!strcmp(e->key, "max_latency")) {
            if ((rc = cfg_parse_dur(x->d, e, k, USEC_PER_MSEC, 600 * USEC_PER_SEC,
                                    &s->max_latency)))
                return rc;
        } else if (!strcmp(e->key, "json") || !strcmp(e->key, "header")) {
            bool json = e->key[0] == 'j';
            if (e->kind != DOC_MAP || e->n == 0)
                return cfg_fail(x->d, &e->at, k,
                                json ? "expected a mapping of JSON paths to values, like "
                                       "{\"$.status\": PENDING}"
                                     : "expected a mapping of header names to expected text, "
                                       "like {Content-Type: application/json}");
            for (const struct doc_node *v = e->head; v; v = v->next) {
                char kv[600];
                struct step_expect *ex = NULL;
                kjoin(kv, sizeof(kv), k, v->key, "");
                if ((rc = new_expect(x, s, e, k, &ex)))
                    return rc;
                ex->kind = json ? EXPECT_JSON : EXPECT_HEADER;
                if (json) {
                    rc = jp_parse(&ex->path, v->key, err, sizeof(err));
                    if (rc == -ENOMEM)
                        return rc;
                    if (rc)
                        return cfg_fail(x->d, &v->key_at, kv, "%s", err);
                } else {
                    if (!cfg_header_name_ok(v->key))
                        return cfg_fail(x->d, &v->key_at, kv, "invalid header name %s",
                                        cfg_quote(v->key, false, q, sizeof(q)));
                    if (!(ex->header = strdup(v->key)))
                        return -ENOMEM;
                }
                if (asprintf(&ex->check, "%s %s %s", s->name, json ? "json" : "header",
                             v->key) < 0) {
                    ex->check = NULL;
                    return -ENOMEM;
                }
                if (v->kind != DOC_SCALAR)
                    return cfg_fail(x->d, &v->at, kv, "expected a value, got %s",
                                    cfg_kind_name(v));
                if ((rc = cfg_check_string(x->d, v, kv, false)))
                    return rc;
                ex->type = EXPECT_STRING;
                if (json && v->plain) {
                    char *end;
                    double d = strtod(v->str, &end);
                    if (doc_is_null(v))
                        ex->type = EXPECT_NULL;
                    else if (!strcmp(v->str, "true"))
                        ex->type = EXPECT_TRUE;
                    else if (!strcmp(v->str, "false"))
                        ex->type = EXPECT_FALSE;
                    else if (*v->str && !*end &&
                             strspn(v->str, "0123456789+-.eE") == v->len) {
                        ex->type = EXPECT_NUMBER;
                        ex->number = d;
                    }
                }
                if (ex->type == EXPECT_STRING || !json) {
                    if ((rc = bind_template(x, sc, v, kv, "expected value", &ex->text, NULL)))
                        return rc;
                }
            }
        } else if (!strcmp(e->key, "body_contains")) {
            struct step_expect *ex = NULL;
            if ((rc = want_string(x, e, k, "the text the body must contain", false)) ||
                (rc = new_expect(x, s, e, k, &ex)))
                return rc;
            ex->kind = EXPECT_BODY;
            if (asprintf(&ex->check, "%s body contains", s->name) < 0) {
                ex->check = NULL;
                return -ENOMEM;
            }
            if ((rc = bind_template(x, sc, e, k, "body_contains", &ex->text, NULL)))
                return rc;
        } else {
            return unknown_key(x, e, key, allowed);
        }
    }
    return 0;
}

/* The slot of capture name in journey j, made if new. */
static int capture_slot(struct jc *x, struct journey *j, const struct doc_node *e,
                        const char *key)
{
    char q[128];
    static const char *const reserved[] = {"vu", "iteration", "uuid", NULL};
    size_t len = strlen(e->key);
    bool ok = len > 0 && len <= 64 && ((e->key[0] >= 'a' && e->key[0] <= 'z') ||
                                       (e->key[0] >= 'A' && e->key[0] <= 'Z') || e->key[0] == '_');
    for (size_t i = 1; ok && i < len; i++)
        ok = (e->key[i] >= 'a' && e->key[i] <= 'z') || (e->key[i] >= 'A' && e->key[i] <= 'Z') ||
             (e->key[i] >= '0' && e->key[i] <= '9') || e->key[i] == '_';
    for (size_t i = 0; ok && reserved[i]; i++)
        ok = strcmp(e->key, reserved[i]) != 0;
    if (!ok)
        return cfg_fail(x->d, &e->key_at, key,
                        "%s is not a capture name; allowed: letters, digits and '_' (not "
                        "starting with a digit, at most 64), and not vu, iteration or uuid",
                        cfg_quote(e->key, false, q, sizeof(q)));
    for (size_t i = 0; i < j->ncaptures; i++)
        if (!strcmp(j->captures[i], e->key))
            return (int)i;
    if (j->ncaptures == JOURNEY_MAX_CAPTURES)
        return cfg_fail(x->d, &e->key_at, key, "too many captures in one journey (at most %d)",
                        JOURNEY_MAX_CAPTURES);
    if (!(j->captures[j->ncaptures] = strdup(e->key)))
        return -ENOMEM;
    return (int)j->ncaptures++;
}

static int cvt_capture(struct jc *x, struct scope *sc, struct step *s, const struct doc_node *n,
                       const char *key)
{
    char k[400], err[300];
    int rc;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, key,
                        "expected a mapping of names to JSON paths or {header: Name}, got %s",
                        cfg_kind_name(n));
    for (const struct doc_node *e = n->head; e; e = e->next) {
        kjoin(k, sizeof(k), key, e->key, "");
        int slot = capture_slot(x, sc->j, e, k);
        if (slot < 0)
            return slot;
        struct step_capture *c = &s->captures[s->ncaptures++];
        c->slot = slot;
        if (asprintf(&c->check, "%s captures %s", s->name, e->key) < 0) {
            c->check = NULL;
            return -ENOMEM;
        }
        const struct doc_node *path = e;
        if (e->kind == DOC_MAP) {
            const struct doc_node *h = doc_map_get(e, "header"), *jn = doc_map_get(e, "json");
            if (e->n != 1 || (!h && !jn))
                return cfg_fail(x->d, &e->at, k,
                                "expected \"$.path\", {json: \"$.path\"} or {header: Name}");
            if (h) {
                kjoin(k, sizeof(k), key, e->key, ".header");
                if ((rc = want_string(x, h, k, "a header name", false)))
                    return rc;
                if (!cfg_header_name_ok(h->str))
                    return cfg_fail(x->d, &h->at, k, "invalid header name");
                if (!(c->header = strdup(h->str)))
                    return -ENOMEM;
                s->wants_headers = true;
                continue;
            }
            path = jn;
            kjoin(k, sizeof(k), key, e->key, ".json");
        }
        if ((rc = want_string(x, path, k, "a JSON path like \"$.id\"", false)))
            return rc;
        rc = jp_parse(&c->path, path->str, err, sizeof(err));
        if (rc == -ENOMEM)
            return rc;
        if (rc)
            return cfg_fail(x->d, &path->at, k, "%s", err);
        s->wants_body = true;
    }
    return 0;
}

static int cvt_headers(struct jc *x, struct scope *sc, struct step *s, const struct doc_node *n,
                       const char *key)
{
    static const char *const secret_names[] = {"authorization", "proxy-authorization", "cookie",
                                               "x-api-key", "apikey", NULL};
    char k[400], q[128];
    int rc;
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, key, "expected a mapping of header names to values, got %s",
                        cfg_kind_name(n));
    if (n->n > STEP_MAX_HEADERS)
        return cfg_fail(x->d, &n->at, key, "too many headers (at most %d)", STEP_MAX_HEADERS);
    for (const struct doc_node *e = n->head; e; e = e->next) {
        struct step_header *h = &s->headers[s->nheaders];
        const struct doc_node *v = e;
        kjoin(k, sizeof(k), key, e->key, "");
        if (!cfg_header_name_ok(e->key))
            return cfg_fail(x->d, &e->key_at, k,
                            "invalid header name %s; allowed: letters, digits and "
                            "!#$%%&'*+-.^_`|~",
                            cfg_quote(e->key, false, q, sizeof(q)));
        if (cfg_header_reserved(e->key))
            return cfg_fail(x->d, &e->key_at, k,
                            "header %s is set by syncgate itself and cannot be set here",
                            cfg_quote(e->key, false, q, sizeof(q)));
        for (size_t i = 0; i < s->nheaders; i++)
            if (!strcasecmp(s->headers[i].name, e->key))
                return cfg_fail(x->d, &e->key_at, k,
                                "header %s is given twice (header names ignore case)",
                                cfg_quote(e->key, false, q, sizeof(q)));
        for (size_t i = 0; secret_names[i]; i++)
            h->secret |= !strcasecmp(e->key, secret_names[i]);
        if (e->kind == DOC_MAP) {
            for (const struct doc_node *f = e->head; f; f = f->next) {
                if (!strcmp(f->key, "secret")) {
                    if ((rc = cfg_parse_bool(x->d, f, k, &h->secret)))
                        return rc;
                } else if (strcmp(f->key, "value")) {
                    return unknown_key(x, f, k, "value, secret");
                }
            }
            v = doc_map_get(e, "value");
            if (!v)
                return cfg_fail(x->d, &e->at, k, "missing key \"value\"");
        }
        if (v->kind != DOC_SCALAR || doc_is_null(v))
            return cfg_fail(x->d, &v->at, k, "expected a header value, got %s",
                            cfg_kind_name(v));
        if ((rc = cfg_check_string(x->d, v, k, h->secret)))
            return rc;
        if (!(h->name = strdup(e->key)))
            return -ENOMEM;
        s->nheaders++;
        if ((rc = bind_template(x, sc, v, k, "header value", &h->value, &s->needs)))
            return rc;
    }
    return 0;
}

static bool json_content_type(const struct step *s)
{
    for (size_t i = 0; i < s->nheaders; i++)
        if (!strcasecmp(s->headers[i].name, "Content-Type"))
            return strstr(s->headers[i].value.src, "json") != NULL;
    return true; /* none given: a body is sent as JSON unless it is plain text */
}

static int cvt_step(struct jc *x, struct scope *sc, struct step *s, const struct doc_node *n,
                    const char *key)
{
    static const char allowed[] = "name, service, method, path, headers, body, expect, capture";
    const struct doc_node *body = NULL, *expect = NULL, *capture = NULL, *headers = NULL,
                          *path = NULL, *svc = NULL, *name = NULL;
    char k[400], q[200], lat[32];
    int rc;

    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, key, "expected a mapping (a step), got %s",
                        cfg_kind_name(n));
    s->service = -1;
    for (const struct doc_node *e = n->head; e; e = e->next) {
        kjoin(k, sizeof(k), key, e->key, "");
        if (!strcmp(e->key, "name"))
            name = e;
        else if (!strcmp(e->key, "service"))
            svc = e;
        else if (!strcmp(e->key, "path"))
            path = e;
        else if (!strcmp(e->key, "headers"))
            headers = e;
        else if (!strcmp(e->key, "body"))
            body = e;
        else if (!strcmp(e->key, "expect"))
            expect = e;
        else if (!strcmp(e->key, "capture"))
            capture = e;
        else if (!strcmp(e->key, "method")) {
            if ((rc = want_string(x, e, k, "an HTTP method", false)))
                return rc;
            const char *why = cfg_check_method(e->str);
            if (why)
                return cfg_fail(x->d, &e->at, k, "%s %s", cfg_quote(e->str, false, q, sizeof(q)),
                                why);
            if (!(s->method = strdup(e->str)))
                return -ENOMEM;
        } else
            return unknown_key(x, e, key, allowed);
    }
    for (const char *req = "name\0service\0path\0"; *req; req += strlen(req) + 1)
        if (!doc_map_get(n, req))
            return cfg_fail(x->d, &n->at, key, "missing key \"%s\"; a step needs name, service "
                            "and path", req);

    kjoin(k, sizeof(k), key, "name", "");
    if ((rc = want_string(x, name, k, "a step name", false)))
        return rc;
    if (name->len > MAX_NAME)
        return cfg_fail(x->d, &name->at, k, "a step name is at most %d bytes", MAX_NAME);
    if (!(s->name = strdup(name->str)))
        return -ENOMEM;

    kjoin(k, sizeof(k), key, "service", "");
    if ((rc = want_string(x, svc, k, "a service name", false)))
        return rc;
    for (size_t i = 0; i < x->c->nservices; i++)
        if (!strcmp(x->c->services[i].name, svc->str))
            s->service = (int)i;
    if (s->service < 0) {
        char known[400] = "";
        for (size_t i = 0; i < x->c->nservices; i++)
            snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
                     x->c->services[i].name);
        return cfg_fail(x->d, &svc->at, k, "no service is called %s; services: %s",
                        cfg_quote(svc->str, false, q, sizeof(q)), known);
    }
    if (!s->method && !(s->method = strdup("GET")))
        return -ENOMEM;

    kjoin(k, sizeof(k), key, "path", "");
    if ((rc = want_string(x, path, k, "a path like /api/orders", false)))
        return rc;
    if (path->str[0] != '/' || strpbrk(path->str, " #"))
        return cfg_fail(x->d, &path->at, k,
                        "%s is not a path; it must start with '/' and hold no spaces or '#'",
                        cfg_quote(path->str, false, q, sizeof(q)));
    if (path->len > CONFIG_MAX_PATH)
        return cfg_fail(x->d, &path->at, k, "path is too long (at most %d bytes)",
                        CONFIG_MAX_PATH);
    if ((rc = bind_template(x, sc, path, k, "path", &s->path, &s->needs)))
        return rc;

    if (headers) {
        kjoin(k, sizeof(k), key, "headers", "");
        if ((rc = cvt_headers(x, sc, s, headers, k)))
            return rc;
    }
    if (body && !doc_is_null(body)) {
        kjoin(k, sizeof(k), key, "body", "");
        if (!strcmp(s->method, "GET") || !strcmp(s->method, "HEAD"))
            return cfg_fail(x->d, &body->at, k, "a %s request has no body", s->method);
        if (body->kind == DOC_SCALAR) {
            if ((rc = cfg_check_string(x->d, body, k, false)) ||
                (rc = bind_template(x, sc, body, k, "body", &s->body, &s->needs)))
                return rc;
            size_t lead = strspn(body->str, " \t\r\n");
            bool looks = body->str[lead] == '{' || body->str[lead] == '[';
            bool given = false;
            for (size_t i = 0; i < s->nheaders; i++)
                given |= !strcasecmp(s->headers[i].name, "Content-Type");
            s->body_enc = (given ? json_content_type(s) : looks) ? TPL_ENC_JSON : TPL_ENC_RAW;
        } else {
            char *text = NULL;
            size_t len = 0, cap = 0;
            rc = body_json(x, body, k, &text, &len, &cap, 0);
            if (rc == 0) {
                /* the text stands where the YAML was: messages point at the body */
                struct doc_node tmp = *body;
                tmp.kind = DOC_SCALAR;
                tmp.str = text;
                tmp.len = len;
                rc = bind_template(x, sc, &tmp, k, "body", &s->body, &s->needs);
            }
            free(text);
            if (rc)
                return rc;
            s->body_enc = TPL_ENC_JSON;
        }
        s->has_body = true;
    }
    if (expect && !doc_is_null(expect)) {
        kjoin(k, sizeof(k), key, "expect", "");
        if ((rc = cvt_expect(x, sc, s, expect, k)))
            return rc;
    }
    for (size_t i = 0; i < s->nexpects; i++)
        s->wants_body |= s->expects[i].kind != EXPECT_HEADER;
    for (size_t i = 0; i < s->nexpects; i++)
        s->wants_headers |= s->expects[i].kind == EXPECT_HEADER;
    /* status names the check; "2xx" when no status is given */
    if (s->nstatus == 0) {
        for (int st = 200; st < 208; st++)
            s->status[s->nstatus++] = st;
        if (asprintf(&s->status_check, "%s status 2xx", s->name) < 0)
            s->status_check = NULL;
    } else {
        char list[STEP_MAX_STATUS * 5 + 1] = "";
        for (size_t i = 0; i < s->nstatus; i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%d", i ? "/" : "",
                     s->status[i]);
        if (asprintf(&s->status_check, "%s status %s", s->name, list) < 0)
            s->status_check = NULL;
    }
    if (!s->status_check)
        return -ENOMEM;
    if (s->max_latency > 0 &&
        asprintf(&s->latency_check, "%s latency < %s", s->name,
                 units_format_duration(s->max_latency, lat, sizeof(lat))) < 0) {
        s->latency_check = NULL;
        return -ENOMEM;
    }
    /* captures last: a step's own captures exist only for the steps after it */
    if (capture && !doc_is_null(capture)) {
        kjoin(k, sizeof(k), key, "capture", "");
        if ((rc = cvt_capture(x, sc, s, capture, k)))
            return rc;
    }
    return 0;
}

/* ---- journeys -------------------------------------------------------------- */

static bool journey_name_ok(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z') || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static int cvt_journey(struct jc *x, struct journey *j, const struct doc_node *n, const char *key)
{
    static const char allowed[] = "name, weight, smoke, think_time, steps";
    char k[300], q[128];
    const struct doc_node *steps = NULL, *name = NULL;
    int64_t v;
    int rc;

    j->weight = 1;
    j->smoke = true;
    j->think_time = -1;
    if (n->kind != DOC_MAP)
        return cfg_fail(x->d, &n->at, key, "expected a mapping (a journey), got %s",
                        cfg_kind_name(n));
    for (const struct doc_node *e = n->head; e; e = e->next) {
        kjoin(k, sizeof(k), key, e->key, "");
        if (!strcmp(e->key, "name")) {
            name = e;
        } else if (!strcmp(e->key, "weight")) {
            if ((rc = cfg_parse_int(x->d, e, k, 1, JOURNEY_MAX_WEIGHT, &v)))
                return rc;
            j->weight = (int)v;
        } else if (!strcmp(e->key, "smoke")) {
            if ((rc = cfg_parse_bool(x->d, e, k, &j->smoke)))
                return rc;
        } else if (!strcmp(e->key, "think_time")) {
            if (!doc_is_null(e) &&
                (rc = cfg_parse_dur(x->d, e, k, 0, 600 * USEC_PER_SEC, &j->think_time)))
                return rc;
        } else if (!strcmp(e->key, "steps")) {
            steps = e;
        } else {
            return unknown_key(x, e, key, allowed);
        }
    }
    kjoin(k, sizeof(k), key, "name", "");
    if (!name)
        return cfg_fail(x->d, &n->at, k, "missing; every journey needs a name");
    if ((rc = want_string(x, name, k, "a journey name", false)))
        return rc;
    if (!journey_name_ok(name->str))
        return cfg_fail(x->d, &name->at, k,
                        "%s is not a journey name; allowed: a lower-case letter, then lower-case "
                        "letters, digits, '_' and '-' (at most 64)",
                        cfg_quote(name->str, false, q, sizeof(q)));
    if (!(j->name = strdup(name->str)) || asprintf(&j->group, "::%s", name->str) < 0) {
        j->group = NULL;
        return -ENOMEM;
    }
    kjoin(k, sizeof(k), key, "steps", "");
    if (!steps || steps->kind != DOC_SEQ || steps->n == 0)
        return cfg_fail(x->d, steps ? &steps->at : &n->at, k,
                        "expected a list of at least one step");
    if (steps->n > JOURNEY_MAX_STEPS)
        return cfg_fail(x->d, &steps->at, k, "too many steps (at most %d)", JOURNEY_MAX_STEPS);
    if (!(j->steps = calloc(steps->n, sizeof(*j->steps))))
        return -ENOMEM;
    /* every capture name first, so a use before its step can be told from a typo */
    size_t i = 0;
    for (const struct doc_node *e = steps->head; e; e = e->next, i++) {
        const struct doc_node *cap = e->kind == DOC_MAP ? doc_map_get(e, "capture") : NULL;
        char kb[340], kc[400];
        for (const struct doc_node *c = cap && cap->kind == DOC_MAP ? cap->head : NULL; c;
             c = c->next) {
            keyf(kb, sizeof(kb), "%s[%zu]%s", k, i, ".capture");
            kjoin(kc, sizeof(kc), kb, c->key, "");
            if ((rc = capture_slot(x, j, c, kc)) < 0)
                return rc;
        }
    }
    struct scope sc = {.j = j};
    i = 0;
    for (const struct doc_node *e = steps->head; e; e = e->next, i++) {
        char ks[340];
        keyf(ks, sizeof(ks), "%s[%zu]%s", k, i, "");
        j->nsteps++;
        if ((rc = cvt_step(x, &sc, &j->steps[i], e, ks)))
            return rc;
        for (size_t p = 0; p < i; p++)
            if (!strcmp(j->steps[p].name, j->steps[i].name)) {
                keyf(ks, sizeof(ks), "%s[%zu]%s", k, i, ".name");
                return cfg_fail(x->d, &doc_map_get(e, "name")->at, ks,
                                "step name %s is used twice in this journey (check names would "
                                "mix)",
                                cfg_quote(j->steps[i].name, false, q, sizeof(q)));
            }
        for (size_t c = 0; c < j->steps[i].ncaptures; c++)
            sc.made_mask |= UINT64_C(1) << j->steps[i].captures[c].slot;
    }
    return 0;
}

static int cvt_journeys(struct jc *x, const struct doc_node *n)
{
    char k[64], q[128];
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_SEQ)
        return cfg_fail(x->d, &n->at, "journeys", "expected a list of journeys, got %s",
                        cfg_kind_name(n));
    if (n->n > JOURNEY_MAX)
        return cfg_fail(x->d, &n->at, "journeys", "too many journeys (at most %d)", JOURNEY_MAX);
    if (n->n == 0)
        return 0;
    if (!(x->js->j = calloc(n->n, sizeof(*x->js->j))))
        return -ENOMEM;
    size_t i = 0;
    for (const struct doc_node *e = n->head; e; e = e->next, i++) {
        snprintf(k, sizeof(k), "journeys[%zu]", i);
        x->js->n++;
        int rc = cvt_journey(x, &x->js->j[i], e, k);
        if (rc)
            return rc;
        for (size_t p = 0; p < i; p++)
            if (!strcmp(x->js->j[p].name, x->js->j[i].name))
                return cfg_fail(x->d, &doc_map_get(e, "name")->at, k,
                                "journey name %s is used twice",
                                cfg_quote(x->js->j[i].name, false, q, sizeof(q)));
    }
    return 0;
}

int cfg_convert_journeys(struct diag *d, struct config *c, const struct doc_node *root,
                         char *const *envp)
{
    const struct doc_node *auth = doc_map_get(root, "auth"), *data = doc_map_get(root, "data"),
                          *env = doc_map_get(root, "env_allow"),
                          *journeys = doc_map_get(root, "journeys");
    int rc;

    if (!auth && !data && !env && !journeys)
        return 0; /* a partial profile (config_apply_profile) without these sections */
    journey_set_clear(&c->journeys);
    struct jc x = {.d = d, .c = c, .js = &c->journeys, .envp = envp};
    if ((env && (rc = cvt_env_allow(&x, env))) || (auth && (rc = cvt_auth(&x, auth))) ||
        (data && (rc = cvt_data(&x, data))) || (journeys && (rc = cvt_journeys(&x, journeys))))
        return rc;
    return 0;
}
