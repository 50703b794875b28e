# The attacks of the security review, each against the secured default,
# by tests/e2e/attacker.py (Python, speaking only docs/protocol.md). Each
# first shows the attack is refused, then that no effect reached a
# database: the books are checked after every part.
. "$(dirname "$0")/lib.sh"
A="/usr/bin/python3 $(dirname "$0")/attacker.py"
keygen intruder --role worker --systems banking # never authorized
keygen banking2 --role worker --systems banking
keygen narrow --role worker --systems banking --operations debit_account,credit_account
keygen spammer --role submit
for f in banking2 narrow spammer; do cp "$K/$f.key" "$T/authorized/"; done
SK=$K/zsagad.key
seed_all
start_zsagad
for s in banking payments fraud compliance; do start_worker $s; done
wait_workers 4
# The banking worker stops, so banking steps wait for whoever registers.
kill -TERM "$W_banking"
wait "$W_banking" || true
wait_workers 3
bal() { q banking "SELECT balance FROM accounts WHERE number = '$1'"; }
counter() { zsaga stats --json | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"; }
ledger() { q banking "SELECT COUNT(*) || ':' || COALESCE(SUM(amount), 0) FROM ledger WHERE saga = '$1'"; }
b1=$(bal ACC001)
b2=$(bal ACC002)

# 1. A rogue worker: no key, an unknown key, a key for another system.
# None registers or receives the banking step that waits for a worker.
transfer_saga t1 ACC001 ACC002 500
zsaga submit "$T/t1.json" >/dev/null
# (Background jobs are waited for by pid: a bare wait would wait for the
# workers too.)
$A rogue-worker "$WK" - "$SK" banking 3 >"$T/r1" &
a1=$!
$A rogue-worker "$WK" "$K/intruder.key" "$SK" banking 3 >"$T/r2" &
a2=$!
$A rogue-worker "$WK" "$K/payments.key" "$SK" banking 3 >"$T/r3" &
wait $a1 $! $a2
for r in r1 r2 r3; do assert_eq "steps 0" "$(sed -n 1p "$T/$r")" "rogue $r got no step"; done
assert_eq "refused forbidden" "$(sed -n 2p "$T/r3")" "a payments key is refused as banking"
assert_eq 3 "$(workers_registered)" "no rogue registered"
assert_eq running "$(saga_state t1)" "the step waits for a real worker"
assert_eq "$b1" "$(bal ACC001)" "nothing moved yet"
# A real worker program started with another system's key stops, saying why.
"$BIN/workers/zsaga-worker-banking" --db "sqlite:$T/banking.db" --orchestrator "$WK" \
    --key "$K/payments.key_secret" --server-key "$SK" 2>"$T/wrongkey.log" &&
    fail "a banking worker with a payments key kept running"
grep -q "refused this worker: forbidden: key payments may not serve system banking" \
    "$T/wrongkey.log" || fail "wrong key: $(cat "$T/wrongkey.log")"
# The real worker, slowed so that a step is in flight for the next part.
start_worker banking --instance bank-live --fault "delay=transfer:2500"
wait_state t1 completed 20
assert_eq "2:0" "$(ledger t1)" "t1 moved once"

# 2. Forged results: "failed" under every small lease, from a registered
# worker of another system and from an unregistered connection with a
# valid banking key, for a step the real worker holds.
before=$(counter forged_results)
for f in "f1 payments yes" "f2 banking2 no"; do
    set -- $f
    transfer_saga "$1" ACC001 ACC002 700
    (sleep 0.5 && zsaga submit "$T/$1.json" >/dev/null) &
    sp=$!
    $A forge "$WK" "$K/$2.key" "$SK" "$EV" "$K/submit.key" "$1" "$3" payments >"$T/$1.out" 2>"$T/$1.err" ||
        fail "forge $1: $(cat "$T/$1.out" "$T/$1.err")"
    wait $sp
done
for f in f1 f2; do
    wait_state $f completed 20
    assert_eq "2:0" "$(ledger $f)" "$f moved once, not undone by a forged failure"
done
[ "$(counter forged_results)" -ge $((before + 2)) ] ||
    fail "forged results not counted: $(counter forged_results)"
assert_eq $((b1 - 1900)) "$(bal ACC001)" "ACC001 paid 500 + 700 + 700"
assert_eq $((b2 + 1900)) "$(bal ACC002)" "ACC002 received them"

# 3. Clients: no key and a worker's key get no answer at all; the submit
# role cannot cancel, retry, resolve or back up; nobody backs up outside
# the backup directory; resolve needs a note.
assert_eq no-answer "$($A client "$CL" - "$SK" stats)" "plaintext client"
assert_eq no-answer "$($A client "$CL" "$K/intruder.key" "$SK" stats)" "unknown key"
assert_eq no-answer "$($A client "$CL" "$K/banking.key" "$SK" stats)" "a worker key as client"
for t in "cancel t1" "retry t1" "resolve t1 note" "backup b0"; do
    assert_eq "error forbidden 7" "$($A client "$CL" "$K/submit.key" "$SK" $t)" "submit role: $t"
done
assert_eq "error forbidden 7" "$($A client "$CL" "$K/operator.key" "$SK" backup b0)" "operator backup"
assert_eq "error invalid 7" "$($A client "$CL" "$K/operator.key" "$SK" resolve t1)" "resolve without a note"
assert_eq "error bad_state 7" "$($A client "$CL" "$K/operator.key" "$SK" resolve t1 "by hand")" \
    "operator may resolve (t1 is not parked)"
for p in /dev/shm/zsaga-stolen ../escape .hidden; do
    assert_eq "error invalid 7" "$($A client "$CL" "$K/admin.key" "$SK" backup "$p")" "backup to $p"
done
[ ! -e /dev/shm/zsaga-stolen ] || fail "a backup escaped to /dev/shm"
zsaga backup b1 >/dev/null || fail "admin backup"
assert_eq 600 "$(stat -c %a "$T/backups/b1/data.mdb")" "backup mode"
# A submit key may submit; an accepted saga's reply carries the request.
assert_eq "accepted - 7" "$($A client "$CL" "$K/submit.key" "$SK" submit c1)" "submit role submits"
wait_state c1 completed
"$BIN/cli/zsaga" --endpoint "$CL" resolve c1 2>/dev/null && fail "CLI resolve without --note"
# The event stream: a worker's key gets nothing, a client's key gets events.
$A events "$EV" "$K/banking.key" "$SK" 4 >"$T/ev1" &
e1=$!
$A events "$EV" "$K/submit.key" "$SK" 4 >"$T/ev2" &
e2=$!
sleep 1
transfer_saga e1 ACC003 ACC002 1
zsaga submit "$T/e1.json" >/dev/null
wait $e1 $e2
assert_eq "events 0" "$(cat "$T/ev1")" "a worker key on the event stream"
[ "$(cut -d' ' -f2 "$T/ev2")" -gt 0 ] || fail "a client key saw no event"
ipc_mode=$(stat -c %a "$T/workers.sock")
assert_eq 600 "$ipc_mode" "ipc socket mode"

# 4. A fake orchestrator, with its own key and in plaintext: a worker that
# knows zsagad's key never completes the handshake, so never gets a step.
for k in "$K/intruder.key" -; do
    rm -f "$T/fake.sock"
    $A fake-orchestrator "ipc://$T/fake.sock" "$k" 4 >"$T/fake.out" &
    ap=$!
    sleep 0.3
    "$BIN/workers/zsaga-worker-banking" --db "sqlite:$T/banking.db" --orchestrator "ipc://$T/fake.sock" \
        --key "$K/banking.key_secret" --server-key "$SK" --instance fooled 2>>"$T/fooled.log" &
    fp=$!
    wait $ap
    kill "$fp" 2>/dev/null
    wait "$fp" 2>/dev/null || true
    assert_eq "registered 0" "$(cat "$T/fake.out")" "fake orchestrator ($k)"
done
assert_eq 0 "$(ledger fake-1 | cut -d: -f1)" "nothing from the fake orchestrator"

# 5. Routing-id and instance hijack: another banking key, the live worker's
# name as its routing id and its instance id in ready. Refused; the live
# worker keeps its steps.
$A hijack "$WK" "$K/banking2.key" "$SK" bank-live banking 4 >"$T/hj" &
hp=$!
sleep 0.5
transfer_saga h1 ACC001 ACC002 300
zsaga submit "$T/h1.json" >/dev/null
wait $hp
assert_eq "steps 0" "$(sed -n 1p "$T/hj")" "the hijacker got no step"
assert_eq "refused instance_taken" "$(sed -n 2p "$T/hj")" "instance bound to its key"
wait_state h1 completed 20
zsaga status h1 --json | grep -q '"reason": "bank-live"' || fail "h1 not run by bank-live"

# 6. ready spam: 10,000 readies from a key narrowed to two operations
# grow nothing; from a key with banking's full grant, the catalog stops at
# its limit. A saga running meanwhile ends.
used0=$(counter journal_used_bytes)
transfer_saga s1 ACC001 ACC002 100
zsaga submit "$T/s1.json" >/dev/null
assert_eq "refused forbidden=10000" "$($A ready-spam "$WK" "$K/narrow.key" "$SK" banking 10000)" \
    "narrowed key"
out=$($A ready-spam "$WK" "$K/banking2.key" "$SK" banking 10000)
echo "$out" | grep -q "forbidden=5000" || fail "systems outside the grant: $out"
echo "$out" | grep -q "limit=" || fail "operations past the limit: $out"
wait_state s1 completed 20
used1=$(counter journal_used_bytes)
[ $((used1 - used0)) -le 65536 ] || fail "journal grew by $((used1 - used0)) bytes under ready spam"
echo "ready spam: journal $used0 -> $used1 bytes"

# 7. Many frames: 1,200 frames of 1 MB are cut off at the first frame;
# 1,200 small frames are refused and the key is banned. zsagad's peak
# memory grows by less than 64 MiB.
hwm() { sed -n 's/^VmHWM:[^0-9]*\([0-9]*\) kB/\1/p' "/proc/$ZPID/status"; }
m0=$(hwm)
$A frames "$CL" "$K/spammer.key" "$SK" 1200 1048576 >/dev/null
$A frames "$CL" "$K/spammer.key" "$SK" 1200 100 >"$T/frames"
m1=$(hwm)
echo "many frames: zsagad peak RSS $m0 kB -> $m1 kB"
[ $((m1 - m0)) -lt 65536 ] || fail "zsagad grew by $((m1 - m0)) kB"
assert_eq no-reply "$(cat "$T/frames")" "a many-frame message gets nothing"
[ "$(counter multipart_refused)" -ge 1 ] || fail "multipart not counted"
assert_eq no-answer "$($A client "$CL" "$K/spammer.key" "$SK" stats)" "a banned key"
grep -q "key spammer .* banned" "$T/zsagad.log" || fail "ban not logged"

# 8. Revocation: a live worker whose key file is removed from the
# authorized directory is cut off within seconds: zsagad drops its
# messages, so it is soon counted lost, and its key is refused from then on.
keygen banking3 --role worker --systems banking
cp "$K/banking3.key" "$T/authorized/"
n0=$(workers_registered)
"$BIN/workers/zsaga-worker-banking" --db "sqlite:$T/banking.db" --orchestrator "$WK" \
    --key "$K/banking3.key_secret" --server-key "$SK" --instance revoked-1 --heartbeat 300 \
    2>>"$T/revoked.log" &
PIDS="$PIDS $!"
wait_workers $((n0 + 1))
rm "$T/authorized/banking3.key"
wait_workers "$n0"
[ "$(counter keys_revoked)" -ge 1 ] || fail "revocation not counted"
assert_eq "steps 0" "$($A rogue-worker "$WK" "$K/banking3.key" "$SK" banking 2 | sed -n 1p)" \
    "a revoked key registers no more"
assert_eq "$n0" "$(workers_registered)" "still cut off"

# The books: everything that moved, moved once.
assert_eq $((b1 - 2300 + 100000)) "$(bal ACC001)" "ACC001 in the end (c1 credited 100000 by a submit key)"
assert_eq 0 "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga NOT IN ('t1','f1','f2','c1','e1','h1','s1')")" \
    "no ledger row from any attack"
pass "attacks"
