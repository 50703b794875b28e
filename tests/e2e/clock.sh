# The wall clock of zsagad's host steps an hour forward, then two back,
# while steps run (libfaketime on zsagad alone; its monotonic clock is
# left real). Step timeouts and the lost-worker check run on the
# monotonic clock: a step neither times out at the jump forward nor
# waits an hour after the jump back, and a dead worker is still noticed.
. "$(dirname "$0")/lib.sh"
FT=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
[ -n "$FT" ] || fail "libfaketime is missing (deploy/install-deps.sh installs it)"
clock() { echo "$1" >"$T/clock"; }
clock "+0"
seed banking
# ASan wants to come first among the preloaded libraries; here it comes
# second, which is harmless for this test.
LD_PRELOAD=$FT FAKETIME_TIMESTAMP_FILE=$T/clock FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" start_zsagad
start_worker banking --fault "delay=debit_account:3000"
wait_workers 1
# The fake clock is in force: zsagad's wall-clock timestamps move with it.
wall_ms() { zsaga status "$1" --json | sed -n 's/^  "created_ms": \([0-9]*\).*/\1/p'; }

debit() { # ID TIMEOUT_MS
    cat >"$T/$1.json" <<JSON
{ "id": "$1", "steps": [
  { "id": "d", "system": "banking", "action": "debit_account", "compensation": "credit_account",
    "timeout_ms": $2, "retry": { "attempts": 1 },
    "params": { "account": "ACC001", "amount": 100, "currency": "USD" } } ] }
JSON
    zsaga submit "$T/$1.json" >/dev/null
}
lost() { zsaga stats --json | sed -n 's/.*"workers_lost": \([0-9]*\).*/\1/p'; }

# ---- forward an hour, mid-step: nothing fires early --------------------------
debit fwd 10000
wait_history fwd step.dispatched
clock "+1h"
wait_state fwd completed 30
zsaga status fwd --json | grep -q '"what": "step.timed_out"' && fail "the jump forward timed the step out"
assert_eq 1 "$(zsaga status fwd --json | sed -n 's/^      "attempts": \([0-9]*\).*/\1/p')" "one attempt"
assert_eq 0 "$(lost)" "no worker declared lost at the jump forward"
debit probe 10000
wait_state probe completed 30
skew=$(($(wall_ms probe) - $(wall_ms fwd)))
[ "$skew" -gt 3000000 ] || fail "the fake clock did not move zsagad's wall clock (created_ms apart by $skew ms)"

# ---- back two hours, mid-step: the timeout still fires -----------------------
# The step's 1 s timeout passes while the worker sleeps 3 s inside it; a
# timer on the wall clock would wait two hours more.
debit back 1000
wait_history back step.dispatched
clock "-1h"
wait_history back step.timed_out
wait_state back compensated 30

# ---- back again, a frozen worker: still declared lost --------------------------
kill -STOP "$W_banking"
clock "-3h"
deadline=$(($(date +%s) + 20))
until [ "$(lost)" -ge 1 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { kill -CONT "$W_banking"; fail "a frozen worker was never declared lost"; }
    sleep 0.1
done
kill -CONT "$W_banking"
pass "clock steps: no early timeout forward, timeouts and a lost worker on time backward"
