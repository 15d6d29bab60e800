/* split: one instance's slice of a scenario. See split.h. */
#include "syncgate/split.h"

#include "syncgate/executor.h"

typedef unsigned __int128 wide;

uint64_t split_share(uint64_t total, unsigned i, unsigned n)
{
    if (n <= 1)
        return total;
    if (i >= n || total <= i)
        return 0;
    return (total - i - 1) / n + 1; /* j = i, i + n, ... below total */
}

uint64_t split_before(uint64_t total, unsigned i, unsigned n)
{
    if (n <= 1)
        return 0;
    if (i >= n)
        return total;
    /* each instance before i has total / n, the first total % n one more */
    uint64_t r = total % n;
    return (uint64_t)i * (total / n) + (i < r ? i : r);
}

static int share_int(int total, unsigned i, unsigned n)
{
    return total <= 0 ? 0 : (int)split_share((uint64_t)total, i, n);
}

int split_vus_at(const struct scenario *s, unsigned i, unsigned n, int64_t t)
{
    return share_int(ex_vus_at(s, t), i, n);
}

int split_pre_allocated(const struct scenario *s, unsigned i, unsigned n)
{
    return share_int(s->pre_allocated_vus, i, n);
}

int split_max_vus(const struct scenario *s, unsigned i, unsigned n)
{
    return share_int(s->max_vus, i, n);
}

int split_slots(const struct scenario *s, unsigned i, unsigned n)
{
    /* the share grows with the total: the share of the most is the most of the shares */
    return share_int(ex_slots(s), i, n);
}

uint64_t split_shared_iterations(const struct scenario *s, unsigned i, unsigned n)
{
    uint64_t iters = s->iterations > 0 ? (uint64_t)s->iterations : 0;
    uint64_t vus = s->vus > 0 ? (uint64_t)s->vus : 0;
    if (n <= 1)
        return iters;
    if (i >= n || vus == 0)
        return 0;
    /* in proportion to the VUs of the instances up to i: a telescoping sum, exact */
    uint64_t upto = (uint64_t)((wide)iters * split_before(vus, i + 1, n) / vus);
    uint64_t before = (uint64_t)((wide)iters * split_before(vus, i, n) / vus);
    return upto - before;
}

uint64_t split_worker_first(unsigned i, unsigned n, unsigned w)
{
    return n <= 1 ? w : i + (uint64_t)n * w;
}

uint64_t split_worker_step(unsigned n, unsigned nworkers)
{
    return (uint64_t)(n <= 1 ? 1 : n) * (nworkers ? nworkers : 1);
}

uint64_t split_due(uint64_t due, unsigned i, unsigned n)
{
    return split_share(due, i, n); /* iteration k is instance (k mod n)'s, as VU k is */
}
