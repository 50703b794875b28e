# The barrier on Redis, where it is one Lua script with the effect: a
# duplicate, a compensation before its action, an action after its
# compensation, two copies at once and a sticky failure, against a real
# fraud worker and a real Redis. Each has exactly one effect.
. "$(dirname "$0")/lib.sh"
[ "$(backend_of fraud)" = redis ] || fail "run with MODE servers, pg or my"
seed fraud
R() { redis-cli -u "$(uri_of fraud)" "$@"; }
start_worker fraud
P="$BIN/tests/zsaga-probe"
D='{"customer":"C100","amount":5000,"currency":"USD","account":"ACC001"}'
window() { R ZCARD fraud:velocity:C100; }

# Duplicate delivery: the second answer is the stored one; one entry.
out=$($P worker "$WK" "execute:dup:s1:risk_assessment:1:$D" "execute:dup:s1:risk_assessment:2:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action ok')" "both answers ok: $out"
assert_eq "$(echo "$out" | sed -n 1p | cut -d' ' -f4-)" "$(echo "$out" | sed -n 2p | cut -d' ' -f4-)" "same stored output"
echo "$out" | sed -n 1p | grep -q 'window_count=1 risk_level="low"' || fail "output kept its integer: $out"
assert_eq 1 "$(window)" "one velocity entry"
assert_eq active "$(R HGET 'fraud:flag:{dup}:s1' status)" "one flag"
start_worker fraud
# Compensation before its action: null compensation, then the action is refused.
out=$($P worker "$WK" "compensate:early:s1:clear_risk_flag:1:$D" "execute:early:s1:risk_assessment:1:$D")
assert_eq "compensation ok -" "$(echo "$out" | sed -n 1p | cut -d' ' -f1-3)" "null compensation: $out"
assert_eq "action failed compensated" "$(echo "$out" | sed -n 2p | cut -d' ' -f1-3)" "late action refused"
assert_eq 0 "$(R EXISTS 'fraud:flag:{early}:s1')" "no flag from either"
assert_eq 1 "$(window)" "no velocity entry from either"
start_worker fraud
# Action, then its compensation twice, then the action again.
out=$($P worker "$WK" "execute:undo:s1:risk_assessment:1:$D" "compensate:undo:s1:clear_risk_flag:1:$D" \
    "compensate:undo:s1:clear_risk_flag:2:$D" "execute:undo:s1:risk_assessment:2:$D")
assert_eq 4 "$(echo "$out" | grep -c ' ok ')" "all four answered ok: $out"
assert_eq cleared "$(R HGET 'fraud:flag:{undo}:s1' status)" "flag cleared"
assert_eq 1 "$(window)" "the undone entry left the window, and the replayed action added none"
assert_eq "$(echo "$out" | sed -n 2p | cut -d' ' -f4-)" "$(echo "$out" | sed -n 3p | cut -d' ' -f4-)" "duplicate compensation answers as the first"
start_worker fraud --capacity 4 --pool-max 4
# Two copies at the same moment, on two connections.
out=$($P worker "$WK" "twice:execute:race:s1:risk_assessment:1:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action ok')" "both copies ok: $out"
assert_eq 2 "$(window)" "one entry for two copies"
# A failure for good is recorded and answered the same way every time.
big='{"customer":"C100","amount":900000000,"currency":"USD"}'
start_worker fraud
out=$($P worker "$WK" "execute:poor:s1:risk_assessment:1:$big" "execute:poor:s1:risk_assessment:2:$D")
assert_eq 2 "$(echo "$out" | grep -c '^action failed velocity_exceeded')" "failure is sticky: $out"
assert_eq 2 "$(window)" "a failed check adds nothing, even when retried with a smaller amount"
# An amount Lua cannot hold exactly is refused, not rounded.
huge='{"customer":"C101","amount":9007199254740993,"currency":"USD"}'
out=$($P worker "$WK" "execute:huge:s1:risk_assessment:1:$huge")
echo "$out" | grep -q '^action failed bad_params' || fail "huge amount: $out"
assert_eq 0 "$(R ZCARD fraud:velocity:C101)" "a refused amount leaves no entry"
pass "barrier on Redis"
