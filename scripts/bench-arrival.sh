#!/bin/sh
# bench-arrival.sh: how precisely and at what cost the open model starts iterations.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. nginx (Debian's
# nginx-light, its own config in a temporary directory) answers a small static
# response on 127.0.0.1 with its worker pinned to core 1; syncgate runs one
# engine thread pinned to core 0. For each rate, a constant-arrival-rate
# scenario of a one-request journey runs for the measurement's length, then a
# closed-model run at about the same request rate (rate/100 VUs, each waiting
# 10 ms between iterations) gives the CPU per request of the loop syncgate
# always had, on the same machine, in the same sitting. The two do not wake
# alike: closed VUs fall into step (one waiting on another's turn is pushed
# to the same instant) and share wake-ups, while the open model's arrivals are
# spread evenly by design and each one wakes the thread; where a wake-up is
# dear (a virtual machine) that difference is most of the ratio. A closed run without think time (as fast as it goes) is printed first
# for scale: a loop that never sleeps pays no wake-ups, so its CPU per request
# is the floor, not a peer.
#
# usage: scripts/bench-arrival.sh [-d SECONDS] [-s SYNCGATE] [RATE ...]
#   -d SECONDS   length of each measurement (default 10)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   -r N         runs of each measurement, closed and open in turn (default 3); the
#                table has their medians, and the range of the CPU ratio
#   RATE         iterations per second (default: 1000 20000)
# Needs: nginx-light, python3, taskset (util-linux), GNU time (/usr/bin/time), two CPUs.
#
# Each rate runs twice in the open model: from a standing start ("rate"), and
# ("rate ramped") ramping from 0 to the rate over 1 s first, as a real profile
# would, so that the VUs past the pre-allocated 100 open their connections
# while arrivals are still sparse; its figures include the ramp.
#
# "lateness" is how long after its due time an iteration started (the
# iteration_lateness trend); "achieved" is iterations started / iterations due;
# "CPU us/req" is syncgate's user + system time per request, open and closed (each
# the median of its runs); "ratio" is the median of open / closed over the runs,
# with their range.
set -eu

DURATION=10
REPEAT=3
SYNCGATE=${SYNCGATE:-build/syncgate}
while getopts d:r:s:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) REPEAT=$OPTARG ;;
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
case $REPEAT in '' | *[!0-9]* | 0) die "-r wants a count" ;; esac
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

# profile FILE SCENARIO_YAML [THINK]: one service at $URL, one engine thread, no thresholds
# to fail
profile() {
    cat >"$1" <<EOF
environment: bench
services:
  - {name: nginx, url: '$URL'}
load:
  think_time: ${3:-0s}
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
echo "nginx on core 1; syncgate (one engine thread) on core 0; ${DURATION}s per run, medians of $REPEAT"
set -- $(run "$TMP/closed.yaml" "$DURATION")
printf 'closed model as fast as it goes (50 VUs, no think time): %.0f req/s, %.1f us CPU per request\n\n' \
    "$(python3 -c "print($1 / $DURATION)")" "$2"
printf '%15s | %10s | %9s | %22s | %7s | %6s | %10s | %s\n' rate "req/s" achieved \
    "lateness p50 / p99 ms" dropped failed "closed r/s" "CPU us/req open / closed | ratio (range)"
printf '%s\n' "----------------+------------+-----------+------------------------+---------+--------+------------+-------------------"
for rate in $RATES; do
    vus=$((rate / 100)); [ "$vus" -ge 1 ] || vus=1
    profile "$TMP/closed.yaml" "    closed: {executor: constant-vus, vus: $vus, duration: ${DURATION}s}" 10ms
    profile "$TMP/open.yaml" "    open: {executor: constant-arrival-rate, rate: $rate, time_unit: 1s, duration: ${DURATION}s, pre_allocated_vus: 100, max_vus: 2000}"
    profile "$TMP/warm.yaml" "    open: {executor: ramping-arrival-rate, start_rate: 0, time_unit: 1s, stages: [{duration: 1s, target: $rate}, {duration: ${DURATION}s, target: $rate}], pre_allocated_vus: 100, max_vus: 2000}"
    : >"$TMP/rows"
    i=0
    while [ "$i" -lt "$REPEAT" ]; do # in turn: drift in the machine hits all three
        echo "$(run "$TMP/closed.yaml" "$DURATION") $(run "$TMP/open.yaml" "$DURATION")" \
            "$(run "$TMP/warm.yaml" "$DURATION")" >>"$TMP/rows"
        i=$((i + 1))
    done
    python3 - "$rate" "$DURATION" "$TMP/rows" <<'PY'
import statistics, sys
rate, dur, rows = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = [[float(x) for x in line.split()] for line in open(rows) if line.strip()]
# each row: closed, open, open after a ramp, each "reqs cpu p50 p99 achieved dropped failed"
med = lambda k: statistics.median(r[k] for r in runs)
for label, o, secs in ((rate, 7, dur), (rate + " ramped", 14, dur + 0.5)):
    ratios = sorted(r[o + 1] / r[1] for r in runs)
    print("%15s | %10.0f | %8.2f%% | %9.3f / %9.3f | %7.0f | %6.0f | %10.0f | %5.1f / %5.1f | %5.2fx (%.2f-%.2f)"
          % (label, med(o) / secs, 100 * med(o + 4), med(o + 2), med(o + 3), med(o + 5),
             med(o + 6), med(0) / dur, med(o + 1), med(1), statistics.median(ratios),
             ratios[0], ratios[-1]))
PY
done
echo
echo "targets: p99 lateness <= 1 ms at 1000/s; achieved >= 99.5% with no drop while the server"
echo "         keeps up; CPU per request within 1.15x of the closed model at the same rate"
