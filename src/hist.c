/* hist: log-linear histogram with lazily allocated ranges. */
#include "syncgate/hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout: range 0 holds values 0..1023 one per bucket; range r >= 1 holds
 * [2^(r+9), 2^(r+10)) in 1024 buckets of width 2^(r-1). Ranges 0 and 1 are
 * therefore exact (values below 2048), and the largest int64 (2^63 - 1) falls
 * in range 53.
 */
#define SUB_BITS 10
#define SUB_COUNT (1u << SUB_BITS)
#define NRANGES 54

struct hist {
    uint64_t count;
    uint64_t sum_lo, sum_hi; /* 128-bit sum: exact whatever the run length */
    uint64_t min, max;
    uint64_t rcount[NRANGES]; /* samples per range, lets percentile skip whole ranges */
    uint64_t *range[NRANGES];
};

struct hist *hist_new(void)
{
    struct hist *h = calloc(1, sizeof(*h));

    if (h)
        h->min = UINT64_MAX;
    return h;
}

void hist_free(struct hist *h)
{
    if (!h)
        return;
    for (int r = 0; r < NRANGES; r++)
        free(h->range[r]);
    free(h);
}

void hist_reset(struct hist *h)
{
    /* a range holds counts only when rcount says so: the others are zero already */
    for (int r = 0; r < NRANGES; r++)
        if (h->range[r] && h->rcount[r])
            memset(h->range[r], 0, SUB_COUNT * sizeof(uint64_t));
    memset(h->rcount, 0, sizeof(h->rcount));
    h->count = h->sum_lo = h->sum_hi = h->max = 0;
    h->min = UINT64_MAX;
}

static inline void locate(uint64_t v, unsigned *r, unsigned *sub)
{
    if (v < SUB_COUNT) {
        *r = 0;
        *sub = (unsigned)v;
    } else {
        unsigned k = 63u - (unsigned)__builtin_clzll(v); /* v in [2^k, 2^(k+1)), k >= 10 */
        *r = k - (SUB_BITS - 1);
        *sub = (unsigned)(v >> (k - SUB_BITS)) - SUB_COUNT;
    }
}

static void bucket_bounds(unsigned r, unsigned sub, int64_t *lo, int64_t *hi)
{
    if (r == 0) {
        *lo = sub;
        *hi = (int64_t)sub + 1;
        return;
    }
    unsigned shift = r - 1;
    uint64_t l = (uint64_t)(SUB_COUNT + sub) << shift;
    uint64_t h = l + (UINT64_C(1) << shift);
    *lo = (int64_t)l;
    /* The very last bucket ends at 2^63, which int64 cannot hold: saturate. */
    *hi = h > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)h;
}

static inline void add_sum(struct hist *h, uint64_t v)
{
    uint64_t s = h->sum_lo + v;

    h->sum_hi += s < h->sum_lo;
    h->sum_lo = s;
}

int hist_record(struct hist *h, int64_t value)
{
    uint64_t v = value < 0 ? 0 : (uint64_t)value;
    unsigned r, sub;

    h->count++;
    add_sum(h, v);
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;

    locate(v, &r, &sub);
    uint64_t *c = h->range[r];
    if (__builtin_expect(c == NULL, 0)) {
        c = calloc(SUB_COUNT, sizeof(uint64_t));
        if (!c)
            return -ENOMEM;
        h->range[r] = c;
    }
    c[sub]++;
    h->rcount[r]++;
    return 0;
}

int hist_merge(struct hist *dst, const struct hist *src)
{
    /* Allocate first so that a failure leaves dst untouched. */
    for (int r = 0; r < NRANGES; r++) {
        if (src->range[r] && src->rcount[r] && !dst->range[r]) {
            dst->range[r] = calloc(SUB_COUNT, sizeof(uint64_t));
            if (!dst->range[r])
                return -ENOMEM;
        }
    }
    for (int r = 0; r < NRANGES; r++) {
        if (!src->range[r] || !src->rcount[r])
            continue;
        for (unsigned i = 0; i < SUB_COUNT; i++)
            dst->range[r][i] += src->range[r][i];
        dst->rcount[r] += src->rcount[r];
    }
    if (src->count == 0)
        return 0;
    dst->count += src->count;
    add_sum(dst, src->sum_lo);
    dst->sum_hi += src->sum_hi;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

int hist_diff(struct hist *dst, const struct hist *a, const struct hist *b)
{
    bool first = true;

    hist_reset(dst);
    if (b->count > a->count)
        return -EINVAL;
    for (unsigned r = 0; r < NRANGES; r++) {
        if (!a->rcount[r] && !b->rcount[r])
            continue;
        for (unsigned i = 0; i < SUB_COUNT; i++) {
            uint64_t ca = a->range[r] ? a->range[r][i] : 0;
            uint64_t cb = b->range[r] ? b->range[r][i] : 0;
            if (ca == cb)
                continue;
            if (cb > ca) {
                hist_reset(dst);
                return -EINVAL;
            }
            if (!dst->range[r] && !(dst->range[r] = calloc(SUB_COUNT, sizeof(uint64_t)))) {
                hist_reset(dst);
                return -ENOMEM;
            }
            int64_t lo, hi;
            bucket_bounds(r, i, &lo, &hi);
            dst->range[r][i] = ca - cb;
            dst->rcount[r] += ca - cb;
            if (first)
                dst->min = (uint64_t)lo;
            dst->max = (uint64_t)(hi - 1);
            first = false;
        }
    }
    dst->count = a->count - b->count;
    if (dst->count == 0) {
        hist_reset(dst);
        return 0;
    }
    /* the 128-bit sums: a - b with borrow */
    dst->sum_lo = a->sum_lo - b->sum_lo;
    dst->sum_hi = a->sum_hi - b->sum_hi - (a->sum_lo < b->sum_lo);
    if (first) {
        /* samples counted without a bucket (a range allocation failed): no bounds known */
        dst->min = a->min;
        dst->max = a->max;
    }
    if (dst->min < a->min)
        dst->min = a->min;
    if (dst->max > a->max)
        dst->max = a->max;
    return 0;
}

uint64_t hist_count(const struct hist *h)
{
    return h->count;
}

double hist_sum(const struct hist *h)
{
    return (double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo;
}

int64_t hist_min(const struct hist *h)
{
    return h->count ? (int64_t)h->min : 0;
}

int64_t hist_max(const struct hist *h)
{
    return h->count ? (int64_t)h->max : 0;
}

double hist_mean(const struct hist *h)
{
    return h->count ? hist_sum(h) / (double)h->count : 0.0;
}

/* Value standing for the samples of a bucket: its midpoint, kept inside [min, max]. */
static double bucket_value(const struct hist *h, unsigned r, unsigned sub)
{
    int64_t lo, hi;

    bucket_bounds(r, sub, &lo, &hi);
    double mid = ((double)lo + (double)(hi - 1)) / 2.0;
    if (mid < (double)h->min)
        mid = (double)h->min;
    if (mid > (double)h->max)
        mid = (double)h->max;
    return mid;
}

/* Values at 0-based ranks a <= b of n bucketed samples, in one walk. */
static void values_at(const struct hist *h, uint64_t n, uint64_t a, uint64_t b, double *va,
                      double *vb)
{
    bool need_a = true, need_b = true;
    uint64_t seen = 0;

    /* The extreme ranks are known exactly; the buckets only approximate them. */
    if (a == 0) {
        *va = (double)h->min;
        need_a = false;
    }
    if (b == n - 1) {
        *vb = (double)h->max;
        need_b = false;
    }
    for (unsigned r = 0; r < NRANGES && (need_a || need_b); r++) {
        if (!h->range[r] || h->rcount[r] == 0)
            continue;
        if (seen + h->rcount[r] <= (need_a ? a : b)) {
            seen += h->rcount[r];
            continue;
        }
        for (unsigned i = 0; i < SUB_COUNT; i++) {
            uint64_t c = h->range[r][i];
            if (c == 0)
                continue;
            seen += c;
            if (need_a && a < seen) {
                *va = bucket_value(h, r, i);
                need_a = false;
            }
            if (need_b && b < seen) {
                *vb = bucket_value(h, r, i);
                need_b = false;
                break;
            }
        }
    }
    /* Unreachable while rcount matches the buckets; keep the outputs defined anyway. */
    if (need_a)
        *va = (double)h->max;
    if (need_b)
        *vb = (double)h->max;
}

double hist_percentile(const struct hist *h, double p)
{
    uint64_t n = 0;

    for (unsigned r = 0; r < NRANGES; r++)
        n += h->rcount[r];
    if (h->count == 0 || n == 0 || isnan(p))
        return 0.0;
    if (p <= 0)
        return (double)h->min;
    if (p >= 100)
        return (double)h->max;

    /* k6's trend sink: rank p/100*(n-1), linear between the two neighbouring samples. */
    double rank = p / 100.0 * (double)(n - 1);
    double fl = floor(rank);
    uint64_t a = (uint64_t)fl;
    uint64_t b = rank > fl ? a + 1 : a;
    if (b > n - 1)
        b = n - 1;
    double va = 0, vb = 0;
    values_at(h, n, a, b, &va, &vb);
    double v = va + (vb - va) * (rank - fl);
    if (v < (double)h->min)
        v = (double)h->min;
    if (v > (double)h->max)
        v = (double)h->max;
    return v;
}

bool hist_next_bucket(const struct hist *h, uint64_t *cursor, int64_t *lo, int64_t *hi, uint64_t *n)
{
    uint64_t i = *cursor;

    while (i < (uint64_t)NRANGES * SUB_COUNT) {
        unsigned r = (unsigned)(i >> SUB_BITS), sub = (unsigned)(i & (SUB_COUNT - 1));
        if (!h->range[r] || h->rcount[r] == 0) {
            i = (uint64_t)(r + 1) << SUB_BITS;
            continue;
        }
        uint64_t c = h->range[r][sub];
        i++;
        if (c) {
            bucket_bounds(r, sub, lo, hi);
            *n = c;
            *cursor = i;
            return true;
        }
    }
    *cursor = i;
    return false;
}

void hist_get_totals(const struct hist *h, struct hist_totals *t)
{
    *t = (struct hist_totals){h->count, h->sum_lo, h->sum_hi, h->min, h->max};
}

bool hist_next_index(const struct hist *h, uint32_t *index, uint64_t *n)
{
    for (uint32_t i = *index; i < HIST_BUCKETS;) {
        unsigned r = i >> SUB_BITS, sub = i & (SUB_COUNT - 1);
        if (!h->range[r] || h->rcount[r] == 0) {
            i = (uint32_t)(r + 1) << SUB_BITS;
            continue;
        }
        if (h->range[r][sub]) {
            *index = i;
            *n = h->range[r][sub];
            return true;
        }
        i++;
    }
    return false;
}

int hist_check_parts(const struct hist_totals *t, const uint32_t *index, const uint64_t *n,
                     size_t nb)
{
    _Static_assert(HIST_BUCKETS == NRANGES * SUB_COUNT, "HIST_BUCKETS");
    if (t->count == 0)
        return nb == 0 && t->sum_lo == 0 && t->sum_hi == 0 ? 0 : -EINVAL;
    if (nb == 0 || t->min > t->max)
        return -EINVAL;
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++) {
        if (index[i] >= HIST_BUCKETS || (i && index[i] <= index[i - 1]) || n[i] == 0 ||
            total + n[i] < total)
            return -EINVAL;
        total += n[i];
    }
    unsigned r, sub;
    locate(t->min, &r, &sub);
    bool bounds = (r << SUB_BITS | sub) == index[0];
    locate(t->max, &r, &sub);
    bounds &= (r << SUB_BITS | sub) == index[nb - 1];
    return total == t->count && bounds ? 0 : -EINVAL;
}

int hist_add_parts(struct hist *h, const struct hist_totals *t, const uint32_t *index,
                   const uint64_t *n, size_t nb)
{
    unsigned r;
    if (hist_check_parts(t, index, n, nb) < 0 || h->count + t->count < h->count)
        return -EINVAL;
    if (t->count == 0)
        return 0;
    /* allocate first: a failure leaves h as it was */
    for (size_t i = 0; i < nb; i++) {
        r = index[i] >> SUB_BITS;
        if (!h->range[r] && !(h->range[r] = calloc(SUB_COUNT, sizeof(uint64_t))))
            return -ENOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        r = index[i] >> SUB_BITS;
        h->range[r][index[i] & (SUB_COUNT - 1)] += n[i];
        h->rcount[r] += n[i];
    }
    h->count += t->count;
    add_sum(h, t->sum_lo);
    h->sum_hi += t->sum_hi;
    if (t->min < h->min)
        h->min = t->min;
    if (t->max > h->max)
        h->max = t->max;
    return 0;
}

size_t hist_bytes(const struct hist *h)
{
    size_t bytes = sizeof(*h);

    for (int r = 0; r < NRANGES; r++)
        if (h->range[r])
            bytes += SUB_COUNT * sizeof(uint64_t);
    return bytes;
}
