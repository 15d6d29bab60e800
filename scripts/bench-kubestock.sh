#!/bin/sh
# bench-kubestock.sh: how fast the stand-in KubeStock (fixture app=kubestock) answers.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. The fixture
# server runs on core 1 with one listener; wrk (one thread, -c connections) runs
# on core 0. Four runs of the same length, in this order:
#   canned     GET /canned: a fixed route answering the same bytes as p1 (the peer)
#   product    GET /api/products/p1 through the application
#   create     POST /api/orders {"productId":"p3","quantity":2} with a bearer token
#   create+del POST, then DELETE of the id read from the answer, in turn (a wrk script
#              that parses the bodies, so wrk itself does more work here)
# "server CPU us/req" is the fixture's user + system time over the run (from
# /proc/PID/stat) divided by the requests answered; "vs canned" compares it with
# the canned route's. Non-2xx answers are counted (should be 0).
#
# usage: scripts/bench-kubestock.sh [-d SECONDS] [-c CONNECTIONS] [-b BUILD_DIR]
#   -d SECONDS      length of each run (default 5)
#   -c CONNECTIONS  wrk connections (default 50)
#   -b BUILD_DIR    meson build directory with tests/fixture/fixture (default build)
# Needs: wrk, python3, taskset (util-linux) and at least two CPUs.
set -eu

DURATION=5
CONNS=50
BUILD=build
while getopts d:c:b:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done
die() { echo "bench-kubestock: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
FIXTURE=$BUILD/tests/fixture/fixture
for tool in wrk python3 taskset; do
    command -v $tool >/dev/null || die "$tool is missing"
done
[ -x "$FIXTURE" ] || die "$FIXTURE is not built (meson setup $BUILD && meson compile -C $BUILD)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (one for the server, one for wrk)"
case $DURATION$CONNS in '' | *[!0-9]*) die "-d and -c want whole numbers" ;; esac
ulimit -n 65536 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-kubestock.XXXXXX")
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

P1='{"id":"p1","name":"Steel Bolt","price":1.99,"stock":11,"supplierId":"s1"}'
P1_ESC=$(printf '%s' "$P1" | sed 's/,/\\,/g')
# a store big enough that the create run never fills it
taskset -c 1 "$FIXTURE" --listen 127.0.0.1:0 --port-file "$TMP/port" --quiet \
    --route "0:GET:/canned=header=Content-Type:application/json,body=$P1_ESC" \
    --route '0:*:*=app=kubestock' --kubestock-client bench:bench-secret \
    --kubestock-max-orders 10000000 &
FX_PID=$!
i=0
until [ -s "$TMP/port" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || die "the fixture did not start"
    sleep 0.05
done
PORT=$(head -n 1 "$TMP/port")
URL="http://127.0.0.1:$PORT"
KS_TOKEN=$(python3 - "$URL" <<'EOF'
import base64, json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/oauth2/token", data=b"grant_type=client_credentials",
                             headers={"Authorization": "Basic " + base64.b64encode(b"bench:bench-secret").decode(),
                                      "Content-Type": "application/x-www-form-urlencoded"})
print(json.load(urllib.request.urlopen(req))["access_token"])
EOF
)
export KS_TOKEN

cat >"$TMP/create.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"productId":"p3","quantity":2}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KS_TOKEN")
EOF
cat >"$TMP/mix.lua" <<'EOF'
local auth = "Bearer " .. os.getenv("KS_TOKEN")
local body = '{"productId":"p3","quantity":2}'
local ids = {}
request = function()
    local id = table.remove(ids)
    if id then
        return wrk.format("DELETE", "/api/orders/" .. id, {["Authorization"] = auth})
    end
    return wrk.format("POST", "/api/orders",
        {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, b)
    if status == 201 then
        ids[#ids + 1] = b:match('"id":"([^"]+)"')
    end
end
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$FX_PID/stat"; }

# run NAME PATH [LUA]: one line of the table
run() {
    t0=$(cpu_ticks)
    if [ -n "${3:-}" ]; then
        taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$3" "$URL$2" >"$TMP/wrk.out" 2>&1 || true
    else
        taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL$2" >"$TMP/wrk.out" 2>&1 || true
    fi
    t1=$(cpu_ticks)
    python3 - "$1" "$TMP/wrk.out" "$((t1 - t0))" "$(getconf CLK_TCK)" "${BASE_CPU:-0}" <<'EOF'
import re, sys
name, path, ticks, hz, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
text = open(path).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0.0
m = re.search(r"(\d+) requests in", text)
reqs = int(m.group(1)) if m else 0
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
rps = float(m.group(1)) if m else 0.0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
bad = int(m.group(1)) if m else 0
cpu = ticks * 1e6 / hz / max(reqs, 1)
ratio = "%.2fx" % (cpu / base) if base else "-"
print("%-10s | %9.0f | %8.3f | %8.3f | %9.2f | %9s | %6d" % (name, rps, ms("50%"), ms("99%"), cpu, ratio, bad))
print(cpu, file=open(sys.argv[2] + ".cpu", "w"))
EOF
}

echo "fixture $FIXTURE on core 1, wrk -t1 -c$CONNS on core 0, ${DURATION}s per run"
echo "$(wrk -v 2>&1 | head -n 1)"
echo
printf '%-10s | %9s | %8s | %8s | %9s | %9s | %6s\n' run "req/s" "p50 ms" "p99 ms" \
    "CPU us/req" "vs canned" "non-2xx"
echo "-----------+-----------+----------+----------+-----------+-----------+-------"
run canned /canned
BASE_CPU=$(cat "$TMP/wrk.out.cpu")
run product /api/products/p1
run create /api/orders "$TMP/create.lua"
run create+del /api/orders "$TMP/mix.lua"
echo
python3 - "$URL" <<'EOF'
import json, sys, urllib.request
s = json.load(urllib.request.urlopen(sys.argv[1] + "/__kubestock/stats"))
print("server stats: %d requests, %d orders created, %d deleted, %d live, %d unknown ids"
      % (s["requests"], s["orders_created"], s["orders_deleted"], s["orders_live"], s["unknown_id"]))
EOF
