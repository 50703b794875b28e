# A journal of layout 1 (tests/fixtures/journal-v1) opens with this
# zsagad: its sagas read with their steps and history, the running one
# resumes and completes, a client retrying the old submit (params in their
# original key order) gets "duplicate", and retention removes the old
# ended sagas.
. "$(dirname "$0")/lib.sh"
FX="$TOP/tests/fixtures/journal-v1"
mkdir -p "$T/journal"
cp "$FX/data.mdb" "$T/journal/"
chmod 600 "$T/journal/data.mdb"
seed banking
start_zsagad
start_worker banking
wait_workers 1
wait_state old-running completed 30
assert_eq completed "$(saga_state old-done)" "old-done read"
assert_eq compensated "$(saga_state old-undone)" "old-undone read"
zsaga status old-undone --json >"$T/undone.json"
grep -q '"reason": "step .bad. failed: currency_mismatch' "$T/undone.json" || fail "old-undone's reason: $(head -20 "$T/undone.json")"
grep -q '"what": "step.compensated"' "$T/undone.json" || fail "old-undone's history"
assert_eq 1 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'old-running'")" "the resumed credit applied once"
assert_eq 3 "$(zsaga list --json | grep -c '"id": "old-')" "all three listed"
assert_eq "accepted old-done (completed), already submitted" "$(zsaga submit "$FX/old-done.json")" \
    "the old submit retried is a duplicate"
# Retention takes the old ended sagas like any other.
kill -TERM $ZPID
wait $ZPID 2>/dev/null || true
start_zsagad --retain 1s
wait_workers 1
deadline=$(($(date +%s) + 30))
until [ "$(zsaga stats --json | sed -n 's/.*"sagas_removed": \([0-9]*\).*/\1/p')" -ge 3 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "retention did not remove the old sagas: $(zsaga stats | grep removed)"
    sleep 0.2
done
zsaga status old-done >/dev/null 2>&1 && fail "old-done is still there"
assert_eq "accepted old-done (completed), already submitted" "$(zsaga submit "$FX/old-done.json")" \
    "its tombstone still knows it"
pass "a layout 1 journal reads, resumes and ages out"
