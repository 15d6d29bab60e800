#!/usr/bin/env python3
"""Secrets never leave syncgate except in the requests that need them.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, RWFIXTURE. Prints TAP.

Every secret below carries the marker S3CR3T: the Kong key (gateway.key_file),
K6_PROMETHEUS_RW_BEARER_TOKEN, K6_PROMETHEUS_RW_PASSWORD (with USERNAME),
K6_PROMETHEUS_RW_HEADERS_Authorization, and the password of URLs written as
user:password@host (gateway, service and remote-write URLs). Runs of
validate, smoke, load and run (passing, failing, not ready, interrupted,
config errors, both log formats) write stdout, stderr, the summary export and
JUnit; the marker (and the base64 of user:password) must appear in none of
them. Each run also proves its secrets were in effect: the fixture and the
remote-write receiver saw them. Query values of services[].smoke_path and
gateway.ready.path carry the marker too: they are hidden like those of URLs.

Servers may quote our own requests back: a gateway echoing the Kong key (and
its base64, and the Basic credentials of the gateway URL) in RateLimit-* and
other headers, and a receiver whose error body quotes the request's
Authorization header (bearer, basic, a configured header). What reaches a log
line from a response is masked (<redacted>) and cut to its bound, in both log
formats. Last, TLS verification: on by default, and turning it off
(K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY) logs a warning.
"""
import base64
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "remote_write"))
import harness as h  # noqa: E402
import rwlib  # noqa: E402

MARK = "S3CR3T"
KONG_KEY = "kong-key-S3CR3T-0a1b2c3d"
BEARER = "bearer-S3CR3T-4e5f6a7b"
RW_USER, RW_PASS = "rw-writer", "basic-pass-S3CR3T-8c9d0e"
AUTH_HEADER = "Bearer header-S3CR3T-1f2a3b"
URL_PASS = "url-pass-S3CR3T-4c5d6e"
PATH_KEY = "path-key-S3CR3T-7a8b9c"
READY_KEY = "ready-key-S3CR3T-0d1e2f"


def b64(s):
    return base64.b64encode(s.encode()).decode()


LEAKS = [MARK, b64("%s:%s" % (RW_USER, RW_PASS)), b64("gw:%s" % URL_PASS),
         b64("svc:%s" % URL_PASS), b64("rwurl:%s" % URL_PASS), b64(KONG_KEY), b64(BEARER),
         b64(RW_PASS)]
QUOTE_MAX = 512  # bytes of a response quoted in a log field (README, Logs), "..." aside


def gateway(health=200):
    routes = ["0:GET:/health=status=%d" % health,
              "0:GET:/api/products/health=delay=2ms",
              "0:GET:/api/orders/health=status=500",
              "0:GET:/direct=delay=2ms"]
    return h.Fixture(routes)


def with_pass(url, user):
    scheme, rest = url.split("://", 1)
    return "%s://%s:%s@%s" % (scheme, user, URL_PASS, rest)


def profile(fx, key_file, failing=False, ready_timeout="5s", load_url=None):
    services = [{"name": "product", "smoke_path": "/api/products/health?apikey=" + PATH_KEY,
                 "url": load_url or with_pass(fx.url(0, "/direct"), "svc")}]
    if failing:
        services.append({"name": "order", "smoke_path": "/api/orders/health"})
    return h.write_profile({
        "environment": "itest",
        "gateway": {"url": with_pass(fx.url(0), "gw"), "key_file": key_file,
                    "key_header": "apikey",
                    "ready": {"path": "/health?v=1&token=" + READY_KEY,
                              "timeout": ready_timeout}},
        "services": services,
        "smoke": {"duration": "300ms", "think_time": "100ms", "retries": 0,
                  "thresholds": {"checks": ["rate==1.0"]}},
        "load": {"stages": [{"duration": "1s", "target": 2}], "think_time": "50ms",
                 "thresholds": {"http_req_failed": ["rate<0.01"]}},
    })


def rw_env(rw, auth):
    env = {"K6_PROMETHEUS_RW_SERVER_URL": with_pass(rw.url, "rwurl"),
           "K6_PROMETHEUS_RW_PUSH_INTERVAL": "200ms"}
    if auth == "bearer":
        env["K6_PROMETHEUS_RW_BEARER_TOKEN"] = BEARER
    elif auth == "basic":
        env["K6_PROMETHEUS_RW_USERNAME"] = RW_USER
        env["K6_PROMETHEUS_RW_PASSWORD"] = RW_PASS
    else:
        env["K6_PROMETHEUS_RW_HEADERS_Authorization"] = AUTH_HEADER
    return env


def key_file():
    return h.write_file(KONG_KEY + "\n", "apikey", h.tempdir())


def outputs(res, files=()):
    """Every output of a run: stdout, stderr, and the files it wrote."""
    out = {"stdout": res.stdout, "stderr": res.stderr}
    for f in files:
        if os.path.exists(f):
            with open(f, encoding="utf-8", errors="replace") as fh:
                out[os.path.basename(f)] = fh.read()
    return out


def no_leak(t, label, outs):
    found = ["%s in %s" % (s, where) for where, text in outs.items() for s in LEAKS
             if s in text]
    t.eq(found, [], "%s: no secret in %s" % (label, ", ".join(sorted(outs))))


def run_case(t, label, args, env, want_rc, timeout=30):
    d = h.tempdir()
    export, junit = os.path.join(d, "summary.json"), os.path.join(d, "junit.xml")
    res = h.run_syncgate(list(args) + ["--summary-export", export, "--junit", junit], env=env,
                         timeout=timeout)
    t.eq(res.rc, want_rc, "%s: exit code %d" % (label, want_rc)) or t.diag(res.explain())
    files = [export, junit]
    t.ok(all(os.path.exists(f) for f in files), "%s: summary export and JUnit written" % label)
    no_leak(t, label, outputs(res, files))
    return res


def rw_saw(rw, auth):
    seen = [rwlib.headers(r) for r in rw.records()]
    if auth == "bearer":
        want = "Bearer " + BEARER
    elif auth == "basic":
        want = "Basic " + base64.b64encode(("%s:%s" % (RW_USER, RW_PASS)).encode()).decode()
    else:
        want = AUTH_HEADER
    return bool(seen) and all(want in hd.get("authorization", []) for hd in seen)


def gateway_saw_key(fx):
    reqs = [r for r in fx.requests() if r["path"] != "/direct"]
    return bool(reqs) and all(h.header(r, "apikey") == KONG_KEY for r in reqs)


# ---- cases ----

def case_validate(t):
    kf = key_file()
    with gateway() as fx, rwlib.Fixture() as rw:
        prof = profile(fx, kf)
        for auth in ("bearer", "basic", "header"):
            env = rw_env(rw, auth)
            env["K6_PROMETHEUS_RW_HTTP_HEADERS"] = "X-Scope-OrgID:team1,Authorization:" + \
                AUTH_HEADER
            for fmt in ("json", "text"):
                res = h.run_syncgate(["validate", "-p", prof, "--log-format", fmt,
                                      "--set", "metrics.remote_write.password=" + RW_PASS],
                                     env=env)
                label = "validate (%s, %s)" % (auth, fmt)
                t.eq(res.rc, 0, "%s: exit 0" % label) or t.diag(res.explain())
                t.ok("<redacted>" in res.stdout, "%s: says what it redacted" % label)
                t.ok("smoke_path: \"/api/products/health?apikey=<redacted>\"" in res.stdout
                     and "path: \"/health?v=<redacted>&token=<redacted>\"" in res.stdout,
                     "%s: query values of smoke_path and ready.path hidden as in URLs" % label,
                     res.stdout)
                no_leak(t, label, outputs(res))


def case_smoke_load_pass(t):
    kf = key_file()
    for auth in ("bearer", "basic", "header"):
        for cmd in ("smoke", "load", "run"):
            with gateway() as fx, rwlib.Fixture() as rw:
                label = "%s passing (%s)" % (cmd, auth)
                run_case(t, label, [cmd, "-p", profile(fx, kf)], rw_env(rw, auth), 0)
                t.ok(rw_saw(rw, auth), "%s: the receiver got the credential" % label)
                if cmd != "load":
                    t.ok(gateway_saw_key(fx), "%s: the gateway got the Kong key" % label)


def case_failing(t):
    kf = key_file()
    refused = "http://svc:%s@127.0.0.1:%d/direct" % (URL_PASS, h.free_port())
    with gateway() as fx, rwlib.Fixture(default=401) as rw:
        # smoke fails (order answers 500), metrics are refused (401): both logged
        res = run_case(t, "run failing", ["run", "-p", profile(fx, kf, failing=True)],
                       rw_env(rw, "bearer"), 99)
        t.ok(res.events("check") and res.event("remote_write_rejected"),
             "run failing: failed checks and the rejected push were logged")
        t.ok(not res.events("load_start"), "run failing: load not started after a failed smoke")
    with gateway() as fx:
        # nothing listens on the service port, nor on the receiver's
        env = {"K6_PROMETHEUS_RW_SERVER_URL": "http://rw:%s@127.0.0.1:%d/write"
               % (URL_PASS, h.free_port()), "K6_PROMETHEUS_RW_BEARER_TOKEN": BEARER}
        res = run_case(t, "load refused", ["load", "-p", profile(fx, kf, load_url=refused)],
                       env, 99)
        t.ok(res.event("remote_write_error"), "load refused: push errors were logged")
    with gateway(health=503) as fx:
        res = run_case(t, "not ready", ["smoke", "-p", profile(fx, kf, ready_timeout="1s")],
                       {"K6_PROMETHEUS_RW_BEARER_TOKEN": BEARER}, 112)
        t.ok(res.events("not_ready"), "not ready: the polls were logged (with the URL)")
        t.ok(gateway_saw_key(fx), "not ready: the gateway got the Kong key")


def case_interrupted(t):
    kf = key_file()
    d = h.tempdir()
    export, junit = os.path.join(d, "summary.json"), os.path.join(d, "junit.xml")
    with gateway() as fx, rwlib.Fixture() as rw:
        prof = h.write_profile({
            "gateway": {"url": with_pass(fx.url(0), "gw"), "key_file": kf,
                        "ready": {"path": "/health"}},
            "services": [{"name": "product", "smoke_path": "/api/products/health",
                          "url": with_pass(fx.url(0, "/direct"), "svc")}],
            "load": {"stages": [{"duration": "30s", "target": 2}], "think_time": "50ms"},
        })
        sp = h.spawn_syncgate(["run", "-p", prof, "--log-format", "text", "--summary-export",
                               export, "--junit", junit], env=rw_env(rw, "basic"))
        h.wait_for(lambda: "load_start" in sp.stderr_so_far(), timeout=20)
        time.sleep(0.5)
        sp.signal(signal.SIGTERM)
        res = sp.finish(timeout=10)
    t.eq(res.rc, 105, "interrupted: exit 105") or t.diag(res.explain())
    no_leak(t, "interrupted (text logs)", outputs(res, [export, junit]))


def case_config_errors(t):
    kf = key_file()
    with gateway() as fx:
        prof = profile(fx, kf)
        base = {"K6_PROMETHEUS_RW_SERVER_URL": "http://rw:%s@127.0.0.1:9/write" % URL_PASS,
                "K6_PROMETHEUS_RW_BEARER_TOKEN": BEARER,
                "K6_PROMETHEUS_RW_USERNAME": RW_USER, "K6_PROMETHEUS_RW_PASSWORD": RW_PASS,
                "K6_PROMETHEUS_RW_HEADERS_Authorization": AUTH_HEADER}
        cases = [
            ("unrelated bad value", {"STAGES": "[{"}, []),
            ("bearer with a line break", {"K6_PROMETHEUS_RW_BEARER_TOKEN": BEARER + "\n"}, []),
            ("password with a control byte", {"K6_PROMETHEUS_RW_PASSWORD": RW_PASS + "\x01"},
             []),
            ("Authorization with a control byte",
             {"K6_PROMETHEUS_RW_HEADERS_Authorization": AUTH_HEADER + "\x7f"}, []),
            ("HTTP_HEADERS malformed",
             {"K6_PROMETHEUS_RW_HTTP_HEADERS": "Authorization:%s,junk" % AUTH_HEADER}, []),
            ("receiver URL with a bad port",
             {"K6_PROMETHEUS_RW_SERVER_URL": "http://rw:%s@127.0.0.1:99999/" % URL_PASS}, []),
            ("gateway URL with a bad scheme",
             {"GATEWAY_URL": "ftp://gw:%s@kong/" % URL_PASS}, []),
            ("--set of a secret that does not parse", {},
             ["--set", "metrics.remote_write.bearer_token=[" + BEARER]),
            ("--set of a URL with a password and a bad host", {},
             ["--set", "services.product.url=http://svc:%s@a b/" % URL_PASS]),
        ]
        for label, env, extra in cases:
            e = dict(base)
            e.update(env)
            for cmd in ("validate", "run"):
                res = h.run_syncgate([cmd, "-p", prof] + extra, env=e)
                lbl = "config error, %s (%s)" % (label, cmd)
                t.eq(res.rc, 104, "%s: exit 104" % lbl) or t.diag(res.explain())
                no_leak(t, lbl, outputs(res))


def echoing_gateway():
    """A gateway that quotes the Kong key back in rate-limit and other headers, on 429."""
    basic = b64("gw:%s" % URL_PASS)
    echo = ",".join(["header=RateLimit-Policy:5;w=60;key=" + KONG_KEY,
                     "header=X-RateLimit-Remaining-Minute:" + KONG_KEY,
                     "header=RateLimit-Key:" + b64(KONG_KEY),
                     "header=RateLimit-Auth:Basic " + basic,
                     "header=X-Echo-Apikey:" + KONG_KEY])
    routes = ["0:GET:/health=status=200," + echo,
              "0:GET:/api/products/health=kong429=0," + echo,
              "0:GET:/direct=delay=2ms"]
    return h.Fixture(routes)


def case_echoing_gateway(t):
    kf = key_file()
    for fmt in ("json", "text"):
        with echoing_gateway() as fx:
            label = "gateway echoing the key (%s logs)" % fmt
            res = run_case(t, label, ["smoke", "-p", profile(fx, kf), "--log-format", fmt],
                           {}, 99)
            t.ok(gateway_saw_key(fx), "%s: the gateway got the Kong key" % label)
            lines = [ln for ln in res.stderr.splitlines() if "rate_limited" in ln]
            t.ok(lines and all("<redacted>" in ln for ln in lines),
                 "%s: rate_limited logged, the echoed key masked" % label, res.stderr[-3000:])


def case_echoing_receiver(t):
    kf = key_file()
    for auth in ("bearer", "basic", "header"):
        for status in (401, 503):
            # 503 twice, then accepted: the final flush need not wait out a refusing receiver
            quoting = (rwlib.Fixture(default="echo:401") if status == 401 else
                       rwlib.Fixture(script="0=echo:503,1=echo:503"))
            with gateway() as fx, quoting as rw:
                label = "receiver quoting %s Authorization (%d)" % (auth, status)
                env = rw_env(rw, auth)
                res = run_case(t, label, ["smoke", "-p", profile(fx, kf)], env, 0)
                t.ok(rw_saw(rw, auth), "%s: the receiver got the credential" % label)
                event = "remote_write_rejected" if status == 401 else "remote_write_error"
                bodies = [e.get("body", "") for e in res.events(event)]
                t.ok(bodies and all("Authorization: <redacted>" in b or
                                    "Authorization: Bearer <redacted>" in b or
                                    "Authorization: Basic <redacted>" in b for b in bodies),
                     "%s: %s logged with the credential masked" % (label, event), bodies[:2])
                t.ok(all(len(b.encode()) <= QUOTE_MAX + 3 for b in bodies),
                     "%s: the quoted body is cut to %d bytes" % (label, QUOTE_MAX),
                     [len(b) for b in bodies])


def case_echoing_journey_gateway(t):
    """Journeys: a gateway quoting the OAuth2 client secret and its Basic form back."""
    client, secret = "gate-client", "client-secret-S3CR3T-5e6f"
    basic = b64("%s:%s" % (client, secret))
    echo = ("header=RateLimit-Policy:client=" + secret +
            ",header=X-RateLimit-Auth:Basic " + basic)
    d = h.tempdir()
    sf = h.write_file(secret + "\n", "client-secret", d)
    routes = ["0:GET:/api/products/health=kong429=0," + echo, "*:*:*=app=kubestock"]
    with h.Fixture(routes, extra_args=["--kubestock-client", "%s:%s" % (client, secret)]) as fx:
        prof = h.write_profile({
            "gateway": {"url": fx.url(0), "ready": {"path": "/health"}},
            "services": [{"name": "product", "smoke_path": "/api/products/health",
                          "url": fx.url(0, "/api/products/health")}],
            "auth": {"oauth2_client_credentials": {
                "token_url": fx.url(0, "/oauth2/token"), "client_id": client,
                "client_secret_file": sf}},
            "journeys": [{"name": "browse", "steps": [
                {"name": "list products", "service": "product", "path": "/api/products",
                 "headers": {"Authorization": "Bearer ${auth.token}"},
                 "expect": {"status": 200}}]}],
            "smoke": {"iterations": 1, "think_time": "0s", "retries": 0},
        }, directory=d)
        for fmt in ("json", "text"):
            label = "journeys, gateway echoing the client secret (%s logs)" % fmt
            res = h.run_syncgate(["smoke", "-p", prof, "--log-format", fmt])
            t.eq(res.rc, 99, "%s: exit 99 (the echoing route answers 429)" % label) or \
                t.diag(res.explain())
            lines = [ln for ln in res.stderr.splitlines() if "rate_limited" in ln]
            t.ok(lines and all("client=<redacted>" in ln and "Basic <redacted>" in ln
                               for ln in lines),
                 "%s: rate_limited logged, secret and Basic form masked" % label,
                 res.stderr[-3000:])
            found = [x for x in (secret, basic, MARK) if x in res.stdout + res.stderr]
            t.eq(found, [], "%s: no secret in stdout or stderr" % label)


def case_tls_verify(t):
    with gateway() as fx, rwlib.Fixture() as rw:
        prof = profile(fx, key_file())
        env = rw_env(rw, "bearer")
        res = h.run_syncgate(["smoke", "-p", prof], env=env)
        t.eq(res.events("tls_verify_disabled"), [], "TLS verification on by default: no warning")
        env["K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY"] = "true"
        res = h.run_syncgate(["smoke", "-p", prof, "-q"], env=env)
        ev = res.events("tls_verify_disabled")
        t.ok(len(ev) == 1 and ev[0].get("level") == "warn",
             "INSECURE_SKIP_TLS_VERIFY=true: one tls_verify_disabled warning, even with -q",
             res.stderr[-3000:])
        no_leak(t, "insecure run", outputs(res))


if __name__ == "__main__":
    h.Tap().run(case_validate, case_smoke_load_pass, case_failing, case_interrupted,
                case_config_errors, case_echoing_gateway, case_echoing_receiver,
                case_echoing_journey_gateway, case_tls_verify)
