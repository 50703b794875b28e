#!/bin/sh
# Benchmark zsagad with workers that do no database work, once in plaintext
# (--insecure) and once with CURVE (the default), side by side, so the cost
# of the encryption and authentication shows at the same load.
#   deploy/bench.sh [full|nometa|none] [zsaga-bench options: -n N -k K -c C -w W]
# Prints the figures and zsagad's CPU time per saga; docs/benchmarks.md
# records them with the machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sync=${1:-full}
[ $# -gt 0 ] && shift
"$top/deploy/install-deps.sh"
"$top/deploy/build.sh" "$top/build-bench" -DCMAKE_BUILD_TYPE=Release
bin="$top/build-bench"
dir=$(mktemp -d /tmp/zsaga-bench.XXXXXX)
z=""
trap '[ -z "$z" ] || { kill -TERM $z; wait $z; }; rm -rf "$dir"' EXIT
k="$dir/keys"
mkdir -p "$k" "$dir/authorized"
"$bin/cli/zsaga" keygen zsagad --role server --dir "$k" >/dev/null
"$bin/cli/zsaga" keygen bench --role admin --dir "$k" >/dev/null
"$bin/cli/zsaga" keygen null --role worker --systems bench --dir "$k" >/dev/null
cp "$k/bench.key" "$k/null.key" "$dir/authorized/"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
echo "journal sync: $sync"
for mode in insecure curve; do
    rm -rf "$dir/journal"
    if [ $mode = insecure ]; then
        sec="--insecure"
        export ZSAGA_INSECURE=1
    else
        sec="--key $k/zsagad.key_secret --authorized $dir/authorized"
        unset ZSAGA_INSECURE
        export ZSAGA_KEY="$k/bench.key_secret" ZSAGA_WORKER_KEY="$k/null.key_secret" \
            ZSAGA_SERVER_KEY="$k/zsagad.key"
    fi
    # shellcheck disable=SC2086
    "$bin/orchestrator/zsagad" --data "$dir/journal" --sync "$sync" $sec \
        --clients "ipc://$dir/c" --workers "ipc://$dir/w" --events "ipc://$dir/e" \
        --log-level error --map-size 8192 &
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
