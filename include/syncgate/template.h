/*
 * template: the ${...} text templates of journey steps, parsed once and
 * expanded per request.
 *
 * A template is literal text with placeholders:
 *   ${name}               a value captured by an earlier step
 *   ${data.SET.COLUMN}    the column of the data row of the current iteration
 *   ${auth.token}         the OAuth2 access token
 *   ${env.NAME}           an environment variable (the profile must allow it)
 *   ${vu}, ${iteration}   the VU number (from 1) and its iteration (from 0)
 *   ${uuid}               a random version-4 UUID, new at every expansion
 *   ${random.int(A,B)}    a random integer in [A, B], new at every expansion
 * "$${" is a literal "${"; a "$" not followed by "{" is literal. Whitespace
 * inside the braces is not allowed: "${ name }" is an error, not a name.
 *
 * tpl_parse() checks the syntax only and records each placeholder with the
 * name it uses; what a name means (is the capture made before this step, does
 * the data file have that column, is the variable allowed) is the journey
 * compiler's business, which fills in the indices (struct tpl_seg a, b) that
 * expansion hands back to the caller's value function. Expansion encodes the
 * substituted values, never the literal text, for where the text goes: a JSON
 * string, a URL path or query, a header value.
 *
 * Pure module: no I/O, no global state; randomness comes from the caller's
 * state.
 */
#ifndef SYNCGATE_TEMPLATE_H
#define SYNCGATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TPL_MAX_TEXT 65536 /* bytes of template source */
#define TPL_MAX_SEGS 256   /* literal runs and placeholders in one template */
#define TPL_MAX_NAME 128   /* bytes of the name inside ${...} */

enum tpl_kind {
    TPL_LIT,       /* literal text: off, len into the template's text */
    TPL_CAPTURE,   /* ${name}: name = name */
    TPL_DATA,      /* ${data.SET.COL}: name = "SET", col = "COL" */
    TPL_AUTH,      /* ${auth.token} */
    TPL_ENV,       /* ${env.NAME}: name = NAME */
    TPL_VU,        /* ${vu} */
    TPL_ITERATION, /* ${iteration} */
    TPL_UUID,      /* ${uuid} */
    TPL_RANDOM,    /* ${random.int(lo,hi)} */
};

struct tpl_seg {
    enum tpl_kind kind;
    uint32_t off, len;         /* TPL_LIT: the text; else the whole "${...}" in the source */
    uint32_t name, name_len;   /* offset into the source of the name (CAPTURE, DATA set, ENV) */
    uint32_t col, col_len;     /* TPL_DATA: offset of the column name */
    int64_t lo, hi;            /* TPL_RANDOM bounds */
    int a, b;                  /* the compiler's indices (capture slot; data set and column) */
};

struct tpl {
    char *src; /* the source text, owned */
    size_t src_len;
    size_t nseg;
    struct tpl_seg *seg; /* owned */
    bool has_vars;       /* some placeholder: the text changes between expansions */
};

/*
 * Parse src (NUL-terminated) into t. Returns 0, or -EINVAL with a one-line
 * reason in err and the byte offset of the problem in *at, or -ENOMEM.
 * On failure t holds nothing to free.
 */
int tpl_parse(struct tpl *t, const char *src, char *err, size_t errlen, size_t *at);

/* A template of literal text only (no placeholder is recognised); 0 or -ENOMEM. */
int tpl_literal(struct tpl *t, const char *text);

/* Free what tpl_parse allocated; safe on a zeroed struct. */
void tpl_clear(struct tpl *t);

/* Deep copy; 0 or -ENOMEM. */
int tpl_copy(struct tpl *dst, const struct tpl *src);

/* Where the expanded text goes: how substituted values are encoded. */
enum tpl_enc {
    TPL_ENC_RAW,    /* as is */
    TPL_ENC_JSON,   /* escaped for inside a JSON string (no quotes added) */
    TPL_ENC_URL,    /* percent-encoded: everything but A-Z a-z 0-9 - . _ ~ */
    TPL_ENC_HEADER, /* as is, but a value with CR, LF or NUL fails the expansion */
};

/*
 * Values of one expansion. value() gives the text of a CAPTURE, DATA, AUTH or
 * ENV placeholder: it returns 0 and sets *p and *len (borrowed until the
 * expansion returns), or -ENOENT when the value does not exist (a capture the
 * iteration did not make). rng is the caller's xorshift state (never 0).
 */
struct tpl_values {
    int (*value)(void *ud, const struct tpl *t, const struct tpl_seg *s, const char **p,
                 size_t *len);
    void *ud;
    uint64_t vu, iteration;
    uint64_t *rng;
};

/*
 * Expand t into out (cap bytes, NUL-terminated), encoding substituted values
 * for enc. Returns the length, or -ENOENT (a value is missing: *missing gets
 * its segment), -ENOSPC (more than cap - 1 bytes), -EINVAL (a header value
 * with CR/LF/NUL).
 */
ssize_t tpl_expand(const struct tpl *t, enum tpl_enc enc, const struct tpl_values *v, char *out,
                   size_t cap, const struct tpl_seg **missing);

/* The next number of a xorshift64* generator; *state must not be 0. */
uint64_t tpl_rand(uint64_t *state);

/* A version-4 UUID from rng into out (37 bytes), lower-case hex. Returns out. */
char *tpl_uuid(uint64_t *rng, char out[37]);

#endif
