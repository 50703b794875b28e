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
until grep -q "zsagad\[$B\] info: standby" "$T/zsagad.log"; do sleep 0.05; done

transfer_saga ref-ok ACC001 ACC002 500
zsaga submit "$T/ref-ok.json" >/dev/null || fail "ref-ok refused"
wait_ended ref-ok
rows_ok=$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'ref-ok'")

: >"$T/accepted"
load() { # PREFIX N: N transfers, 4 clients at a time; the accepted are noted
    i=0
    while [ $i -lt "$2" ]; do
        subs=""
        for c in 1 2 3 4; do
            i=$((i + 1))
            id="$1-$i"
            if [ $((i % 3)) -eq 0 ]; then
                transfer_saga "$id" ACC001 ACC002 $((100 + i)) fail
            else
                transfer_saga "$id" ACC001 ACC002 $((100 + i))
            fi
            { zsaga --timeout 3000 submit "$T/$id.json" >/dev/null 2>&1 && echo "$id" >>"$T/accepted"; } &
            subs="$subs $!"
        done
        for p in $subs; do wait "$p" || true; done
    done
}

# 1. kill -9 of the active one, mid-load.
load k 40 &
L=$!
sleep 0.5
kill -KILL "$A"
t0=$(date +%s%N)
until grep -q "zsagad\[$B\] info: took the journal's lease" "$T/zsagad.log"; do
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 30 ] || fail "the standby did not take over"
    sleep 0.02
done
echo "takeover after kill -9: $(( ($(date +%s%N) - t0) / 1000000 )) ms (lease $LEASE ms)"
wait $L
grep -q "^k-" "$T/accepted" || fail "nothing accepted around the kill"
# shellcheck disable=SC2046
wait_ended $(grep "^k-" "$T/accepted")

# 2. SIGSTOP of the active one past its lease, with a standby waiting.
start_zsagad --lease $LEASE
C=$ZPID
until grep -q "zsagad\[$C\] info: standby" "$T/zsagad.log"; do sleep 0.05; done
load s 40 &
L=$!
sleep 0.5
kill -STOP "$B"
t0=$(date +%s%N)
until grep -q "zsagad\[$C\] info: took the journal's lease" "$T/zsagad.log"; do
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 30 ] || fail "the standby did not take over from a stopped zsagad"
    sleep 0.02
done
echo "takeover from a stopped zsagad: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
wait $L
# shellcheck disable=SC2046
WAIT_S=60 wait_ended $(grep "^s-" "$T/accepted")
kill -CONT "$B"
rc=0
wait "$B" || rc=$?
assert_eq 1 "$rc" "the deposed zsagad stops with status 1"
grep -q "zsagad\[$B\] error: deposed" "$T/zsagad.log" || fail "the deposed zsagad did not say so"

n_ok=0
n_rev=0
while read -r id; do
    st=$(saga_state "$id")
    rows=$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = '$id'")
    if [ "$st" = completed ]; then
        assert_eq "$rows_ok" "$rows" "$id: the ledger rows of one transfer"
        n_ok=$((n_ok + 1))
    else
        assert_eq compensated "$st" "$id ended"
        net=$(q banking "SELECT COUNT(*) FROM (SELECT account, SUM(amount) AS s FROM ledger
              WHERE saga = '$id' GROUP BY account) t WHERE s <> 0")
        assert_eq 0 "$net" "$id: reversed, every account nets to zero"
        n_rev=$((n_rev + 1))
    fi
done <"$T/accepted"
echo "accepted: $(wc -l <"$T/accepted") sagas ($n_ok completed, $n_rev reversed)"
pass "takeover"
