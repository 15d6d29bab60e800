/* utf8: text made safe for one-line messages and log lines. See utf8.h. */
#include "utf8.h"

#include <stdio.h>

size_t utf8_escape_into(const char *s, size_t len, size_t cut, char *buf, size_t n, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0, i = 0;
    while (i < len && i < cut) {
        const unsigned char *u = (const unsigned char *)s + i;
        unsigned cp = 0;
        size_t l = utf8_decode(u, len - i, &cp);
        /* a NUL, a control, a risky character or a byte that starts no character */
        bool esc = l == 0 || cp < 0x20 || cp == 0x7f || utf8_risky(cp);
        size_t step = l ? l : 1;
        size_t need = esc ? 4 * step : (*u == '"' || *u == '\\') ? 2 : step;
        if (k + need >= n)
            break;
        if (esc) {
            for (size_t j = 0; j < step; j++) {
                buf[k++] = '\\';
                buf[k++] = 'x';
                buf[k++] = hex[u[j] >> 4];
                buf[k++] = hex[u[j] & 0xf];
            }
        } else if (*u == '"' || *u == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)*u;
        } else {
            memcpy(buf + k, u, step);
            k += step;
        }
        i += step;
    }
    if (n)
        buf[k] = '\0';
    if (used)
        *used = i;
    return k;
}

const char *utf8_escape(const char *s, size_t len, bool quoted, char *buf, size_t n)
{
    size_t k = 0, used;
    len = strnlen(s, len);
    if (quoted)
        buf[k++] = '"';
    /* room kept for "...", the closing quote and the NUL */
    k += utf8_escape_into(s, len, UTF8_ESCAPE_CUT, buf + k, n - k - 5, &used);
    if (used < len)
        k += (size_t)snprintf(buf + k, n - k, "...");
    if (quoted)
        buf[k++] = '"';
    buf[k] = '\0';
    return buf;
}

size_t utf8_repair(const char *s, size_t len, char *buf, size_t n)
{
    size_t k = 0;
    for (size_t i = 0, l; i < len; i += l) {
        const unsigned char *u = (const unsigned char *)s + i;
        l = *u ? utf8_seq_len(u, len - i) : 0;
        const char *out = l ? (const char *)u : "\xef\xbf\xbd";
        size_t olen = l ? l : 3;
        if (!l)
            l = 1;
        if (k + olen >= n)
            break;
        memcpy(buf + k, out, olen);
        k += olen;
    }
    if (n)
        buf[k] = '\0';
    return k;
}

bool utf8_valid(const char *s, size_t len)
{
    for (size_t i = 0, l; i < len; i += l)
        if (!s[i] || !(l = utf8_seq_len((const unsigned char *)s + i, len - i)))
            return false;
    return true;
}

size_t utf8_json_escape_risky(const char *s, char *buf, size_t n)
{
    size_t k = 0, len = strlen(s);
    for (size_t i = 0, l; i < len; i += l) {
        const unsigned char *u = (const unsigned char *)s + i;
        unsigned cp = 0;
        l = utf8_decode(u, len - i, &cp);
        if (!l)
            l = 1; /* not expected in a JSON text from a repaired tree: copied as is */
        if ((l > 1 && utf8_risky(cp)) || cp == 0x7f) {
            if (k + 6 >= n)
                return n;
            k += (size_t)snprintf(buf + k, n - k, "\\u%04x", cp);
        } else {
            if (k + l >= n)
                return n;
            memcpy(buf + k, u, l);
            k += l;
        }
    }
    buf[k] = '\0';
    return k;
}
