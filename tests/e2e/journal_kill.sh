# The PostgreSQL server under zsagad's journal killed with SIGKILL and
# restarted while transfers run: zsagad stays up, its batches in flight
# fail and are redone from the journal, it connects again, keeps its
# lease, and every saga a client was told was accepted ends, each effect
# once. A standby waiting for the lease waits through the outage too, and
# takes over when the active one stops. The servers are this test's own.
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
use_private_servers
PRIVATE_ONLY=pg # the journal's server, and banking's in this mode
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"
# A lease longer than the outage: the standby must not take over while
# the active one waits for the same database.
start_zsagad --lease 10000
Z=$ZPID
PIDS="$PIDS $Z"
start_worker banking --capacity 8
wait_workers 1
start_zsagad --lease 10000
B=$ZPID
PIDS="$PIDS $B"
wait_log "zsagad\[$B\] info: standby"
reference_transfer

: >"$T/accepted"
load_transfers j 60 &
L=$!
sleep 0.6
"$TOP/deploy/servers.sh" kill "$SERVERS" pg
sleep 1
"$TOP/deploy/servers.sh" start "$SERVERS" pg >>"$T/servers-start.log" 2>&1 || fail "pg did not restart"
wait $L
kill -0 "$Z" 2>/dev/null || fail "zsagad died with its database"
wait_log "journal (postgresql): connection made again"
WAIT_S=120 wait_ended $(cat "$T/accepted")
kill -0 "$Z" 2>/dev/null || fail "zsagad died"
grep -q "deposed" "$T/zsagad.log" && fail "the active zsagad lost its lease in the outage"

check_transfers_once "$ROWS_OK"

kill -0 "$B" 2>/dev/null || fail "the standby died with the journal's database"
kill -TERM "$Z"
wait_exit "$Z" 30
assert_eq 0 "$EXIT_RC" "the active zsagad stops cleanly"
wait_log "zsagad\[$B\] info: took the journal's lease" 30
transfer_saga after ACC001 ACC002 700
zsaga submit "$T/after.json" >/dev/null || fail "the standby, now active, refused a saga"
wait_ended after
pass "journal's database killed"
