/*
 * saturation: whether the load generator itself was the bottleneck.
 *
 * Latency measured by a client that is short of CPU includes the time its
 * own responses waited to be read, so a run whose generator was saturated
 * says little about the service. The load phase samples, every tick, the
 * process' CPU demand (the CPU time of its threads plus the time they
 * waited for a CPU, from /proc/self/task/<tid>/schedstat) and the engine's
 * loop lag (how late its workers woke for their deadlines, engine_stats),
 * and judges each SAT_WINDOW of the phase: a window is saturated when the
 * process wanted at least SAT_CPU_SHARE of the CPU it may use (a CPU it
 * shares with other processes counts as used: its threads waited for it),
 * or its workers were late for at least SAT_LAG_SHARE of the window. The phase is saturated when at
 * least SAT_RUN_SHARE of its windows were. What it may use is the smallest of: the cgroup's CPU
 * quota (v2 cpu.max, v1 cpu.cfs_quota_us/cfs_period_us, the tightest along the path to the root),
 * the CPUs in the affinity mask, and the engine's worker threads (one worker uses one CPU at most).
 *
 * The watch takes times and counters as arguments and the cgroup reader
 * takes the file system root and /proc/self/cgroup's text, so tests give
 * them their own; only the two sat_probe_* functions look at this process.
 */
#ifndef SYNCGATE_SATURATION_H
#define SYNCGATE_SATURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAT_WINDOW (1000 * 1000) /* usec */
#define SAT_CPU_SHARE 0.90
#define SAT_LAG_SHARE 0.10
#define SAT_RUN_SHARE 0.20

/*
 * CPUs a cgroup v2 cpu.max text allows ("50000 100000" -> 0.5). Returns 1
 * with *cpus set, 0 for "max" (no limit), -EINVAL for anything else.
 */
int sat_parse_cpu_max(const char *text, double *cpus);

/*
 * The same for cgroup v1: cpu.cfs_quota_us and cpu.cfs_period_us texts
 * ("-1" quota: no limit).
 */
int sat_parse_cfs(const char *quota, const char *period, double *cpus);

/*
 * The cgroup path of the process from /proc/self/cgroup's text: the v2 line
 * ("0::/path") when v1 is false, else the v1 line whose controller list
 * holds "cpu" ("4:cpu,cpuacct:/path"). Copies it to buf; returns 0, or
 * -ENOENT when there is no such line, -ENAMETOOLONG.
 */
int sat_cgroup_path(const char *proc_cgroup, bool v1, char *buf, size_t n);

/*
 * The CPUs this process may use by its cgroup's quota, reading cpu.max (v2,
 * under root/sys/fs/cgroup) or the cfs files (v1, under
 * root/sys/fs/cgroup/cpu and cpu,cpuacct) of its cgroup and every ancestor,
 * the tightest limit winning. root is "" for the real system. Returns the
 * CPUs (0: no quota found) and names where it came from in source.
 */
double sat_cgroup_cpus(const char *root, const char *proc_cgroup, char *source, size_t n);

/* The judge of one phase. */
/* One reading: when (mono usec), the process' CPU demand (usec) and the engine's lag (usec). */
struct sat_point {
    int64_t at, demand;
    uint64_t lag;
};

struct sat_watch {
    double capacity;              /* CPUs the generator may use */
    int threads;                  /* engine workers (for the lag share) */
    struct sat_point start, last; /* of the open window; the latest sample */
    unsigned windows, saturated;
    double cpu_peak; /* highest CPU demand of a window, as a share of capacity */
    double lag_peak; /* highest lag share of a window */
};

/* Start judging from p. */
void sat_init(struct sat_watch *w, double capacity, int threads, struct sat_point p);

/* A sample; closes the window when SAT_WINDOW has passed since it opened. */
void sat_sample(struct sat_watch *w, struct sat_point p);

/* The last, partial window up to the last sample: judged when it lasted half a window. */
void sat_finish(struct sat_watch *w);

struct sat_report {
    bool measured;  /* a load phase ran and was watched */
    bool saturated; /* at least SAT_RUN_SHARE of the windows were */
    unsigned windows, saturated_windows;
    double capacity; /* CPUs */
    double cpu_peak; /* CPU demand, as a share of capacity */
    double lag_peak; /* share of a window */
    char source[96]; /* where capacity came from */
};

/*
 * What the generator may use: the smallest of cgroup_cpus (0: no quota),
 * affinity_cpus and threads, and a sentence on where it came from in source
 * (cgroup_source names the quota). Returns the CPUs.
 */
double sat_capacity(double cgroup_cpus, const char *cgroup_source, int affinity_cpus, int threads,
                    char *source, size_t n);

/*
 * This process: what it may use (sat_capacity over its cgroup, its
 * affinity mask and threads), with where that came from in source.
 */
double sat_probe_capacity(int threads, char *source, size_t n);

/*
 * This process' CPU demand so far in usec: its threads' CPU time plus their
 * run-queue waits (schedstat); the CPU time alone where schedstat is missing.
 */
int64_t sat_probe_demand(void);

/* The verdict so far, with capacity and source copied in. */
void sat_result(const struct sat_watch *w, const char *source, struct sat_report *out);

#endif
