#!/usr/bin/env python3
"""Baseline thresholds, three outcomes and the verdict's digest, against a real Prometheus.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, SOURCE_ROOT.
Prints TAP-style lines for people; meson reads the exit status: 0 pass, 1 fail,
77 skip (only when Prometheus is missing and cannot be installed with apt-get).

One fixture serves the same service three ways: /fast answers after 50 ms, /slower after
70 ms (40% slower) and /bit after 52.5 ms (5% slower). Each run is a `syncgate load` of
about a second with 5 VUs and no think time, pushing to Debian's Prometheus (started by
tests/remote_write/promlib.py), under an ENVIRONMENT of its own per case so cases never
see each other's history. What a run pushed is in Prometheus as soon as it exits.

Cases:
  history    the first run follows `missing:` (default: inconclusive, 114) and still
             becomes history; passing runs build the baseline; 40% slower fails
             p(95) <= baseline * 1.2 with the baseline, its runs and the limit in the
             summary, the JSON export and JUnit; the failing run is not history; 5% slower
             passes against the earlier runs only; pin_testid compares with one run.
             The comparisons that hinge on timing are skipped, not passed, when a p(95)
             lands more than 10% above its route's exact delay: the machine is then too
             busy for a 1.2 factor to mean anything (as the latency case of test_load).
  missing    missing: pass and missing: fail on a first run
  down       Prometheus unreachable: inconclusive (114), quickly, no crash
  saturated  a generator pinned to one CPU with 200 VUs and no think time is reported
             saturated and its latency thresholds are inconclusive; with a cgroup CPU
             quota too, when this machine lets us make one
  notify     the termination message file and a webhook receiver get the digest and no
             secret; slack format; retries; a receiver that never answers costs at most
             notify.timeout; a missing termination file is skipped silently
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "remote_write"))
import harness as h  # noqa: E402
import promlib  # noqa: E402
from rwlib import Skip  # noqa: E402

RUN = "%d-%d" % (os.getpid(), int(time.time()))
SECRETS = ("hunter2-bearer", "hunter2-webhook", "hunter2-kong")

t = h.Tap()


class Ctx:
    prom = None
    fx = None
    kong_key = None


def profile(route, thresholds=None, baseline=None, vus=5, duration="1s", extra=None):
    p = {
        "environment": "unset",
        "gateway": {"key_file": Ctx.kong_key},
        "services": [{"name": "api", "url": Ctx.fx.url(0, route)}],
        "load": {
            "stages": [{"duration": "0s", "target": vus}, {"duration": duration, "target": vus}],
            "think_time": "0s",
            "thresholds": thresholds or {
                "http_req_duration": ["p(95)<1000", "p(95) <= baseline * 1.2"],
            },
        },
        "baseline": dict({"min_count": 50}, **(baseline or {})),
    }
    p.update(extra or {})
    return h.write_profile(p)


class Run:
    """One `syncgate load`: the Result, its summary export and JUnit."""

    def __init__(self, env_name, testid, prof, env=None, wrapper=(), args=()):
        d = h.tempdir()
        self.export = os.path.join(d, "summary.json")
        self.junit_path = os.path.join(d, "junit.xml")
        self.testid = testid
        e = {"ENVIRONMENT": env_name, "TESTID": testid,
             "K6_PROMETHEUS_RW_SERVER_URL": Ctx.prom.write_url,
             "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
             "K6_PROMETHEUS_RW_BEARER_TOKEN": "hunter2-bearer",
             "SYNCGATE_REVISION": "rev-" + testid}
        e.update(env or {})
        argv = ["load", "-p", prof, "--summary-export", self.export, "--junit",
                self.junit_path, "--log-format", "json"] + list(args)
        if wrapper:
            argv = list(wrapper) + h.syncgate_args(argv)
            t0 = time.monotonic()
            p = subprocess.run(argv, env=h.syncgate_env(e), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=60)
            self.res = h.Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                                p.stderr.decode("utf-8", "replace"), time.monotonic() - t0,
                                False)
        else:
            self.res = h.run_syncgate(argv, env=e, timeout=60)
        self.rc = self.res.rc
        self.stdout = self.res.stdout
        self.summary = {}
        if os.path.exists(self.export):
            with open(self.export) as f:
                self.summary = json.load(f)
        self.sg = self.summary.get("syncgate", {})

    def item(self, threshold):
        for it in self.sg.get("thresholds", []):
            if it.get("threshold") == threshold:
                return it
        return {}

    def junit(self):
        try:
            return ET.parse(self.junit_path).getroot()
        except (OSError, ET.ParseError):
            return None

    def explain(self):
        return self.res.explain()


def base_runs(item):
    return [r["testid"] for r in item.get("baseline", {}).get("runs", [])]


FAST, SLOWER, BIT = 50.0, 70.0, 52.5  # ms: the fixture's exact delays (40% and 5% slower)
NOISE = 1.10  # a p(95) more than 10% above its route's delay: the machine is too busy to compare


def quiet(observed, delay):
    return observed is not None and observed <= delay * NOISE


def case_history(tap):
    env = "hist-" + RUN
    base = "p(95) <= baseline * 1.2"
    # History runs judge the same statistic with room for a busy machine: what a run records
    # is its p(95), whatever factor its own threshold uses.
    lenient = profile("/fast", thresholds={"http_req_duration": ["p(95)<1000", "p(95) <= baseline * 3"]})

    r1 = Run(env, "h1-" + RUN, profile("/fast"))
    it = r1.item(base)
    t.eq(r1.rc, 114, "first run, default missing: inconclusive exit 114") or t.diag(r1.explain())
    t.ok(it.get("outcome") == "inconclusive" and it.get("reason") == "no baseline",
         "first run: the baseline threshold says no baseline", it)
    t.ok("with fewer, missing: inconclusive (the default" in r1.stdout,
         "the summary prints the missing policy and that it is the default", r1.stdout)
    t.ok("no baseline yet: 0 of baseline.min_runs 1 runs" in r1.stdout,
         "the summary says why", r1.stdout)
    info = Ctx.prom.query('syncgate_run_info{testid="%s"}' % r1.testid)
    labels = info[0]["metric"] if info else {}
    t.ok(labels.get("result") == "inconclusive" and labels.get("history") == "true" and
         labels.get("revision") == "rev-" + r1.testid and labels.get("environment") == env and
         labels.get("scenario") == "load" and labels.get("test_type") == "load",
         "first run's result series: inconclusive but history, with its revision", info)
    obs = Ctx.prom.query('syncgate_threshold_observed{testid="%s",stat="p(95)"}' % r1.testid)
    t.ok(len(obs) == 1 and obs[0]["metric"].get("metric") == "http_req_duration" and
         abs(float(obs[0]["value"][1]) - it.get("observed", -1)) < 1e-9 and
         float(obs[0]["value"][1]) >= FAST,
         "its observed p(95) is in Prometheus, in ms, as the summary says", obs)

    r2 = Run(env, "h2-" + RUN, lenient)
    r3 = Run(env, "h3-" + RUN, lenient)
    t.eq((r2.rc, r3.rc), (0, 0), "runs against the history pass") or t.diag(r3.explain())
    t.eq(base_runs(r3.item("p(95) <= baseline * 3")), [r2.testid, r1.testid],
         "third run's baseline: the two before, newest first")

    slow = Run(env, "h4-" + RUN, profile("/slower"))
    it = slow.item(base)
    b = it.get("baseline", {})
    t.ok(b.get("status") == "found" and b.get("value", 0) >= FAST and
         abs(it.get("limit", 0) - 1.2 * b.get("value", 0)) < 1e-6 and it.get("observed", 0) >= SLOWER,
         "40% slower: the baseline, the limit (x1.2) and the observed value", it)
    t.eq(sorted(base_runs(it)), sorted([r1.testid, r2.testid, r3.testid]), "the runs it came from")
    line = [ln for ln in slow.stdout.splitlines() if base in ln]
    t.ok(line and "limit" in line[0] and "baseline" in line[0] and "median of 3 runs" in line[0],
         "text summary: observed, limit, baseline and its runs", line)
    t.ok("baseline runs: " in slow.stdout and r1.testid in slow.stdout, "text summary lists the runs' testids")
    if quiet(b.get("value"), FAST):
        t.eq(slow.rc, 99, "40% slower: exit 99") or t.diag(slow.explain())
        t.ok(it.get("outcome") == "failed" and it.get("reason") is None and
             it.get("observed", 0) > it.get("limit", 1e9), "40% slower: the baseline threshold failed", it)
        t.ok(line and line[0].strip().startswith("✗"), "text summary: ✗", line)
        j = slow.junit()
        fails = [tc for tc in (j.iter("testcase") if j is not None else []) if tc.find("failure") is not None]
        t.ok(len(fails) == 1 and "limit" in fails[0].find("failure").get("message", ""),
             "JUnit: one failure with the limit in its message")
        t.eq(slow.summary.get("metrics", {}).get("http_req_duration", {}).get("thresholds"),
             {"p(95)<1000": False, base: True}, "k6's thresholds object still works (true: not passed)")
    else:
        t.skip("40% slower fails", "machine too busy: the baseline's p(95) is %s ms for a %g ms route"
               % (b.get("value"), FAST))
    slow_failed = slow.rc == 99
    info = Ctx.prom.query('syncgate_run_info{testid="%s"}' % slow.testid)
    if slow_failed:
        t.ok(info and info[0]["metric"].get("result") == "failed" and
             info[0]["metric"].get("history") == "false",
             "the failing run is recorded as failed, not history", info)

    bit = Run(env, "h5-" + RUN, profile("/bit"))
    it = bit.item(base)
    if slow_failed:
        t.ok(slow.testid not in base_runs(it) and len(base_runs(it)) == 3,
             "the failing run is not part of the next baseline", base_runs(it))
    if quiet(it.get("observed"), BIT):
        t.eq(bit.rc, 0, "5% slower: passes") or t.diag(bit.explain())
    else:
        t.skip("5% slower passes", "machine too busy: p(95) %s ms for a %g ms route" % (it.get("observed"), BIT))

    pin = Run(env, "h6-" + RUN, profile("/slower", baseline={"pin_testid": slow.testid}))
    it = pin.item(base)
    t.eq(base_runs(it), [slow.testid], "pin_testid: the baseline is that one run, though it failed")
    t.ok("pinned run " + slow.testid in json.dumps(it), "the detail names the pinned run", it)
    if quiet(it.get("observed"), SLOWER):
        t.eq(pin.rc, 0, "pinned to the slow run, the slow route passes") or t.diag(pin.explain())
    else:
        t.skip("pinned to the slow run, the slow route passes", "machine too busy")
    pin2 = Run(env, "h7-" + RUN, profile("/fast", baseline={"pin_testid": "no-such-run"}))
    it = pin2.item(base)
    t.ok(pin2.rc == 114 and it.get("reason") == "baseline query failed" and "no-such-run" in it.get("detail", ""),
         "a pinned run that does not exist: inconclusive, named", it)

    two = Run(env, "h8-" + RUN, profile("/fast", baseline={"aggregate": "max", "runs": 2},
                                        thresholds={"http_req_duration": ["p(95) <= baseline * 3"]}))
    it = two.item("p(95) <= baseline * 3")
    vals = [r["value"] for r in it.get("baseline", {}).get("runs", [])]
    t.ok(len(vals) == 2 and it["baseline"].get("value") == max(vals),
         "runs: 2, aggregate: max: the newest two history runs, their largest value", it)


def case_missing(tap):
    for policy, want_rc, want in (("pass", 0, "passed"), ("fail", 99, "failed")):
        env = "miss-%s-%s" % (policy, RUN)
        r = Run(env, "m-%s-%s" % (policy, RUN), profile("/fast", baseline={"missing": policy}))
        it = r.item("p(95) <= baseline * 1.2")
        t.ok(r.rc == want_rc and it.get("outcome") == want and it.get("reason") == "no baseline",
             "first run with missing: %s -> %s, exit %d" % (policy, want, want_rc), it) or t.diag(r.explain())
        t.ok("missing: %s" % policy in r.stdout, "missing: %s printed in the summary" % policy)
        info = Ctx.prom.query('syncgate_run_info{testid="%s"}' % r.testid)
        t.ok(info and info[0]["metric"].get("history") == "true",
             "missing: %s: the first run still becomes history" % policy, info)


def case_down(tap):
    env = "down-" + RUN
    closed = h.free_port()
    r = Run(env, "d1-" + RUN, profile("/fast", baseline={"source": "http://127.0.0.1:%d" % closed}))
    it = r.item("p(95) <= baseline * 1.2")
    t.eq(r.rc, 114, "Prometheus unreachable: exit 114, not a pass") or t.diag(r.explain())
    t.ok(it.get("outcome") == "inconclusive" and it.get("reason") == "baseline query failed" and
         "connect" in it.get("detail", "").lower(), "reason: baseline query failed, with libcurl's words", it)
    t.ok(r.res.elapsed < 10, "and quickly (%.1f s)" % r.res.elapsed)
    ev = [e for e in r.res.events("baseline") if e.get("status") == "failed"]
    t.ok(ev and "error" in ev[0], "a baseline event says why", ev)
    t.ok(r.item("p(95)<1000").get("outcome") == "passed", "static thresholds are still judged")
    # a source that answers something else than Prometheus' API
    r = Run(env, "d2-" + RUN, profile("/fast", baseline={"source": Ctx.fx.url(0, "")}))
    it = r.item("p(95) <= baseline * 1.2")
    t.ok(r.rc == 114 and it.get("reason") == "baseline query failed",
         "a source that is not Prometheus: inconclusive too (%s)" % it.get("detail"), r.explain())


def case_saturated(tap):
    env = "sat-" + RUN
    thresholds = {"http_req_duration": ["p(95)<1000"], "http_req_failed": ["rate<0.01"]}
    r = Run(env, "s1-" + RUN, profile("/now", thresholds=thresholds, vus=200, duration="2s"),
            wrapper=("taskset", "-c", "0"))
    sat = r.sg.get("saturation", {})
    t.ok(sat.get("saturated") is True and sat.get("capacity_cpus") == 1 and
         "1 CPU in the affinity mask" in sat.get("capacity_source", ""),
         "taskset to one CPU, 200 VUs, no think time: saturated", sat) or t.diag(r.explain())
    t.eq(r.rc, 114, "exit 114: its latency could not be judged")
    lat = r.item("p(95)<1000")
    t.ok(lat.get("outcome") == "inconclusive" and lat.get("reason") == "generator saturated",
         "the latency threshold is inconclusive", lat)
    t.eq(r.item("rate<0.01").get("outcome"), "passed", "the failure rate is still judged")
    t.ok("load generator: SATURATED" in r.stdout, "the text summary says so", r.stdout[-1500:])
    ev = r.res.event("saturation") or {}
    t.ok(ev.get("saturated") is True and ev.get("level") == "warn", "a saturation warning in the log", ev)
    info = Ctx.prom.query('syncgate_run_info{testid="%s"}' % r.testid)
    t.ok(info and info[0]["metric"].get("result") == "inconclusive" and
         info[0]["metric"].get("history") == "false", "a saturated run is no history", info)
    case_cgroup(env)


def cgroup_dir():
    """A fresh cgroup with a 0.2 CPU quota (v2, else v1 cpu), or None when we may not make one."""
    name = "syncgate-test-%d" % os.getpid()
    v2 = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(v2, "cgroup.subtree_control")):
        try:
            with open(os.path.join(v2, "cgroup.subtree_control")) as f:
                if "cpu" not in f.read().split():
                    return None, None
            d = os.path.join(v2, name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("20000 100000")
            return d, "v2"
        except OSError:
            return None, None
    v1 = "/sys/fs/cgroup/cpu"
    try:
        d = os.path.join(v1, name)
        os.mkdir(d)
        with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
            f.write("20000")
        return d, "v1"
    except OSError:
        return None, None


def case_cgroup(env):
    d, version = cgroup_dir()
    if not d:
        t.skip("a cgroup CPU quota of 0.2 CPU is reported", "cannot make a cgroup with a CPU quota here")
        return
    try:
        wrapper = ("sh", "-c", 'echo $$ > "%s/cgroup.procs" && exec "$@"' % d, "sh")
        r = Run(env, "s2-" + RUN, profile("/now", thresholds={"http_req_duration": ["p(95)<1000"]},
                                          vus=50, duration="2s"), wrapper=wrapper)
        sat = r.sg.get("saturation", {})
        t.ok(abs(sat.get("capacity_cpus", 0) - 0.2) < 1e-9 and
             ("cgroup %s" % version) in sat.get("capacity_source", "") and sat.get("saturated") is True,
             "a cgroup %s quota of 0.2 CPU: the capacity, and saturated" % version, sat) or t.diag(r.explain())
    finally:
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.1)


class Receiver:
    """A webhook receiver: answers the statuses queued (then 200), records every body."""

    def __init__(self, statuses=(), hang=False):
        self.bodies = []
        self.paths = []
        self.statuses = list(statuses)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(self.rfile.read(n).decode("utf-8", "replace"))
                outer.paths.append(self.path)
                if hang:
                    time.sleep(30)
                    return
                code = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()
        self.url = "http://127.0.0.1:%d/hook/T000/B000/hunter2-webhook" % self.srv.server_address[1]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def no_secret(text, where):
    found = [s for s in SECRETS if s in text]
    t.eq(found, [], "no secret in %s" % where)


def case_notify(tap):
    env = "notify-" + RUN
    d = h.tempdir()
    term = os.path.join(d, "termination-log")
    open(term, "w").close()
    rcv = Receiver(statuses=(503,))
    prof = profile("/slower", thresholds={"http_req_duration": ["p(95)<10"]},
                   extra={"notify": {"termination_log": term, "timeout": "5s",
                                     "dashboard_url": "https://grafana.example/d/k6?var-testid={testid}"}})
    r = Run(env, "n1-" + RUN, prof, env={"SYNCGATE_WEBHOOK_URL": rcv.url})
    t.eq(r.rc, 99, "a failing run") or t.diag(r.explain())
    with open(term) as f:
        msg = f.read()
    t.ok(len(msg.encode()) <= 4096 and msg.startswith("syncgate failed (exit 99): environment %s, testid %s" % (env, r.testid)),
         "termination message: result, exit code, testid", msg)
    t.ok("failed: load http_req_duration p(95)<10: observed" in msg and "limit 10ms" in msg,
         "termination message: the failed threshold with its value and limit", msg)
    t.ok("dashboard: https://grafana.example/d/k6?var-testid=" + r.testid in msg, "termination message: the dashboard link")
    no_secret(msg, "the termination message")
    t.eq(len(rcv.bodies), 2, "webhook: a 503, then sent again")
    body = json.loads(rcv.bodies[-1]) if rcv.bodies else {}
    t.ok(body.get("result") == "failed" and body.get("exit_code") == 99 and body.get("testid") == r.testid and
         body.get("thresholds", [{}])[0].get("outcome") == "failed" and body.get("text") == msg,
         "webhook JSON: the digest (result, thresholds, text = the termination message)", body)
    no_secret(rcv.bodies[-1] if rcv.bodies else "", "the webhook body")
    no_secret(r.res.stderr + r.stdout, "the logs and the summary")
    ev = r.res.event("webhook") or {}
    t.ok(ev.get("delivered") is True and ev.get("attempts") == 2 and "url" not in ev, "webhook log event", ev)
    rcv.close()

    rcv = Receiver()
    key = h.write_file(rcv.url + "\n", "webhook-url")
    prof = profile("/fast", thresholds={"http_req_duration": ["p(95)<1000"]},
                   extra={"notify": {"format": "slack", "webhook_url_file": key,
                                     "termination_log": os.path.join(d, "missing", "log")}})
    r = Run(env, "n2-" + RUN, prof)
    body = json.loads(rcv.bodies[0]) if rcv.bodies else {}
    t.ok(r.rc == 0 and list(body) == ["text"] and body["text"].startswith("syncgate passed (exit 0)"),
         "slack format from a webhook_url_file: {\"text\": ...}", body) or t.diag(r.explain())
    t.eq(r.res.events("termination_message"), [], "a termination log path that does not exist: skipped silently")
    no_secret(r.res.stderr + r.stdout + (rcv.bodies[0] if rcv.bodies else ""), "slack run's outputs")
    rcv.close()

    rcv = Receiver(hang=True)
    prof = profile("/fast", thresholds={"http_req_duration": ["p(95)<1000"]},
                   extra={"notify": {"timeout": "1s"}})
    r = Run(env, "n3-" + RUN, prof, env={"SYNCGATE_WEBHOOK_URL": rcv.url})
    ev = r.res.event("webhook") or {}
    t.ok(r.rc == 0 and ev.get("delivered") is False and r.res.elapsed < 1.0 + 1.0 + 3.0,
         "a receiver that never answers: the exit waits at most notify.timeout (%.1f s in all)" % r.res.elapsed, ev)
    no_secret(json.dumps(ev), "the failed webhook's log event")
    rcv.close()

    both = h.run_syncgate(["validate", "--set", "notify.webhook_url_file=" + key],
                          env={"SYNCGATE_WEBHOOK_URL": "https://x.example/hunter2-webhook"})
    t.ok(both.rc == 104 and "set one of the two" in both.stderr and "hunter2" not in both.stderr,
         "webhook URL from the environment and a file: refused (104), nothing shown", both.explain())


def main():
    try:
        promlib.ensure_prometheus()
    except Skip as e:
        print("1..0 # SKIP %s" % e, flush=True)
        sys.exit(77)
    Ctx.kong_key = h.write_file("hunter2-kong\n", "apikey")
    with promlib.Prometheus() as prom, \
            h.Fixture(["*:GET:/fast=delay=%gms" % FAST, "*:GET:/slower=delay=%gms" % SLOWER,
                       "*:GET:/bit=delay=%gms" % BIT, "*:GET:/now="]) as fx:
        Ctx.prom, Ctx.fx = prom, fx
        t.run(case_history, case_missing, case_down, case_saturated, case_notify)


if __name__ == "__main__":
    main()
