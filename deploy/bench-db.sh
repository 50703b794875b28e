#!/bin/sh
# Benchmark each worker against its own database's raw transaction rate.
#   deploy/bench-db.sh [-n STEPS] [-c IN_FLIGHT] [-a ACCOUNTS]
# Starts PostgreSQL, MariaDB and Redis in a scratch folder (deploy/servers.sh,
# with their durable settings), seeds the banking schema with ACCOUNTS
# accounts on PostgreSQL, MariaDB and SQLite, and for each backend prints
#   raw:    single-row transactions through the workers' own driver
#   worker: steps through one worker (banking; fraud on Redis), each step a
#           new saga running the whole barrier, with IN_FLIGHT at once
# and, for PostgreSQL, pgbench's figure for the same transaction. Prints
# figures; docs/benchmarks.md records them with the machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
n=20000 c=8 a=100000
while getopts n:c:a: o; do
    case $o in n) n=$OPTARG ;; c) c=$OPTARG ;; a) a=$OPTARG ;; *) exit 2 ;; esac
done
. "$top/deploy/bench-servers.sh"
echo "steps $n, in flight (and raw connections) $c, accounts $a"

# The benchmark stands in for zsagad on a private ipc socket in its own
# folder, in plaintext: it measures the worker against its database.
worker() { # SYSTEM URI
    ep="ipc://$dir/w.sock"
    "$bin/tests/zsaga-bench-db" worker --db "$2" --workers "$ep" -c "$c" -n "$n" &
    b=$!
    sleep 0.3
    "$bin/workers/zsaga-worker-$1" --db "$2" --orchestrator "$ep" --capacity "$c" \
        --pool-min "$c" --insecure 2>"$dir/worker.log" &
    w=$!
    rc=0
    t0=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
    wait $b || rc=$?
    t1=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
    kill -TERM $w
    wait $w || true
    # Its last pool line counts the round trips to the server and the steps.
    sed -n 's/.* round_trips=\([0-9]*\) .* steps ok=\([0-9]*\) failed=\([0-9]*\).*/\1 \2 \3/p' \
        "$dir/worker.log" | tail -n 1 |
        awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" '{ if ($2 + $3)
            printf "worker round trips a step: %.2f; the worker process'"'"'s CPU: %.0f us a step\n",
                $1 / ($2 + $3), t / hz * 1e6 / ($2 + $3) }'
    grep -E ' (error|warn):' "$dir/worker.log" | head -n 5 >&2 || true
    return $rc
}

for backend in pg my sqlite; do
    case $backend in
    pg) "$top/deploy/servers.sh" newdb "$dir/servers" zbench pg >/dev/null; uri="$ZSAGA_PG/zbench" ;;
    my) "$top/deploy/servers.sh" newdb "$dir/servers" zbench my >/dev/null; uri="$ZSAGA_MY/zbench" ;;
    sqlite) uri="sqlite:$dir/banking.db" ;;
    esac
    echo
    echo "== banking on $backend"
    "$bin/workers/zsaga-worker-banking" seed "$a" --db "$uri"
    "$bin/tests/zsaga-bench-db" raw --db "$uri" -c "$c" -n "$n"
    if [ $backend = pg ]; then
        cat >"$dir/raw.sql" <<SQL
\\set k random(1, $a)
BEGIN;
UPDATE accounts SET balance = balance + 1 WHERE number = 'AC' || lpad(:k::text, 10, '0');
END;
SQL
        pgbench=$(ls /usr/lib/postgresql/*/bin/pgbench | tail -n 1)
        "$pgbench" -n -M prepared -c "$c" -j 2 -t $((n / c)) -f "$dir/raw.sql" "$uri" 2>&1 |
            sed -n 's/^tps = \([0-9]*\).*/pgbench, the same transaction, '"$c"' clients: \1\/s/p'
    fi
    worker banking "$uri"
done

echo
echo "== fraud on redis"
redis-cli -u "$ZSAGA_REDIS/0" FLUSHDB >/dev/null
"$bin/tests/zsaga-bench-db" raw --db "$ZSAGA_REDIS/0" -c "$c" -n "$n"
worker fraud "$ZSAGA_REDIS/0"
