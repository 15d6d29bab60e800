/* utf8: text made safe for one-line messages. See utf8.h. */
#include "utf8.h"

#include <stdio.h>

const char *utf8_escape(const char *s, size_t len, bool quoted, char *buf, size_t n)
{
    size_t k = 0;
    if (quoted)
        buf[k++] = '"';
    /* room kept for the longest step (a \xNN or a 4-byte sequence), "..." and the quote */
    for (size_t i = 0, l; i < len && s[i] && k + 8 < n; i += l) {
        const unsigned char *u = (const unsigned char *)s + i;
        if (i >= UTF8_ESCAPE_CUT) {
            k += (size_t)snprintf(buf + k, n - k, "...");
            break;
        }
        l = utf8_seq_len(u, len - i);
        if (l > 1) {
            memcpy(buf + k, u, l);
            k += l;
            continue;
        }
        l = 1;
        if (*u == '"' || *u == '\\')
            k += (size_t)snprintf(buf + k, n - k, "\\%c", *u);
        else if (*u < 0x20 || *u >= 0x7f)
            k += (size_t)snprintf(buf + k, n - k, "\\x%02x", *u);
        else
            buf[k++] = (char)*u;
    }
    if (quoted)
        buf[k++] = '"';
    buf[k] = '\0';
    return buf;
}
