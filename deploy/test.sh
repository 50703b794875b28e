#!/bin/sh
# The whole test suite: install what is missing, build twice (warnings as
# errors; then AddressSanitizer + UndefinedBehaviorSanitizer), run every
# test in both builds with ctest, and run the demo once.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
"$top/deploy/install-langs.sh"
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
# The README's first command, as a new user runs it: every scenario must
# end as the seeds say, and the console and metrics must answer.
echo "== the demo (deploy/demo.sh)"
demo_log=$(mktemp /tmp/zsaga-demo-log.XXXXXX)
if ! ZSAGA_DEMO_HTTP=15573 "$top/deploy/demo.sh" </dev/null >"$demo_log" 2>&1; then
    tail -n 40 "$demo_log"
    echo "the demo failed"
    exit 1
fi
grep -q "^http://127.0.0.1:15573/#token=[0-9a-f]\{64\}$" "$demo_log" || {
    tail -n 20 "$demo_log"
    echo "the demo printed no console URL"
    exit 1
}
grep -q '^zsaga_sagas_total{name="loan processing",state="completed"} 1$' "$demo_log" || {
    tail -n 20 "$demo_log"
    echo "the demo's metrics are missing"
    exit 1
}
rm -f "$demo_log"
echo "== build with ASan + UBSan"
"$top/deploy/build.sh" "$top/build-asan" -DZSAGA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under the sanitizers"
(cd "$top/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure -j "$jobs" "$@")
echo "== all tests passed in both builds"
