#!/usr/bin/env bash
# The whole test suite on a fresh Debian bookworm machine: installs what it
# needs, builds into build-test/, runs `meson test`, and ends with one line
# "N passed, N failed". Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test
[ -f build-test/build.ninja ] || meson setup build-test >/dev/null
meson compile -C build-test >/dev/null

rc=0
meson test -C build-test --print-errorlogs "$@" || rc=$?

python3 - build-test/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $rc
