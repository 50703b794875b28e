#!/bin/sh
# zsagad's memory and journal over a steady load, and the cost of
# retention, with workers that do no database work (CURVE on, full sync).
#   deploy/bench-memory.sh [SECONDS]   (default 60 per run)
#   RATES="2500 10000" TIMEOUTS="30000 86400000" CLOSED=1 (the defaults);
#   ZSAGAD_OPTS="--tombstones 2m" adds zsagad options to the open loops
# 1. Open loop at 2,500 and 10,000 five-step sagas/s, with a 30 s and a
#    24 h step timeout, retention 10 s: every 5 s the heap (anonymous
#    memory; the journal's map is file-backed) beside sagas completed,
#    active and kept; then the heap of a zsagad restarted on that journal
#    with nothing in flight. Flat means memory follows active sagas, not
#    throughput times the step timeout.
# 2. Closed loop, 500 in flight, retention off then on (1 s, tombstones),
#    side by side: sagas/s and zsagad's CPU per saga.
# Prints figures; docs/benchmarks.md records them with the machine.
set -eu
secs=${1:-60}
. "$(dirname "$0")/bench-lib.sh"
zstart() { # zsagad options...
    # shellcheck disable=SC2086
    "$bin/orchestrator/zsagad" --data "$dir/journal" --sync full $CURVE $ENDPOINTS \
        --log-level error --map-size 8192 --http 127.0.0.1:0 "$@" &
    z=$!
    sleep 0.5
}
zstop() { kill -TERM $z; wait $z; z=""; }
bench() { "$bin/tests/zsaga-bench" $ENDPOINTS "$@"; }
anon_mib() { awk '/^RssAnon/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

for t in ${TIMEOUTS:-30000 86400000}; do
    for r in ${RATES:-2500 10000}; do
        rm -rf "$dir/journal"
        echo "== open loop $r sagas/s for $secs s, step timeout $t ms, retention 10 s"
        # shellcheck disable=SC2086
        zstart --retain 10s ${ZSAGAD_OPTS:-}
        bench -r $r -n $((r * secs)) -t $t --pid $z | grep -vE '^(steps/s|commits/s|records/commit)'
        echo "heap at the end of the load: $(anon_mib $z) MiB"
        zstop
        # shellcheck disable=SC2086
        zstart --retain 10s ${ZSAGAD_OPTS:-}
        sleep 2
        echo "heap of a zsagad restarted on that journal, nothing in flight: $(anon_mib $z) MiB"
        zstop
    done
done

[ "${CLOSED:-1}" = 1 ] || exit 0
hz=$(getconf CLK_TCK)
for ret in "off:--retain 0 --tombstones 0" "on:--retain 1s --tombstones 1h"; do
    rm -rf "$dir/journal"
    echo "== closed loop, 500 in flight, retention ${ret%%:*} (${ret#*:})"
    # shellcheck disable=SC2086
    zstart ${ret#*:}
    c0=$(cpu_ticks $z)
    bench -n $((secs * 4000)) -c 500 --pid $z >"$dir/out"
    c1=$(cpu_ticks $z)
    grep -E '^(sagas|elapsed|sagas/s|latency p99:)' "$dir/out"
    grep -E ' s  completed' "$dir/out" | tail -n 1
    n=$(sed -n 's/^sagas: \([0-9]*\) .*/\1/p' "$dir/out")
    echo "zsagad CPU: $(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.1f us a saga", t / hz / n * 1e6 }')"
    zstop
done
