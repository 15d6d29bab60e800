/*
 * utf8: the one UTF-8 decoder shared by config (validation) and rw (label
 * values), and the one escaper of text for messages. Private to src/: not
 * part of the API.
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
 * is never read past its end even when avail is too large.
 */
static inline size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
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
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Bytes of input utf8_escape shows before it cuts with "...". */
#define UTF8_ESCAPE_CUT 80

/*
 * s (len bytes, or up to a NUL) as one line of text in buf (n bytes, n > 10):
 * '"' and '\\' backslash-escaped, control characters and bytes that are not
 * well-formed UTF-8 as \xNN, well-formed UTF-8 kept, cut after
 * UTF8_ESCAPE_CUT bytes of input or when buf is full; in double quotes when
 * quoted. Returns buf.
 */
const char *utf8_escape(const char *s, size_t len, bool quoted, char *buf, size_t n);

#endif
