#!/bin/sh
# The notify worker in C, Python and Node.js against one database, side by
# side in one run: steps/s through each, with the same load.
#   deploy/bench-langs.sh [-n STEPS] [-c IN_FLIGHT] [-b "pg my redis"]
# Starts PostgreSQL, MariaDB and Redis in a scratch folder (deploy/servers.sh,
# durable settings), installs libzsaga and builds the C example against it,
# gives 10,000 customers a quota, and for each backend runs
# zsaga-bench-db standing in for zsagad: IN_FLIGHT `send` steps at once
# (each a new saga, so each runs the whole barrier) through one worker of
# each language in turn, capacity IN_FLIGHT. Prints figures;
# docs/benchmarks.md records them with the machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
n=10000 c=8 backends="pg my redis"
while getopts n:c:b: o; do
    case $o in n) n=$OPTARG ;; c) c=$OPTARG ;; b) backends=$OPTARG ;; *) exit 2 ;; esac
done
. "$top/deploy/bench-servers.sh"
"$top/deploy/install-langs.sh"
cmake --install "$bin" --prefix "$dir/prefix" >/dev/null
PKG_CONFIG_PATH="$dir/prefix/lib/pkgconfig" cmake -S "$top/deploy/examples/notify/c" -B "$dir/c" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$dir/c" >/dev/null

echo "steps $n a worker, $c in flight, worker capacity $c; $(/usr/bin/python3 --version 2>&1), node $(node --version)"

K=10000
run() { # LANG URI COMMAND...
    lang=$1 uri=$2
    shift 2
    ep="ipc://$dir/w.sock"
    "$bin/tests/zsaga-bench-db" worker --names --accounts $K --db "$uri" --workers "$ep" -c "$c" \
        -n "$n" >"$dir/out" 2>&1 &
    b=$!
    sleep 0.3
    NOTIFY_SYSTEM=notify "$@" --db "$uri" --orchestrator "$ep" --capacity "$c" --insecure \
        --instance "bench-$lang" 2>"$dir/worker-$lang.log" &
    w=$!
    rc=0
    # The worker's CPU ticks while the steps ran: from its registration
    # (after its imports and migrations) to the last answer.
    until grep -q registered "$dir/out" || ! kill -0 $b 2>/dev/null; do sleep 0.01; done
    t0=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
    wait $b || rc=$?
    t1=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
    kill -TERM $w 2>/dev/null || true
    wait $w 2>/dev/null || true
    printf '%-7s %s; worker CPU %s us a step\n' "$lang" \
        "$(grep -E '/s' "$dir/out" | head -n 1 | sed 's/^steps through the notify worker, //')" \
        "$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
    [ $rc = 0 ] || { cat "$dir/out"; tail -5 "$dir/worker-$lang.log"; }
}

for backend in $backends; do
    case $backend in
    pg | my)
        "$top/deploy/servers.sh" newdb "$dir/servers" zbench "$backend" >/dev/null
        [ "$backend" = pg ] && uri="$ZSAGA_PG/zbench" || uri="$ZSAGA_MY/zbench"
        "$dir/c/notify-worker" migrate up --db "$uri" >/dev/null
        if [ "$backend" = pg ]; then
            psql -X -q "$uri" -c "INSERT INTO notify_quota SELECT 'BC' || lpad(i::text, 8, '0'), 1000000000
                FROM generate_series(1, $K) i"
        else
            u=${ZSAGA_MY#mysql://}
            mariadb --no-defaults -h 127.0.0.1 -P "${u##*:}" -u zsaga -pzsaga zbench -e "
                INSERT INTO notify_quota SELECT CONCAT('BC', LPAD(seq, 8, '0')), 1000000000
                FROM seq_1_to_$K"
        fi
        ;;
    redis)
        uri="$ZSAGA_REDIS/0"
        redis-cli -u "$uri" FLUSHDB >/dev/null
        i=1
        while [ $i -le $K ]; do printf 'HSET notify:quota BC%08d 1000000000\n' $i; i=$((i + 1)); done |
            redis-cli -u "$uri" >/dev/null
        ;;
    esac
    echo
    echo "== notify on $backend"
    run C "$uri" "$dir/c/notify-worker"
    run Python "$uri" env PYTHONPATH="$top/clients/python" /usr/bin/python3 \
        "$top/deploy/examples/notify/python/notify_worker.py"
    run Node "$uri" node "$top/deploy/examples/notify/node/notify-worker.js"
done
