#!/bin/sh
# bench-load.sh: syncgate's load engine side by side with wrk, against nginx.
#
# A benchmark, not a test: it prints numbers, it asserts nothing. nginx (the
# Debian nginx-light package, with its own config in a temporary directory)
# serves a small static response on 127.0.0.1 with its worker pinned to core 1;
# syncgate (one engine thread) and then wrk (one thread) are pinned to core 0
# and drive the same constant number of connections/VUs with no think time.
#
# usage: scripts/bench-load.sh [-d SECONDS] [-s SYNCGATE] [VUS ...]
#   -d SECONDS   length of each measurement (default 10)
#   -s SYNCGATE  the binary (default build/syncgate, or $SYNCGATE)
#   VUS          VU / connection counts (default: 50 500 2000)
# Needs: nginx-light, wrk, python3, taskset (util-linux), GNU time (package
# "time", /usr/bin/time) and at least two CPUs.
#
# "CPU us/req" is user + system CPU time per request, syncgate / wrk (less
# sensitive than req/s to other work on the machine).
# "KiB/VU" is what each VU adds: (peak RSS at N VUs - peak RSS at 1 VU) / (N - 1).
# Peak RSS is the whole process (libraries included), as /usr/bin/time reports.
# "first request" is the time from exec to the first request's arrival at nginx,
# over 10 starts of a 1-VU load (nginx logs arrivals with 1 ms resolution).
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
VUS=${*:-50 500 2000}

die() { echo "bench-load: $*" >&2; exit 1; }
. "$(dirname "$0")/lib-bench.sh"
for tool in wrk python3 taskset; do
    command -v $tool >/dev/null || die "$tool is missing"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
[ -x "$SYNCGATE" ] || die "$SYNCGATE is not built (meson setup build && meson compile -C build)"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (one for nginx, one for the clients)"
case $DURATION in '' | *[!0-9]*) die "-d wants whole seconds" ;; esac

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-load.XXXXXX")
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

write_profile "$TMP/profile.yaml" 0

# syncgate N SECONDS: prints "reqs rps p50_ms p99_ms peak_kib failed cpu_us_per_req"
run_syncgate() {
    stages="[{\"duration\":\"0s\",\"target\":$1},{\"duration\":\"${2}s\",\"target\":$1}]"
    rm -f "$TMP/summary.json"
    taskset -c 0 /usr/bin/time -f '%M %U %S' -o "$TMP/rss" "$SYNCGATE" load -p "$TMP/profile.yaml" \
        --set "load.stages=$stages" --summary-export "$TMP/summary.json" --log-format json -q \
        >"$TMP/sg.out" 2>"$TMP/sg.err" || true
    python3 - "$TMP/summary.json" "$2" $(tail -n 1 "$TMP/rss") <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
reqs = m["http_reqs"]["count"]
d = m.get("http_req_duration", {})
failed = m.get("http_req_failed", {}).get("passes", 0)
cpu = (float(sys.argv[4]) + float(sys.argv[5])) * 1e6 / max(reqs, 1)
print(reqs, reqs / float(sys.argv[2]), d.get("med", 0), d.get("p(99)", 0), sys.argv[3], failed,
      cpu)
EOF
}

# wrk N SECONDS: prints "rps p50_ms p99_ms peak_kib cpu_us_per_req"
run_wrk() {
    taskset -c 0 /usr/bin/time -f '%M %U %S' -o "$TMP/rss" wrk -t1 -c"$1" -d"${2}s" --latency "$URL" \
        >"$TMP/wrk.out" 2>&1 || true
    python3 - "$TMP/wrk.out" "$2" $(tail -n 1 "$TMP/rss") <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
    if not m:
        return 0.0
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
m = re.search(r"Requests/sec:\s+([\d.]+)", text)
rps = float(m.group(1)) if m else 0.0
cpu = (float(sys.argv[4]) + float(sys.argv[5])) * 1e6 / max(rps * float(sys.argv[2]), 1)
print(rps, ms("50%"), ms("99%"), sys.argv[3], cpu)
EOF
}

# first_request: prints "min median max" ms from exec to the first request at nginx
first_request() {
    sed "s|url: $URL|url: ${URL}first|" "$TMP/profile.yaml" >"$TMP/first.yaml"
    python3 - "$SYNCGATE" "$TMP/first.yaml" "$TMP/first.log" <<'EOF'
import os, subprocess, sys, time
binary, profile, log = sys.argv[1:]
stages = '[{"duration":"0s","target":1},{"duration":"100ms","target":1}]'
out = []
for _ in range(10):
    seen = os.path.getsize(log) if os.path.exists(log) else 0
    t0 = time.time()
    subprocess.run([binary, "load", "-p", profile, "-q", "--set", "load.stages=" + stages],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log) as f:
        f.seek(seen)
        line = f.readline()
    if line:
        out.append(float(line) * 1000 - t0 * 1000)
out.sort()
print("%.1f %.1f %.1f" % (out[0], out[len(out) // 2], out[-1]) if out else "- - -")
EOF
}

echo "syncgate: $("$SYNCGATE" version | head -n 1)"
echo "wrk:      $(wrk -v 2>&1 | head -n 1)"
echo "nginx:    $("$NGINX" -v 2>&1) on core 1; clients on core 0; ${DURATION}s per run"
echo

set -- $(run_syncgate 1 2)
BASE_KIB=$5
echo "syncgate with 1 VU: peak RSS $BASE_KIB KiB"
set -- $(first_request)
echo "first request after exec: min $1 ms, median $2 ms, max $3 ms (10 starts)"
echo

printf '%6s | %10s | %10s | %6s | %15s | %17s | %17s | %9s | %6s | %6s\n' VUs "wrk req/s" \
    "sg req/s" "sg/wrk" "CPU us/req" "p50 ms (sg/wrk)" "p99 ms (sg/wrk)" "peak RSS" "KiB/VU" \
    "failed"
printf '%s' "-------+------------+------------+--------+-----------------+-------------------+"
printf '%s\n' "-------------------+-----------+--------+-------"
for n in $VUS; do
    set -- $(run_wrk "$n" "$DURATION")
    w_rps=$1 w_p50=$2 w_p99=$3 w_cpu=$5
    set -- $(run_syncgate "$n" "$DURATION")
    s_rps=$2 s_p50=$3 s_p99=$4 s_kib=$5 s_failed=$6 s_cpu=$7
    python3 - "$n" "$w_rps" "$s_rps" "$s_p50" "$w_p50" "$s_p99" "$w_p99" "$s_kib" "$BASE_KIB" \
        "$s_failed" "$s_cpu" "$w_cpu" <<'EOF'
import sys
n, w, s, sp50, wp50, sp99, wp99, kib, base, failed, scpu, wcpu = sys.argv[1:]
n, w, s, kib, base = int(n), float(w), float(s), int(kib), int(base)
per_vu = (kib - base) / (n - 1) if n > 1 else 0
ratio = s / w if w else 0
print("%6d | %10.0f | %10.0f | %5.2fx | %6.1f / %6.1f | %7.2f / %7.2f | %7.2f / %7.2f "
      "| %5.1f MiB | %6.1f | %6s"
      % (n, w, s, ratio, float(scpu), float(wcpu), float(sp50), float(wp50), float(sp99),
         float(wp99), kib / 1024, per_vu, failed))
EOF
done
echo
echo "targets: sg/wrk >= 0.55x at 50 VUs, >= 0.45x at 500; <= 16 KiB per VU at 2000 VUs;"
echo "         first request within 10 ms of start"
