/*
 * Fuzz target: response header lines a gateway sends during smoke, as the
 * header callback sees them (smoke_capture_header). Input lines are header
 * lines (their '\n' kept); the first byte picks the capture buffer size. The
 * buffer must stay terminated, in bounds, free of NUL bytes (what log_add_quote
 * gets is a string), and hold exactly what was reported kept.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "syncgate/smoke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = data[0] == 0xff ? 1024 : data[0];
    data++, size--;
    char *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    if (n)
        buf[0] = '\0';
    size_t used = 0;
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        /* An exact copy: a read past the line is caught by ASan. */
        char *line = malloc(len ? len : 1);
        if (!line)
            break;
        memcpy(line, p, len);
        size_t before = used;
        bool kept = smoke_capture_header(buf, n, &used, line, len);
        FUZZ_CHECK(kept ? used > before : used == before, "kept %d, used %zu -> %zu", kept, before,
                   used);
        FUZZ_CHECK(used <= len + before + 2, "grew by %zu for a %zu-byte line", used - before, len);
        if (n) {
            FUZZ_CHECK(used < n && buf[used] == '\0' && strlen(buf) == used,
                       "used %zu, strlen %zu, size %zu", used, strlen(buf), n);
            for (size_t i = 0; i < used; i++)
                FUZZ_CHECK(buf[i] != '\0', "NUL kept at %zu", i);
        } else {
            FUZZ_CHECK(!kept && used == 0, "kept into a 0-byte buffer");
        }
        free(line);
        p += len;
    }
    free(buf);
    return 0;
}
