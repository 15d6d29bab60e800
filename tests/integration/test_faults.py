#!/usr/bin/env python3
"""Faults: syncgate against targets that misbehave in every way we know of.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, and
RSS_LIMIT_KIB (default 65536; 0 skips the memory bound, for sanitizer builds). Prints TAP.

For each fault a short `syncgate load` (and `syncgate smoke` where the fault
means something there) must: run to the end of its schedule without
crashing, count every failure under the right kind (the summary export's and
test_finish's "errors" object: transport failures by kind, unexpected
statuses as status_<code>), let the thresholds decide the exit code, and keep
its peak RSS (VmHWM sampled from /proc, and ru_maxrss when it is reaped)
under 64 MiB, the pods' memory limit.

Faults come from the fixture server (tests/fixture/fixture.c), plus three it
cannot play: a body without Content-Length that never ends, a name that
does not resolve (nosuch.invalid, RFC 2606), and HTTPS with a self-signed
certificate nobody trusts (a Python ssl server; skipped without openssl).
"""
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

RSS_LIMIT_KIB = int(os.environ.get("RSS_LIMIT_KIB", 64 * 1024))
SCHEDULE_S = 2.0
KINDS = ("dns", "refused", "reset", "connect", "timeout", "tls", "protocol")


# ---- helpers ----

def load_profile(url, stages=None, thresholds=None, think="10ms", timeout="300ms", extra=None):
    p = {
        "environment": "itest",
        "gateway": {"url": "http://127.0.0.1:9", "ready": {"path": None}},
        "services": [{"name": "svc", "url": url, "expect_status": 200}],
        "load": {
            "stages": stages or [{"duration": "%gs" % SCHEDULE_S, "target": 4}],
            "think_time": think,
            "request_timeout": timeout,
            "graceful_ramp_down": "300ms",
            "thresholds": thresholds or {"http_req_failed": ["rate<0.01"]},
        },
    }
    p.update(extra or {})
    return h.write_profile(p)


def smoke_profile(gateway_url, retries=1, timeout="300ms"):
    return h.write_profile({
        "environment": "itest",
        "gateway": {"url": gateway_url, "ready": {"path": None}},
        "services": [{"name": "product", "smoke_path": "/api/products/health",
                      "expect_status": 200, "max_latency": "1s"}],
        "smoke": {"duration": "600ms", "think_time": "200ms", "retries": retries,
                  "request_timeout": timeout, "thresholds": {"checks": ["rate==1.0"]}},
    })


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Run:
    """syncgate to completion with its peak RSS sampled; .res, .summary, .hwm, .errors."""

    def __init__(self, args, env=None, timeout=30.0):
        d = h.tempdir()
        self.export = os.path.join(d, "summary.json")
        sp = h.spawn_syncgate(list(args) + ["--summary-export", self.export,
                                            "--log-format", "json"], env=env)
        self.hwm = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.hwm = max(self.hwm, vm_hwm_kib(sp.proc.pid))
            # reaped here, its peak RSS comes from the kernel: a run shorter than one
            # sample of /proc (a busy machine) still has one
            pid, status, ru = os.wait4(sp.proc.pid, os.WNOHANG)
            if pid:
                sp.proc.returncode = os.waitstatus_to_exitcode(status)
                self.hwm = max(self.hwm, ru.ru_maxrss)
                break
            time.sleep(0.05)
        self.res = sp.finish(timeout=1)
        self.summary = {}
        try:
            with open(self.export) as f:
                self.summary = json.load(f)
        except (OSError, ValueError):
            pass
        self.errors = self.summary.get("errors")

    def metric(self, name):
        return self.summary.get("metrics", {}).get(name, {})


def common(t, run, label, want_rc, schedule_s=None):
    """No crash, the exit code, a summary, bounded memory, test_finish agreeing with the export."""
    r = run.res
    t.ok(not r.timed_out and r.rc is not None and r.rc >= 0,
         "%s: exits by itself (no crash, no hang)" % label, r.explain())
    t.eq(r.rc, want_rc, "%s: exit code %d (the thresholds' verdict)" % (label, want_rc)) \
        or t.diag(r.explain())
    t.ok(run.summary.get("metrics"), "%s: summary export written" % label)
    t.ok("result:" in r.stdout, "%s: text summary printed" % label)
    if RSS_LIMIT_KIB:
        t.ok(0 < run.hwm < RSS_LIMIT_KIB, "%s: peak RSS %d KiB < %d KiB"
             % (label, run.hwm, RSS_LIMIT_KIB))
    else:
        t.skip("%s: peak RSS bound" % label, "RSS_LIMIT_KIB=0 (sanitizer build)")
    fin = r.event("test_finish")
    t.ok(fin is not None and fin.get("errors") == run.errors,
         "%s: test_finish errors match the summary export" % label,
         "test_finish: %r" % (fin,), "export: %r" % (run.errors,))
    if schedule_s is not None:
        dur = (fin or {}).get("duration_ms", 0) / 1000.0
        t.ok(schedule_s * 0.95 <= dur < schedule_s + 5,
             "%s: ran to the end of the %gs schedule (took %.2fs)" % (label, schedule_s, dur))


def only_kind(t, run, kind, label):
    """Every failure is of one kind; failures == requests (nothing succeeded)."""
    errs = run.errors or {}
    reqs = run.metric("http_reqs").get("count", 0)
    failed = run.metric("http_req_failed").get("passes", -1)
    t.ok(list(errs) == [kind] and errs[kind] > 0,
         "%s: failures counted under %r" % (label, kind), "errors: %r" % (errs,))
    t.ok(reqs > 0 and failed == reqs == errs.get(kind),
         "%s: all %d requests failed and all are counted" % (label, reqs),
         "http_reqs %r, http_req_failed %r, errors %r" % (reqs, failed, errs))
    th = run.metric("http_req_failed").get("thresholds", {})
    t.eq(th.get("rate<0.01"), True, "%s: http_req_failed rate<0.01 marked failed" % label)


def fixture_fault(t, spec, kind, label, timeout="300ms", log=False):
    with h.Fixture(["*:*:*=" + spec], log=log) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/health"), timeout=timeout)])
    common(t, run, label, 99, SCHEDULE_S)
    only_kind(t, run, kind, label)
    return run


def smoke_fault(t, gateway_url, kind, label, retries=1, env=None, timeout="300ms"):
    run = Run(["smoke", "-p", smoke_profile(gateway_url, retries=retries, timeout=timeout)],
              env=env)
    common(t, run, label, 99)
    errs = run.errors or {}
    t.ok(list(errs) == [kind] and errs[kind] >= 1, "%s: failures counted under %r" % (label, kind),
         "errors: %r" % (errs,))
    ev = [e for e in run.res.events("check") if e.get("passed") is False]
    t.ok(ev and all(e.get("error") == kind for e in ev),
         "%s: failed check events name the error %r" % (label, kind),
         "check events: %r" % (ev,))
    return run


# ---- load: fixture faults ----

def case_reset(t):
    fixture_fault(t, "fault=reset", "reset", "reset before the response")
    with h.Fixture(["*:*:*=fault=reset"], log=False) as fx:
        smoke_fault(t, fx.url(0), "reset", "smoke: reset")


def case_reset_mid(t):
    fixture_fault(t, "fault=reset-mid,size=256k", "reset", "reset mid-body")


def case_slow(t):
    run = fixture_fault(t, "delay=2s", "timeout", "response slower than request_timeout")
    # a request with no response records no duration: p(95) cannot pass on it
    t.ok("http_req_duration" not in run.summary.get("metrics", {}),
         "slow: timed-out requests record no http_req_duration")
    with h.Fixture(["*:*:*=delay=2s"], log=False) as fx:
        smoke_fault(t, fx.url(0), "timeout", "smoke: slower than request_timeout")


def case_hang(t):
    fixture_fault(t, "fault=hang", "timeout", "server that never answers")


def case_bad_status(t):
    fixture_fault(t, "fault=bad-status", "protocol", "malformed status line")


def case_bad_header(t):
    fixture_fault(t, "fault=bad-header", "protocol", "malformed header line")


def case_close_after_headers(t):
    fixture_fault(t, "fault=close-after-headers,size=4k", "protocol", "close after headers")


def case_close(t):
    fixture_fault(t, "fault=close", "protocol", "close without a response")


# Responses cut short or malformed, each a failed request of kind protocol in load and in
# smoke (which retries only connect errors and 502/503/504: a 503 status line cut short is
# no 503, so it is not retried either). libcurl itself returns CURLE_OK for the first two
# (a status line, or some headers, and then the end of the connection): syncgate must see
# that the head never ended.
TRUNCATED = [
    ("fault=close-after-status", "closed after the status line"),
    ("fault=close-mid-headers", "closed in the middle of the headers"),
    ("fault=close-after-status,status=503", "a 503 status line, then closed"),
    ("fault=short-body,size=4k", "closed before the promised body (Content-Length)"),
    ("fault=chunked-cut,body=hello", "chunked body cut before its last chunk"),
    (r"raw=HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", "garbage in the status code"),
    (r"raw=SMTP ready\r\n\r\n", "no HTTP status line at all"),
    (r"raw=HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "garbage chunk size"),
]


def case_truncated(t):
    for spec, label in TRUNCATED:
        fixture_fault(t, spec, "protocol", "load: " + label)
        with h.Fixture(["*:*:*=" + spec], log=False) as fx:
            run = smoke_fault(t, fx.url(0), "protocol", "smoke: " + label, retries=2)
        t.eq(run.res.events("retry"), [], "smoke: %s: not retried" % label)


def case_huge_body(t):
    # Content-Length far over HTTP_MAX_BODY (64 MiB): refused at the headers
    fixture_fault(t, "size=1G", "protocol", "1 GiB body (over the cap)", timeout="5s")
    # exactly at the cap: read to the end and discarded, 4 VUs at once, never buffered
    with h.Fixture(["*:*:*=size=64M"], log=False) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/big"), timeout="10s",
                                              thresholds={"http_req_failed": ["rate<0.01"]})])
    common(t, run, "64 MiB bodies", 0, SCHEDULE_S)
    got = run.metric("data_received").get("count", 0)
    t.ok(got > 2 * 64 * 1024 * 1024 and run.errors == {},
         "64 MiB bodies: %.0f MiB received, no failures, peak RSS %d KiB"
         % (got / 1048576.0, run.hwm), "errors: %r" % (run.errors,))


class _Endless(threading.Thread):
    """HTTP/1.1 200 without Content-Length, then filler until the client hangs up."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.start()

    def serve(self, c):
        chunk = b"x" * 65536
        try:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            while not self.stop:
                c.sendall(chunk)
        except OSError:
            pass
        finally:
            c.close()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def close(self):
        self.stop = True
        self.sock.close()


def case_endless_body(t):
    srv = _Endless()
    try:
        run = Run(["load", "-p", load_profile("http://127.0.0.1:%d/health" % srv.port,
                                              stages=[{"duration": "2s", "target": 2}],
                                              timeout="20s")])
    finally:
        srv.close()
    common(t, run, "endless body without length", 99, SCHEDULE_S)
    only_kind(t, run, "protocol", "endless body without length")


# ---- load: statuses ----

def case_429(t):
    with h.Fixture(["*:*:*=kong429=1"]) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/health"), think="50ms")])
        seen = len(fx.requests())
    common(t, run, "429 with Retry-After", 99, SCHEDULE_S)
    only_kind(t, run, "status_429", "429 with Retry-After")
    # load never retries, Retry-After or not: every request sent is one recorded (but for
    # those in flight when the schedule ended, dropped unrecorded: at most one per VU)
    reqs = run.metric("http_reqs").get("count", 0)
    t.ok(0 <= seen - reqs <= 4, "429: no retries (%d sent, %d recorded)" % (seen, reqs))
    with h.Fixture(["*:*:*=kong429=1"]) as fx:
        srun = Run(["smoke", "-p", smoke_profile(fx.url(0))])
        seen = len(fx.requests())
    common(t, srun, "smoke: 429", 99)
    t.ok(seen >= 1 and srun.errors == {"status_429": seen},
         "smoke: every 429 counted (%d sent)" % seen, "errors: %r" % (srun.errors,))
    t.eq(srun.res.events("retry"), [], "smoke: a 429 is not retried")
    rl = srun.res.event("rate_limited")
    t.ok(rl and rl.get("status") == 429 and "Retry-After: 1" in rl.get("headers", ""),
         "smoke: rate_limited event with Retry-After", repr(rl))


def case_5xx_burst(t):
    routes = ["*:*:*=status=503,times=20", "*:*:*=status=200"]
    with h.Fixture(routes) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/health"), think="50ms",
                                              stages=[{"duration": "2s", "target": 2}])])
        seen = len(fx.requests())
    common(t, run, "5xx burst", 99, SCHEDULE_S)
    t.eq(run.errors, {"status_503": 20}, "5xx burst: exactly the 20 503s are failures")
    reqs = run.metric("http_reqs").get("count", 0)
    t.ok(reqs > 20 and 0 <= seen - reqs <= 2,
         "5xx burst: kept going after it, no retries (%d recorded, %d sent)" % (reqs, seen))
    # the same burst under a threshold it stays within: the verdict is a pass
    with h.Fixture(routes) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/health"), think="50ms",
                                              stages=[{"duration": "2s", "target": 2}],
                                              thresholds={"http_req_failed": ["rate<0.6"]})])
    common(t, run, "5xx burst, lenient threshold", 0, SCHEDULE_S)
    t.eq(run.errors, {"status_503": 20}, "5xx burst, lenient threshold: still counted")
    # smoke retries 503s: a burst shorter than the retries passes, every attempt counted
    with h.Fixture(["*:*:*=status=503,times=2", "*:*:*=status=200"]) as fx:
        srun = Run(["smoke", "-p", smoke_profile(fx.url(0), retries=2)])
    common(t, srun, "smoke: 503 burst within retries", 0)
    t.eq(srun.errors, {"status_503": 2}, "smoke: both 503 attempts counted")
    t.eq(len(srun.res.events("retry")), 2, "smoke: two retry events")


def sums_up(t, run, label):
    """The failures by kind add up to http_req_failed's count of failed requests."""
    errs = run.errors or {}
    failed = run.metric("http_req_failed").get("passes", -1)
    t.ok(failed > 0 and sum(errs.values()) == failed,
         "%s: failures by kind add up to http_req_failed (%d)" % (label, failed),
         "errors: %r" % (errs,))
    t.ok(len(errs) <= 32, "%s: at most 32 kinds reported (%d)" % (label, len(errs)))


def case_many_statuses(t):
    # a target answering 200, 201, ... 999 in turn: status codes are the server's to pick,
    # so the series they make must stay bounded and the report must still come out whole
    spec = "*:*:*=statuses=200-999"
    with h.Fixture([spec], log=False) as fx:
        run = Run(["load", "-p", load_profile(fx.url(0, "/health"), think="0s",
                                              stages=[{"duration": "2s", "target": 8}])])
    common(t, run, "load: statuses 200..999", 99, SCHEDULE_S)
    sums_up(t, run, "load: statuses 200..999")
    t.ok(run.metric("http_reqs").get("count", 0) > 450,
         "load: statuses 200..999: well past 600 (%r requests)"
         % run.metric("http_reqs").get("count"))
    errs = run.errors or {}
    t.ok("status_invalid" in errs and "status_4xx" in errs and "status_201" in errs,
         "load: statuses 200..999: the first ones by number, then by class, 600+ as invalid",
         "errors: %r" % (errs,))
    t.eq(run.res.events("series_limit"), [], "load: statuses 200..999: no series dropped")
    with h.Fixture([spec], log=False) as fx:
        p = smoke_profile(fx.url(0), retries=0)
        run = Run(["smoke", "-p", p, "--set", "smoke.iterations=900", "--set",
                   "smoke.think_time=0s"], timeout=60)
    common(t, run, "smoke: statuses 200..999", 99)
    sums_up(t, run, "smoke: statuses 200..999")
    t.eq(run.metric("http_reqs").get("count"), 900, "smoke: statuses 200..999: 900 requests")


# ---- load: name resolution and TLS ----

def case_dns(t):
    url = "http://nosuch.invalid:8080/health"
    # a request timeout well above a resolver's answer time, or a slow lookup counts as one
    run = Run(["load", "-p", load_profile(url, timeout="3s")])
    common(t, run, "unresolvable name", 99, SCHEDULE_S)
    only_kind(t, run, "dns", "unresolvable name")
    smoke_fault(t, "http://nosuch.invalid:8080", "dns", "smoke: unresolvable name", timeout="3s")


def _self_signed(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes are the point of the test


def case_tls_untrusted(t):
    if not shutil.which("openssl"):
        t.skip("untrusted HTTPS", "openssl not installed")
        return
    d = h.tempdir()
    cert, key = _self_signed(d)
    srv = _TLSServer(("127.0.0.1", 0), _Quiet)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "https://127.0.0.1:%d" % srv.server_address[1]
    try:
        run = Run(["load", "-p", load_profile(url + "/health", timeout="2s")])
        common(t, run, "untrusted certificate", 99, SCHEDULE_S)
        only_kind(t, run, "tls", "untrusted certificate")
        smoke_fault(t, url, "tls", "smoke: untrusted certificate")
        # control: the same server trusted through SSL_CERT_FILE passes, so the
        # failures above were the certificate's and verification is on by default
        run = Run(["load", "-p", load_profile(url + "/health", timeout="2s")],
                  env={"SSL_CERT_FILE": cert})
        common(t, run, "trusted certificate (SSL_CERT_FILE)", 0, SCHEDULE_S)
        t.eq(run.errors, {}, "trusted certificate: no failures")
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    h.Tap().run(case_reset, case_reset_mid, case_slow, case_hang, case_bad_status,
                case_bad_header, case_close_after_headers, case_close, case_truncated,
                case_huge_body,
                case_endless_body, case_429, case_5xx_burst, case_many_statuses, case_dns, case_tls_untrusted)
