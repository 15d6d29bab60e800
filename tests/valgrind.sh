#!/bin/sh
# exe_wrapper of `meson test --setup=valgrind` (see the top meson.build).
# A compiled test program runs under valgrind. A Python test script runs as
# it is: valgrind would only check the interpreter. Such a script runs the
# syncgate binary behind the words of SYNCGATE_WRAPPER, which the setup sets
# to this same valgrind command line.
case "${1##*/}" in
python*) exec "$@" ;;
esac
# shellcheck disable=SC2086
exec ${SYNCGATE_WRAPPER:?is not set: run through meson test --setup=valgrind} "$@"
