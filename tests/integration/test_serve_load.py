#!/usr/bin/env python3
"""Load on the serve API itself, while a run is active.

The same paced load run twice through `syncgate serve` (10 VUs, 50 ms think
time, against the fixture): once alone, once while CLIENTS threads (300 by
default) each keep a connection busy with GETs of the run, the history,
/metrics and /healthz. Every one of those GETs must answer 200 with a body that
parses; the second run must pass like the first. The request rates of both
runs, the GET throughput and latencies are printed (TAP comments), not judged:
timing on a shared machine is for scripts/bench-serve.sh, which runs this file
longer and prints the figures.

Environment: SYNCGATE, FIXTURE (tests/integration/meson.build); SERVE_LOAD_SECONDS
(the hold stage, default 6), SERVE_LOAD_CLIENTS (default 300). Prints TAP.
"""
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import serve_lib as sl  # noqa: E402

HOLD = int(os.environ.get("SERVE_LOAD_SECONDS", "6"))
CLIENTS = int(os.environ.get("SERVE_LOAD_CLIENTS", "300"))
RUN = {"testType": "load", "overrides": {
    "load.stages": [{"duration": "1s", "target": 10}, {"duration": "%ds" % HOLD, "target": 10}],
    "load.think_time": "50ms"}}


def hold_rate(srv, run_id):
    """Requests per second of the run, from its summary."""
    r = srv.get(run_id)
    m = ((r.get("summary") or {}).get("metrics") or {}).get("http_reqs") or {}
    return m.get("rate", 0.0), m.get("count", 0), r


class Hammer:
    """CLIENTS threads, each with its own connection, GETting until stopped."""

    def __init__(self, srv, run_id):
        self.srv, self.run_id = srv, run_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = []
        self.latencies = []
        self.paths = ["/api/tests/%d" % run_id, "/api/tests?limit=20", "/metrics", "/healthz",
                      "/api/tests?state=running"]
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        self.started = threading.Barrier(CLIENTS + 1)

    def client(self, i):
        conn = None
        lat = []
        n = 0
        errs = []
        try:
            self.started.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        while not self.stop.is_set():
            path = self.paths[(i + n) % len(self.paths)]
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=20)
                conn.request("GET", path, headers={"Authorization": "Bearer " + sl.TOKEN})
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    errs.append("%s: %d %s" % (path, r.status, body[:200]))
                elif path != "/metrics":
                    json.loads(body)
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - any failure is what we count
                errs.append("%s: %r" % (path, e))
                if conn:
                    conn.close()
                conn = None
            lat.append(time.monotonic() - t0)
            n += 1
        if conn:
            conn.close()
        with self.lock:
            self.ok += len(lat) - len(errs)
            self.errors += errs
            self.latencies += lat

    def __enter__(self):
        for th in self.threads:
            th.start()
        self.started.wait(timeout=60)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=60)
        self.elapsed = time.monotonic() - self.t0
        return False


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else float("nan")


def case_api_under_load(t):
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        st, b = srv.run(RUN)
        t.eq(st, 202, "baseline: a paced load run starts")
        base = srv.wait_done(b.get("id", 0), timeout=HOLD + 60)
        rate_a, count_a, _ = hold_rate(srv, b.get("id", 0))
        t.eq(base.get("result"), "passed", "baseline: it passes")

        st, b = srv.run(RUN)
        t.eq(st, 202, "under load: the same run starts again")
        rid = b.get("id", 0)
        srv.wait_state(rid, lambda x: (x.get("progress") or {}).get("requests", 0) > 0, 20)
        with Hammer(srv, rid) as hm:
            # GET until the run is over (it is what the clients are polling)
            deadline = time.monotonic() + HOLD + 60
            while time.monotonic() < deadline:
                if srv.get(rid).get("state") != "running":
                    break
                time.sleep(0.2)
        rate_b, count_b, r = hold_rate(srv, rid)
        t.ok(r.get("result") == "passed", "under load: the run passes", r.get("result"),
             r.get("reason"))
        n = hm.ok + len(hm.errors)
        t.ok(n > CLIENTS, "under load: %d GETs from %d concurrent clients" % (n, CLIENTS))
        t.eq(hm.errors[:5], [], "under load: every GET answered 200 with a body that parses")
        t.diag("run alone: %.1f req/s (%d requests); with %d API clients: %.1f req/s "
               "(%d requests); ratio %.3f"
               % (rate_a, count_a, CLIENTS, rate_b, count_b, rate_b / rate_a if rate_a else 0))
        t.diag("API: %d GETs in %.1f s = %.0f/s; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms"
               % (n, hm.elapsed, n / hm.elapsed if hm.elapsed else 0,
                  1000 * pct(hm.latencies, 50), 1000 * pct(hm.latencies, 99),
                  1000 * max(hm.latencies or [0])))
        print("RESULT rate_alone=%.2f rate_loaded=%.2f gets=%d gets_per_s=%.1f p50_ms=%.2f "
              "p99_ms=%.2f errors=%d" % (rate_a, rate_b, n, n / hm.elapsed if hm.elapsed else 0,
                                         1000 * pct(hm.latencies, 50),
                                         1000 * pct(hm.latencies, 99), len(hm.errors)),
              file=sys.stderr, flush=True)
        t.eq(srv.stop(), 0, "the server stops cleanly afterwards")


if __name__ == "__main__":
    h.Tap().run(case_api_under_load)
