# The barrier, end to end against a real worker process and its SQLite
# database: a duplicate, a compensation before its action, an action after
# its compensation, and two copies at once. Each has exactly one effect.
. "$(dirname "$0")/lib.sh"
seed_all
start_worker banking
P="$BIN/tests/zsaga-probe"
D='{"account":"ACC001","amount":1000,"currency":"USD"}'
bal() { q banking "SELECT balance FROM accounts WHERE number = 'ACC001'"; }
b0=$(bal)

# Duplicate delivery: the second answer is the stored one; one debit.
out=$($P worker "$WK" "execute:dup:s1:debit_account:1:$D" "execute:dup:s1:debit_account:2:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action ok')" "both answers ok: $out"
assert_eq "$(echo "$out" | sed -n 1p | cut -d' ' -f4-)" "$(echo "$out" | sed -n 2p | cut -d' ' -f4-)" "same stored output"
assert_eq $((b0 - 1000)) "$(bal)" "one debit"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'dup'")" "one ledger row"
start_worker banking
# Compensation before its action: null compensation, then the action is refused.
out=$($P worker "$WK" "compensate:early:s1:credit_account:1:$D" "execute:early:s1:debit_account:1:$D")
assert_eq "compensation ok -" "$(echo "$out" | sed -n 1p | cut -d' ' -f1-3)" "null compensation"
assert_eq "action failed compensated" "$(echo "$out" | sed -n 2p | cut -d' ' -f1-3)" "late action refused"
assert_eq $((b0 - 1000)) "$(bal)" "no effect from either"
assert_eq 0 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'early'")" "no ledger rows"
start_worker banking
# Action, then its compensation twice, then the action again.
out=$($P worker "$WK" "execute:undo:s1:debit_account:1:$D" "compensate:undo:s1:credit_account:1:$D" \
    "compensate:undo:s1:credit_account:2:$D" "execute:undo:s1:debit_account:2:$D")
assert_eq 4 "$(echo "$out" | grep -c ' ok ')" "all four answered ok: $out"
assert_eq $((b0 - 1000)) "$(bal)" "debit undone exactly once"
assert_eq 0 "$(q banking "SELECT SUM(amount) FROM ledger WHERE saga = 'undo'")" "ledger nets to zero"
assert_eq 2 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'undo'")" "one debit, one credit"
start_worker banking --capacity 4 --pool-max 4
# Two copies at the same moment, on two connections.
out=$($P worker "$WK" "twice:execute:race:s1:debit_account:1:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action ok')" "both copies ok: $out"
assert_eq $((b0 - 2000)) "$(bal)" "one debit for two copies"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'race'")" "one ledger row"
# A failure for good is recorded and answered the same way every time.
big='{"account":"ACC001","amount":900000000,"currency":"USD"}'
start_worker banking
out=$($P worker "$WK" "execute:poor:s1:debit_account:1:$big" "execute:poor:s1:debit_account:2:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action failed insufficient_funds')" "failure is sticky: $out"
assert_eq $((b0 - 2000)) "$(bal)" "a failed debit changes nothing, even when retried with a smaller amount"
pass "barrier"
