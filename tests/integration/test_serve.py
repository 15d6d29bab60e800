#!/usr/bin/env python3
"""`syncgate serve` end to end: the HTTP API against the fixture server standing in for KubeStock.

Trigger, poll, report, history filters, cancel, 401 without the token, 409 on a
second run, 4xx on bad requests with nothing started, SIGTERM, restart after a
crash (the lost run recorded as interrupted), retention, /metrics, bad options.
Environment (tests/integration/meson.build): SYNCGATE, FIXTURE. Prints TAP.
"""
import json
import os
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import serve_lib as sl  # noqa: E402

SEED = {"testType": "smoke"}  # the seed's curl body, as is
LONG_LOAD = {"testType": "load", "overrides": {"load.stages": [{"duration": "30s", "target": 2}]}}


def runs(srv, query=""):
    st, _, b = srv.json("GET", "/api/tests" + query)
    return st, b


def case_auth(t):
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        st, hdr, b = srv.json("GET", "/healthz", token=None)
        t.ok(st == 200 and b.get("status") == "ok" and b.get("running") is None,
             "auth: /healthz answers without a token", st, b)
        for label, token, headers in [("no token", None, {}),
                                      ("a wrong token", "it-token-7d3c0ffeX", {}),
                                      ("a longer token", sl.TOKEN + "x", {}),
                                      ("the token's prefix", sl.TOKEN[:-1], {}),
                                      ("Basic auth", None,
                                       {"Authorization": "Basic dXNlcjpwYXNz"})]:
            for method, path in [("GET", "/api/tests"), ("GET", "/metrics"),
                                 ("POST", "/api/tests/run"), ("GET", "/api/tests/1"),
                                 ("GET", "/api/tests/1/report.html")]:
                st, hdr, b = srv.json(method, path, SEED if method == "POST" else None,
                                      token=token, headers=headers)
                t.ok(st == 401 and "bearer token" in (b or {}).get("error", "") and
                     hdr.get("www-authenticate", "").startswith("Bearer"),
                     "auth: %s %s with %s: 401 with WWW-Authenticate" % (method, path, label),
                     st, b)
        st, b = runs(srv)
        t.ok(st == 200 and b["count"] == 0, "auth: nothing was started by unauthorised posts",
             b)
        t.eq(len([r for r in fx.requests() if r["path"] != "/health"]), 0,
             "auth: KubeStock saw no request")
        warn = srv.events("unauthorized")
        t.ok(len(warn) >= 25 and all(e.get("level") == "warn" and e.get("client") == "127.0.0.1"
                                     for e in warn),
             "auth: each refusal is logged as a warning with the client address", len(warn))
        t.ok(sl.TOKEN not in srv.stderr() and sl.TOKEN[:-1] not in srv.stderr(),
             "auth: the token never reaches the log")
        t.eq(srv.stop(), 0, "auth: SIGTERM stops the idle server with exit 0")


def case_trigger_and_poll(t):
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        st, hdr, b = srv.json("POST", "/api/tests/run", SEED)
        t.ok(st == 202 and isinstance(b.get("id"), int), "trigger: the seed's body gives 202 "
             "and an id", st, b)
        rid = b.get("id", 0)
        t.eq(hdr.get("location"), "/api/tests/%d" % rid, "trigger: Location names the run")
        t.ok(b.get("state") == "running" and b.get("profile") == "staging" and
             b.get("testType") == "smoke" and b.get("environment") == "staging" and
             len(b.get("testid", "")) == 16,
             "trigger: running, default profile staging, its environment and a testid", b)
        r = srv.wait_done(rid)
        t.ok(r.get("state") == "finished" and r.get("result") == "passed" and
             r.get("exitCode") == 0, "trigger: polled to finished, passed, exit 0", r)
        t.eq(r.get("failedThresholds"), [], "trigger: no failed thresholds")
        s = r.get("summary") or {}
        reqs = [q for q in fx.requests()]
        t.ok(s.get("metrics", {}).get("http_reqs", {}).get("count") ==
             len([q for q in reqs]) - 1,
             "trigger: the summary counts the requests KubeStock saw (minus the readiness poll)",
             s.get("metrics", {}).get("http_reqs"), len(reqs))
        t.ok(r.get("createdAt", "").endswith("Z") and r.get("durationMs", -1) >= 0 and
             r.get("links", {}).get("report") == "/api/tests/%d/report.html" % rid,
             "trigger: times, duration and links", r)
        t.ok("progress" not in r, "trigger: a finished run has no progress")

        st, hdr, html = srv.request("GET", "/api/tests/%d/report.html" % rid)
        html = html.decode("utf-8", "replace")
        t.ok(st == 200 and hdr.get("content-type", "").startswith("text/html") and
             "PASSED" in html and 'id="verdict"' in html,
             "trigger: report.html is the run's HTML report, PASSED", st, hdr)
        t.ok("default-src 'none'" in hdr.get("content-security-policy", ""),
             "trigger: the report is served with a CSP that allows nothing external")
        t.ok(r.get("testid") in html, "trigger: the report names the run's testid")
        st, hdr, b = srv.json("GET", "/api/tests/%d/summary.json" % rid)
        t.ok(st == 200 and b.get("metrics", {}).get("checks", {}).get("fails") == 0,
             "trigger: summary.json served", st)
        st, hdr, log = srv.request("GET", "/api/tests/%d/log" % rid)
        evs = h.parse_logs(log.decode())
        fin = [e for e in evs if e.get("event") == "test_finish"]
        t.ok(st == 200 and fin and fin[0].get("exit_code") == 0 and
             fin[0].get("testid") == r.get("testid"),
             "trigger: the run's log has its test_finish with the run's testid", st)
        fwd = [e for e in srv.events("test_finish") if e.get("testid") == r.get("testid")]
        t.ok(fwd, "trigger: the run's log lines also reach the server's log (for Loki)")
        st, hdr, b = srv.request("HEAD", "/api/tests/%d/report.html" % rid)
        t.ok(st == 200 and b == b"", "trigger: HEAD answers headers only")

        st, b = runs(srv)
        t.ok(st == 200 and b["count"] == 1 and b["runs"][0]["id"] == rid and
             "summary" not in b["runs"][0], "trigger: listed in the history, without summary",
             b)
        srv.stop()


def case_bad_requests(t):
    with sl.kubestock() as fx:
        profiles = sl.write_profiles(fx)
        srv = sl.Server(profiles)
        bad = [
            ("empty body", "", 400, "empty body"),
            ("not JSON", "testType=smoke", 400, "malformed JSON"),
            ("truncated JSON", '{"testType": "smo', 400, "malformed JSON"),
            ("an array", '["smoke"]', 400, "expected a JSON object"),
            ("no testType", "{}", 400, "testType: required"),
            ("unknown testType", '{"testType": "soak"}', 400, "testType: expected"),
            ("unknown field", '{"testType": "smoke", "url": "http://x"}', 400,
             'unknown field "url"'),
            ("duplicate field", '{"testType": "smoke", "testType": "load"}', 400,
             "given twice"),
            ("a path as profile", '{"testType": "smoke", "profile": "../../etc/passwd"}', 400,
             "expected a profile name"),
            ("unknown profile", '{"testType": "smoke", "profile": "qa"}', 400,
             'no profile "qa"; profiles: '),
            ("a profile that is not YAML", '{"testType": "smoke", "profile": "broken"}', 400,
             "profile broken: "),
            ("URL override", '{"testType": "smoke", "overrides": {"gateway.url": "http://x"}}',
             400, "cannot be overridden"),
            ("header override", '{"testType": "smoke", "overrides": '
             '{"gateway.consumer_header": "Host"}}', 400, "cannot be overridden"),
            ("bad duration value", '{"testType": "load", "overrides": '
             '{"load.think_time": "fast"}}', 400, 'invalid duration "fast"'),
            ("stages with a negative target", '{"testType": "load", "overrides": '
             '{"load.stages": [{"duration": "1s", "target": -1}]}}', 400, "load.stages"),
            ("too many threads", '{"testType": "load", "overrides": {"load.threads": 100000}}',
             400, "load.threads"),
        ]
        for label, body, want, msg in bad:
            st, hdr, b = srv.json("POST", "/api/tests/run", body,
                                  headers={"Content-Type": "application/json"})
            t.ok(st == want and msg in (b or {}).get("error", "") and
                 hdr.get("content-type") == "application/json",
                 "bad request: %s: %d with a JSON error" % (label, want), st, b)
        st, hdr, b = srv.json("POST", "/api/tests/run", '{"testType": "smoke"}',
                              headers={"Content-Type": "text/plain"})
        t.ok(st == 415 and "JSON" in b.get("error", ""), "bad request: text/plain: 415", st, b)
        big = '{"testType": "smoke", "x": "%s"}' % ("a" * 70000)
        st, hdr, b = srv.json("POST", "/api/tests/run", big,
                              headers={"Content-Type": "application/json"})
        t.ok(st == 413 and "65536" in b.get("error", ""), "bad request: a 70 kB body: 413", st)
        st, hdr, b = srv.json("POST", "/api/tests/run",
                              iter([b'{"testType": "smoke", "x": "'] + [b"a" * 8192] * 10 +
                                   [b'"}']),
                              headers={"Content-Type": "application/json",
                                       "Transfer-Encoding": "chunked"})
        t.ok(st == 413, "bad request: a chunked body over the cap (no Content-Length): 413", st)
        for method, path, want in [("GET", "/api/tests/run", 405), ("DELETE", "/api/tests/1", 405),
                                   ("PUT", "/api/tests", 405), ("GET", "/api/tests/1/cancel", 405),
                                   ("GET", "/api/nothing", 404), ("GET", "/api/tests/0", 404),
                                   ("GET", "/api/tests/abc", 404), ("GET", "/api/tests/1/x", 404),
                                   ("GET", "/api/tests/999", 404),
                                   ("GET", "/api/tests/999/report.html", 404),
                                   ("POST", "/api/tests/999/cancel", 404)]:
            st, hdr, b = srv.json(method, path)
            t.ok(st == want and (b or {}).get("error"),
                 "bad request: %s %s: %d with a JSON error" % (method, path, want), st, b)
            if want == 405:
                t.ok(hdr.get("allow"), "bad request: 405 names the allowed methods (%s)"
                     % hdr.get("allow"))
        for q, msg in [("?limit=0", "limit"), ("?limit=abc", "limit"), ("?result=ok", "result"),
                       ("?since=yesterday", "since"), ("?sort=id", "unknown query parameter"),
                       ("?limit=1&limit=2", "given twice"), ("?testType=soak", "testType")]:
            st, _, b = srv.json("GET", "/api/tests" + q)
            t.ok(st == 400 and msg in b.get("error", ""), "bad request: list %s: 400" % q, st, b)
        st, b = runs(srv)
        t.ok(b["count"] == 0, "bad requests: nothing was recorded", b)
        t.eq([r["path"] for r in fx.requests()], [], "bad requests: KubeStock saw no request")
        t.eq(os.listdir(os.path.join(srv.data, "runs")), [], "bad requests: no run directory")
        t.ok(srv.proc.poll() is None, "bad requests: the server is still up")
        srv.stop()


def case_conflict_and_cancel(t):
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        st, b = srv.run(LONG_LOAD)
        t.eq(st, 202, "cancel: a 30 s load starts")
        rid = b.get("id", 0)
        r = srv.wait_state(rid, lambda x: (x.get("progress") or {}).get("requests", 0) > 0, 20)
        p = r.get("progress") or {}
        t.ok(r.get("state") == "running" and p.get("phase") == "load" and p.get("vusMax") == 2
             and p.get("requests", 0) > 0 and p.get("stages") == 1,
             "cancel: progress while running (phase, VUs, requests, stage)", r)
        # ten at once: the running one blocks them all
        results = []

        def post():
            results.append(srv.run(SEED))
        threads = [threading.Thread(target=post) for _ in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.ok(all(st == 409 and b.get("running") == rid for st, b in results),
             "cancel: 10 concurrent posts while a run is active: all 409 naming it",
             [s for s, _ in results])
        st, b = runs(srv, "?state=running")
        t.ok(b["count"] == 1, "cancel: still exactly one running run", b)
        st, _, b = srv.json("POST", "/api/tests/%d/cancel" % rid)
        t.ok(st == 202 and b.get("cancelRequested") is True, "cancel: 202, cancel requested",
             st, b)
        r = srv.wait_done(rid, 20)
        t.ok(r.get("state") == "interrupted" and r.get("result") == "interrupted" and
             r.get("exitCode") == 105 and "cancelled" in r.get("reason", ""),
             "cancel: recorded interrupted, exit 105, reason cancelled", r)
        t.ok(r.get("summary") and r["summary"]["metrics"]["http_reqs"]["count"] > 0,
             "cancel: the interrupted run's summary covers what ran")
        st, _, html = srv.request("GET", "/api/tests/%d/report.html" % rid)
        t.ok(st == 200 and b"INTERRUPTED" in html, "cancel: its report says INTERRUPTED")
        st, _, b = srv.json("POST", "/api/tests/%d/cancel" % rid)
        t.ok(st == 409 and "not running" in b.get("error", ""), "cancel: again: 409", st, b)
        t.eq(sl.children_of_data(srv.data), [], "cancel: no child process left")
        # the next run may start at once, from ten at once exactly one
        results.clear()
        threads = [threading.Thread(target=post) for _ in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        codes = sorted(st for st, _ in results)
        t.eq(codes, [202] + [409] * 9, "cancel: then 10 concurrent posts: one 202, nine 409")
        ok_ids = [b["id"] for st, b in results if st == 202]
        if ok_ids:
            r = srv.wait_done(ok_ids[0])
            t.eq(r.get("result"), "passed", "cancel: that run passes")
        srv.stop()


def case_run_crash(t):
    """A run that crashes takes only itself down."""
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        st, b = srv.run(LONG_LOAD)
        rid = b.get("id", 0)
        srv.wait_state(rid, lambda x: (x.get("progress") or {}).get("requests", 0) > 0, 20)
        pids = sl.children_of_data(srv.data)
        t.eq(len(pids), 1, "run crash: the run is one child process")
        for p in pids:
            os.kill(p, signal.SIGSEGV)
        r = srv.wait_done(rid, 20)
        t.ok(r.get("state") == "finished" and r.get("result") == "error" and
             r.get("exitCode") is None and "died of signal" in r.get("reason", ""),
             "run crash: the run is recorded as an error, with the signal (SIGSEGV; "
             "ASan turns it into SIGABRT)", r)
        st, _, b = srv.json("GET", "/healthz")
        t.ok(st == 200 and b.get("running") is None, "run crash: the server is up, nothing running")
        st, b = srv.run(SEED)
        t.ok(st == 202 and srv.wait_done(b.get("id", 0)).get("result") == "passed",
             "run crash: the next run starts and passes")
        t.eq(srv.stop(), 0, "run crash: the server stops cleanly")


def case_history_and_metrics(t):
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        ids = {}
        for name, body in [("staging", SEED), ("failing", {"testType": "smoke", "profile":
                                                            "failing"}),
                           ("production", {"testType": "smoke", "profile": "production"}),
                           ("load", {"testType": "load", "overrides": {
                               "load.stages": [{"duration": "2s", "target": 2}]}})]:
            st, b = srv.run(body)
            ids[name] = b.get("id")
            srv.wait_done(ids[name])
        r = srv.get(ids["failing"])
        t.ok(r.get("result") == "failed" and r.get("exitCode") == 99 and
             {"metric": "checks", "threshold": "rate==1.0"} in r.get("failedThresholds", []),
             "history: the failing smoke is failed, 99, checks rate==1.0 named", r)
        st, _, html = srv.request("GET", "/api/tests/%d/report.html" % ids["failing"])
        t.ok(b"FAILED" in html and b"rate==1.0" in html, "history: its report says FAILED")

        def listed(q):
            st, b = runs(srv, q)
            return [x["id"] for x in b.get("runs", [])] if st == 200 else st
        t.eq(listed(""), [ids["load"], ids["production"], ids["failing"], ids["staging"]],
             "history: all four, newest first")
        t.eq(listed("?result=failed"), [ids["failing"]], "history: result=failed")
        t.eq(listed("?environment=production"), [ids["production"]],
             "history: environment=production")
        t.eq(listed("?environment=staging&result=passed"), [ids["load"], ids["staging"]],
             "history: environment=staging&result=passed")
        t.eq(listed("?testType=load"), [ids["load"]], "history: testType=load")
        t.eq(listed("?profile=failing"), [ids["failing"]], "history: profile=failing")
        t.eq(listed("?since=2999-01-01T00:00:00Z"), [], "history: since a future time: none")
        t.eq(len(listed("?since=2020-01-01")), 4, "history: since a past date: all")
        st, b = runs(srv, "?limit=3")
        t.ok(b["count"] == 3 and b.get("nextBefore") == ids["failing"],
             "history: limit=3 and nextBefore for the next page", b.get("nextBefore"))
        t.eq(listed("?limit=3&before=%d" % b.get("nextBefore", 0)), [ids["staging"]],
             "history: the next page")
        st, hdr, text = srv.request("GET", "/metrics")
        text = text.decode()
        t.ok(st == 200 and hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
             "metrics: Prometheus text format")
        for line in ['syncgate_serve_runs{result="passed"} 3',
                     'syncgate_serve_runs{result="failed"} 1',
                     "syncgate_serve_running 0", "syncgate_serve_last_run_passed 1",
                     'syncgate_serve_last_run_info{id="%d",result="passed"} 1' % ids["load"],
                     "syncgate_serve_last_run_exit_code 0"]:
            t.ok(line in text.splitlines(), "metrics: %s" % line, text)
        t.ok(all(ln.startswith("#") or ln.startswith("syncgate_serve_") for ln in
                 text.splitlines() if ln), "metrics: only syncgate_serve_ series and comments")
        srv.stop()


def case_sigterm_and_restart(t):
    with sl.kubestock() as fx:
        profiles = sl.write_profiles(fx)
        srv = sl.Server(profiles)
        st, b = srv.run(SEED)
        first = b.get("id")
        srv.wait_done(first)
        st, b = srv.run(LONG_LOAD)
        rid = b.get("id", 0)
        srv.wait_state(rid, lambda x: (x.get("progress") or {}).get("requests", 0) > 0, 20)
        st, _, text = srv.request("GET", "/metrics")
        t.ok(b"syncgate_serve_running 1" in text, "sigterm: /metrics says a run is going")
        t0 = time.monotonic()
        rc = srv.stop(signal.SIGTERM, timeout=30)
        dt = time.monotonic() - t0
        t.ok(rc == 0, "sigterm: the server stops the run and exits 0 (%.1f s)" % dt, rc,
             srv.stderr()[-2000:])
        fin = [e for e in srv.events("run_finish") if e.get("id") == rid]
        t.ok(fin and fin[0].get("state") == "interrupted" and fin[0].get("exit_code") == 105,
             "sigterm: the run ended interrupted, exit 105, before the server", fin)
        t.eq(sl.children_of_data(srv.data), [], "sigterm: no child left")

        # the same data directory again: history kept
        srv2 = sl.Server(profiles, data=srv.data)
        r = srv2.get(rid)
        t.ok(r.get("state") == "interrupted" and "server was stopped" in r.get("reason", ""),
             "restart: the stopped run is in the history as interrupted", r)
        t.eq(srv2.get(first).get("result"), "passed", "restart: the earlier run is kept")

        # a crash: SIGKILL while a run goes
        st, b = srv2.run(LONG_LOAD)
        lost = b.get("id", 0)
        srv2.wait_state(lost, lambda x: (x.get("progress") or {}).get("requests", 0) > 0, 20)
        srv2.stop(signal.SIGKILL)
        gone = h.wait_for(lambda: not sl.children_of_data(srv.data), timeout=10)
        t.ok(gone, "crash: the run's child dies with the server (PR_SET_PDEATHSIG)")
        srv3 = sl.Server(profiles, data=srv.data)
        r = srv3.get(lost)
        t.ok(r.get("state") == "interrupted" and r.get("result") == "interrupted" and
             "found still running at start-up" in r.get("reason", ""),
             "crash: the lost run is recorded as interrupted at start-up", r)
        ev = srv3.events("runs_lost")
        t.ok(ev and ev[0].get("runs") == 1, "crash: runs_lost logged with 1 run", ev)
        st, b = runs(srv3)
        t.eq(b.get("count"), 3, "crash: the history holds all three runs")
        st, b = srv3.run(SEED)
        t.ok(st == 202 and b.get("id") == lost + 1, "crash: a new run takes the next id", st, b)
        srv3.wait_done(b.get("id", 0))
        # a second server on the same data directory is refused
        res = h.run_syncgate(["serve", "--listen", "127.0.0.1:0", "--token-file",
                              srv3.token_file, "--profiles-dir", profiles, "--data-dir",
                              srv.data], timeout=30)
        t.ok(res.rc == 104 and "another syncgate serve is using it" in res.stderr,
             "lock: a second server on the same data directory exits 104", res.explain())
        srv3.stop()


def case_retention(t):
    with sl.kubestock() as fx:
        profiles = sl.write_profiles(fx)
        srv = sl.Server(profiles, args=["--retention-runs", "2"])
        ids = []
        for _ in range(3):
            st, b = srv.run(SEED)
            ids.append(b.get("id"))
            srv.wait_done(ids[-1])
        time.sleep(0.2)  # retention runs right after the run is recorded
        st, b = runs(srv)
        t.eq([r["id"] for r in b["runs"]], ids[:0:-1], "retention: --retention-runs 2 keeps "
             "the newest two")
        runs_dir = os.path.join(srv.data, "runs")
        t.eq(sorted(os.listdir(runs_dir)), sorted(str(i) for i in ids[1:]),
             "retention: the deleted run's files are gone")
        st, _, b = srv.json("GET", "/api/tests/%d" % ids[0])
        t.eq(st, 404, "retention: the deleted run is 404")
        srv.stop()
        # by age: make the oldest kept run 40 days old in the real database, then restart
        db = sqlite3.connect(os.path.join(srv.data, "history.db"))
        db.execute("UPDATE runs SET created_ms = created_ms - 40 * 86400000 WHERE id = ?",
                   (ids[1],))
        db.commit()
        ver = db.execute("PRAGMA user_version").fetchone()[0]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.close()
        t.ok(ver >= 1 and mode == "wal", "history: schema version %d, WAL mode" % ver)
        srv2 = sl.Server(profiles, data=srv.data, args=["--retention-days", "30"])
        st, b = runs(srv2)
        t.eq([r["id"] for r in b["runs"]], [ids[2]],
             "retention: at start-up, a run older than --retention-days 30 is deleted")
        t.eq(sorted(os.listdir(runs_dir)), [str(ids[2])], "retention: and its files")
        ev = srv2.events("retention")
        t.ok(ev and ev[0].get("deleted") == 1, "retention: logged", ev)
        srv2.stop()


def case_bad_options(t):
    d = h.tempdir()
    token = h.write_file("tok\n", "token", d)
    empty = h.write_file("\n", "empty", d)
    spaced = h.write_file("two words\n", "spaced", d)
    profiles = os.path.join(d, "profiles")
    os.mkdir(profiles)
    h.write_file("environment: x\n", "staging.yaml", profiles)
    base = ["serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(d, "data")]
    cases = [
        ("no token file", base + ["--profiles-dir", profiles], None, 104, "no API token"),
        ("a missing token file", base + ["--token-file", d + "/nope", "--profiles-dir", profiles],
         None, 104, "cannot read"),
        ("an empty token", base + ["--token-file", empty, "--profiles-dir", profiles], None, 104,
         "is empty"),
        ("a token with a space", base + ["--token-file", spaced, "--profiles-dir", profiles],
         None, 104, "printable ASCII"),
        ("a missing profiles dir", base + ["--token-file", token, "--profiles-dir", d + "/no"],
         None, 104, "--profiles-dir"),
        ("a missing default profile", base + ["--token-file", token, "--profiles-dir", profiles,
                                              "--default-profile", "prod"], None, 104,
         'no profile "prod"'),
        ("a bad listen address", ["serve", "--listen", "localhost:3007", "--token-file", token],
         None, 104, "--listen: expected ADDR:PORT"),
        ("a bad env listen", ["serve", "--token-file", token], {"SYNCGATE_LISTEN": "1.2.3.4:99999"},
         104, "env SYNCGATE_LISTEN"),
        ("bad retention", base + ["--token-file", token, "--retention-days", "-1"], None, 104,
         "--retention-days"),
        ("an unknown option", ["serve", "--port", "3007"], None, 104, "unknown option"),
        ("options before serve", ["-q", "serve"], None, 104, "options after the command"),
        ("an extra argument", ["serve", "now", "--token-file", token], None, 104, "extra argument"),
        ("a data dir that is a file", ["serve", "--listen", "127.0.0.1:0", "--token-file", token,
                                       "--profiles-dir", profiles, "--data-dir", token], None,
         104, "--data-dir"),
    ]
    for label, args, env, want, msg in cases:
        res = h.run_syncgate(args, env=env, timeout=30)
        t.ok(res.rc == want and msg in res.stderr and len(res.stderr.strip().splitlines()) == 1,
             "options: %s: exit %d, one line naming it" % (label, want), res.explain())
    res = h.run_syncgate(["serve", "--help"], timeout=30)
    t.ok(res.rc == 0 and "--token-file" in res.stdout and "SYNCGATE_API_TOKEN_FILE" in res.stdout,
         "options: serve --help documents the options and variables", res.explain())
    # a port already taken
    with sl.kubestock() as fx:
        srv = sl.Server(sl.write_profiles(fx))
        res = h.run_syncgate(["serve", "--listen", "127.0.0.1:%d" % srv.port, "--token-file",
                              token, "--profiles-dir", profiles, "--data-dir",
                              os.path.join(d, "data2")], timeout=30)
        t.ok(res.rc == 1 and "cannot listen" in res.stderr, "options: a taken port: exit 1",
             res.explain())
        srv.stop()


if __name__ == "__main__":
    h.Tap().run(case_auth, case_trigger_and_poll, case_bad_requests, case_conflict_and_cancel,
                case_run_crash, case_history_and_metrics, case_sigterm_and_restart, case_retention,
                case_bad_options)
