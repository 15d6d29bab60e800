/* template: ${...} placeholders, parsed once, expanded per request. */
#include "syncgate/template.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [A-Za-z_][A-Za-z0-9_]* (plus '-' when dash) over exactly n bytes. */
static bool ident(const char *s, size_t n, bool dash)
{
    if (n == 0 || !is_alpha(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]) && !(dash && s[i] == '-'))
            return false;
    return true;
}

static bool word(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* A decimal integer (optional '-') over exactly n bytes, within +-10^15. */
static bool integer(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = n > 0 && s[0] == '-';
    int64_t v = 0;
    if (neg)
        i++;
    if (i == n || n - i > 15)
        return false;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* Classify the name inside ${...} (name at src + off, n bytes) into s. */
static int classify(struct tpl_seg *s, const char *src, uint32_t off, uint32_t n, char *err,
                    size_t errlen, size_t *at)
{
    const char *p = src + off;
    const char *dot = memchr(p, '.', n);
    size_t head = dot ? (size_t)(dot - p) : n;

    *at = off;
    s->name = off;
    s->name_len = n;
    if (n == 0)
        return errbuf_fail(err, errlen, "empty placeholder \"${}\"");
    /* Spaces only inside a data column name ("${data.rows.product id}"), never at its ends. */
    const char *col = n > 5 && !memcmp(p, "data.", 5) ? memchr(p + 5, '.', n - 5) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        bool in_col = col && p + i > col + 1 && i + 1 < n;
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '{' || p[i] == '$' ||
            (p[i] == ' ' && !in_col))
            return errbuf_fail(err, errlen,
                               "placeholder \"${%.*s}\": no spaces, control characters, '{' or '$' "
                               "inside ${...}",
                               (int)(n > 64 ? 64 : n), p);
    }
    if (n > TPL_MAX_NAME)
        return errbuf_fail(err, errlen, "placeholder longer than %d bytes", TPL_MAX_NAME);
    if (!dot) {
        if (word(p, n, "vu"))
            s->kind = TPL_VU;
        else if (word(p, n, "iteration"))
            s->kind = TPL_ITERATION;
        else if (word(p, n, "uuid"))
            s->kind = TPL_UUID;
        else if (ident(p, n, false))
            s->kind = TPL_CAPTURE;
        else
            return errbuf_fail(
                err, errlen,
                "placeholder \"${%.*s}\": a capture name is letters, digits and '_', "
                "not starting with a digit",
                (int)n, p);
        return 0;
    }
    const char *rest = dot + 1;
    size_t rn = n - head - 1;
    if (word(p, head, "auth")) {
        if (!word(rest, rn, "token"))
            return errbuf_fail(err, errlen,
                               "placeholder \"${%.*s}\": the only auth value is "
                               "${auth.token}",
                               (int)n, p);
        s->kind = TPL_AUTH;
        return 0;
    }
    if (word(p, head, "env")) {
        if (!ident(rest, rn, false))
            return errbuf_fail(
                err, errlen,
                "placeholder \"${%.*s}\": expected ${env.NAME} with NAME an environment "
                "variable name",
                (int)n, p);
        s->kind = TPL_ENV;
        s->name = (uint32_t)(rest - src);
        s->name_len = (uint32_t)rn;
        return 0;
    }
    if (word(p, head, "data")) {
        const char *dot2 = memchr(rest, '.', rn);
        size_t sn = dot2 ? (size_t)(dot2 - rest) : rn;
        if (!dot2 || !ident(rest, sn, true) || sn + 1 == rn)
            return errbuf_fail(err, errlen, "placeholder \"${%.*s}\": expected ${data.SET.COLUMN}",
                               (int)n, p);
        s->kind = TPL_DATA;
        s->name = (uint32_t)(rest - src);
        s->name_len = (uint32_t)sn;
        s->col = (uint32_t)(dot2 + 1 - src);
        s->col_len = (uint32_t)(rn - sn - 1);
        return 0;
    }
    if (word(p, head, "random")) {
        const char *open = memchr(rest, '(', rn);
        const char *comma = open ? memchr(open, ',', (size_t)(rest + rn - open)) : NULL;
        if (!open || !word(rest, (size_t)(open - rest), "int") || !comma || rest[rn - 1] != ')' ||
            !integer(open + 1, (size_t)(comma - open - 1), &s->lo) ||
            !integer(comma + 1, (size_t)(rest + rn - 1 - comma - 1), &s->hi))
            return errbuf_fail(err, errlen,
                               "placeholder \"${%.*s}\": expected ${random.int(A,B)} with A and B "
                               "integers",
                               (int)n, p);
        if (s->lo > s->hi)
            return errbuf_fail(err, errlen,
                               "placeholder \"${%.*s}\": %" PRId64 " is above %" PRId64, (int)n, p,
                               s->lo, s->hi);
        s->kind = TPL_RANDOM;
        return 0;
    }
    return errbuf_fail(
        err, errlen,
        "unknown placeholder \"${%.*s}\"; known: ${NAME} (a capture), ${data.SET.COLUMN}, "
        "${auth.token}, ${env.NAME}, ${vu}, ${iteration}, ${uuid}, ${random.int(A,B)}",
        (int)(n > 64 ? 64 : n), p);
}

static int push(struct tpl *t, size_t *cap, const struct tpl_seg *s)
{
    if (t->nseg == TPL_MAX_SEGS)
        return -E2BIG;
    if (t->nseg == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        struct tpl_seg *n = realloc(t->seg, nc * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->seg = n;
        *cap = nc;
    }
    t->seg[t->nseg++] = *s;
    return 0;
}

int tpl_parse(struct tpl *t, const char *src, char *err, size_t errlen, size_t *at)
{
    size_t len = strlen(src), cap = 0, lit = 0, i = 0, dummy;
    int rc = 0;

    if (!at)
        at = &dummy;
    *at = 0;
    memset(t, 0, sizeof(*t));
    if (len > TPL_MAX_TEXT)
        return errbuf_fail(err, errlen, "template longer than %d bytes", TPL_MAX_TEXT);
    if (!(t->src = malloc(len + 1)))
        return -ENOMEM;
    memcpy(t->src, src, len + 1);
    t->src_len = len;

    while (rc == 0 && i < len) {
        bool escaped = src[i] == '$' && i + 2 < len && src[i + 1] == '$' && src[i + 2] == '{';
        bool open = src[i] == '$' && i + 1 < len && src[i + 1] == '{';
        if (!escaped && !open) {
            i++;
            continue;
        }
        if (i > lit)
            rc = push(t, &cap,
                      &(struct tpl_seg){
                          .kind = TPL_LIT, .off = (uint32_t)lit, .len = (uint32_t)(i - lit)});
        if (escaped) {
            lit = i + 1; /* the second '$' and the '{' stay literal */
            i += 3;
            continue;
        }
        const char *close = memchr(src + i + 2, '}', len - i - 2);
        if (!close) {
            *at = i;
            rc = errbuf_fail(err, errlen,
                             "\"${\" without a closing '}' (write $${ for a literal ${)");
            break;
        }
        struct tpl_seg s = {.off = (uint32_t)i, .len = (uint32_t)(close - src - i + 1)};
        rc = classify(&s, src, (uint32_t)(i + 2), (uint32_t)(close - src - i - 2), err, errlen, at);
        if (rc == 0)
            rc = push(t, &cap, &s);
        t->has_vars = true;
        i = (size_t)(close - src) + 1;
        lit = i;
    }
    if (rc == 0 && len > lit)
        rc = push(
            t, &cap,
            &(struct tpl_seg){.kind = TPL_LIT, .off = (uint32_t)lit, .len = (uint32_t)(len - lit)});
    if (rc == -E2BIG)
        rc = errbuf_fail(err, errlen, "more than %d parts in one template", TPL_MAX_SEGS);
    if (rc < 0)
        tpl_clear(t);
    return rc;
}

int tpl_literal(struct tpl *t, const char *text)
{
    size_t len = strlen(text);
    memset(t, 0, sizeof(*t));
    t->src = strdup(text);
    t->seg = malloc(sizeof(*t->seg));
    if (!t->src || !t->seg) {
        tpl_clear(t);
        return -ENOMEM;
    }
    t->src_len = len;
    if (len) {
        t->seg[0] = (struct tpl_seg){.kind = TPL_LIT, .off = 0, .len = (uint32_t)len};
        t->nseg = 1;
    }
    return 0;
}

void tpl_clear(struct tpl *t)
{
    free(t->src);
    free(t->seg);
    memset(t, 0, sizeof(*t));
}

int tpl_copy(struct tpl *dst, const struct tpl *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->src = malloc(src->src_len + 1);
    dst->seg = malloc((src->nseg ? src->nseg : 1) * sizeof(*dst->seg));
    if (!dst->src || !dst->seg) {
        tpl_clear(dst);
        return -ENOMEM;
    }
    memcpy(dst->src, src->src, src->src_len + 1);
    if (src->nseg)
        memcpy(dst->seg, src->seg, src->nseg * sizeof(*dst->seg));
    dst->src_len = src->src_len;
    dst->nseg = src->nseg;
    dst->has_vars = src->has_vars;
    return 0;
}

uint64_t tpl_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

char *tpl_uuid(uint64_t *rng, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t r0 = tpl_rand(rng), r1 = tpl_rand(rng);
    memcpy(b, &r0, 8);
    memcpy(b + 8, &r1, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return out;
}

/* Output cursor: writes while there is room, always counts. */
struct out {
    char *p;
    size_t cap, len;
    bool bad; /* a header value held CR, LF or NUL */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n < o->cap)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_encoded(struct out *o, enum tpl_enc enc, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[8];
    size_t run = 0; /* bytes of s[run..i) still to copy as they are */

    if (enc == TPL_ENC_RAW) {
        put(o, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t k = 0;
        switch (enc) {
        case TPL_ENC_JSON:
            if (c == '"' || c == '\\') {
                buf[0] = '\\';
                buf[1] = (char)c;
                k = 2;
            } else if (c < 0x20) {
                k = (size_t)snprintf(buf, sizeof(buf), "\\u%04x", c);
            }
            break;
        case TPL_ENC_URL:
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~')) {
                buf[0] = '%';
                buf[1] = hex[c >> 4];
                buf[2] = hex[c & 15];
                k = 3;
            }
            break;
        case TPL_ENC_HEADER:
            if (c == '\r' || c == '\n' || c == '\0')
                o->bad = true;
            break;
        case TPL_ENC_RAW:
            break;
        }
        if (!k)
            continue;
        put(o, s + run, i - run);
        put(o, buf, k);
        run = i + 1;
    }
    put(o, s + run, n - run);
}

ssize_t tpl_expand(const struct tpl *t, enum tpl_enc enc, const struct tpl_values *v, char *out,
                   size_t cap, const struct tpl_seg **missing)
{
    struct out o = {out, cap, 0, false};
    char num[40];

    for (size_t i = 0; i < t->nseg; i++) {
        const struct tpl_seg *s = &t->seg[i];
        const char *p = num;
        size_t n = 0;
        switch (s->kind) {
        case TPL_LIT:
            /* literal text is checked like values: a header line stays one line */
            if (enc == TPL_ENC_HEADER)
                put_encoded(&o, enc, t->src + s->off, s->len);
            else
                put(&o, t->src + s->off, s->len);
            continue;
        case TPL_VU:
            n = (size_t)snprintf(num, sizeof(num), "%" PRIu64, v->vu);
            break;
        case TPL_ITERATION:
            n = (size_t)snprintf(num, sizeof(num), "%" PRIu64, v->iteration);
            break;
        case TPL_UUID:
            tpl_uuid(v->rng, num);
            n = 36;
            break;
        case TPL_RANDOM: {
            uint64_t span = (uint64_t)(s->hi - s->lo) + 1;
            int64_t r = s->lo + (int64_t)(tpl_rand(v->rng) % span);
            n = (size_t)snprintf(num, sizeof(num), "%" PRId64, r);
            break;
        }
        case TPL_CAPTURE:
        case TPL_DATA:
        case TPL_AUTH:
        case TPL_ENV:
            if (!v->value || v->value(v->ud, t, s, &p, &n) < 0) {
                if (missing)
                    *missing = s;
                return -ENOENT;
            }
            break;
        }
        put_encoded(&o, enc, p, n);
    }
    if (o.bad)
        return -EINVAL;
    if (o.len >= cap)
        return -ENOSPC;
    out[o.len] = '\0';
    return (ssize_t)o.len;
}
