/*
 * Unit tests for log: secrets masked in every line (forms, short values,
 * overlaps, nested fields, quotes cut short, registration mid-run and from
 * other threads), and every line one line of well-formed UTF-8 (JSON that
 * parses, text where no field can start a line or a field of its own),
 * whatever bytes the fields hold. Lines are written to a memory stream.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/log.h"
#include "tap.h"

struct sink {
    FILE *f;
    char *buf;
    size_t len;
};

static struct log *open_log(struct sink *s, enum log_format fmt)
{
    s->buf = NULL;
    s->len = 0;
    s->f = open_memstream(&s->buf, &s->len);
    return log_new(s->f, fmt, false, "test", "t1");
}

/* Everything written so far (the sink's buffer, valid until the next write or close). */
static const char *output(struct sink *s)
{
    fflush(s->f);
    return s->buf ? s->buf : "";
}

static void close_log(struct log *l, struct sink *s)
{
    log_free(l);
    fclose(s->f);
    free(s->buf);
}

/* One line with a field "v" holding v (len bytes, NUL-terminated by the caller). */
static void emit_value(struct log *l, const char *v)
{
    cJSON *ev = log_begin(l, "probe");
    cJSON_AddStringToObject(ev, "v", v);
    log_emit(l, LOG_WARN, ev);
}

/* The oracle: well-formed UTF-8 (no overlong forms, surrogates, or past U+10FFFF). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, n, cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

/* Number of '\n' in s, and whether any other byte below 0x20 (or 0x7f) occurs. */
static size_t lines(const char *s, bool *control)
{
    size_t n = 0;
    *control = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            n++;
        else if (*p < 0x20 || *p == 0x7f)
            *control = true;
    }
    return n;
}

/* The string field v of the last JSON line in out, parsed; NULL when it does not parse. */
static cJSON *last_json(const char *out)
{
    size_t len = strlen(out);
    if (!len || out[len - 1] != '\n')
        return NULL;
    const char *start = out + len - 1;
    while (start > out && start[-1] != '\n')
        start--;
    char *line = strndup(start, (size_t)(out + len - 1 - start));
    cJSON *j = line ? cJSON_Parse(line) : NULL;
    free(line);
    return j;
}

static void test_mask_forms(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    ok(log_add_secret(l, "kong-key-0123456789") == 0, "secret registered");
    ok(log_add_secret(l, "writer:hunter22") == 0, "user:password registered");
    emit_value(l, "apikey=kong-key-0123456789; again kong-key-0123456789");
    emit_value(l, "Authorization: Basic d3JpdGVyOmh1bnRlcjIy");
    emit_value(l, "b64: a29uZy1rZXktMDEyMzQ1Njc4OQ== and unpadded a29uZy1rZXktMDEyMzQ1Njc4OQ");
    const char *out = output(&s);
    ok(!strstr(out, "kong-key-0123456789") && !strstr(out, "d3JpdGVyOmh1bnRlcjIy") &&
           !strstr(out, "a29uZy1rZXktMDEyMzQ1Njc4OQ"),
       "no secret, Basic or base64 form in the lines");
    ok(strstr(out, "\"v\":\"apikey=<redacted>; again <redacted>\"") != NULL,
       "every occurrence replaced, the rest kept");
    ok(strstr(out, "Authorization: Basic <redacted>") != NULL, "Basic credentials masked");
    ok(strstr(out, "b64: <redacted> and unpadded <redacted>") != NULL,
       "padded and unpadded base64 masked");
    close_log(l, &s);
}

static void test_own_labels(void)
{
    struct sink s;
    struct log *l = log_new((s.buf = NULL, s.len = 0, s.f = open_memstream(&s.buf, &s.len)),
                            LOG_FORMAT_JSON, false, "staging", "t1");
    log_add_secret(l, "staging"); /* say an X-Scope-OrgID tenant named after it */
    emit_value(l, "tenant staging");
    const char *out = output(&s);
    ok(strstr(out, "\"environment\":\"staging\"") && strstr(out, "\"v\":\"tenant <redacted>\""),
       "the line's own labels are not masked, the fields are");
    close_log(l, &s);
}

static void test_mask_rules(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    ok(log_add_secret(l, "abc") == 0, "a 3-byte secret is accepted");
    emit_value(l, "abc");
    emit_value(l, "labcde and abc");
    const char *out = output(&s);
    ok(strstr(out, "\"v\":\"<redacted>\"") != NULL, "short secret masked as a whole string");
    ok(strstr(out, "\"v\":\"labcde and abc\"") != NULL,
       "short secret not masked inside longer text");
    close_log(l, &s);

    l = open_log(&s, LOG_FORMAT_JSON);
    log_add_secret(l, "abcdef12");
    log_add_secret(l, "ef12ghij");
    emit_value(l, "xxabcdef12ghijyy");
    out = output(&s);
    ok(strstr(out, "\"v\":\"xx<redacted>yy\"") != NULL, "overlapping secrets hidden whole");
    close_log(l, &s);

    l = open_log(&s, LOG_FORMAT_JSON);
    log_add_secret(l, "nested-secret-1");
    cJSON *ev = log_begin(l, "probe");
    cJSON *o = cJSON_AddObjectToObject(ev, "errors");
    cJSON_AddNumberToObject(o, "key nested-secret-1", 1);
    cJSON *a = cJSON_AddArrayToObject(o, "list");
    cJSON_AddItemToArray(a, cJSON_CreateString("in an array: nested-secret-1"));
    cJSON_AddItemToObject(ev, "ref", cJSON_CreateStringReference("nested-secret-1"));
    log_emit(l, LOG_INFO, ev);
    out = output(&s);
    ok(!strstr(out, "nested-secret-1") && strstr(out, "\"key <redacted>\":1") &&
           strstr(out, "in an array: <redacted>") && strstr(out, "\"ref\":\"<redacted>\""),
       "keys, nested values, array items and borrowed strings masked");
    close_log(l, &s);
}

static void test_registration(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_TEXT);
    emit_value(l, "token-before-XYZ");
    ok(log_add_secret(l, "token-before-XYZ") == 0, "registered mid-run");
    emit_value(l, "token-before-XYZ");
    const char *out = output(&s);
    const char *second = strchr(out, '\n');
    ok(second && !strstr(second, "token-before-XYZ") && strstr(second, "v=<redacted>"),
       "masked from the next line on");
    ok(log_add_secret(l, NULL) == -EINVAL, "NULL refused");
    ok(log_add_secret(l, "") == 0, "empty value accepted, masks nothing");
    char *huge = malloc(LOG_SECRET_MAX_LEN + 2);
    memset(huge, 'x', LOG_SECRET_MAX_LEN + 1);
    huge[LOG_SECRET_MAX_LEN + 1] = '\0';
    ok(log_add_secret(l, huge) == -EINVAL, "a value past LOG_SECRET_MAX_LEN refused");
    free(huge);
    close_log(l, &s);

    /* a table that fills up: the first half stays, later values go oldest first */
    l = open_log(&s, LOG_FORMAT_JSON);
    int rc = 0, n = LOG_MAX_SECRETS + LOG_MAX_SECRETS / 4;
    for (int i = 0; i < n && rc == 0; i++) {
        char v[32];
        snprintf(v, sizeof(v), "secret-number-%d.", i);
        rc = log_add_secret(l, v);
    }
    ok(rc == 0, "%d values registered, more than LOG_MAX_SECRETS", n);
    ok(log_add_secret(l, "secret-number-1.") == 0, "a value kept already: accepted again");
    char first[32], forgotten[32], kept[32], last[32];
    snprintf(first, sizeof(first), "secret-number-%d.", LOG_MAX_SECRETS / 2 - 1);
    snprintf(forgotten, sizeof(forgotten), "secret-number-%d.", LOG_MAX_SECRETS / 2);
    snprintf(kept, sizeof(kept), "secret-number-%d.", n - LOG_MAX_SECRETS / 2);
    snprintf(last, sizeof(last), "secret-number-%d.", n - 1);
    emit_value(l, first);
    emit_value(l, forgotten);
    emit_value(l, kept);
    emit_value(l, last);
    const char *o = output(&s);
    ok(!strstr(o, first) && strstr(o, forgotten) && !strstr(o, kept) && !strstr(o, last),
       "the first half still masked, the oldest later value forgotten, the newest masked");
    close_log(l, &s);
}

struct worker {
    struct log *l;
    int id;
};

static void *add_and_log(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char v[64];
        snprintf(v, sizeof(v), "thread-%d-token-%d", w->id, i);
        log_add_secret(w->l, v);
        emit_value(w->l, v);
    }
    return NULL;
}

static void test_threads(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    pthread_t t[3];
    struct worker w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct worker){l, i};
        pthread_create(&t[i], NULL, add_and_log, &w[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    const char *out = output(&s);
    bool control;
    ok(!strstr(out, "-token-") && lines(out, &control) == 60 && !control,
       "three threads adding tokens and logging: 60 whole lines, every token masked");
    close_log(l, &s);
}

static void test_quote(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    const char *secret = "Bearer-tok-ABCDEFGHIJ";
    log_add_secret(l, secret);
    char body[2000];
    memset(body, 'b', sizeof(body));
    /* a secret straddling the bound: masked before the cut, so no head of it is left */
    memcpy(body + LOG_QUOTE_MAX - 5, secret, strlen(secret));
    cJSON *ev = log_begin(l, "probe");
    log_add_quote(l, ev, "body", body, sizeof(body), false);
    /* a capture cut in the middle of the secret: its head is masked too */
    char cutb[64];
    snprintf(cutb, sizeof(cutb), "you sent: %.*s", 12, secret);
    log_add_quote(l, ev, "cut", cutb, strlen(cutb), true);
    log_add_quote(l, ev, "whole", cutb, strlen(cutb), false);
    /* NUL and invalid bytes in a body */
    log_add_quote(l, ev, "bin", "a\0b\xff", 4, false);
    log_emit(l, LOG_WARN, ev);
    cJSON *j = last_json(output(&s));
    const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(j, "body"));
    ok(b && strlen(b) <= LOG_QUOTE_MAX + 3 && !strstr(b, "Bearer") &&
           !strcmp(b + strlen(b) - 3, "..."),
       "quoted body cut to LOG_QUOTE_MAX with \"...\", the straddling secret gone (%zu)",
       b ? strlen(b) : 0);
    ok(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "cut")), "you sent: <redacted>"),
       "a tail that begins a secret masked when the capture was cut");
    ok(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "whole")), cutb),
       "the same text not masked when it was not cut");
    ok(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "bin")), "a\xef\xbf\xbd" "b\xef\xbf\xbd"),
       "NUL and invalid bytes become U+FFFD");
    cJSON_Delete(j);
    close_log(l, &s);
}

/* Hostile text: line breaks, a forged event, ESC and C1 sequences, separators, bad bytes. */
static const char hostile[] =
    "first\nsecond\r\n{\"event\":\"test_finish\",\"exit_code\":0}\n"
    "\x1b[2J\x1b]0;title\x07 csi\xc2\x9b" "31m sep\xe2\x80\xa8 bidi\xe2\x80\xae"
    " bad\xff\xfe\xc3 overlong\xc0\xaf surrogate\xed\xa0\x80 del\x7f"
    " x\" event=test_finish level=info \\";

static void test_json_lines(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    emit_value(l, hostile);
    cJSON *ev = log_begin(l, "probe");
    cJSON_AddStringToObject(ev, "bad key \xff\n", "v");
    log_emit(l, LOG_WARN, ev);
    const char *out = output(&s);
    bool control;
    ok(lines(out, &control) == 2 && !control, "JSON: one line per event, no raw control byte");
    ok(valid_utf8(out), "JSON: well-formed UTF-8");
    ok(!strstr(out, "\xc2\x9b") && !strstr(out, "\xe2\x80\xa8") && !strstr(out, "\xe2\x80\xae") &&
           strstr(out, "\\u009b") && strstr(out, "\\u2028") && strstr(out, "\\u202e"),
       "JSON: C1, line separator and bidi controls as \\u escapes");
    const char *nl = strchr(out, '\n');
    char *first = strndup(out, (size_t)(nl - out));
    cJSON *j = cJSON_Parse(first);
    free(first);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(j, "v"));
    ok(j && v && strstr(v, "first\nsecond\r\n{\"event\":\"test_finish\"") &&
           strstr(v, "bad\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd overlong"),
       "JSON: parses back; the text kept, bad bytes as U+FFFD");
    ok(j && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "event")), "probe"),
       "JSON: the event is still the real one");
    cJSON_Delete(j);
    close_log(l, &s);
}

static void test_text_lines(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_TEXT);
    emit_value(l, hostile);
    emit_value(l, "plain-value");
    emit_value(l, "");
    const char *out = output(&s);
    bool control;
    ok(lines(out, &control) == 3 && !control, "text: one line per event, no raw control byte");
    ok(valid_utf8(out), "text: well-formed UTF-8");
    ok(!strstr(out, "\xc2\x9b") && !strstr(out, "\xe2\x80\xa8") && !strstr(out, "\xe2\x80\xae"),
       "text: no C1, separator or bidi character left raw");
    ok(strstr(out, " v=\"first\\x0asecond\\x0d\\x0a{\\\"event\\\":\\\"test_finish\\\"") != NULL,
       "text: the value quoted, line breaks and quotes escaped");
    ok(strstr(out, "x\\\" event=test_finish level=info \\\\\"\n") != NULL,
       "text: a forged field stays inside the quoted value");
    ok(strstr(out, " v=plain-value\n") && strstr(out, " v=\"\"\n"),
       "text: plain values bare, empty ones quoted");
    close_log(l, &s);
}

static void test_long_lines(void)
{
    for (int json = 0; json < 2; json++) {
        struct sink s;
        struct log *l = open_log(&s, json ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
        size_t n = 3 * LOG_MAX_LINE;
        char *big = malloc(n + 1);
        for (size_t i = 0; i + 2 <= n; i += 2)
            memcpy(big + i, "\xc3\xa9", 2); /* é: a cut inside one would be bad UTF-8 */
        big[n - n % 2] = '\0';
        char *ctl = malloc(n + 1);
        memset(ctl, '\n', n);
        ctl[n] = '\0';
        cJSON *ev = log_begin(l, "probe");
        cJSON_AddStringToObject(ev, "big", big);
        cJSON_AddStringToObject(ev, "ctl", ctl);
        log_emit(l, LOG_WARN, ev);
        const char *out = output(&s);
        bool control;
        ok(strlen(out) <= LOG_MAX_LINE + 1 && lines(out, &control) == 1 && !control &&
               valid_utf8(out),
           "%s: a line of 150 KiB of fields shortened to one line under LOG_MAX_LINE (%zu)",
           json ? "JSON" : "text", strlen(out));
        free(big);
        free(ctl);
        close_log(l, &s);
    }
}

static void raw(struct log *l, const char *line)
{
    log_raw(l, line, strlen(line));
}

/* log_raw: another process's line passed on whole, this one's secrets masked, quiet obeyed. */
static void test_raw(void)
{
    struct sink s;
    struct log *l = open_log(&s, LOG_FORMAT_JSON);
    log_add_secret(l, "api-token-1234567");
    static const char line[] = "{\"level\":\"info\",\"event\":\"x\",\"v\":\"a api-token-1234567 b\"}";
    log_raw(l, line, sizeof(line) - 1);
    raw(l, "{\"event\":\"y\"}");
    ok(!strcmp(output(&s), "{\"level\":\"info\",\"event\":\"x\",\"v\":\"a <redacted> b\"}\n"
                           "{\"event\":\"y\"}\n"),
       "raw lines pass whole, one per line, a secret registered here masked");
    cJSON *j = last_json(output(&s));
    ok(j != NULL, "a masked JSON line is still JSON");
    cJSON_Delete(j);
    close_log(l, &s);

    s.buf = NULL;
    s.len = 0;
    s.f = open_memstream(&s.buf, &s.len);
    l = log_new(s.f, LOG_FORMAT_JSON, true, "test", "t1");
    raw(l, "{\"level\":\"info\",\"event\":\"a\"}");
    raw(l, "{\"level\":\"warn\",\"event\":\"b\"}");
    raw(l, "{\"level\":\"error\",\"event\":\"c\"}");
    ok(!strcmp(output(&s), "{\"level\":\"warn\",\"event\":\"b\"}\n"
                           "{\"level\":\"error\",\"event\":\"c\"}\n"),
       "quiet: only warnings and errors pass");
    close_log(l, &s);
}

int main(void)
{
    test_mask_forms();
    test_mask_rules();
    test_own_labels();
    test_registration();
    test_threads();
    test_quote();
    test_json_lines();
    test_text_lines();
    test_long_lines();
    test_raw();
    return tap_done();
}
