#!/bin/sh
# Benchmark zsagad with workers that do no database work, once in plaintext
# (--insecure) and once with CURVE (the default), side by side, so the cost
# of the encryption and authentication shows at the same load.
#   deploy/bench.sh [full|nometa|none] [zsaga-bench options: -n N -k K -c C -w W]
# Prints the figures and zsagad's CPU time per saga; docs/benchmarks.md
# records them with the machine.
set -eu
sync=${1:-full}
[ $# -gt 0 ] && shift
. "$(dirname "$0")/bench-lib.sh"
echo "journal sync: $sync"
for mode in insecure curve; do
    rm -rf "$dir/journal"
    if [ $mode = insecure ]; then
        sec="--insecure"
        export ZSAGA_INSECURE=1
    else
        sec=$CURVE
        unset ZSAGA_INSECURE
    fi
    # shellcheck disable=SC2086
    "$bin/orchestrator/zsagad" --data "$dir/journal" --sync "$sync" $sec $ENDPOINTS \
        --log-level error --map-size 8192 --http 127.0.0.1:0 &
    z=$!
    sleep 0.3
    t0=$(cpu_ticks $z)
    echo "== $mode"
    "$bin/tests/zsaga-bench" --clients "ipc://$dir/c" --workers "ipc://$dir/w" \
        --events "ipc://$dir/e" "$@" | tee "$dir/out"
    t1=$(cpu_ticks $z)
    n=$(sed -n 's/^sagas: \([0-9]*\) .*/\1/p' "$dir/out")
    hz=$(getconf CLK_TCK)
    echo "zsagad CPU:     $(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" \
        'BEGIN { printf "%.1f s, %.1f us a saga", t / hz, t / hz / n * 1e6 }')"
    kill -TERM $z
    wait $z
    z=""
done
