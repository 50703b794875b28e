#!/bin/sh
# The demo: install what is missing, build, start zsagad and the four
# workers on SQLite in a scratch folder, run the seeds' scenarios, print
# each saga's outcome with its timeline, and shut everything down.
# No database server is needed. Set ZSAGA_DEMO_DIR to keep the folder.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/deploy/install-deps.sh"
echo "== building"
"$top/deploy/build.sh"
bin="$top/build"
dir=${ZSAGA_DEMO_DIR:-$(mktemp -d /tmp/zsaga-demo.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
# Unix sockets in the scratch folder: no port can be taken already.
clients="ipc://$dir/clients.sock"
workers="ipc://$dir/workers.sock"
events="ipc://$dir/events.sock"
pids=""
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "== scratch folder: $dir"
for s in banking payments fraud compliance; do
    rm -f "$s.db"
    "$bin/workers/zsaga-worker-$s" seed-demo --db "sqlite:$s.db" >/dev/null
done
"$bin/orchestrator/zsagad" --data journal --clients "$clients" --workers "$workers" \
    --events "$events" 2>zsagad.log &
pids="$pids $!"
for s in banking payments fraud compliance; do
    "$bin/workers/zsaga-worker-$s" --db "sqlite:$s.db" --orchestrator "$workers" \
        --capacity 4 2>"worker-$s.log" &
    pids="$pids $!"
done

zsaga() { "$bin/cli/zsaga" --endpoint "$clients" "$@"; }
balances() {
    sqlite3 -column banking.db "SELECT number AS account, printf('%.2f', balance / 100.0) AS balance,
        currency FROM accounts WHERE number IN ('ACC001', 'ACC002', 'ACC003', 'ACC005')"
}
# Wait until every system has registered (submits name systems zsagad knows).
i=0
until [ "$(zsaga stats --json 2>/dev/null | sed -n 's/.*"workers": \([0-9]*\).*/\1/p')" = 4 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "workers did not register"; exit 1; }
    sleep 0.1
done

scenario() {
    echo
    echo "== $1"
    zsaga run "$top/deploy/examples/$2.json" --wait-s 30
}
echo "== balances before"; balances
scenario "loan processing: 5 steps in dependency order" loan-processing
scenario "funds transfer: the payment fails for good at step 3" funds-transfer-fails
echo "-- balances after the compensated transfer (ACC001 is back where it was)"; balances
scenario "insufficient funds: 200,000.00 from an account holding 5,000.00" insufficient-funds
scenario "funds transfer that completes" funds-transfer
scenario "currency exchange with a waivable fee and AML screening" currency-exchange
echo
echo "== balances after"; balances
echo
"$bin/workers/zsaga-worker-compliance" verify-audit --db sqlite:compliance.db
echo
echo "== sagas"
zsaga list
echo
echo "== shutting down"
