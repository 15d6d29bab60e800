/* units: k6 (Go) durations, k6 latency formatting, clocks. */
#include "syncgate/units.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NSEC_PER_USEC UINT64_C(1000)

/* Parsing works in nanoseconds (Go's unit) so "1.5us" and "500ns" mean what Go says. */
#define MAX_NSEC ((uint64_t)UNITS_MAX_DURATION * NSEC_PER_USEC)

struct unit {
    const char *name;
    uint64_t nsec;
};

static const struct unit units[] = {
    {"ns", UINT64_C(1)},           {"us", UINT64_C(1000)},
    {"\xc2\xb5s", UINT64_C(1000)}, /* U+00B5 micro sign */
    {"\xce\xbcs", UINT64_C(1000)}, /* U+03BC greek small letter mu */
    {"ms", UINT64_C(1000000)},     {"s", UINT64_C(1000000000)},
    {"m", UINT64_C(60000000000)},  {"h", UINT64_C(3600000000000)},
};

static const struct unit *unit_find(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == len && memcmp(units[i].name, s, len) == 0)
            return &units[i];
    return NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Go's time.ParseDuration into *ns (nanoseconds), *neg for a leading '-'.
 * Returns 0, -EINVAL for bad syntax (judged over the whole text first) or
 * -ERANGE past MAX_NSEC.
 */
static int parse_go(const char *s, uint64_t *ns, bool *neg)
{
    bool overflow = false;
    uint64_t total = 0;

    *neg = false;
    if (*s == '-' || *s == '+')
        *neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -EINVAL;

    while (*s) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool digits = false;

        /* Once a term overflows, keep scanning so bad syntax still wins as -EINVAL. */
        for (; is_digit(*s); s++) {
            digits = true;
            if (whole > (UINT64_MAX - 9) / 10)
                overflow = true;
            else
                whole = whole * 10 + (uint64_t)(*s - '0');
        }
        if (*s == '.') {
            s++;
            for (; is_digit(*s); s++) {
                digits = true;
                /* Digits past nanosecond-of-an-hour precision cannot change the result. */
                if (scale < UINT64_C(1000000000000000000)) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
            }
        }
        if (!digits)
            return -EINVAL;

        const char *u = s;
        while (*s && *s != '.' && !is_digit(*s))
            s++;
        const struct unit *un = unit_find(u, (size_t)(s - u));
        if (!un)
            return -EINVAL;
        if (overflow)
            continue;

        if (whole > MAX_NSEC / un->nsec) {
            overflow = true;
            continue;
        }
        uint64_t term = whole * un->nsec;
        term += (uint64_t)llround((double)frac / (double)scale * (double)un->nsec);
        total += term;
        if (total > MAX_NSEC)
            overflow = true;
    }
    if (overflow)
        return -ERANGE;
    *ns = total;
    return 0;
}

#define DAY_NSEC (UINT64_C(24) * 3600 * 1000000000)

/*
 * k6's extended form (lib/types ParseExtendedDuration): a whole number of days
 * with an optional sign, 'd', then nothing or a Go duration that is not
 * negative. k6 negates the whole only when the day count is negative.
 */
static int parse_days(const char *s, const char *d, uint64_t *ns, bool *neg)
{
    bool days_neg = false, overflow = false;
    uint64_t days = 0, rest = 0;

    if (*s == '-' || *s == '+')
        days_neg = *s++ == '-';
    if (s == d)
        return -EINVAL;
    for (; s < d; s++) {
        if (!is_digit(*s))
            return -EINVAL;
        if (days > MAX_NSEC / DAY_NSEC)
            overflow = true;
        else
            days = days * 10 + (uint64_t)(*s - '0');
    }
    if (d[1]) {
        bool rest_neg;
        int rc = parse_go(d + 1, &rest, &rest_neg);
        if (rc == -EINVAL || (rest_neg && (rc == -ERANGE || rest > 0)))
            return -EINVAL;
        overflow |= rc == -ERANGE;
    }
    if (overflow || days > MAX_NSEC / DAY_NSEC || days * DAY_NSEC > MAX_NSEC - rest)
        return -ERANGE;
    *ns = days * DAY_NSEC + rest;
    *neg = days_neg && days > 0;
    return 0;
}

int units_parse_duration(const char *s, int64_t *out)
{
    uint64_t total; /* nanoseconds */
    bool neg;

    if (!s)
        return -EINVAL;
    const char *d = strchr(s, 'd'); /* no Go unit has a 'd' */
    int rc = d ? parse_days(s, d, &total, &neg) : parse_go(s, &total, &neg);
    if (rc)
        return rc;
    uint64_t usec = (total + NSEC_PER_USEC / 2) / NSEC_PER_USEC;
    if (usec > (uint64_t)UNITS_MAX_DURATION)
        return -ERANGE;
    if (neg && total > 0)
        return -ERANGE;
    *out = (int64_t)usec;
    return 0;
}

/* Appends "." and the fraction's digits without trailing zeros; digits is its width. */
static int fmt_frac(char *buf, size_t n, uint64_t frac, int digits)
{
    char tmp[24];

    if (frac == 0)
        return 0;
    snprintf(tmp, sizeof(tmp), "%0*llu", digits, (unsigned long long)frac);
    size_t len = strlen(tmp);
    while (len > 0 && tmp[len - 1] == '0')
        tmp[--len] = '\0';
    return snprintf(buf, n, ".%s", tmp);
}

/* snprintf that never lets the offset run past the buffer. */
static size_t advance(size_t off, int w, size_t n)
{
    if (w < 0)
        return off;
    off += (size_t)w;
    return off < n ? off : n - 1;
}

char *units_format_duration(int64_t usec, char *buf, size_t n)
{
    size_t off = 0;
    uint64_t u;

    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (usec == 0) {
        snprintf(buf, n, "0s");
        return buf;
    }
    if (usec < 0) {
        off = advance(off, snprintf(buf, n, "-"), n);
        u = (uint64_t)0 - (uint64_t)usec;
    } else {
        u = (uint64_t)usec;
    }

    if (u < 1000) {
        snprintf(buf + off, n - off, "%llu\xc2\xb5s", (unsigned long long)u);
        return buf;
    }
    if (u < 1000000) {
        off = advance(off, snprintf(buf + off, n - off, "%llu", (unsigned long long)(u / 1000)), n);
        off = advance(off, fmt_frac(buf + off, n - off, u % 1000, 3), n);
        snprintf(buf + off, n - off, "ms");
        return buf;
    }

    /* Go's Duration.String(): hours and minutes appear once reached, even when zero below. */
    uint64_t secs = u / 1000000, h = secs / 3600, m = secs / 60 % 60, sec = secs % 60;
    if (h > 0)
        off = advance(off, snprintf(buf + off, n - off, "%lluh", (unsigned long long)h), n);
    if (h > 0 || m > 0)
        off = advance(off, snprintf(buf + off, n - off, "%llum", (unsigned long long)m), n);
    off = advance(off, snprintf(buf + off, n - off, "%llu", (unsigned long long)sec), n);
    off = advance(off, fmt_frac(buf + off, n - off, u % 1000000, 6), n);
    snprintf(buf + off, n - off, "s");
    return buf;
}

/*
 * k6's summary truncates (not rounds) to two decimals and drops trailing
 * zeros. The small nudge keeps binary fractions like 0.29 from truncating
 * to 0.28.
 */
static int fmt_trunc(char *buf, size_t n, double v, int prec)
{
    double mult = prec == 2 ? 100.0 : 1.0;
    double t = trunc(v * mult * (1.0 + 1e-12)) / mult;
    int w = snprintf(buf, n, "%.*f", prec, t);
    if (w > 0 && prec > 0 && (size_t)w < n) {
        char *e = buf + w;
        while (e[-1] == '0')
            *--e = '\0';
        if (e[-1] == '.')
            *--e = '\0';
        w = (int)(e - buf);
    }
    return w;
}

char *units_format_latency(double usec, char *buf, size_t n)
{
    size_t off = 0;

    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (isnan(usec)) {
        snprintf(buf, n, "NaN");
        return buf;
    }
    if (usec == 0) {
        snprintf(buf, n, "0s");
        return buf;
    }
    if (usec < 0) {
        off = advance(off, snprintf(buf, n, "-"), n);
        usec = -usec;
    }
    if (isinf(usec)) {
        snprintf(buf + off, n - off, "Inf");
        return buf;
    }

    double ms = usec / 1000.0;
    if (usec < 1) {
        snprintf(buf + off, n - off, "%.0fns", trunc(usec * 1000.0));
        return buf;
    }
    if (usec < 1000) {
        off = advance(off, fmt_trunc(buf + off, n - off, usec, 2), n);
        snprintf(buf + off, n - off, "\xc2\xb5s");
        return buf;
    }
    if (ms < 1000) {
        off = advance(off, fmt_trunc(buf + off, n - off, ms, 2), n);
        snprintf(buf + off, n - off, "ms");
        return buf;
    }

    /* From a minute on, seconds lose their decimals, as in k6. */
    double mins = trunc(ms / 60000.0);
    double secs = fmod(ms, 60000.0) / 1000.0;
    if (mins >= 60)
        off = advance(off, snprintf(buf + off, n - off, "%.0fh", trunc(mins / 60)), n);
    if (mins >= 1)
        off = advance(off, snprintf(buf + off, n - off, "%.0fm", fmod(mins, 60)), n);
    off = advance(off, fmt_trunc(buf + off, n - off, secs, ms > 60000 ? 0 : 2), n);
    snprintf(buf + off, n - off, "s");
    return buf;
}

static int64_t clock_usec(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t units_now_mono(void)
{
    return clock_usec(CLOCK_MONOTONIC);
}

int64_t units_now_wall(void)
{
    return clock_usec(CLOCK_REALTIME);
}
