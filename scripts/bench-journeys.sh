#!/bin/sh
# bench-journeys.sh: what a journey costs syncgate per request, against the plain
# health-request loop, in the same run against the same server.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. The server is
# the project's stand-in KubeStock (the fixture's app=kubestock, built with the
# test suite) on 127.0.0.1 pinned to core 1; syncgate (one engine thread) is
# pinned to core 0 with no think time. Two profiles run at each VU count:
#   plain    each iteration is one GET /health (services only, no journeys:
#            the loop syncgate always ran);
#   journey  each iteration is a 3-step order life cycle with an OAuth2 token:
#            POST /api/orders (a JSON body from a data row, a JSON check, the
#            order id captured), GET /api/orders/${order_id} (a JSON check
#            against the captured id), DELETE /api/orders/${order_id}.
#
# usage: scripts/bench-journeys.sh [-d SECONDS] [-s SYNCGATE] [-f FIXTURE] [VUS ...]
#   -d SECONDS   length of each measurement (default 10)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   -f FIXTURE   the fixture server (default build/tests/fixture/fixture)
#   VUS          VU counts (default: 50 500 2000)
# Needs: python3, taskset (util-linux), GNU time (/usr/bin/time), two CPUs.
#
# "CPU us/req" is syncgate's user + system CPU time per request (requests of
# every step count); "ratio" is journey / plain. "KiB/VU" is what each VU adds:
# (peak RSS at N VUs - peak RSS at 1 VU) / (N - 1), whole process.
set -eu

DURATION=10
SYNCGATE=${SYNCGATE:-build/syncgate}
FIXTURE=${FIXTURE:-build/tests/fixture/fixture}
while getopts d:s:f:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    s) SYNCGATE=$OPTARG ;;
    f) FIXTURE=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
VUS=${*:-50 500 2000}

die() { echo "bench-journeys: $*" >&2; exit 1; }
for tool in python3 taskset; do
    command -v $tool >/dev/null || die "$tool is missing"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -x "$SYNCGATE" ] || die "$SYNCGATE is not built (meson setup build && meson compile -C build)"
[ -x "$FIXTURE" ] || die "$FIXTURE is not built (it comes with the test suite)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (one for the server, one for syncgate)"
case $DURATION in '' | *[!0-9]*) die "-d wants whole seconds" ;; esac
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-journeys.XXXXXX")
FX_PID=
cleanup() {
    if [ -n "$FX_PID" ]; then
        kill "$FX_PID" 2>/dev/null || true
        wait "$FX_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SECRET=bench-secret-0001
taskset -c 1 "$FIXTURE" --listen 127.0.0.1:0 --port-file "$TMP/port" --quiet \
    --route '*:*:*=app=kubestock' --kubestock-client "bench:$SECRET" \
    --kubestock-max-orders 1000000 >"$TMP/fixture.out" 2>&1 &
FX_PID=$!
i=0
until [ -s "$TMP/port" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || die "the fixture did not start: $(cat "$TMP/fixture.out")"
    sleep 0.05
done
URL="http://127.0.0.1:$(head -n 1 "$TMP/port")"
printf '%s\n' "$SECRET" >"$TMP/secret"
printf 'id\np1\np2\np3\np4\np5\n' >"$TMP/products.csv"

common="environment: bench
gateway: {url: '$URL', ready: {path: null}}
services:
  - {name: order, url: '$URL/health'}
load:
  think_time: 0s
  request_timeout: 10s
  threads: 1
  thresholds: {http_req_duration: ['p(99)<60000']}"

printf '%s\n' "$common" >"$TMP/plain.yaml"
cat >"$TMP/journey.yaml" <<EOF
$common
auth:
  oauth2_client_credentials:
    token_url: '$URL/oauth2/token'
    client_id: bench
    client_secret_file: $TMP/secret
data: {products: {file: $TMP/products.csv}}
journeys:
  - name: order-lifecycle
    steps:
      - name: create order
        service: order
        method: POST
        path: /api/orders
        headers: {Authorization: 'Bearer \${auth.token}'}
        body: {productId: '\${data.products.id}', quantity: 2}
        expect: {status: 201, json: {'\$.status': PENDING}}
        capture: {order_id: '\$.id'}
      - name: get order
        service: order
        path: /api/orders/\${order_id}
        headers: {Authorization: 'Bearer \${auth.token}'}
        expect: {status: 200, json: {'\$.id': '\${order_id}'}}
      - name: delete order
        service: order
        method: DELETE
        path: /api/orders/\${order_id}
        headers: {Authorization: 'Bearer \${auth.token}'}
        expect: {status: 204}
EOF

# run PROFILE VUS SECONDS: prints "reqs rps peak_kib cpu_us_per_req failed checks_failed"
run() {
    stages="[{\"duration\":\"0s\",\"target\":$2},{\"duration\":\"${3}s\",\"target\":$2}]"
    rm -f "$TMP/summary.json"
    taskset -c 0 /usr/bin/time -f '%M %U %S' -o "$TMP/rss" "$SYNCGATE" load -p "$1" \
        --set "load.stages=$stages" --summary-export "$TMP/summary.json" --log-format json -q \
        >"$TMP/sg.out" 2>"$TMP/sg.err" || true
    [ -s "$TMP/summary.json" ] || die "syncgate wrote no summary: $(tail -n 3 "$TMP/sg.err")"
    python3 - "$TMP/summary.json" "$3" $(tail -n 1 "$TMP/rss") <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
reqs = m["http_reqs"]["count"]
failed = m.get("http_req_failed", {}).get("passes", 0)
checks = m.get("checks", {}).get("fails", 0)
cpu = (float(sys.argv[4]) + float(sys.argv[5])) * 1e6 / max(reqs, 1)
print(reqs, reqs / float(sys.argv[2]), sys.argv[3], cpu, failed, checks)
PY
}

echo "syncgate: $("$SYNCGATE" version | head -n 1)"
echo "server:   the stand-in KubeStock ($FIXTURE) on core 1; syncgate on core 0; ${DURATION}s per run"
set -- $(run "$TMP/plain.yaml" 1 2)
BASE_PLAIN=$3
set -- $(run "$TMP/journey.yaml" 1 2)
BASE_JOURNEY=$3
echo "peak RSS with 1 VU: plain $BASE_PLAIN KiB, journey $BASE_JOURNEY KiB"
echo
printf '%6s | %11s | %11s | %20s | %6s | %15s | %15s\n' VUs "plain req/s" "journey req/s" \
    "CPU us/req (pl/jr)" ratio "KiB/VU (pl/jr)" "failed (pl/jr)"
printf '%s\n' "-------+-------------+---------------+----------------------+--------+-----------------+----------------"
for n in $VUS; do
    set -- $(run "$TMP/plain.yaml" "$n" "$DURATION")
    p_rps=$2 p_kib=$3 p_cpu=$4 p_failed=$(($5 + $6))
    set -- $(run "$TMP/journey.yaml" "$n" "$DURATION")
    j_rps=$2 j_kib=$3 j_cpu=$4 j_failed=$(($5 + $6))
    python3 - "$n" "$p_rps" "$j_rps" "$p_cpu" "$j_cpu" "$p_kib" "$j_kib" "$BASE_PLAIN" \
        "$BASE_JOURNEY" "$p_failed" "$j_failed" <<'PY'
import sys
n, prps, jrps, pcpu, jcpu, pkib, jkib, bp, bj, pf, jf = sys.argv[1:]
n = int(n)
per = lambda kib, base: (int(kib) - int(base)) / (n - 1) if n > 1 else 0
print("%6d | %11.0f | %13.0f | %9.1f / %8.1f | %5.2fx | %6.1f / %6.1f | %6s / %6s"
      % (n, float(prps), float(jrps), float(pcpu), float(jcpu), float(jcpu) / float(pcpu),
         per(pkib, bp), per(jkib, bj), pf, jf))
PY
done
echo
echo "targets: journey CPU per request at most 1.5x the plain loop; <= 24 KiB per VU at 2000 VUs"
echo "(failed: failed requests plus failed checks; anything above 0 makes the row suspect)"
