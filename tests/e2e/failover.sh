# The PostgreSQL primary under zsagad's journal and the banking database
# killed with SIGKILL while transfers run, and its synchronous standby
# promoted: zsagad and the worker reach the new primary through their
# multi-host URIs (target_session_attrs=read-write), zsagad keeps its
# lease, and no acknowledged saga or effect is lost: every saga a client
# was told was accepted ends, a completed transfer has all its ledger rows
# and a reversed one nets to zero. The servers are this test's own.
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
use_private_servers
PRIVATE_ONLY="pg pgstandby"
servers_up
[ -n "${ZSAGA_PG_HA:-}" ] || fail "the servers have no standby"
ZSAGA_PG=$ZSAGA_PG_HA
PG_Q=$ZSAGA_PG_HA_Q
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"
start_zsagad --lease 3000
Z=$ZPID
start_worker banking --capacity 8
wait_workers 1
reference_transfer

: >"$T/accepted"
load_transfers f 60 &
L=$!
sleep 0.6
t0=$(date +%s%N)
"$TOP/deploy/servers.sh" kill "$SERVERS" pg
sleep 1
"$TOP/deploy/servers.sh" promote "$SERVERS" >>"$T/servers-start.log" 2>&1 || fail "no promotion"
t1=$(date +%s%N)
wait_log "journal (postgresql): connection made again" 60
t2=$(date +%s%N)
echo "primary killed at 0 ms, standby promoted at $(( (t1 - t0) / 1000000 )) ms," \
    "zsagad's journal back at $(( (t2 - t0) / 1000000 )) ms"
wait $L
kill -0 "$Z" 2>/dev/null || fail "zsagad died with its primary"
# shellcheck disable=SC2046
WAIT_S=120 wait_ended $(cat "$T/accepted")
kill -0 "$Z" 2>/dev/null || fail "zsagad died"
grep -q "deposed" "$T/zsagad.log" && fail "zsagad lost its lease to nobody"
assert_eq f "$(psql -X -t -A "$ZSAGA_PG/postgres$PG_Q" -c 'SELECT pg_is_in_recovery()')" \
    "the journal is on the promoted standby"

check_transfers_once "$ROWS_OK"
pass "PostgreSQL failover"
