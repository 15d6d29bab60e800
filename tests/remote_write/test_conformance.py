#!/usr/bin/env python3
"""Remote-write conformance: rw_push (through rwdriver) against the decoding receiver.

Usage: test_conformance.py CASE   (meson registers one test per case)
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rwlib import (STALE_BITS, LABEL_RE, NAME_RE, Fixture, accepted, all_series,  # noqa: E402
                   check, driver_cmd, free_port, headers, key, labels, last_values, main,
                   name, parse_driver, run_driver)

FAST = ["--interval-ms", 100, "--tick-ms", 10, "--run-ms", 1200, "--drain-ms", 3000]


def events(logs, event):
    return [e for e in logs if e.get("event") == event]


def per_series_ts_increasing(records):
    last = {}
    for r, s in all_series(records):
        for smp in s["samples"]:
            k = key(s)
            check(smp["ts"] > last.get(k, -1), "push %d: %s ts %d not after %d", r["index"],
                  name(s), smp["ts"], last.get(k, -1))
            last[k] = smp["ts"]
        for h in s["histograms"]:
            k = key(s)
            check(h["ts"] > last.get(k, -1), "push %d: histogram ts not increasing", r["index"])
            last[k] = h["ts"]


def final_requests(records):
    return sum(last_values(records, "k6_http_reqs_total").values())


def case_headers():
    with Fixture() as fx:
        res, logs, _ = run_driver(fx.url, *FAST, "--header", "X-Scope-OrgID=tenant1",
                                  "--header", "Content-Type=text/plain",
                                  "--header", "User-Agent=evil/1.0",
                                  "--header", "content-encoding=gzip",
                                  "--header", "X-Prometheus-Remote-Write-Version=2.0.0")
    recs = fx.records()
    check(len(recs) >= 3, "expected several pushes, got %d", len(recs))
    for r in recs:
        h = headers(r)
        check(r["method"] == "POST" and r["path"] == "/api/v1/write", "method/path %s %s",
              r["method"], r["path"])
        check(h.get("content-encoding") == ["snappy"], "content-encoding %s",
              h.get("content-encoding"))
        check(h.get("content-type") == ["application/x-protobuf"], "content-type %s",
              h.get("content-type"))
        check(h.get("x-prometheus-remote-write-version") == ["0.1.0"], "version header %s",
              h.get("x-prometheus-remote-write-version"))
        ua = h.get("user-agent", [])
        check(len(ua) == 1 and ua[0].startswith("syncgate/") and len(ua[0]) > 9,
              "user-agent %s", ua)
        check(h.get("x-scope-orgid") == ["tenant1"], "user header missing: %s", h)
        check("expect" not in h and "authorization" not in h, "unexpected headers %s", h)
        check(r["framed"] is False and r["error"] is None, "body not a snappy block: %s",
              r.get("error"))
        check(r["body_len"] > 0 and r["series"], "empty push")
    check(res["pushes"] == len(recs) and res["rc"] == 0, "stats %s", res)
    check(events(logs, "remote_write_start") and events(logs, "remote_write_done"),
          "start/done events missing")


def case_auth():
    with Fixture() as fx:
        _, _, err = run_driver(fx.url, *FAST, "--username", "alice",
                               "--password", "s3cr3t-pass", "--header", "Authorization=evil")
    for r in fx.records():
        check(headers(r).get("authorization") == ["Basic YWxpY2U6czNjcjN0LXBhc3M="],
              "basic auth %s", headers(r).get("authorization"))
    check("s3cr3t-pass" not in err and "YWxpY2U6" not in err, "password in logs")
    with Fixture(script="0=500") as fx:
        _, _, err = run_driver("http://bob:urlpass@127.0.0.1:%d/api/v1/write?token=qs" % fx.port,
                               *FAST, "--bearer", "tok-s3cr3t", "--username", "alice",
                               "--password", "s3cr3t-pass")
    for r in fx.records():
        check(headers(r).get("authorization") == ["Bearer tok-s3cr3t"], "bearer %s",
              headers(r).get("authorization"))
    for secret in ("tok-s3cr3t", "s3cr3t-pass", "urlpass", "token=qs"):
        check(secret not in err, "%s appears in the logs", secret)


def case_series():
    stats = "p(95),p(99),min,max,avg,med,count,sum,p(99.9)"
    with Fixture() as fx:
        res, _, _ = run_driver(fx.url, *FAST, "--trend-stats", stats, "--label", "team=kubestock",
                               "--label", "bad-name=x", "--label", "empty=")
    recs = fx.records()
    names = set()
    for r, s in all_series(recs):
        l = s["labels"]
        ln = [p[0] for p in l]
        check(ln == sorted(ln, key=lambda x: x.encode()) and len(set(ln)) == len(ln),
              "labels not sorted/unique: %s", ln)
        d = labels(s)
        check(NAME_RE.match(d["__name__"]), "bad metric name %s", d["__name__"])
        for n, v in l:
            check(n == "__name__" or (LABEL_RE.match(n) and not n.startswith("__")),
                  "bad label name %r", n)
            check(v != "", "empty value for %s", n)
        for n, v in (("testid", "rwtest"), ("instance", "driver-1"), ("environment", "staging"),
                     ("team", "kubestock"), ("bad_name", "x")):
            check(d.get(n) == v, "%s: label %s=%r, want %r", d["__name__"], n, d.get(n), v)
        check("url" not in d and "empty" not in d, "unexpected label in %s", d)
        check(len(s["samples"]) == 1 and not s["histograms"], "one float sample per series")
        check(d.get("test_type") == "load", "test_type on %s", d)
        if d["__name__"] not in ("k6_vus", "k6_vus_max"):
            check(d.get("scenario") == "load", "scenario on %s", d)
        else:
            check("scenario" not in d, "gauge tags %s", d)
        names.add(d["__name__"])
    want = {"k6_http_reqs_total", "k6_http_req_failed_rate", "k6_checks_rate", "k6_vus",
            "k6_vus_max", "k6_iterations_total", "k6_data_sent_total", "k6_data_received_total"}
    for trend in ("http_req_duration", "http_req_blocked", "http_req_connecting",
                  "http_req_tls_handshaking", "http_req_sending", "http_req_waiting",
                  "http_req_receiving", "iteration_duration"):
        for st in ("p95", "p99", "min", "max", "avg", "med", "count", "sum", "p999"):
            want.add("k6_%s_%s" % (trend, st))
    check(want <= names, "missing series: %s", sorted(want - names))
    check(not [n for n in names if n.endswith("_seconds")], "histograms without --native")
    fail = last_values(recs, "k6_http_req_failed_rate", name="inventory")
    check(fail and all(v == 1.0 for v in fail.values()), "inventory failed rate %s", fail)
    ok_rate = last_values(recs, "k6_http_req_failed_rate", name="product")
    check(ok_rate and all(v == 0.0 for v in ok_rate.values()), "product failed rate %s", ok_rate)
    mx = last_values(recs, "k6_http_req_duration_max", name="product")
    mn = last_values(recs, "k6_http_req_duration_min", name="product")
    check(all(0.001 <= v <= 0.2015 for v in list(mx.values()) + list(mn.values())),
          "durations not in seconds: %s %s", mx, mn)
    cnt = last_values(recs, "k6_http_req_duration_count", name="product")
    check(sum(cnt.values()) == res["requests"] - res["failed"], "count stat %s vs %s", cnt, res)
    check(final_requests(recs) == res["requests"], "k6_http_reqs_total %s != %s",
          final_requests(recs), res["requests"])
    its = last_values(recs, "k6_iterations_total")
    check(sum(its.values()) == res["iterations"], "iterations %s != %s", its, res["iterations"])


def case_timestamps():
    with Fixture() as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 20, "--tick-ms", 2, "--run-ms", 1500)
    recs = accepted(fx.records())
    check(len(recs) >= 20, "expected many pushes, got %d", len(recs))
    per_series_ts_increasing(recs)
    last = {}
    for r, s in all_series(recs):
        if name(s).endswith("_total"):
            v = float(s["samples"][0]["v"])
            check(v >= last.get(key(s), 0), "counter went down")
            last[key(s)] = v
    check(final_requests(recs) == res["requests"], "final count %s != %s",
          final_requests(recs), res["requests"])


def case_ordering():
    with Fixture(script="1=delay:1500,3=delay:700") as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 100, "--tick-ms", 10, "--run-ms", 2500,
                               "--drain-ms", 5000)
    recs = fx.records()
    check(len(recs) >= 6, "pushes %d", len(recs))
    for a, b in zip(recs, recs[1:]):
        check(b["t_ms"] >= a["done_ms"] - 1, "push %d arrived before %d was answered",
              b["index"], a["index"])
    per_series_ts_increasing(recs)
    check(res["samples_undelivered"] == 0 and res["samples_dropped"] == 0, "lost: %s", res)
    check(final_requests(recs) == res["requests"], "final count")
    check(res["max_stall_ms"] < 100, "producer stalled %.1f ms", res["max_stall_ms"])


def resend(status):
    with Fixture(script="0=%d,1=%d" % (status, status)) as fx:
        res, logs, _ = run_driver(fx.url, *FAST)
    recs = fx.records()
    check(recs[0]["status"] == status and recs[1]["status"] == status, "script not applied")
    check(recs[0]["body_sha"] == recs[1]["body_sha"] == recs[2]["body_sha"],
          "resent body differs")
    check(recs[0]["series"] == recs[2]["series"], "resent samples differ")
    check(recs[2]["status"] == 204 and recs[3]["body_sha"] != recs[2]["body_sha"],
          "next push not new")
    check(res["retries"] == 2 and res["rc"] == 0 and res["samples_dropped"] == 0,
          "stats %s", res)
    errs = events(logs, "remote_write_error")
    check(len(errs) == 2 and errs[0].get("status") == status, "error events %s", errs)
    check(events(logs, "remote_write_resumed"), "no resumed event")
    per_series_ts_increasing(accepted(recs))
    check(final_requests(recs) == res["requests"], "final count")


def case_resend_500():
    resend(500)


def case_resend_503():
    resend(503)


def case_no_resend_400():
    body = 'out of order sample: {"x": 1}\ttab'
    with Fixture(script="0=400:" + body) as fx:
        res, logs, _ = run_driver(fx.url, *FAST)
    recs = fx.records()
    check(recs[0]["status"] == 400, "script not applied")
    check(recs[1]["body_sha"] != recs[0]["body_sha"], "400 body was resent")
    first = {key(s): s["samples"][0]["ts"] for s in recs[0]["series"]}
    for s in recs[1]["series"]:
        if key(s) in first:
            check(s["samples"][0]["ts"] > first[key(s)], "push after 400 reuses timestamps")
    rej = events(logs, "remote_write_rejected")
    check(len(rej) == 1 and rej[0].get("body") == body and rej[0].get("status") == 400,
          "rejected event %s", rej)
    check(res["rejected"] == 1 and res["retries"] == 0 and res["samples_dropped"] > 0 and
          res["rc"] == -5, "stats %s", res)
    check(final_requests(recs) == res["requests"], "final count")


def case_backoff():
    n = 8
    script = ",".join("%d=500" % i for i in range(n))
    with Fixture(script=script) as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 100, "--tick-ms", 10, "--run-ms", 2500,
                               "--backoff-min-ms", 40, "--backoff-max-ms", 300)
    recs = fx.records()
    check(len(recs) > n and all(r["body_sha"] == recs[0]["body_sha"] for r in recs[:n + 1]),
          "retries did not resend the same body")
    waits = [recs[i + 1]["t_ms"] - recs[i]["done_ms"] for i in range(n)]
    for i, w in enumerate(waits):
        d = min(40 * 2 ** i, 300)
        check(d / 2 - 2 <= w <= d + 120, "wait %d = %.1f ms outside [%d, %d]", i + 1, w,
              d // 2, d)
    check(max(waits) <= 420 and max(waits) >= 140, "waits %s not capped near 300 ms", waits)
    check(waits[3] > waits[0] * 2, "waits not growing: %s", waits)
    check(res["retries"] == n and res["samples_dropped"] == 0, "stats %s", res)


def case_retry_after():
    with Fixture(script="0=429:2,1=429") as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 100, "--tick-ms", 10, "--run-ms", 3000,
                               "--backoff-min-ms", 20, "--backoff-max-ms", 100)
    recs = fx.records()
    w1 = recs[1]["t_ms"] - recs[0]["done_ms"]
    w2 = recs[2]["t_ms"] - recs[1]["done_ms"]
    check(recs[0]["body_sha"] == recs[1]["body_sha"] == recs[2]["body_sha"], "429 not resent")
    check(1990 <= w1 <= 2600, "Retry-After: 2 not honoured (%.0f ms)", w1)
    check(w2 < 300, "429 without Retry-After should back off briefly (%.0f ms)", w2)
    check(res["retries"] == 2 and res["samples_dropped"] == 0, "stats %s", res)


def floor_waits(ra_values, backoff_min=40, backoff_max=300, retry_after_max=500):
    """429 answers with each Retry-After value in turn, then 204: the waits between tries."""
    script = ",".join("%d=429:%s" % (i, v) for i, v in enumerate(ra_values))
    with Fixture(script=script) as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 100, "--tick-ms", 10, "--run-ms", 2500,
                               "--backoff-min-ms", backoff_min, "--backoff-max-ms", backoff_max,
                               "--retry-after-max-ms", retry_after_max)
    recs = fx.records()
    n = len(ra_values)
    check(len(recs) > n, "expected %d refusals and a delivery, got %d requests", n, len(recs))
    check(all(r["body_sha"] == recs[0]["body_sha"] for r in recs[:n + 1]),
          "the refused body was not the one sent again")
    check(res["retries"] == n and res["samples_dropped"] == 0, "stats %s", res)
    return [recs[i + 1]["t_ms"] - recs[i]["done_ms"] for i in range(n)]


def case_retry_after_floor():
    # Retry-After that asks for less than the backoff: none may shorten it. Each wait is
    # at least the jittered backoff's lower bound for its step (half the step: 20, 40,
    # 80, 150, 150 ms...); measured at the receiver, so a slow machine only lengthens it.
    past = "Thu, 01 Jan 1970 00:00:00 GMT".replace(",", "%2C")
    values = ["0", "0", past, "-5", "1.5e-9", "0", "garbage", "0"]
    waits = floor_waits(values)
    for i, w in enumerate(waits):
        floor = min(40 * 2 ** i, 300) / 2
        check(w >= floor - 1, "wait %d after Retry-After %r = %.1f ms, under the backoff "
              "floor %d ms", i + 1, values[i], w, floor)


def case_retry_after_cap():
    # A Retry-After beyond retry_after_max (here 500 ms) waits the cap, not the ask;
    # 2 s asked under a 500 ms cap as seconds and as a date both wait about 500 ms.
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3600))
    values = ["99999999999999999999", future.replace(",", "%2C"), "2"]
    waits = floor_waits(values, retry_after_max=500)
    for i, w in enumerate(waits):
        check(490 <= w <= 1000, "wait %d after Retry-After %r = %.1f ms, not the 500 ms cap",
              i + 1, values[i], w)


def case_timeout():
    with Fixture(script="0=delay:1000") as fx:
        res, _, _ = run_driver(fx.url, *FAST, "--timeout-ms", 300, "--backoff-min-ms", 20)
    recs = fx.records()
    check(len(recs) >= 2 and recs[1]["body_sha"] == recs[0]["body_sha"],
          "timed-out push not resent")
    check(res["retries"] >= 1 and res["samples_undelivered"] == 0, "stats %s", res)
    check(final_requests(recs) == res["requests"], "final count")


def case_stale():
    with Fixture() as fx:
        res, _, _ = run_driver(fx.url, *FAST, "--stale")
    recs = accepted(fx.records())
    last = recs[-1]
    before = {}
    for r in recs[:-1]:
        for s in r["series"]:
            for smp in s["samples"]:
                check(smp["bits"] != STALE_BITS, "stale marker before the end")
                before[key(s)] = smp["ts"]
    stale = {}
    for s in last["series"]:
        check(len(s["samples"]) == 1 and s["samples"][0]["bits"] == STALE_BITS,
              "final push holds a non-stale sample: %s", s["samples"])
        stale[key(s)] = s["samples"][0]["ts"]
    check(set(stale) == set(before), "stale markers for %d series, %d sent", len(stale),
          len(before))
    for k, ts in stale.items():
        check(ts > before[k], "stale marker not after the last sample")
    check(res["samples_undelivered"] == 0 and res["rc"] == 0, "stats %s", res)


def case_no_stale():
    with Fixture() as fx:
        run_driver(fx.url, *FAST)
    for r, s in all_series(fx.records()):
        for smp in s["samples"]:
            check(smp["bits"] != STALE_BITS and smp["v"] != "NaN", "NaN sent without stale on")


def run_receiver_late(down_s, *args):
    """Run the driver against a port whose receiver only starts after down_s seconds.
    Returns (driver result, log events, received records, fixture)."""
    port = free_port()
    url = "http://127.0.0.1:%d/api/v1/write" % port
    proc = subprocess.Popen(driver_cmd(url, *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fx = Fixture(port=port)
    try:
        time.sleep(down_s)
        fx.start()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fx.stop()
    res, logs, _ = parse_driver(out, err)
    return res, logs, fx.records(), fx


def case_down_then_up():
    res, logs, recs, fx = run_receiver_late(1.2, "--interval-ms", 100, "--tick-ms", 10,
                                            "--run-ms", 3000, "--backoff-max-ms", 300,
                                            "--drain-ms", 5000)
    check(res["retries"] >= 1 and res["samples_undelivered"] == 0 and
          res["samples_dropped"] == 0 and res["rc"] == 0, "stats %s", res)
    first_ts = min(s["samples"][0]["ts"] for s in recs[0]["series"])
    check(first_ts < fx.started_wall_ms - 500, "the oldest push was not delivered first")
    per_series_ts_increasing(recs)
    check(final_requests(recs) == res["requests"], "final count")
    check(events(logs, "remote_write_resumed"), "no resumed event")
    errs = events(logs, "remote_write_error")
    check(errs and "error" in errs[0], "connection errors not logged")


def case_bounded_queue():
    cap = 20000  # ~10 bodies: 0.5 s of pushes, more than one backoff wait (<= 200 ms)
    res, logs, recs, fx = run_receiver_late(2.0, "--interval-ms", 50, "--tick-ms", 10,
                                            "--run-ms", 3000, "--backoff-max-ms", 200,
                                            "--queue-bytes", cap)
    check(res["queue_dropped"] > 0 and res["samples_dropped"] > 0 and res["rc"] == -5,
          "stats %s", res)
    check(events(logs, "remote_write_queue_full"), "no queue_full event")
    # Dropping the waiting head must not reset the backoff: ~2 s down, waits of 100..200 ms.
    check(res["retries"] <= 30, "%d retries in 2 s: backoff reset by queue drops", res["retries"])
    # Bodies holding samples from before the receiver came up waited in the queue.
    backlog = [r for r in recs
               if min(s["samples"][0]["ts"] for s in r["series"]) < fx.started_wall_ms]
    check(backlog, "no backlog delivered")
    check(sum(r["body_len"] for r in backlog) <= cap + max(r["body_len"] for r in backlog),
          "backlog of %d bytes exceeds the queue bound", sum(r["body_len"] for r in backlog))
    per_series_ts_increasing(recs)
    check(final_requests(recs) == res["requests"], "final value lost after queue drops: %s vs %s",
          final_requests(recs), res["requests"])


def case_drain_bound():
    with Fixture(default=503) as fx:
        res, _, _ = run_driver(fx.url, "--interval-ms", 100, "--tick-ms", 10, "--run-ms", 800,
                               "--drain-ms", 600, "--backoff-max-ms", 200)
    check(res["pushes"] == 0 and res["samples_undelivered"] > 0 and res["rc"] == -5,
          "stats %s", res)
    check(res["stop_ms"] < 600 + 400, "stop took %.0f ms with a 600 ms drain", res["stop_ms"])
    check(len(fx.records()) >= 3, "no retries seen")


def case_native():
    with Fixture() as fx:
        res, _, _ = run_driver(fx.url, *FAST, "--native", "--stale")
    recs = accepted(fx.records())
    names = {name(s) for r, s in all_series(recs)}
    check("k6_http_req_duration_seconds" in names and "k6_iteration_duration_seconds" in names,
          "native series missing: %s", names)
    check(not [n for n in names if n.startswith(("k6_http_req_duration_", "k6_iteration_duration_"))
               and not n.endswith("_seconds")], "stat series present: %s", sorted(names))
    product = None
    for r, s in all_series(recs[:-1]):
        if name(s).endswith("_seconds"):
            check(not s["samples"] and len(s["histograms"]) == 1, "histogram series shape")
            h = s["histograms"][0]
            check(h["schema"] == 3 and h["negative_spans"] == 0, "schema %s", h["schema"])
            total = h["zero_count"]
            c = 0
            for d in h["deltas"]:
                c += d
                check(c > 0, "bucket count not positive")
                total += c
            check(total == h["count"], "buckets %d != count %d", total, h["count"])
            check(sum(sp[1] for sp in h["spans"]) == len(h["deltas"]), "spans vs deltas")
            if name(s) == "k6_http_req_duration_seconds" and labels(s).get("name") == "product":
                product = h
    check(product and product["count"] == res["requests"] - res["failed"],
          "histogram count %s vs %s", product and product["count"], res)
    for s in recs[-1]["series"]:
        check(s["samples"] and s["samples"][0]["bits"] == STALE_BITS, "stale marker missing")
    check(res["rejected"] == 0 and res["rc"] == 0, "stats %s", res)


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}

if __name__ == "__main__":
    sys.exit(main(CASES, sys.argv))
