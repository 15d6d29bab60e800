#!/usr/bin/env bash
# The README demo: build syncgate, start a stand-in KubeStock on 127.0.0.1 and
# gate it with profiles/local.yaml.
#
#   scripts/demo.sh                  # syncgate smoke -p profiles/local.yaml
#   DEMO_COMMAND=run scripts/demo.sh # another syncgate command
#   scripts/demo.sh --summary-export /tmp/summary.json   # extra syncgate options
#   DEMO_BUILD=build-dev scripts/demo.sh  # another meson build directory
#
# The stand-in is the project's fixture server (tests/fixture) running its
# KubeStock application (app=kubestock): a "Kong gateway" on :18000 and the five
# services on :18001..:18005, sharing one state: an OAuth2 token endpoint,
# products, suppliers and orders with ids of its own, health routes. The
# profile's journeys log in, create, read, pay and delete orders and browse the
# catalogue. It is stopped when the demo ends, whatever happens; the script
# exits with syncgate's exit code.
set -euo pipefail

COMMAND="${DEMO_COMMAND:-run}"
PROFILE="profiles/local.yaml"
BUILD="${DEMO_BUILD:-build}"

cd "$(dirname "$0")/.."

# 1. Dependencies: apt-get only when something is missing.
scripts/deps.sh build

# 2. Build (meson and ninja skip whatever is up to date).
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
meson compile -C "$BUILD"
FIXTURE="$BUILD/tests/fixture/fixture"
[ -x "$FIXTURE" ] || { echo "demo: $FIXTURE missing (configure with -Dtests=true)" >&2; exit 1; }

# 3. The stand-in KubeStock.
work="$(mktemp -d)"
fixture_pid=""
cleanup() {
    if [ -n "$fixture_pid" ] && kill -0 "$fixture_pid" 2>/dev/null; then
        kill -TERM "$fixture_pid" 2>/dev/null || true
        wait "$fixture_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

args=(--port-file "$work/ports" --log "$work/requests.jsonl" --quiet)
for port in 18000 18001 18002 18003 18004 18005; do
    args+=(--listen "127.0.0.1:$port")
done
# every route of every listener: the KubeStock application, a few ms per answer;
# the client is the one profiles/local.yaml names, with its demo secret
args+=(--route "*:*:*=delay=2ms,app=kubestock")
args+=(--kubestock-client "syncgate-demo:demo-only-not-a-secret")
"$FIXTURE" "${args[@]}" &
fixture_pid=$!
for _ in $(seq 100); do
    [ -s "$work/ports" ] && break
    if ! kill -0 "$fixture_pid" 2>/dev/null; then
        echo "demo: the fixture did not start (ports 18000-18005 busy?)" >&2
        exit 1
    fi
    sleep 0.05
done
[ -s "$work/ports" ] || { echo "demo: the fixture did not start in 5s" >&2; exit 1; }
echo "demo: stand-in KubeStock up: gateway 127.0.0.1:18000, services 127.0.0.1:18001-18005" >&2

# 4. The gate. In the background so a signal to this script reaches syncgate at
# once (it then stops, prints its summary and exits 105).
"$BUILD/syncgate" "$COMMAND" -p "$PROFILE" "$@" &
syncgate_pid=$!
trap 'kill -TERM "$syncgate_pid" 2>/dev/null || true' INT TERM
rc=0
wait "$syncgate_pid" || rc=$?
while kill -0 "$syncgate_pid" 2>/dev/null; do # wait was cut short by a signal
    rc=0
    wait "$syncgate_pid" || rc=$?
done

requests=$(wc -l < "$work/requests.jsonl")
orders=$(grep -c '"method":"POST","target":"/api/orders"' "$work/requests.jsonl" || true)
echo "demo: the stand-in received $requests requests ($orders orders created); syncgate exited with $rc" >&2
exit "$rc"
