/*
 * utf8: the one UTF-8 decoder shared by config (validation), rw (label
 * values) and log (lines), and the one escaper of text for messages and log
 * lines. Private to src/: not part of the API.
 */
#ifndef SYNCGATE_UTF8_H
#define SYNCGATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * Length of the well-formed UTF-8 sequence at s (at most avail bytes), or 0
 * when it is not one: overlong forms, surrogates and values past U+10FFFF
 * are refused. A NUL byte ends a sequence early, so a NUL-terminated string
 * is never read past its end even when avail is too large. The code point
 * goes to *cp when cp is not NULL and the sequence is well-formed.
 */
static inline size_t utf8_decode(const unsigned char *s, size_t avail, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > avail)
        return 0;
    unsigned v = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    if (cp)
        *cp = v;
    return len;
}

static inline size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    return utf8_decode(s, avail, NULL);
}

/*
 * Whether code point cp is one a terminal or a log viewer may act on rather
 * than show: C1 controls (U+0080..U+009F, U+009B is a CSI), the line and
 * paragraph separators U+2028/U+2029, and the bidirectional controls that
 * can reorder what a reader sees (U+061C, U+200E/F, U+202A..E, U+2066..9).
 */
static inline bool utf8_risky(unsigned cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x061c ||
           cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * The escaper's core: s (len bytes, any bytes, NUL included) into buf (n
 * bytes, n >= 1, always NUL-terminated) with '"' and '\\' backslash-escaped,
 * every byte of a control character (below 0x20, 0x7f), of a risky code
 * point (utf8_risky) or of a sequence that is not well-formed UTF-8 as \xNN,
 * other UTF-8 kept. Stops before the first character that starts at or after
 * cut bytes of input, or that does not fit whole. Returns the bytes written;
 * *used (may be NULL) gets the input bytes consumed.
 */
size_t utf8_escape_into(const char *s, size_t len, size_t cut, char *buf, size_t n, size_t *used);

/*
 * s (len bytes, any bytes) as well-formed UTF-8 into buf (n bytes, always
 * NUL-terminated): every byte that is not part of a well-formed sequence, and
 * every NUL, becomes U+FFFD; the rest is copied. n >= 3 * len + 1 always
 * suffices. Stops before a character that does not fit. Returns the bytes
 * written.
 */
size_t utf8_repair(const char *s, size_t len, char *buf, size_t n);

/* Whether s (len bytes) is well-formed UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

/*
 * A JSON text (s, NUL-terminated, well-formed UTF-8, where bytes above 0x7f
 * can only be inside strings) with every risky code point (utf8_risky) and
 * DEL (which JSON allows raw) written as a \uXXXX escape instead, into buf (n bytes, always
 * NUL-terminated; 3 * strlen(s) + 1 always suffices). Returns the bytes
 * written, or n when it did not fit.
 */
size_t utf8_json_escape_risky(const char *s, char *buf, size_t n);

/* Bytes of input utf8_escape shows before it cuts with "...". */
#define UTF8_ESCAPE_CUT 80

/*
 * s (len bytes, or up to a NUL) as one line of text in buf (n bytes, n > 10):
 * escaped as utf8_escape_into does, cut after UTF8_ESCAPE_CUT bytes of input
 * or when buf is full (with "..."); in double quotes when quoted. Returns buf.
 */
const char *utf8_escape(const char *s, size_t len, bool quoted, char *buf, size_t n);

#endif
