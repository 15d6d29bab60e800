/* Unit tests for executor: VU counts, iteration due times (k6's own table for the ramping
 * arrival rate), counts due by a time, lengths, slots and ends of the six executors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/executor.h"
#include "syncgate/units.h"
#include "scenario_base.h"
#include "tap.h"

#define S USEC_PER_SEC
#define MS USEC_PER_MSEC

static void test_open(void)
{
    /* constant-arrival-rate 10/s for 1s: k = 0..9 at k * 100 ms, never 1s itself */
    struct scenario c = base(EX_CONSTANT_ARRIVAL_RATE);
    c.rate = 10;
    c.duration = S;
    c.pre_allocated_vus = 2;
    c.max_vus = 5;
    bool exact = true;
    for (uint64_t k = 0; k < 10; k++)
        exact &= ex_due(&c, k) == (int64_t)k * 100 * MS;
    ok(exact && ex_due(&c, 10) == -1, "constant 10/s for 1s: 10 iterations every 100 ms from 0");
    ok(ex_due_by(&c, 0) == 1 && ex_due_by(&c, 99 * MS) == 1 && ex_due_by(&c, 100 * MS) == 2 &&
           ex_due_by(&c, 10 * S) == 10,
       "constant: due by t counts the iteration at t itself, all 10 at the end");
    ok(ex_open(&c) && ex_slots(&c) == 5 && ex_length(&c) == S && ex_vus_at(&c, 0) == 0,
       "constant: open model, max_vus slots, no VUs of its own");

    /* 1000 per minute (time_unit 1m): 60 ms apart, exact at the millionth iteration */
    c.rate = 1000;
    c.time_unit = 60 * S;
    c.duration = 10000 * 60 * S;
    ok(ex_due(&c, 1) == 60 * MS && ex_due(&c, 1000000) == 60000 * S,
       "time_unit 1m: no drift after a million iterations (%lld)",
       (long long)ex_due(&c, 1000000));
    /* 3 per second: 333333, 666666 usec (floor), still exact at k = 3 */
    c.rate = 3;
    c.time_unit = S;
    c.duration = 10 * S;
    ok(ex_due(&c, 1) == 333333 && ex_due(&c, 2) == 666666 && ex_due(&c, 3) == S &&
           ex_due(&c, 29) == 9666666 && ex_due(&c, 30) == -1,
       "3/s: periods that do not divide a microsecond never accumulate error");
    ok(fabs(ex_rate_at(&c, 5 * S) - 3) < 1e-9 && ex_rate_at(&c, 10 * S) == 0, "constant rate");

    /* k6's TestRampingArrivalRateCal: 0 -> 1/s over 5s, 1/s for 1s, 1 -> 0 over 5s */
    struct scenario r = base(EX_RAMPING_ARRIVAL_RATE);
    r.start_rate = 0;
    r.stages[0] = (struct stage){5 * S, 1};
    r.stages[1] = (struct stage){1 * S, 1};
    r.stages[2] = (struct stage){5 * S, 0};
    r.nstages = 3;
    r.max_vus = 1;
    static const int64_t want_ms[] = {3162, 4472, 5500, 6527, 7837, 11000};
    bool match = true;
    for (uint64_t k = 0; k < 6; k++)
        match &= ex_due(&r, k) / MS == want_ms[k];
    ok(match && ex_due(&r, 6) == -1,
       "ramping arrival rate: k6's table 3162, 4472, 5500, 6527, 7837, 11000 ms (got %lld %lld "
       "%lld %lld %lld %lld)",
       (long long)ex_due(&r, 0) / MS, (long long)ex_due(&r, 1) / MS,
       (long long)ex_due(&r, 2) / MS, (long long)ex_due(&r, 3) / MS,
       (long long)ex_due(&r, 4) / MS, (long long)ex_due(&r, 5) / MS);
    ok(ex_due_by(&r, 3161 * MS) == 0 && ex_due_by(&r, 3163 * MS) == 1 &&
           ex_due_by(&r, 5500 * MS) == 3 && ex_due_by(&r, 11 * S) == 6 &&
           ex_due_by(&r, 20 * S) == 6,
       "ramping: due by t follows the area under the rate line");
    ok(fabs(ex_rate_at(&r, 2500 * MS) - 0.5) < 1e-9 && fabs(ex_rate_at(&r, 5500 * MS) - 1) < 1e-9 &&
           fabs(ex_rate_at(&r, 8500 * MS) - 0.5) < 1e-9,
       "ramping: the target rate moves linearly");
    ok(ex_length(&r) == 11 * S, "ramping: the length is the stages' sum");

    /* 50/s from a start rate of 10, ramping to 50 over 10s: area 300 iterations */
    struct scenario q = base(EX_RAMPING_ARRIVAL_RATE);
    q.start_rate = 10;
    q.stages[0] = (struct stage){10 * S, 50};
    q.nstages = 1;
    q.max_vus = 1;
    /* the first where 10 t + 2 t^2 = 1: t = (sqrt(108) - 10) / 4 s = 98076 us */
    ok(ex_due_by(&q, 10 * S) == 300 && ex_due(&q, 299) == 10 * S && ex_due(&q, 300) == -1 &&
           llabs(ex_due(&q, 0) - 98076) <= 1,
       "ramping from a start rate: 300 iterations, the first at 98.076 ms (%lld)",
       (long long)ex_due(&q, 0));
    bool mono = true;
    for (uint64_t k = 1; k < 300; k++)
        mono &= ex_due(&q, k) >= ex_due(&q, k - 1);
    ok(mono, "ramping: due times never go back");
}

static void test_closed(void)
{
    struct scenario c = base(EX_CONSTANT_VUS);
    c.vus = 7;
    c.duration = 30 * S;
    c.graceful_stop = 5 * S;
    c.start_time = 10 * S;
    ok(ex_vus_at(&c, 0) == 7 && ex_vus_at(&c, 30 * S - 1) == 7 && ex_vus_at(&c, 30 * S) == 0 &&
           ex_vus_at(&c, -1) == 0,
       "constant-vus: 7 VUs for its duration, none before or after");
    ok(ex_next_change(&c, 3 * S) == 30 * S && ex_next_change(&c, 30 * S) == INT64_MAX,
       "constant-vus: the next change is the end");
    ok(ex_end(&c) == 45 * S && ex_slots(&c) == 7 && !ex_open(&c),
       "constant-vus: ends at start_time + duration + graceful_stop");

    struct scenario r = base(EX_RAMPING_VUS);
    r.start_vus = 0;
    r.stages[0] = (struct stage){10 * S, 10};
    r.stages[1] = (struct stage){10 * S, 0};
    r.nstages = 2;
    ok(ex_vus_at(&r, 0) == 0 && ex_vus_at(&r, 1 * S) == 1 && ex_vus_at(&r, 9999 * MS) == 9 &&
           ex_vus_at(&r, 10 * S) == 10 && ex_vus_at(&r, 20 * S) == 0 && ex_slots(&r) == 10,
       "ramping-vus: k6's rounding (one VU per second up, VU 10 at the stage's end)");
    ok(ex_next_change(&r, 0) == 1 * S && ex_next_change(&r, 19 * S + 1) == 20 * S,
       "ramping-vus: next change from the schedule");

    struct scenario p = base(EX_PER_VU_ITERATIONS);
    p.vus = 4;
    p.iterations = 10;
    p.max_duration = 60 * S;
    ok(ex_vus_at(&p, 0) == 4 && ex_length(&p) == 60 * S && ex_slots(&p) == 4,
       "per-vu-iterations: its VUs until max_duration");
    struct scenario sh = base(EX_SHARED_ITERATIONS);
    sh.vus = 3;
    sh.iterations = 100;
    sh.max_duration = 2 * S;
    ok(ex_vus_at(&sh, S) == 3 && ex_vus_at(&sh, 2 * S) == 0 && ex_due(&sh, 0) == -1,
       "shared-iterations: its VUs until max_duration, no due times");
    ok(!strcmp(executor_names[EX_RAMPING_ARRIVAL_RATE], "ramping-arrival-rate") &&
           !executor_names[EX_SHARED_ITERATIONS + 1],
       "executor names as k6 spells them");
}

int main(void)
{
    test_open();
    test_closed();
    return tap_done();
}
