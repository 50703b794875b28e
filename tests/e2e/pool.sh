# Pool exhaustion on a real server: more steps at once than connections.
# Steps queue for a connection and all finish; an acquire timeout too short
# for the queue answers "retry later" (the saga tries again), never a
# failure, and no step is lost or applied twice.
. "$(dirname "$0")/lib.sh"
seed banking
start_zsagad
debit_saga() { # ID ATTEMPTS
    cat >"$T/$1.json" <<JSON
{ "id": "$1", "name": "pool", "steps": [
    { "id": "debit", "system": "banking", "action": "debit_account", "compensation": "credit_account",
      "retry": { "attempts": $2, "backoff_ms": 20, "backoff_max_ms": 200 },
      "params": { "account": "ACC007", "amount": 100, "currency": "USD" } } ] }
JSON
    zsaga submit "$T/$1.json" >/dev/null
}
pool_line() { grep "pool total" "$T/worker-banking.log" | tail -n 1; }
metric() { pool_line | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
b0=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC007'")

# 8 steps at once, 2 connections, each step holding its connection 100 ms.
start_worker banking --capacity 8 --pool-max 2 --fault delay=debit_account:100
wait_workers 1
ids=""
for i in $(seq 1 24); do debit_saga "queue$i" 1; ids="$ids queue$i"; done
wait_ended $ids
for id in $ids; do assert_eq completed "$(saga_state "$id")" "$id completed on its only try"; done
# The worker's heartbeats carry its counters to zsagad, which shows them.
i=0
until zsaga stats --json | tr -d ' \n' | grep -q '"system":"banking".*"steps_ok":24'; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "zsaga stats never showed the worker's 24 steps: $(zsaga stats)"
    sleep 0.1
done
zsaga stats | grep -A1 "^worker banking" | grep -q "pool_total=2 " || fail "zsaga stats: $(zsaga stats)"
kill -TERM "$W_banking"; wait "$W_banking" 2>/dev/null || true
assert_eq 2 "$(metric total)" "never more than 2 connections"
assert_eq 0 "$(metric timeouts)" "no acquire timed out"
assert_eq 24 "$(metric ok)" "24 steps ran"
assert_eq $((b0 - 2400)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC007'")" "24 debits"

# One connection, an acquire timeout of 5 ms, steps of 100 ms: most steps
# find no connection in time and are told to retry later.
start_worker banking --capacity 4 --pool-max 1 --acquire-timeout 5 --fault delay=debit_account:100
wait_workers 1
ids=""
for i in $(seq 1 8); do debit_saga "short$i" 100; ids="$ids short$i"; done
wait_ended $ids
for id in $ids; do assert_eq completed "$(saga_state "$id")" "$id completed"; done
retried=0
for id in $ids; do
    tries=$(zsaga status "$id" --json | sed -n 's/.*"attempts": \([0-9]*\).*/\1/p' | head -n 1)
    [ "$tries" -le 1 ] && continue
    retried=$((retried + 1))
    zsaga status "$id" | grep -q "connection pool exhausted" ||
        fail "$id was retried without the pool's reason: $(zsaga status "$id")"
done
[ $retried -gt 0 ] || fail "no step was told to retry later"
kill -TERM "$W_banking"; wait "$W_banking" 2>/dev/null || true
[ "$(metric timeouts)" -gt 0 ] || fail "the pool reported no acquire timeout: $(pool_line)"
assert_eq 0 "$(metric failed)" "no step failed"
assert_eq $((b0 - 3200)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC007'")" "8 more debits, each once"
assert_eq 32 "$(q banking "SELECT COUNT(*) FROM ledger WHERE account = 'ACC007'")" "one ledger row per saga"
pass "pool exhaustion ($MODE): $retried of 8 sagas retried later"
