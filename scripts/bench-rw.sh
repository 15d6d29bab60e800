#!/bin/sh
# bench-rw.sh: what remote write costs syncgate's load phase, measured in one sitting.
#
# A benchmark, not a test: it prints numbers and asserts nothing. nginx (Debian's
# nginx-light, own config in a temporary directory) serves a small static response
# on 127.0.0.1 and Debian's Prometheus receives remote write, both pinned to core 1;
# syncgate (one engine thread) is pinned to core 0. For each VU count, rounds of
# `syncgate load` alternate remote write off and on (off first in odd rounds, on
# first in even ones, so drift hits both alike) with no think time.
#
# With -R the receiver is not Prometheus but one that refuses every push at once
# (the project's rwfixture answering 429 with Retry-After: 0, on core 1): what a
# receiver that never accepts costs the load, and how often it is asked again.
#
# usage: scripts/bench-rw.sh [-d SECONDS] [-r ROUNDS] [-i INTERVAL] [-H] [-R] [-v] [-s SYNCGATE] [VUS ...]
#   -d SECONDS   length of each run (default 10)
#   -r ROUNDS    off/on pairs per VU count (default 2); the table shows medians
#   -i INTERVAL  K6_PROMETHEUS_RW_PUSH_INTERVAL when on (default 5s, k6's)
#   -H           native histograms instead of trend stats when on
#   -R           push to a receiver refusing every push (429, Retry-After: 0) when on;
#                the "samples" column then shows the pushes it got per second, and
#                "in Prom" is "-" (rwfixture: $RWFIXTURE, else next to the binary)
#   -v           also print every run (mode, req/s, KiB, CPU us/req, samples, in Prom) to stderr
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   VUS          VU counts (default: 50 500)
# Trend stats when on: the shipped Job's "p(95),p(99),med,min,max,avg".
# Needs: nginx-light, prometheus, python3, taskset (util-linux), GNU time
# (package "time", /usr/bin/time) and at least two CPUs.
#
# Columns: req/s from the JSON summary (requests / run length); peak RSS of the
# whole process as /usr/bin/time reports it; CPU = user+sys per request; "in Prom"
# says whether sum(k6_http_reqs_total{testid=...}) in Prometheus equals the
# summary's request count after the run (yes/no, per round).
set -eu

DURATION=10
ROUNDS=2
INTERVAL=5s
NATIVE=false
REFUSE=false
VERBOSE=false
SYNCGATE=${SYNCGATE:-build/syncgate}
while getopts d:r:i:HRvs:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    i) INTERVAL=$OPTARG ;;
    H) NATIVE=true ;;
    R) REFUSE=true ;;
    v) VERBOSE=true ;;
    s) SYNCGATE=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
VUS=${*:-50 500}

die() { echo "bench-rw: $*" >&2; exit 1; }
. "$(dirname "$0")/lib-bench.sh"
command -v python3 >/dev/null || die "python3 is missing"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
[ -x "$PROMETHEUS" ] || die "prometheus is missing (apt-get install prometheus)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -x "$SYNCGATE" ] || die "$SYNCGATE is not built (meson setup build && meson compile -C build)"
RWFIXTURE=${RWFIXTURE:-$(dirname "$SYNCGATE")/tests/remote_write/rwfixture}
[ "$REFUSE" = false ] || [ -x "$RWFIXTURE" ] ||
    die "-R: $RWFIXTURE is not built (meson compile -C $(dirname "$SYNCGATE")), or set RWFIXTURE"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (one for the servers, one for syncgate)"
case $DURATION in '' | *[!0-9]*) die "-d wants whole seconds" ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) die "-r wants a positive number" ;; esac
[ "$DURATION" -le 600 ] || die "-d: at most 600 s per run"
[ "$ROUNDS" -le 10 ] || die "-r: at most 10 rounds"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-rw.XXXXXX")
NGINX_PID=
PROM_PID=
RW_PID=
cleanup() {
    for pid in $NGINX_PID $PROM_PID $RW_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_http URL WHAT LOG: poll until URL answers 200 (10 s at most)
wait_http() {
    i=0
    until python3 -c "import urllib.request, sys
sys.exit(0 if urllib.request.urlopen('$1', timeout=1).status == 200 else 1)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || die "$2 did not start: $(tail -n 5 "$3" 2>/dev/null)"
        sleep 0.1
    done
}

start_nginx "$TMP" || die "nginx did not start"

PROM_PORT=$(free_port)
PROM="http://127.0.0.1:$PROM_PORT"
printf 'global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n' >"$TMP/prometheus.yml"
FEATURES=
[ "$NATIVE" = true ] && FEATURES=--enable-feature=native-histograms
# shellcheck disable=SC2086
taskset -c 1 "$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
    --log.level=warn $FEATURES >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!
wait_http "$PROM/-/ready" prometheus "$TMP/prometheus.log"
WRITE_URL="$PROM/api/v1/write"
if [ "$REFUSE" = true ]; then
    taskset -c 1 "$RWFIXTURE" --log "$TMP/refused.jsonl" --port-file "$TMP/rw.port" \
        --default 429:0 >"$TMP/rwfixture.log" 2>&1 &
    RW_PID=$!
    i=0
    until [ -s "$TMP/rw.port" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || die "rwfixture did not start: $(cat "$TMP/rwfixture.log")"
        sleep 0.1
    done
    WRITE_URL="http://127.0.0.1:$(cat "$TMP/rw.port")/api/v1/write"
fi

write_profile "$TMP/profile.yaml" 1 "metrics:
  labels: {team: kubestock}"

# one MODE VUS ROUND: prints "req/s peak_kib cpu_us_per_req samples_sent in_prom"
one() {
    mode=$1 n=$2 testid="bench-$1-$2-$3-$$"
    stages="[{\"duration\":\"0s\",\"target\":$n},{\"duration\":\"${DURATION}s\",\"target\":$n}]"
    rm -f "$TMP/summary.json"
    if [ "$mode" = on ]; then
        : >"$TMP/refused.jsonl"
        set -- env K6_PROMETHEUS_RW_SERVER_URL="$WRITE_URL" \
            K6_PROMETHEUS_RW_PUSH_INTERVAL="$INTERVAL" \
            K6_PROMETHEUS_RW_TREND_STATS="p(95),p(99),med,min,max,avg" \
            K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM="$NATIVE"
    else
        set -- env -u K6_PROMETHEUS_RW_SERVER_URL
    fi
    taskset -c 0 /usr/bin/time -f '%M %U %S' -o "$TMP/time" "$@" TESTID="$testid" \
        "$SYNCGATE" load -p "$TMP/profile.yaml" --set "load.stages=$stages" \
        --summary-export "$TMP/summary.json" --log-format json \
        >"$TMP/sg.out" 2>"$TMP/sg.err" || true
    python3 - "$TMP/summary.json" "$DURATION" "$(tail -n 1 "$TMP/time")" "$TMP/sg.err" \
        "$mode" "$PROM" "$testid" "$REFUSE" "$TMP/refused.jsonl" <<'EOF'
import json, sys, urllib.parse, urllib.request
path, dur, tm, err, mode, prom, testid, refuse, refused = sys.argv[1:]
try:
    m = json.load(open(path))["metrics"]
except (OSError, ValueError):
    sys.exit("bench-rw: no summary; stderr:\n" + open(err).read()[-2000:])
reqs = m["http_reqs"]["count"]
kib, user, sys_ = tm.split()
cpu_us = (float(user) + float(sys_)) * 1e6 / reqs if reqs else 0
sent, in_prom = 0, "-"
if mode == "on" and refuse == "true":
    sent = sum(1 for _ in open(refused)) / float(dur)  # pushes the receiver got, per second
elif mode == "on":
    for line in open(err):
        if '"remote_write_summary"' in line:
            sent = json.loads(line).get("samples_sent", 0)
    q = urllib.parse.urlencode({"query": 'sum(k6_http_reqs_total{testid="%s"})' % testid})
    with urllib.request.urlopen(prom + "/api/v1/query?" + q, timeout=10) as r:
        res = json.load(r)["data"]["result"]
    in_prom = "yes" if res and float(res[0]["value"][1]) == reqs else "no"
print(reqs / float(dur), kib, cpu_us, sent, in_prom)
EOF
}

echo "syncgate:   $("$SYNCGATE" version | head -n 1)"
echo "nginx:      $("$NGINX" -v 2>&1), core 1"
echo "prometheus: $("$PROMETHEUS" --version 2>&1 | head -n 1), core 1"
echo "syncgate on core 0, 1 engine thread, no think time; ${DURATION}s per run, $ROUNDS round(s);"
echo "remote write on: push every $INTERVAL, $([ "$NATIVE" = true ] && echo "native histograms" ||
    echo "trend stats p(95),p(99),med,min,max,avg")"
[ "$REFUSE" = false ] || echo "receiver: refuses every push at once (429, Retry-After: 0), core 1;" \
    "\"samples\" is the pushes it got per second"
echo

printf '%5s | %9s | %9s | %6s | %9s | %9s | %6s | %13s | %8s | %7s\n' VUs "off req/s" \
    "on req/s" on/off "off RSS" "on RSS" on/off "CPU us/req" samples "in Prom"
printf '%s\n' "------+-----------+-----------+--------+-----------+-----------+--------+---------------+----------+--------"
for n in $VUS; do
    : >"$TMP/rows"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        if [ $((r % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
        for mode in $order; do
            row="$mode $(one "$mode" "$n" "$r")"
            echo "$row" >>"$TMP/rows"
            [ "$VERBOSE" = false ] || echo "  $n VUs, round $r: $row" >&2
        done
        r=$((r + 1))
    done
    python3 - "$n" "$TMP/rows" <<'EOF'
import statistics, sys
n, path = sys.argv[1], sys.argv[2]
rows = {"off": [], "on": []}
for line in open(path):
    mode, rps, kib, cpu, sent, in_prom = line.split()
    rows[mode].append((float(rps), int(kib), float(cpu), int(float(sent)), in_prom))
def med(mode, i):
    return statistics.median(r[i] for r in rows[mode])
off_rps, on_rps = med("off", 0), med("on", 0)
off_kib, on_kib = med("off", 1), med("on", 1)
print("%5s | %9.0f | %9.0f | %5.2fx | %5.1f MiB | %5.1f MiB | %5.2fx | %5.1f / %5.1f | %8d | %7s"
      % (n, off_rps, on_rps, on_rps / off_rps if off_rps else 0, off_kib / 1024,
         on_kib / 1024, on_kib / off_kib if off_kib else 0, med("off", 2), med("on", 2),
         med("on", 3), ",".join(r[4] for r in rows["on"])))
EOF
done
