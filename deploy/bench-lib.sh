# Shared by the zsagad benchmarks (bench.sh, bench-memory.sh): a Release
# build in build-bench/, a scratch folder with CURVE keys for zsagad, the
# bench client and its null workers, and zsagad's CPU ticks from /proc.
# Sourced; sets top, bin, dir, k. The caller's EXIT trap stops $z.
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
"$top/deploy/build.sh" "$top/build-bench" -DCMAKE_BUILD_TYPE=Release
bin="$top/build-bench"
dir=$(mktemp -d /tmp/zsaga-bench.XXXXXX)
z=""
stop_servers=""
trap '[ -z "${wk:-}" ] || kill -TERM $wk 2>/dev/null; [ -z "$z" ] || { kill -TERM $z; wait; }; $stop_servers >/dev/null 2>&1; rm -rf "$dir"' EXIT
k="$dir/keys"
mkdir -p "$k" "$dir/authorized"
"$bin/cli/zsaga" keygen zsagad --role server --dir "$k" >/dev/null
"$bin/cli/zsaga" keygen bench --role admin --dir "$k" >/dev/null
"$bin/cli/zsaga" keygen null --role worker --systems bench --dir "$k" >/dev/null
cp "$k/bench.key" "$k/null.key" "$dir/authorized/"
export ZSAGA_KEY="$k/bench.key_secret" ZSAGA_WORKER_KEY="$k/null.key_secret" \
    ZSAGA_SERVER_KEY="$k/zsagad.key"
CURVE="--key $k/zsagad.key_secret --authorized $dir/authorized"
ENDPOINTS="--clients ipc://$dir/c --workers ipc://$dir/w --events ipc://$dir/e"
cpu_ticks() { # PID...: their CPU ticks, summed
    for p in "$@"; do cat "/proc/$p/stat"; done | awk '{ t += $14 + $15 } END { print t }'
}
