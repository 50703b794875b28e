# A zombie worker is fenced. Instance A takes a debit and is frozen
# (SIGSTOP) inside it, past the heartbeat timeout; zsagad declares it lost
# and sends the step, under a new lease, to instance B. Then A wakes up
# (SIGCONT) and finishes its copy. Whatever A's late answer says, zsagad
# drops it (fenced_results), the debit is applied once, and the saga
# completes on B's word.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad --heartbeat-timeout 1000
start_worker banking --instance A --fault "delay=debit_account:2500"
A=$W_banking
start_worker fraud
start_worker payments
start_worker compliance
wait_workers 4
b0=$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")
cat >"$T/z1.json" <<'JSON'
{ "id": "z1", "steps": [
  { "id": "debit", "system": "banking", "action": "debit_account", "compensation": "credit_account",
    "params": { "account": "ACC001", "amount": 700, "currency": "USD" } } ] }
JSON
zsaga submit "$T/z1.json" >/dev/null
# A holds the step (it sleeps inside its transaction): freeze it there.
wait_history z1 step.dispatched
kill -STOP "$A"
start_worker banking --instance B
wait_history z1 step.reassigned
kill -CONT "$A"
wait_state z1 completed 60
# A's late answer arrives after its sleep; zsagad must count it as fenced.
deadline=$(($(date +%s) + 20))
fenced() { zsaga stats --json | sed -n 's/.*"fenced_results": \([0-9]*\).*/\1/p'; }
until [ "$(fenced)" -ge 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "A's late answer was not fenced (fenced_results $(fenced))"
    sleep 0.05
done
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'z1'")" "one debit"
assert_eq $((b0 - 700)) "$(q banking "SELECT balance FROM accounts WHERE number = 'ACC001'")" "balance moved once"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM zsaga_barrier WHERE saga = 'z1' AND state = 'done'")" "one barrier row"
pass "zombie fenced: A's late answer dropped ($(fenced) fenced), the debit applied once"
