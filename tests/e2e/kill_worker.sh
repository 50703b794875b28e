# A worker killed with SIGKILL after its local commit and before its reply:
# once restarted, the resent step gets the stored outcome and the effect is
# applied exactly once.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
start_worker banking
start_worker fraud
start_worker compliance
start_worker payments --fault crash-after-commit=process_payment
wait_workers 4
submit "$EXAMPLES/funds-transfer.json" w1
wait "$W_payments" 2>/dev/null || true   # it dies right after committing
assert_eq 1 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'w1'")" "committed before dying"
assert_eq running "$(saga_state w1)" "saga waits for the lost worker"
start_worker payments
wait_state w1 completed 30
assert_eq 1 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'w1'")" "paid exactly once"
zsaga status w1 --json | grep -q '"step.reassigned"' || fail "the step was reassigned after the worker was lost"

# Killed before its commit: nothing was applied, the resend applies it once.
kill -TERM "$W_payments"; wait "$W_payments" 2>/dev/null || true
start_worker payments --fault crash-before-commit=process_payment
submit "$EXAMPLES/funds-transfer.json" w2
wait "$W_payments" 2>/dev/null || true
assert_eq 0 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'w2'")" "nothing committed"
start_worker payments
wait_state w2 completed 30
assert_eq 1 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga = 'w2'")" "paid exactly once"

# Killed after committing a compensation.
kill -TERM "$W_banking"; wait "$W_banking" 2>/dev/null || true
start_worker banking --fault crash-after-commit=credit_account
before=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")
submit "$EXAMPLES/funds-transfer-fails.json" w3
wait "$W_banking" 2>/dev/null || true
start_worker banking
wait_state w3 compensated 30
assert_eq "$before" "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")" "credited back exactly once"
assert_eq 2 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'w3'")" "one debit, one credit"
pass "kill worker"
