# Bad input gets a clear reason and stores nothing: a cycle, an unknown
# system, an unknown operation, a float amount, a malformed message.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
start_worker banking
wait_workers 1

reject() { # NAME JSON EXPECTED-TEXT
    printf '%s' "$2" > "$T/$1.json"
    if zsaga submit "$T/$1.json" 2>"$T/$1.err"; then fail "$1 was accepted"; fi
    grep -q "$3" "$T/$1.err" || fail "$1: reason '$(cat "$T/$1.err")' lacks '$3'"
    if zsaga status "$1" 2>"$T/$1.status"; then fail "$1 was stored"; fi
    grep -q not_found "$T/$1.status" || fail "$1: status should be not_found"
}
reject cyc '{"id":"cyc","steps":[
 {"id":"a","system":"banking","action":"debit_account","deps":["b"]},
 {"id":"b","system":"banking","action":"credit_account","deps":["a"]}]}' "dependency cycle"
reject nosys '{"id":"nosys","steps":[{"id":"a","system":"mainframe","action":"debit_account"}]}' \
    "unknown system 'mainframe'"
reject noop '{"id":"noop","steps":[{"id":"a","system":"banking","action":"print_money"}]}' \
    "has no operation 'print_money'"
reject float '{"id":"float","steps":[{"id":"a","system":"banking","action":"debit_account",
 "params":{"account":"ACC001","amount":10.50,"currency":"USD"}}]}' "floating point is not allowed"
reject dangling '{"id":"dangling","steps":[{"id":"a","system":"banking","action":"debit_account","deps":["zz"]}]}' \
    "unknown step 'zz'"

out=$("$BIN/tests/zsaga-probe" raw "$CL" "this is not msgpack")
echo "$out" | grep -q "^error malformed" || fail "malformed message: $out"
out=$("$BIN/tests/zsaga-probe" raw "$CL" "")
echo "$out" | grep -q "^error malformed" || fail "empty message: $out"
assert_eq "" "$(zsaga list --json | tr -d '[] \n')" "nothing stored"
# zsagad is still fine after all that.
submit "$EXAMPLES/insufficient-funds.json" after-1
wait_state after-1 compensated
# zsagad itself refuses an endpoint list it would have to cut short (the
# cut could be another valid address) and says why.
long="ipc://$T/$(printf '%01100d' 0)"
if "$BIN/orchestrator/zsagad" --data "$T/journal2" --clients "ipc://$T/c2" \
    --workers "ipc://$T/w2,$long" --insecure 2>"$T/long.err"; then
    fail "zsagad started with a 1,100-byte endpoint list"
fi
grep -q "endpoint list too long" "$T/long.err" || fail "long endpoint list: $(cat "$T/long.err")"
# One zsagad per journal: a second on the same --data stops at once and
# names the first; restore refuses the live journal.
"$BIN/orchestrator/zsagad" --data "$T/journal" --clients "ipc://$T/c4" --workers "ipc://$T/w4" \
    --events "ipc://$T/e4" --key "$K/zsagad.key_secret" --authorized "$T/authorized" \
    2>"$T/second.err" && fail "a second zsagad ran on the same journal"
grep -q "in use by another zsagad (pid $ZPID)" "$T/second.err" || fail "second: $(cat "$T/second.err")"
zsaga backup r1 >/dev/null || fail "backup"
zsaga restore "$T/backups/r1" "$T/journal" 2>"$T/restore.err" && fail "restore over a live journal"
grep -q "pid $ZPID" "$T/restore.err" || fail "restore: $(cat "$T/restore.err")"
pass "reject"
