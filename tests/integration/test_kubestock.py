#!/usr/bin/env python3
"""The stand-in KubeStock (fixture route item app=kubestock) over real sockets.

Environment (set by tests/integration/meson.build): FIXTURE. Prints TAP.

The application's logic has its own unit test (tests/fixture/test_kubestock.c);
this drives the fixture server with Python's http.client and raw sockets:
one state shared by the gateway and the service listeners, the OAuth2 token
flow, expiry and revocation, order CRUD with 401/404/400/415/405/507, ids the
server never created counted as unknown, keep-alive and pipelining, the
request-body cap (413), chunked bodies (411), slow and unfinished bodies, the
request log, the fixture's own rules (times=, delay=, fault=) around the
application, and bad command lines.
"""
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CLIENT = ("kubestock-gate", "s3cret:with%colon")
APP = "*:*:*=app=kubestock"


STARTED = []


def start(routes=(APP,), listeners=1, extra=()):
    args = ["--kubestock-client", "%s:%s" % CLIENT] + list(extra)
    fx = h.Fixture(list(routes), listen=("127.0.0.1:0",) * listeners, extra_args=args)
    STARTED.append(fx)
    return fx


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "%d %r %r" % (self.status, self.headers, self.body[:300])


def call(fx, method, path, body=None, headers=None, index=0, conn=None):
    """One request; a new connection unless conn is given. body: dict/list (JSON), str or bytes."""
    c = conn or http.client.HTTPConnection("127.0.0.1", fx.ports[index], timeout=5)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    c.request(method, path, body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read().decode("utf-8", "replace")
    res = Resp(r.status, r.getheaders(), data)
    if conn is None:
        c.close()
    return res


def basic(client_id=CLIENT[0], secret=CLIENT[1]):
    # RFC 6749 2.3.1: form-encode id and secret, then base64 the pair
    from urllib.parse import quote_plus
    pair = "%s:%s" % (quote_plus(client_id), quote_plus(secret))
    return "Basic " + base64.b64encode(pair.encode()).decode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token(fx, index=0, scope=None):
    body = "grant_type=client_credentials" + ("&scope=" + scope if scope else "")
    r = call(fx, "POST", "/oauth2/token", body, dict(FORM, Authorization=basic()), index)
    if r.status != 200:
        raise AssertionError("token: %r" % r)
    return r.json["access_token"]


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def stats(fx, index=0):
    return call(fx, "GET", "/__kubestock/stats", index=index).json


def raw(port, data, read_until_close=True, timeout=5.0):
    """Send bytes on a fresh socket, return everything read until EOF (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while read_until_close and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def statuses(raw_bytes):
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw_bytes)]


# ---- cases ----

def case_token_flow(t):
    with start(listeners=3) as fx:
        r = call(fx, "POST", "/oauth2/token", "grant_type=client_credentials&scope=orders%3Awrite",
                 dict(FORM, Authorization=basic()))
        t.eq(r.status, 200, "token with HTTP Basic: 200")
        tok = (r.json or {}).get("access_token", "")
        t.ok(re.fullmatch(r"[0-9a-f]{48}", tok), "access_token is 48 hex characters", r)
        t.eq({k: v for k, v in (r.json or {}).items() if k != "access_token"},
             {"token_type": "Bearer", "expires_in": 300, "scope": "orders:write"},
             "token_type Bearer, expires_in 300, the scope granted")
        t.eq(r.headers.get("content-type"), "application/json", "JSON answer")
        t.eq(r.headers.get("cache-control"), "no-store", "Cache-Control: no-store")
        r2 = call(fx, "POST", "/api/identity/oauth2/token",
                  "grant_type=client_credentials&client_id=%s&client_secret=%s"
                  % (CLIENT[0], "s3cret%3Awith%25colon"), FORM, index=2)
        t.ok(r2.status == 200 and r2.json["access_token"] != tok,
             "client_id/client_secret in the form, on another listener and path: a new token", r2)
        me = call(fx, "GET", "/api/identity/me", headers=bearer(tok), index=1)
        t.eq((me.status, me.json and me.json.get("clientId"), me.json and me.json.get("scope")),
             (200, CLIENT[0], "orders:write"),
             "the gateway's token works on a service listener (one shared state)")
        bad = call(fx, "POST", "/oauth2/token", "grant_type=client_credentials",
                   dict(FORM, Authorization=basic(secret="nope")))
        t.eq((bad.status, bad.json), (401, {"error": "invalid_client",
                                             "error_description": "unknown client or wrong secret"}),
             "wrong secret: 401 invalid_client (RFC 6749 5.2)")
        t.contains(bad.headers.get("www-authenticate", ""), "Basic", "with a Basic challenge")
        r = call(fx, "POST", "/oauth2/token", "grant_type=password",
                 dict(FORM, Authorization=basic()))
        t.eq((r.status, r.json and r.json["error"]), (400, "unsupported_grant_type"),
             "grant_type=password: 400 unsupported_grant_type")
        r = call(fx, "POST", "/oauth2/token", {"grant_type": "client_credentials"},
                 {"Authorization": basic()})
        t.eq((r.status, r.json and r.json["error"]), (400, "invalid_request"),
             "a JSON body: 400 invalid_request")
        s = stats(fx)
        t.eq((s["tokens_issued"], s["token_errors"], s["routes"]["token"]), (2, 3, 5),
             "stats: 2 tokens issued, 3 token errors, 5 token requests")


def case_crud(t):
    with start(listeners=2) as fx:
        auth = bearer(token(fx))
        r = call(fx, "POST", "/api/orders", {"productId": "p3", "quantity": 2}, auth)
        t.eq(r.status, 201, "POST /api/orders: 201")
        oid = (r.json or {}).get("id", "")
        t.ok(re.fullmatch(r"o1-[0-9a-f]{8}", oid), "id o<serial>-<tag>", r)
        t.eq(r.headers.get("location"), "/api/orders/" + oid, "Location names the order")
        t.eq({k: v for k, v in r.json.items() if k != "id"},
             {"status": "PENDING", "productId": "p3", "quantity": 2, "total": 124.74},
             "the created order")
        g = call(fx, "GET", "/api/orders/" + oid, headers=auth, index=1)
        t.eq((g.status, g.json), (200, r.json), "GET on the service listener: the same object")
        p = call(fx, "PATCH", "/api/orders/" + oid, {"status": "PAID"}, auth)
        t.eq((p.status, p.json and p.json["status"]), (200, "PAID"), "PATCH status PAID: 200")
        u = call(fx, "PUT", "/api/orders/" + oid, {"quantity": 3}, auth, index=1)
        t.eq((u.status, u.json and u.json["quantity"], u.json and u.json["status"]),
             (200, 3, "PAID"), "PUT quantity 3: 200, status kept")
        inv = call(fx, "GET", "/api/inventory/p3")
        t.eq(inv.json and inv.json["reserved"], 3, "inventory p3 reserves 3")
        d = call(fx, "DELETE", "/api/orders/" + oid, headers=auth)
        t.eq((d.status, d.body), (204, ""), "DELETE: 204, no body")
        t.eq(call(fx, "GET", "/api/orders/" + oid, headers=auth, index=1).status, 404,
             "GET after DELETE: 404")
        t.eq(call(fx, "DELETE", "/api/orders/" + oid, headers=auth).status, 404,
             "second DELETE: 404")
        s = stats(fx)
        t.eq((s["orders_created"], s["orders_updated"], s["orders_deleted"], s["orders_live"],
              s["unknown_id"]), (1, 2, 1, 0, 0),
             "stats: 1 created, 2 updated, 1 deleted, 0 live, no unknown id")
        # ids the server never handed out: a guess, another serial, a mangled tag
        fakes = ["o1-00000000", "o2" + oid[2:], oid[:-1] + ("0" if oid[-1] != "0" else "1"), "42"]
        for f in fakes:
            r = call(fx, "GET", "/api/orders/" + f, headers=auth)
            t.ok(r.status == 404 and "ever created" in r.body, "GET /api/orders/%s: 404" % f, r)
        s = stats(fx)
        t.eq((s["unknown_id"], s["last_unknown_id"]), (4, "42"),
             "stats count 4 unknown ids and show the last")
        t.eq(s["routes"]["order_get"], 2 + len(fakes), "stats count GETs by route")


def case_errors(t):
    with start() as fx:
        r = call(fx, "POST", "/api/orders", {"productId": "p1", "quantity": 1})
        t.eq(r.status, 401, "no token: 401")
        t.eq(r.headers.get("www-authenticate"), 'Bearer realm="kubestock"',
             "a bare Bearer challenge (RFC 6750 3.1)")
        r = call(fx, "GET", "/api/orders/o1-00000000", headers=bearer("0" * 48))
        t.eq(r.status, 401, "unknown token: 401")
        t.contains(r.headers.get("www-authenticate", ""), 'error="invalid_token"',
                   'error="invalid_token" in the challenge')
        auth = bearer(token(fx))
        cases = [
            ('{"productId":"p1",', "malformed JSON", "invalid_json"),
            ({"productId": "p1"}, "no quantity", "invalid_order"),
            ({"productId": "p1", "quantity": 0}, "quantity 0", "invalid_order"),
            ({"productId": "p1", "quantity": -3}, "negative quantity", "invalid_order"),
            ({"productId": "p99", "quantity": 1}, "unknown product", "invalid_order"),
            ([1, 2], "an array", "invalid_json"),
        ]
        for body, why, err in cases:
            hd = dict(auth, **{"Content-Type": "application/json"})
            r = call(fx, "POST", "/api/orders", body, hd)
            t.eq((r.status, r.json and r.json.get("error")), (400, err), "POST with %s: 400 %s"
                 % (why, err))
        r = call(fx, "POST", "/api/orders", '{"productId":"p1","quantity":1}',
                 dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"}))
        t.eq(r.status, 415, "POST with a form Content-Type: 415")
        t.eq(call(fx, "GET", "/api/products/p404").status, 404, "unknown product: 404")
        r = call(fx, "GET", "/api/orders", headers=auth)
        t.eq((r.status, r.headers.get("allow")), (405, "POST"), "GET /api/orders: 405 Allow POST")
        t.eq(call(fx, "GET", "/api/nothing").status, 404, "unknown path: 404")
        s = stats(fx)
        t.eq((s["unauthorized"], s["bad_request"], s["orders_created"]), (2, 6, 0),
             "stats: 2 bearer 401s, 6 bad requests, nothing created")


def case_catalogue(t):
    with start(extra=("--kubestock-products", "250")) as fx:
        r = call(fx, "GET", "/api/products")
        t.ok(r.status == 200 and len(r.json) == 100 and r.headers.get("x-total-count") == "250",
             "GET /api/products: a page of 100 of 250", r)
        r = call(fx, "GET", "/api/products?offset=200&limit=200")
        t.eq([p["id"] for p in r.json][:2] + [len(r.json)], ["p201", "p202", 50], "the last page")
        r = call(fx, "GET", "/api/products/p250")
        t.eq(sorted(r.json), ["id", "name", "price", "stock", "supplierId"], "product fields")
        r = call(fx, "HEAD", "/api/products/p1")
        t.ok(r.status == 200 and r.body == "" and int(r.headers["content-length"]) > 20,
             "HEAD: headers with the length, no body", r)
        r = call(fx, "GET", "/api/suppliers")
        t.eq([s["id"] for s in r.json], ["s1", "s2", "s3", "s4", "s5"], "five suppliers")
        for path in ("/health", "/api/products/health", "/api/inventory/health",
                     "/api/suppliers/health", "/api/orders/health", "/api/identity/health"):
            r = call(fx, "GET", path)
            t.eq((r.status, r.json), (200, {"status": "ok"}), "GET %s" % path)


def case_expiry(t):
    with start(extra=("--kubestock-token-ttl", "1s")) as fx:
        r = call(fx, "POST", "/oauth2/token", "grant_type=client_credentials",
                 dict(FORM, Authorization=basic()))
        t.eq(r.json and r.json["expires_in"], 1, "expires_in follows --kubestock-token-ttl")
        auth = bearer(r.json["access_token"])
        t.eq(call(fx, "GET", "/api/identity/me", headers=auth).status, 200, "fresh token: 200")
        time.sleep(1.1)
        r = call(fx, "GET", "/api/identity/me", headers=auth)
        t.eq(r.status, 401, "after its TTL: 401")
        t.contains(r.headers.get("www-authenticate", ""), 'error_description="token expired"',
                   "the challenge says the token expired")
        t.eq(call(fx, "GET", "/api/identity/me", headers=bearer(token(fx))).status, 200,
             "a refreshed token works")


def case_revoke(t):
    with start(extra=("--kubestock-revoke-after", "2")) as fx:
        auth = bearer(token(fx))
        got = [call(fx, "POST", "/api/orders", {"productId": "p2", "quantity": 1}, auth).status
               for _ in range(3)]
        t.eq(got, [201, 201, 401], "--kubestock-revoke-after 2: the third use gets 401")
        r = call(fx, "POST", "/api/orders", {"productId": "p2", "quantity": 1}, bearer(token(fx)))
        t.eq(r.status, 201, "a new token works")
        t.eq(stats(fx)["unauthorized"], 1, "one 401 counted")


def case_keepalive(t):
    with start() as fx:
        c = http.client.HTTPConnection("127.0.0.1", fx.ports[0], timeout=5)
        auth = bearer(token(fx))
        codes = []
        for i in range(100):
            r = call(fx, "POST", "/api/orders", {"productId": "p%d" % (i % 20 + 1), "quantity": 1},
                     auth, conn=c)
            codes.append(r.status)
            oid = r.json["id"]
            codes.append(call(fx, "GET", "/api/orders/" + oid, headers=auth, conn=c).status)
            codes.append(call(fx, "DELETE", "/api/orders/" + oid, headers=auth, conn=c).status)
        c.close()
        t.eq(codes, [201, 200, 204] * 100, "300 requests on one connection: create, get, delete")
        reqs = [q for q in fx.requests() if q["path"].startswith("/api/orders")]
        t.eq(len({q["conn"] for q in reqs}), 1, "all on one connection (the log's conn)")
        t.eq([q["seq"] for q in reqs], list(range(1, 301)), "seq 1..300 in order")
        # pipelined: three requests in one write, a POST with a body between two GETs
        tok = auth["Authorization"]
        body = b'{"productId":"p1","quantity":4}'
        data = (b"GET /api/products/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /api/orders HTTP/1.1\r\nHost: x\r\nAuthorization: " + tok.encode() +
                b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) +
                body + b"GET /__kubestock/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = raw(fx.ports[0], data)
        t.eq(statuses(out), [200, 201, 200], "pipelined GET, POST, GET: 200 201 200")
        t.contains(out, b'"orders_created":101,', "the pipelined POST is counted")


def case_body_cap(t):
    with start() as fx:
        auth = bearer(token(fx))
        port = fx.ports[0]
        # exactly 64 KiB: JSON padded with spaces
        doc = b'{"productId":"p5","quantity":1}'
        full = doc[:-1] + b" " * (65536 - len(doc)) + b"}"
        r = call(fx, "POST", "/api/orders", full,
                 dict(auth, **{"Content-Type": "application/json"}))
        t.eq(r.status, 201, "a body of exactly 65536 bytes is read whole: 201")
        head = ("POST /api/orders HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %%d\r\n\r\n"
                % auth["Authorization"])
        over = (head % 65537).encode() + b" " * 65537
        out = raw(port, over)
        t.eq(statuses(out), [413], "65537 bytes: 413")
        t.contains(out, b"Connection: close", "and the connection closes")
        t.contains(out, b'"error":"payload_too_large"', "JSON error body")
        # a body sent slowly in pieces
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        pieces = [doc[:5], doc[5:17], doc[17:]]
        s.sendall((head % len(doc)).encode())
        for p in pieces:
            time.sleep(0.05)
            s.sendall(p)
        got = s.recv(65536)
        s.close()
        t.eq(statuses(got), [201], "a body arriving in three pieces: 201")
        # chunked
        out = raw(port, (head.replace("Content-Length: %d", "Transfer-Encoding: chunked")).encode()
                  + b"5\r\nhello\r\n0\r\n\r\n")
        t.eq(statuses(out), [411], "a chunked body: 411")
        # a body that never completes: logged unanswered when the client leaves
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall((head % 100).encode() + b'{"productId"')
        time.sleep(0.1)
        s.close()
        recs = h.wait_for(lambda: [q for q in fx.requests() if q["status"] == 0], timeout=3)
        t.ok(recs and recs[0]["body"] == '{"productId"' and recs[0]["body_bytes"] == 100,
             "an unfinished body: logged with status 0 and what came", recs)
        s = stats(fx)
        t.eq(s["orders_created"], 2, "2 orders created, none from refused bodies")


def case_log(t):
    with start() as fx:
        auth = bearer(token(fx))
        call(fx, "POST", "/api/orders", '{"productId":"p7","quantity":2,"note":"caf\u00e9"}'.encode(),
             dict(auth, **{"Content-Type": "application/json", "X-Journey": "order-lifecycle"}))
        recs = [q for q in fx.requests() if q["path"] == "/api/orders"]
        t.eq(len(recs), 1, "one log line for the POST")
        rec = recs[0] if recs else {}
        t.eq((rec.get("status"), rec.get("route"), rec.get("method")), (201, 0, "POST"),
             "the log has the application's status")
        t.eq(h.header(rec, "x-journey"), "order-lifecycle", "and the request headers")
        t.eq(h.header(rec, "authorization"), auth["Authorization"], "Authorization as sent")
        # the log writes each byte outside ASCII as \u00XX: UTF-8 é comes back as two characters
        t.eq(rec.get("body"), '{"productId":"p7","quantity":2,"note":"caf\xc3\xa9"}',
             "and the body, byte by byte")


def case_plumbing(t):
    routes = ["*:POST:/api/orders=status=503,times=1",
              "*:GET:/api/products/p2=app=kubestock,delay=150ms",
              "*:DELETE:/api/orders/*=app=kubestock,fault=reset,times=1",
              "*:GET:/api/suppliers=app=kubestock,header=X-Extra:yes",
              APP]
    with start(routes=routes) as fx:
        auth = bearer(token(fx))
        a = call(fx, "POST", "/api/orders", {"productId": "p1", "quantity": 1}, auth)
        b = call(fx, "POST", "/api/orders", {"productId": "p1", "quantity": 1}, auth)
        t.eq((a.status, b.status), (503, 201), "times=1 rule before the app: 503, then the app")
        t.eq(stats(fx)["orders_created"], 1, "the 503 never reached the application")
        t0 = time.monotonic()
        r = call(fx, "GET", "/api/products/p2")
        dt = time.monotonic() - t0
        t.ok(r.status == 200 and r.json["id"] == "p2" and dt >= 0.15,
             "delay=150ms on an app route: answered after %.3f s" % dt, r)
        try:
            call(fx, "DELETE", "/api/orders/" + b.json["id"], headers=auth)
            reset = False
        except (ConnectionError, http.client.HTTPException):
            reset = True
        t.ok(reset, "fault=reset on an app route: the client sees a reset")
        s = stats(fx)
        t.eq((s["orders_deleted"], s["orders_live"]), (1, 0),
             "but the application deleted the order (state first, then the fault)")
        r = call(fx, "GET", "/api/suppliers")
        t.eq((r.status, r.headers.get("x-extra"), r.headers.get("content-type")),
             (200, "yes", "application/json"), "header= adds to the application's headers")


def case_store_full(t):
    with start(extra=("--kubestock-max-orders", "2")) as fx:
        auth = bearer(token(fx))
        got = [call(fx, "POST", "/api/orders", {"productId": "p1", "quantity": 1}, auth)
               for _ in range(3)]
        t.eq([r.status for r in got], [201, 201, 507], "--kubestock-max-orders 2: the third 507")
        call(fx, "DELETE", "/api/orders/" + got[0].json["id"], headers=auth)
        r = call(fx, "POST", "/api/orders", {"productId": "p1", "quantity": 1}, auth)
        t.eq(r.status, 201, "after a DELETE there is room again")
        t.eq(stats(fx)["store_full"], 1, "store_full counted")


def case_bad_command_lines(t):
    exe = os.environ["FIXTURE"]
    bad = [
        (["--kubestock-client", "nocolon", "--route", APP], "--kubestock-client wants ID:SECRET"),
        (["--kubestock-products", "0", "--route", APP], 'bad --kubestock-products "0"'),
        (["--kubestock-max-orders", "x", "--route", APP], 'bad --kubestock-max-orders "x"'),
        (["--kubestock-token-ttl", "0", "--route", APP], 'bad --kubestock-token-ttl "0"'),
        (["--kubestock-revoke-after", "-1", "--route", APP], 'bad --kubestock-revoke-after "-1"'),
        (["--kubestock-token-ttl", "5s", "--route", "*:*:*=status=200"],
         "--kubestock-* options need a route with app=kubestock"),
        (["--route", "*:*:*=app=shop"], 'unknown app "shop"'),
        (["--route", "*:*:*=app=kubestock,status=201"], "app= answers by itself"),
    ]
    for args, msg in bad:
        p = subprocess.run([exe, "--listen", "127.0.0.1:0"] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
        t.ok(p.returncode == 2 and msg in p.stderr, "fixture %s: exit 2, %r"
             % (" ".join(args[:2]), msg), "exit %r, stderr %r" % (p.returncode, p.stderr))


def case_clean_exits(t):
    # under ASan/UBSan (scripts/ci-extra.sh) a memory error or leak makes the fixture say so
    for i, fx in enumerate(STARTED):
        rc = fx.stop()
        err = fx.stderr()
        t.ok(rc == 0 and "Sanitizer" not in err and "runtime error" not in err,
             "fixture %d of %d exited 0 without sanitizer reports" % (i + 1, len(STARTED)),
             "exit %r" % rc, err)


def main():
    h.Tap().run(case_token_flow, case_crud, case_errors, case_catalogue, case_expiry, case_revoke,
                case_keepalive, case_body_cap, case_log, case_plumbing, case_store_full,
                case_bad_command_lines, case_clean_exits)


if __name__ == "__main__":
    main()
