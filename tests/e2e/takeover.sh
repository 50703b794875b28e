# Active and standby zsagad on one journal in PostgreSQL (docs/design.md):
# 1. kill -9 of the active one while transfers run: the standby takes the
#    journal's lease once it lapses, recovers, binds the same endpoints and
#    finishes every saga;
# 2. SIGSTOP of the new active one past its lease: a third takes over;
#    SIGCONT: the stopped one finds its lease taken, commits nothing and
#    stops (exit 1, "deposed").
# Every saga a client was told was accepted ends, and every effect is
# applied once (a completed transfer's ledger rows, a reversed one nets to
# zero on every account).
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
LEASE=1500
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"
start_zsagad --lease $LEASE
A=$ZPID
PIDS="$PIDS $A"
start_worker banking --capacity 8
wait_workers 1
start_zsagad --lease $LEASE
B=$ZPID
PIDS="$PIDS $B"
wait_log "zsagad\[$B\] info: standby"

reference_transfer

: >"$T/accepted"

# 1. kill -9 of the active one, mid-load.
load_transfers k 40 &
L=$!
sleep 0.5
kill -KILL "$A"
t0=$(date +%s%N)
wait_log "zsagad\[$B\] info: took the journal's lease"
echo "takeover after kill -9: $(( ($(date +%s%N) - t0) / 1000000 )) ms (lease $LEASE ms)"
wait $L
grep -q "^k-" "$T/accepted" || fail "nothing accepted around the kill"
# shellcheck disable=SC2046
wait_ended $(grep "^k-" "$T/accepted")

# 2. SIGSTOP of the active one past its lease, with a standby waiting.
start_zsagad --lease $LEASE
C=$ZPID
wait_log "zsagad\[$C\] info: standby"
load_transfers s 40 &
L=$!
sleep 0.5
kill -STOP "$B"
t0=$(date +%s%N)
wait_log "zsagad\[$C\] info: took the journal's lease"
echo "takeover from a stopped zsagad: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait $L
# shellcheck disable=SC2046
WAIT_S=60 wait_ended $(grep "^s-" "$T/accepted")
kill -CONT "$B"
wait_exit "$B" 30
assert_eq 1 "$EXIT_RC" "the deposed zsagad stops with status 1"
grep -q "zsagad\[$B\] error: deposed" "$T/zsagad.log" || fail "the deposed zsagad did not say so"

check_transfers_once "$ROWS_OK"
pass "takeover"
