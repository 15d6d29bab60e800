#!/usr/bin/env bash
# Fuzz every target of tests/fuzz/ with libFuzzer, SECONDS each (default 30).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Builds build-libfuzzer/ (clang, -Dfuzzing=true, ASan + UBSan; FUZZ_BUILD_DIR
# overrides) and runs each target on a scratch copy of its corpus, so the
# committed corpus only changes when something is found: then the crashing
# input is copied into tests/fuzz/corpus/<target>/ and the script exits 1.
# Review the input, fix the bug, commit the file: `meson test --suite fuzz`
# replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
builddir=${FUZZ_BUILD_DIR:-build-libfuzzer}
all_targets=$(sed -n "/^fuzz_targets = \[/,/^\]/{s/^ *'\([a-z_]*\)',*$/\1/p}" \
    tests/fuzz/meson.build)
targets=${*:-$all_targets}

scripts/deps.sh test
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer,address -o /dev/null - 2>/dev/null; then
    echo "fuzz.sh: clang cannot build libFuzzer binaries (install clang and libclang-rt-14-dev)" >&2
    exit 1
fi
if [ ! -f "$builddir/build.ninja" ]; then
    CC=clang meson setup "$builddir" -Dfuzzing=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
# shellcheck disable=SC2046,SC2086
meson compile -C "$builddir" $(printf 'fuzz_%s ' $targets) >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

found=0
for t in $targets; do
    corpus=tests/fuzz/corpus/$t
    mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts"
    cp "$corpus"/* "$scratch/$t/corpus/" 2>/dev/null || true
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
    start=$(date +%s)
    rc=0
    # New inputs go to the scratch corpus (first directory); artifacts to their own.
    "$builddir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$scratch/$t/artifacts/" \
        "${dict[@]}" "$scratch/$t/corpus" </dev/null >"$scratch/$t/log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t/log" | tail -1)
    echo "fuzz $t: ${runs:-?} runs in $(($(date +%s) - start))s, exit $rc"
    crashes=("$scratch/$t/artifacts"/*)
    if [ "$rc" -ne 0 ] || [ -e "${crashes[0]}" ]; then
        found=1
        tail -n 60 "$scratch/$t/log" >&2
        for f in "${crashes[@]}"; do
            [ -e "$f" ] || continue
            dest="$corpus/$(basename "$f")"
            cp "$f" "$dest"
            echo "fuzz $t: FOUND A BUG; input saved as $dest" >&2
            echo "  reproduce: $builddir/tests/fuzz/fuzz_$t $dest" >&2
        done
    fi
done
exit $found
