# The PostgreSQL server under zsagad's journal killed with SIGKILL and
# restarted while transfers run: zsagad stays up, its batches in flight
# fail and are redone from the journal, it connects again, keeps its
# lease, and every saga a client was told was accepted ends, each effect
# once. The servers are this test's own.
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
use_private_servers
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"
start_zsagad --lease 3000
Z=$ZPID
start_worker banking --capacity 8
wait_workers 1
transfer_saga ref-ok ACC001 ACC002 500
zsaga submit "$T/ref-ok.json" >/dev/null || fail "ref-ok refused"
wait_ended ref-ok
rows_ok=$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'ref-ok'")

: >"$T/accepted"
(
    i=0
    while [ $i -lt 60 ]; do
        subs=""
        for c in 1 2 3 4; do
            i=$((i + 1))
            id="j-$i"
            if [ $((i % 3)) -eq 0 ]; then
                transfer_saga "$id" ACC001 ACC002 $((100 + i)) fail
            else
                transfer_saga "$id" ACC001 ACC002 $((100 + i))
            fi
            { zsaga --timeout 3000 submit "$T/$id.json" >/dev/null 2>&1 && echo "$id" >>"$T/accepted"; } &
            subs="$subs $!"
        done
        for p in $subs; do wait "$p" || true; done
        sleep 0.05
    done
) &
L=$!
sleep 0.6
"$TOP/deploy/servers.sh" kill "$SERVERS" pg
sleep 1
"$TOP/deploy/servers.sh" start "$SERVERS" pg >>"$T/servers-start.log" 2>&1 || fail "pg did not restart"
wait $L
kill -0 "$Z" 2>/dev/null || fail "zsagad died with its database"
grep -q "journal (postgresql): connection made again" "$T/zsagad.log" ||
    fail "zsagad did not say it connected again"
WAIT_S=120 wait_ended $(cat "$T/accepted")
kill -0 "$Z" 2>/dev/null || fail "zsagad died"
grep -q "deposed" "$T/zsagad.log" && fail "zsagad lost its lease to nobody"

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
[ $n_ok -gt 0 ] || fail "no transfer completed"
echo "accepted: $(wc -l <"$T/accepted") sagas ($n_ok completed, $n_rev reversed)"
pass "journal's database killed"
