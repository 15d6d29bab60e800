#!/usr/bin/env python3
"""soak: a bounded soak of `syncgate load`, watching its memory and file descriptors.

syncgate drives N VUs with no think time at the fixture server on 127.0.0.1
(and pushes remote write to the rwfixture receiver every second when
RWFIXTURE is set), for minutes, while this script samples its resident
memory (VmRSS in /proc/<pid>/status) and open descriptors (/proc/<pid>/fd)
every few seconds. After the warm-up (the ramp plus a share of the hold),
memory must stay flat: no sample more than --rss-tolerance above the
baseline (the median of the first three samples after warm-up), and the
second half of the hold no higher on average than the first half plus half
that tolerance (a slow leak). Descriptors must not grow: none more than
--fd-slack above the baseline. The run writes its HTML report (--report), so
the once-a-second sampler and its bounded timeline are part of what must stay
flat; the report must have its four charts, at most 600 points each.

usage: soak.py [--duration SECONDS] [--vus N] [--every SECONDS] [--tap]
Environment: SYNCGATE, FIXTURE (required), RWFIXTURE (optional).
Prints a table of the samples and a verdict; exit status 0 when flat.
With --tap the verdict lines are TAP (for meson's 'soak' suite).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def start(args, tmp, name, port_file):
    err = open(os.path.join(tmp, name + ".stderr"), "wb")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("%s did not start: %s" % (name, " ".join(args)))
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read().split()[0])


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=180, help="hold time, seconds")
    ap.add_argument("--vus", type=int, default=300)
    ap.add_argument("--ramp", type=float, default=5, help="ramp-up time, seconds")
    ap.add_argument("--every", type=float, default=5, help="sampling interval, seconds")
    ap.add_argument("--warmup", type=float, default=0.2,
                    help="share of the hold that is warm-up (after the ramp)")
    ap.add_argument("--rss-tolerance", type=float, default=0.10)
    ap.add_argument("--fd-slack", type=int, default=8)
    ap.add_argument("--tap", action="store_true")
    o = ap.parse_args()

    syncgate, fixture = os.environ["SYNCGATE"], os.environ["FIXTURE"]
    rwfixture = os.environ.get("RWFIXTURE")
    tmp = tempfile.mkdtemp(prefix="syncgate-soak-")
    fx = rw = sg = None
    try:
        fx_ports = os.path.join(tmp, "fx.ports")
        fx, fx_port = start([fixture, "--listen", "127.0.0.1:0", "--port-file", fx_ports,
                             "--quiet", "--route", "*:GET:/health=body={\"status\":\"ok\"}"],
                            tmp, "fixture", fx_ports)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("K6_", "SYNCGATE_")) and not k.endswith("_SERVICE_URL")
               and k not in ("STAGES", "GATEWAY_URL")}
        if rwfixture:
            rw_port_file = os.path.join(tmp, "rw.port")
            rw, rw_port = start([rwfixture, "--log", "/dev/null", "--port-file", rw_port_file],
                                tmp, "rwfixture", rw_port_file)
            env["K6_PROMETHEUS_RW_SERVER_URL"] = "http://127.0.0.1:%d/api/v1/write" % rw_port
            env["K6_PROMETHEUS_RW_PUSH_INTERVAL"] = "1s"
        url = "http://127.0.0.1:%d/health" % fx_port
        profile = os.path.join(tmp, "soak.yaml")
        with open(profile, "w") as f:
            f.write("environment: soak\n"
                    "gateway: {url: \"http://127.0.0.1:%d\", ready: {path: null}}\n"
                    "services:\n" % fx_port)
            for name in ("product", "inventory", "supplier", "order", "identity"):
                f.write("  - {name: %s, url: \"%s\"}\n" % (name, url))
            f.write("load:\n  stages:\n"
                    "    - {duration: %dms, target: %d}\n"
                    "    - {duration: %dms, target: %d}\n"
                    "  think_time: 0s\n  request_timeout: 5s\n  graceful_ramp_down: 2s\n"
                    "  thresholds: {http_req_failed: [\"rate<0.01\"]}\n"
                    % (o.ramp * 1000, o.vus, o.duration * 1000, o.vus))
        export = os.path.join(tmp, "summary.json")
        report = os.path.join(tmp, "report.html")
        sg_err = open(os.path.join(tmp, "syncgate.stderr"), "wb")
        t0 = time.monotonic()
        sg = subprocess.Popen([syncgate, "load", "-p", profile, "-q", "--log-format", "json",
                               "--summary-export", export, "--report", report], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sg_err)
        samples = []  # (t, rss KiB, fds)
        next_at = t0 + o.every
        while sg.poll() is None:
            now = time.monotonic()
            if now >= next_at:
                rss, fds = status_kib(sg.pid, "VmRSS"), fd_count(sg.pid)
                if rss is not None and fds is not None and sg.poll() is None:
                    samples.append((now - t0, rss, fds))
                next_at += o.every
            time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
            if now - t0 > o.ramp + o.duration + 60:
                sg.kill()
        rc = sg.wait()
        sg_err.close()
    finally:
        stop(sg)
        stop(rw)
        stop(fx)

    summary = {}
    try:
        with open(export) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        pass
    m = summary.get("metrics", {})
    reqs = m.get("http_reqs", {}).get("count", 0)
    failed = m.get("http_req_failed", {}).get("passes", 0)
    p95 = m.get("http_req_duration", {}).get("p(95)")

    warm_end = o.ramp + o.warmup * o.duration
    hold_end = o.ramp + o.duration
    after = [s for s in samples if warm_end <= s[0] <= hold_end]

    pre = "# " if o.tap else ""  # the table is a TAP comment in meson's log
    print("%s%8s %10s %6s" % (pre, "t (s)", "RSS (KiB)", "fds"))
    for t, rss, fds in samples:
        print("%s%8.1f %10d %6d%s" % (pre, t, rss, fds, "" if t >= warm_end else "  (warm-up)"))

    checks = []
    checks.append((rc == 0, "syncgate load exit code %d (0: thresholds passed)" % rc))
    checks.append((len(after) >= 4, "%d samples after warm-up (>= 4)" % len(after)))
    if len(after) >= 4:
        base_rss = statistics.median(s[1] for s in after[:3])
        peak_rss = max(s[1] for s in after)
        limit = base_rss * (1 + o.rss_tolerance)
        checks.append((peak_rss <= limit,
                       "RSS flat after warm-up: baseline %d KiB, peak %d KiB (+%.1f%%, limit "
                       "+%.0f%%)" % (base_rss, peak_rss, 100.0 * (peak_rss - base_rss) / base_rss,
                                     100 * o.rss_tolerance)))
        half = len(after) // 2
        first, second = statistics.mean(s[1] for s in after[:half]), \
            statistics.mean(s[1] for s in after[half:])
        checks.append((second <= first * (1 + o.rss_tolerance / 2),
                       "no slow leak: mean RSS %.0f KiB in the first half of the hold, %.0f KiB "
                       "in the second" % (first, second)))
        base_fd = statistics.median(s[2] for s in after[:3])
        peak_fd = max(s[2] for s in after)
        checks.append((peak_fd <= base_fd + o.fd_slack,
                       "fds stable: baseline %d, peak %d (slack %d), last %d"
                       % (base_fd, peak_fd, o.fd_slack, after[-1][2])))
    checks.append((reqs > 0 and failed == 0,
                   "%d requests (%.0f/s), %d failed, p(95) %s ms"
                   % (reqs, reqs / max(o.ramp + o.duration, 1), failed,
                      "%.2f" % p95 if p95 is not None else "n/a")))

    try:
        with open(report, encoding="utf-8") as f:
            html = f.read()
        points = [int(n) for n in re.findall(r'data-points="(\d+)"', html)]
    except OSError:
        points = []
    checks.append((len(points) == 4 and all(0 < n <= 600 for n in points),
                   "report: four charts of %s points (at most 600)" % points))

    ok = all(c for c, _ in checks)
    print("%ssoak: %d VUs, %gs hold, no think time%s"
          % (pre, o.vus, o.duration, ", remote write every 1s" if rwfixture else ""))
    if o.tap:
        for i, (c, msg) in enumerate(checks, 1):
            print("%sok %d - %s" % ("" if c else "not ", i, msg))
        print("1..%d" % len(checks))
    else:
        for c, msg in checks:
            print("  %s %s" % ("PASS" if c else "FAIL", msg))
        print("verdict: %s" % ("FLAT (pass)" if ok else "NOT FLAT (fail)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
