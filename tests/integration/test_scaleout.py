#!/usr/bin/env python3
"""One gate over several instances (a Kubernetes Indexed Job's pods), as local processes on
127.0.0.1. Prints TAP.

Each case starts N syncgate processes the way an Indexed Job starts its pods: the same
profile and command, JOB_COMPLETION_INDEX 0..N-1, SYNCGATE_INSTANCES=N, the coordinator's
address and a shared token file. Judged from outside: every process's exit code, the one
summary export (instance 0's), the log lines, and the fixture server's request log (what
reached the services, and when).
"""
import http.client
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

SANITIZED = os.environ.get("SANITIZED") == "1"
SLOW = 3 if SANITIZED or os.environ.get("SYNCGATE_WRAPPER") else 1


def profile(fx, scenarios, thresholds=None, extra=None):
    p = {
        "environment": "itest",
        "services": [{"name": "svc", "url": fx.url(0, "/health")}],
        "load": {"think_time": "0s", "request_timeout": "5s", "threads": 1,
                 "scenarios": scenarios,
                 "thresholds": thresholds or {"http_req_failed": ["rate<0.5"]}},
    }
    for k, v in (extra or {}).items():
        p[k] = v
    return p


class Fleet:
    """N processes of one distributed run. start() spawns them; finish() collects Results."""

    def __init__(self, n, prof, command="load", token="it-peer-token-0123456789", env=None,
                 indexes=None):
        self.n = n
        self.dir = h.tempdir()
        self.path = h.write_profile(prof, directory=self.dir)
        self.export = os.path.join(self.dir, "summary.json")
        self.token_file = h.write_file(token + "\n", "token", self.dir)
        self.port = h.free_port()
        self.command = command
        self.env = env or {}
        self.indexes = list(range(n)) if indexes is None else indexes
        self.procs = {}
        self.t0 = None

    def env_of(self, i, token_file=None, extra=None):
        e = {"SYNCGATE_INSTANCES": str(self.n), "JOB_COMPLETION_INDEX": str(i),
             "SYNCGATE_COORDINATOR": "127.0.0.1:%d" % self.port,
             "SYNCGATE_PEER_TOKEN_FILE": token_file or self.token_file}
        e.update(self.env)
        e.update(extra or {})
        return e

    def spawn(self, i, profile_path=None, token_file=None, extra=None):
        args = [self.command, "-p", profile_path or self.path, "--log-format", "json"]
        if i == 0:
            args += ["--summary-export", self.export]
        self.procs[i] = h.spawn_syncgate(args, env=self.env_of(i, token_file, extra))
        return self.procs[i]

    def start(self):
        self.t0 = time.monotonic()
        for i in self.indexes:
            self.spawn(i)
        return self

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].signal(sig)
        return time.monotonic()

    def finish(self, timeout=60):
        out = {}
        for i, p in self.procs.items():
            out[i] = p.finish(timeout=timeout)
            out[i].ended = time.monotonic()
        return out

    def summary(self):
        if not os.path.exists(self.export):
            return None
        with open(self.export) as f:
            return json.load(f)


def metric(s, name, key, default=None):
    return ((s or {}).get("metrics", {}).get(name) or {}).get(key, default)


def explain_all(res):
    return "\n".join("=== instance %d\n%s" % (i, r.explain()) for i, r in sorted(res.items()))


# ---- cases ----

def case_exact_totals(t):
    """Three instances: iteration executors' totals exact, the open model's due count exact,
    one summary for all, one testid, T0 agreed to the millisecond."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {
            "shared": {"executor": "shared-iterations", "vus": 4, "iterations": 97,
                       "max_duration": "20s"},
            "pervu": {"executor": "per-vu-iterations", "vus": 5, "iterations": 7,
                      "max_duration": "20s"},
            "open": {"executor": "constant-arrival-rate", "rate": 60, "duration": "2s",
                     "pre_allocated_vus": 6, "max_vus": 12},
            "closed": {"executor": "constant-vus", "vus": 7, "duration": "2s"}})).start()
        res = f.finish()
        reqs = fx.requests()
    s = f.summary()
    t.ok(all(r.rc == 0 for r in res.values()), "totals: every instance exits 0",
         explain_all(res))
    sc = (s or {}).get("scenarios", {})
    t.eq(sc.get("shared", {}).get("iterations"), 97, "totals: shared-iterations 97 in all")
    t.eq(sc.get("pervu", {}).get("iterations"), 35, "totals: per-vu-iterations 5 x 7 in all")
    op = sc.get("open", {})
    t.eq(op.get("iterations_due"), 120, "totals: the open model's due count is the whole's")
    t.eq(op.get("iterations", 0) + op.get("dropped_iterations", 0), 120,
         "totals: open-model iterations run + dropped = 120 due (%s + %s)"
         % (op.get("iterations"), op.get("dropped_iterations")))
    t.eq(metric(s, "vus_max", "value"), 4 + 5 + 12 + 7, "totals: vus_max adds up every instance's")
    t.eq(metric(s, "http_reqs", "count"), len(reqs),
         "totals: the summary counts every request the service saw (%d)" % len(reqs))
    peer_reqs = sum(r.event("test_finish").get("requests", 0) for i, r in res.items() if i)
    t.ok(0 < peer_reqs < len(reqs), "totals: the peers sent %d of the %d requests"
         % (peer_reqs, len(reqs)))
    t.eq((s or {}).get("syncgate", {}).get("instances"), {"count": 3, "lost": None},
         "totals: the export says 3 instances, none lost")
    testids = {e.get("testid") for r in res.values() for e in r.logs}
    t.eq(len(testids), 1, "totals: every line of every instance has the one testid %r" % testids)
    t.ok(all("coordinator's verdict" in res[i].stdout for i in (1, 2)),
         "totals: the peers say the verdict is the coordinator's", res[1].stdout)
    starts = [r.event("fleet_start") for r in res.values()]
    t0s = [e["t0_mono_us"] for e in starts if e]
    t.ok(len(t0s) == 3 and max(t0s) - min(t0s) <= 1000,
         "totals: the three instances agree on T0 within 1 ms (spread %s us)"
         % (max(t0s) - min(t0s) if t0s else None))


def case_one_verdict(t):
    """A threshold that fails on the merged metrics fails every instance: one verdict."""
    with h.Fixture(["*:*:*=delay=3ms"]) as fx:
        f = Fleet(2, profile(fx, {"c": {"executor": "constant-vus", "vus": 2, "duration": "1s"}},
                             thresholds={"http_req_duration": ["p(95)<1"]})).start()
        res = f.finish()
    t.ok(res[0].rc == 99 and res[1].rc == 99, "one verdict: both instances exit 99",
         explain_all(res))
    t.ok("p(95)<1" in res[0].stdout and "FAILED" in res[0].stdout,
         "one verdict: the coordinator's summary shows the failed threshold")
    fin = res[1].event("test_finish") or {}
    t.eq(fin.get("verdict_from"), "coordinator", "one verdict: the peer's code is the coordinator's")


def case_abort_merged(t):
    """abortOnFail on a count no instance reaches alone: the merge crosses it and every
    instance stops within about an interval of the abort."""
    limit = 600
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"o": {"executor": "constant-arrival-rate", "rate": 150,
                                        "duration": "10s", "pre_allocated_vus": 9}},
                             thresholds={"http_reqs": [{"threshold": "count<%d" % limit,
                                                        "abortOnFail": True}]})).start()
        res = f.finish()
    t.ok(all(r.rc == 99 for r in res.values()), "abort: every instance exits 99",
         explain_all(res))
    took = max(r.elapsed for r in res.values())
    t.ok(took < 9 * SLOW, "abort: all stopped long before the 10 s schedule (%.1f s)" % took)
    per = [r.event("test_finish").get("requests", 0) for i, r in res.items() if i]
    aborted = [e for e in res[0].events("threshold") if e.get("abort")]
    t.ok(aborted and all(p < limit for p in per),
         "abort: crossed on the merge only: the peers alone made %r requests, below %d"
         % (per, limit))
    at = h_time(aborted[0]["time"]) if aborted else None
    lags = []
    for i in (1, 2):
        ev = res[i].event("coordinator_stop")
        if ev and at:
            lags.append(h_time(ev["time"]) - at)
    t.ok(len(lags) == 2 and max(lags) <= 1.5 * SLOW,
         "abort: the peers heard STOP within an interval of the abort (%r s)" % lags)
    t.ok(res[0].event("test_finish").get("aborted"), "abort: the coordinator says aborted")


def h_time(text):
    """A log line's time ("2026-01-31T12:00:00.123Z") as seconds."""
    import datetime
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def case_killed_peer(t):
    """A peer killed mid-load: the coordinator stops everyone and exits 115 naming it, within
    three intervals of its last report (plus one)."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 3,
                                        "duration": "12s"}})).start()
        h.wait_for(lambda: '"fleet_start"' in f.procs[2].stderr_so_far(), timeout=15)
        time.sleep(1.5)
        killed = f.kill(2)
        res = f.finish()
    t.eq((res[0].rc, res[1].rc), (115, 115), "killed peer: the others exit 115") or \
        t.diag(explain_all(res))
    bound = (4.5 + 1) * SLOW
    t.ok(res[0].ended - killed <= bound and res[1].ended - killed <= bound,
         "killed peer: both ended within %.1f s of the kill (%.1f, %.1f s)"
         % (bound, res[0].ended - killed, res[1].ended - killed))
    lost = res[0].event("peer_lost") or {}
    t.eq(lost.get("index"), 2, "killed peer: a peer_lost line names instance 2")
    s = f.summary()
    t.contains(((s or {}).get("syncgate", {}).get("instances") or {}).get("lost") or "",
               "instance 2", "killed peer: the export names the lost instance")
    t.contains(res[0].stdout, "LOST: instance 2", "killed peer: so does the summary")
    t.ok("INCONCLUSIVE" in res[0].stdout, "killed peer: the result is inconclusive, not a pass")


def case_killed_coordinator(t):
    """The coordinator killed mid-load: every peer stops and exits 115 within the bound."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 3,
                                        "duration": "15s"}})).start()
        h.wait_for(lambda: '"fleet_start"' in f.procs[0].stderr_so_far(), timeout=15)
        time.sleep(1.5)
        killed = f.kill(0)
        res = f.finish()
    t.eq((res[1].rc, res[2].rc), (115, 115), "killed coordinator: the peers exit 115") or \
        t.diag(explain_all(res))
    bound = 5.0 * SLOW
    t.ok(max(res[1].ended, res[2].ended) - killed <= bound,
         "killed coordinator: both peers ended within %.1f s of the kill (%.1f, %.1f s)"
         % (bound, res[1].ended - killed, res[2].ended - killed))
    t.ok(res[1].event("coordinator_lost"), "killed coordinator: a coordinator_lost line")


def post(port, path, headers, body=b"x"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def case_wrong_token(t):
    """A wrong token is refused (403, 401 without one) and changes nothing: the right peer
    joins afterwards and the run passes."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(2, profile(fx, {"c": {"executor": "constant-vus", "vus": 2, "duration": "1s"}}),
                  env={"SYNCGATE_REGISTER_TIMEOUT": "20s"})
        f.spawn(0)
        h.wait_for(lambda: '"fleet_listen"' in f.procs[0].stderr_so_far(), timeout=10)
        bad = h.write_file("not-the-token\n", "bad-token", f.dir)
        wrong = h.run_syncgate(["load", "-p", f.path], env=f.env_of(1, token_file=bad),
                               timeout=30)
        codes = [post(f.port, "/v1/register", {}),
                 post(f.port, "/v1/register", {"Authorization": "Bearer not-the-token"}),
                 post(f.port, "/v1/poll", {"Authorization": "Bearer it-peer-token-0123456789x"})]
        f.spawn(1)
        res = f.finish()
        stats = len(fx.requests())
    t.eq(wrong.rc, 104, "wrong token: that peer exits 104 (its configuration is wrong)") or \
        t.diag(wrong.explain())
    t.contains(wrong.stderr, "refused this instance's token", "wrong token: it says why")
    t.eq(codes, [401, 403, 403], "wrong token: none 401, wrong 403 (a longer one too)")
    t.eq((res[0].rc, res[1].rc), (0, 0),
         "wrong token: nothing changed: the right peer joined and the run passed") or \
        t.diag(explain_all(res))
    t.ok(res[0].event("peer_unauthorized"), "wrong token: the coordinator logs the refusals")
    t.ok(stats > 0, "wrong token: the load ran (%d requests)" % stats)
    t.ok("not-the-token" not in res[0].stderr and "it-peer-token" not in res[0].stderr
         and "it-peer-token" not in res[1].stderr, "wrong token: no token in any log line")


def case_never_registered(t):
    """An instance that never comes: load starts nowhere, the others exit 115 naming it."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 2, "duration": "2s"}}),
                  env={"SYNCGATE_REGISTER_TIMEOUT": "2s"}, indexes=[0, 1]).start()
        res = f.finish()
        n = len(fx.requests())
    t.eq((res[0].rc, res[1].rc), (115, 115), "never registered: 115 for all") or \
        t.diag(explain_all(res))
    t.contains(res[0].stdout, "instance 2: never registered within 2s",
               "never registered: the summary names it")
    t.eq(n, 0, "never registered: load started nowhere")


def case_other_profile(t):
    """A peer with another profile is refused: the run fails fast instead of running a
    slice of something else."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(2, profile(fx, {"c": {"executor": "constant-vus", "vus": 2, "duration": "3s"}}))
        other = h.write_profile(profile(fx, {"c": {"executor": "constant-vus", "vus": 3,
                                                   "duration": "3s"}}), "other.yaml", f.dir)
        f.spawn(0)
        f.spawn(1, profile_path=other)
        res = f.finish()
    t.eq((res[0].rc, res[1].rc), (115, 115), "other profile: both exit 115") or \
        t.diag(explain_all(res))
    t.contains(res[0].stdout, "configuration differs", "other profile: the summary says why")
    t.ok(res[0].elapsed < 10 * SLOW, "other profile: it failed at once (%.1f s)" % res[0].elapsed)


def case_remote_write(t):
    """Each instance pushes its own series under its own instance label (the counters add up
    to the run's); the coordinator also pushes the merged trends as instance="all", and
    their p(95) is the summary's."""
    with h.Fixture(["*:*:*=delay=2ms"]) as fx, rwlib.Fixture() as rw:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 3, "duration": "2s"}}),
                  env={"K6_PROMETHEUS_RW_SERVER_URL": rw.url,
                       "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s"}).start()
        res = f.finish()
        recs = rw.records()
    s = f.summary()
    t.ok(all(r.rc == 0 for r in res.values()), "remote write: every instance exits 0") or \
        t.diag(explain_all(res))
    reqs = rwlib.last_values(recs, "k6_http_reqs_total")
    by_inst = {}
    for k, v in reqs.items():
        inst = dict(k)["instance"]
        by_inst[inst] = by_inst.get(inst, 0) + v
    t.eq(sorted(by_inst), sorted(["%s" % (r.event("test_start") or {}).get("instance")
                                  for r in res.values()]),
         "remote write: requests counted under each instance's own label, no other")
    t.eq(sum(by_inst.values()), metric(s, "http_reqs", "count"),
         "remote write: the instances' counters add up to the run's requests")
    merged = rwlib.last_values(recs, "k6_http_req_duration_p95", instance="all")
    names = {rwlib.name(x) for _, x in rwlib.all_series(recs)
             if rwlib.labels(x).get("instance") == "all"}
    t.ok(merged and all(n.startswith("k6_") and n.rsplit("_", 1)[-1] in
                        ("p95", "p99", "min", "max") for n in names),
         "remote write: instance=\"all\" carries trend statistics only (%s)" % sorted(names)[:6])
    want = metric(s, "http_req_duration", "p(95)")
    got = max(merged.values()) * 1000 if merged else None
    t.ok(got is not None and want is not None and abs(got - want) <= 0.001 * want,
         "remote write: the merged p95 pushed (%s ms) is the summary's (%s ms)" % (got, want))
    testids = {rwlib.labels(x).get("testid") for _, x in rwlib.all_series(recs)}
    t.eq(len(testids), 1, "remote write: one testid on every series (%r)" % testids)


def case_smoke_once(t):
    """`run`: smoke and the readiness wait on the coordinator only; a failed smoke starts load
    nowhere and every instance exits with its verdict."""
    with h.Fixture(["*:GET:/health=status=200", "*:GET:/api/svcs/health=status=503",
                    "*:*:*=delay=1ms"]) as fx:
        p = profile(fx, {"c": {"executor": "constant-vus", "vus": 2, "duration": "2s"}})
        p["gateway"] = {"url": fx.url(0), "ready": {"path": "/health", "timeout": "5s"}}
        p["services"][0]["url"] = fx.url(0, "/load")
        p["services"][0]["smoke_path"] = "/api/svcs/health"
        p["smoke"] = {"duration": "0s", "iterations": 1, "retries": 0}
        f = Fleet(3, p, command="run").start()
        res = f.finish()
        reqs = fx.requests()
    t.eq([res[i].rc for i in range(3)], [99, 99, 99], "smoke once: every instance exits 99") or \
        t.diag(explain_all(res))
    t.eq(len([r for r in reqs if r["path"] == "/api/svcs/health"]), 1,
         "smoke once: the smoke request was sent once (by the coordinator)")
    t.eq(len([r for r in reqs if r["path"] == "/health"]), 2,
         "smoke once: so were the readiness poll and the gateway's check, once each")
    t.eq(len([r for r in reqs if r["path"] == "/load"]), 0, "smoke once: no load anywhere")


def case_slow_peer(t):
    """A peer that stalls (SIGSTOP) shorter than three intervals is waited for and the run
    passes; one that stalls longer is lost: the coordinator stops the run with 115 naming
    it, and the stalled peer, once it runs again, learns so and exits 115 too."""
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 3,
                                        "duration": "6s"}})).start()
        h.wait_for(lambda: '"fleet_start"' in f.procs[2].stderr_so_far(), timeout=15)
        time.sleep(1)
        f.kill(2, signal.SIGSTOP)
        time.sleep(1.5)
        f.kill(2, signal.SIGCONT)
        res = f.finish()
    t.eq([res[i].rc for i in range(3)], [0, 0, 0], "slow peer: a 1.5 s stall is waited for") \
        or t.diag(explain_all(res))
    with h.Fixture(["*:*:*=delay=1ms"]) as fx:
        f = Fleet(3, profile(fx, {"c": {"executor": "constant-vus", "vus": 3,
                                        "duration": "20s"}})).start()
        h.wait_for(lambda: '"fleet_start"' in f.procs[2].stderr_so_far(), timeout=15)
        time.sleep(1)
        stopped = f.kill(2, signal.SIGSTOP)
        h.wait_for(lambda: f.procs[0].proc.poll() is not None, timeout=15 * SLOW)
        coord_done = time.monotonic()
        f.kill(2, signal.SIGCONT)
        res = f.finish()
    t.eq([res[i].rc for i in range(3)], [115, 115, 115],
         "slow peer: a stall past three intervals is a lost peer, for all three") \
        or t.diag(explain_all(res))
    t.ok(coord_done - stopped <= 5.5 * SLOW,
         "slow peer: the coordinator gave up %.1f s after the stall began" % (coord_done - stopped))
    t.eq((res[0].event("peer_lost") or {}).get("index"), 2, "slow peer: peer_lost names it")


if __name__ == "__main__":
    h.Tap().run(case_exact_totals, case_one_verdict, case_abort_merged, case_killed_peer,
                case_killed_coordinator, case_wrong_token, case_never_registered,
                case_other_profile, case_remote_write, case_smoke_once, case_slow_peer)
