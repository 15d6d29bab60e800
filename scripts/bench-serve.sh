#!/bin/sh
# bench-serve.sh: does load on the serve API slow the run it is serving?
#
# A benchmark, not a test: it prints numbers and asserts nothing. The fixture
# server stands in for KubeStock (pinned to core 1); `syncgate serve` and its
# runs are pinned to core 0. Each round runs the same paced load through the
# API twice, once alone and once while wrk (pinned to core 1) keeps CONNS
# connections busy with GET /api/tests/<id> of that very run (alone first in
# odd rounds, second in even ones, so drift hits both alike). The table shows
# the run's request rate both ways, and wrk's throughput, latency and errors.
#
# usage: scripts/bench-serve.sh [-d SECONDS] [-r ROUNDS] [-c CONNS] [-s SYNCGATE] [-f FIXTURE]
#   -d SECONDS   the load's hold stage (default 15; a 1 s ramp comes first)
#   -r ROUNDS    alone/loaded pairs (default 2)
#   -c CONNS     wrk connections (default 300)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   -f FIXTURE   the fixture server (default next to the binary's build, or $FIXTURE)
# The load: 10 VUs, 50 ms think time, against a route that answers in 2 ms.
# Needs: wrk, curl, python3, taskset (util-linux), at least two CPUs.
set -eu

HOLD=15
ROUNDS=2
CONNS=300
SYNCGATE=${SYNCGATE:-build/syncgate}
FIXTURE=${FIXTURE:-}
while getopts d:r:c:s:f:h opt; do
    case $opt in
    d) HOLD=$OPTARG ;;
    r) ROUNDS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    s) SYNCGATE=$OPTARG ;;
    f) FIXTURE=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ -n "$FIXTURE" ] || FIXTURE=$(dirname "$SYNCGATE")/tests/fixture/fixture
for c in wrk curl python3 taskset; do
    command -v $c >/dev/null || { echo "bench-serve: needs $c" >&2; exit 1; }
done
[ -x "$SYNCGATE" ] && [ -x "$FIXTURE" ] || { echo "bench-serve: no $SYNCGATE or $FIXTURE" >&2; exit 1; }

tmp=$(mktemp -d)
FX_PID=
SV_PID=
cleanup() {
    [ -z "$SV_PID" ] || kill "$SV_PID" 2>/dev/null || true
    [ -z "$FX_PID" ] || kill "$FX_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

taskset -c 1 "$FIXTURE" --listen 127.0.0.1:0 --port-file "$tmp/fx.port" --quiet \
    --route '*:GET:*=delay=2ms,body=ok' &
FX_PID=$!
i=0
until [ -s "$tmp/fx.port" ]; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done
FXP=$(cat "$tmp/fx.port")
mkdir "$tmp/profiles"
cat >"$tmp/profiles/bench.yaml" <<EOF
environment: bench
gateway: {url: "http://127.0.0.1:$FXP", ready: {path: /health, timeout: 5s}}
services:
  - {name: product, url: "http://127.0.0.1:$FXP/product"}
  - {name: order, url: "http://127.0.0.1:$FXP/order"}
load:
  stages: [{duration: 1s, target: 10}, {duration: ${HOLD}s, target: 10}]
  think_time: 50ms
  graceful_ramp_down: 1s
EOF
TOKEN=bench-token-$$
printf '%s\n' "$TOKEN" >"$tmp/token"
SP=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c 0 "$SYNCGATE" serve --listen "127.0.0.1:$SP" --token-file "$tmp/token" \
    --profiles-dir "$tmp/profiles" --default-profile bench --data-dir "$tmp/data" -q \
    2>"$tmp/serve.log" &
SV_PID=$!
i=0
until curl -sf "http://127.0.0.1:$SP/healthz" >/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$tmp/serve.log" >&2; exit 1; }; sleep 0.05
done
API="http://127.0.0.1:$SP"
AUTH="Authorization: Bearer $TOKEN"

field() { # JSON on stdin, a Python expression over d
    python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

start_run() {
    curl -sf -X POST "$API/api/tests/run" -H "$AUTH" -H 'Content-Type: application/json' \
        -d '{"testType": "load"}' | field 'd["id"]'
}

wait_run() { # id -> the run's req/s once it ended
    while :; do
        st=$(curl -sf "$API/api/tests/$1" -H "$AUTH" | field 'd["state"]')
        [ "$st" != running ] && break
        sleep 0.2
    done
    curl -sf "$API/api/tests/$1" -H "$AUTH" | field '"%.1f %s" % (d["summary"]["metrics"]["http_reqs"]["rate"], d["result"])'
}

alone() {
    id=$(start_run)
    wait_run "$id"
}

loaded() {
    id=$(start_run)
    sleep 1.5 # past the ramp
    taskset -c 1 wrk -t 2 -c "$CONNS" -d "$((HOLD - 2))s" --latency -H "$AUTH" \
        "$API/api/tests/$id" >"$tmp/wrk.out" 2>&1
    r=$(wait_run "$id")
    w=$(python3 - "$tmp/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", t, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: (.*)", t)
print("%s %s %s %s %s" % (rps.group(1) if rps else "?", lat.get("50", "?"), lat.get("99", "?"),
                          non2xx.group(1) if non2xx else "0",
                          (sock.group(1).replace(" ", "") if sock else "none")))
PY
)
    echo "$r $w"
}

echo "bench-serve: $ROUNDS rounds, ${HOLD}s hold, 10 VUs with 50 ms think time; wrk -c $CONNS" >&2
printf '%-6s %-8s %12s %8s %12s %10s %10s %8s %s\n' round mode "run req/s" result "wrk GET/s" \
    "wrk p50" "wrk p99" non-2xx "socket errors"
r=1
while [ $r -le "$ROUNDS" ]; do
    if [ $((r % 2)) = 1 ]; then order="alone loaded"; else order="loaded alone"; fi
    for mode in $order; do
        if [ $mode = alone ]; then
            set -- $(alone)
            printf '%-6s %-8s %12s %8s %12s %10s %10s %8s %s\n' $r alone "$1" "$2" - - - - -
        else
            set -- $(loaded)
            printf '%-6s %-8s %12s %8s %12s %10s %10s %8s %s\n' $r loaded "$1" "$2" "$3" "$4" \
                "$5" "$6" "$7"
        fi
    done
    r=$((r + 1))
done
