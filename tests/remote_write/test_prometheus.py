#!/usr/bin/env python3
"""Remote write into a real Prometheus (Debian's), checked through its query API.

Usage: test_prometheus.py float|native
  float   trend stats as float series; dashboard PromQL; exact request count
  native  native histograms (--enable-feature=native-histograms) and stale markers
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from promlib import Prometheus  # noqa: E402
from rwlib import check, main, run_driver  # noqa: E402


def value(result):
    return float(result[0]["value"][1])


def case_float():
    testid = "rw-float-%d-%d" % (os.getpid(), int(time.time()))
    with Prometheus() as prom:
        res, _, err = run_driver(prom.write_url, "--interval-ms", 200, "--tick-ms", 10,
                                 "--run-ms", 3000, "--testid", testid,
                                 "--label", "team=kubestock",
                                 "--trend-stats", "p(95),p(99),min,max,med,avg")
        check(res["pushes"] >= 5 and res["rejected"] == 0 and res["samples_dropped"] == 0 and
              res["samples_undelivered"] == 0, "push stats %s\n%s", res, err[-2000:])
        sel = '{testid="%s"}' % testid
        # Prometheus answers 204 even when it drops invalid series: look at what it stored.
        names = {s["__name__"] for s in prom.series(sel)}
        want = {"k6_http_reqs_total", "k6_http_req_failed_rate", "k6_checks_rate", "k6_vus",
                "k6_vus_max", "k6_iterations_total", "k6_data_sent_total",
                "k6_data_received_total", "k6_http_req_duration_p95", "k6_http_req_duration_p99",
                "k6_http_req_duration_min", "k6_http_req_duration_max",
                "k6_http_req_duration_med", "k6_iteration_duration_p95"}
        check(want <= names, "missing in Prometheus: %s", sorted(want - names))
        s = prom.series('k6_http_reqs_total{testid="%s",name="product"}' % testid)
        check(len(s) == 1, "product request series: %s", s)
        for label, v in (("instance", "driver-1"), ("environment", "staging"),
                         ("test_type", "load"), ("method", "GET"), ("status", "200"),
                         ("expected_response", "true"), ("scenario", "load"),
                         ("team", "kubestock")):
            check(s[0].get(label) == v, "label %s=%r, want %r", label, s[0].get(label), v)

        total = prom.wait_for('sum(k6_http_reqs_total{testid="%s"})' % testid)
        check(total and value(total) == res["requests"], "sum(k6_http_reqs_total) = %s, "
              "driver sent %d", total, res["requests"])
        q = {
            # k6 dashboard 19665
            "irate": 'sum(irate(k6_http_reqs_total{testid="%s"}[1m]))',
            "p95": 'k6_http_req_duration_p95{testid="%s",name="product"}',
            "p99": 'max(k6_http_req_duration_p99{testid="%s"})',
            "failed": 'avg(k6_http_req_failed_rate{testid="%s"})',
            "data": 'sum(rate(k6_data_received_total{testid="%s"}[1m]))',
            # the seed dashboard's panels, with its $environment / $test_type variables
            "success": 'avg(k6_checks_rate{testid="%s",environment="staging",test_type=~"load"})',
            "by_service": 'sum by (name) (rate(k6_http_reqs_total{testid="%s",'
                          'environment="staging"}[1m]))',
            "vus": 'sum(k6_vus{testid="%s",environment="staging",test_type=~"load"})',
            "med": 'k6_http_req_duration_med{testid="%s",name="product"}',
            "checks": 'k6_checks_rate{testid="%s"}',
        }
        got = {}
        for k, expr in q.items():
            r = prom.query(expr % testid)
            check(r, "no data for %s: %s", k, expr % testid)
            got[k] = r
        check(value(got["irate"]) > 0, "irate %s", got["irate"])
        check(0.001 <= value(got["p95"]) <= 0.202, "p95 in seconds: %s", got["p95"])
        check(0.001 <= value(got["med"]) <= value(got["p95"]), "med %s", got["med"])
        fail = res["failed"] / res["requests"]
        check(0 < value(got["failed"]) < 1, "failed rate %s (driver %.3f)", got["failed"], fail)
        check(0 < value(got["success"]) < 1, "success rate %s", got["success"])
        check(value(got["vus"]) == 5, "vus %s", got["vus"])
        check({r["metric"].get("name") for r in got["by_service"]} == {"product", "inventory"},
              "rate by service %s", got["by_service"])
        check({r["metric"].get("check") for r in got["checks"]} ==
              {"product status 200", "inventory status 200"}, "checks %s", got["checks"])


def case_native():
    testid = "rw-native-%d-%d" % (os.getpid(), int(time.time()))
    with Prometheus(native=True) as prom:
        res, _, err = run_driver(prom.write_url, "--interval-ms", 200, "--tick-ms", 10,
                                 "--run-ms", 3000, "--testid", testid, "--native", "--stale")
        check(res["pushes"] >= 5 and res["rejected"] == 0 and res["samples_dropped"] == 0 and
              res["samples_undelivered"] == 0, "push stats %s\n%s", res, err[-2000:])
        names = {s["__name__"] for s in prom.series('{testid="%s"}' % testid)}
        check("k6_http_req_duration_seconds" in names and "k6_http_req_duration_p95" not in names,
              "series %s", sorted(names))
        # k6 dashboard 18030
        expr = ('histogram_quantile(0.95, sum(rate(k6_http_req_duration_seconds{testid="%s"}'
                '[1m])))' % testid)
        r = prom.wait_for(expr)
        check(r and 0.001 <= value(r) <= 0.25, "%s -> %s", expr, r)
        r = prom.query('sum(histogram_count(rate(k6_http_req_duration_seconds{testid="%s",'
                       'name="product"}[1m])))' % testid)
        check(r and value(r) > 0, "histogram_count(rate) %s", r)
        # Stale markers: instant selectors are empty now, range functions still see data.
        r = prom.query('k6_vus{testid="%s"}' % testid)
        check(r == [], "k6_vus still current after stale markers: %s", r)
        r = prom.query('k6_http_req_duration_seconds{testid="%s"}' % testid)
        check(r == [], "histogram still current after stale markers: %s", r)
        r = prom.query('max_over_time(k6_vus{testid="%s"}[5m])' % testid)
        check(r and value(r) == 5, "max_over_time(k6_vus) %s", r)
        total = prom.query('sum(max_over_time(k6_http_reqs_total{testid="%s"}[5m]))' % testid)
        check(total and value(total) == res["requests"], "request total %s vs %d", total,
              res["requests"])


if __name__ == "__main__":
    sys.exit(main({"float": case_float, "native": case_native}, sys.argv))
