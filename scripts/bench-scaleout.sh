#!/bin/sh
# bench-scaleout.sh: one gate over N local processes, as the pods of an Indexed Job run it,
# against the same gate run by one process.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. The project's fixture
# server answers on 127.0.0.1 with exact delays (path /d/K waits K ms; /f 1 ms; /s 2 ms).
# For each N, two profiles run as N processes (JOB_COMPLETION_INDEX 0..N-1, a coordinator
# on a free port, a shared token) and as one process:
#   latency   shared-iterations, 2N VUs, 200N iterations over 100 data rows in turn: 90% of
#             them 1 to 9 ms, 8% 12 ms, 2% 20 ms, so p(95) and p(99) fall inside a group
#             of equal delays; both runs send the same requests with the same server delays
#   schedule  per-vu-iterations (N VUs x 50), constant-arrival-rate 200/s and constant-vus
#             (2N VUs, 100 ms think time), both for the measurement's length; as N
#             processes REPEATS times (the start skew)
# Then N processes again with an abortOnFail threshold that the merged count crosses.
#
# usage: scripts/bench-scaleout.sh [-d SECONDS] [-r REPEATS] [-s SYNCGATE] [N ...]
#   -d SECONDS   length of the time-based scenarios (default 5)
#   -r REPEATS   distributed runs per N for the start skew (default 3)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE); the fixture server is
#                taken from the same build directory (tests/fixture/fixture)
#   N            instance counts (default: 2 4 16)
# Needs: python3.
#
# What it prints, per N:
#   T0             how far each peer's T0 on the shared monotonic clock was from the
#                  coordinator's (the clock offset each one measured): max
#   start skew     each instance's start (its T0 plus how late its first engine thread
#                  turned after it) minus the coordinator's, over every peer of every
#                  repeat: p50, p99, max
#   merged p95/99  http_req_duration of `shared` in the coordinator's merge and in the one
#                  process's run, and their difference against the histogram's 0.1% (the
#                  requests and server delays are the same; what differs between two runs
#                  is each request's own noise: the merge itself is exact, see
#                  tests/unit/test_snapshot.c)
#   totals         iterations of shared-iterations and per-vu-iterations, the open model's
#                  due count and what ran or was dropped, the closed model's requests: N
#                  processes against one
#   abort          from the coordinator's abortOnFail line to each peer hearing STOP (max)
#   coordinator    its checking time per report and merging time per peer (its own
#                  fleet_stats line), the report size, its CPU time and peak memory beyond a
#                  peer's, and what that makes per peer per second and for 500 pods
set -eu

DURATION=5
REPEATS=3
SYNCGATE=${SYNCGATE:-build/syncgate}
while getopts d:r:s:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) REPEATS=$OPTARG ;;
    s) SYNCGATE=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
COUNTS=${*:-2 4 16}

die() { echo "bench-scaleout: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is missing"
[ -x "$SYNCGATE" ] || die "$SYNCGATE is not built (meson setup build && meson compile -C build)"
FIXTURE=$(dirname "$SYNCGATE")/tests/fixture/fixture
[ -x "$FIXTURE" ] || die "$FIXTURE is not built (the build needs -Dtests=true)"
case $DURATION$REPEATS in '' | *[!0-9]*) die "-d and -r want whole numbers" ;; esac
ulimit -n 65536 2>/dev/null || true

export SYNCGATE FIXTURE DURATION REPEATS COUNTS
exec python3 - <<'PY'
import json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time, datetime

SG, FX = os.path.abspath(os.environ["SYNCGATE"]), os.path.abspath(os.environ["FIXTURE"])
D, R = int(os.environ["DURATION"]), int(os.environ["REPEATS"])
COUNTS = [int(n) for n in os.environ["COUNTS"].split()]
TMP = tempfile.mkdtemp(prefix="bench-scaleout.")
ENV = {k: v for k, v in os.environ.items()
       if not re.match(r"^(SYNCGATE_.*|K6_.*|TESTID|JOB_COMPLETION_INDEX|STAGES|ENVIRONMENT)$", k)}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


DELAYS = [1 + r // 10 for r in range(90)] + [12] * 8 + [20] * 2
routes = ["*:GET:/d/%d=delay=%dms" % (k, k) for k in sorted(set(DELAYS))]
routes += ["*:GET:/f=delay=1ms", "*:GET:/s=delay=2ms", "*:*:*=status=200"]
pf = os.path.join(TMP, "fixture.port")
fx = subprocess.Popen([FX, "--listen", "127.0.0.1:0", "--port-file", pf] +
                      sum([["--route", r] for r in routes], []),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(500):
    if os.path.exists(pf) and open(pf).read().strip():
        break
    time.sleep(0.01)
PORT = int(open(pf).read().split()[0])
with open(os.path.join(TMP, "rows.csv"), "w") as f:
    f.write("d\n" + "".join("%d\n" % k for k in DELAYS))


def profile(n, kind):
    name = os.path.join(TMP, "p%d%s.yaml" % (n, kind))
    if kind == "abort":
        load = ("  scenarios:\n    open: {executor: constant-arrival-rate, journey: fast, rate: 300,"
                " duration: 20s, pre_allocated_vus: %d}\n"
                "  thresholds:\n    http_reqs: [{threshold: \"count<900\", abortOnFail: true}]\n" % (2 * n))
    elif kind == "latency":
        load = ("  scenarios:\n"
                "    shared: {executor: shared-iterations, journey: lat, vus: %d, iterations: %d, max_duration: 60s}\n"
                "  thresholds:\n"
                "    \"http_req_duration{scenario:shared}\": [\"p(95)<60000\", \"p(99)<60000\"]\n"
                % (2 * n, 200 * n))
    else:
        load = ("  scenarios:\n"
                "    pervu: {executor: per-vu-iterations, journey: fast, vus: %d, iterations: 50, max_duration: 60s}\n"
                "    open: {executor: constant-arrival-rate, journey: fast, rate: 200, duration: %ds, pre_allocated_vus: %d}\n"
                "    closed: {executor: constant-vus, journey: slow, vus: %d, duration: %ds}\n"
                % (n, D, 2 * n, 2 * n, D))
    with open(name, "w") as f:
        f.write("""environment: bench
services:
  - {name: svc, url: "http://127.0.0.1:%d/f"}
data:
  rows: {file: rows.csv}
journeys:
  - {name: lat, think_time: 0s, steps: [{name: lat, service: svc, path: "/d/${data.rows.d}"}]}
  - {name: fast, think_time: 0s, steps: [{name: fast, service: svc, path: /f}]}
  - {name: slow, think_time: 100ms, steps: [{name: slow, service: svc, path: /s}]}
load:
  think_time: 0s
  threads: 1
  request_timeout: 10s
%s""" % (PORT, load))
    return name


def logs(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def t_of(ev):
    return datetime.datetime.strptime(ev["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def run(n, prof, tag):
    """N processes (or one when n == 1): {index: (exit, cpu_s, logs)}, the summary export."""
    port, d = free_port(), os.path.join(TMP, tag)
    os.makedirs(d, exist_ok=True)
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("bench-token-%d\n" % port)
    export = os.path.join(d, "summary.json")
    procs = {}
    for i in range(n):
        env = dict(ENV)
        if n > 1:
            env.update(SYNCGATE_INSTANCES=str(n), JOB_COMPLETION_INDEX=str(i),
                       SYNCGATE_COORDINATOR="127.0.0.1:%d" % port, SYNCGATE_PEER_TOKEN_FILE=token)
        args = [SG, "load", "-p", prof, "--log-format", "json",
                "--summary-trend-stats", "avg,min,med,max,p(95),p(99)"]
        if i == 0:
            args += ["--summary-export", export]
        err = open(os.path.join(d, "err%d" % i), "w")
        procs[i] = (subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err), err)
    out = {}
    for i, (p, err) in procs.items():
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.close()
        out[i] = (p.returncode, ru.ru_utime + ru.ru_stime, logs(err.name), ru.ru_maxrss)
    with open(export) as f:
        return out, json.load(f)


def ev(lines, name):
    return [e for e in lines if e.get("event") == name]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def scen(s, name, key):
    return (s.get("scenarios", {}).get(name) or {}).get(key, 0)


print("syncgate %s; %d CPUs; fixture with exact delays on 127.0.0.1; time-based scenarios %d s"
      % (subprocess.run([SG, "version"], capture_output=True, text=True).stdout.split()[1],
         os.cpu_count(), D))
for n in COUNTS:
    print("\n== N = %d" % n)
    lat_n, ln = run(n, profile(n, "latency"), "n%d-lat" % n)
    lat_1, l1 = run(1, profile(n, "latency"), "n%d-lat1" % n)
    sched_1, s1 = run(1, profile(n, "schedule"), "n%d-sched1" % n)
    skews, t0s, fleets = [], [], []
    for r in range(R):
        res, sn = run(n, profile(n, "schedule"), "n%d-r%d" % (n, r))
        fleets.append(res)
        starts, t0 = {}, {}
        for i, (_, _, lines, _) in res.items():
            fs = ev(lines, "fleet_start")
            if fs:
                t0[i] = fs[0]["t0_mono_us"]
                starts[i] = fs[0]["t0_mono_us"] + fs[0]["late_us"]
        if 0 in starts:
            skews += [abs(starts[i] - starts[0]) / 1000 for i in starts if i]
            t0s += [abs(t0[i] - t0[0]) for i in t0 if i]
    print("exit codes: N processes %s, one process %s (114: the saturation watch found a "
          "generator short of CPU)" % (sorted({c for f in fleets + [lat_n] for c, _, _, _ in f.values()}),
                                       sorted({lat_1[0][0], sched_1[0][0]})))
    print("T0: the peers' at most %d us from the coordinator's" % max(t0s) if t0s else "T0: none")
    print("start skew: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d peers over %d runs)"
          % (pct(skews, 50), pct(skews, 99), max(skews) if skews else float("nan"), len(skews), R))
    key = "http_req_duration{scenario:shared}"
    for p in ("p(95)", "p(99)"):
        a, b = ln["metrics"][key][p], l1["metrics"][key][p]
        print("merged %s (latency profile): %.3f ms, one process %.3f ms, difference %.2f%% "
              "(histogram precision 0.1%%)" % (p, a, b, 100 * abs(a - b) / b))
    print("shared-iterations: %d of %d (one process: %d); per-vu-iterations: %d of %d (one "
          "process: %d)" % (scen(ln, "shared", "iterations"), 200 * n, scen(l1, "shared", "iterations"),
                            scen(sn, "pervu", "iterations"), 50 * n, scen(s1, "pervu", "iterations")))
    print("open model: %d due (one process: %d), %d ran + %d dropped"
          % (scen(sn, "open", "iterations_due"), scen(s1, "open", "iterations_due"),
             scen(sn, "open", "iterations"), scen(sn, "open", "dropped_iterations")))
    c_n, c_1 = scen(sn, "closed", "iterations"), scen(s1, "closed", "iterations")
    print("closed model (time-based): %d requests, one process %d: %+.2f%%"
          % (c_n, c_1, 100 * (c_n - c_1) / c_1 if c_1 else float("nan")))
    # what the coordinator pays for its peers (the last schedule run)
    res = fleets[-1]
    st = (ev(res[0][2], "fleet_stats") or [{}])[0]
    reports, merges = st.get("reports", 0), st.get("merged_peers", 0)
    dec = st.get("decode_us", 0) / reports if reports else float("nan")
    mer = st.get("merge_us", 0) / merges if merges else float("nan")
    size = st.get("report_bytes", 0) / reports if reports else float("nan")
    took = max(t_of(ev(l, "test_finish")[0]) for _, _, l, _ in res.values()) - \
        min(t_of(ev(l, "test_start")[0]) for _, _, l, _ in res.values())
    merges_per_s = st.get("merges", 0) / took if took else 0
    peer_cpu = statistics.mean(c for i, (_, c, _, _) in res.items() if i)
    peer_rss = statistics.mean(m for i, (_, _, _, m) in res.items() if i)
    extra = (res[0][1] - peer_cpu) / (n - 1) / took * 1e6
    extra_rss = (res[0][3] - peer_rss) / (n - 1)
    per_peer = dec + mer * merges_per_s
    print("coordinator: %d reports of %.0f bytes, checked in %.0f us each; %d merges (%.1f/s), "
          "%.0f us per peer merged; peak RSS %.1f MiB, a peer's %.1f MiB"
          % (reports, size, dec, st.get("merges", 0), merges_per_s, mer, res[0][3] / 1024,
             peer_rss / 1024))
    print("coordinator per peer per second: %.0f us by its own count (check + merges), CPU "
          "time beyond a peer's %.0f us, memory beyond a peer's %.0f KiB per peer; 500 pods: "
          "%.2f CPU by count, %.2f by CPU time, %.0f KB/s of reports"
          % (per_peer, extra, extra_rss, 500 * per_peer / 1e6, 500 * extra / 1e6, 500 * size / 1000))

    res, sa = run(n, profile(n, "abort"), "n%d-abort" % n)
    ab = [e for e in ev(res[0][2], "threshold") if e.get("abort")]
    lags = [t_of(ev(l, "coordinator_stop")[0]) - t_of(ab[0])
            for i, (_, _, l, _) in res.items() if i and ab and ev(l, "coordinator_stop")]
    ends = [t_of(ev(l, "test_finish")[0]) - t_of(ab[0]) for _, _, l, _ in res.values() if ab]
    print("abort: exit codes %s; peers heard STOP %.0f ms after the abort (max of %d), every "
          "process ended within %.0f ms" % (sorted({c for c, _, _, _ in res.values()}),
                                            1000 * max(lags) if lags else float("nan"), len(lags),
                                            1000 * max(ends) if ends else float("nan")))
fx.send_signal(signal.SIGTERM)
fx.wait()
subprocess.run(["rm", "-rf", TMP])
PY
