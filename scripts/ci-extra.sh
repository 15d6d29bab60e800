#!/usr/bin/env bash
# The robustness checks CI runs after the main suite (.ci/run):
#   1. the whole suite again in build-asan/, built with ASan + UBSan (gcc),
#      leaks detected, any undefined behaviour fatal;
#   2. the valgrind test setup on the unit and bad-input suites and the smoke,
#      journeys and serve integration tests (serve: the server under valgrind for a
#      whole API session, its runs as they are), in build-test/ (the main suite's
#      build; VALGRIND_BUILD overrides);
#   3. a short libFuzzer run of every fuzz target (scripts/fuzz.sh), FUZZ_SECONDS
#      each (default 10).
# Every step runs even when an earlier one failed; the exit status is non-zero
# when any did. Each step prints its time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

scripts/deps.sh test || exit 1
failed=()
t_all=$(date +%s)

step() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    echo "== ci-extra: $name"
    "$@"
    rc=$?
    local verdict=ok
    [ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
    echo "== ci-extra: $name: $verdict in $(($(date +%s) - t0))s"
    [ $rc -eq 0 ] || failed+=("$name")
}

sanitizers() {
    if [ ! -f build-asan/build.ninja ]; then
        # -fno-sanitize-recover: a UBSan finding aborts even in a child whose
        # environment a test has emptied (UBSAN_OPTIONS would not reach it).
        meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
            -Dc_args=-fno-sanitize-recover=all >/dev/null || return 1
    fi
    meson compile -C build-asan >/dev/null || return 1
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build-asan --print-errorlogs
}

valgrind_suites() {
    local b=${VALGRIND_BUILD:-build-test}
    [ -f "$b/build.ninja" ] || meson setup "$b" >/dev/null || return 1
    meson compile -C "$b" >/dev/null || return 1
    local rc=0
    meson test -C "$b" --setup=valgrind --print-errorlogs --suite unit --suite bad-input ||
        rc=1
    # The smoke integration test, when the suite has one.
    local smoke
    smoke=$(meson test -C "$b" --list 2>/dev/null |
        sed -n 's/^syncgate:integration[+a-z_-]* \/ \(smoke[a-z_-]*\)$/\1/p')
    if [ -n "$smoke" ]; then
        # shellcheck disable=SC2086
        meson test -C "$b" --setup=valgrind --print-errorlogs $smoke || rc=1
    else
        echo "ci-extra: no smoke integration test in the suite yet"
    fi
    # a journey run (auth, captures, checks) under valgrind too
    meson test -C "$b" --setup=valgrind --print-errorlogs journeys || rc=1
    # A serve session: every endpoint, runs, cancel, SIGTERM, restart, retention.
    meson test -C "$b" --setup=valgrind --print-errorlogs serve || rc=1
    return $rc
}

step "sanitizers (ASan+UBSan, whole suite)" sanitizers
step "valgrind (unit, bad-input, smoke, journeys, serve)" valgrind_suites
step "fuzzing (${FUZZ_SECONDS:-10}s per target)" scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

echo "== ci-extra: done in $(($(date +%s) - t_all))s"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'ci-extra: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
