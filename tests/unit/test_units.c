/* Unit tests for units: duration parsing and formatting, latency formatting, clocks. */
#include <errno.h>
#include <string.h>

#include "syncgate/units.h"
#include "tap.h"

#define SEC USEC_PER_SEC
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static void good(const char *s, int64_t want)
{
    int64_t got = -12345;
    int rc = units_parse_duration(s, &got);
    ok(rc == 0 && got == want, "parse \"%s\" = %lld (rc %d, got %lld)", s, (long long)want, rc,
       (long long)got);
}

static void bad(const char *s, int want_rc)
{
    int64_t got = -12345;
    int rc = units_parse_duration(s, &got);
    ok(rc == want_rc && got == -12345, "parse \"%s\" fails with %d (rc %d, out untouched)", s,
       want_rc, rc);
}

static void fmt_dur(int64_t usec, const char *want)
{
    char buf[64];
    units_format_duration(usec, buf, sizeof(buf));
    ok(strcmp(buf, want) == 0, "format_duration(%lld) = \"%s\" (got \"%s\")", (long long)usec, want,
       buf);
}

static void fmt_lat(double usec, const char *want)
{
    char buf[64];
    units_format_latency(usec, buf, sizeof(buf));
    ok(strcmp(buf, want) == 0, "format_latency(%g) = \"%s\" (got \"%s\")", usec, want, buf);
}

int main(void)
{
    /* Parsing: the forms k6 users write. */
    good("0", 0);
    good("0s", 0);
    good("+0", 0);
    good("-0", 0);
    good("500ms", 500 * USEC_PER_MSEC);
    good("250us", 250);
    good("250\xc2\xb5s", 250); /* micro sign */
    good("250\xce\xbcs", 250); /* greek mu */
    good("30s", 30 * SEC);
    good("1m30s", 90 * SEC);
    good("2h", 2 * HOUR);
    good("1.5s", 1500 * USEC_PER_MSEC);
    good("2h45m10s", 2 * HOUR + 45 * MIN + 10 * SEC);
    good("1h0m0.5s", HOUR + 500 * USEC_PER_MSEC);
    good(".5s", 500 * USEC_PER_MSEC);
    good("1.s", SEC);
    good("0.25m", 15 * SEC);
    good("1.5ms", 1500);
    good("1500ns", 2); /* 1.5 us rounds to nearest */
    good("1499ns", 1);
    good("+10s", 10 * SEC);
    good("1m1m", 2 * MIN); /* Go accepts repeated units and adds them */
    good("0.000001s", 1);
    good("2400h", UNITS_MAX_DURATION); /* exactly 100 days */
    good("1.123456789s", 1123457);
    /* Days, as k6's ParseExtendedDuration (v0.48 lib/types/types_test.go): an integer of
     * days, 'd', then nothing or a non-negative Go duration. */
    good("0d1.12s", 1120 * USEC_PER_MSEC);
    good("10d1.12s", 240 * HOUR + 1120 * USEC_PER_MSEC);
    good("1d", 24 * HOUR);
    good("20d", 480 * HOUR);
    good("1d23h", 47 * HOUR);
    good("1d24h15m", 48 * HOUR + 15 * MIN);
    good("1d25h80m", 50 * HOUR + 20 * MIN);
    good("0d25h120m80s", 27 * HOUR + 80 * SEC);
    good("2d1ns", 48 * HOUR); /* a nanosecond rounds to 0 us */
    good("+1d", 24 * HOUR);
    good("1d0", 24 * HOUR); /* Go reads "0" alone as a duration */
    good("1d+2h", 26 * HOUR);
    good("-0d2h", 2 * HOUR); /* k6 negates only a negative day count */
    good("100d", UNITS_MAX_DURATION);

    /* Malformed text. */
    bad("", -EINVAL);
    bad("10", -EINVAL);
    bad("00", -EINVAL);
    bad("s", -EINVAL);
    bad("1s2", -EINVAL);
    bad("1x", -EINVAL);
    bad("1S", -EINVAL);
    bad("1 s", -EINVAL);
    bad(" 1s", -EINVAL);
    bad("1s ", -EINVAL);
    bad(".s", -EINVAL);
    bad("1..5s", -EINVAL);
    bad("-", -EINVAL);
    bad("d", -EINVAL);
    bad("d2h", -EINVAL);
    bad("2.1d", -EINVAL);
    bad("2d-2h", -EINVAL);
    bad("-2d-2h", -EINVAL);
    bad("2+d", -EINVAL);
    bad("2da", -EINVAL);
    bad("2-d", -EINVAL);
    bad("1d2d", -EINVAL);
    bad("1d 2h", -EINVAL);
    bad("1dd", -EINVAL);
    bad("1e3s", -EINVAL);
    bad("99999999999999999999999x", -EINVAL); /* syntax is judged before size */
    /* Out of range. */
    bad("-1s", -ERANGE);
    bad("-0.5ms", -ERANGE);
    bad("2400h1us", -ERANGE);
    bad("2401h", -ERANGE);
    bad("99999999999999999999999s", -ERANGE);
    bad("9223372036854775807ns9223372036854775807ns", -ERANGE);
    bad("18446744073709551615h", -ERANGE);
    bad("-1d2h", -ERANGE); /* k6: -26h; syncgate has no negative durations */
    bad("-1d24h", -ERANGE);
    bad("100d1us", -ERANGE);
    bad("101d", -ERANGE);
    bad("106751d23h47m16.854775807s", -ERANGE);
    bad("99999999999999999999999d", -ERANGE);
    {
        int64_t out = 7;
        ok(units_parse_duration(NULL, &out) == -EINVAL && out == 7, "NULL text is -EINVAL");
    }

    /* Formatting: Go's Duration.String, as k6 prints durations. */
    fmt_dur(0, "0s");
    fmt_dur(1, "1\xc2\xb5s");
    fmt_dur(250, "250\xc2\xb5s");
    fmt_dur(500 * USEC_PER_MSEC, "500ms");
    fmt_dur(1500, "1.5ms");
    fmt_dur(1001, "1.001ms");
    fmt_dur(SEC, "1s");
    fmt_dur(1500 * USEC_PER_MSEC, "1.5s");
    fmt_dur(30 * SEC, "30s");
    fmt_dur(90 * SEC, "1m30s");
    fmt_dur(MIN, "1m0s");
    fmt_dur(2 * HOUR, "2h0m0s");
    fmt_dur(2 * HOUR + 45 * MIN + 10 * SEC, "2h45m10s");
    fmt_dur(HOUR + 500 * USEC_PER_MSEC, "1h0m0.5s");
    fmt_dur(SEC + 1, "1.000001s");
    fmt_dur(-90 * SEC, "-1m30s");
    fmt_dur(UNITS_MAX_DURATION, "2400h0m0s");
    {
        char big[64];
        units_format_duration(INT64_MIN, big, sizeof(big));
        ok(strcmp(big, "-2562047788h0m54.775808s") == 0, "INT64_MIN formats (got \"%s\")", big);
    }

    /* Round trip: every formatted duration parses back to itself. */
    {
        static const int64_t samples[] = {
            1,        999,      1000,     1234,       999999,     1000000,     1000001,
            59999999, 60000000, 61500000, 3599999999, 3600000000, 86400000000, UNITS_MAX_DURATION};
        int all = 1;
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
            char buf[64];
            int64_t back = -1;
            units_format_duration(samples[i], buf, sizeof(buf));
            if (units_parse_duration(buf, &back) != 0 || back != samples[i]) {
                all = 0;
                printf("# round trip %lld -> \"%s\" -> %lld\n", (long long)samples[i], buf,
                       (long long)back);
            }
        }
        ok(all, "format then parse is the identity");
    }

    /* Small buffers: truncated but always terminated, no overflow. */
    {
        char small[5];
        memset(small, 'x', sizeof(small));
        units_format_duration(2 * HOUR + 45 * MIN + 10 * SEC, small, sizeof(small));
        ok(small[4] == '\0' && strncmp(small, "2h45", 4) == 0, "format truncates (\"%s\")", small);
        char one[1] = {'x'};
        units_format_duration(90 * SEC, one, 1);
        ok(one[0] == '\0', "n=1 gives an empty string");
        char tiny[3];
        units_format_latency(12345.0, tiny, sizeof(tiny));
        ok(tiny[2] == '\0' && strcmp(tiny, "12") == 0, "latency truncates (\"%s\")", tiny);
        char keep = 'k';
        units_format_latency(1.0, &keep, 0);
        ok(keep == 'k', "n=0 writes nothing");
    }

    /* Latency: k6's summary (two decimals, truncated, trailing zeros dropped). */
    fmt_lat(0, "0s");
    fmt_lat(0.5, "500ns");
    fmt_lat(850, "850\xc2\xb5s");
    fmt_lat(850.456, "850.45\xc2\xb5s");
    fmt_lat(1, "1\xc2\xb5s");
    fmt_lat(12340, "12.34ms");
    fmt_lat(12345.9, "12.34ms"); /* truncated, not rounded */
    fmt_lat(12300, "12.3ms");
    fmt_lat(290, "290\xc2\xb5s");
    fmt_lat(1290, "1.29ms"); /* 1.29 is not exact in binary: must not become 1.28 */
    fmt_lat(1000, "1ms");
    fmt_lat(999999, "999.99ms");
    fmt_lat(1200000, "1.2s");
    fmt_lat(1000000, "1s");
    fmt_lat(59990000, "59.99s");
    fmt_lat(90500000, "1m30s"); /* seconds lose decimals past a minute */
    fmt_lat(3723000000.0, "1h2m3s");
    fmt_lat(-1500, "-1.5ms");

    /* Clocks: monotonic never goes back; wall clock is after 2020. */
    {
        int64_t a = units_now_mono(), b = units_now_mono();
        ok(a > 0 && b >= a, "monotonic clock advances (%lld, %lld)", (long long)a, (long long)b);
        int64_t w = units_now_wall();
        ok(w > INT64_C(1577836800) * SEC, "wall clock in usec since 1970 (%lld)", (long long)w);
    }
    return tap_done();
}
