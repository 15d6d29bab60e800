/* Unit tests for the ramping-VUs scheduler. */
#include <stdint.h>

#include "syncgate/sched.h"
#include "tap.h"

#define S(x) ((int64_t)(x) * 1000000)
#define MS(x) ((int64_t)(x) * 1000)
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Walk t from 0 to the end in 1 ms steps and check next_change against the values. */
static int check_next_change(const struct stage *st, size_t n, int start)
{
    int64_t end = sched_duration(st, n);
    int64_t t = 0;
    int bad = 0;
    while (t < end && bad < 3) {
        int64_t next = sched_next_change(st, n, start, t);
        if (next <= t || next > end) {
            printf("# next_change(%lld) = %lld out of range\n", (long long)t, (long long)next);
            bad++;
            break;
        }
        int v = sched_vus_at(st, n, start, t);
        size_t si = sched_stage_at(st, n, t);
        /* nothing may change strictly before next */
        for (int64_t u = t + 1; u < next; u += (next - t) / 50 + 1) {
            if (sched_vus_at(st, n, start, u) != v || sched_stage_at(st, n, u) != si) {
                printf("# change at %lld before next_change %lld\n", (long long)u,
                       (long long)next);
                bad++;
                break;
            }
        }
        if (sched_vus_at(st, n, start, next - 1) != v) {
            printf("# change at %lld before next_change %lld\n", (long long)next - 1,
                   (long long)next);
            bad++;
        }
        t = next;
    }
    return bad == 0;
}

/*
 * k6's own tables (v0.48, lib/executor/ramping_vus_test.go, the unsegmented cases):
 * the raw execution steps of a ramping-vus config, each {time offset, planned VUs}
 * from that instant on. Steps with the same offset: the last one holds.
 */
struct k6_step {
    int64_t at;
    int vus;
};

/* At every step's instant the planned count, and just before it the previous one. */
static int matches_k6(const struct stage *st, size_t n, int start, const struct k6_step *steps,
                      size_t nsteps, const char *name)
{
    int bad = 0;
    for (size_t i = 0; i < nsteps; i++) {
        if (i + 1 < nsteps && steps[i + 1].at == steps[i].at)
            continue; /* overtaken at the same instant */
        int got = sched_vus_at(st, n, start, steps[i].at);
        if (got != steps[i].vus) {
            printf("# %s: at %lld us: %d VUs, k6 plans %d\n", name, (long long)steps[i].at, got,
                   steps[i].vus);
            bad++;
        }
        if (i > 0 && steps[i].at > 0) {
            int before = sched_vus_at(st, n, start, steps[i].at - 1);
            int mid = sched_vus_at(st, n, start, (steps[i - 1].at + steps[i].at) / 2);
            if (before != steps[i - 1].vus || mid != steps[i - 1].vus) {
                printf("# %s: before %lld us: %d/%d VUs, k6 plans %d\n", name,
                       (long long)steps[i].at, before, mid, steps[i - 1].vus);
                bad++;
            }
        }
    }
    /* and no change between the steps: next_change lands on them */
    int64_t t = 0, end = sched_duration(st, n);
    size_t i = 0;
    while (t < end && bad == 0) {
        int64_t next = sched_next_change(st, n, start, t);
        while (i < nsteps && steps[i].at <= t)
            i++;
        int64_t want = i < nsteps && steps[i].at < end ? steps[i].at : end;
        /* stage boundaries without a VU change are changes of stage only */
        if (next > want) {
            printf("# %s: next change after %lld us is %lld, k6 has a step at %lld\n", name,
                   (long long)t, (long long)next, (long long)want);
            bad++;
        }
        t = next;
    }
    return bad == 0;
}

static void test_k6_tables(void)
{
    /* TestRampingVUsConfigExecutionPlanExample, TestRampingVUsExecutionTupleTests (start 4) */
    const struct stage plan[] = {
        {S(2), 6}, {S(5), 1}, {S(4), 5}, {S(4), 1}, {S(3), 4}, {S(2), 4}, {0, 1}, {S(3), 1},
    };
    const struct k6_step plan_steps[] = {
        {S(0), 4},  {S(1), 5},  {S(2), 6},  {S(3), 5},  {S(4), 4},  {S(5), 3},  {S(6), 2},
        {S(7), 1},  {S(8), 2},  {S(9), 3},  {S(10), 4}, {S(11), 5}, {S(12), 4}, {S(13), 3},
        {S(14), 2}, {S(15), 1}, {S(16), 2}, {S(17), 3}, {S(18), 4}, {S(20), 1},
    };
    ok(matches_k6(plan, N(plan), 4, plan_steps, N(plan_steps), "plan example"),
       "k6 ExecutionPlanExample: VU counts at every instant");
    ok(sched_max_vus(plan, N(plan), 4) == 6 && sched_duration(plan, N(plan)) == S(23),
       "k6 ExecutionPlanExample: 6 VUs max over 23s");

    const struct stage tuple[] = {
        {S(2), 6}, {S(5), 1}, {S(4), 5}, {S(4), 1}, {S(3), 4}, {S(2), 4}, {0, 1},
        {S(3), 1}, {0, 5},    {S(3), 5}, {0, 0},    {S(2), 2}, {S(2), 0}, {S(4), 4},
    };
    const struct k6_step tuple_steps[] = {
        {S(0), 4},  {S(1), 5},  {S(2), 6},  {S(3), 5},  {S(4), 4},  {S(5), 3},  {S(6), 2},
        {S(7), 1},  {S(8), 2},  {S(9), 3},  {S(10), 4}, {S(11), 5}, {S(12), 4}, {S(13), 3},
        {S(14), 2}, {S(15), 1}, {S(16), 2}, {S(17), 3}, {S(18), 4}, {S(20), 1}, {S(23), 5},
        {S(26), 0}, {S(27), 1}, {S(28), 2}, {S(29), 1}, {S(30), 0}, {S(31), 1}, {S(32), 2},
        {S(33), 3}, {S(34), 4},
    };
    ok(matches_k6(tuple, N(tuple), 4, tuple_steps, N(tuple_steps), "execution tuple"),
       "k6 ExecutionTupleTests (whole segment): VU counts at every instant");

    /* TestRampingVUsGetRawExecutionStepsCornerCases, the unsegmented ones */
    const struct stage updown1[] = {{0, 5}, {S(2), 3}};
    const struct k6_step updown1_steps[] = {{S(0), 2}, {S(0), 5}, {S(1), 4}, {S(2), 3}};
    ok(matches_k6(updown1, N(updown1), 2, updown1_steps, N(updown1_steps), "up then down"),
       "k6 corner case: going up then down straight away (start 2)");
    const struct stage jumpup[] = {{S(2), 5}};
    const struct k6_step jumpup_steps[] = {{S(0), 3}, {S(1), 4}, {S(2), 5}};
    ok(matches_k6(jumpup, N(jumpup), 3, jumpup_steps, N(jumpup_steps), "jump up"),
       "k6 corner case: jump up then go up again (start 3)");
    const struct stage updown[] = {{S(2), 2}, {S(2), 0}, {S(2), 2}, {S(2), 0}};
    const struct k6_step updown_steps[] = {{S(0), 0}, {S(1), 1}, {S(2), 2}, {S(3), 1}, {S(4), 0},
                                        {S(5), 1}, {S(6), 2}, {S(7), 1}, {S(8), 0}};
    ok(matches_k6(updown, N(updown), 0, updown_steps, N(updown_steps), "up down up down"),
       "k6 corner case: up down up down (start 0)");
    const struct stage more[] = {{S(5), 5}, {S(5), 0}};
    const struct k6_step more_steps[] = {{S(0), 0}, {S(1), 1}, {S(2), 2}, {S(3), 3},
                                      {S(4), 4}, {S(5), 5}, {S(6), 4}, {S(7), 3},
                                      {S(8), 2}, {S(9), 1}, {S(10), 0}};
    ok(matches_k6(more, N(more), 0, more_steps, N(more_steps), "more up and down"),
       "k6 corner case: more up and down (start 0)");

    /* TestRampingVUsRun: start 5, 1s at 5, jump to 3, 1s at 3: sampled at 0.5s and 1.5s */
    const struct stage run[] = {{S(1), 5}, {0, 3}, {S(1), 3}};
    ok(sched_vus_at(run, N(run), 5, MS(500)) == 5 && sched_vus_at(run, N(run), 5, MS(1500)) == 3,
       "k6 RampingVUsRun: 5 VUs at 0.5s, 3 at 1.5s");
    /* TestRampingVUsRampDownNoWobble: start 0, 0 -> 10 over 3s: none at 100 ms, 10 at 3s,
     * then down to 0 over 2s one VU at a time */
    const struct stage nowobble[] = {{S(3), 10}, {S(2), 0}};
    int down = 1, prev = 10;
    for (int64_t t = S(3); t <= S(5); t += MS(50)) {
        int v = sched_vus_at(nowobble, 2, 0, t);
        down &= v == prev || v == prev - 1;
        prev = v;
    }
    ok(sched_vus_at(nowobble, 2, 0, MS(100)) == 0 && sched_vus_at(nowobble, 2, 0, S(3)) == 10 &&
           down && prev == 0,
       "k6 RampDownNoWobble: 0 at 100ms, 10 at 3s, then 10, 9, ..., 0");
    /* the stages shortcut: k6 starts from startVUs 1 */
    const struct stage shortcut[] = {{S(30), 10}};
    /* 9 VUs to add over 30s: the 2nd at 30s/9 = 3333333.33 us (k6: 3333333334 ns) */
    ok(sched_vus_at(shortcut, 1, 1, 0) == 1 && sched_vus_at(shortcut, 1, 1, 3333333) == 1 &&
           sched_vus_at(shortcut, 1, 1, 3333334) == 2,
       "start 1, 1 -> 10 over 30s: 1 VU at once, the 2nd at 3.33s");
    ok(sched_max_vus(shortcut, 1, 20) == 20, "vus_max counts the start value");
}

int main(void)
{
    test_k6_tables();
    /* the staging schedule of the seed */
    const struct stage staging[] = {{S(30), 10}, {S(60), 20}, {S(30), 0}};
    size_t ns = N(staging);

    ok(sched_duration(staging, ns) == S(120), "total duration 2m");
    ok(sched_max_vus(staging, ns, 0) == 20, "vus_max is the largest target");
    ok(sched_vus_at(staging, ns, 0, 0) == 0, "0 VUs at the very start of a ramp from 0");
    /* k6 rounds the change down: 0 -> 10 over 30s adds VU k at 3k seconds */
    ok(sched_vus_at(staging, ns, 0, 1) == 0, "no VU right after start (rounded down, as k6)");
    ok(sched_vus_at(staging, ns, 0, S(3) - 1) == 0, "still none just before 3s");
    ok(sched_vus_at(staging, ns, 0, S(3)) == 1, "1 VU at 3s (exactly on the line)");
    ok(sched_vus_at(staging, ns, 0, S(3) + 1) == 1, "still 1 just after 3s");
    ok(sched_vus_at(staging, ns, 0, S(15)) == 5, "5 VUs half-way through 0->10 over 30s");
    ok(sched_vus_at(staging, ns, 0, S(30) - 1) == 9, "9 VUs just before the first boundary");
    ok(sched_vus_at(staging, ns, 0, S(30)) == 10, "10 VUs at the first boundary");
    ok(sched_vus_at(staging, ns, 0, S(60)) == 15, "15 VUs half-way through 10->20 over 1m");
    ok(sched_vus_at(staging, ns, 0, S(90)) == 20, "20 VUs at the second boundary");
    ok(sched_vus_at(staging, ns, 0, S(90) + 1) == 20, "ramp-down keeps 20 just after the boundary");
    ok(sched_vus_at(staging, ns, 0, S(90) + MS(1500)) == 19, "19 VUs at 1.5s into 20->0 over 30s");
    ok(sched_vus_at(staging, ns, 0, S(105)) == 10, "10 VUs half-way down");
    ok(sched_vus_at(staging, ns, 0, S(120) - 1) == 1, "last VU leaves only at the end");
    ok(sched_vus_at(staging, ns, 0, S(120)) == 0, "0 VUs at the end");
    ok(sched_vus_at(staging, ns, 0, S(500)) == 0, "after the end: the last target");
    ok(sched_vus_at(staging, ns, 0, -5) == 0, "before the start: 0");

    ok(sched_stage_at(staging, ns, 0) == 0, "stage 0 at start");
    ok(sched_stage_at(staging, ns, S(30) - 1) == 0, "stage 0 just before its end");
    ok(sched_stage_at(staging, ns, S(30)) == 1, "stage 1 at its start");
    ok(sched_stage_at(staging, ns, S(119)) == 2, "stage 2 near the end");
    ok(sched_stage_at(staging, ns, S(120)) == 3, "stage n at the end");
    ok(sched_stage_start(staging, ns, 2) == S(90), "stage 2 starts at 1m30s");
    ok(sched_stage_start(staging, ns, 7) == S(120), "stage start past n is the end");

    /* monotone ramp: every VU count appears, in order */
    int prev = 0, monotone = 1;
    for (int64_t t = 0; t <= S(90); t += MS(10)) {
        int v = sched_vus_at(staging, ns, 0, t);
        if (v < prev || v > prev + 1)
            monotone = 0;
        prev = v;
    }
    ok(monotone, "ramp-up moves one VU at a time, never down");

    /* 0s stages jump */
    const struct stage jump[] = {{0, 50}, {S(10), 50}, {0, 5}, {S(10), 5}};
    size_t nj = N(jump);
    ok(sched_duration(jump, nj) == S(20), "0s stages add no time");
    ok(sched_vus_at(jump, nj, 0, 0) == 50, "a first 0s stage jumps at t=0");
    ok(sched_vus_at(jump, nj, 0, S(5)) == 50, "constant 50");
    ok(sched_vus_at(jump, nj, 0, S(10) - 1) == 50, "still 50 just before the jump");
    ok(sched_vus_at(jump, nj, 0, S(10)) == 5, "jump down to 5 exactly at 10s");
    ok(sched_vus_at(jump, nj, 0, S(15)) == 5, "constant 5");
    ok(sched_stage_at(jump, nj, 0) == 1, "0s stage is never the running one");
    ok(sched_stage_at(jump, nj, S(10)) == 3, "after a jump, the stage following it");
    ok(sched_max_vus(jump, nj, 0) == 50, "vus_max with jumps");

    /* ramp from a jump target, then down to zero */
    const struct stage mixed[] = {{0, 10}, {S(10), 30}, {S(4), 0}};
    size_t nm = N(mixed);
    ok(sched_vus_at(mixed, nm, 0, S(5)) == 20, "ramp starts from the jumped-to target");
    ok(sched_vus_at(mixed, nm, 0, S(10)) == 30, "ramp reaches its target");
    ok(sched_vus_at(mixed, nm, 0, S(12)) == 15, "ramp-down halves at half time");
    ok(sched_vus_at(mixed, nm, 0, S(12) + 1) == 15, "ramp-down drops a VU only on the line");

    /* empty and zero schedules */
    ok(sched_duration(NULL, 0) == 0, "empty schedule: no time");
    ok(sched_vus_at(NULL, 0, 0, 0) == 0, "empty schedule: no VUs");
    ok(sched_stage_at(NULL, 0, 0) == 0, "empty schedule: stage index n=0");
    ok(sched_max_vus(NULL, 0, 0) == 0, "empty schedule: vus_max 0");
    ok(sched_next_change(NULL, 0, 0, 0) == INT64_MAX, "empty schedule: no next change");
    const struct stage zero[] = {{S(5), 0}, {S(5), 0}};
    ok(sched_vus_at(zero, 2, 0, S(3)) == 0 && sched_max_vus(zero, 2, 0) == 0, "zero targets: 0 VUs");
    ok(sched_next_change(zero, 2, 0, S(1)) == S(5), "zero targets: next change is the boundary");
    const struct stage only0s[] = {{0, 7}};
    ok(sched_duration(only0s, 1) == 0 && sched_vus_at(only0s, 1, 0, 0) == 7,
       "a lone 0s stage: no time, its target at t=0");

    /* next_change */
    ok(sched_next_change(staging, ns, 0, 0) == S(3), "first VU change at 3s");
    ok(sched_next_change(staging, ns, 0, S(3)) == S(6), "then 3s later");
    ok(sched_next_change(staging, ns, 0, S(90)) == S(91) + MS(500), "ramp-down: first drop at 1.5s");
    ok(sched_next_change(staging, ns, 0, S(119)) == S(120), "last change at the end");
    ok(sched_next_change(staging, ns, 0, S(120)) == INT64_MAX, "no change after the end");
    ok(sched_next_change(jump, nj, 0, S(3)) == S(10), "constant stage: next change at the boundary");
    ok(sched_next_change(staging, ns, 0, -10) == 0, "before the start: the start");
    ok(check_next_change(staging, ns, 0), "next_change consistent over the staging schedule");
    ok(check_next_change(mixed, nm, 0), "next_change consistent over a mixed schedule");
    const struct stage odd[] = {{MS(777), 13}, {MS(333), 2}, {0, 9}, {MS(1001), 1000}};
    ok(check_next_change(odd, N(odd), 0), "next_change consistent over uneven steps");

    /* very long, very wide stage: no overflow */
    const struct stage big[] = {{S(86400) * 90, 1000000}};
    ok(sched_vus_at(big, 1, 0, S(86400) * 45) == 500000, "90-day ramp to 1M VUs: half at half time");

    /* splitting VUs across threads */
    int sum = 0;
    for (int th = 0; th < 3; th++)
        sum += sched_thread_share(10, th, 3);
    ok(sum == 10, "thread shares add up to the active count");
    ok(sched_thread_share(10, 0, 3) == 4 && sched_thread_share(10, 1, 3) == 3 &&
           sched_thread_share(10, 2, 3) == 3,
       "10 VUs over 3 threads: 4/3/3");
    ok(sched_thread_share(1, 1, 2) == 0, "a thread beyond the active count gets none");
    ok(sched_thread_share(5, 0, 1) == 5, "one thread gets all");

    /* graceful ramp-down bound */
    ok(!sched_must_abort(S(10), S(15), S(10)), "in-flight request may finish within the bound");
    ok(sched_must_abort(S(10), S(20), S(10)), "aborted when the bound runs out");
    ok(sched_must_abort(S(10), S(10), 0), "no graceful ramp-down: aborted at once");

    return tap_done();
}
