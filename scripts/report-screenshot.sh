#!/usr/bin/env bash
# Refresh docs/report.png, the README's picture of the HTML report: the browser
# test (tests/integration/test_report_browser.py) runs a load against the
# fixture, opens the report in headless chromium and copies its screenshot there.
#   scripts/report-screenshot.sh [BUILD_DIR]   (default build-test)
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build-test}
[ -f "$b/build.ninja" ] || meson setup "$b" >/dev/null
meson compile -C "$b" >/dev/null
REPORT_SCREENSHOT_OUT=$PWD/docs/report.png meson test -C "$b" report_browser --print-errorlogs
echo "docs/report.png: $(file -b docs/report.png)"
