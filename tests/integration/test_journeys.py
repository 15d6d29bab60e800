#!/usr/bin/env python3
"""Journeys end to end against the stand-in KubeStock (fixture app=kubestock). Prints TAP.

The stand-in keeps state: it creates orders with ids of its own, counts any id it never
created as unknown_id, issues OAuth2 tokens that expire (or stop working after N uses), and
answers 401 without one. So what a journey captured, sent and checked is judged by the
server itself: the captured id is the created one, the token is sent and renewed, a wrong
value fails its check and the verdict, a missing capture skips the rest of the iteration,
data rows go round-robin, weights split iterations, a refused client stops the run with
116 before any journey request, and no secret reaches any output.
"""
import json
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CLIENT_ID = "kubestock-gate"
SECRET = "s3cret-journeys-0451"


def kubestock(extra=(), listeners=2):
    """The stand-in: listener 0 the gateway, 1 the order/product service (one shared state)."""
    args = ["--kubestock-client", "%s:%s" % (CLIENT_ID, SECRET)] + list(extra)
    return h.Fixture(["*:*:*=app=kubestock"], listen=("127.0.0.1:0",) * listeners,
                     extra_args=args)


def stats(fx):
    with urllib.request.urlopen(fx.url(0, "/__kubestock/stats"), timeout=5) as r:
        return json.loads(r.read())


def lifecycle(expect_status="PENDING", capture_path="$.id", think="0s"):
    return {
        "name": "order-lifecycle",
        "think_time": think,
        "steps": [
            {"name": "create order", "service": "order", "method": "POST",
             "path": "/api/orders",
             "headers": {"Authorization": "Bearer ${auth.token}"},
             "body": {"productId": "${data.products.id}", "quantity": 2},
             "expect": {"status": 201, "json": {"$.status": expect_status, "$.quantity": 2},
                        "header": {"Content-Type": "application/json"}},
             "capture": {"order_id": capture_path, "where": {"header": "Location"}}},
            {"name": "get order", "service": "order", "path": "/api/orders/${order_id}",
             "headers": {"Authorization": "Bearer ${auth.token}",
                         "X-Order-Location": "${where}"},
             "expect": {"status": 200, "json": {"$.id": "${order_id}"},
                        "body_contains": "${data.products.id}"}},
            {"name": "delete order", "service": "order", "method": "DELETE",
             "path": "/api/orders/${order_id}",
             "headers": {"Authorization": "Bearer ${auth.token}"},
             "expect": {"status": [200, 204]}},
        ],
    }


def profile(fx, journeys, d, stages=None, smoke_iterations=1, auth=True, extra=None):
    data = h.write_file("id,name\np3,Apple\np7,Pear\np11,Fig\n", "products.csv", d)
    secret = h.write_file(SECRET + "\n", "client-secret", d)
    p = {
        "environment": "itest",
        "gateway": {"url": fx.url(0), "ready": {"path": "/health", "timeout": "5s"}},
        "services": [
            {"name": "order", "smoke_path": "/api/orders/health",
             "url": fx.url(1, "/api/orders/health")},
            {"name": "product", "smoke_path": "/api/products/health",
             "url": fx.url(1, "/api/products/health")},
        ],
        "data": {"products": {"file": os.path.basename(data)}},
        "journeys": journeys,
        "smoke": {"iterations": smoke_iterations, "think_time": "0s", "retries": 0,
                  "thresholds": {"checks": ["rate==1.0"]}},
        "load": {"stages": stages or [{"duration": "2s", "target": 4}], "think_time": "0s",
                 "graceful_ramp_down": "1s",
                 "thresholds": {"checks": ["rate==1.0"], "http_req_failed": ["rate<0.01"]}},
    }
    if auth:
        p["auth"] = {"oauth2_client_credentials": {
            "token_url": fx.url(0, "/oauth2/token"), "client_id": CLIENT_ID,
            "client_secret_file": secret, "scope": "orders:write"}}
    p.update(extra or {})
    return h.write_profile(p, directory=d)


def tokens_seen(reqs):
    out = set()
    for r in reqs:
        a = r["hdr"].get("authorization", "")
        if a.startswith("Bearer "):
            out.add(a[7:])
    return out


def no_secret(t, res, d, fx, label):
    """Neither the client secret nor any token the server issued is in any output."""
    texts = [res.stdout, res.stderr]
    for name in os.listdir(d):
        if name.endswith((".json", ".xml")):
            with open(os.path.join(d, name), errors="replace") as f:
                texts.append(f.read())
    toks = tokens_seen(fx.requests())
    leaks = [s for s in [SECRET] + sorted(toks) if any(s in x for x in texts)]
    t.ok(toks and not leaks, "%s: no secret or token in stdout, stderr or the reports (%d tokens "
         "checked)" % (label, len(toks)), leaks)


def summary_export(path):
    with open(path) as f:
        return json.load(f)


# ---- cases ----

def case_smoke_lifecycle(t):
    """Smoke runs the journey once through the gateway; the server confirms every id."""
    d = h.tempdir()
    with kubestock() as fx:
        export = os.path.join(d, "summary.json")
        res = h.run_syncgate(["smoke", "-p", profile(fx, [lifecycle()], d),
                              "--summary-export", export])
        st = stats(fx)
        reqs = fx.requests()
        t.eq(res.rc, 0, "smoke lifecycle: exit 0") or t.diag(res.explain())
        t.ok(st["orders_created"] == 1 and st["orders_deleted"] == 1 and st["orders_live"] == 0,
             "smoke lifecycle: the order the journey created was deleted", st)
        t.ok(st["unknown_id"] == 0 and st["not_found"] == 0 and st["unauthorized"] == 0,
             "smoke lifecycle: every id sent was one the server created; every request had "
             "a valid token", st)
        journey = [r for r in reqs if r["path"].startswith("/api/orders")
                   and r["path"] != "/api/orders/health"]
        t.eq([(r["method"], r["listen"]) for r in journey],
             [("POST", 0), ("GET", 0), ("DELETE", 0)],
             "smoke lifecycle: the three steps went through the gateway, in order")
        gets = [r for r in journey if r["method"] == "GET"]
        t.ok(gets and gets[0]["hdr"].get("x-order-location") == gets[0]["path"],
             "smoke lifecycle: the Location header was captured and sent on", gets)
        posted = [r for r in journey if r["method"] == "POST"]
        t.ok(posted and json.loads(posted[0].get("body") or "{}").get("productId") == "p3",
             "smoke lifecycle: the body carried the first data row", posted)
        t.ok(all(r["hdr"].get("x-consumer-username") == "test-runner" for r in journey),
             "smoke lifecycle: journey steps carry the gateway's consumer header")
        for check in ("create order status 201", "create order json $.status",
                      "create order header Content-Type", "create order captures order_id",
                      "get order json $.id", "get order body contains",
                      "delete order status 200/204"):
            t.eq(res.check_mark(check), True, "smoke lifecycle: check %r passed" % check)
        exp = summary_export(export)
        group = exp["root_group"]["groups"].get("order-lifecycle", {})
        t.ok("create order status 201" in group.get("checks", {}),
             "smoke lifecycle: the export lists the journey's checks under its group", group)
        t.ok("group_duration" in exp["metrics"], "smoke lifecycle: group_duration recorded")
        t.ok("order-lifecycle" in res.stdout and re.search(r"█ order-lifecycle", res.stdout),
             "smoke lifecycle: the text summary shows the journey's checks under it")
        no_secret(t, res, d, fx, "smoke lifecycle")


def case_load_lifecycle(t):
    """Load: many iterations on several VUs, each id confirmed, rows round-robin, tags."""
    d = h.tempdir()
    with kubestock() as fx:
        export = os.path.join(d, "summary.json")
        res = h.run_syncgate(["load", "-p", profile(fx, [lifecycle()], d),
                              "--summary-export", export], timeout=40)
        st = stats(fx)
        reqs = fx.requests()
    t.eq(res.rc, 0, "load lifecycle: exit 0") or t.diag(res.explain())
    t.ok(st["orders_created"] > 20, "load lifecycle: many iterations (%d orders)"
         % st["orders_created"])
    # an iteration cut by the end of the schedule may leave its order behind
    t.ok(st["orders_created"] - st["orders_deleted"] <= 4 and st["unknown_id"] == 0 and
         st["not_found"] == 0, "load lifecycle: ids all real, at most one order left per VU",
         st)
    direct = [r for r in reqs if r["listen"] == 1 and r["path"].startswith("/api/orders")]
    t.ok(direct and len(direct) == len([r for r in reqs if r["path"].startswith("/api/orders")]),
         "load lifecycle: load goes straight to the service, never the gateway")
    t.ok(all("x-consumer-username" not in r["hdr"] for r in direct),
         "load lifecycle: load requests carry no gateway credentials")
    rows = {}
    for r in direct:
        if r["method"] == "POST":
            pid = json.loads(r.get("body") or "{}").get("productId")
            rows[pid] = rows.get(pid, 0) + 1
    t.ok(set(rows) == {"p3", "p7", "p11"} and max(rows.values()) - min(rows.values()) <= 4,
         "load lifecycle: data rows handed out round-robin", rows)
    exp = summary_export(export)
    its = exp["metrics"].get("iterations", {}).get("count", 0)
    # a delete in flight when the schedule ends reaches the server but is not recorded
    t.ok(st["orders_deleted"] - 4 <= its <= st["orders_created"],
         "load lifecycle: every finished journey is an iteration (%s; %d deleted)"
         % (its, st["orders_deleted"]))
    no_secret(t, res, d, fx, "load lifecycle")


def case_token_renewed(t):
    """A token that expires is renewed ahead of time; a revoked one after its first 401."""
    d = h.tempdir()
    with kubestock(extra=["--kubestock-token-ttl", "1500ms"]) as fx:
        res = h.run_syncgate(["load", "-p", profile(fx, [lifecycle(think="50ms")], d,
                                                    stages=[{"duration": "4s", "target": 2}])],
                             timeout=40)
        st = stats(fx)
        toks = tokens_seen(fx.requests())
    t.eq(res.rc, 0, "token expiry: exit 0") or t.diag(res.explain())
    t.ok(st["tokens_issued"] >= 3 and st["unauthorized"] == 0,
         "token expiry: renewed ahead of expiry (%d tokens, %d 401s)"
         % (st["tokens_issued"], st["unauthorized"]))
    t.ok(len(toks) >= 3, "token expiry: requests used the renewed tokens (%d)" % len(toks))
    renewed = res.events("token_renewed")
    t.ok(renewed and all("ahead" in e.get("message", "") for e in renewed),
         "token expiry: token_renewed events say why", renewed[:2])

    with kubestock(extra=["--kubestock-revoke-after", "60"]) as fx:
        res = h.run_syncgate(["load", "-p", profile(fx, [lifecycle(think="20ms")], d,
                                                    stages=[{"duration": "3s", "target": 2}]),
                              "--set", "load.thresholds={}"], timeout=40)
        st = stats(fx)
    t.ok(st["tokens_issued"] >= 2 and st["unauthorized"] >= 1,
         "token revoked: a 401 renews the token (%d tokens, %d 401s)"
         % (st["tokens_issued"], st["unauthorized"]))
    # one renewal per refused token: a burst of 401s asks once
    t.ok(st["tokens_issued"] <= st["unauthorized"] + 1,
         "token revoked: never more renewals than refused tokens", st)
    ev = res.events("token_renewed")
    t.ok(any("401" in e.get("message", "") for e in ev), "token revoked: renewal after a 401",
         ev[:2])


def case_wrong_value(t):
    """The server answers PENDING; expecting SHIPPED fails that check and the verdict."""
    d = h.tempdir()
    with kubestock() as fx:
        res = h.run_syncgate(["smoke", "-p", profile(fx, [lifecycle(expect_status="SHIPPED")], d)])
    t.eq(res.rc, 99, "wrong value: exit 99") or t.diag(res.explain())
    t.eq(res.check_mark("create order json $.status"), False,
         "wrong value: the JSON check is ✗")
    t.eq(res.check_mark("create order json $.quantity"), True,
         "wrong value: the other JSON check is ✓")
    fails = [e for e in res.events("check") if e.get("check") == "create order json $.status"]
    t.ok(fails and fails[0].get("group") == "::order-lifecycle",
         "wrong value: a check event names the journey", fails)


def case_missing_capture(t):
    """A capture that finds nothing: the rest of the iteration is skipped and counted."""
    d = h.tempdir()
    with kubestock() as fx:
        export = os.path.join(d, "summary.json")
        res = h.run_syncgate(["load", "-p", profile(fx, [lifecycle(capture_path="$.orderId")], d,
                                                    stages=[{"duration": "1s", "target": 2}]),
                              "--summary-export", export], timeout=30)
        st = stats(fx)
        reqs = fx.requests()
    t.eq(res.rc, 99, "missing capture: exit 99 (the capture check fails)") or \
        t.diag(res.explain())
    t.ok(st["orders_created"] > 0 and not [r for r in reqs if r["method"] in ("GET", "DELETE")
                                           and r["path"].startswith("/api/orders/o")],
         "missing capture: no step after it was sent", st)
    t.ok(not [r for r in reqs if "${" in r["target"] or "%7B" in r["target"]],
         "missing capture: no placeholder ever reached the server")
    exp = summary_export(export)
    skipped = exp["metrics"].get("journey_skipped", {}).get("count", 0)
    t.ok(skipped == st["orders_created"] or abs(skipped - st["orders_created"]) <= 2,
         "missing capture: journey_skipped counts the skipped iterations (%s of %d)"
         % (skipped, st["orders_created"]))
    t.eq(res.check_mark("create order captures order_id"), False,
         "missing capture: the capture's check is ✗")


def case_weights(t):
    """Two journeys 3:1 by weight split the iterations accordingly."""
    d = h.tempdir()
    browse = {"name": "browse", "weight": 1, "think_time": "0s", "steps": [
        {"name": "list products", "service": "product", "path": "/api/products?limit=5",
         "expect": {"status": 200, "json": {"$[0].id": "p1"}}}]}
    read = {"name": "read", "weight": 3, "think_time": "0s", "steps": [
        {"name": "get product", "service": "product", "path": "/api/products/${data.products.id}",
         "expect": {"status": 200, "json": {"$.id": "${data.products.id}"}},
         "capture": {"supplier": "$.supplierId"}},
        {"name": "get supplier", "service": "product", "path": "/api/suppliers/${supplier}",
         "expect": {"status": 200}}]}
    with kubestock() as fx:
        res = h.run_syncgate(["load", "-p", profile(fx, [browse, read], d, auth=False,
                                                    stages=[{"duration": "2s", "target": 4}])],
                             timeout=30)
        reqs = fx.requests()
    t.eq(res.rc, 0, "weights: exit 0") or t.diag(res.explain())
    n_browse = len([r for r in reqs if r["path"] == "/api/products"])
    n_read = len([r for r in reqs if re.match(r"^/api/products/p\d+$", r["path"])])
    n_sup = len([r for r in reqs if r["path"].startswith("/api/suppliers/")])
    ratio = n_read / max(n_browse, 1)
    t.ok(n_browse > 50 and 2.7 <= ratio <= 3.3,
         "weights: 3:1 within 10%% (%d read, %d browse)" % (n_read, n_browse))
    t.ok(abs(n_sup - n_read) <= 4, "weights: the captured supplier was used (%d of %d)"
         % (n_sup, n_read))


def case_auth_refused(t):
    """A refused client stops the run with 116 before any journey request."""
    d = h.tempdir()
    with kubestock() as fx:
        prof = profile(fx, [lifecycle()], d)
        h.write_file("wrong-secret-0451\n", "client-secret", d)
        res = h.run_syncgate(["run", "-p", prof])
        reqs = fx.requests()
    t.eq(res.rc, 116, "auth refused: exit 116") or t.diag(res.explain())
    ev = res.event("auth_failed")
    t.ok(ev and "invalid_client" in ev.get("message", "") and "401" in ev["message"],
         "auth refused: one auth_failed line with the endpoint's error", ev)
    t.ok(not [r for r in reqs if r["path"].startswith("/api/orders") and r["method"] != "GET"],
         "auth refused: no journey request was sent")
    t.ok("wrong-secret-0451" not in res.stdout + res.stderr, "auth refused: the secret is not "
         "shown")

    with kubestock() as fx:
        prof = profile(fx, [lifecycle()], d, extra={"auth": {"oauth2_client_credentials": {
            "token_url": "http://127.0.0.1:%d/oauth2/token" % h.free_port(),
            "client_id": CLIENT_ID, "client_secret_file": os.path.join(d, "client-secret")}}})
        res = h.run_syncgate(["load", "-p", prof])
    t.eq(res.rc, 116, "auth unreachable: exit 116") or t.diag(res.explain())
    ev = res.event("auth_failed")
    t.ok(ev and "refused" in ev.get("message", ""), "auth unreachable: says it was refused", ev)


def main():
    t = h.Tap()
    if os.environ.get("SYNCGATE_WRAPPER"):
        # under valgrind (scripts/ci-extra.sh): the cases that judge behaviour, not counts
        t.run(case_smoke_lifecycle, case_wrong_value, case_auth_refused)
    else:
        t.run(case_smoke_lifecycle, case_load_lifecycle, case_token_renewed, case_wrong_value,
              case_missing_capture, case_weights, case_auth_refused)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
