# Sagas spread over 3 partitions of a journal on PostgreSQL, each served by
# its own zsagad (docs/design.md, "Scale-out"), with a fourth standing by.
# Clients are given every zsagad's endpoint and follow not_leader to the
# one serving a saga's partition; the worker serves them all. Under load:
# kill -9 of one: the standby takes its partition; a fifth is added and
# stands by; the clean stop of another hands its partition to it. Every
# saga a client was told was accepted ends, each effect once, and every
# partition held sagas.
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
N=3
LEASE=1500
CL=""
WK=""
for i in 1 2 3 4 5; do
    CL="$CL${CL:+,}ipc://$T/c$i.sock"
    WK="$WK${WK:+,}ipc://$T/w$i.sock"
done
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"

start_part() { # I: zsagad number I, on endpoints of its own
    journal_setup
    # shellcheck disable=SC2086
    "$BIN/orchestrator/zsagad" $JOURNAL_ARGS --partitions $N --lease $LEASE \
        --clients "ipc://$T/c$1.sock" --workers "ipc://$T/w$1.sock" --events "ipc://$T/e$1.sock" \
        --heartbeat-timeout 1500 --key "$K/zsagad.key_secret" --authorized "$T/authorized" \
        --http 127.0.0.1:0 2>>"$T/zsagad.log" &
    eval "Z$1=$!"
    PIDS="$PIDS $!"
}
# holder_of P: the pid of the zsagad that took partition P last
holder_of() {
    sed -n "s/.*zsagad\[\([0-9]*\)\] info: took the lease of the journal's partition $1 of.*/\1/p" \
        "$T/zsagad.log" | tail -n 1
}

for i in 1 2 3; do
    start_part $i
    wait_log "took the lease of the journal's partition $((i - 1)) of $N"
done
start_part 4
wait_log "zsagad\[$Z4\] info: standby"
# What a tired operator may type: another partition count on this
# journal, or a wildcard that clients could not be sent to.
rc=0
# shellcheck disable=SC2086
"$BIN/orchestrator/zsagad" $JOURNAL_ARGS --partitions 2 --clients "ipc://$T/x.sock" \
    --workers "ipc://$T/xw.sock" --events "ipc://$T/xe.sock" --key "$K/zsagad.key_secret" \
    --authorized "$T/authorized" --http off 2>"$T/wrong-count.log" || rc=$?
assert_eq 1 "$rc" "zsagad with another partition count stops"
grep -q "made with 3 partitions; --partitions says 2" "$T/wrong-count.log" ||
    fail "no clear refusal of another partition count: $(cat "$T/wrong-count.log")"
rc=0
# shellcheck disable=SC2086
"$BIN/orchestrator/zsagad" $JOURNAL_ARGS --partitions 3 --clients "tcp://*:0" \
    2>"$T/wildcard.log" || rc=$?
assert_eq 2 "$rc" "a wildcard client endpoint with partitions is refused"
grep -q "give --advertise" "$T/wildcard.log" || fail "no advice for a wildcard: $(cat "$T/wildcard.log")"

start_worker banking --capacity 8
for z in "$Z1" "$Z2" "$Z3"; do wait_log "zsagad\[$z\] info: worker banking-.* registered"; done
reference_transfer

: >"$T/accepted"
load_transfers p 90 &
L=$!
sleep 0.5
victim=$(holder_of 1)
kill -KILL "$victim"
t0=$(date +%s%N)
wait_log "zsagad\[$Z4\] info: took the lease of the journal's partition 1 of $N"
echo "partition 1 taken over $(( ($(date +%s%N) - t0) / 1000000 )) ms after kill -9 of its zsagad (lease $LEASE ms)"
start_part 5
wait_log "zsagad\[$Z5\] info: standby"
wait $L
grep -q "^p-" "$T/accepted" || fail "nothing accepted"
# shellcheck disable=SC2046
WAIT_S=120 wait_ended $(grep "^p-" "$T/accepted")

# The added zsagad serves once a partition is free: the clean stop of
# partition 2's holder gives its lease up at once.
kill -TERM "$(holder_of 2)"
wait_log "zsagad\[$Z5\] info: took the lease of the journal's partition 2 of $N"
load_transfers a 30
# shellcheck disable=SC2046
WAIT_S=60 wait_ended $(grep "^a-" "$T/accepted")

for p in 0 1 2; do
    n=$(psql -X -t -A "$ZSAGA_PG/${TAG}_journal" -c "SELECT count(*) FROM zsaga_journal_p$p WHERE db = 0")
    echo "partition $p: $n sagas"
    [ "$n" -gt 0 ] || fail "partition $p holds no saga"
done
grep -q "not_leader\|deposed" "$T/worker-banking.log" && fail "the worker was refused"
check_transfers_once "$ROWS_OK"
pass "partitions"
