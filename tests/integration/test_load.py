#!/usr/bin/env python3
"""Integration tests of `syncgate load` against the fixture server.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE.
Prints TAP through harness.Tap. Every fixture and syncgate process is bounded
in time and stopped.
"""
import json
import math
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# set by meson for ASan/UBSan builds
SANITIZED = os.environ.get("SANITIZED") == "1"


def fixture(*routes):
    """One fixture listener with these routes."""
    return h.Fixture(list(routes))


def profile_yaml(services, stages, think="0s", grace="10s", timeout="5s", thresholds=None,
                 extra=""):
    """A load profile: services [(name, url)], stages [(duration, target)]."""
    lines = ["environment: staging", "services:"]
    for name, url in services:
        lines += ["  - name: %s" % name, "    url: %s" % json.dumps(url),
                  "    expect_status: 200"]
    lines += ["load:", "  stages:"]
    for dur, target in stages:
        lines.append("    - {duration: %s, target: %d}" % (dur, target))
    lines += ["  think_time: %s" % think, "  graceful_ramp_down: %s" % grace,
              "  request_timeout: %s" % timeout]
    if thresholds is not None:
        lines.append("  thresholds:")
        for metric, exprs in thresholds.items():
            lines.append("    %s:" % json.dumps(metric))
            lines += ["      - %s" % json.dumps(e) for e in exprs]
    return "\n".join(lines) + "\n" + extra


class Run:
    """One `syncgate load`: the harness Result plus its --summary-export JSON."""

    def __init__(self, res, summary_path, after_signal=None):
        self.res = res
        self.rc = res.rc
        self.stdout = res.stdout
        self.elapsed = res.elapsed
        self.after_signal = after_signal
        self.summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                self.summary = json.load(f)

    def metric(self, name):
        return (self.summary or {}).get("metrics", {}).get(name, {})

    def events(self, name):
        return self.res.events(name)


def run(profile, args=(), term_after=None, timeout=60, env=None):
    """Run `syncgate load` on profile text; with term_after, SIGTERM it after that many s."""
    path = h.write_profile(profile)
    summary = path + ".summary.json"
    argv = ["load", "-p", path, "--log-format", "json", "--summary-export", summary]
    argv += list(args)
    if term_after is None:
        return Run(h.run_syncgate(argv, env=env, timeout=timeout), summary)
    sp = h.spawn_syncgate(argv, env=env)
    time.sleep(term_after)
    sp.signal(signal.SIGTERM)
    t = time.monotonic()
    res = sp.finish(timeout=timeout)
    return Run(res, summary, time.monotonic() - t)


def parse_dur(s):
    if s.endswith("ms"):
        return float(s[:-2]) / 1000
    if s.endswith("s"):
        return float(s[:-1])
    raise ValueError(s)


def vu_seconds(stages, start=1, step=0.0005):
    """Integral of the active VU count, as k6's ramping VUs (sched.h): from start VUs (k6's
    startVUs, 1 for the stages shortcut), each stage moving toward its target by the
    change so far rounded down (k6's ramping_vus_test.go tables)."""
    total, prev = 0.0, start
    for dur, target in stages:
        d = parse_dur(dur)
        t = step / 2
        while t < d:
            change = math.floor(abs(target - prev) * t / d + 1e-9)
            total += (prev + change if target >= prev else prev - change) * step
            t += step
        prev = target
    return total


def case_schedule(t):
    """Request count and VU gauges follow the stages; stage events are logged."""
    stages = [("1s", 10), ("2s", 10), ("1s", 0)]
    with fixture("*:GET:/slow=delay=25ms") as fx:
        r = run(profile_yaml([("slow", fx.url(0, "/slow"))], stages))
        seen = len(fx.requests())
    t.ok(r.rc == 0, "schedule run exits 0 (rc=%s)" % r.rc, r.res.explain())
    reqs = r.metric("http_reqs").get("count", 0)
    expected = vu_seconds(stages) / 0.025
    t.ok(0.88 * expected <= reqs <= 1.02 * expected,
         "http_reqs %d within tolerance of the schedule's %.0f" % (reqs, expected))
    t.ok(0 <= seen - reqs <= 10,
         "the server saw every recorded request (%d) plus at most the in-flight ones (%d)"
         % (reqs, seen))
    t.eq(r.metric("iterations").get("count"), reqs, "one iteration per request without think")
    t.eq(r.metric("vus_max").get("value"), 10, "vus_max is the largest target")
    t.eq(r.metric("vus").get("max"), 10, "vus reached 10")
    st = r.events("stage")
    t.eq([(e.get("stage"), e.get("target")) for e in st], [(1, 10), (2, 10), (3, 0)],
         "one stage event per stage, in order")
    if len(st) == 3:
        t.ok(abs(st[1]["elapsed_s"] - 1.0) < 0.25 and abs(st[2]["elapsed_s"] - 3.0) < 0.25,
             "stage events at the boundaries (%s, %s)" % (st[1]["elapsed_s"], st[2]["elapsed_s"]))
    prog = [e for e in r.events("progress") if e.get("final")]
    t.ok(prog and abs(prog[0]["elapsed_s"] - 4.0) < 0.1,
         "the phase ends with the schedule (%s s)" % (prog[0]["elapsed_s"] if prog else None))
    t.ok(prog and prog[0].get("requests") == reqs, "the final progress line counts the requests")


def case_think_time(t):
    """Think time paces each VU without blocking the others."""
    with fixture("*:GET:/t=") as fx:
        r = run(profile_yaml([("t", fx.url(0, "/t"))], [("0s", 5), ("2s", 5)], think="100ms"))
    reqs = r.metric("http_reqs").get("count", 0)
    t.ok(r.rc == 0 and 85 <= reqs <= 105, "5 VUs thinking 100ms for 2s: %d requests" % reqs)
    med = r.metric("iteration_duration").get("med", 0)
    t.ok(100 <= med <= 110, "iteration_duration includes the think time (med %s ms)" % med)


def reference_latency(port, path, stop, out):
    """A plain keep-alive client timing the same route: the machine's noise floor."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        req = ("GET %s HTTP/1.1\r\nHost: ref\r\n\r\n" % path).encode()
        while not stop.is_set():
            t0 = time.perf_counter()
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            out.append((time.perf_counter() - t0) * 1000)
        s.close()
    except OSError:
        pass


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def case_latency(t):
    """A fixture answering after exactly 50 ms is reported within 1% at p50 and p99."""
    with fixture("*:GET:/d50=delay=50ms") as fx:
        stop, ref = threading.Event(), []
        th = threading.Thread(target=reference_latency, args=(fx.ports[0], "/d50", stop, ref))
        th.start()
        # 5 VUs for 3 s: about 300 samples. More VUs start together and their responses
        # arrive in bursts that one engine thread reads one after another, which shows
        # up in p99 as the burst's length rather than as the server's delay.
        r = run(profile_yaml([("d50", fx.url(0, "/d50"))], [("0s", 5), ("3s", 5)],
                             thresholds={"http_req_duration": ["p(99)<1000", "med<1000"]}),
                args=["--set", "load.threads=1"])
        stop.set()
        th.join()
    d = r.metric("http_req_duration")
    t.ok(r.rc == 0, "latency run exits 0 (rc=%s)" % r.rc, r.res.explain())
    n = r.metric("http_reqs").get("count", 0)
    t.ok(n >= 250, "enough samples for a p99 (%s requests)" % n)
    # The bound is 1% of 50 ms. When a plain client timing the same route at the same
    # time already uses half of that on its own (one connection where syncgate has five),
    # the machine is too busy to judge: skip.
    # Under ASan/UBSan every request carries the instrumentation's own cost: only a
    # loose bound (10%) is checked there; the plain build checks the 1%.
    noisy = pct(ref, 50) > 50.25 or pct(ref, 99) > 50.25
    for name, key, p in (("p50", "med", 50), ("p99", "p(99)", 99)):
        v = d.get(key, 0)
        desc = "%s %.3f ms within 1%% of 50 ms (plain client: %.3f)" % (name, v, pct(ref, p))
        if SANITIZED:
            t.ok(50.0 <= v <= 55.0, "%s %.3f ms within 10%% of 50 ms (sanitizer build)" % (name, v))
        elif not 50.0 <= v <= 50.5 and noisy:
            t.skip(desc, "machine too busy: the plain client alone was off by more than 0.5%")
        else:
            t.ok(50.0 <= v <= 50.5, desc)


def case_errors(t):
    """Refused, reset, timeout and DNS failures are each counted, and none is fatal."""
    closed = h.free_port()
    with fixture("*:GET:/reset=fault=reset", "*:GET:/hang=fault=hang", "*:GET:/ok=") as fx:
        services = [("refused", "http://127.0.0.1:%d/" % closed),
                    ("reset", fx.url(0, "/reset")),
                    ("timeout", fx.url(0, "/hang")),
                    ("dns", "http://syncgate-test.invalid/"),
                    ("fine", fx.url(0, "/ok"))]
        thresholds = {
            "http_reqs{name:refused,error_code:1212}": ["count>0"],
            "http_reqs{name:reset,error_code:1220}": ["count>0"],
            "http_reqs{name:timeout,error_code:1050}": ["count>0"],
            "http_reqs{name:dns,error_code:1101}": ["count>0"],
            "http_req_failed{name:fine}": ["rate==0"],
            "http_req_failed{name:refused}": ["rate==1"],
        }
        r = run(profile_yaml(services, [("0s", 4), ("2s", 4)], timeout="300ms",
                             thresholds=thresholds))
    t.ok(r.rc == 0, "every error kind counted, run not aborted (rc=%s)" % r.rc, r.res.explain())
    for key in thresholds:
        if key.startswith("http_reqs"):
            c = r.metric(key).get("count", 0)
            t.ok(c > 0, "%s counted (%s)" % (key, c))
    failed = r.metric("http_req_failed")
    t.ok(failed.get("passes", 0) > 0 and failed.get("fails", 0) > 0,
         "http_req_failed counts failures and successes")


def case_direct_no_gateway(t):
    """Load goes straight to each service's url, round-robin, with no gateway headers."""
    key_file = h.write_file("s3cr3t-kong-key\n", "apikey")
    with fixture("*:GET:*=") as fx:
        extra = ("gateway:\n  url: %s\n  consumer_header: X-Consumer-Username\n"
                 "  consumer: test-runner\n  key_file: %s\n  key_header: apikey\n"
                 % (fx.url(0, "/kong"), key_file))
        # some think time: a generator left no breath is saturated on a busy machine, and its
        # latency thresholds end inconclusive (114), which is not what this case is about
        prof = profile_yaml([("a", fx.url(0, "/svc/a?x=1")), ("b", fx.url(0, "/svc/b"))],
                            [("0s", 3), ("1s", 3)], think="10ms", extra=extra)
        r = run(prof, env={"KONG_CONSUMER_HEADER": "someone"})
        reqs = fx.requests()
    t.ok(r.rc == 0 and len(reqs) > 10, "direct load ran (%d requests)" % len(reqs),
         r.res.explain())
    t.eq({q["target"] for q in reqs}, {"/svc/a?x=1", "/svc/b"},
         "only the services' own URLs were hit")
    na = sum(1 for q in reqs if q["path"] == "/svc/a")
    t.ok(abs(na - (len(reqs) - na)) <= 3,
         "round-robin between services (%d of %d)" % (na, len(reqs)))
    bad = [(n, v) for q in reqs for n, v in q["headers"]
           if n.lower() in ("x-consumer-username", "apikey") or "s3cr3t" in v]
    t.eq(bad[:3], [], "no gateway header or credential sent")
    ua = {h.header(q, "user-agent") for q in reqs}
    t.ok(ua and all(u and u.startswith("syncgate/") for u in ua),
         "User-Agent names syncgate: %s" % ua)


def case_first_request(t):
    """The first request leaves within 10 ms of the load phase's start."""
    with fixture("*:GET:*=") as fx:
        r = run(profile_yaml([("a", fx.url(0, "/a"))], [("0s", 1), ("300ms", 1)]))
        reqs = fx.requests()
    start = r.events("load_start")
    if not t.ok(start and reqs, "load_start logged and requests seen", r.res.explain()):
        return
    # log times are ISO-8601 UTC with milliseconds
    ts = start[0]["time"]
    t0_ms = int(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    t0_ms = t0_ms * 1000 + int(ts[20:23])
    first_ms = reqs[0]["time_us"] // 1000
    t.ok(first_ms - t0_ms <= 10, "first request %d ms after load_start" % (first_ms - t0_ms))


def case_ramp_down(t):
    """Ramped-down VUs finish in-flight requests within graceful_ramp_down, else abort."""
    stages = [("0s", 4), ("1500ms", 4), ("0s", 0), ("1500ms", 0)]
    with fixture("*:GET:/s=delay=1s") as fx:
        r = run(profile_yaml([("s", fx.url(0, "/s"))], stages, grace="10s"))
    t.eq(r.metric("http_reqs").get("count"), 8,
         "graceful: the requests in flight at the ramp-down finish and count")
    with fixture("*:GET:/s=delay=1s") as fx:
        r = run(profile_yaml([("s", fx.url(0, "/s"))], stages, grace="200ms"))
        seen = len(fx.requests())
    t.ok(r.metric("http_reqs").get("count") == 4 and seen == 8,
         "bounded: requests past graceful_ramp_down are dropped unrecorded (%s recorded, %d sent)"
         % (r.metric("http_reqs").get("count"), seen))


def case_thresholds(t):
    """Thresholds decide 0/99; abortOnFail stops the run early with 99."""
    with fixture("*:GET:/d=delay=50ms") as fx:
        svc = [("d", fx.url(0, "/d"))]
        r = run(profile_yaml(svc, [("0s", 2), ("1s", 2)],
                             thresholds={"http_req_duration": ["p(95)<1000"]}))
        t.eq(r.rc, 0, "passing thresholds: exit 0")
        r = run(profile_yaml(svc, [("0s", 2), ("1s", 2)],
                             thresholds={"http_req_duration": ["p(95)<10"]}))
        t.eq(r.rc, 99, "failing threshold: exit 99")
        thr = {"http_req_duration": [{"threshold": "p(95)<10", "abortOnFail": True}]}
        r = run(profile_yaml(svc, [("0s", 2), ("20s", 2)], thresholds=thr))
        t.ok(r.rc == 99 and r.elapsed < 4,
             "abortOnFail: exit %s after %.1f s of a 20 s schedule" % (r.rc, r.elapsed))
        t.eq(len([e for e in r.events("threshold") if e.get("abort")]), 1,
             "one threshold event with abort=true")
        thr = {"http_req_duration": [{"threshold": "p(95)<10", "abortOnFail": True,
                                      "delayAbortEval": "2s"}]}
        r = run(profile_yaml(svc, [("0s", 2), ("20s", 2)], thresholds=thr))
        t.ok(r.rc == 99 and 2 <= r.elapsed < 5,
             "delayAbortEval 2s: exit %s after %.1f s, not before 2 s" % (r.rc, r.elapsed))


def case_no_thresholds(t):
    """A load phase with no threshold is judged by an implicit checks rate==1.0; explicit
    thresholds replace it, as before."""
    with fixture("*:GET:/bad=status=500", "*:GET:/ok=") as fx:
        for label, th in (("null", "null"), ("{}", "{}"), ("{checks: []}", "{checks: []}")):
            prof = profile_yaml([("bad", fx.url(0, "/bad"))], [("0s", 2), ("500ms", 2)])
            prof = prof.replace("load:\n", "load:\n  thresholds: %s\n" % th, 1)
            r = run(prof)
            t.eq(r.rc, 99, "thresholds: %s: failing checks fail the load phase" % label) \
                or t.diag(r.res.explain())
            t.eq((r.summary or {}).get("implicit_thresholds"),
                 [{"scenario": "load", "metric": "checks", "threshold": "rate==1.0"}],
                 "thresholds: %s: the export names the implicit threshold" % label)
        prof = profile_yaml([("ok", fx.url(0, "/ok"))], [("0s", 2), ("500ms", 2)])
        r = run(prof.replace("load:\n", "load:\n  thresholds: {}\n", 1))
        t.eq(r.rc, 0, "thresholds: {}: passing checks pass")
        r = run(profile_yaml([("bad", fx.url(0, "/bad"))], [("0s", 2), ("500ms", 2)],
                             thresholds={"http_reqs": ["count>0"]}))
        t.eq(r.rc, 0, "an explicit threshold replaces the implicit one (checks fail, exit 0)")
        t.ok("implicit_thresholds" not in (r.summary or {}), "no implicit threshold then")


def case_sigterm(t):
    """SIGTERM stops load within 1 s, prints the summary, exits 105."""
    with fixture("*:GET:/x=delay=5ms") as fx:
        r = run(profile_yaml([("x", fx.url(0, "/x"))], [("0s", 20), ("30s", 20)]),
                term_after=1.5)
    t.eq(r.rc, 105, "exit 105 after SIGTERM")
    t.ok(r.after_signal is not None and r.after_signal < 1.0,
         "exited %.3f s after the signal" % (r.after_signal or -1))
    t.ok("http_reqs" in r.stdout, "text summary printed")
    t.ok(r.metric("http_reqs").get("count", 0) > 0, "summary export written with the requests")


def main():
    h.Tap().run(case_schedule, case_think_time, case_latency, case_errors,
                case_direct_no_gateway, case_first_request, case_ramp_down, case_thresholds,
                case_no_thresholds, case_sigterm)


if __name__ == "__main__":
    main()
