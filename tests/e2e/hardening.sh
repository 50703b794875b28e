# Input that once slipped through, on each backend (MODE as in lib.sh):
# sanctions screening by look-alike names, a NUL inside a param, an
# overdraft limit without bound, a credit past the largest balance.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
for s in banking payments fraud compliance; do start_worker $s; done
wait_workers 4
A="/usr/bin/python3 $(dirname "$0")/attacker.py"

one_step() { # ID SYSTEM ACTION COMPENSATION PARAMS_JSON
    cat >"$T/$1.json" <<JSON
{ "id": "$1", "name": "$1", "steps": [
  { "id": "s1", "system": "$2", "action": "$3", "compensation": "$4", "params": $5 } ] }
JSON
    zsaga submit "$T/$1.json" >/dev/null
}
code_of() { zsaga status "$1" --json | sed -n 's/^ *"code": "\([a-z_]*\)".*/\1/p' | head -1; }

# Sanctions: every spelling of the listed name is blocked.
i=0
for name in "ben-sanctioned" "BEN-SANCTIONED " "  Ben  -SANCTIONED" "BEN‑SANCTIONED" \
    "BEN−SANCTIONED" "ВЕN-SАNCTIONED" "BEN-SANCTIONED​" "ＢＥＮ-SANCTIONED"; do
    i=$((i + 1))
    one_step "san$i" payments process_payment reverse_payment \
        "{ \"from_account\": \"ACC001\", \"beneficiary\": \"$name\", \"amount\": 100, \"currency\": \"USD\" }"
    wait_state "san$i" compensated
    assert_eq beneficiary_blocked "$(code_of "san$i")" "beneficiary '$name'"
done
one_step san-ctl payments process_payment reverse_payment \
    '{ "from_account": "ACC001", "beneficiary": "BEN\tSANCTIONED", "amount": 100, "currency": "USD" }'
wait_state san-ctl compensated
assert_eq bad_params "$(code_of san-ctl)" "a control character in a name"
one_step san-ok payments process_payment reverse_payment \
    '{ "from_account": "ACC001", "beneficiary": "BEN-SANCTIONED-NOT", "amount": 100, "currency": "USD" }'
wait_state san-ok completed
assert_eq 0 "$(q payments "SELECT COUNT(*) FROM payments WHERE saga LIKE 'san%' AND saga <> 'san-ok'")" \
    "no payment to a sanctioned name"

# A NUL inside a string param is refused at submit: nothing is journaled.
out=$(E2E_DIR="$(dirname "$0")" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 - "$CL" "$ZSAGA_KEY" "$ZSAGA_SERVER_KEY" <<'PY'
import os, sys, zmq, msgpack
ep, key, skey = sys.argv[1:]
sys.path.insert(0, os.environ["E2E_DIR"])
from attacker import connect  # the same client as the attacks test
c = connect(zmq.Context(), zmq.DEALER, ep, key, skey)
saga = {"id": "nul1", "name": "nul", "steps": [{"id": "s1", "system": "banking",
        "action": "credit_account", "compensation": "debit_account",
        "params": {"account": "ACC001\x00ACC002", "amount": 100, "currency": "USD"}}]}
c.send(msgpack.packb({"v": 1, "type": "submit", "req": 5, "saga": saga}))
print(msgpack.unpackb(c.recv(), raw=False)["type"] if c.poll(3000) else "no-answer")
PY
)
assert_eq rejected "$out" "a NUL in a param"
zsaga status nul1 >/dev/null 2>&1 && fail "the saga with a NUL was journaled"

# open_account: the overdraft limit is bounded by bank_settings.max_overdraft.
one_step od1 banking open_account close_account \
    '{ "customer": "C001", "type": "checking", "currency": "USD", "overdraft_limit": 1000000000000000000 }'
wait_state od1 compensated
assert_eq bad_params "$(code_of od1)" "an overdraft of 10^18"
one_step od2 banking open_account close_account \
    '{ "customer": "C001", "type": "checking", "currency": "USD", "overdraft_limit": 50000 }'
wait_state od2 completed

# A credit that would pass INT64_MAX is refused; the balance stays an
# exact integer (SQLite would have made it a float).
q banking "UPDATE accounts SET balance = 9223372036854775000 WHERE number = 'ACC005'" >/dev/null
one_step big1 banking credit_account debit_account \
    '{ "account": "ACC005", "amount": 1000000, "currency": "USD" }'
wait_state big1 compensated
assert_eq balance_overflow "$(code_of big1)" "credit past INT64_MAX"
assert_eq 9223372036854775000 "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC005'")" \
    "balance unchanged"
one_step big2 banking credit_account debit_account \
    '{ "account": "ACC005", "amount": 807, "currency": "USD" }'
wait_state big2 completed
assert_eq 9223372036854775807 "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC005'")" \
    "a credit up to INT64_MAX exactly"
pass "hardening ($MODE)"
