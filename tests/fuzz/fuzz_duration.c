/*
 * Fuzz target: k6 durations (units_parse_duration) and the two duration
 * formatters. An accepted duration is in range and survives a format/parse
 * round trip exactly; a refused one leaves the output untouched. The
 * formatters get the input's first 8 bytes as a value and every buffer size.
 */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "syncgate/units.h"

#define UNTOUCHED INT64_C(-424242)

static void check_formatters(const uint8_t *data, size_t size)
{
    int64_t usec;
    double d;
    if (size < sizeof(usec))
        return;
    memcpy(&usec, data, sizeof(usec));
    memcpy(&d, data, sizeof(d));
    for (size_t n = 0; n <= 48; n++) {
        /* Exactly n bytes, so ASan sees any write past them. */
        char *buf = malloc(n ? n : 1);
        if (!buf)
            return;
        units_format_duration(usec, buf, n);
        FUZZ_CHECK(n == 0 || memchr(buf, 0, n), "format_duration(%lld) not terminated in %zu",
                   (long long)usec, n);
        units_format_latency(d, buf, n);
        FUZZ_CHECK(n == 0 || memchr(buf, 0, n), "format_latency(%g) not terminated in %zu", d, n);
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    if (!s)
        return 0;
    int64_t v = UNTOUCHED;
    int rc = units_parse_duration(s, &v);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE, "\"%s\": rc %d", s, rc);
    if (rc == 0) {
        FUZZ_CHECK(v >= 0 && v <= UNITS_MAX_DURATION, "\"%s\" gave %lld", s, (long long)v);
        char buf[64];
        int64_t back = UNTOUCHED;
        units_format_duration(v, buf, sizeof(buf));
        FUZZ_CHECK(units_parse_duration(buf, &back) == 0 && back == v,
                   "\"%s\" = %lld usec, printed \"%s\", read back as %lld", s, (long long)v, buf,
                   (long long)back);
    } else {
        FUZZ_CHECK(v == UNTOUCHED, "\"%s\" failed (%d) but wrote %lld", s, rc, (long long)v);
    }
    free(s);
    check_formatters(data, size);
    return 0;
}
