/* jsonpath: a small JSON path subset and a validating scanner over raw text. */
#include "syncgate/jsonpath.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "errbuf.h"

/* ---- paths ---------------------------------------------------------------- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

int jp_parse(struct jpath *p, const char *src, char *err, size_t errlen)
{
    size_t len = strlen(src), kl = 0;
    size_t i = 1;

    memset(p, 0, sizeof(*p));
    if (len == 0 || src[0] != '$')
        return errbuf_fail(err, errlen, "JSON path \"%.64s\" must start with '$'", src);
    if (len > JP_MAX_TEXT)
        return errbuf_fail(err, errlen, "JSON path longer than %d bytes", JP_MAX_TEXT);
    p->src = strdup(src);
    p->keys = malloc(len + 1); /* unescaped names are never longer than the source */
    if (!p->src || !p->keys) {
        jp_clear(p);
        return -ENOMEM;
    }
    while (i < len) {
        struct jp_step *st = &p->step[p->n];
        if (p->n == JP_MAX_STEPS) {
            jp_clear(p);
            return errbuf_fail(err, errlen, "JSON path \"%.64s\": more than %d steps", src,
                               JP_MAX_STEPS);
        }
        if (src[i] == '.') {
            size_t j = i + 1;
            while (j < len && name_char(src[j]))
                j++;
            if (j == i + 1) {
                jp_clear(p);
                return errbuf_fail(
                    err, errlen,
                    "JSON path \"%.64s\": expected a member name after '.' at byte %zu "
                    "(use ['...'] for other characters)",
                    src, i + 1);
            }
            st->key = p->keys + kl;
            st->key_len = j - i - 1;
            memcpy(p->keys + kl, src + i + 1, st->key_len);
            kl += st->key_len;
            p->n++;
            i = j;
            continue;
        }
        if (src[i] != '[') {
            jp_clear(p);
            return errbuf_fail(err, errlen, "JSON path \"%.64s\": unexpected '%c' at byte %zu", src,
                               src[i], i);
        }
        i++;
        if (i < len && (src[i] == '\'' || src[i] == '"')) {
            char q = src[i++];
            st->key = p->keys + kl;
            while (i < len && src[i] != q) {
                if (src[i] == '\\' && i + 1 < len && (src[i + 1] == q || src[i + 1] == '\\'))
                    i++;
                p->keys[kl++] = src[i++];
            }
            st->key_len = (size_t)(p->keys + kl - st->key);
            if (i + 1 >= len || src[i + 1] != ']') {
                jp_clear(p);
                return errbuf_fail(err, errlen, "JSON path \"%.64s\": unclosed [%c...%c]", src, q,
                                   q);
            }
            i += 2;
            p->n++;
            continue;
        }
        bool neg = i < len && src[i] == '-';
        size_t j = i + neg;
        long v = 0;
        while (j < len && src[j] >= '0' && src[j] <= '9' && v < 100000000)
            v = v * 10 + (src[j++] - '0');
        if (j == i + neg || j >= len || src[j] != ']' || (neg && v == 0)) {
            jp_clear(p);
            return errbuf_fail(err, errlen,
                               "JSON path \"%.64s\": expected [N], [-N] or ['name'] at byte %zu",
                               src, i - 1);
        }
        st->key = NULL;
        st->index = neg ? -v : v;
        p->n++;
        i = j + 1;
    }
    return 0;
}

void jp_clear(struct jpath *p)
{
    free(p->src);
    free(p->keys);
    memset(p, 0, sizeof(*p));
}

int jp_copy(struct jpath *dst, const struct jpath *src)
{
    char err[8];
    if (!src->src) {
        memset(dst, 0, sizeof(*dst));
        return 0;
    }
    int rc = jp_parse(dst, src->src, err, sizeof(err));
    return rc == -EINVAL ? -ENOMEM : rc; /* it parsed once: only memory can fail */
}

/* ---- scanning ------------------------------------------------------------- */

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Past the string starting at p (its opening quote), or NULL when malformed. */
static const char *skip_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (end - p < 2)
                return NULL;
            char e = p[1];
            if (e == 'u') {
                long cp = end - p < 6 ? -1 : hex4(p + 2);
                if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                    return NULL; /* a low surrogate alone is no character */
                p += 6;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    /* a high surrogate must be followed by a low one */
                    long lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return NULL;
                    p += 6;
                }
            } else if (strchr("\"\\/bfnrt", e) && e) {
                p += 2;
            } else {
                return NULL;
            }
            continue;
        }
        size_t n = utf8_seq_len((const unsigned char *)p, (size_t)(end - p));
        if (n == 0)
            return NULL;
        p += n;
    }
    return NULL;
}

static const char *skip_digits(const char *p, const char *end)
{
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p;
}

static const char *skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        p = skip_digits(p, end);
    else
        return NULL;
    if (p < end && *p == '.') {
        const char *q = skip_digits(p + 1, end);
        if (q == p + 1)
            return NULL;
        p = q;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *q = skip_digits(p, end);
        if (q == p)
            return NULL;
        p = q;
    }
    return p;
}

static const char *skip_word(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

static enum json_type type_at(const char *p)
{
    switch (*p) {
    case '"':
        return JSON_STRING;
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    default:
        return JSON_NUMBER;
    }
}

/* Past the value at p (no leading whitespace), or NULL when malformed. */
static const char *skip_value(const char *p, const char *end, int depth)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"':
        return skip_string(p, end);
    case 't':
        return skip_word(p, end, "true");
    case 'f':
        return skip_word(p, end, "false");
    case 'n':
        return skip_word(p, end, "null");
    case '[':
    case '{': {
        bool obj = *p == '{';
        char close = obj ? '}' : ']';
        if (depth >= JSON_MAX_NESTING)
            return NULL;
        p = ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (p >= end || *p != '"' || !(p = skip_string(p, end)))
                    return NULL;
                p = ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = ws(p + 1, end);
            }
            if (!(p = skip_value(p, end, depth + 1)))
                return NULL;
            p = ws(p, end);
            if (p < end && *p == ',') {
                p = ws(p + 1, end);
                continue;
            }
            return p < end && *p == close ? p + 1 : NULL;
        }
    }
    default:
        return skip_number(p, end);
    }
}

bool json_valid(const char *text, size_t len)
{
    const char *end = text + len;
    const char *p = skip_value(ws(text, end), end, 0);
    return p && ws(p, end) == end;
}

/* Append code point cp as UTF-8 to out at *n (cap bytes); false when it does not fit. */
static bool put_utf8(char *out, size_t cap, size_t *n, unsigned long cp)
{
    unsigned char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    if (*n + k >= cap)
        return false;
    memcpy(out + *n, b, k);
    *n += k;
    return true;
}

/* Unescape the valid string token at p (len bytes with quotes) into out. */
static ssize_t unescape(const char *p, size_t len, char *out, size_t cap)
{
    const char *end = p + len - 1;
    size_t n = 0;
    for (p++; p < end; p++) {
        unsigned long cp;
        if (*p != '\\') {
            if (n + 1 >= cap)
                return -ENOSPC;
            out[n++] = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            cp = (unsigned long)hex4(p + 1);
            p += 4;
            /* a high surrogate followed by a low one is one code point */
            if (cp >= 0xd800 && cp <= 0xdbff && end - p > 6 && p[1] == '\\' && p[2] == 'u') {
                long lo = hex4(p + 3);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (unsigned long)(lo - 0xdc00);
                    p += 6;
                }
            }
            break;
        default:
            cp = (unsigned char)*p;
            break; /* \" \\ \/ */
        }
        if (!put_utf8(out, cap, &n, cp))
            return -ENOSPC;
    }
    if (cap == 0)
        return -ENOSPC;
    out[n] = '\0';
    return (ssize_t)n;
}

ssize_t json_text(const struct json_span *v, char *out, size_t cap)
{
    if (v->type == JSON_STRING)
        return unescape(v->p, v->len, out, cap);
    if (v->len >= cap)
        return -ENOSPC;
    memcpy(out, v->p, v->len);
    out[v->len] = '\0';
    return (ssize_t)v->len;
}

/* Whether the string token at p (len with quotes) holds exactly key. */
static bool key_is(const char *p, size_t len, const char *key, size_t klen)
{
    char buf[JP_MAX_TEXT + 8];
    if (!memchr(p, '\\', len))
        return len == klen + 2 && memcmp(p + 1, key, klen) == 0;
    ssize_t n = unescape(p, len, buf, sizeof(buf));
    return n >= 0 && (size_t)n == klen && memcmp(buf, key, klen) == 0;
}

/* Count the elements of the valid array at p. */
static long array_len(const char *p, const char *end)
{
    long n = 0;
    p = ws(p + 1, end);
    if (*p == ']')
        return 0;
    for (;;) {
        p = ws(skip_value(p, end, 0), end);
        n++;
        if (*p != ',')
            return n;
        p = ws(p + 1, end);
    }
}

int jp_find(const struct jpath *path, const char *text, size_t len, struct json_span *out)
{
    const char *end = text + len;
    const char *p = ws(text, end);

    for (size_t s = 0; s < path->n; s++) {
        const struct jp_step *st = &path->step[s];
        bool found = false;
        if (st->key) {
            if (*p != '{')
                return -ENOENT;
            p = ws(p + 1, end);
            while (*p == '"') {
                const char *k = p;
                p = skip_string(p, end);
                bool hit = key_is(k, (size_t)(p - k), st->key, st->key_len);
                p = ws(ws(p, end) + 1, end); /* past ':' */
                if (hit) {
                    found = true;
                    break;
                }
                p = ws(skip_value(p, end, 0), end);
                if (*p != ',')
                    break;
                p = ws(p + 1, end);
            }
        } else {
            if (*p != '[')
                return -ENOENT;
            long want = st->index;
            if (want < 0)
                want += array_len(p, end);
            p = ws(p + 1, end);
            for (long i = 0; want >= 0 && *p != ']'; i++) {
                if (i == want) {
                    found = true;
                    break;
                }
                p = ws(skip_value(p, end, 0), end);
                if (*p != ',')
                    break;
                p = ws(p + 1, end);
            }
        }
        if (!found)
            return -ENOENT;
    }
    out->p = p;
    out->len = (size_t)(skip_value(p, end, 0) - p);
    out->type = type_at(p);
    return 0;
}
