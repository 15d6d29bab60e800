/* Unit tests for split: the instances' slices of every executor add up to the whole, exactly,
 * at every instant and for every iteration; one instance is the whole. */
#include <stdlib.h>
#include <string.h>

#include "syncgate/executor.h"
#include "syncgate/split.h"
#include "syncgate/units.h"
#include "scenario_base.h"
#include "tap.h"

#define S USEC_PER_SEC
#define MS USEC_PER_MSEC

static void test_share(void)
{
    bool sums = true, even = true, grows = true, before = true;
    for (unsigned n = 1; n <= 33; n++)
        for (uint64_t t = 0; t <= 700; t++) {
            uint64_t sum = 0;
            for (unsigned i = 0; i < n; i++) {
                uint64_t sh = split_share(t, i, n);
                sum += sh;
                even &= sh == t / n || sh == t / n + 1;
                grows &= split_share(t + 1, i, n) >= sh;
                uint64_t mine = 0;
                for (uint64_t j = i; j < t; j += n)
                    mine++;
                even &= sh == mine; /* round-robin: thing j is instance j mod n's */
                before &= split_before(t, i, n) + sh == split_before(t, i + 1, n) ||
                          (n == 1 && split_before(t, i, n) == 0);
            }
            sums &= sum == t;
        }
    ok(sums, "share: the shares of every total from 0 to 700 over 1..33 instances sum to it");
    ok(even, "share: each share is floor(T/n) or one more: the things j with j mod n == i");
    ok(grows, "share: each instance's share grows with the total (never shrinks)");
    ok(before, "share: split_before is where each share starts");
    ok(split_share(5, 0, 1) == 5 && split_share(5, 0, 0) == 5 && split_before(5, 0, 1) == 0,
       "share: one instance (or none said) is the whole");
    ok(split_share(UINT64_MAX, 2, 3) + split_share(UINT64_MAX, 1, 3) +
               split_share(UINT64_MAX, 0, 3) == UINT64_MAX,
       "share: no overflow at the largest total");
    ok(split_share(10, 3, 3) == 0 && split_before(10, 5, 3) == 10,
       "share: an index past the instances has nothing");
}

/* Whether the instances' VUs add up to the whole at every instant of a grid, and each one's
 * most equals its slots. */
static bool closed_exact(const struct scenario *s, unsigned n, int64_t step, bool *slots_ok)
{
    int64_t len = ex_length(s);
    int most[64] = {0};
    bool exact = true;
    for (int64_t t = -step; t <= len + step; t += step) {
        int sum = 0;
        for (unsigned i = 0; i < n; i++) {
            int v = split_vus_at(s, i, n, t);
            sum += v;
            if (v > most[i])
                most[i] = v;
        }
        exact &= sum == ex_vus_at(s, t);
    }
    int slots = 0;
    *slots_ok = true;
    for (unsigned i = 0; i < n; i++) {
        *slots_ok &= most[i] == split_slots(s, i, n);
        slots += split_slots(s, i, n);
    }
    *slots_ok &= slots == ex_slots(s);
    return exact;
}

static void test_closed(void)
{
    struct scenario r = base(EX_RAMPING_VUS);
    r.start_vus = 3;
    struct stage st[] = {{7 * S, 37}, {3 * S, 37}, {0, 5}, {5 * S, 61}, {9 * S, 0}};
    memcpy(r.stages, st, sizeof(st));
    r.nstages = sizeof(st) / sizeof(st[0]);
    bool exact = true, slots = true;
    for (unsigned n = 1; n <= 17; n++) {
        bool sl;
        exact &= closed_exact(&r, n, 10 * MS, &sl);
        slots &= sl;
    }
    ok(exact, "ramping-vus: at every 10 ms of a 24 s ramp up, down and jump, the VUs of "
              "1..17 instances add up to the whole's");
    ok(slots, "ramping-vus: each instance's slots are its most VUs, and they add up to the "
              "whole's slots");
    bool identity = true;
    for (int64_t t = 0; t < ex_length(&r); t += 7 * MS)
        identity &= split_vus_at(&r, 0, 1, t) == ex_vus_at(&r, t);
    ok(identity && split_slots(&r, 0, 1) == ex_slots(&r), "ramping-vus: one instance is the whole");

    /* fewer VUs than instances: some instances have none at times, the sum still holds */
    struct scenario few = base(EX_RAMPING_VUS);
    few.start_vus = 0;
    struct stage fs[] = {{3 * S, 2}, {3 * S, 0}};
    memcpy(few.stages, fs, sizeof(fs));
    few.nstages = 2;
    bool sl;
    ok(closed_exact(&few, 5, MS, &sl) && sl && split_slots(&few, 2, 5) == 0 &&
           split_slots(&few, 1, 5) == 1,
       "ramping-vus: 2 VUs over 5 instances: three never run one, the sum holds");

    struct scenario c = base(EX_CONSTANT_VUS);
    c.vus = 10;
    c.duration = 2 * S;
    ok(closed_exact(&c, 4, 100 * MS, &sl) && sl && split_vus_at(&c, 0, 4, S) == 3 &&
           split_vus_at(&c, 1, 4, S) == 3 && split_vus_at(&c, 2, 4, S) == 2 &&
           split_vus_at(&c, 3, 4, S) == 2,
       "constant-vus: 10 VUs over 4 instances are 3, 3, 2, 2");

    struct scenario p = base(EX_PER_VU_ITERATIONS);
    p.vus = 7;
    p.iterations = 13;
    p.max_duration = 10 * S;
    uint64_t total = 0;
    for (unsigned i = 0; i < 3; i++)
        total += (uint64_t)split_slots(&p, i, 3) * (uint64_t)p.iterations;
    ok(total == 7 * 13 && closed_exact(&p, 3, 100 * MS, &sl) && sl,
       "per-vu-iterations: the VUs split, each runs its 13: 91 in all over 3 instances");
}

static void test_shared(void)
{
    bool exact = true, proportional = true, enough = true, identity = true;
    struct scenario s = base(EX_SHARED_ITERATIONS);
    for (int vus = 1; vus <= 40; vus++)
        for (int iters = vus; iters <= 400; iters += 7) {
            s.vus = vus;
            s.iterations = iters;
            identity &= split_shared_iterations(&s, 0, 1) == (uint64_t)iters;
            for (unsigned n = 1; n <= 12; n++) {
                uint64_t sum = 0;
                for (unsigned i = 0; i < n; i++) {
                    uint64_t it = split_shared_iterations(&s, i, n);
                    uint64_t v = split_share((uint64_t)vus, i, n);
                    sum += it;
                    /* no iteration for an instance without VUs, at least one per VU */
                    proportional &= v > 0 || it == 0;
                    enough &= it >= v;
                }
                exact &= sum == (uint64_t)iters;
            }
        }
    ok(exact, "shared-iterations: the instances' iterations sum to the whole's, for every "
              "VU count 1..40, iterations from it to 400 and 1..12 instances");
    ok(proportional, "shared-iterations: an instance without VUs gets no iterations");
    ok(enough, "shared-iterations: every instance has at least one iteration per VU");
    ok(identity, "shared-iterations: one instance runs them all");
    s.vus = 2;
    s.iterations = 10;
    ok(split_shared_iterations(&s, 0, 4) == 5 && split_shared_iterations(&s, 1, 4) == 5 &&
           split_shared_iterations(&s, 2, 4) == 0 && split_shared_iterations(&s, 3, 4) == 0,
       "shared-iterations: 10 iterations of 2 VUs over 4 instances: 5, 5, 0, 0");
}

static void test_open(void)
{
    /* every iteration k is run by exactly one (instance, worker), at the whole's due time */
    bool once = true;
    for (unsigned n = 1; n <= 9; n++)
        for (unsigned nw = 1; nw <= 5; nw++) {
            unsigned char *seen = calloc(2000, 1);
            for (unsigned i = 0; i < n; i++)
                for (unsigned w = 0; w < nw; w++)
                    for (uint64_t k = split_worker_first(i, n, w); k < 2000;
                         k += split_worker_step(n, nw)) {
                        seen[k]++;
                        once &= k % (n > 1 ? n : 1) == (n > 1 ? i : 0);
                    }
            for (size_t k = 0; k < 2000; k++)
                once &= seen[k] == 1;
            free(seen);
        }
    ok(once, "open model: with 1..9 instances of 1..5 workers, every iteration 0..1999 runs "
             "once, on instance k mod n");
    bool due = true;
    for (unsigned n = 1; n <= 20; n++)
        for (uint64_t d = 0; d < 300; d++) {
            uint64_t sum = 0;
            for (unsigned i = 0; i < n; i++) {
                uint64_t c = 0;
                for (uint64_t k = i; k < d; k += n)
                    c++;
                due &= split_due(d, i, n) == (n == 1 ? d : c);
                sum += split_due(d, i, n);
            }
            due &= sum == d;
        }
    ok(due, "open model: each instance's due count is its k mod n share, summing to the whole");
    ok(split_worker_first(0, 1, 3) == 3 && split_worker_step(1, 4) == 4 &&
           split_due(17, 0, 1) == 17,
       "open model: one instance deals to its workers as an unsplit run does");

    struct scenario c = base(EX_RAMPING_ARRIVAL_RATE);
    c.pre_allocated_vus = 10;
    c.max_vus = 25;
    int pre = 0, max = 0, slots = 0;
    for (unsigned i = 0; i < 4; i++) {
        pre += split_pre_allocated(&c, i, 4);
        max += split_max_vus(&c, i, 4);
        slots += split_slots(&c, i, 4);
    }
    ok(pre == 10 && max == 25 && slots == 25,
       "open model: pre_allocated_vus and max_vus are shared out exactly");
}

int main(void)
{
    test_share();
    test_closed();
    test_shared();
    test_open();
    return tap_done();
}
