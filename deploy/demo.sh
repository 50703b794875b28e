#!/bin/sh
# The demo: install what is missing, build, start zsagad and the four
# workers on SQLite in a scratch folder, run the seeds' scenarios, print
# each saga's outcome with its timeline, and shut everything down.
# No database server is needed. Set ZSAGA_DEMO_DIR to keep the folder.
# It prints the web console's URL and the metrics endpoints; run from a
# terminal, it keeps everything up until Enter is pressed, so the console
# can be looked at. ZSAGA_DEMO_HTTP sets the console's port (default 5573;
# the workers' metrics take the next four).
#
# deploy/demo.sh --servers runs the same scenarios with every system on its
# production database: banking and compliance on PostgreSQL, payments on
# MariaDB, fraud on Redis, started by deploy/servers.sh in the scratch
# folder and stopped at the end, each reached over TLS.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
servers=false
[ "${1:-}" != "--servers" ] || servers=true
"$top/deploy/install-deps.sh"
echo "== building"
"$top/deploy/build.sh"
bin="$top/build"
dir=${ZSAGA_DEMO_DIR:-$(mktemp -d /tmp/zsaga-demo.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
# Unix sockets in the scratch folder: no port can be taken already.
http_port=${ZSAGA_DEMO_HTTP:-5573}
clients="ipc://$dir/clients.sock"
workers="ipc://$dir/workers.sock"
events="ipc://$dir/events.sock"
pids=""
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    ! $servers || "$top/deploy/servers.sh" stop "$dir/servers"
}
trap cleanup EXIT INT TERM

echo "== scratch folder: $dir"
if $servers; then
    echo "== starting PostgreSQL, MariaDB and Redis on 127.0.0.1"
    "$top/deploy/servers.sh" start "$dir/servers"
    eval "$("$top/deploy/servers.sh" env "$dir/servers")"
    "$top/deploy/servers.sh" newdb "$dir/servers" zsaga_demo
    # Every connection over TLS, the servers' certificates checked against
    # the CA deploy/servers.sh made; the URIs, passwords and all, go to the
    # workers in 0600 files, never on a command line.
    uri_banking="$ZSAGA_PG/zsaga_demo$ZSAGA_PG_TLS_Q"
    uri_compliance="$ZSAGA_PG/zsaga_demo_compliance$ZSAGA_PG_TLS_Q"
    "$top/deploy/servers.sh" newdb "$dir/servers" zsaga_demo_compliance
    uri_payments="$ZSAGA_MY_TLS/zsaga_demo$ZSAGA_MY_TLS_Q"
    uri_fraud="$ZSAGA_REDIS_TLS/0$ZSAGA_REDIS_TLS_Q"
    redis-cli -u "$ZSAGA_REDIS/0" flushdb >/dev/null
else
    for s in banking payments fraud compliance; do
        rm -f "$s.db"
        eval "uri_$s=sqlite:$s.db"
    done
fi
uri() { eval "echo \$uri_$1"; }
for s in banking payments fraud compliance; do
    (umask 077 && uri "$s" >"$s.uri")
done
for s in banking payments fraud compliance; do
    echo "-- $s: $(uri $s | sed 's|://\([^:/]*\):[^@]*@|://\1:***@|')"
    "$bin/workers/zsaga-worker-$s" seed-demo --db-file "$s.uri" >/dev/null
done
# Keys, as in production: zsagad's pair, one per worker naming the system it
# may serve, and an operator's for this script. Only the public ones go in
# zsagad's authorized folder.
echo "== CURVE keys in $dir/keys (zsagad admits only the keys in $dir/authorized)"
rm -rf keys authorized
mkdir -p keys authorized backups
keygen() { "$bin/cli/zsaga" keygen "$@" --dir keys >/dev/null; }
keygen zsagad --role server
keygen demo-operator --role admin
cp keys/demo-operator.key authorized/
for s in banking payments fraud compliance; do
    keygen "$s-1" --role worker --systems "$s"
    cp "keys/$s-1.key" authorized/
done
"$bin/orchestrator/zsagad" --data journal --clients "$clients" --workers "$workers" \
    --events "$events" --key keys/zsagad.key_secret --authorized authorized \
    --backup-dir backups --http "127.0.0.1:$http_port" 2>zsagad.log &
pids="$pids $!"
port=$http_port
for s in banking payments fraud compliance; do
    port=$((port + 1))
    "$bin/workers/zsaga-worker-$s" --db-file "$s.uri" --orchestrator "$workers" \
        --key "keys/$s-1.key_secret" --server-key keys/zsagad.key \
        --instance "$s-1" --capacity 4 --http "127.0.0.1:$port" 2>"worker-$s.log" &
    pids="$pids $!"
done

zsaga() {
    "$bin/cli/zsaga" --endpoint "$clients" --key keys/demo-operator.key_secret \
        --server-key keys/zsagad.key "$@"
}
balances() {
    q="SELECT number AS account, balance / 100 AS units, balance % 100 AS cents, currency
       FROM accounts WHERE number IN ('ACC001', 'ACC002', 'ACC003', 'ACC005') ORDER BY number"
    if $servers; then psql -X -q "$uri_banking" -c "$q"; else sqlite3 -column -header banking.db "$q"; fi
}
# Wait until every system has registered (submits name systems zsagad knows).
i=0
until [ "$(zsaga stats --json 2>/dev/null | sed -n 's/.*"workers": \([0-9]*\).*/\1/p')" = 4 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "workers did not register"; exit 1; }
    sleep 0.1
done

# Each scenario must end as the seeds say: completed (exit 0) or
# compensated (exit 5); anything else stops the demo with an error.
scenario() {
    echo
    echo "== $1"
    rc=0
    zsaga run "$top/deploy/examples/$2.json" --wait-s 30 || rc=$?
    [ "$rc" = "$3" ] || { echo "demo: '$2' ended with exit status $rc, not $3" >&2; exit 1; }
}
echo "== balances before"; balances
scenario "loan processing: 5 steps in dependency order" loan-processing 0
scenario "funds transfer: the payment fails for good at step 3" funds-transfer-fails 5
echo "-- balances after the compensated transfer (ACC001 is back where it was)"; balances
scenario "insufficient funds: 200,000.00 from an account holding 5,000.00" insufficient-funds 5
scenario "funds transfer that completes" funds-transfer 0
scenario "currency exchange with a waivable fee and AML screening" currency-exchange 0
echo
echo "== balances after"; balances
echo
"$bin/workers/zsaga-worker-compliance" verify-audit --db-file compliance.uri
echo
echo "== sagas"
zsaga list
echo
echo "== orchestrator and worker counters (workers report theirs each second)"
sleep 1.2
zsaga stats
echo
echo "== alerts (the seeds' thresholds; docs/operations.md)"
zsaga alerts
echo
echo "== metrics: curl http://127.0.0.1:$http_port/metrics (a few lines of it)"
curl -s "http://127.0.0.1:$http_port/metrics" | grep -E '^zsaga_(sagas_total|step_latency_seconds_count)' | head -8
echo "   workers: http://127.0.0.1:$((http_port + 1))/metrics to http://127.0.0.1:$((http_port + 4))/metrics"
echo
echo "== web console: open this URL (the token signs you in as demo-operator):"
zsaga login 2>/dev/null
if [ -t 0 ]; then
    printf '%s' "-- press Enter to stop everything "
    read -r _ || true
fi
echo
echo "== shutting down"
