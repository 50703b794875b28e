# The journal's life: ended sagas archived then removed by retention (the
# parked one kept), their ids still known by tombstone, the archive read
# back and its checksum checked; params checked at submit against the
# workers' schemas; list pages; the CLI's exit codes.
. "$(dirname "$0")/lib.sh"
seed banking
start_zsagad --retain 2s --tombstones 1h --archive "$T/archive"
start_worker banking
wait_workers 1

# ---- params checked at submit --------------------------------------------
bad() { # NAME PARAMS EXPECTED-IN-REASON
    cat >"$T/bad-$1.json" <<JSON
{ "id": "bad-$1", "steps": [ { "id": "d", "system": "banking", "action": "debit_account",
  "compensation": "credit_account", "params": $2 } ] }
JSON
    if zsaga submit "$T/bad-$1.json" >/dev/null 2>"$T/bad-$1.err"; then fail "$1 was accepted"; fi
    grep -q "invalid_params" "$T/bad-$1.err" || fail "$1: not invalid_params: $(cat "$T/bad-$1.err")"
    grep -q "$3" "$T/bad-$1.err" || fail "$1: reason lacks '$3': $(cat "$T/bad-$1.err")"
    zsaga status "bad-$1" >/dev/null 2>&1 && fail "$1 was stored"
    true
}
bad misspelled '{ "account": "ACC001", "ammount": 5, "currency": "USD" }' "params.ammount"
bad missing '{ "account": "ACC001", "currency": "USD" }' "missing params.amount"
bad type '{ "account": "ACC001", "amount": "5", "currency": "USD" }' "params.amount must be int"
bad range '{ "account": "ACC001", "amount": 0, "currency": "USD" }' "must be from 1 to"
bad unknown '{ "account": "ACC001", "amount": 5, "currency": "USD", "memo": "x" }' "params.memo"
zsaga systems >"$T/systems.txt"
grep -q "debit_account .*params: account:str amount:int1..1000000000000000 currency:str" "$T/systems.txt" ||
    fail "zsaga systems shows the schema: $(head -5 "$T/systems.txt")"

# ---- retention, archive, tombstones ------------------------------------------
for i in 1 2 3 4 5 6; do transfer_saga "r$i" ACC001 ACC002 10; zsaga submit "$T/r$i.json" >/dev/null; done
transfer_saga rf ACC001 ACC002 10 fail
zsaga submit "$T/rf.json" >/dev/null
# A saga that parks: its compensation fails for good (closing an account
# that holds money).
cat >"$T/park.json" <<'JSON'
{ "id": "park", "steps": [
  { "id": "a", "system": "banking", "action": "credit_account", "compensation": "close_account",
    "compensation_retry": { "attempts": 1 },
    "params": { "account": "ACC004", "amount": 1, "currency": "USD" } },
  { "id": "b", "system": "banking", "deps": ["a"], "action": "debit_account",
    "params": { "account": "ACC001", "amount": 1, "currency": "EUR" } } ] }
JSON
zsaga submit "$T/park.json" >/dev/null
wait_ended r1 r2 r3 r4 r5 r6 rf
wait_state park parked 30
# Reordered params and another encoding of the same integers: a duplicate.
sed 's/"from_account": "ACC001", "to_account": "ACC002", "amount": 10/"amount": 10, "to_account": "ACC002", "from_account": "ACC001"/' "$T/r1.json" >"$T/r1b.json"
grep -q '"amount": 10, "to_account"' "$T/r1b.json" || fail "the reordered copy"
assert_eq "accepted r1 (completed), already submitted" "$(zsaga submit "$T/r1b.json")" "reordered params are a duplicate"

deadline=$(($(date +%s) + 30))
until [ "$(zsaga stats --json | sed -n 's/.*"sagas_removed": \([0-9]*\).*/\1/p')" -ge 7 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "retention did not remove the 7 ended sagas: $(zsaga stats | grep -E 'removed|archiv|ended')"
    sleep 0.2
done
zsaga status r1 >/dev/null 2>"$T/removed.err" && fail "a removed saga still has a status"
grep -q "(removed): saga 'r1' completed and was removed from the journal by retention" "$T/removed.err" ||
    fail "status of a removed saga says so: $(cat "$T/removed.err")"
assert_eq parked "$(saga_state park)" "a parked saga is never removed"
assert_eq "accepted r2 (completed), already submitted" "$(zsaga submit "$T/r2.json")" "a removed saga's id is still a duplicate (tombstone)"
sed 's/"amount": 10/"amount": 11/' "$T/r3.json" >"$T/r3x.json"
zsaga submit "$T/r3x.json" >/dev/null 2>"$T/conflict.err" && fail "another definition under a removed id was accepted"
grep -q "conflict" "$T/conflict.err" || fail "conflict for a removed id: $(cat "$T/conflict.err")"

# The archive: written when zsagad stops (and every minute), checksummed.
kill -TERM $ZPID
wait $ZPID 2>/dev/null || true
ls "$T"/archive/*.zar >/dev/null 2>&1 || fail "no archive file"
"$BIN/cli/zsaga" archive verify "$T"/archive/*.zar >"$T/verify.txt" || fail "verify: $(cat "$T/verify.txt")"
"$BIN/cli/zsaga" archive list "$T"/archive/*.zar >"$T/alist.txt"
for id in r1 r2 r3 r4 r5 r6 rf; do grep -q "^$id " "$T/alist.txt" || fail "$id not in the archive"; done
grep -q "^park " "$T/alist.txt" && fail "a parked saga was archived"
"$BIN/cli/zsaga" archive show "$T"/archive/*.zar --saga rf >"$T/ashow.txt"
grep -q "saga rf (transfer ACC001 to ACC002): compensated" "$T/ashow.txt" || fail "archive show: $(head -3 "$T/ashow.txt")"
grep -q "step.compensated" "$T/ashow.txt" || fail "the archived history"
# A flipped byte is caught.
f=$(ls "$T"/archive/*.zar | head -n 1)
cp "$f" "$T/damaged.zar"
printf 'X' | dd of="$T/damaged.zar" bs=1 seek=40 conv=notrunc 2>/dev/null
if "$BIN/cli/zsaga" archive verify "$T/damaged.zar" 2>"$T/damaged.err"; then fail "a damaged archive verified"; fi
grep -q "checksum mismatch" "$T/damaged.err" || fail "damage named: $(cat "$T/damaged.err")"

# ---- list pages and the CLI's exit codes --------------------------------------
start_zsagad --retain 0
wait_workers 1
for i in $(seq 1 25); do transfer_saga "p$i" ACC002 ACC001 1; zsaga submit "$T/p$i.json" >/dev/null; done
wait_ended p25
seen=$(zsaga list --limit 7 --all --state completed --json | tr -d ' ' | grep -c '"id":"p')
[ "$seen" -ge 25 ] || fail "every page of 7 walked: $seen of 25"
first=$(zsaga list --limit 1 --state completed | awk '{print $1}')
assert_eq p25 "$first" "newest first"
zsaga list --since 1d --until 1 >"$T/empty.txt" 2>&1
assert_eq "" "$(cat "$T/empty.txt")" "nothing created before the epoch's first ms"
rc=0; zsaga wait no-such-saga --wait-s 30 2>/dev/null || rc=$?
assert_eq 1 "$rc" "wait on an unknown id answers at once (1)"
rc=0; zsaga frobnicate 2>"$T/unk.err" || rc=$?
assert_eq 2 "$rc" "an unknown command is a usage error"
grep -q "unknown command 'frobnicate'" "$T/unk.err" || fail "unknown command named: $(cat "$T/unk.err")"
transfer_saga x1 ACC001 ACC002 10 fail
transfer_saga x2 ACC001 ACC002 10
rc=0; zsaga run "$T/x1.json" --wait-s 30 >/dev/null 2>&1 || rc=$?
assert_eq 5 "$rc" "run of a saga that compensated exits 5"
rc=0; zsaga run "$T/x2.json" >/dev/null 2>&1 || rc=$?
assert_eq 0 "$rc" "run of a completed saga exits 0"
rc=0; "$BIN/cli/zsaga" --endpoint 127.0.0.1:1 stats 2>"$T/ep.err" || rc=$?
assert_eq 2 "$rc" "an endpoint without a transport"
grep -q "tcp://HOST:PORT" "$T/ep.err" || fail "the hint: $(cat "$T/ep.err")"
rc=0; "$BIN/cli/zsaga" --endpoint tcp://127.0.0.1:9 --timeout 300 stats 2>/dev/null || rc=$?
assert_eq 3 "$rc" "nobody answers: 3"
"$BIN/cli/zsaga" --version | grep -q "^zsaga " || fail "--version"
pass "lifecycle"
