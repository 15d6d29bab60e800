#!/usr/bin/env python3
"""Signals: SIGTERM and SIGINT at every phase of a run.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, RWFIXTURE. Prints TAP.

For each of SIGTERM and SIGINT, sent during the readiness wait, smoke, load
and the final remote-write flush, syncgate must exit 105 within 2 s of the
signal (the drain after a signal is at most 1 s, see docs/operations.md),
print the text summary, write the summary export, log test_finish with
interrupted=true, and push its final metrics (the remote-write receiver's
last values equal the summary's counts). A second signal ends it at once.
"""
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "remote_write"))
import harness as h  # noqa: E402
import rwlib  # noqa: E402

BOUND_S = 2.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)
SERVICES = [("product", "/api/products/health"), ("order", "/api/orders/health")]


def gateway(ready_status=200):
    routes = ["0:GET:/health=status=%d" % ready_status]
    routes += ["0:GET:%s=delay=20ms" % p for _, p in SERVICES]
    routes.append("0:GET:/direct=delay=5ms")
    return h.Fixture(routes, log=False)


def profile(fx, load_s=20):
    return h.write_profile({
        "environment": "itest",
        "gateway": {"url": fx.url(0), "ready": {"path": "/health", "timeout": "60s"}},
        "services": [{"name": n, "smoke_path": p, "url": fx.url(0, "/direct")}
                     for n, p in SERVICES],
        "smoke": {"duration": "30s", "think_time": "100ms", "request_timeout": "2s",
                  "thresholds": {"checks": ["rate==1.0"]}},
        "load": {"stages": [{"duration": "%ds" % load_s, "target": 4}], "think_time": "20ms",
                 "request_timeout": "2s", "graceful_ramp_down": "1s",
                 "thresholds": {"http_req_failed": ["rate<0.01"]}},
    })


def rw_env(rw, interval="1s"):
    return {"K6_PROMETHEUS_RW_SERVER_URL": rw.url, "K6_PROMETHEUS_RW_PUSH_INTERVAL": interval}


def wait_event(sp, name, timeout=15.0):
    return h.wait_for(lambda: ('"event":"%s"' % name) in sp.stderr_so_far(), timeout=timeout)


def start(args, env):
    d = h.tempdir()
    export = os.path.join(d, "summary.json")
    sp = h.spawn_syncgate(list(args) + ["--summary-export", export, "--log-format", "json"],
                          env=env)
    return sp, export


def interrupt(sp, sig):
    """Send sig; returns (Result, seconds from the signal to the exit)."""
    t0 = time.monotonic()
    sp.signal(sig)
    try:
        sp.proc.wait(timeout=15)
    except Exception:
        pass
    dt = time.monotonic() - t0
    return sp.finish(timeout=1), dt


def outcome(t, label, res, dt, export, bound=BOUND_S):
    """Exit 105 within the bound, the summary printed and exported, test_finish interrupted."""
    t.eq(res.rc, 105, "%s: exit code 105" % label) or t.diag(res.explain())
    t.ok(dt < bound, "%s: exited %.2fs after the signal (< %gs)" % (label, dt, bound))
    t.ok("result: FAILED (exit code 105)" in res.stdout, "%s: text summary printed" % label,
         res.stdout[-2000:])
    try:
        with open(export) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        summary = None
    t.ok(summary is not None and "metrics" in summary, "%s: summary exported" % label)
    fin = res.event("test_finish")
    t.ok(fin and fin.get("exit_code") == 105 and fin.get("interrupted") is True,
         "%s: test_finish with exit_code 105, interrupted" % label, repr(fin))
    return summary or {}


def flushed(t, label, res, rw, summary):
    """The receiver's last http_reqs values add up to the summary's: the final push happened."""
    rws = res.event("remote_write_summary")
    t.ok(rws and rws.get("delivered") is True, "%s: remote write delivered" % label, repr(rws))
    want = summary.get("metrics", {}).get("http_reqs", {}).get("count")
    got = sum(rwlib.last_values(rw.records(), "k6_http_reqs_total").values())
    t.ok(want and got == want, "%s: final push carries every request (%r pushed, %r in summary)"
         % (label, got, want))


def sig_name(sig):
    return signal.Signals(sig).name


# ---- cases ----

def case_readiness(t):
    for sig in SIGNALS:
        label = "%s during readiness" % sig_name(sig)
        with gateway(ready_status=503) as fx, rwlib.Fixture() as rw:
            sp, export = start(["run", "-p", profile(fx)], rw_env(rw))
            wait_event(sp, "test_start")
            time.sleep(0.7)  # a few polls answered 503
            res, dt = interrupt(sp, sig)
        outcome(t, label, res, dt, export)
        t.ok(res.event("ready") is None and not res.events("check"),
             "%s: stopped waiting, no check ran" % label)
        rws = res.event("remote_write_summary")
        t.ok(rws and rws.get("delivered") is True and rws.get("samples_undelivered") == 0,
             "%s: remote write stopped cleanly" % label, repr(rws))


def interrupt_phase(t, label, command, event, settle_s, sig):
    """Run `command` against a gateway and a receiver, send sig settle_s after `event`,
    and check exit, summary and flush. Returns (result, summary)."""
    with gateway() as fx, rwlib.Fixture() as rw:
        sp, export = start([command, "-p", profile(fx)], rw_env(rw))
        t.ok(wait_event(sp, event), "%s: %s logged before the signal" % (label, event))
        time.sleep(settle_s)
        res, dt = interrupt(sp, sig)
        summary = outcome(t, label, res, dt, export)
        flushed(t, label, res, rw, summary)
    return res, summary


def case_smoke(t):
    for sig in SIGNALS:
        label = "%s during smoke" % sig_name(sig)
        res, summary = interrupt_phase(t, label, "smoke", "ready", 1.2, sig)
        t.ok(summary.get("root_group", {}).get("checks"), "%s: checks in the summary" % label)


def case_load(t):
    for sig in SIGNALS:
        label = "%s during load" % sig_name(sig)
        res, summary = interrupt_phase(t, label, "load", "load_start", 1.5, sig)
        fin = res.event("test_finish") or {}
        t.ok(fin.get("duration_ms", 1e9) < 10000, "%s: load stopped early (%.1fs of 20s)"
             % (label, fin.get("duration_ms", 0) / 1000.0))


def slow_receiver():
    # every push answered after 5 s: the final flush would take its full 10 s drain
    return rwlib.Fixture(script=",".join("%d=delay:5000" % i for i in range(200)))


def case_final_flush(t):
    for sig in SIGNALS:
        label = "%s during the final flush" % sig_name(sig)
        with gateway() as fx, slow_receiver() as rw:
            sp, export = start(["load", "-p", profile(fx, load_s=1)], rw_env(rw, "500ms"))
            # the verdict is logged just before the final flush starts
            t.ok(wait_event(sp, "threshold"), "%s: verdict logged before the signal" % label)
            time.sleep(0.3)
            res, dt = interrupt(sp, sig)
            outcome(t, label, res, dt, export)
        rws = res.event("remote_write_summary")
        t.ok(rws and rws.get("delivered") is False, "%s: undelivered metrics reported" % label,
             repr(rws))
        t.ok("remote write: INCOMPLETE" in res.stdout, "%s: the summary says so" % label)


def case_unreachable_receiver(t):
    port = h.free_port()  # nothing listens: every push is refused, retried with backoff
    env = {"K6_PROMETHEUS_RW_SERVER_URL": "http://127.0.0.1:%d/api/v1/write" % port,
           "K6_PROMETHEUS_RW_PUSH_INTERVAL": "500ms"}
    with gateway() as fx:
        sp, export = start(["load", "-p", profile(fx)], env)
        wait_event(sp, "load_start")
        time.sleep(1.5)
        res, dt = interrupt(sp, signal.SIGTERM)
    outcome(t, "SIGTERM with an unreachable receiver", res, dt, export)


def case_second_signal(t):
    for sig in SIGNALS:
        label = "second %s during the final flush" % sig_name(sig)
        with gateway() as fx, slow_receiver() as rw:
            sp, export = start(["load", "-p", profile(fx, load_s=1)], rw_env(rw, "500ms"))
            t.ok(wait_event(sp, "threshold"), "%s: verdict logged before the signal" % label)
            sp.signal(sig)
            time.sleep(0.3)  # the first one is handled: the drain is running (up to 1 s)
            res, dt = interrupt(sp, sig)
        t.eq(res.rc, 105, "%s: exit code 105" % label) or t.diag(res.explain())
        t.ok(dt < 0.3, "%s: exited %.2fs after the second signal" % (label, dt))
        t.ok(res.event("test_finish") is None, "%s: at once, without finishing" % label)


if __name__ == "__main__":
    h.Tap().run(case_readiness, case_smoke, case_load, case_final_flush,
                case_unreachable_receiver, case_second_signal)
