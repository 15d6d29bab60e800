/* Unit tests for the ramping-VUs scheduler. */
#include <stdint.h>

#include "syncgate/sched.h"
#include "tap.h"

#define S(x) ((int64_t)(x) * 1000000)
#define MS(x) ((int64_t)(x) * 1000)
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Walk t from 0 to the end in 1 ms steps and check next_change against the values. */
static int check_next_change(const struct stage *st, size_t n)
{
    int64_t end = sched_duration(st, n);
    int64_t t = 0;
    int bad = 0;
    while (t < end && bad < 3) {
        int64_t next = sched_next_change(st, n, t);
        if (next <= t || next > end) {
            printf("# next_change(%lld) = %lld out of range\n", (long long)t, (long long)next);
            bad++;
            break;
        }
        int v = sched_vus_at(st, n, t);
        size_t si = sched_stage_at(st, n, t);
        /* nothing may change strictly before next */
        for (int64_t u = t + 1; u < next; u += (next - t) / 50 + 1) {
            if (sched_vus_at(st, n, u) != v || sched_stage_at(st, n, u) != si) {
                printf("# change at %lld before next_change %lld\n", (long long)u,
                       (long long)next);
                bad++;
                break;
            }
        }
        if (sched_vus_at(st, n, next - 1) != v) {
            printf("# change at %lld before next_change %lld\n", (long long)next - 1,
                   (long long)next);
            bad++;
        }
        t = next;
    }
    return bad == 0;
}

int main(void)
{
    /* the staging schedule of the seed */
    const struct stage staging[] = {{S(30), 10}, {S(60), 20}, {S(30), 0}};
    size_t ns = N(staging);

    ok(sched_duration(staging, ns) == S(120), "total duration 2m");
    ok(sched_max_vus(staging, ns) == 20, "vus_max is the largest target");
    ok(sched_vus_at(staging, ns, 0) == 0, "0 VUs at the very start of a ramp from 0");
    ok(sched_vus_at(staging, ns, 1) == 1, "first VU right after start (rounded up)");
    ok(sched_vus_at(staging, ns, S(3)) == 1, "1 VU at 3s (exactly on the line)");
    ok(sched_vus_at(staging, ns, S(3) + 1) == 2, "2 VUs just after 3s");
    ok(sched_vus_at(staging, ns, S(15)) == 5, "5 VUs half-way through 0->10 over 30s");
    ok(sched_vus_at(staging, ns, S(30) - 1) == 10, "10 VUs just before the first boundary");
    ok(sched_vus_at(staging, ns, S(30)) == 10, "10 VUs at the first boundary");
    ok(sched_vus_at(staging, ns, S(60)) == 15, "15 VUs half-way through 10->20 over 1m");
    ok(sched_vus_at(staging, ns, S(90)) == 20, "20 VUs at the second boundary");
    ok(sched_vus_at(staging, ns, S(90) + 1) == 20, "ramp-down keeps 20 just after the boundary");
    ok(sched_vus_at(staging, ns, S(90) + MS(1500)) == 19, "19 VUs at 1.5s into 20->0 over 30s");
    ok(sched_vus_at(staging, ns, S(105)) == 10, "10 VUs half-way down");
    ok(sched_vus_at(staging, ns, S(120) - 1) == 1, "last VU leaves only at the end");
    ok(sched_vus_at(staging, ns, S(120)) == 0, "0 VUs at the end");
    ok(sched_vus_at(staging, ns, S(500)) == 0, "after the end: the last target");
    ok(sched_vus_at(staging, ns, -5) == 0, "before the start: 0");

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
        int v = sched_vus_at(staging, ns, t);
        if (v < prev || v > prev + 1)
            monotone = 0;
        prev = v;
    }
    ok(monotone, "ramp-up moves one VU at a time, never down");

    /* 0s stages jump */
    const struct stage jump[] = {{0, 50}, {S(10), 50}, {0, 5}, {S(10), 5}};
    size_t nj = N(jump);
    ok(sched_duration(jump, nj) == S(20), "0s stages add no time");
    ok(sched_vus_at(jump, nj, 0) == 50, "a first 0s stage jumps at t=0");
    ok(sched_vus_at(jump, nj, S(5)) == 50, "constant 50");
    ok(sched_vus_at(jump, nj, S(10) - 1) == 50, "still 50 just before the jump");
    ok(sched_vus_at(jump, nj, S(10)) == 5, "jump down to 5 exactly at 10s");
    ok(sched_vus_at(jump, nj, S(15)) == 5, "constant 5");
    ok(sched_stage_at(jump, nj, 0) == 1, "0s stage is never the running one");
    ok(sched_stage_at(jump, nj, S(10)) == 3, "after a jump, the stage following it");
    ok(sched_max_vus(jump, nj) == 50, "vus_max with jumps");

    /* ramp from a jump target, then down to zero */
    const struct stage mixed[] = {{0, 10}, {S(10), 30}, {S(4), 0}};
    size_t nm = N(mixed);
    ok(sched_vus_at(mixed, nm, S(5)) == 20, "ramp starts from the jumped-to target");
    ok(sched_vus_at(mixed, nm, S(10)) == 30, "ramp reaches its target");
    ok(sched_vus_at(mixed, nm, S(12)) == 15, "ramp-down halves at half time");
    ok(sched_vus_at(mixed, nm, S(12) + 1) == 15, "ramp-down rounds up");

    /* empty and zero schedules */
    ok(sched_duration(NULL, 0) == 0, "empty schedule: no time");
    ok(sched_vus_at(NULL, 0, 0) == 0, "empty schedule: no VUs");
    ok(sched_stage_at(NULL, 0, 0) == 0, "empty schedule: stage index n=0");
    ok(sched_max_vus(NULL, 0) == 0, "empty schedule: vus_max 0");
    ok(sched_next_change(NULL, 0, 0) == INT64_MAX, "empty schedule: no next change");
    const struct stage zero[] = {{S(5), 0}, {S(5), 0}};
    ok(sched_vus_at(zero, 2, S(3)) == 0 && sched_max_vus(zero, 2) == 0, "zero targets: 0 VUs");
    ok(sched_next_change(zero, 2, S(1)) == S(5), "zero targets: next change is the boundary");
    const struct stage only0s[] = {{0, 7}};
    ok(sched_duration(only0s, 1) == 0 && sched_vus_at(only0s, 1, 0) == 7,
       "a lone 0s stage: no time, its target at t=0");

    /* next_change */
    ok(sched_next_change(staging, ns, 0) == 1, "first VU change 1us after start");
    ok(sched_next_change(staging, ns, 1) == S(3) + 1, "then 3s later");
    ok(sched_next_change(staging, ns, S(90)) == S(91) + MS(500), "ramp-down: first drop at 1.5s");
    ok(sched_next_change(staging, ns, S(119)) == S(120), "last change at the end");
    ok(sched_next_change(staging, ns, S(120)) == INT64_MAX, "no change after the end");
    ok(sched_next_change(jump, nj, S(3)) == S(10), "constant stage: next change at the boundary");
    ok(sched_next_change(staging, ns, -10) == 0, "before the start: the start");
    ok(check_next_change(staging, ns), "next_change consistent over the staging schedule");
    ok(check_next_change(mixed, nm), "next_change consistent over a mixed schedule");
    const struct stage odd[] = {{MS(777), 13}, {MS(333), 2}, {0, 9}, {MS(1001), 1000}};
    ok(check_next_change(odd, N(odd)), "next_change consistent over uneven steps");

    /* very long, very wide stage: no overflow */
    const struct stage big[] = {{S(86400) * 90, 1000000}};
    ok(sched_vus_at(big, 1, S(86400) * 45) == 500000, "90-day ramp to 1M VUs: half at half time");

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
