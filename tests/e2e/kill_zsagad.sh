# zsagad killed with SIGKILL mid-saga, then restarted: the saga finishes,
# and every effect is applied once.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
start_worker banking
start_worker fraud
start_worker compliance
# The payment takes 1.5 s: zsagad dies while it is in flight.
start_worker payments --fault delay=process_payment:1500
wait_workers 4
before=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")
submit "$EXAMPLES/funds-transfer.json" k1
i=0
until zsaga status k1 --json | tr -d ' \n' | grep -q '"step":"payment","what":"step.dispatched"'; do
    i=$((i + 1)); [ $i -lt 200 ] || fail "payment never dispatched"; sleep 0.05
done
kill -KILL "$ZPID"; wait "$ZPID" 2>/dev/null || true
start_zsagad
wait_state k1 completed 30
assert_eq $((before - 100000)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")" "debited once"
assert_eq 1 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'k1'")" "paid once"
assert_eq 1 "$(q compliance "SELECT COUNT(*) FROM notifications WHERE saga = 'k1'")" "confirmed once"

# Kill it again in a compensation, over and over, while sagas run.
for n in 1 2 3; do
    submit "$EXAMPLES/funds-transfer-fails.json" kf$n
done
sleep 0.2
kill -KILL "$ZPID"; wait "$ZPID" 2>/dev/null || true
start_zsagad
for n in 1 2 3; do wait_state kf$n compensated 30; done
for n in 1 2 3; do
    assert_eq 0 "$(q banking "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE saga = 'kf$n'")" "kf$n nets to zero"
done
assert_eq $((before - 100000)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")" "balance after all"
pass "kill zsagad"
