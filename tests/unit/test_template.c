/* Unit tests for template: parsing, errors, expansion and its encodings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/template.h"
#include "tap.h"

static void bad(const char *src, const char *want)
{
    struct tpl t;
    char err[512] = "";
    size_t at = 0;
    int rc = tpl_parse(&t, src, err, sizeof(err), &at);
    ok(rc == -EINVAL && strstr(err, want) != NULL, "\"%s\" is refused with \"%s\" (rc %d: %s)",
       src, want, rc, err);
}

/* Values: captures "order_id" = o17 and "q" = a"b, data col "id" = p/3, token abc. */
static int value(void *ud, const struct tpl *t, const struct tpl_seg *s, const char **p,
                 size_t *len)
{
    (void)ud;
    const char *name = t->src + s->name;
    if (s->kind == TPL_CAPTURE && s->name_len == 8 && !memcmp(name, "order_id", 8))
        *p = "o17";
    else if (s->kind == TPL_CAPTURE && s->name_len == 1 && name[0] == 'q')
        *p = "a\"b\n";
    else if (s->kind == TPL_DATA)
        *p = "p/3 x";
    else if (s->kind == TPL_AUTH)
        *p = "abc";
    else if (s->kind == TPL_ENV)
        *p = "line\r\nX-Evil: 1";
    else
        return -ENOENT;
    *len = strlen(*p);
    return 0;
}

static void expand(const char *src, enum tpl_enc enc, const char *want)
{
    struct tpl t;
    char err[256], out[256];
    uint64_t rng = 42;
    struct tpl_values v = {value, NULL, 3, 7, &rng};
    int rc = tpl_parse(&t, src, err, sizeof(err), NULL);
    ssize_t n = rc == 0 ? tpl_expand(&t, enc, &v, out, sizeof(out), NULL) : rc;
    ok(n >= 0 && strcmp(out, want) == 0 && (size_t)n == strlen(want),
       "expand \"%s\" = \"%s\" (got %zd \"%s\" %s)", src, want, n, n >= 0 ? out : "", rc ? err : "");
    tpl_clear(&t);
}

int main(void)
{
    struct tpl t;
    char err[256], out[64];
    uint64_t rng = 1;

    /* parsing: segments and kinds */
    ok(tpl_parse(&t, "/api/orders/${order_id}?x=${data.products.product id}", err, sizeof(err),
                 NULL) == 0,
       "parse a path with a capture and a data column");
    ok(t.nseg == 4 && t.seg[0].kind == TPL_LIT && t.seg[1].kind == TPL_CAPTURE &&
           t.seg[2].kind == TPL_LIT && t.seg[3].kind == TPL_DATA && t.has_vars,
       "four segments: literal, capture, literal, data");
    ok(t.seg[3].name_len == 8 && !memcmp(t.src + t.seg[3].name, "products", 8) &&
           t.seg[3].col_len == 10 && !memcmp(t.src + t.seg[3].col, "product id", 10),
       "data set and column names located");
    tpl_clear(&t);
    ok(tpl_parse(&t, "plain text, $5 and $ alone", err, sizeof(err), NULL) == 0 && t.nseg == 1 &&
           !t.has_vars,
       "no placeholder: one literal, has_vars false");
    tpl_clear(&t);
    ok(tpl_parse(&t, "", err, sizeof(err), NULL) == 0 && t.nseg == 0, "empty template");
    tpl_clear(&t);
    ok(tpl_parse(&t, "${random.int(-5,5)}${uuid}${vu}${iteration}${auth.token}${env.HOME}", err,
                 sizeof(err), NULL) == 0 &&
           t.nseg == 6 && t.seg[0].kind == TPL_RANDOM && t.seg[0].lo == -5 && t.seg[0].hi == 5 &&
           t.seg[1].kind == TPL_UUID && t.seg[2].kind == TPL_VU &&
           t.seg[3].kind == TPL_ITERATION && t.seg[4].kind == TPL_AUTH &&
           t.seg[5].kind == TPL_ENV && t.seg[5].name_len == 4,
       "every built-in placeholder");
    tpl_clear(&t);

    /* errors */
    bad("${", "without a closing");
    bad("/a/${order_id", "without a closing");
    bad("${}", "empty placeholder");
    bad("${ order_id }", "no spaces");
    bad("${1abc}", "capture name");
    bad("${order-id}", "capture name");
    bad("${auth.secret}", "only auth value");
    bad("${env.}", "env.NAME");
    bad("${env.A-B}", "env.NAME");
    bad("${data.products}", "data.SET.COLUMN");
    bad("${data.products.}", "data.SET.COLUMN");
    bad("${data..id}", "data.SET.COLUMN");
    bad("${random.int(5,1)}", "above");
    bad("${random.int(a,b)}", "random.int(A,B)");
    bad("${random.int(1)}", "random.int(A,B)");
    bad("${random.float(1,2)}", "random.int(A,B)");
    bad("${foo.bar}", "unknown placeholder");
    bad("${a${b}}", "no spaces");
    {
        size_t at = 0;
        ok(tpl_parse(&t, "abc${x y}", err, sizeof(err), &at) == -EINVAL && at == 5,
           "the error offset points at the name (got %zu)", at);
    }

    /* expansion and encodings */
    expand("/api/orders/${order_id}", TPL_ENC_URL, "/api/orders/o17");
    expand("/p/${data.products.id}", TPL_ENC_URL, "/p/p%2F3%20x");
    expand("{\"q\": \"${q}\"}", TPL_ENC_JSON, "{\"q\": \"a\\\"b\\u000a\"}");
    expand("Bearer ${auth.token}", TPL_ENC_HEADER, "Bearer abc");
    expand("$${literal} ${vu}/${iteration}", TPL_ENC_RAW, "${literal} 3/7");
    expand("$$x", TPL_ENC_RAW, "$$x");
    {
        struct tpl_values v = {value, NULL, 1, 0, &rng};
        ok(tpl_parse(&t, "${env.X}", err, sizeof(err), NULL) == 0 &&
               tpl_expand(&t, TPL_ENC_HEADER, &v, out, sizeof(out), NULL) == -EINVAL,
           "a header value with CR/LF fails the expansion");
        tpl_clear(&t);
        const struct tpl_seg *miss = NULL;
        ok(tpl_parse(&t, "/x/${nope}", err, sizeof(err), NULL) == 0 &&
               tpl_expand(&t, TPL_ENC_URL, &v, out, sizeof(out), &miss) == -ENOENT && miss &&
               miss->kind == TPL_CAPTURE,
           "a missing capture: -ENOENT and its segment");
        tpl_clear(&t);
        ok(tpl_parse(&t, "0123456789${order_id}", err, sizeof(err), NULL) == 0 &&
               tpl_expand(&t, TPL_ENC_RAW, &v, out, 12, NULL) == -ENOSPC &&
               tpl_expand(&t, TPL_ENC_RAW, &v, out, 14, NULL) == 13,
           "-ENOSPC when the text does not fit, exact fit with the NUL works");
        tpl_clear(&t);

        bool in_range = true, saw_lo = false, saw_hi = false;
        ok(tpl_parse(&t, "${random.int(-2,3)}", err, sizeof(err), NULL) == 0, "parse random");
        for (int i = 0; i < 2000; i++) {
            tpl_expand(&t, TPL_ENC_RAW, &v, out, sizeof(out), NULL);
            long n = strtol(out, NULL, 10);
            in_range &= n >= -2 && n <= 3;
            saw_lo |= n == -2;
            saw_hi |= n == 3;
        }
        ok(in_range && saw_lo && saw_hi, "random.int(-2,3) stays in range and reaches both ends");
        tpl_clear(&t);
        char a[37], b[37];
        tpl_uuid(&rng, a);
        tpl_uuid(&rng, b);
        ok(strlen(a) == 36 && a[14] == '4' && strchr("89ab", a[19]) && a[8] == '-' &&
               strcmp(a, b) != 0,
           "uuid: version 4, variant bits, dashes, a new one each time (%s)", a);
    }
    return tap_done();
}
