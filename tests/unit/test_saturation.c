/* Unit tests for saturation: cgroup files, the capacity, and the window judge. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncgate/saturation.h"
#include "tap.h"

static void test_parse(void)
{
    double c = -1;
    ok(sat_parse_cpu_max("50000 100000\n", &c) == 1 && c == 0.5, "cpu.max 50000 100000: 0.5 CPU");
    ok(sat_parse_cpu_max("250000 100000", &c) == 1 && c == 2.5, "cpu.max 250000 100000: 2.5");
    c = -1;
    ok(sat_parse_cpu_max("max 100000\n", &c) == 0 && c == -1, "cpu.max max: no limit");
    ok(sat_parse_cpu_max("", &c) == -EINVAL && sat_parse_cpu_max("max", &c) == -EINVAL &&
           sat_parse_cpu_max("0 100000", &c) == -EINVAL &&
           sat_parse_cpu_max("5000 0", &c) == -EINVAL &&
           sat_parse_cpu_max("-5 100000", &c) == -EINVAL &&
           sat_parse_cpu_max("5000 100000 x", &c) == -EINVAL &&
           sat_parse_cpu_max("1e5 100000", &c) == -EINVAL &&
           sat_parse_cpu_max("99999999999999999999999 1", &c) == -EINVAL,
       "cpu.max: malformed texts are refused");
    ok(sat_parse_cfs("20000\n", "100000\n", &c) == 1 && fabs(c - 0.2) < 1e-12,
       "cfs 20000/100000: 0.2");
    c = -1;
    ok(sat_parse_cfs("-1\n", "100000\n", &c) == 0 && c == -1, "cfs quota -1: no limit");
    ok(sat_parse_cfs("x", "100000", &c) == -EINVAL && sat_parse_cfs("100", "0", &c) == -EINVAL &&
           sat_parse_cfs("100", "", &c) == -EINVAL && sat_parse_cfs("-2", "100000", &c) == -EINVAL,
       "cfs: malformed texts are refused");
}

static void test_paths(void)
{
    char buf[64];
    const char *hybrid =
        "9:name=systemd:/\n4:memory:/x\n2:cpuacct:/acct\n1:cpu:/pod/c1\n0::/v2/path\n";
    ok(sat_cgroup_path(hybrid, false, buf, sizeof(buf)) == 0 && !strcmp(buf, "/v2/path"),
       "v2 line");
    ok(sat_cgroup_path(hybrid, true, buf, sizeof(buf)) == 0 && !strcmp(buf, "/pod/c1"),
       "v1 cpu line, not cpuacct's");
    ok(sat_cgroup_path("3:cpu,cpuacct:/kubepods/burstable/pod1/abc\n", true, buf, sizeof(buf)) ==
               0 &&
           !strcmp(buf, "/kubepods/burstable/pod1/abc"),
       "v1 cpu,cpuacct line");
    ok(sat_cgroup_path("0::/\n", true, buf, sizeof(buf)) == -ENOENT, "no v1 line");
    ok(sat_cgroup_path("4:memory:/\n", false, buf, sizeof(buf)) == -ENOENT, "no v2 line");
    ok(sat_cgroup_path("", false, buf, sizeof(buf)) == -ENOENT &&
           sat_cgroup_path("garbage", true, buf, sizeof(buf)) == -ENOENT,
       "empty or malformed text");
    ok(sat_cgroup_path("0::/a/very/long/path/that/does/not/fit/in/sixteen\n", false, buf, 16) ==
           -ENAMETOOLONG,
       "a path too long for the buffer");
    ok(sat_cgroup_path("0::/last-line-without-newline", false, buf, sizeof(buf)) == 0 &&
           !strcmp(buf, "/last-line-without-newline"),
       "last line without a line break");
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void mkdirs(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static void test_cgroup_files(void)
{
    char root[] = "/tmp/syncgate-sat-XXXXXX", d[512], src[128];
    if (!mkdtemp(root)) {
        ok(0, "temporary directory");
        return;
    }
    /* v2: a pod limit of 2 CPUs above a container limit of 0.5 */
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/kubepods/pod1/ctr", root);
    mkdirs(d);
    put_file(d, "cpu.max", "50000 100000\n");
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/kubepods/pod1", root);
    put_file(d, "cpu.max", "200000 100000\n");
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/kubepods", root);
    put_file(d, "cpu.max", "max 100000\n");
    double c = sat_cgroup_cpus(root, "0::/kubepods/pod1/ctr\n", src, sizeof(src));
    ok(c == 0.5 && strstr(src, "cgroup v2") && strstr(src, "/kubepods/pod1/ctr"),
       "v2: the tightest quota on the path (%g, %s)", c, src);
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/kubepods/pod1", root);
    put_file(d, "cpu.max", "25000 100000\n");
    c = sat_cgroup_cpus(root, "0::/kubepods/pod1/ctr\n", src, sizeof(src));
    ok(c == 0.25 && strstr(src, "/kubepods/pod1") && !strstr(src, "ctr"),
       "v2: an ancestor's tighter quota wins (%g, %s)", c, src);
    c = sat_cgroup_cpus(root, "0::/kubepods\n", src, sizeof(src));
    ok(c == 0 && !src[0], "v2: max everywhere: no quota");

    /* v1: cpu controller mounted as cpu,cpuacct */
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/cpu,cpuacct/gate", root);
    mkdirs(d);
    put_file(d, "cpu.cfs_quota_us", "30000\n");
    put_file(d, "cpu.cfs_period_us", "100000\n");
    snprintf(d, sizeof(d), "%s/sys/fs/cgroup/cpu,cpuacct", root);
    put_file(d, "cpu.cfs_quota_us", "-1\n");
    put_file(d, "cpu.cfs_period_us", "100000\n");
    c = sat_cgroup_cpus(root, "3:cpu,cpuacct:/gate\n0::/\n", src, sizeof(src));
    ok(fabs(c - 0.3) < 1e-12 && strstr(src, "cgroup v1"), "v1 cfs quota (%g, %s)", c, src);
    c = sat_cgroup_cpus(root, "3:cpu,cpuacct:/elsewhere\n", src, sizeof(src));
    ok(c == 0, "v1: a cgroup without files and an unlimited root: no quota");
    c = sat_cgroup_cpus("/nonexistent-root", "0::/\n1:cpu:/\n", src, sizeof(src));
    ok(c == 0, "nothing readable: no quota");

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    ok(system(cmd) == 0, "clean up");
}

static void test_capacity(void)
{
    char src[96];
    ok(sat_capacity(0, NULL, 4, 8, src, sizeof(src)) == 4 &&
           strstr(src, "4 CPUs in the affinity mask"),
       "no quota: the affinity mask (%s)", src);
    ok(sat_capacity(0.5, "cgroup v2 cpu.max of /x", 4, 8, src, sizeof(src)) == 0.5 &&
           !strcmp(src, "cgroup v2 cpu.max of /x"),
       "a quota below the CPUs: the quota");
    ok(sat_capacity(6, "q", 4, 8, src, sizeof(src)) == 4, "a quota above the CPUs: the CPUs");
    ok(sat_capacity(0, NULL, 4, 1, src, sizeof(src)) == 1 && strstr(src, "1 engine thread"),
       "one worker uses one CPU at most (%s)", src);
    ok(sat_capacity(0, NULL, 1, 2, src, sizeof(src)) == 1 && strstr(src, "1 CPU in"),
       "taskset to one CPU (%s)", src);
}

#define S 1000000

static struct sat_point pt(int64_t at, int64_t demand, uint64_t lag)
{
    return (struct sat_point){at, demand, lag};
}

static void test_watch(void)
{
    struct sat_watch w;
    struct sat_report r;

    /* One CPU, one thread, 10 windows at 50% CPU and no lag: fine. */
    sat_init(&w, 1, 1, pt(0, 0, 0));
    for (int i = 1; i <= 100; i++)
        sat_sample(&w, pt((int64_t)i * S / 10, (int64_t)i * S / 20, 0));
    sat_finish(&w);
    sat_result(&w, "x", &r);
    ok(r.measured && !r.saturated && r.windows == 10 && r.saturated_windows == 0 &&
           fabs(r.cpu_peak - 0.5) < 1e-9 && !strcmp(r.source, "x"),
       "half a CPU for 10 s: not saturated (%u windows, peak %g)", r.windows, r.cpu_peak);

    /* 2 of 10 windows at 95%: 20%, saturated; 1 of 10: not. */
    for (int sat = 1; sat <= 2; sat++) {
        int64_t cpu = 0;
        sat_init(&w, 1, 1, pt(0, 0, 0));
        for (int i = 1; i <= 10; i++) {
            cpu += i <= sat ? 950000 : 300000;
            sat_sample(&w, pt((int64_t)i * S, cpu, 0));
        }
        sat_result(&w, "", &r);
        ok(r.saturated == (sat == 2) && r.saturated_windows == (unsigned)sat,
           "%d of 10 windows at 95%% CPU: %s", sat, sat == 2 ? "saturated" : "not saturated");
    }

    /* Capacity matters: 1.9 CPU-seconds per second on 2 CPUs is 95%, on 4 it is not. */
    sat_init(&w, 2, 2, pt(0, 0, 0));
    sat_sample(&w, pt(S, 1900000, 0));
    sat_result(&w, "", &r);
    ok(r.saturated && fabs(r.cpu_peak - 0.95) < 1e-9, "1.9 of 2 CPUs: saturated");
    sat_init(&w, 4, 2, pt(0, 0, 0));
    sat_sample(&w, pt(S, 1900000, 0));
    sat_result(&w, "", &r);
    ok(!r.saturated, "1.9 of 4 CPUs: not");

    /* Demand counts the waits: 0.3 s on the CPU and 0.65 s waiting for it is 95% wanted. */
    sat_init(&w, 1, 1, pt(0, 0, 0));
    sat_sample(&w, pt(S, 300000 + 650000, 0));
    sat_result(&w, "", &r);
    ok(r.saturated, "a CPU shared with others: what was waited for counts");

    /* Lag: 2 threads late 250 ms in total in a second is 12.5% of their time. */
    sat_init(&w, 2, 2, pt(0, 0, 0));
    sat_sample(&w, pt(S, 100000, 250000));
    sat_result(&w, "", &r);
    ok(r.saturated && fabs(r.lag_peak - 0.125) < 1e-9,
       "workers late 12.5%% of the time: saturated");
    sat_init(&w, 2, 2, pt(0, 0, 0));
    sat_sample(&w, pt(S, 100000, 150000));
    sat_result(&w, "", &r);
    ok(!r.saturated, "late 7.5%% of the time: not");

    /* Samples inside a window do not close it; a short last window is not judged. */
    sat_init(&w, 1, 1, pt(0, 0, 0));
    sat_sample(&w, pt(S / 3, S / 3, 0));
    ok(w.windows == 0, "a third of a window: still open");
    sat_finish(&w);
    sat_result(&w, "", &r);
    ok(r.windows == 0 && !r.saturated,
       "a phase shorter than half a window: nothing judged, not saturated");
    sat_init(&w, 1, 1, pt(0, 0, 0));
    sat_sample(&w, pt(6 * S / 10, 6 * S / 10, 0));
    sat_finish(&w);
    sat_result(&w, "", &r);
    ok(r.windows == 1 && r.saturated, "a 600 ms phase at full CPU is judged: saturated");

    /* Threads that ended take their counts along: a falling sum is not negative use. */
    sat_init(&w, 1, 1, pt(0, 5 * S, 0));
    sat_sample(&w, pt(S, 2 * S, 0));
    sat_result(&w, "", &r);
    ok(r.windows == 1 && !r.saturated && r.cpu_peak == 0, "a sum that fell counts as nothing");
}

int main(void)
{
    test_parse();
    test_paths();
    test_cgroup_files();
    test_capacity();
    test_watch();
    return tap_done();
}
