#!/bin/sh
# Benchmark zsagad with workers that do no database work, once in plaintext
# (--insecure) and once with CURVE (the default), side by side, so the cost
# of the encryption and authentication shows at the same load.
#   deploy/bench.sh [full|nometa|none] [zsaga-bench options: -n N -k K -c C -r RATE]
# The null workers run as a process of their own (WORKERS of them, default
# 2), as workers do in production; the client runs WARMUP sagas (default
# 2,000) before it counts. Prints the figures and the CPU time per saga of
# zsagad, the workers and the client; docs/benchmarks.md records them with
# the machine.
# MODES picks the runs, in order (default "insecure curve"):
#   insecure      plaintext
#   curve         CURVE, metrics on (the defaults)
#   metrics-on    CURVE, metrics on, /metrics scraped every second
#   metrics-off   CURVE, --metrics off --http off
#   pg            CURVE, the journal on PostgreSQL (deploy/servers.sh starts
#                 one in the scratch folder; durable: fsync, synchronous_commit)
#   pg2, pg3, ... the same journal in 2, 3, ... partitions, a zsagad each
#                 (zsagad --partitions N; the client sends each saga to the
#                 zsagad of its partition; CPU summed over them)
# e.g. MODES="metrics-on metrics-off metrics-on metrics-off" deploy/bench.sh
set -eu
sync=${1:-full}
[ $# -gt 0 ] && shift
. "$(dirname "$0")/bench-lib.sh"
echo "journal sync: $sync"
for mode in ${MODES:-insecure curve}; do
    rm -rf "$dir/journal" "$dir/zsagad.log"
    obs="--http 127.0.0.1:0"
    journal="--data $dir/journal --sync $sync"
    parts=1
    case $mode in
    insecure)
        sec="--insecure"
        export ZSAGA_INSECURE=1
        ;;
    curve | metrics-on)
        sec=$CURVE
        unset ZSAGA_INSECURE
        ;;
    metrics-off)
        sec=$CURVE
        obs="--metrics off --http off"
        unset ZSAGA_INSECURE
        ;;
    pg | pg[0-9]*)
        sec=$CURVE
        parts=${mode#pg}
        parts=${parts:-1}
        unset ZSAGA_INSECURE
        if [ ! -d "$dir/servers" ]; then
            "$top/deploy/servers.sh" start "$dir/servers" >"$dir/servers.log" 2>&1 ||
                { cat "$dir/servers.log"; exit 1; }
            stop_servers="$top/deploy/servers.sh stop $dir/servers"
        fi
        eval "$("$top/deploy/servers.sh" env "$dir/servers")"
        "$top/deploy/servers.sh" newdb "$dir/servers" zbench_journal pg >/dev/null
        journal="--journal $ZSAGA_PG/zbench_journal --partitions $parts"
        ;;
    *) echo "bench: unknown mode $mode" >&2; exit 2 ;;
    esac
    # One zsagad, or one a partition on endpoints of its own.
    zs=""
    cl=""
    wl=""
    el=""
    for i in $(seq 1 "$parts"); do
        s=""
        [ "$parts" = 1 ] || s=$i
        cl="$cl${cl:+,}ipc://$dir/c$s"
        wl="$wl${wl:+,}ipc://$dir/w$s"
        el="$el${el:+,}ipc://$dir/e$s"
        # shellcheck disable=SC2086
        "$bin/orchestrator/zsagad" $journal $sec --clients "ipc://$dir/c$s" \
            --workers "ipc://$dir/w$s" --events "ipc://$dir/e$s" \
            --log-level info --map-size 8192 $obs 2>>"$dir/zsagad.log" &
        zs="$zs $!"
        [ "$parts" = 1 ] || until grep -q "partition $((i - 1)) of" "$dir/zsagad.log"; do sleep 0.05; done
    done
    z=${zs# }
    sleep 0.3
    scraper=""
    if [ $mode = metrics-on ]; then
        port=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$dir/zsagad.log")
        (while curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; do sleep 1; done) &
        scraper=$!
    fi
    "$bin/tests/zsaga-bench" --workers "$wl" --partitions "$parts" --workers-only \
        -w "$((${WORKERS:-2} * parts))" &
    wk=$!
    sleep 0.3
    echo "== $mode"
    # The CPU counted is from the client's first submit (warm-up included)
    # to its last completion: per saga it is divided by all of them.
    t0=$(cpu_ticks $z)
    w0=$(cpu_ticks $wk)
    "$bin/tests/zsaga-bench" --clients "$cl" --workers "$wl" --events "$el" \
        --partitions "$parts" --warmup "${WARMUP:-2000}" "$@" --no-workers | tee "$dir/out"
    t1=$(cpu_ticks $z)
    w1=$(cpu_ticks $wk)
    kill -TERM $wk
    wait $wk || true
    wk=""
    n=$(sed -n 's/^sagas: \([0-9]*\) .*/\1/p' "$dir/out")
    n=$((n + ${WARMUP:-2000}))
    hz=$(getconf CLK_TCK)
    for who in zsagad:$((t1 - t0)) workers:$((w1 - w0)); do
        awk -v who="${who%%:*} CPU:" -v t="${who#*:}" -v hz="$hz" -v n="$n" \
            'BEGIN { printf "%-16s%.1f s, %.1f us a saga\n", who, t / hz, t / hz / n * 1e6 }'
    done
    [ -z "$scraper" ] || kill $scraper 2>/dev/null || true
    # shellcheck disable=SC2086
    kill -TERM $z
    for p in $z; do wait "$p"; done
    z=""
done
