#!/bin/sh
# Benchmark zsagad with workers that do no database work.
#   deploy/bench.sh [full|nometa|none] [zsaga-bench options: -n N -k K -c C -w W]
# Prints the figures; docs/benchmarks.md records them with the machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
sync=${1:-full}
[ $# -gt 0 ] && shift
"$top/deploy/install-deps.sh"
"$top/deploy/build.sh" "$top/build-bench" -DCMAKE_BUILD_TYPE=Release
dir=$(mktemp -d /tmp/zsaga-bench.XXXXXX)
"$top/build-bench/orchestrator/zsagad" --data "$dir/journal" --sync "$sync" \
    --clients "ipc://$dir/c" --workers "ipc://$dir/w" --events "ipc://$dir/e" \
    --log-level warn --map-size 8192 &
z=$!
trap 'kill -TERM $z; wait $z; rm -rf "$dir"' EXIT
sleep 0.3
echo "journal sync: $sync"
"$top/build-bench/tests/zsaga-bench" --clients "ipc://$dir/c" --workers "ipc://$dir/w" \
    --events "ipc://$dir/e" "$@"
