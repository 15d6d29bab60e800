/* log: JSON or text event lines, one per event, never interleaved, secrets masked. */
#include "syncgate/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syncgate/units.h"
#include "utf8.h"

static const char redacted[] = "<redacted>";

/* One form of a secret: the value itself or one of its base64 forms. */
struct secret {
    char *s; /* NULL: an empty slot (the form was another value's already) */
    size_t len;
    bool whole; /* shorter than LOG_SECRET_MIN: masked only as a whole string */
};

#define FORMS 3 /* value, base64 padded, base64 unpadded */

/* One registered value and its forms. */
struct value {
    struct secret form[FORMS];
};

/* The values from here on are forgotten oldest first when the table is full. */
#define KEEP_FOREVER (LOG_MAX_SECRETS / 2)

struct log {
    FILE *out;
    bool json, quiet;
    char *environment, *testid, *test_type;
    pthread_mutex_t lock; /* the output, test_type and the secrets */
    size_t nvalues;
    struct value values[LOG_MAX_SECRETS];
};

static const char *level_names[] = {"debug", "info", "warn", "error"};

struct log *log_new(FILE *out, enum log_format fmt, bool quiet, const char *environment,
                    const char *testid)
{
    struct log *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->out = out;
    l->json = fmt == LOG_FORMAT_JSON || (fmt == LOG_FORMAT_AUTO && !isatty(STDOUT_FILENO));
    l->quiet = quiet;
    l->environment = strdup(environment ? environment : "");
    l->testid = strdup(testid ? testid : "");
    l->test_type = strdup("");
    pthread_mutex_init(&l->lock, NULL);
    if (!l->environment || !l->testid || !l->test_type) {
        log_free(l);
        return NULL;
    }
    return l;
}

/* Wipe and free v's forms. */
static void forget(struct value *v)
{
    for (size_t f = 0; f < FORMS; f++)
        if (v->form[f].s) {
            explicit_bzero(v->form[f].s, v->form[f].len);
            free(v->form[f].s);
            v->form[f].s = NULL;
        }
}

void log_free(struct log *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    for (size_t i = 0; i < l->nvalues; i++)
        forget(&l->values[i]);
    free(l->environment);
    free(l->testid);
    free(l->test_type);
    free(l);
}

/* ---- secrets ---- */

/* Standard base64 of s (len bytes), padded or not; NULL on ENOMEM. */
static char *base64(const char *s, size_t len, bool pad)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)u[i + 1] << 8;
        if (i + 2 < len)
            v |= u[i + 2];
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        if (i + 1 < len)
            *o++ = abc[v >> 6 & 63];
        else if (pad)
            *o++ = '=';
        if (i + 2 < len)
            *o++ = abc[v & 63];
        else if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return out;
}

static bool have_form(const struct log *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->nvalues; i++)
        for (size_t f = 0; f < FORMS; f++) {
            const struct secret *e = &l->values[i].form[f];
            if (e->s && e->len == len && memcmp(e->s, s, len) == 0)
                return true;
        }
    return false;
}

int log_add_secret(struct log *l, const char *value)
{
    if (!value)
        return -EINVAL;
    size_t len = strlen(value);
    if (len > LOG_SECRET_MAX_LEN)
        return -EINVAL;
    if (!len)
        return 0;
    char *forms[FORMS] = {strdup(value), base64(value, len, true), base64(value, len, false)};
    int rc = 0;
    if (!forms[0] || !forms[1] || !forms[2])
        rc = -ENOMEM;
    pthread_mutex_lock(&l->lock);
    if (!rc && have_form(l, value, len))
        rc = 1; /* known: nothing to do */
    if (!rc && l->nvalues == LOG_MAX_SECRETS) {
        /* full: forget the oldest of the later values (a token renewed all day keeps its
         * recent predecessors masked; the configuration's come first and stay) */
        forget(&l->values[KEEP_FOREVER]);
        memmove(&l->values[KEEP_FOREVER], &l->values[KEEP_FOREVER + 1],
                (LOG_MAX_SECRETS - KEEP_FOREVER - 1) * sizeof(l->values[0]));
        l->nvalues--;
    }
    if (!rc) {
        struct value *v = &l->values[l->nvalues++];
        memset(v, 0, sizeof(*v));
        for (size_t i = 0; i < FORMS; i++) {
            size_t flen = strlen(forms[i]);
            if (have_form(l, forms[i], flen))
                continue;
            /* the encoded forms of a short value are short on purpose too */
            v->form[i] = (struct secret){forms[i], flen, len < LOG_SECRET_MIN};
            forms[i] = NULL;
        }
    }
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; i < FORMS; i++) {
        if (forms[i])
            explicit_bzero(forms[i], strlen(forms[i]));
        free(forms[i]);
    }
    return rc > 0 ? 0 : rc;
}

/*
 * s (len bytes) with every run of bytes that belongs to a secret replaced by
 * one "<redacted>": a new string (cJSON's allocator, length in *outlen), or
 * NULL when nothing matched (or out of memory: then *failed). Every
 * occurrence of every form is marked first, so overlapping secrets are hidden
 * whole. cut: also mark a tail that begins a secret. Caller holds l->lock.
 */
static char *mask(const struct log *l, const char *s, size_t len, bool cut, size_t *outlen,
                  bool *failed)
{
    unsigned char *mark = NULL;
    for (size_t i = 0; i < l->nvalues * FORMS; i++) {
        const struct secret *e = &l->values[i / FORMS].form[i % FORMS];
        size_t from = 0, to = 0;
        if (!e->s)
            continue;
        if (e->whole) {
            if (len != e->len || memcmp(s, e->s, len) != 0)
                continue;
            to = len;
        } else if (cut) {
            /* the longest tail that is a head of the secret, if long enough to tell */
            for (size_t k = len < e->len ? len : e->len - 1; k >= LOG_SECRET_MIN; k--)
                if (memcmp(s + len - k, e->s, k) == 0) {
                    from = len - k, to = len;
                    break;
                }
        }
        const char *p = e->whole ? NULL : memmem(s, len, e->s, e->len);
        if (!p && to == 0)
            continue;
        if (!mark && !(mark = calloc(len ? len : 1, 1))) {
            *failed = true;
            return NULL;
        }
        memset(mark + from, 1, to - from);
        for (; p; p = memmem(p + 1, len - (size_t)(p + 1 - s), e->s, e->len))
            memset(mark + (p - s), 1, e->len);
    }
    if (!mark)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += !mark[i] ? 1 : (i == 0 || !mark[i - 1]) ? sizeof(redacted) - 1 : 0;
    char *out = cJSON_malloc(n + 1);
    if (!out) {
        free(mark);
        *failed = true;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (!mark[i])
            out[k++] = s[i];
        else if (i == 0 || !mark[i - 1]) {
            memcpy(out + k, redacted, sizeof(redacted) - 1);
            k += sizeof(redacted) - 1;
        }
    }
    out[k] = '\0';
    free(mark);
    *outlen = k;
    return out;
}

/* *sp (a cJSON string) masked (unless not masked) and made well-formed UTF-8. Caller
 * holds l->lock. */
static void clean_string(const struct log *l, char **sp, bool masked)
{
    bool failed = false;
    size_t len = strlen(*sp);
    char *m = masked ? mask(l, *sp, len, false, &len, &failed) : NULL;
    if (failed) {
        /* no memory to mask: hide the whole string rather than risk a secret */
        m = cJSON_malloc(sizeof(redacted));
        if (m) {
            memcpy(m, redacted, sizeof(redacted));
            len = sizeof(redacted) - 1;
        }
    }
    if (m) {
        cJSON_free(*sp);
        *sp = m;
    }
    if (!utf8_valid(*sp, len)) {
        char *r = cJSON_malloc(3 * len + 1);
        if (r) {
            utf8_repair(*sp, len, r, 3 * len + 1);
            cJSON_free(*sp);
            *sp = r;
        } else {
            for (char *p = *sp; *p; p++) /* no memory: plain ASCII will do */
                if ((unsigned char)*p >= 0x80)
                    *p = '?';
        }
    }
}

/*
 * Whether the i-th field of an event is one of the labels log_begin put first. Their
 * values are the configuration's, which validate prints as they are, and Loki indexes
 * them: masking one (an X-Scope-OrgID header value that is also the environment's
 * name) would only break the line's labels, never hide a secret.
 */
static bool own_label(size_t i, const cJSON *f)
{
    static const char *const labels[] = {"time",        "level",     "event",
                                         "environment", "test_type", "testid"};
    return i < sizeof(labels) / sizeof(labels[0]) && f->string && !strcmp(f->string, labels[i]);
}

/* Every key and string value under node (top: the event itself). Caller holds l->lock. */
static void clean_tree(const struct log *l, cJSON *node, bool top)
{
    size_t i = 0;
    for (cJSON *c = node->child; c; c = c->next, i++) {
        if (c->string) {
            if (c->type & cJSON_StringIsConst) {
                /* a borrowed key: give the node its own copy first */
                char *own = cJSON_malloc(strlen(c->string) + 1);
                if (!own) {
                    c->string = (char *)redacted; /* still const: never freed */
                    continue;
                }
                strcpy(own, c->string);
                c->string = own;
                c->type &= ~cJSON_StringIsConst;
            }
            clean_string(l, &c->string, true);
        }
        if (cJSON_IsString(c) && c->valuestring && (c->type & cJSON_IsReference)) {
            /* a borrowed value: masked in a copy of its own */
            char *own = cJSON_malloc(strlen(c->valuestring) + 1);
            if (own) {
                strcpy(own, c->valuestring);
                c->valuestring = own;
                c->type &= ~cJSON_IsReference;
            } else {
                c->valuestring = (char *)redacted; /* still borrowed: never freed */
            }
        }
        if (cJSON_IsString(c) && c->valuestring && !(c->type & cJSON_IsReference))
            clean_string(l, &c->valuestring, !(top && own_label(i, c)));
        if (c->child)
            clean_tree(l, c, false);
    }
}

/* ---- rendering ---- */

/* Shorten every top-level string longer than cap to cap bytes, "..." included. */
static void shorten(cJSON *ev, size_t cap)
{
    for (cJSON *f = ev->child; f; f = f->next) {
        if (!cJSON_IsString(f) || strlen(f->valuestring) <= cap)
            continue;
        size_t k = cap - 3;
        while (k && ((unsigned char)f->valuestring[k] & 0xc0) == 0x80)
            k--; /* not inside a character */
        strcpy(f->valuestring + k, "...");
    }
}

/* JSON text with risky characters escaped too; NULL on ENOMEM. */
static char *print_json(const cJSON *v)
{
    char *raw = cJSON_PrintUnformatted(v);
    if (!raw)
        return NULL;
    size_t n = 3 * strlen(raw) + 1;
    char *out = malloc(n);
    if (out)
        utf8_json_escape_risky(raw, out, n);
    free(raw);
    return out;
}

/* Append s to line (size LOG_MAX_LINE + 1, *n used); false when it does not fit. */
static bool put(char *line, size_t *n, const char *s, size_t len)
{
    if (*n + len > LOG_MAX_LINE)
        return false;
    memcpy(line + *n, s, len);
    *n += len;
    line[*n] = '\0';
    return true;
}

/* Whether v can stand bare in a text line: not empty, not starting with '"', and
 * nothing to escape, no space and no '=' (so a reader splits fields at spaces). */
static bool plain(const char *v)
{
    if (!*v || *v == '"')
        return false;
    for (size_t i = 0, len = strlen(v), l; i < len; i += l) {
        unsigned cp = 0;
        l = utf8_decode((const unsigned char *)v + i, len - i, &cp);
        if (!l || cp <= 0x20 || cp == 0x7f || cp == '=' || utf8_risky(cp))
            return false;
    }
    return true;
}

/* A value for a text line: bare when plain, else quoted and escaped. False when it does
 * not fit. */
static bool put_value(char *line, size_t *n, const char *v)
{
    if (plain(v))
        return put(line, n, v, strlen(v));
    size_t len = strlen(v), used = 0;
    if (!put(line, n, "\"", 1) || *n >= LOG_MAX_LINE)
        return false;
    *n += utf8_escape_into(v, len, len, line + *n, LOG_MAX_LINE + 1 - *n, &used);
    return used == len && put(line, n, "\"", 1);
}

/* "time level event k=v k=v": the common labels are left out for people. NULL: too long. */
static char *render_text(const cJSON *ev, bool *nomem)
{
    size_t n = 0;
    char *line = malloc(LOG_MAX_LINE + 1);
    if (!line) {
        *nomem = true;
        return NULL;
    }
    line[0] = '\0';
    bool fits = true;
    for (const cJSON *f = ev->child; f && fits; f = f->next) {
        const char *k = f->string;
        if (!strcmp(k, "environment") || !strcmp(k, "testid") || !strcmp(k, "test_type"))
            continue;
        bool bare = !strcmp(k, "time") || !strcmp(k, "level") || !strcmp(k, "event");
        char *printed = cJSON_IsString(f) ? NULL : print_json(f);
        if (!cJSON_IsString(f) && !printed) {
            *nomem = true;
            free(line);
            return NULL;
        }
        if (n)
            fits = put(line, &n, " ", 1);
        if (!bare && fits) {
            fits = put_value(line, &n, k) && put(line, &n, "=", 1);
        }
        if (fits)
            fits = put_value(line, &n, printed ? printed : f->valuestring);
        free(printed);
    }
    if (!fits) {
        free(line);
        return NULL;
    }
    return line;
}

/* The line under LOG_MAX_LINE: shorten the longest strings until it fits. */
static char *render(const struct log *l, cJSON *ev)
{
    for (size_t cap = 4096;; cap /= 4) {
        bool nomem = false;
        char *line = l->json ? print_json(ev) : render_text(ev, &nomem);
        if ((l->json && !line) || nomem)
            return NULL;
        if (line && (strlen(line) <= LOG_MAX_LINE || cap < 16))
            return line;
        free(line);
        if (cap < 16)
            return NULL;
        shorten(ev, cap);
    }
}

/* ---- events ---- */

void log_set_test_type(struct log *l, const char *test_type)
{
    char *t = strdup(test_type ? test_type : "");
    if (!t)
        return;
    pthread_mutex_lock(&l->lock);
    free(l->test_type);
    l->test_type = t;
    pthread_mutex_unlock(&l->lock);
}

void log_set_testid(struct log *l, const char *testid)
{
    char *t = strdup(testid ? testid : "");
    if (!t)
        return;
    pthread_mutex_lock(&l->lock);
    free(l->testid);
    l->testid = t;
    pthread_mutex_unlock(&l->lock);
}

static void format_time(char *buf, size_t n)
{
    int64_t now = units_now_wall();
    time_t secs = (time_t)(now / USEC_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(now % USEC_PER_SEC / 1000));
}

cJSON *log_begin(struct log *l, const char *event)
{
    char ts[40];
    cJSON *ev = cJSON_CreateObject();
    if (!ev)
        return NULL;
    format_time(ts, sizeof(ts));
    cJSON_AddStringToObject(ev, "time", ts);
    cJSON_AddStringToObject(ev, "level", "info");
    cJSON_AddStringToObject(ev, "event", event);
    pthread_mutex_lock(&l->lock);
    cJSON_AddStringToObject(ev, "environment", l->environment);
    cJSON_AddStringToObject(ev, "test_type", l->test_type);
    cJSON_AddStringToObject(ev, "testid", l->testid);
    pthread_mutex_unlock(&l->lock);
    return ev;
}

void log_emit(struct log *l, enum log_level level, cJSON *ev)
{
    if (!ev)
        return;
    if (l->quiet && level <= LOG_INFO) {
        cJSON_Delete(ev);
        return;
    }
    cJSON_ReplaceItemInObject(ev, "level", cJSON_CreateString(level_names[level]));
    pthread_mutex_lock(&l->lock);
    clean_tree(l, ev, true);
    char *line = render(l, ev);
    if (line) {
        fputs(line, l->out);
        fputc('\n', l->out);
        fflush(l->out);
    }
    pthread_mutex_unlock(&l->lock);
    free(line);
    cJSON_Delete(ev);
}

void log_add_quote(struct log *l, cJSON *ev, const char *key, const char *text, size_t len,
                   bool cut)
{
    if (!ev)
        return;
    bool failed = false;
    size_t mlen = len;
    pthread_mutex_lock(&l->lock);
    char *m = mask(l, text, len, cut, &mlen, &failed);
    pthread_mutex_unlock(&l->lock);
    if (failed) {
        cJSON_AddStringToObject(ev, key, redacted);
        return;
    }
    const char *src = m ? m : text;
    size_t keep = mlen;
    bool more = keep > LOG_QUOTE_MAX;
    if (more) {
        keep = LOG_QUOTE_MAX;
        while (keep && ((unsigned char)src[keep] & 0xc0) == 0x80)
            keep--; /* not inside a character */
    }
    size_t n = 3 * keep + sizeof("...");
    char *out = malloc(n);
    if (out) {
        size_t k = utf8_repair(src, keep, out, n);
        if (more)
            memcpy(out + k, "...", sizeof("..."));
        cJSON_AddStringToObject(ev, key, out);
    } else {
        cJSON_AddStringToObject(ev, key, redacted);
    }
    free(out);
    cJSON_free(m);
}

void log_vmsg(struct log *l, enum log_level level, const char *event, const char *fmt,
              va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    cJSON *ev = log_begin(l, event);
    cJSON_AddStringToObject(ev, "message", msg);
    log_emit(l, level, ev);
}

void log_msg(struct log *l, enum log_level level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(l, level, event, fmt, ap);
    va_end(ap);
}

void log_raw(struct log *l, const char *line, size_t len)
{
    if (l->quiet && !memmem(line, len, "\"level\":\"warn\"", 14) &&
        !memmem(line, len, "\"level\":\"error\"", 15))
        return;
    size_t n = len;
    bool failed = false;
    pthread_mutex_lock(&l->lock);
    /* this process's secrets too ("<redacted>" keeps a JSON line JSON) */
    char *masked = mask(l, line, len, false, &n, &failed);
    if (!failed) {
        fwrite(masked ? masked : line, 1, masked ? n : len, l->out);
        fputc('\n', l->out);
        fflush(l->out);
    }
    pthread_mutex_unlock(&l->lock);
    cJSON_free(masked);
}
