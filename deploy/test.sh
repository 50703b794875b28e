#!/bin/sh
# The whole test suite: install what is missing, build twice (warnings as
# errors; then AddressSanitizer + UndefinedBehaviorSanitizer), and run every
# test in both builds with ctest.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
jobs=$(nproc)
# PostgreSQL, MariaDB and Redis on loopback, in a scratch folder, for the
# tests of the real backends (each test makes databases of its own).
servers=$(mktemp -d /tmp/zsaga-servers.XXXXXX)
trap '"$top/deploy/servers.sh" stop "$servers"; rm -rf "$servers"' EXIT
echo "== database servers in $servers"
"$top/deploy/servers.sh" start "$servers"
export ZSAGA_SERVERS="$servers"
echo "== build (warnings are errors)"
"$top/deploy/build.sh" "$top/build"
echo "== tests"
(cd "$top/build" && ctest --output-on-failure -j "$jobs" "$@")
echo "== build with ASan + UBSan"
"$top/deploy/build.sh" "$top/build-asan" -DZSAGA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under the sanitizers"
(cd "$top/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure -j "$jobs" "$@")
echo "== all tests passed in both builds"
