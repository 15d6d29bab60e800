#!/usr/bin/env python3
"""Scenarios and k6's executors end to end against the fixture server. Prints TAP.

The fixture logs every request with its arrival time, so what an executor did is judged from
the server's side: how many iterations arrived and when, which scenario's path they hit,
whether the open model kept its rate and counted what it could not start. A stalled server
(SIGSTOP for a second) shows what coordinated omission hides: the open model's latency from
the scheduled start reflects the stall, the closed model's p99 does not.
"""
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SANITIZED = os.environ.get("SANITIZED") == "1"


def fixture(*routes):
    return h.Fixture(list(routes) + ["*:*:*=delay=1ms"])


def profile(fx, scenarios=None, extra=None, stages=None):
    p = {
        "environment": "itest",
        "services": [{"name": "svc", "url": fx.url(0, "/health")}],
        "journeys": [
            {"name": "alpha", "think_time": "0s",
             "steps": [{"name": "a", "service": "svc", "path": "/alpha"}]},
            {"name": "beta", "think_time": "0s",
             "steps": [{"name": "b", "service": "svc", "path": "/beta"}]},
        ],
        "load": {"think_time": "0s", "request_timeout": "5s", "threads": 1,
                 "thresholds": {"http_req_failed": ["rate<0.5"]}},
    }
    if scenarios is not None:
        p["load"]["scenarios"] = scenarios
    if stages is not None:
        p["load"]["stages"] = stages
    for k, v in (extra or {}).items():
        p["load"][k] = v
    return p


def run(p, args=(), env=None, timeout=60, command="load"):
    path = h.write_profile(p)
    export = path + ".json"
    res = h.run_syncgate([command, "-p", path, "--summary-export", export] + list(args),
                         env=env, timeout=timeout)
    summary = None
    if os.path.exists(export):
        with open(export) as f:
            summary = json.load(f)
    return res, summary


def metric(summary, name, key, default=0):
    return ((summary or {}).get("metrics", {}).get(name) or {}).get(key, default)


def on(reqs, path):
    return [r for r in reqs if r["path"] == path]


# ---- cases ----

def case_constant_rate(t):
    """200 iterations/s for 3s: the server sees them at that pace, none dropped."""
    with fixture() as fx:
        res, s = run(profile(fx, {"steady": {
            "executor": "constant-arrival-rate", "journey": "alpha", "rate": 200,
            "time_unit": "1s", "duration": "3s", "pre_allocated_vus": 10, "max_vus": 50}}))
        reqs = on(fx.requests(), "/alpha")
    t.eq(res.rc, 0, "constant rate: exit 0") or t.diag(res.explain())
    its = metric(s, "iterations", "count")
    t.ok(597 <= its <= 600, "constant rate: 600 iterations due, %d ran" % its)
    t.eq(metric(s, "dropped_iterations", "count", 0), 0, "constant rate: none dropped")
    times = sorted(r["time_us"] for r in reqs)
    span = (times[-1] - times[0]) / 1e6 if len(times) > 1 else 0
    t.ok(2.9 <= span <= 3.1, "constant rate: arrivals span the 3 s (%.3f s)" % span)
    # the pace holds in every second, not only on average
    buckets = [0, 0, 0]
    for x in times:
        i = int((x - times[0]) / 1e6)
        if i < 3:
            buckets[i] += 1
    t.ok(all(190 <= b <= 210 for b in buckets), "constant rate: ~200 arrivals in each second %r"
         % buckets)
    ach = metric(s, "achieved_rate", "value", 0)
    t.ok(ach >= 0.99, "constant rate: achieved_rate %.4f" % ach)
    late = s["metrics"].get("iteration_lateness", {}) if s else {}
    t.ok(late and (SANITIZED or late.get("p(99)", 1e9) < 20),
         "constant rate: iteration lateness recorded, p99 %.3f ms" % late.get("p(99)", -1))
    t.ok("http_req_duration_scheduled" in (s or {}).get("metrics", {}),
         "constant rate: the coordinated-omission-free duration is recorded")
    t.ok("steady" in res.stdout and "constant-arrival-rate" in res.stdout,
         "constant rate: the summary has a line for the scenario")


def case_dropped(t):
    """Too few VUs for the rate: what cannot start is dropped and counted, never queued."""
    with h.Fixture(["*:GET:/alpha=delay=100ms"]) as fx:
        res, s = run(profile(fx, {"tight": {
            "executor": "constant-arrival-rate", "journey": "alpha", "rate": 100,
            "duration": "2s", "pre_allocated_vus": 2, "max_vus": 2}}))
        arrived = len(on(fx.requests(), "/alpha"))
    its = metric(s, "iterations", "count")
    dropped = metric(s, "dropped_iterations", "count")
    t.ok(dropped >= 140 and its + dropped >= 195 and its + dropped <= 201,
         "dropped: %d ran + %d dropped = the 200 due" % (its, dropped))
    t.ok(abs(arrived - its) <= 2, "dropped: the server saw the iterations that ran (%d)"
         % arrived)
    ach = metric(s, "achieved_rate", "value", 1)
    t.ok(ach < 0.3, "dropped: achieved_rate shows it (%.3f)" % ach)
    ev = res.event("scenario_end")
    t.ok(ev and ev.get("dropped_iterations") == dropped, "dropped: scenario_end says so", ev)


def case_two_scenarios(t):
    """Two scenarios, different start times, journeys and executors, separately tagged."""
    with fixture() as fx:
        res, s = run(profile(fx, {
            "browse": {"executor": "constant-vus", "journey": "alpha", "vus": 2,
                       "duration": "2s"},
            "checkout": {"executor": "constant-arrival-rate", "journey": "beta", "rate": 50,
                         "duration": "1s", "start_time": "1s", "pre_allocated_vus": 5,
                         "tags": {"flow": "checkout"}},
        }, extra={"thresholds": {
            "http_reqs{scenario:checkout}": ["count>=45"],
            "http_reqs{scenario:browse}": ["count>100"],
            "http_reqs{flow:checkout}": ["count>=45"],
        }}))
        reqs = fx.requests()
    t.eq(res.rc, 0, "two scenarios: exit 0 (every per-scenario threshold holds)") or \
        t.diag(res.explain())
    a, b = on(reqs, "/alpha"), on(reqs, "/beta")
    t0 = min(r["time_us"] for r in a) if a else 0
    first_b = (min(r["time_us"] for r in b) - t0) / 1e6 if b else -1
    t.ok(0.95 <= first_b <= 1.1, "two scenarios: checkout starts 1 s in (%.3f s)" % first_b)
    t.ok(48 <= len(b) <= 50, "two scenarios: 50 checkout iterations (%d)" % len(b))
    t.ok(len(a) > 100, "two scenarios: browse looped (%d)" % len(a))
    starts = [e.get("scenario") for e in res.events("scenario_start")]
    t.ok(set(starts) == {"browse", "checkout"}, "two scenarios: scenario_start events %r"
         % starts)
    le = res.event("load_start")
    t.ok(le and [x["name"] for x in le.get("scenarios", [])] == ["browse", "checkout"],
         "two scenarios: load_start lists them")


def case_iterations(t):
    """per-vu-iterations and shared-iterations run exactly their counts."""
    with fixture() as fx:
        res, s = run(profile(fx, {
            "each": {"executor": "per-vu-iterations", "journey": "alpha", "vus": 3,
                     "iterations": 4},
            "shared": {"executor": "shared-iterations", "journey": "beta", "vus": 3,
                       "iterations": 10},
        }))
        reqs = fx.requests()
    t.eq(res.rc, 0, "iterations: exit 0") or t.diag(res.explain())
    t.eq(len(on(reqs, "/alpha")), 12, "iterations: per-vu 3 x 4 = 12")
    t.eq(len(on(reqs, "/beta")), 10, "iterations: shared 10")
    t.eq(metric(s, "iterations", "count"), 22, "iterations: 22 counted")
    t.ok(res.elapsed < 10, "iterations: ends when they are done, not at max_duration (%.1f s)"
         % res.elapsed)


def case_shortcuts(t):
    """k6's shortcuts: --vus/--duration, --iterations, --stage, K6_* and their layering."""
    with fixture() as fx:
        p = profile(fx)
        res, s = run(p, ["--vus", "2", "--duration", "1s"])
        t.eq(res.rc, 0, "shortcuts: --vus 2 --duration 1s runs") or t.diag(res.explain())
        conns = {r["conn"] for r in fx.requests() if r["path"] in ("/alpha", "/beta")}
        t.eq(len(conns), 2, "shortcuts: 2 VUs, 2 connections")
        t.ok(0.9 <= res.elapsed < 4, "shortcuts: about 1 s (%.1f)" % res.elapsed)

        n0 = len(fx.requests())
        res, s = run(p, ["--iterations", "5"])
        t.eq(len(fx.requests()) - n0, 5, "shortcuts: --iterations 5 sends exactly 5 requests")

        res, s = run(p, env={"K6_ITERATIONS": "3", "K6_VUS": "3"})
        t.eq(metric(s, "iterations", "count"), 3, "shortcuts: K6_ITERATIONS=3")

        res, s = run(p, ["--stage", "1s:2", "--stage", "500ms:0"])
        t.eq(res.rc, 0, "shortcuts: --stage ramps") or t.diag(res.explain())
        t.ok(metric(s, "vus_max", "value") == 2, "shortcuts: --stage 1s:2 makes 2 VU slots")

        # a higher layer replaces the profile's scenarios, with a warning (k6's rule)
        scen = profile(fx, {"steady": {"executor": "constant-vus", "vus": 1, "duration": "5s"}})
        res, s = run(scen, ["--duration", "500ms"])
        w = [e.get("message", "") for e in res.events("config_warning")]
        t.ok(res.rc == 0 and res.elapsed < 3 and any("overrides" in m for m in w),
             "shortcuts: --duration replaces load.scenarios and says so", w)
        res, s = run(scen, env={"STAGES": '[{"duration":"500ms","target":1}]'})
        w = [e.get("message", "") for e in res.events("config_warning")]
        t.ok(res.rc == 0 and res.elapsed < 3 and any("STAGES" in m or "load.stages" in m
                                                     for m in w),
             "shortcuts: STAGES (environment) replaces the profile's scenarios, with a "
             "warning", w)
        # two in one layer: k6's error
        res, _ = run(p, ["--duration", "1s", "--stage", "1s:1"])
        t.ok(res.rc == 104 and "together is not allowed" in res.stderr,
             "shortcuts: --duration with --stage is refused (104)", res.stderr[-300:])
        res, _ = run(p, ["--duration", "1s"], env={"K6_NOT_A_THING": "1"})
        w = [e.get("message", "") for e in res.events("config_warning")]
        t.ok(any("K6_NOT_A_THING" in m for m in w), "shortcuts: an unsupported K6_* variable "
             "is named in a warning", w)
        res, s = run(p, ["--duration", "500ms", "--tag", "team=gate"])
        t.ok(res.rc == 0, "shortcuts: --tag accepted") or t.diag(res.explain())
        res, s = run(p, ["--duration", "300ms", "--summary-trend-stats", "avg,p(99.9),count"])
        line = [x for x in res.stdout.splitlines() if "http_req_duration." in x]
        t.ok(line and "p(99.9)=" in line[0] and "count=" in line[0] and "med=" not in line[0],
             "shortcuts: --summary-trend-stats picks the summary's trend columns", line)
        t.ok("p(99.9)" in (s or {}).get("metrics", {}).get("http_req_duration", {}),
             "shortcuts: ... and adds them to the export")
        res, _ = run(p, ["--duration", "500ms", "--tag", "name=x"])
        t.ok(res.rc == 104 and "name" in res.stderr, "shortcuts: --tag of a reserved name is "
             "refused", res.stderr[-200:])


def case_no_thresholds(t):
    """--no-thresholds: a failing threshold is not judged (k6's meaning), and says so."""
    with fixture() as fx:
        p = profile(fx, extra={"thresholds": {"http_reqs": ["count<1"]}})
        res, _ = run(p, ["--duration", "300ms"])
        t.eq(res.rc, 99, "no thresholds: the failing threshold fails the run first")
        res, _ = run(p, ["--duration", "300ms", "--no-thresholds"])
        t.eq(res.rc, 0, "no thresholds: --no-thresholds skips it")
        res, _ = run(p, ["--duration", "300ms"], env={"K6_NO_THRESHOLDS": "true"})
        t.eq(res.rc, 0, "no thresholds: so does K6_NO_THRESHOLDS=true")


def stall(fx, after, length):
    """SIGSTOP the fixture after `after` s for `length` s: a server that freezes."""
    def go():
        time.sleep(after)
        os.kill(fx.proc.pid, signal.SIGSTOP)
        time.sleep(length)
        os.kill(fx.proc.pid, signal.SIGCONT)
    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th


def case_stall(t):
    """A 1 s freeze: open-model latency from the scheduled start shows it; closed p99 hides it."""
    with fixture() as fx:
        th = stall(fx, 1.0, 1.0)
        res, s = run(profile(fx, {"open": {
            "executor": "constant-arrival-rate", "journey": "alpha", "rate": 200,
            "duration": "4s", "pre_allocated_vus": 50, "max_vus": 400}}))
        th.join()
    sched = metric(s, "http_req_duration_scheduled", "p(99)", 0)
    t.ok(sched >= 500, "stall: open model, p99 from the scheduled start %.0f ms" % sched)
    with fixture() as fx:
        th = stall(fx, 1.0, 1.0)
        res2, s2 = run(profile(fx, {"closed": {
            "executor": "constant-vus", "journey": "alpha", "vus": 1, "duration": "4s"}}))
        th.join()
    closed = metric(s2, "http_req_duration", "p(99)", 0)
    t.ok(closed < sched / 4, "stall: closed model, p99 %.1f ms: one slow request among many "
         "fast ones" % closed)
    t.diag("stall of 1 s: open-model http_req_duration_scheduled p(99) = %.1f ms; closed-model "
           "http_req_duration p(99) = %.1f ms" % (sched, closed))


def main():
    t = h.Tap()
    t.run(case_constant_rate, case_dropped, case_two_scenarios, case_iterations, case_shortcuts,
          case_no_thresholds, case_stall)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
