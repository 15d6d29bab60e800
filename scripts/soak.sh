#!/bin/sh
# soak.sh: a bounded soak of syncgate's load engine (minutes, not hours).
#
# syncgate drives VUs with no think time at the project's fixture server on
# 127.0.0.1 and pushes remote write every second to the test receiver, while
# tests/soak/soak.py samples its RSS (/proc/<pid>/status) and open file
# descriptors (/proc/<pid>/fd) every few seconds. It prints the samples, then
# a verdict: RSS flat after warm-up (within 10% of the baseline, no upward
# drift between the two halves of the hold) and no descriptor growth.
# meson's 'soak' suite runs a shorter variant (45 s at 200 VUs).
#
# usage: scripts/soak.sh [-d SECONDS] [-u VUS] [-i SECONDS] [-b BUILDDIR]
#   -d SECONDS   hold time at full VUs (default 180), after a 5 s ramp
#   -u VUS       virtual users (default 300)
#   -i SECONDS   sampling interval (default 5)
#   -b BUILDDIR  meson build directory (default build)
# Exit status 0 when flat, 1 when not, 2 on bad usage.
set -eu

DURATION=180
VUS=300
EVERY=5
BUILD=build
while getopts d:u:i:b:h opt; do
    case $opt in
    d) DURATION=$OPTARG ;;
    u) VUS=$OPTARG ;;
    i) EVERY=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//; /^set -eu/d'; exit 2 ;;
    esac
done

die() { echo "soak: $*" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for f in syncgate tests/fixture/fixture; do
    [ -x "$BUILD/$f" ] || die "$BUILD/$f is not built (meson setup $BUILD && meson compile -C $BUILD)"
done
command -v python3 >/dev/null || die "python3 is missing"

# VUs hold one connection each (plus the fixture's end of it)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SYNCGATE=$BUILD/syncgate FIXTURE=$BUILD/tests/fixture/fixture
export SYNCGATE FIXTURE
if [ -x "$BUILD/tests/remote_write/rwfixture" ]; then
    RWFIXTURE=$BUILD/tests/remote_write/rwfixture
    export RWFIXTURE
fi
exec python3 "$ROOT/tests/soak/soak.py" --duration "$DURATION" --vus "$VUS" --every "$EVERY"
