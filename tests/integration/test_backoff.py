#!/usr/bin/env python3
"""A remote-write receiver that refuses at once never gets more tries than the backoff allows.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, RWFIXTURE. Prints TAP.

`syncgate load` (one VU against the fixture) pushes every 200 ms to a receiver that
answers every push at once: 429 with Retry-After: 0, 429 with a date in the past, 503,
or closes the connection; and to a port nothing listens on. After about 2.5 s the run
gets SIGTERM (exit 105; the final flush is then bounded to 1 s). Whatever the receiver
says, the push thread waits at least the backoff between two tries: the first backoff
step is 100 ms with jitter down to half, so no two tries are closer than 50 ms and a
window of T ms holds at most 1 + T/50 of them. The gaps are measured by the receiver
(answer sent to next request received), so a slow machine can only widen them. The
tries are also counted from syncgate's own remote_write_error lines, which is how the
refused port is judged. Before the floor, Retry-After: 0 drew about 5,000 tries a second.
"""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "remote_write"))
import harness as h  # noqa: E402
import rwlib  # noqa: E402

FLOOR_MS = 50  # half of the first backoff step (100 ms), the jitter's lower bound
RUN_S = 2.5


def profile(fx):
    return h.write_profile({
        "services": [{"name": "product", "url": fx.url(0, "/direct")}],
        "load": {"stages": [{"duration": "30s", "target": 1}], "think_time": "10ms"},
    })


def run_against(rw_url):
    """A load run pushing to rw_url, stopped by SIGTERM after RUN_S: its Result."""
    with h.Fixture(["0:GET:/direct=delay=1ms"]) as fx:
        sp = h.spawn_syncgate(["load", "-p", profile(fx), "--log-format", "json"],
                              env={"K6_PROMETHEUS_RW_SERVER_URL": rw_url,
                                   "K6_PROMETHEUS_RW_PUSH_INTERVAL": "200ms"})
        h.wait_for(lambda: "load_start" in sp.stderr_so_far(), timeout=20)
        time.sleep(RUN_S)
        sp.signal(signal.SIGTERM)
        return sp.finish(timeout=20)


def bounded(t, label, times_ms):
    """times_ms: when each try happened; at most 1 + span/FLOOR_MS of them."""
    if not t.ok(len(times_ms) >= 2, "%s: the receiver was tried more than once" % label,
                "tries: %r" % times_ms):
        return
    span = times_ms[-1] - times_ms[0]
    most = 1 + int(span / FLOOR_MS)
    t.ok(len(times_ms) <= most, "%s: %d tries in %.0f ms, at most %d at one per %d ms"
         % (label, len(times_ms), span, most, FLOOR_MS))


def check_case(t, label, action):
    with rwlib.Fixture(default=action) as rw:
        res = run_against(rw.url)
        recs = rw.records()
    t.eq(res.rc, 105, "%s: SIGTERM ends the run with 105" % label) or t.diag(res.explain())
    t.ok(res.event("load_start") and res.event("test_finish"),
         "%s: the load ran and finished" % label, res.stderr[-2000:])
    bounded(t, "%s (counted by the receiver)" % label, [r["t_ms"] for r in recs])
    gaps = [b["t_ms"] - a["done_ms"] for a, b in zip(recs, recs[1:])]
    short = [round(g, 1) for g in gaps if g < FLOOR_MS - 1]
    t.eq(short, [], "%s: no try sooner than %d ms after the previous answer" % (label, FLOOR_MS))
    errs = res.events("remote_write_error")
    t.ok(errs and all(e.get("retry_in_ms", 0) >= FLOOR_MS for e in errs),
         "%s: every remote_write_error says a wait of at least %d ms" % (label, FLOOR_MS),
         [e.get("retry_in_ms") for e in errs][:20])
    return res


def case_retry_after_zero(t):
    check_case(t, "429 Retry-After: 0", "429:0")


def case_retry_after_past(t):
    check_case(t, "429 Retry-After in the past", "429:Thu%2C 01 Jan 1970 00:00:00 GMT")


def case_503(t):
    check_case(t, "503 at once", "503")


def case_close(t):
    check_case(t, "connection closed at once", "close")


def case_refused(t):
    res = run_against("http://127.0.0.1:%d/api/v1/write" % h.free_port())
    t.eq(res.rc, 105, "refused: SIGTERM ends the run with 105") or t.diag(res.explain())
    errs = res.events("remote_write_error")
    # log times have millisecond resolution: compare as epoch ms
    stamps = [time.mktime(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S")) * 1000 +
              int(e["time"][20:23]) for e in errs]
    bounded(t, "refused (counted by syncgate's log)", stamps)


if __name__ == "__main__":
    h.Tap().run(case_retry_after_zero, case_retry_after_past, case_503, case_close,
                case_refused)
