#!/bin/sh
# bench-arrival.sh: how precisely and at what cost the open model starts iterations.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. nginx (Debian's
# nginx-light, its own config in a temporary directory) answers a small static
# response on 127.0.0.1 with its worker pinned to core 1; syncgate runs one
# engine thread pinned to core 0. For each rate, a constant-arrival-rate
# scenario of a one-request journey runs for the measurement's length, then a
# closed-model run (constant-vus, no think time) of the same length gives the
# CPU per request of the loop syncgate always had, on the same machine, in the
# same sitting.
#
# usage: scripts/bench-arrival.sh [-d SECONDS] [-s SYNCGATE] [RATE ...]
#   -d SECONDS   length of each measurement (default 10)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   RATE         iterations per second (default: 1000 20000)
# Needs: nginx-light, python3, taskset (util-linux), GNU time (/usr/bin/time), two CPUs.
#
# "lateness" is how long after its due time an iteration started (the
# iteration_lateness trend); "achieved" is iterations started / iterations due;
# "CPU us/req" is syncgate's user + system time per request; "closed" is the
# same for constant-vus at 50 VUs and "ratio" open / closed.
set -eu

DURATION=10
SYNCGATE=${SYNCGATE:-build/syncgate}
while getopts d:s:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    s) SYNCGATE=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
RATES=${*:-1000 20000}

die() { echo "bench-arrival: $*" >&2; exit 1; }
. "$(dirname "$0")/lib-bench.sh"
for tool in python3 taskset; do
    command -v $tool >/dev/null || die "$tool is missing"
done
[ -x "$(command -v nginx || echo /usr/sbin/nginx)" ] || die "nginx is missing (apt-get install nginx-light)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -x "$SYNCGATE" ] || die "$SYNCGATE is not built (meson setup build && meson compile -C build)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (one for nginx, one for syncgate)"
case $DURATION in '' | *[!0-9]*) die "-d wants whole seconds" ;; esac
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-arrival.XXXXXX")
NGINX_PID=
cleanup() {
    if [ -n "$NGINX_PID" ]; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_nginx "$TMP" || die "nginx did not start"

# profile FILE SCENARIO_YAML: one service at $URL, one engine thread, no thresholds to fail
profile() {
    cat >"$1" <<EOF
environment: bench
services:
  - {name: nginx, url: '$URL'}
load:
  think_time: 0s
  request_timeout: 10s
  threads: 1
  thresholds: {http_req_duration: ['p(99)<60000']}
  scenarios:
$2
EOF
}

# run FILE SECONDS: prints "reqs cpu_us_per_req late_p50_ms late_p99_ms achieved dropped failed"
run() {
    rm -f "$TMP/summary.json"
    taskset -c 0 /usr/bin/time -f '%U %S' -o "$TMP/cpu" "$SYNCGATE" load -p "$1" \
        --summary-export "$TMP/summary.json" --log-format json -q >"$TMP/sg.out" 2>"$TMP/sg.err" ||
        true
    [ -s "$TMP/summary.json" ] || die "syncgate wrote no summary: $(tail -n 3 "$TMP/sg.err")"
    python3 - "$TMP/summary.json" $(tail -n 1 "$TMP/cpu") <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = d["metrics"]
reqs = m["http_reqs"]["count"]
late = m.get("iteration_lateness", {})
sc = next(iter(d.get("scenarios", {}).values()), {})
cpu = (float(sys.argv[2]) + float(sys.argv[3])) * 1e6 / max(reqs, 1)
print(reqs, cpu, late.get("med", 0), late.get("p(99)", 0), sc.get("achieved_rate", 0),
      sc.get("dropped_iterations", 0), m.get("http_req_failed", {}).get("passes", 0))
PY
}

profile "$TMP/closed.yaml" "    closed: {executor: constant-vus, vus: 50, duration: ${DURATION}s}"
echo "syncgate: $("$SYNCGATE" version | head -n 1)"
echo "nginx on core 1; syncgate (one engine thread) on core 0; ${DURATION}s per run"
set -- $(run "$TMP/closed.yaml" "$DURATION")
CLOSED_CPU=$2
printf 'closed model (constant-vus, 50 VUs): %.0f req/s, %.1f us CPU per request\n\n' \
    "$(python3 -c "print($1 / $DURATION)")" "$CLOSED_CPU"
printf '%8s | %10s | %9s | %22s | %9s | %8s | %18s | %6s\n' rate "req/s" achieved \
    "lateness p50 / p99 ms" dropped failed "CPU us/req (ratio)" ""
printf '%s\n' "---------+------------+-----------+------------------------+-----------+----------+--------------------"
for rate in $RATES; do
    profile "$TMP/open.yaml" "    open: {executor: constant-arrival-rate, rate: $rate, time_unit: 1s, duration: ${DURATION}s, pre_allocated_vus: 100, max_vus: 2000}"
    set -- $(run "$TMP/open.yaml" "$DURATION")
    python3 - "$rate" "$DURATION" "$@" "$CLOSED_CPU" <<'PY'
import sys
rate, dur, reqs, cpu, p50, p99, ach, dropped, failed, closed = sys.argv[1:]
print("%8s | %10.0f | %8.2f%% | %9.3f / %9.3f | %9s | %8s | %9.1f (%5.2fx)"
      % (rate, float(reqs) / float(dur), 100 * float(ach), float(p50), float(p99), dropped,
         failed, float(cpu), float(cpu) / float(closed)))
PY
done
echo
echo "targets: p99 lateness <= 1 ms at 1000/s; achieved >= 99.5% with no drop while the server"
echo "         keeps up; CPU per request within 1.15x of the closed model"
