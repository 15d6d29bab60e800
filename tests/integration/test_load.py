#!/usr/bin/env python3
"""Integration tests of the load phase: syncgate load against the fixture server.

Environment: SYNCGATE (the binary) and FIXTURE (the fixture server). Prints TAP.
Every case is bounded in time; every process started here is stopped here.
"""
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SYNCGATE = os.environ["SYNCGATE"]
FIXTURE = os.environ["FIXTURE"]

_n = 0
_failed = 0


def ok(cond, what):
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", _n, what), flush=True)
    return cond


def skip(what):
    global _n
    _n += 1
    print("ok %d - # SKIP %s" % (_n, what), flush=True)


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


class Fixture:
    """The project's fixture server on 127.0.0.1 with the given routes."""

    count = 0

    def __init__(self, tmp, routes, listeners=1):
        Fixture.count += 1
        self.log = os.path.join(tmp, "fixture-%d.log" % Fixture.count)
        port_file = os.path.join(tmp, "ports-%d" % Fixture.count)
        args = [FIXTURE, "--port-file", port_file, "--log", self.log, "--quiet"]
        for _ in range(listeners):
            args += ["--listen", "127.0.0.1:0"]
        for r in routes:
            args += ["--route", r]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 5
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fixture did not start: %s" % self.proc.stderr.read())
            time.sleep(0.01)
        with open(port_file) as f:
            self.ports = [int(p) for p in f.read().split()]
        self.port = self.ports[0]

    def url(self, path, listener=0):
        return "http://127.0.0.1:%d%s" % (self.ports[listener], path)

    def requests(self):
        out = []
        with open(self.log) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Result:
    def __init__(self, rc, stdout, stderr, summary, elapsed):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.summary = summary
        self.elapsed = elapsed
        self.events = []
        for line in stderr.splitlines():
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def metric(self, name):
        return (self.summary or {}).get("metrics", {}).get(name, {})

    def of(self, event):
        return [e for e in self.events if e.get("event") == event]


def profile_yaml(services, stages, think="0s", grace="10s", timeout="5s", thresholds=None,
                 extra=""):
    lines = ["environment: staging", "services:"]
    for name, url in services:
        lines += ["  - name: %s" % name, "    url: %s" % url, "    expect_status: 200"]
    lines += ["load:", "  stages:"]
    for dur, target in stages:
        lines.append("    - {duration: %s, target: %d}" % (dur, target))
    lines += ["  think_time: %s" % think, "  graceful_ramp_down: %s" % grace,
              "  request_timeout: %s" % timeout]
    if thresholds is not None:
        lines.append("  thresholds:")
        for metric, exprs in thresholds.items():
            lines.append("    %s:" % json.dumps(metric))
            for e in exprs:
                lines.append("      - %s" % (json.dumps(e) if isinstance(e, str) else
                                            json.dumps(e)))
    return "\n".join(lines) + "\n" + extra


def run(tmp, profile, args=(), term_after=None, timeout=60, env_extra=None):
    """Run `syncgate load` with profile text; optionally SIGTERM after term_after s."""
    path = os.path.join(tmp, "profile-%d.yaml" % time.monotonic_ns())
    summary = path + ".summary.json"
    with open(path, "w") as f:
        f.write(profile)
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_SERVICE_URL") and k not in ("STAGES", "GATEWAY_URL")}
    env.update(env_extra or {})
    cmd = [SYNCGATE, "load", "-p", path, "--log-format", "json", "--summary-export", summary]
    cmd += list(args)
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    signalled = None
    try:
        if term_after is not None:
            try:
                p.wait(term_after)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    end = time.monotonic()
    data = None
    if os.path.exists(summary):
        with open(summary) as f:
            data = json.load(f)
    r = Result(p.returncode, out, err, data, end - start)
    r.after_signal = end - signalled if signalled else None
    return r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def vu_seconds(stages, step=0.0005):
    """Integral of the active VU count: k6's line between targets, rounded up."""
    total, start, prev = 0.0, 0.0, 0
    for dur, target in stages:
        d = parse_dur(dur)
        if d == 0:
            prev = target
            continue
        t = step / 2
        while t < d:
            total += math.ceil(prev + (target - prev) * t / d - 1e-9) * step
            t += step
        prev = target
        start += d
    return total


def parse_dur(s):
    if s.endswith("ms"):
        return float(s[:-2]) / 1000
    if s.endswith("s"):
        return float(s[:-1])
    raise ValueError(s)


def test_schedule(tmp):
    """Request count and VU gauges follow the stages; stage events are logged."""
    stages = [("1s", 10), ("2s", 10), ("1s", 0)]
    delay = 0.025
    with Fixture(tmp, ["*:GET:/slow=delay=25ms"]) as fx:
        r = run(tmp, profile_yaml([("slow", fx.url("/slow"))], stages))
        seen = len(fx.requests())
    ok(r.rc == 0, "schedule run exits 0 (rc=%s)" % r.rc) or diag(r.stderr[-2000:])
    reqs = r.metric("http_reqs").get("count", 0)
    expected = vu_seconds(stages) / delay
    ok(0.88 * expected <= reqs <= 1.02 * expected,
       "http_reqs %d within tolerance of the schedule's %.0f" % (reqs, expected))
    ok(0 <= seen - reqs <= 10,
       "the server saw every recorded request (%d) plus at most the in-flight ones (%d)"
       % (reqs, seen))
    ok(r.metric("iterations").get("count") == reqs, "one iteration per request without think")
    ok(r.metric("vus_max").get("value") == 10, "vus_max is the largest target")
    ok(r.metric("vus").get("max") == 10, "vus reached 10 (max %s)" % r.metric("vus").get("max"))
    st = r.of("stage")
    ok([e.get("target") for e in st] == [10, 10, 0] and [e.get("stage") for e in st] == [1, 2, 3],
       "one stage event per stage, in order")
    if len(st) == 3:
        ok(abs(st[1]["elapsed_s"] - 1.0) < 0.25 and abs(st[2]["elapsed_s"] - 3.0) < 0.25,
           "stage events at the boundaries (%s, %s)" % (st[1]["elapsed_s"], st[2]["elapsed_s"]))
    prog = [e for e in r.of("progress") if e.get("final")]
    ok(prog and abs(prog[0]["elapsed_s"] - 4.0) < 0.1,
       "the phase ends with the schedule (%s s)" % (prog[0]["elapsed_s"] if prog else None))
    ok(prog and prog[0].get("requests") == reqs, "the final progress line counts the requests")


def test_think_time(tmp):
    """Think time paces each VU without blocking the others."""
    with Fixture(tmp, ["*:GET:/t="]) as fx:
        r = run(tmp, profile_yaml([("t", fx.url("/t"))], [("0s", 5), ("2s", 5)], think="100ms"))
    reqs = r.metric("http_reqs").get("count", 0)
    ok(r.rc == 0 and 85 <= reqs <= 105, "5 VUs thinking 100ms for 2s: %d requests" % reqs)
    it = r.metric("iteration_duration")
    ok(100 <= it.get("med", 0) <= 110, "iteration_duration includes the think time (med %s ms)"
       % it.get("med"))


def reference_latency(port, path, stop, out):
    """A plain keep-alive client timing the same route, for a noise floor."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        req = ("GET %s HTTP/1.1\r\nHost: ref\r\n\r\n" % path).encode()
        while not stop.is_set():
            t = time.perf_counter()
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            out.append((time.perf_counter() - t) * 1000)
        s.close()
    except OSError:
        pass


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def test_latency(tmp):
    """A fixture answering after exactly 50 ms is reported within 1% at p50 and p99."""
    with Fixture(tmp, ["*:GET:/d50=delay=50ms"]) as fx:
        stop, ref = threading.Event(), []
        th = threading.Thread(target=reference_latency, args=(fx.port, "/d50", stop, ref))
        th.start()
        r = run(tmp, profile_yaml([("d50", fx.url("/d50"))], [("0s", 5), ("3s", 5)],
                                  thresholds={"http_req_duration": ["p(99)<1000", "med<1000"]}),
                args=["--set", "load.threads=1"])
        stop.set()
        th.join()
    d = r.metric("http_req_duration")
    med, p99 = d.get("med", 0), d.get("p(99)", 0)
    ok(r.rc == 0, "latency run exits 0 (rc=%s)" % r.rc) or diag(r.stderr[-2000:])
    # The bound is 1% of 50 ms. When a plain client timing the same route at the same
    # time is itself off by more than that, the machine is too busy to judge: skip.
    noisy = pct(ref, 50) > 50.5 or pct(ref, 99) > 50.5
    for name, v, rp in (("p50", med, pct(ref, 50)), ("p99", p99, pct(ref, 99))):
        good = 50.0 <= v <= 50.5
        if not good and noisy:
            skip("%s %.3f ms: machine too busy (a plain client saw %s %.3f ms)"
                 % (name, v, name, rp))
        else:
            ok(good, "%s %.3f ms within 1%% of 50 ms (plain client: %.3f)" % (name, v, rp))


def test_errors(tmp):
    """Refused, reset, timeout and DNS failures are each counted, and none is fatal."""
    closed = free_port()
    with Fixture(tmp, ["*:GET:/reset=fault=reset", "*:GET:/hang=fault=hang", "*:GET:/ok="]) as fx:
        services = [("refused", "http://127.0.0.1:%d/" % closed),
                    ("reset", fx.url("/reset")),
                    ("timeout", fx.url("/hang")),
                    ("dns", "http://syncgate-test.invalid/"),
                    ("fine", fx.url("/ok"))]
        thresholds = {
            "http_reqs{name:refused,error_code:1212}": ["count>0"],
            "http_reqs{name:reset,error_code:1220}": ["count>0"],
            "http_reqs{name:timeout,error_code:1050}": ["count>0"],
            "http_reqs{name:dns,error_code:1101}": ["count>0"],
            "http_req_failed{name:fine}": ["rate==0"],
            "http_req_failed{name:refused}": ["rate==1"],
        }
        r = run(tmp, profile_yaml(services, [("0s", 4), ("2s", 4)], timeout="300ms",
                                  thresholds=thresholds))
    ok(r.rc == 0, "every error kind counted, run not aborted (rc=%s)" % r.rc) or \
        diag(r.stdout[-3000:] + r.stderr[-2000:])
    for key in thresholds:
        if key.startswith("http_reqs"):
            c = r.metric(key).get("count", 0)
            ok(c > 0, "%s counted (%s)" % (key, c))
    failed = r.metric("http_req_failed")
    ok(failed.get("passes", 0) > 0 and failed.get("fails", 0) > 0,
       "http_req_failed counts failures and successes")


def test_direct_no_gateway(tmp):
    """Load goes straight to each service's url, round-robin, with no gateway headers."""
    key_file = os.path.join(tmp, "apikey")
    with open(key_file, "w") as f:
        f.write("s3cr3t-kong-key\n")
    with Fixture(tmp, ["*:GET:*="]) as fx:
        extra = ("gateway:\n  url: %s\n  consumer_header: X-Consumer-Username\n"
                 "  consumer: test-runner\n  key_file: %s\n  key_header: apikey\n"
                 % (fx.url("/kong"), key_file))
        prof = profile_yaml([("a", fx.url("/svc/a?x=1")), ("b", fx.url("/svc/b"))],
                            [("0s", 3), ("1s", 3)], extra=extra)
        r = run(tmp, prof, env_extra={"KONG_CONSUMER_HEADER": "someone"})
        reqs = fx.requests()
    ok(r.rc == 0 and len(reqs) > 10, "direct load ran (%d requests)" % len(reqs))
    paths = {q["target"] for q in reqs}
    ok(paths == {"/svc/a?x=1", "/svc/b"}, "only the services' own URLs were hit: %s" % paths)
    na = sum(1 for q in reqs if q["path"] == "/svc/a")
    ok(abs(na - (len(reqs) - na)) <= 3, "round-robin between services (%d of %d)" % (na, len(reqs)))
    bad = []
    for q in reqs:
        for name, value in q["headers"]:
            if name.lower() in ("x-consumer-username", "apikey") or "s3cr3t" in value:
                bad.append((name, value))
    ok(not bad, "no gateway header or credential sent: %s" % bad[:3])
    ua = {v for q in reqs for n, v in q["headers"] if n.lower() == "user-agent"}
    ok(all(u.startswith("syncgate/") for u in ua) and ua, "User-Agent names syncgate: %s" % ua)


def test_first_request(tmp):
    """The first request leaves within 10 ms of the load phase's start."""
    with Fixture(tmp, ["*:GET:*="]) as fx:
        r = run(tmp, profile_yaml([("a", fx.url("/a"))], [("0s", 1), ("300ms", 1)]))
        reqs = fx.requests()
    start = r.of("load_start")
    if not ok(start and reqs, "load_start logged and requests seen"):
        return
    t0 = start[0]["time"]
    # log times are ISO-8601 with milliseconds; compare in ms
    st = time.strptime(t0[:19], "%Y-%m-%dT%H:%M:%S")
    t0_ms = int(time.mktime(st) - time.timezone) * 1000 + int(t0[20:23])
    first_ms = reqs[0]["time_us"] // 1000
    ok(first_ms - t0_ms <= 10, "first request %d ms after load_start" % (first_ms - t0_ms))


def test_ramp_down(tmp):
    """Ramped-down VUs finish in-flight requests within graceful_ramp_down, else abort."""
    stages = [("0s", 4), ("1500ms", 4), ("0s", 0), ("1500ms", 0)]
    with Fixture(tmp, ["*:GET:/s=delay=1s"]) as fx:
        r = run(tmp, profile_yaml([("s", fx.url("/s"))], stages, grace="10s"))
    ok(r.metric("http_reqs").get("count") == 8,
       "graceful: requests in flight at ramp-down finish (%s of 8)"
       % r.metric("http_reqs").get("count"))
    with Fixture(tmp, ["*:GET:/s=delay=1s"]) as fx:
        r = run(tmp, profile_yaml([("s", fx.url("/s"))], stages, grace="200ms"))
        seen = len(fx.requests())
    ok(r.metric("http_reqs").get("count") == 4 and seen == 8,
       "bounded: requests past graceful_ramp_down are dropped unrecorded (%s recorded, %d sent)"
       % (r.metric("http_reqs").get("count"), seen))


def test_thresholds(tmp):
    """Thresholds decide 0/99; abortOnFail stops the run early with 99."""
    with Fixture(tmp, ["*:GET:/d=delay=50ms"]) as fx:
        svc = [("d", fx.url("/d"))]
        r = run(tmp, profile_yaml(svc, [("0s", 2), ("1s", 2)],
                                  thresholds={"http_req_duration": ["p(95)<1000"]}))
        ok(r.rc == 0, "passing thresholds: exit 0 (rc=%s)" % r.rc)
        r = run(tmp, profile_yaml(svc, [("0s", 2), ("1s", 2)],
                                  thresholds={"http_req_duration": ["p(95)<10"]}))
        ok(r.rc == 99, "failing threshold: exit 99 (rc=%s)" % r.rc)
        t = {"http_req_duration": [{"threshold": "p(95)<10", "abortOnFail": True}]}
        r = run(tmp, profile_yaml(svc, [("0s", 2), ("20s", 2)], thresholds=t))
        ab = [e for e in r.of("threshold") if e.get("abort")]
        ok(r.rc == 99 and r.elapsed < 4, "abortOnFail: exit 99 after %.1f s of a 20 s schedule"
           % r.elapsed)
        ok(len(ab) == 1, "one threshold event with abort=true")
        t = {"http_req_duration": [{"threshold": "p(95)<10", "abortOnFail": True,
                                    "delayAbortEval": "2s"}]}
        r = run(tmp, profile_yaml(svc, [("0s", 2), ("20s", 2)], thresholds=t))
        ok(r.rc == 99 and 2 <= r.elapsed < 5,
           "delayAbortEval 2s: aborted after %.1f s, not before 2 s" % r.elapsed)


def test_sigterm(tmp):
    """SIGTERM stops load within 1 s, prints the summary, exits 105."""
    with Fixture(tmp, ["*:GET:/x=delay=5ms"]) as fx:
        r = run(tmp, profile_yaml([("x", fx.url("/x"))], [("0s", 20), ("30s", 20)]),
                term_after=1.5)
    ok(r.rc == 105, "exit 105 after SIGTERM (rc=%s)" % r.rc)
    ok(r.after_signal is not None and r.after_signal < 1.0,
       "exited %.3f s after the signal" % (r.after_signal or -1))
    ok("http_reqs" in r.stdout, "text summary printed")
    ok(r.metric("http_reqs").get("count", 0) > 0, "summary export written with the requests")


def main():
    with tempfile.TemporaryDirectory(prefix="syncgate-load-") as tmp:
        for t in (test_schedule, test_think_time, test_latency, test_errors,
                  test_direct_no_gateway, test_first_request, test_ramp_down, test_thresholds,
                  test_sigterm):
            diag(t.__name__ + ": " + t.__doc__.splitlines()[0])
            try:
                t(tmp)
            except Exception as e:  # a broken case must fail, not stop the others
                ok(False, "%s raised %r" % (t.__name__, e))
    print("1..%d" % _n)
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
