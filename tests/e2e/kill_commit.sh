# zsagad killed by SIGKILL at both edges of a group commit while sagas
# run: with a batch written but not committed (--crash-in-commit: the
# committer thread dies in it while the loop already applies the next
# batch in memory), and once a commit is durable but before anything that
# follows from it has been sent (--crash-after-commit). After a restart
# every saga a client was told was accepted is in the journal and ends,
# and every effect is applied once: a completed transfer leaves exactly
# the ledger rows of a clean one, a reversed one nets to zero on every
# account.
. "$(dirname "$0")/lib.sh"
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"
start_zsagad
start_worker banking --capacity 8
wait_workers 1

# A clean run of each kind: the ledger rows a transfer leaves.
reference_transfer
transfer_saga ref-fail ACC001 ACC002 500 fail
zsaga submit "$T/ref-fail.json" >/dev/null || fail "ref-fail refused"
wait_ended ref-fail
assert_eq compensated "$(saga_state ref-fail)" "the failing reference is reversed"
kill -TERM "$ZPID"; wait "$ZPID" || fail "zsagad did not stop cleanly"

: >"$T/accepted"
for mode in in after; do
    # Die a few commits into the load; a restart re-registers the worker
    # first, so count from the commits a start makes.
    start_zsagad "--crash-$mode-commit" 20
    zpid=$ZPID
    load_transfers "$mode" 200 "$zpid"
    wait "$zpid" 2>/dev/null && fail "zsagad was to die by SIGKILL at commit 20 ($mode)"
    grep -q "^$mode-" "$T/accepted" || fail "no saga was accepted before the crash ($mode)"
    start_zsagad
    wait_workers 1
    # shellcheck disable=SC2046
    wait_ended $(grep "^$mode-" "$T/accepted")
    kill -TERM "$ZPID"; wait "$ZPID" || fail "zsagad did not stop cleanly"
done
start_zsagad
wait_workers 1

check_transfers_once "$ROWS_OK"
pass "kill zsagad at the edges of a group commit"
