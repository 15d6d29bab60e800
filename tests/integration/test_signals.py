#!/usr/bin/env python3
"""Signals: every signal that ends a run, at every phase of it.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, RWFIXTURE. Prints TAP.

For each of SIGTERM and SIGINT, sent during the readiness wait, smoke, load
and the final remote-write flush, syncgate must exit 105 within 2 s of the
signal (the drain after a signal is at most 1 s, see docs/operations.md),
print the text summary, write the summary export, log test_finish with
interrupted=true, and push its final metrics (the remote-write receiver's
last values equal the summary's counts). Every other signal whose default
action ends a process (SIGQUIT, SIGHUP, SIGUSR1, ..., the real-time ones)
must do the same at each of those moments, also when syncgate is PID 1 of
its own PID namespace (as in its FROM-scratch image), where the kernel drops
the signals a process does not handle. A second signal within 500 ms of the
first is the same interruption; a later one ends the process at once.
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
# every signal whose default action ends a process, but for the program's own faults
# (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS) and SIGPIPE, which syncgate ignores
EVERY_SIGNAL = tuple(getattr(signal, n) for n in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGPWR", "SIGIO")) + (
    getattr(signal, "SIGSTKFLT", 16), signal.SIGRTMIN, signal.SIGRTMIN + 5, signal.SIGRTMAX)
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
    if signal.SIGRTMIN < sig <= signal.SIGRTMAX:
        return "SIGRTMIN+%d" % (sig - signal.SIGRTMIN)
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


class Blackhole:
    """A listener that never accepts: a remote-write push to it waits for its timeout."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = "http://127.0.0.1:%d/api/v1/write" % self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


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
            # past the 500 ms window in which a second signal is the same interruption,
            # within the drain that the first one started (up to 1 s)
            time.sleep(0.7)
            res, dt = interrupt(sp, sig)
        t.eq(res.rc, 105, "%s: exit code 105" % label) or t.diag(res.explain())
        t.ok(dt < 0.3, "%s: exited %.2fs after the second signal" % (label, dt))
        t.ok(res.event("test_finish") is None, "%s: at once, without finishing" % label)


# The moments of a run: how to get there and what says we are there.
MOMENTS = (
    # (label, command, gateway's /health status, load seconds, event, settle s, remote write)
    ("readiness", "run", 503, 20, "test_start", 0.5, False),
    ("smoke", "smoke", 200, 20, "ready", 0.5, False),
    ("load", "load", 200, 20, "load_start", 1.0, False),
    ("the final flush", "load", 200, 1, "threshold", 0.3, True),
)


# Seventeen runs at once share two cores (ASan makes each several times heavier), so
# their exits are judged against a wider bound; the 2 s bound itself is checked one run
# at a time for SIGTERM and SIGINT above, and every signal takes the same path.
CROWD_BOUND_S = 5.0


def signal_all(t, moment, sigs, prefix=()):
    """Start one run per signal at once, send each its signal at the moment; check each."""
    label_m, command, ready, load_s, event, settle, rw = moment
    with gateway(ready_status=ready) as fx, Blackhole() as bh:
        env = {"K6_PROMETHEUS_RW_SERVER_URL": bh.url,
               "K6_PROMETHEUS_RW_PUSH_INTERVAL": "500ms"} if rw else None
        runs = [(sig,) + start([command, "-p", profile(fx, load_s=load_s)], env) for sig in sigs]
        for sig, sp, export in runs:
            t.ok(wait_event(sp, event), "%s during %s: %s logged first"
                 % (sig_name(sig), label_m, event), sp.stderr_so_far()[-2000:])
        time.sleep(settle)
        sent = []
        for sig, sp, export in runs:
            sent.append(time.monotonic())
            sp.signal(sig)
        for (sig, sp, export), t0 in zip(runs, sent):
            try:
                sp.proc.wait(timeout=15)
            except Exception:
                pass
            dt = time.monotonic() - t0
            res = sp.finish(timeout=1)
            label = "%s%s during %s" % ("".join(prefix), sig_name(sig), label_m)
            outcome(t, label, res, dt, export, bound=CROWD_BOUND_S)
            fin = res.event("test_finish") or {}
            t.eq(fin.get("signal"), sig_name(sig), "%s: test_finish names the signal" % label)


def case_every_signal(t):
    for moment in MOMENTS:
        signal_all(t, moment, EVERY_SIGNAL)


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def case_pid1(t):
    """As PID 1 of a PID namespace the kernel drops every signal a process does not handle:
    each one must still end the run as interrupted."""
    unshare = "/usr/bin/unshare"
    if os.geteuid() != 0 or not os.access(unshare, os.X_OK):
        t.skip("signals as PID 1", "needs root and unshare(1)")
        return
    probe = h.subprocess.run([unshare, "--pid", "--fork", "--kill-child", "true"],
                             capture_output=True, timeout=10)
    if probe.returncode != 0:
        t.skip("signals as PID 1", "no PID namespaces here: %r" % probe.stderr[-200:])
        return
    for moment in (MOMENTS[0], MOMENTS[2]):
        label_m, command, ready, load_s, event, settle, _ = moment
        sigs = (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGRTMIN)
        with gateway(ready_status=ready) as fx:
            old = h._WRAPPER
            h._WRAPPER = [unshare, "--pid", "--fork", "--kill-child"] + list(old)
            try:
                runs = [(sig,) + start([command, "-p", profile(fx, load_s=load_s)], None)
                        for sig in sigs]
            finally:
                h._WRAPPER = old
            for sig, sp, export in runs:
                t.ok(wait_event(sp, event), "PID 1: %s during %s: %s logged first"
                     % (sig_name(sig), label_m, event))
            time.sleep(settle)
            sent = []
            for sig, sp, export in runs:
                kids = _children(sp.proc.pid)  # unshare's child is syncgate, PID 1 inside
                sent.append(time.monotonic())
                if kids:
                    os.kill(kids[0], sig)
            for (sig, sp, export), t0 in zip(runs, sent):
                try:
                    sp.proc.wait(timeout=5)
                except Exception:
                    pass
                dt = time.monotonic() - t0
                res = sp.finish(timeout=1)
                outcome(t, "PID 1: %s during %s" % (sig_name(sig), label_m), res, dt, export,
                        bound=CROWD_BOUND_S)


def case_same_interruption(t):
    """Ctrl-C on a script: the terminal's SIGINT and the script's SIGTERM arrive together.
    Within 500 ms of the first, a second signal is the same interruption: summary, export
    and final flush still happen."""
    for label_m, event, settle, load_s in (("load", "load_start", 1.0, 20),
                                           ("the final flush", "threshold", 0.3, 1)):
        label = "SIGINT then SIGTERM 50 ms later, during %s" % label_m
        with gateway() as fx, (slow_receiver() if load_s == 1 else rwlib.Fixture()) as rw:
            sp, export = start(["load", "-p", profile(fx, load_s=load_s)], rw_env(rw, "500ms"))
            t.ok(wait_event(sp, event), "%s: %s logged before the signals" % (label, event))
            time.sleep(settle)
            sp.signal(signal.SIGINT)
            time.sleep(0.05)
            res, dt = interrupt(sp, signal.SIGTERM)
            summary = outcome(t, label, res, dt, export)
            if load_s != 1:
                flushed(t, label, res, rw, summary)
        t.eq((res.event("test_finish") or {}).get("signal"), "SIGINT",
             "%s: the first signal is the one reported" % label)


if __name__ == "__main__":
    h.Tap().run(case_readiness, case_smoke, case_load, case_final_flush,
                case_unreachable_receiver, case_second_signal, case_same_interruption,
                case_every_signal, case_pid1)
