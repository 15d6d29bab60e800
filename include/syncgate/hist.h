/*
 * hist: a log-linear (HDR-style) histogram of non-negative integer values,
 * used for every k6 trend (values are microseconds).
 *
 * Values below 2048 are counted exactly. Above, each power-of-two range
 * [2^k, 2^(k+1)) is split into 1024 equal sub-buckets, so a reported value
 * is within 1/1024 (~0.1%, three significant digits) of the true one. The
 * per-range count arrays are allocated lazily the first time a value falls
 * in that range and never freed before hist_free(), so memory is bounded by
 * the value range (8 KiB per power of two in use: at most ~430 KiB for the
 * full 63-bit range, typically 50-100 KiB for latencies of 1 ms..1 s) and is
 * independent of the number of samples.
 * count, sum, min and max are kept exactly.
 *
 * Not thread-safe: one histogram per thread, merged with hist_merge().
 */
#ifndef SYNCGATE_HIST_H
#define SYNCGATE_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hist;

/* New empty histogram, or NULL when out of memory. */
struct hist *hist_new(void);
/* Free; NULL is a no-op. */
void hist_free(struct hist *h);
/* Forget all samples, keep allocated ranges for reuse. */
void hist_reset(struct hist *h);

/*
 * Record one value (negative values are clamped to 0). Returns 0, or -ENOMEM
 * when a new range could not be allocated (the sample is then counted in
 * count/sum/min/max but not in the buckets).
 */
int hist_record(struct hist *h, int64_t value);

/* Add every sample of src into dst. Returns 0 or -ENOMEM. */
int hist_merge(struct hist *dst, const struct hist *src);

/*
 * dst = a - b, where b is an earlier state of a (the same histogram, fewer
 * samples): the samples a gained since b, e.g. one interval of a run from two
 * cumulative snapshots. dst is reset first and must be neither a nor b.
 * count and sum are exact; min and max are the bounds of the lowest and
 * highest non-empty bucket of the difference, kept within a's min and max.
 * Returns 0; -EINVAL when some bucket of b holds more than a's (b is not an
 * earlier state of a; dst is left empty); -ENOMEM (dst left empty).
 */
int hist_diff(struct hist *dst, const struct hist *a, const struct hist *b);

uint64_t hist_count(const struct hist *h);
/* Exact sum, min and max; min/max are 0 when empty. */
double hist_sum(const struct hist *h);
int64_t hist_min(const struct hist *h);
int64_t hist_max(const struct hist *h);
double hist_mean(const struct hist *h);

/*
 * Value at percentile p (0..100), k6's definition: the value below which p%
 * of samples fall, linearly interpolated between neighbouring ranks like
 * k6's trend sink. Clamped to [min, max]. Returns 0 when empty.
 */
double hist_percentile(const struct hist *h, double p);

/*
 * Iterate the non-empty buckets in ascending order: lo and hi receive the
 * bucket's value bounds [lo, hi), n its count. Start with *cursor = 0; returns false
 * when done. Used by remote write to build native histograms.
 */
bool hist_next_bucket(const struct hist *h, uint64_t *cursor, int64_t *lo, int64_t *hi,
                      uint64_t *n);

/*
 * A histogram in parts, to copy it exactly elsewhere (another process: snapshot.h): its
 * totals and its non-empty buckets by index. Indexes run from 0 to HIST_BUCKETS - 1 in
 * value order (hist_next_bucket's order).
 */
#define HIST_BUCKETS (54u * 1024u)
struct hist_totals {
    uint64_t count, sum_lo, sum_hi; /* sum = sum_hi * 2^64 + sum_lo, exact */
    uint64_t min, max;              /* UINT64_MAX and 0 when empty */
};
void hist_get_totals(const struct hist *h, struct hist_totals *t);

/* The next non-empty bucket at index *index or after: true with *index and *n set; false
 * when there is none. Start with *index = 0 and add 1 after each bucket. */
bool hist_next_index(const struct hist *h, uint32_t *index, uint64_t *n);

/*
 * Whether t and the buckets (index[i], n[i]), i < nb, describe a histogram: indexes
 * strictly increasing and below HIST_BUCKETS, counts above 0 that add up to t->count, min
 * and max in the first and last bucket (nothing at all when t->count is 0). 0 or -EINVAL.
 */
int hist_check_parts(const struct hist_totals *t, const uint32_t *index, const uint64_t *n,
                     size_t nb);

/*
 * Add to h the histogram made of t and the buckets (index[i], n[i]), i < nb, as if its
 * samples had been recorded here (hist_merge of that histogram). Returns 0, -EINVAL when
 * the parts do not describe a histogram (hist_check_parts) or h's count would overflow (h
 * unchanged), or -ENOMEM (h unchanged).
 */
int hist_add_parts(struct hist *h, const struct hist_totals *t, const uint32_t *index,
                   const uint64_t *n, size_t nb);

/* Bytes held by h (struct plus allocated ranges); for tests and memory budgets. */
size_t hist_bytes(const struct hist *h);

#endif
