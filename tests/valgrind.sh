#!/bin/sh
# exe_wrapper of `meson test --setup=valgrind` (see the top meson.build):
#   valgrind.sh BUILD_ROOT COMMAND...
# A program built in BUILD_ROOT runs under valgrind. Anything else (python3
# running a test script) runs as it is: valgrind would only check the
# interpreter. Such a script runs the syncgate binary behind the words of
# SYNCGATE_WRAPPER, which the setup sets to this same valgrind command line.
root=$1
shift
case "$1" in
"$root"/*) ;;
*) exec "$@" ;;
esac
# shellcheck disable=SC2086
exec ${SYNCGATE_WRAPPER:?is not set: run through meson test --setup=valgrind} "$@"
