# Each database server killed with SIGKILL and restarted while sagas run:
# PostgreSQL (banking, compliance), then MariaDB (payments), then Redis
# (fraud). The workers reconnect, every saga completes, and every effect
# is applied exactly once. The servers are this test's own.
. "$(dirname "$0")/lib.sh"
use_private_servers
seed_all
start_zsagad
for s in banking payments fraud compliance; do start_worker $s --pool-max 4; done
wait_workers 4
b0=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC002'")
N=90
saga() { # ID N: a four-step transfer with room to retry through an outage
    r='"retry": { "attempts": 60, "backoff_ms": 100, "backoff_max_ms": 1000 }'
    cat >"$T/$1.json" <<JSON
{ "id": "$1", "name": "transfer under fire", "steps": [
  { "id": "debit", "system": "banking", "action": "debit_account", "compensation": "credit_account", $r,
    "params": { "account": "ACC002", "amount": 100, "currency": "USD" } },
  { "id": "risk", "system": "fraud", "deps": ["debit"], "action": "risk_assessment",
    "compensation": "clear_risk_flag", $r,
    "params": { "customer": "K$2", "account": "ACC002", "amount": 100, "currency": "USD" } },
  { "id": "payment", "system": "payments", "deps": ["risk"], "action": "process_payment",
    "compensation": "reverse_payment", $r,
    "params": { "from_account": "ACC002", "beneficiary": "BEN-$2", "amount": 100,
                "currency": "USD", "reference": "fire $2" } },
  { "id": "confirm", "system": "compliance", "deps": ["payment"], "action": "send_confirmation",
    "compensation": "send_cancellation", $r,
    "params": { "recipient": "K$2", "reference": "fire $2", "amount": 100 } } ] }
JSON
}
# Most sagas go in while the servers die; the last ten go in after every
# server is back, so each pool meets its dead connections whatever the pace.
LATE=10
ids=""
for i in $(seq 1 $N); do saga "f$i" "$i"; ids="$ids f$i"; done
early=$(echo $ids | cut -d' ' -f1-$((N - LATE)))
late=$(echo $ids | cut -d' ' -f$((N - LATE + 1))-)
(for id in $early; do zsaga submit "$T/$id.json" >/dev/null || echo "submit $id failed"; sleep 0.05; done) \
    >"$T/submits.txt" 2>&1 &
SUBMITTER=$!

S="$TOP/deploy/servers.sh"
for srv in pg my redis; do
    sleep 0.8
    "$S" kill "$SERVERS" $srv
    echo "killed $srv"
    sleep 1
    "$S" start "$SERVERS" $srv >>"$T/servers-start.log" 2>&1 || fail "$srv did not restart"
    echo "restarted $srv"
done
wait $SUBMITTER
for id in $late; do zsaga submit "$T/$id.json" >/dev/null || echo "submit $id failed"; done >>"$T/submits.txt" 2>&1
assert_eq "" "$(cat "$T/submits.txt")" "every submit accepted"
WAIT_S=180 wait_ended $ids
for id in $ids; do assert_eq completed "$(saga_state "$id")" "$id completed"; done

assert_eq $N "$(q banking "SELECT COUNT(*) FROM ledger WHERE account = 'ACC002' AND saga LIKE 'f%'")" "one debit per saga"
assert_eq $((b0 - N * 100)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC002'")" "balance moved once per saga"
assert_eq $N "$(q payments "SELECT COUNT(*) FROM payments WHERE saga LIKE 'f%'")" "one payment per saga"
assert_eq $N "$(q payments "SELECT COUNT(DISTINCT saga) FROM payments WHERE saga LIKE 'f%'")" "no saga paid twice"
assert_eq $N "$(q compliance "SELECT COUNT(*) FROM notifications WHERE saga LIKE 'f%'")" "one confirmation per saga"
R() { redis-cli -u "$(uri_of fraud)" "$@"; }
for i in $(seq 1 $N); do
    assert_eq 1 "$(R ZCARD "fraud:velocity:K$i")" "one velocity entry for saga f$i"
done
"$BIN/workers/zsaga-worker-compliance" verify-audit --db "$(uri_of compliance)" | grep -q "chain OK" || fail "audit chain"
# The kills must have hit the workers: each pool dropped broken connections.
for s in banking payments fraud; do
    eval "kill -USR1 \$W_$s"
done
sleep 0.5
for s in banking payments fraud; do
    line=$(grep "pool total" "$T/worker-$s.log" | tail -n 1)
    dropped=$(echo "$line" | sed -n 's/.* dropped=\([0-9]*\).*/\1/p')
    [ "${dropped:-0}" -gt 0 ] || fail "$s never lost a connection: $line"
    echo "$s: $line" | sed 's/.*\(pool total=[0-9]*\).*\(connects=[0-9]*\).*\(dropped=[0-9]*\).*/\1 \2 \3/'
done
pass "database servers killed and restarted under load ($MODE): $N sagas completed once each"
