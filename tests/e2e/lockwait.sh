# A step blocked on a row lock that another session holds: the statement
# timeout ends the wait (PostgreSQL 57014, MariaDB 1969) instead of holding
# the connection, the worker runs the transaction again, and once the lock
# is gone the step applies exactly once.
. "$(dirname "$0")/lib.sh"
seed banking
start_zsagad
start_worker banking --capacity 2 --statement-timeout 300
wait_workers 1
b0=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC007'")

# Another session locks ACC007 for 3 s; wait until it sleeps on the lock.
case $(backend_of banking) in
pg)
    q banking "BEGIN; SELECT 1 FROM accounts WHERE number = 'ACC007' FOR UPDATE;
               SELECT pg_sleep(3); COMMIT" >/dev/null &
    holding="SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
    ;;
my)
    q banking "BEGIN; SELECT 1 FROM accounts WHERE number = 'ACC007' FOR UPDATE;
               SELECT SLEEP(3); COMMIT" >/dev/null &
    holding="SELECT COUNT(*) FROM information_schema.processlist WHERE state = 'User sleep'"
    ;;
*) fail "lockwait needs a server (pg or my), not $MODE" ;;
esac
HOLDER=$!
i=0
until [ "$(q banking "$holding")" = 1 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the other session never took its lock"
    sleep 0.05
done
cat >"$T/lw.json" <<JSON
{ "id": "lw", "name": "debit a locked account", "steps": [
    { "id": "debit", "system": "banking", "action": "debit_account", "compensation": "credit_account",
      "retry": { "attempts": 30, "backoff_ms": 200, "backoff_max_ms": 500 },
      "params": { "account": "ACC007", "amount": 100, "currency": "USD" } } ] }
JSON
zsaga submit "$T/lw.json" >/dev/null
wait $HOLDER
wait_ended lw
assert_eq completed "$(saga_state lw)" "the debit went through once the lock was released"
assert_eq $((b0 - 100)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC007'")" "debited once"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'lw'")" "one ledger row"
kill -USR1 "$W_banking"
sleep 0.3
line=$(grep "pool total" "$T/worker-banking.log" | tail -n 1)
replays=$(echo "$line" | sed -n 's/.* db_replays=\([0-9]*\).*/\1/p')
[ "${replays:-0}" -gt 0 ] || fail "the statement timeout never ended a wait: $line"
pass "row lock held elsewhere ($MODE): the statement timeout ended $replays waits, the debit applied once"
