/* saturation: was the load generator the bottleneck? (see saturation.h) */
#include "syncgate/saturation.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

/* A positive integer spanning the whole text but its trailing blanks. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > UINT64_MAX / 10 - 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return false;
    for (; i < len; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t')
            return false;
    *out = v;
    return true;
}

int sat_parse_cpu_max(const char *text, double *cpus)
{
    const char *sp = strchr(text, ' ');
    uint64_t quota, period;
    if (!sp)
        return -EINVAL;
    if (!parse_u64(sp + 1, strlen(sp + 1), &period) || period == 0)
        return -EINVAL;
    if ((size_t)(sp - text) == 3 && memcmp(text, "max", 3) == 0)
        return 0;
    if (!parse_u64(text, (size_t)(sp - text), &quota) || quota == 0)
        return -EINVAL;
    *cpus = (double)quota / (double)period;
    return 1;
}

int sat_parse_cfs(const char *quota, const char *period, double *cpus)
{
    uint64_t q, p;
    size_t ql = strlen(quota);
    while (ql && (quota[ql - 1] == '\n' || quota[ql - 1] == ' '))
        ql--;
    if (!parse_u64(period, strlen(period), &p) || p == 0)
        return -EINVAL;
    if (ql == 2 && memcmp(quota, "-1", 2) == 0)
        return 0;
    if (!parse_u64(quota, ql, &q) || q == 0)
        return -EINVAL;
    *cpus = (double)q / (double)p;
    return 1;
}

/* Whether the comma list [s, s+len) holds word. */
static bool list_has(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    const char *end = s + len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *stop = comma ? comma : end;
        if ((size_t)(stop - s) == wl && memcmp(s, word, wl) == 0)
            return true;
        s = stop + 1;
    }
    return false;
}

int sat_cgroup_path(const char *proc_cgroup, bool v1, char *buf, size_t n)
{
    for (const char *line = proc_cgroup; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        /* hierarchy-id:controller-list:path */
        const char *c1 = memchr(line, ':', (size_t)(end - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
        if (c2) {
            bool match = v1 ? list_has(c1 + 1, (size_t)(c2 - c1 - 1), "cpu")
                            : (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1);
            if (match) {
                size_t len = (size_t)(end - c2 - 1);
                if (len + 1 > n)
                    return -ENAMETOOLONG;
                memcpy(buf, c2 + 1, len);
                buf[len] = '\0';
                return 0;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

/* A small file's text (cgroup files are a line), or false. */
static bool read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    if (r <= 0)
        return false;
    buf[r] = '\0';
    return true;
}

/* Drop the last path component of p in place ("/a/b" -> "/a", "/a" -> ""). */
static void path_up(char *p)
{
    char *slash = strrchr(p, '/');
    if (slash)
        *slash = '\0';
    else
        p[0] = '\0';
}

double sat_cgroup_cpus(const char *root, const char *proc_cgroup, char *source, size_t n)
{
    char cg[1024], path[2048], a[64], b[64];
    double best = 0;

    if (n)
        source[0] = '\0';
    /* v2: cpu.max along the path to the root */
    if (sat_cgroup_path(proc_cgroup, false, cg, sizeof(cg)) == 0) {
        for (;;) {
            double cpus;
            snprintf(path, sizeof(path), "%s/sys/fs/cgroup%s/cpu.max", root, cg);
            if (read_small(path, a, sizeof(a)) && sat_parse_cpu_max(a, &cpus) == 1 &&
                (best == 0 || cpus < best)) {
                best = cpus;
                snprintf(source, n, "cgroup v2 cpu.max of %s", cg[0] ? cg : "/");
            }
            if (!cg[0] || !strcmp(cg, "/"))
                break;
            path_up(cg);
        }
    }
    /* v1: the cpu controller's cfs quota, wherever it is mounted */
    if (sat_cgroup_path(proc_cgroup, true, cg, sizeof(cg)) == 0) {
        static const char *const mounts[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
        for (size_t m = 0; m < sizeof(mounts) / sizeof(mounts[0]); m++) {
            char sub[1024];
            snprintf(sub, sizeof(sub), "%s", cg);
            for (;;) {
                double cpus;
                snprintf(path, sizeof(path), "%s/sys/fs/cgroup/%s%s/cpu.cfs_quota_us", root,
                         mounts[m], sub);
                bool qa = read_small(path, a, sizeof(a));
                snprintf(path, sizeof(path), "%s/sys/fs/cgroup/%s%s/cpu.cfs_period_us", root,
                         mounts[m], sub);
                if (qa && read_small(path, b, sizeof(b)) && sat_parse_cfs(a, b, &cpus) == 1 &&
                    (best == 0 || cpus < best)) {
                    best = cpus;
                    snprintf(source, n, "cgroup v1 cpu.cfs_quota_us of %s", sub[0] ? sub : "/");
                }
                if (!sub[0] || !strcmp(sub, "/"))
                    break;
                path_up(sub);
            }
        }
    }
    return best;
}

double sat_capacity(double cgroup_cpus, const char *cgroup_source, int affinity_cpus, int threads,
                    char *source, size_t n)
{
    double cap = affinity_cpus > 0 ? affinity_cpus : 1;
    snprintf(source, n, "%d CPU%s in the affinity mask", affinity_cpus,
             affinity_cpus == 1 ? "" : "s");
    if (cgroup_cpus > 0 && cgroup_cpus < cap) {
        cap = cgroup_cpus;
        snprintf(source, n, "%s", cgroup_source && *cgroup_source ? cgroup_source : "cgroup quota");
    }
    if (threads > 0 && threads < cap) {
        cap = threads;
        snprintf(source, n, "%d engine thread%s", threads, threads == 1 ? "" : "s");
    }
    return cap;
}

double sat_probe_capacity(int threads, char *source, size_t n)
{
    char text[4096], csrc[96] = "";
    double cg = 0;
    int cpus = 0;
    cpu_set_t set;
    if (read_small("/proc/self/cgroup", text, sizeof(text)))
        cg = sat_cgroup_cpus("", text, csrc, sizeof(csrc));
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus <= 0) {
        long on = sysconf(_SC_NPROCESSORS_ONLN);
        cpus = on > 0 ? (int)on : 1;
    }
    return sat_capacity(cg, csrc, cpus, threads, source, n);
}

int64_t sat_probe_demand(void)
{
    DIR *d = opendir("/proc/self/task");
    int64_t sum = 0;
    bool any = false;
    if (d) {
        struct dirent *e;
        char path[64], text[128];
        while ((e = readdir(d))) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9')
                continue;
            snprintf(path, sizeof(path), "/proc/self/task/%.20s/schedstat", e->d_name);
            unsigned long long run, wait;
            if (read_small(path, text, sizeof(text)) &&
                sscanf(text, "%llu %llu", &run, &wait) == 2) {
                sum += (int64_t)((run + wait) / 1000);
                any = true;
            }
        }
        closedir(d);
    }
    if (any)
        return sum;
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sat_init(struct sat_watch *w, double capacity, int threads, struct sat_point p)
{
    memset(w, 0, sizeof(*w));
    w->capacity = capacity > 0 ? capacity : 1;
    w->threads = threads > 0 ? threads : 1;
    w->start = w->last = p;
}

static void judge(struct sat_watch *w, struct sat_point p)
{
    double span = (double)(p.at - w->start.at);
    /* threads that ended take their counts along: a sum that fell counts as nothing */
    double demand = p.demand > w->start.demand ? (double)(p.demand - w->start.demand) : 0;
    double lagged = p.lag > w->start.lag ? (double)(p.lag - w->start.lag) : 0;
    double cpu = demand / (span * w->capacity);
    double lag = lagged / (span * w->threads);
    w->windows++;
    if (cpu >= SAT_CPU_SHARE || lag >= SAT_LAG_SHARE)
        w->saturated++;
    if (cpu > w->cpu_peak)
        w->cpu_peak = cpu;
    if (lag > w->lag_peak)
        w->lag_peak = lag;
    w->start = p;
}

void sat_sample(struct sat_watch *w, struct sat_point p)
{
    w->last = p;
    if (p.at - w->start.at >= SAT_WINDOW)
        judge(w, p);
}

void sat_finish(struct sat_watch *w)
{
    if (w->last.at - w->start.at >= SAT_WINDOW / 2)
        judge(w, w->last);
}

void sat_result(const struct sat_watch *w, const char *source, struct sat_report *out)
{
    memset(out, 0, sizeof(*out));
    out->measured = true;
    out->windows = w->windows;
    out->saturated_windows = w->saturated;
    out->saturated = w->windows > 0 && w->saturated >= SAT_RUN_SHARE * w->windows;
    out->capacity = w->capacity;
    out->cpu_peak = w->cpu_peak;
    out->lag_peak = w->lag_peak;
    snprintf(out->source, sizeof(out->source), "%s", source ? source : "");
}
