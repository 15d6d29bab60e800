/*
 * jsonpath: the JSON path subset of journey expectations and captures, and
 * a validating JSON scanner that evaluates paths on the raw response text
 * without building a tree or allocating.
 *
 * Path syntax: "$" followed by any number of
 *   .name        a member; name is letters, digits, '_' and '-'
 *   ['name']     a member with any other characters ("..." works too;
 *                \' \" \\ escape the quote and the backslash)
 *   [N]          an array element, N >= 0
 *   [-N]         an array element counted from the end ([-1] is the last)
 * Example: "$.items[0].id", "$['content-type']", "$.orders[-1]".
 * Nothing else (wildcards, filters, recursive descent): a path names at most
 * one value, which is what a check compares and a capture keeps.
 *
 * The scanner accepts RFC 8259 JSON (one value, optional surrounding
 * whitespace, strings in well-formed UTF-8 whose \u escapes pair their
 * surrogates, nesting at most JSON_MAX_NESTING).
 * Pure module: no I/O, no global state.
 */
#ifndef SYNCGATE_JSONPATH_H
#define SYNCGATE_JSONPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define JP_MAX_STEPS 16
#define JP_MAX_TEXT 512
#define JSON_MAX_NESTING 64

struct jp_step {
    const char *key; /* member name (into struct jpath's keys), NULL for an index */
    size_t key_len;
    long index; /* array index when key is NULL; negative counts from the end */
};

struct jpath {
    char *src; /* the path as written, owned */
    size_t n;
    struct jp_step step[JP_MAX_STEPS];
    char *keys; /* unescaped member names, owned */
};

/*
 * Parse src into p. Returns 0, or -EINVAL with a one-line reason in err, or
 * -ENOMEM. On failure p holds nothing to free.
 */
int jp_parse(struct jpath *p, const char *src, char *err, size_t errlen);
void jp_clear(struct jpath *p);
int jp_copy(struct jpath *dst, const struct jpath *src);

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

/* A value inside the caller's text: p points at its first byte (a string's quote). */
struct json_span {
    const char *p;
    size_t len;
    enum json_type type;
};

/* Whether text (len bytes) is one valid JSON value. */
bool json_valid(const char *text, size_t len);

/*
 * Find the value p names in text, which must be valid (json_valid). Returns 0
 * with *out set, or -ENOENT when a member or element on the way is missing
 * or a step meets the wrong type.
 */
int jp_find(const struct jpath *p, const char *text, size_t len, struct json_span *out);

/*
 * The value as text into out (cap bytes, NUL-terminated): a string's
 * content unescaped to UTF-8, anything else as its JSON text. Returns the
 * length, or -ENOSPC when it does not fit.
 */
ssize_t json_text(const struct json_span *v, char *out, size_t cap);

#endif
