#!/usr/bin/env python3
"""Integration tests of `syncgate smoke` against the fixture server as a stand-in KubeStock.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, SOURCE_ROOT.
Prints TAP. Every fixture and syncgate process is bounded in time and stopped.

Topology of each case: one fixture with two listeners. Listener 0 is the
"Kong gateway" (/health and /api/<service>/health); listener 1 stands for the
services' direct URLs, which smoke must never touch.
"""
import hashlib
import json
import os
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "remote_write"))
import harness as h  # noqa: E402
import rwlib  # noqa: E402

SERVICES = [
    ("product", "/api/products/health"),
    ("inventory", "/api/inventory/health"),
    ("supplier", "/api/suppliers/health"),
    ("order", "/api/orders/health"),
    ("identity", "/api/identity/health"),
]
HEALTHY = "delay=2ms,body={\"status\":\"ok\"}"
CONSUMER = "test-runner"
LOG_FIELDS = ("event", "environment", "test_type", "testid", "time", "level")


def gateway(extra_routes=()):
    """A fixture: per-case routes first (the first matching rule answers), then healthy ones."""
    routes = list(extra_routes)
    routes.append("0:GET:/health=" + HEALTHY)
    for _, path in SERVICES:
        routes.append("0:GET:%s=%s" % (path, HEALTHY))
    routes.append("1:*:*=body=direct")
    return h.Fixture(routes, listen=("127.0.0.1:0", "127.0.0.1:0"))


def profile(gw_url, direct_url, smoke=None, gw=None, services=None):
    return h.write_profile(profile_dict(gw_url, direct_url, smoke, gw, services))


def profile_dict(gw_url, direct_url, smoke=None, gw=None, services=None):
    p = {
        "environment": "itest",
        "gateway": {
            "url": gw_url,
            "consumer_header": "X-Consumer-Username",
            "consumer": CONSUMER,
            "ready": {"path": "/health", "timeout": "5s"},
        },
        "services": [
            {"name": n, "smoke_path": path, "url": direct_url + "/health",
             "expect_status": 200, "max_latency": "1s"}
            for n, path in SERVICES
        ],
        "smoke": {
            "duration": "1s",
            "think_time": "100ms",
            "retries": 2,
            "request_timeout": "2s",
            "thresholds": {"checks": ["rate==1.0"]},
        },
    }
    p["gateway"].update(gw or {})
    p["smoke"].update(smoke or {})
    for s in p["services"]:
        s.update((services or {}).get(s["name"], {}))
    return p


def all_checks(latency="1s"):
    names = ["gateway status 200", "gateway latency < 1s"]
    for n, _ in SERVICES:
        names += ["%s status 200" % n, "%s latency < %s" % (n, latency)]
    return names


def ready_attempts(res):
    ev = res.event("ready")
    return ev.get("attempts", 0) if ev else 0


def on_path(reqs, path):
    return [r for r in reqs if r["path"] == path]


def common_log_checks(t, res, want_exit, label):
    """Every log line carries the common fields; test_start and test_finish are there."""
    t.ok(res.logs, "%s: stderr has JSON log lines" % label, res.explain())
    missing = [(e.get("event"), f) for e in res.logs for f in LOG_FIELDS if f not in e]
    t.eq(missing, [], "%s: every log line has %s" % (label, ", ".join(LOG_FIELDS)))
    ids = {e.get("testid") for e in res.logs}
    t.eq(len(ids), 1, "%s: one testid across the log lines" % label)
    fin = res.events("test_finish")
    t.ok(len(fin) == 1 and fin[0].get("exit_code") == want_exit,
         "%s: one test_finish with exit_code %d" % (label, want_exit), res.explain())


# ---- cases ----

def case_healthy(t):
    d = h.tempdir()
    key = "it-key-0123456789"
    key_file = h.write_file(key + "\n", "apikey", d)
    with gateway() as fx:
        prof = profile(fx.url(0), fx.url(1), gw={"key_file": key_file})
        export = os.path.join(d, "summary.json")
        junit = os.path.join(d, "junit.xml")
        for stale in (export, junit):  # outputs of an earlier run, to be replaced
            h.write_file("stale", os.path.basename(stale), d)
        res = h.run_syncgate(["smoke", "-p", prof, "--summary-export", export, "--junit", junit],
                             timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 0, "healthy: exit 0") or t.diag(res.explain())
    # written beside the target and renamed into place: no temporary file is left,
    # and the mode is what a plain create would give under the same umask
    t.eq(sorted(os.listdir(d)), ["apikey", "junit.xml", "summary.json"],
         "healthy: the output directory holds the outputs and nothing else")
    mask = os.umask(0)
    os.umask(mask)
    t.eq([oct(os.stat(f).st_mode & 0o777) for f in (export, junit)], [oct(0o666 & ~mask)] * 2,
         "healthy: outputs get the usual mode for the umask")
    common_log_checks(t, res, 0, "healthy")
    t.ok(res.event("test_start"), "healthy: test_start logged")
    t.ok(all(e.get("environment") == "itest" for e in res.logs),
         "healthy: environment label comes from the profile")

    # through the gateway, with the consumer and key headers, never direct
    t.ok(reqs, "healthy: the gateway received requests")
    t.eq([r["path"] for r in reqs if r["listen"] != 0], [],
         "healthy: no request went to the services' direct URLs")
    for n, path in SERVICES:
        t.ok(on_path(reqs, path), "healthy: %s reached through the gateway (%s)" % (n, path))
    bad_consumer = [(r["path"], h.header(r, "X-Consumer-Username")) for r in reqs
                    if h.header(r, "X-Consumer-Username") != CONSUMER]
    t.eq(bad_consumer, [], "healthy: X-Consumer-Username: %s on every request" % CONSUMER)
    bad_key = [(r["path"], h.header(r, "apikey")) for r in reqs if h.header(r, "apikey") != key]
    t.eq(bad_key, [], "healthy: apikey header from key_file on every request")
    t.ok(key not in res.stdout + res.stderr, "healthy: the key is not printed anywhere")
    t.eq(sorted({r["method"] for r in reqs}), ["GET"], "healthy: only GET requests")

    # text summary
    for name in all_checks():
        t.eq(res.check_mark(name), True, "healthy: summary shows ✓ %s" % name)
    t.ok("threshold" in res.stdout.lower() and "rate==1.0" in res.stdout,
         "healthy: summary has a thresholds section with rate==1.0", res.stdout)

    # JSON export, cross-checked with the fixture's log
    try:
        with open(export) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        t.ok(False, "healthy: --summary-export is valid JSON", repr(e))
        return
    t.ok(True, "healthy: --summary-export is valid JSON")
    checks = s.get("root_group", {}).get("checks", {})
    t.eq(sorted(checks), sorted(all_checks()), "healthy: export lists every check")
    t.eq([c for c, v in checks.items() if v.get("fails") != 0 or v.get("name") != c], [],
         "healthy: every exported check has its name and 0 fails")
    m = s.get("metrics", {})
    smoke_reqs = len(reqs) - ready_attempts(res)
    t.eq(m.get("http_reqs", {}).get("count"), smoke_reqs,
         "healthy: http_reqs.count equals the requests the fixture saw (minus readiness polls)")
    for n, path in SERVICES:
        c = checks.get("%s status 200" % n, {})
        t.eq(c.get("passes"), len(on_path(reqs, path)),
             "healthy: '%s status 200' passes equal the requests to %s" % (n, path))
    gw_smoke = len(on_path(reqs, "/health")) - ready_attempts(res)
    t.eq(checks.get("gateway status 200", {}).get("passes"), gw_smoke,
         "healthy: 'gateway status 200' passes equal the /health smoke requests")
    total = sum(v.get("passes", 0) for v in checks.values())
    ch = m.get("checks", {})
    t.ok(ch.get("passes") == total and ch.get("fails") == 0 and ch.get("value") == 1,
         "healthy: metrics.checks passes/fails/value agree with the checks", repr(ch))
    t.eq(ch.get("thresholds"), {"rate==1.0": False}, "healthy: checks threshold not failed")
    dur = m.get("http_req_duration", {})
    t.ok(all(k in dur for k in ("avg", "min", "med", "max", "p(90)", "p(95)")),
         "healthy: http_req_duration has avg/min/med/max/p(90)/p(95)", repr(dur))
    t.ok(2.0 <= dur.get("min", 0) <= dur.get("max", 0) < 1000,
         "healthy: http_req_duration in ms (fixture delays 2ms)", repr(dur))
    iters = m.get("iterations", {}).get("count", 0)
    t.ok(iters >= 2, "healthy: 1s with 100ms think time ran several iterations (%s)" % iters)
    t.eq(smoke_reqs, iters * (len(SERVICES) + 1),
         "healthy: each iteration requested the gateway and every service once")

    # JUnit
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as e:
        t.ok(False, "healthy: --junit is valid XML", repr(e))
        return
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    t.ok(all(n in names for n in all_checks()), "healthy: junit has a testcase per check",
         repr(names))
    t.ok(len(cases) > len(all_checks()), "healthy: junit has a testcase for the threshold")
    t.eq(len(root.findall(".//failure")), 0, "healthy: junit has no failures")


def case_env_overrides(t):
    """GATEWAY_URL and KONG_CONSUMER_HEADER win over the profile; no key_file, no apikey."""
    with gateway() as fx:
        prof = profile("http://127.0.0.1:%d" % h.free_port(), fx.url(1))
        res = h.run_syncgate(["smoke", "-p", prof, "--set", "smoke.iterations=1"],
                             env={"GATEWAY_URL": fx.url(0), "KONG_CONSUMER_HEADER": "ci-gate"},
                             timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 0, "env: exit 0 with GATEWAY_URL pointing at the fixture") or \
        t.diag(res.explain())
    t.ok(reqs and all(h.header(r, "X-Consumer-Username") == "ci-gate" for r in reqs),
         "env: KONG_CONSUMER_HEADER sets X-Consumer-Username on every request",
         repr([h.header(r, "X-Consumer-Username") for r in reqs]))
    t.ok(all(h.header(r, "apikey") is None for r in reqs),
         "env: no apikey header without a key_file")
    t.eq(len(reqs) - ready_attempts(res), len(SERVICES) + 1,
         "env: --set smoke.iterations=1 gives exactly one request per target")


def case_long_key(t):
    """A Kong key of several KiB (a JWT, say) reaches the gateway whole, never cut."""
    key = "jwt." + "k" * 3000
    key_file = h.write_file(key + "\n", "apikey")
    with gateway() as fx:
        prof = profile(fx.url(0), fx.url(1), gw={"key_file": key_file})
        res = h.run_syncgate(["smoke", "-p", prof, "--set", "smoke.iterations=1"], timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 0, "long key: exit 0") or t.diag(res.explain())
    t.ok(reqs and all(h.header(r, "apikey") == key for r in reqs),
         "long key: every request carries all %d bytes of it" % len(key),
         repr(sorted({len(h.header(r, "apikey") or "") for r in reqs})))


def case_service_500(t):
    d = h.tempdir()
    junit = os.path.join(d, "junit.xml")
    export = os.path.join(d, "summary.json")
    with gateway(["0:GET:/api/inventory/health=status=500,body=boom"]) as fx:
        prof = profile(fx.url(0), fx.url(1))
        res = h.run_syncgate(["smoke", "-p", prof, "--junit", junit, "--summary-export", export],
                             timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 99, "500: exit 99") or t.diag(res.explain())
    t.eq(res.check_mark("inventory status 200"), False,
         "500: summary shows ✗ inventory status 200")
    t.eq(res.check_mark("product status 200"), True, "500: other services still ✓")
    fails = [e for e in res.events("check") if e.get("check") == "inventory status 200"]
    t.ok(fails and all(e.get("name") == "inventory" and e.get("status") == 500 and
                       e.get("passed") is False for e in fails),
         "500: check log event names inventory with status 500, passed false", res.stderr)
    t.eq([e.get("name") for e in res.events("check") if e.get("name") != "inventory"], [],
         "500: no failed-check events for healthy services")
    thr = [e for e in res.events("threshold") if e.get("metric") == "checks"]
    t.ok(thr and thr[-1].get("passed") is False and thr[-1].get("threshold") == "rate==1.0",
         "500: threshold event checks rate==1.0 passed false", res.stderr)
    t.eq(len(on_path(reqs, "/api/inventory/health")), len(on_path(reqs, "/api/products/health")),
         "500: a 500 is not retried")
    common_log_checks(t, res, 99, "500")
    try:
        root = ET.parse(junit).getroot()
        failed = [c.get("name") for c in root.findall(".//testcase")
                  if c.find("failure") is not None]
        t.ok("inventory status 200" in failed and "product status 200" not in failed,
             "500: junit marks the inventory status testcase failed", repr(failed))
        t.ok(any("rate==1.0" in (n or "") for n in failed),
             "500: junit marks the checks threshold failed", repr(failed))
    except (OSError, ET.ParseError) as e:
        t.ok(False, "500: --junit is valid XML", repr(e))
    try:
        with open(export) as f:
            s = json.load(f)
        inv = s["root_group"]["checks"]["inventory status 200"]
        t.ok(inv["fails"] >= 1 and inv["passes"] == 0,
             "500: export counts inventory status fails", repr(inv))
        t.eq(s["metrics"]["checks"].get("thresholds"), {"rate==1.0": True},
             "500: export marks rate==1.0 as failed (true)")
    except (OSError, ValueError, KeyError) as e:
        t.ok(False, "500: export has the inventory check and threshold", repr(e))


def case_no_thresholds(t):
    """A smoke phase with no threshold at all still fails on a failed check: an implicit
    checks: rate==1.0, marked implicit in every output."""
    for label, th in (("thresholds: null", None), ("thresholds: {}", {}),
                      ("thresholds: {checks: []}", {"checks": []})):
        d = h.tempdir()
        export, junit = os.path.join(d, "summary.json"), os.path.join(d, "junit.xml")
        with gateway(["0:GET:/api/inventory/health=status=500,body=boom"]) as fx:
            prof = profile(fx.url(0), fx.url(1), smoke={"thresholds": th, "duration": "300ms"})
            res = h.run_syncgate(["smoke", "-p", prof, "--junit", junit,
                                  "--summary-export", export], timeout=30)
        t.eq(res.rc, 99, "%s: a failed check fails the phase (exit 99)" % label) \
            or t.diag(res.explain())
        t.ok("checks rate==1.0 (implicit)" in res.stdout,
             "%s: the summary shows the implicit threshold" % label, res.stdout)
        thr = [e for e in res.events("threshold") if e.get("metric") == "checks"]
        t.ok(thr and thr[-1].get("passed") is False and thr[-1].get("implicit") is True,
             "%s: threshold event marked implicit" % label, res.stderr)
        try:
            with open(export) as f:
                s = json.load(f)
            root = ET.parse(junit).getroot()
        except (OSError, ValueError, ET.ParseError) as e:
            t.ok(False, "%s: outputs readable" % label, repr(e))
            continue
        t.eq(s.get("metrics", {}).get("checks", {}).get("thresholds"), {"rate==1.0": True},
             "%s: export has checks rate==1.0 failed" % label)
        t.eq(s.get("implicit_thresholds"),
             [{"scenario": "smoke", "metric": "checks", "threshold": "rate==1.0"}],
             "%s: export lists it as implicit" % label)
        names = [c.get("name") for c in root.findall(".//testcase")
                 if c.find("failure") is not None]
        t.ok("checks rate==1.0 (implicit)" in names, "%s: junit fails the implicit threshold"
             % label, repr(names))
    # healthy with no threshold: the implicit one passes
    with gateway() as fx:
        prof = profile(fx.url(0), fx.url(1), smoke={"thresholds": {}, "duration": "300ms"})
        res = h.run_syncgate(["smoke", "-p", prof], timeout=30)
    t.eq(res.rc, 0, "no thresholds, healthy: exit 0") or t.diag(res.explain())


def case_k6_parity(t):
    """What k6 users see in their dashboards and exports: data_sent/received tagged like k6
    (by scenario, not by request), error_code 1000+status on 4xx/5xx, the proto label, two
    points per series in a short smoke (irate needs two), the expected_response sub-metric and
    checks' ids in the export, vus.value as the last active count."""
    d = h.tempdir()
    export = os.path.join(d, "summary.json")
    with gateway(["0:GET:/api/orders/health=status=503"]) as fx, rwlib.Fixture() as rw:
        prof = profile(fx.url(0), fx.url(1), smoke={"duration": "4s", "think_time": "500ms",
                                                    "retries": 0})
        res = h.run_syncgate(["smoke", "-p", prof, "--summary-export", export],
                             env={"K6_PROMETHEUS_RW_SERVER_URL": rw.url}, timeout=40)
        recs = rwlib.accepted(rw.records())
    t.eq(res.rc, 99, "parity: the 503 fails the smoke") or t.diag(res.explain())
    series = {}
    for _, s in rwlib.all_series(recs):
        series.setdefault(rwlib.key(s), []).extend(
            x for x in s["samples"] if x["bits"] != rwlib.STALE_BITS)
    lab = {k: dict(k) for k in series}
    data = [k for k in series if lab[k]["__name__"] in ("k6_data_sent_total",
                                                        "k6_data_received_total")]
    t.ok(sorted(lab[k]["__name__"] for k in data) == ["k6_data_received_total",
                                                       "k6_data_sent_total"],
         "parity: one data_sent and one data_received series for the run", repr(data))
    t.ok(data and all(lab[k].get("scenario") == "smoke" and not
                      {"name", "method", "status", "expected_response"} & set(lab[k])
                      for k in data),
         "parity: data_sent/received carry the scenario, not the request's tags", repr(data))
    reqs = [lab[k] for k in series if lab[k]["__name__"] == "k6_http_reqs_total"]
    bad = [x for x in reqs if x.get("status") == "503"]
    good = [x for x in reqs if x.get("status") == "200"]
    t.ok(bad and all(x.get("error_code") == "1503" for x in bad),
         "parity: a 503 carries error_code 1503, as k6", repr(bad))
    t.ok(good and all("error_code" not in x for x in good), "parity: a 200 carries no error_code")
    t.ok(reqs and all(x.get("proto") == "HTTP/1.1" for x in reqs),
         "parity: HTTP series carry proto=HTTP/1.1", repr(reqs[:2]))
    # the k6 series (the dashboards' rate and irate); syncgate's run-result series are one
    # value at the end by design
    thin = [dict(k)["__name__"] for k, v in series.items()
            if len(v) < 2 and dict(k)["__name__"].startswith("k6_")]
    t.eq(thin, [], "parity: a 4 s smoke (push interval 5 s) sends every series at least twice (irate needs two)")
    try:
        with open(export) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        t.ok(False, "parity: export readable", repr(e))
        return
    m = s.get("metrics", {})
    sub = m.get("http_req_duration{expected_response:true}", {})
    t.ok(all(k in sub for k in ("avg", "min", "med", "max", "p(90)", "p(95)")),
         "parity: export has http_req_duration{expected_response:true}", repr(sub))
    t.ok(sub.get("max", 1e9) <= m.get("http_req_duration", {}).get("max", -1),
         "parity: the sub-metric is a part of http_req_duration")
    checks = s.get("root_group", {}).get("checks", {})
    wrong = [(n, c.get("id")) for n, c in checks.items()
             if c.get("id") != hashlib.md5(("::" + n).encode()).hexdigest()]
    t.ok(checks and not wrong, "parity: every check has k6's id (md5 of its path)", repr(wrong))
    t.eq(m.get("vus", {}).get("value"), 1, "parity: vus.value is the last active count (1)")
    t.ok("http_req_duration{expected_response:true}" in res.stdout or
         "{ expected_response:true }" in res.stdout,
         "parity: the text summary shows the expected_response sub-metric", res.stdout)


def case_slow(t):
    with gateway(["0:GET:/api/products/health=delay=400ms,body=slow"]) as fx:
        prof = profile(fx.url(0), fx.url(1), services={"product": {"max_latency": "200ms"}},
                       smoke={"iterations": 2})
        res = h.run_syncgate(["smoke", "-p", prof], timeout=30)
    t.eq(res.rc, 99, "slow: exit 99") or t.diag(res.explain())
    t.eq(res.check_mark("product latency < 200ms"), False,
         "slow: summary shows ✗ product latency < 200ms")
    t.eq(res.check_mark("product status 200"), True, "slow: product status still ✓")
    t.eq(res.check_mark("inventory latency < 1s"), True, "slow: inventory latency ✓")
    ev = [e for e in res.events("check") if e.get("check") == "product latency < 200ms"]
    t.ok(ev and ev[0].get("passed") is False and ev[0].get("status") == 200,
         "slow: failed check event for product latency (status 200)", res.stderr)
    common_log_checks(t, res, 99, "slow")


def case_gateway_down(t):
    port = h.free_port()
    prof = profile("http://127.0.0.1:%d" % port, "http://127.0.0.1:%d" % port,
                   gw={"ready": {"path": "/health", "timeout": "1s"}})
    res = h.run_syncgate(["smoke", "-p", prof], timeout=20)
    t.eq(res.rc, 112, "gateway down: exit 112") or t.diag(res.explain())
    t.ok(0.9 <= res.elapsed < 6, "gateway down: gave up after the 1s ready timeout (%.2fs)"
         % res.elapsed)
    t.ok(res.event("ready_timeout"), "gateway down: ready_timeout logged", res.stderr)
    common_log_checks(t, res, 112, "gateway down")


def case_ready_timeout_short(t):
    """A readiness timeout under a millisecond against a gateway that accepts and never
    answers: every wait is bounded by its timeout (a request timeout that rounds to 0 ms
    would mean none at all to libcurl)."""
    for timeout in ("500us", "1ms", "1500us", "300ms"):
        with gateway(["0:GET:/health=fault=hang"]) as fx:
            prof = profile(fx.url(0), fx.url(1),
                           gw={"ready": {"path": "/health", "timeout": timeout}})
            res = h.run_syncgate(["smoke", "-p", prof], timeout=15)
        t.eq(res.rc, 112, "ready timeout %s, hanging gateway: exit 112" % timeout) \
            or t.diag(res.explain())
        # the bound leaves room for a slow start (valgrind); the bug was a wait without end
        t.ok(res.elapsed < 6, "ready timeout %s: gave up in time (%.2fs)" % (timeout, res.elapsed))


def case_gateway_late(t):
    """Readiness polls with backoff until /health answers 200, then smoke runs."""
    # counted, not timed: the same polls however slowly syncgate starts (valgrind, sanitizers)
    with gateway(["0:GET:/health=status=503,times=3"]) as fx:
        prof = profile(fx.url(0), fx.url(1), smoke={"iterations": 1})
        res = h.run_syncgate(["smoke", "-p", prof], timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 0, "late gateway: exit 0 once /health turns 200") or t.diag(res.explain())
    polls = ready_attempts(res)
    t.ok(polls >= 2, "late gateway: ready needed several attempts (%s)" % polls, res.stderr)
    t.ok(polls <= 12, "late gateway: polling backs off (%s attempts in ~0.7s)" % polls)
    t.eq(len(reqs) - polls, len(SERVICES) + 1, "late gateway: one smoke pass after ready")


def case_429(t):
    route = "0:GET:/api/suppliers/health=kong429=7,ratelimit=5/0/7"
    with gateway([route]) as fx:
        prof = profile(fx.url(0), fx.url(1), smoke={"iterations": 1})
        res = h.run_syncgate(["smoke", "-p", prof], timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 99, "429: exit 99") or t.diag(res.explain())
    rl = [e for e in res.events("rate_limited") if e.get("name") == "supplier"]
    t.ok(rl and rl[0].get("status") == 429, "429: rate_limited event for supplier, status 429",
         res.stderr)
    hdrs = json.dumps(rl[0]) if rl else ""
    for want in ("Retry-After: 7", "RateLimit-Limit: 5", "RateLimit-Remaining: 0",
                 "RateLimit-Reset: 7"):
        t.contains(hdrs, want, "429: rate_limited event carries %s" % want)
    t.eq(res.check_mark("supplier status 200"), False, "429: summary shows ✗ supplier status 200")
    t.eq(len(on_path(reqs, "/api/suppliers/health")), 1, "429: a 429 is not retried")


def smoke_once(route, retries, export=None):
    """One smoke iteration through a gateway with one extra route; returns (result, requests)."""
    args = ["--summary-export", export] if export else []
    with gateway([route]) as fx:
        prof = profile(fx.url(0), fx.url(1), smoke={"iterations": 1, "retries": retries})
        res = h.run_syncgate(["smoke", "-p", prof] + args, timeout=30)
        reqs = fx.requests()
    return res, reqs


def case_transient_503(t):
    route = "0:GET:/api/orders/health=status=503,times=2"
    export = os.path.join(h.tempdir(), "summary.json")
    res, reqs = smoke_once(route, 2, export)
    t.eq(res.rc, 0, "503 twice, retries 2: exit 0") or t.diag(res.explain())
    t.eq(len(on_path(reqs, "/api/orders/health")), 3, "503 twice: order requested 3 times")
    t.eq(len([e for e in res.events("retry") if e.get("name") == "order"]), 2,
         "503 twice: two retry events for order")
    try:
        with open(export) as f:
            s = json.load(f)
        t.eq(s["metrics"]["http_reqs"]["count"], len(SERVICES) + 1 + 2,
             "503 twice: http_reqs counts every attempt (6 targets + 2 retries)")
        t.eq(s["metrics"]["http_reqs"]["count"], len(reqs) - ready_attempts(res),
             "503 twice: http_reqs equals what the fixture saw")
        t.eq(s["root_group"]["checks"]["order status 200"]["passes"], 1,
             "503 twice: the order check passed on the third attempt")
    except (OSError, ValueError, KeyError) as e:
        t.ok(False, "503 twice: export readable", repr(e))

    # one retry is not enough for two 503s
    res, reqs = smoke_once(route, 1)
    t.eq(res.rc, 99, "503 twice, retries 1: exit 99") or t.diag(res.explain())
    t.eq(len(on_path(reqs, "/api/orders/health")), 2, "503 twice, retries 1: 2 attempts")
    ev = [e for e in res.events("check") if e.get("check") == "order status 200"]
    t.ok(ev and ev[0].get("status") == 503, "503 twice, retries 1: failed check reports 503",
         res.stderr)


def seconds(d):
    """A duration as the profile writes it ("1s", "100ms", "1m30s") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|s|m|h)", d))


def smoke_bound(p):
    """How long `syncgate smoke` may take, by the formula of docs/operations.md (no remote
    write, baselines, auth or webhook, so none of their terms; no pod start-up)."""
    sm = p["smoke"]
    retries, timeout = sm["retries"], seconds(sm["request_timeout"])
    ready = p["gateway"]["ready"]
    requests = (1 if ready.get("path") else 0) + len([s for s in p["services"] if s.get("smoke_path")])
    requests += sum(len(j["steps"]) for j in p.get("journeys", []) if j.get("smoke", True))
    one_round = requests * ((retries + 1) * timeout + retries * 1.0)
    if sm.get("iterations"):
        phase = sm["iterations"] * (one_round + seconds(sm["think_time"]))
    else:
        phase = seconds(sm["duration"]) + one_round
    return (seconds(ready["timeout"]) if ready.get("path") else 0) + phase


def case_retry_bound(t):
    """Many retries against a service that always answers 503: the run ends within the
    documented activeDeadlineSeconds formula, and every retry still waited."""
    retries = 10
    with gateway(["0:GET:/api/orders/health=status=503"]) as fx:
        p = profile_dict(fx.url(0), fx.url(1), gw={"ready": {"path": "/health", "timeout": "1s"}},
                         smoke={"retries": retries, "request_timeout": "100ms"},
                         services={n: {"smoke_path": None} for n, _ in SERVICES if n != "order"})
        path = h.write_profile(p)
        bound = smoke_bound(p)
        res = h.run_syncgate(["smoke", "-p", path], timeout=bound + 5)
        reqs = fx.requests()
    # waits 0.2, 0.4, 0.8 s, then 1 s each: the backoff is capped, not skipped
    waits = sum(min(0.2 * 2 ** i, 1.0) for i in range(retries))
    t.ok(not res.timed_out and res.elapsed <= bound,
         "%d retries, always 503: smoke ends within the documented bound (%.1f s <= %.1f s)"
         % (retries, res.elapsed, bound), res.explain())
    t.eq(res.rc, 99, "%d retries, always 503: exit 99" % retries) or t.diag(res.explain())
    t.eq(len(on_path(reqs, "/api/orders/health")), retries + 1,
         "%d retries, always 503: %d attempts" % (retries, retries + 1))
    t.ok(res.elapsed >= waits, "%d retries: the waits add up to at least %.1f s (took %.1f s)"
         % (retries, waits, res.elapsed))


def case_reset(t):
    """An RST instead of a response (fresh connection) is an error, not a connect error:
    no retry, the check fails with status 0 and an error kind. (A reset on a reused
    keep-alive connection is retried inside libcurl, like Go's transport does for k6.)"""
    # 1st /health request is the readiness poll, 2nd the smoke's first, on a new connection
    route = "0:GET:/health=fault=reset,after=1,times=1"
    export = os.path.join(h.tempdir(), "summary.json")
    res, reqs = smoke_once(route, 2, export)
    t.eq(res.rc, 99, "reset: exit 99") or t.diag(res.explain())
    t.eq(len(on_path(reqs, "/health")), 2, "reset: readiness poll + one smoke attempt, no retry")
    ev = [e for e in res.events("check") if e.get("check") == "gateway status 200"]
    t.ok(ev and ev[0].get("status") == 0 and ev[0].get("error"),
         "reset: failed gateway check with status 0 and an error kind", res.stderr)
    t.eq(res.check_mark("product status 200"), True, "reset: later targets still ✓")
    try:
        with open(export) as f:
            s = json.load(f)
        t.eq(s["metrics"]["http_reqs"]["count"], len(reqs) - ready_attempts(res),
             "reset: the failed attempt is counted in http_reqs")
    except (OSError, ValueError, KeyError) as e:
        t.ok(False, "reset: export readable", repr(e))


def case_sigterm(t):
    slow = "0:GET:/api/inventory/health=delay=200ms,body=ok"
    with gateway([slow]) as fx:
        prof = profile(fx.url(0), fx.url(1), smoke={"duration": "60s", "think_time": "100ms"})
        run = h.spawn_syncgate(["smoke", "-p", prof])
        started = h.wait_for(lambda: len(fx.requests()) >= 8, timeout=10)
        t.ok(started, "sigterm: smoke was running before the signal")
        t0 = time.monotonic()
        run.signal(signal.SIGTERM)
        res = run.finish(timeout=15)
    t.eq(res.rc, 105, "sigterm: exit 105") or t.diag(res.explain())
    t.ok(not res.timed_out and time.monotonic() - t0 < 5,
         "sigterm: stopped within 5s of the signal")
    t.ok(res.check_mark("product status 200") is True,
         "sigterm: summary still printed with the checks", res.stdout)
    common_log_checks(t, res, 105, "sigterm")


def case_bad_env(t):
    with gateway() as fx:
        prof = profile(fx.url(0), fx.url(1))
        res = h.run_syncgate(["smoke", "-p", prof], env={"GATEWAY_URL": "not a url"},
                             timeout=20)
        t.eq(res.rc, 104, "bad GATEWAY_URL: exit 104") or t.diag(res.explain())
        t.contains(res.stdout + res.stderr, "GATEWAY_URL",
                   "bad GATEWAY_URL: the message names the variable")
        res = h.run_syncgate(["smoke", "-p", prof], env={"PRODUCT_SERVICE_URL": "ftp://x/"},
                             timeout=20)
        t.eq(res.rc, 104, "bad PRODUCT_SERVICE_URL: exit 104") or t.diag(res.explain())
        res = h.run_syncgate(["smoke", "-p", prof, "--set", "smoke.duration=3x"], timeout=20)
        t.eq(res.rc, 104, "bad --set smoke.duration: exit 104") or t.diag(res.explain())
        missing = os.path.join(h.tempdir(), "missing.yaml")
        res = h.run_syncgate(["smoke", "-p", missing], env={"GATEWAY_URL": fx.url(0)},
                             timeout=20)
        t.eq(res.rc, 104, "unreadable profile: exit 104") or t.diag(res.explain())
        t.contains(res.stderr, missing, "unreadable profile: the message names the file")
        time.sleep(0.1)
        t.eq(fx.requests(), [], "bad config: the fixture received nothing")


def main():
    for var in ("SYNCGATE", "FIXTURE"):
        if not os.environ.get(var) or not os.access(os.environ[var], os.X_OK):
            print("Bail out! %s is not set to an executable" % var)
            sys.exit(1)
    tap = h.Tap()
    tap.run(case_healthy, case_env_overrides, case_long_key, case_service_500,
            case_no_thresholds, case_k6_parity, case_slow, case_gateway_down,
            case_ready_timeout_short, case_gateway_late, case_429, case_transient_503,
            case_retry_bound, case_reset,
            case_sigterm, case_bad_env)


if __name__ == "__main__":
    main()
