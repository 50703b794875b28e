# The seeds' scenarios, checked in the databases themselves: on SQLite, or
# (MODE servers) on PostgreSQL, MariaDB and Redis.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
for s in banking payments fraud compliance; do start_worker $s; done
wait_workers 4

# Loan processing completes: one active loan, one active schedule, one
# passed fraud check, one generated report.
submit "$EXAMPLES/loan-processing.json" loan-1
wait_state loan-1 completed
loan=$(q banking "SELECT account FROM loans WHERE saga = 'loan-1' AND status = 'active'")
[ -n "$loan" ] || fail "no active loan for loan-1"
assert_eq active "$(q banking "SELECT status FROM accounts WHERE number = '$loan'")" "loan account"
assert_eq 1 "$(q payments "SELECT COUNT(*) FROM payment_schedules WHERE saga = 'loan-1' AND status = 'active' AND loan_account = '$loan'")" "schedule uses step 1's output"
assert_eq 76619 "$(q payments "SELECT instalment FROM payment_schedules WHERE saga = 'loan-1'")" "instalment of 25000.00 at 6.5% over 36 months"
assert_eq passed "$(fraud_status fraud_checks loan-1 fraud_check)" "fraud check"
assert_eq "$loan" "$(q compliance "SELECT subject FROM compliance_reports WHERE saga = 'loan-1' AND status = 'generated'")" "report subject"

# Funds transfer failing at step 3: risk flag cleared, then account
# credited, in that order; the balance is back; nothing paid.
before=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")
submit "$EXAMPLES/funds-transfer-fails.json" transfer-1
wait_state transfer-1 compensated
assert_eq "$before" "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")" "ACC001 balance restored"
assert_eq 0 "$(q banking "SELECT SUM(amount) FROM ledger WHERE saga = 'transfer-1'")" "ledger nets to zero"
assert_eq 2 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'transfer-1'")" "one debit, one credit back"
assert_eq cleared "$(fraud_status risk_flags transfer-1 risk)" "risk flag cleared"
assert_eq 0 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'transfer-1'")" "no payment"
assert_eq failed "$(q payments "SELECT state FROM zsaga_barrier WHERE saga = 'transfer-1' AND step = 'payment'")" "payment failure recorded in its barrier"
order=$(zsaga status transfer-1 --json | grep -o '"what": "step.compensated"' | wc -l)
assert_eq 2 "$order" "two compensations"
first=$(zsaga status transfer-1 --json | tr -d ' \n' | grep -o '"step":"[a-z]*","what":"step.compensated"' | head -1)
assert_eq '"step":"risk","what":"step.compensated"' "$first" "risk flag cleared before the credit"
assert_eq 0 "$(q compliance "SELECT COUNT(*) FROM notifications WHERE saga = 'transfer-1'")" "no confirmation sent"

# Insufficient funds: 200,000.00 from 5,000.00 fails and changes no balance.
sum_before=$(q banking "SELECT number, balance FROM accounts ORDER BY number")
submit "$EXAMPLES/insufficient-funds.json" poor-1
wait_state poor-1 compensated
assert_eq "$sum_before" "$(q banking "SELECT number, balance FROM accounts ORDER BY number")" "no balance changed"
zsaga status poor-1 | grep -q "insufficient_funds" || fail "reason names insufficient funds"

# Resubmitting the same id returns the same saga; a different body is refused.
out=$(zsaga submit "$T/loan-1.json")
echo "$out" | grep -q "already submitted" || fail "resubmit not recognised: $out"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM loans WHERE saga = 'loan-1'")" "resubmit created nothing"
sed 's/2500000/2600000/g' "$T/loan-1.json" > "$T/loan-1b.json"
if zsaga submit "$T/loan-1b.json" 2>"$T/err.txt"; then fail "conflicting resubmit accepted"; fi
grep -q conflict "$T/err.txt" || fail "conflict not reported: $(cat "$T/err.txt")"

# Cancel of a running saga compensates it.
kill -TERM "$W_payments"; wait "$W_payments" 2>/dev/null || true
submit "$EXAMPLES/funds-transfer.json" cancel-1
wait_state cancel-1 running
i=0; until zsaga status cancel-1 --json | grep -q '"step.succeeded"'; do i=$((i+1)); [ $i -lt 200 ] || fail "risk step never ran"; sleep 0.05; done
sleep 0.3
zsaga cancel cancel-1 --reason "customer asked" >/dev/null
start_worker payments
wait_state cancel-1 compensated
assert_eq 0 "$(q banking "SELECT SUM(amount) FROM ledger WHERE saga = 'cancel-1'")" "cancelled transfer nets to zero"
zsaga status cancel-1 | grep -q "cancelled by admin: customer asked" || fail "cancel reason and who kept"

"$BIN/workers/zsaga-worker-compliance" verify-audit --db "$(uri_of compliance)" | grep -q "chain OK" || fail "audit chain"
pass "scenarios ($MODE)"
