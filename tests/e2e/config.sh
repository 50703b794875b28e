# The example config files of deploy/config work as shipped, with only the
# paths changed: zsagad, a worker and the CLI each run from --config alone
# (the CLI from ZSAGA_CONFIG). A typo'd key and a bad value stop a program
# with the line number; the command line overrides the file.
. "$(dirname "$0")/lib.sh"
C="$TOP/deploy/config"
sed -e "s|^data = .*|data = $T/journal|" -e "s|^clients = .*|clients = $CL|" \
    -e "s|^workers = .*|workers = $WK|" -e "s|^events = .*|events = $EV|" \
    -e "s|^key = .*|key = $K/zsagad.key_secret|" -e "s|^authorized = .*|authorized = $T/authorized|" \
    -e "s|^backup-dir = .*|backup-dir = $T/backups|" -e "s|^heartbeat-timeout = .*|heartbeat-timeout = 1500|" \
    -e "s|^http = .*|http = 127.0.0.1:0|" \
    "$C/zsagad.conf" >"$T/zsagad.conf"
echo "sqlite:$T/banking.db" >"$T/banking.uri"
chmod 600 "$T/banking.uri"
sed -e "s|^orchestrator = .*|orchestrator = $WK|" -e "s|^key = .*|key = $K/banking.key_secret|" \
    -e "s|^server-key = .*|server-key = $K/zsagad.key|" -e "s|^db-file = .*|db-file = $T/banking.uri|" \
    -e "s|^heartbeat = .*|heartbeat = 300|" "$C/worker.conf" >"$T/banking.conf"
sed -e "s|^endpoint = .*|endpoint = $CL|" -e "s|^events = .*|events = $EV|" \
    -e "s|^key = .*|key = $K/operator.key_secret|" -e "s|^server-key = .*|server-key = $K/zsagad.key|" \
    "$C/client.conf" >"$T/client.conf"

seed banking
"$BIN/orchestrator/zsagad" --config "$T/zsagad.conf" 2>>"$T/zsagad.log" &
ZPID=$!
"$BIN/workers/zsaga-worker-banking" --config "$T/banking.conf" 2>>"$T/worker-banking.log" &
PIDS="$PIDS $!"
Z() { env -u ZSAGA_KEY -u ZSAGA_SERVER_KEY ZSAGA_CONFIG="$T/client.conf" "$BIN/cli/zsaga" "$@"; }
i=0
until Z stats --json 2>/dev/null | grep -q '"workers": 1'; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "the worker did not register from its config"
    sleep 0.05
done
grep -q "worker banking-1 registered for system banking (key banking" "$T/zsagad.log" ||
    fail "instance and key from the config: $(tail -3 "$T/zsagad.log")"
transfer_saga cfg1 ACC001 ACC002 100
Z run "$T/cfg1.json" --wait-s 20 >/dev/null || fail "a saga through the configs"
Z status cfg1 --json | grep -q '"state": "completed"' || fail "cfg1 did not complete"
# The operator key from the client config may cancel; the command line wins.
Z --key "$K/submit.key_secret" cancel cfg1 2>"$T/forb.err" && fail "--key did not override the file"
grep -q forbidden "$T/forb.err" || fail "override: $(cat "$T/forb.err")"

# Mistakes name their line.
printf '[zsagad]\ndata = x\nheartbeat-timout = 10\n' >"$T/typo.conf"
"$BIN/orchestrator/zsagad" --config "$T/typo.conf" 2>"$T/typo.err" && fail "a typo'd key"
grep -q "line 3: unknown setting 'heartbeat-timout'" "$T/typo.err" || fail "typo: $(cat "$T/typo.err")"
printf '[worker]\ncapacity = lots\n' >"$T/bad.conf"
"$BIN/workers/zsaga-worker-banking" --config "$T/bad.conf" 2>"$T/bad.err" && fail "a bad value"
grep -q "line 2" "$T/bad.err" || fail "bad value: $(cat "$T/bad.err")"
printf '[zsagad]\ninsecure = maybe\n' >"$T/flag.conf"
"$BIN/orchestrator/zsagad" --config "$T/flag.conf" 2>"$T/flag.err" && fail "a flag that is not yes/no"
grep -q "takes yes or no" "$T/flag.err" || fail "flag: $(cat "$T/flag.err")"
printf '[worker]\ninstance = x\n' >"$T/other.conf"
"$BIN/orchestrator/zsagad" --config "$T/other.conf" 2>"$T/other.err" && fail "another program's section"
grep -q "section \[worker\] is not for zsagad" "$T/other.err" || fail "section: $(cat "$T/other.err")"
# zsagad without keys refuses to start, and says how to get them.
"$BIN/orchestrator/zsagad" --data "$T/j2" --clients "ipc://$T/c2" --workers "ipc://$T/w2" \
    --events "ipc://$T/e2" 2>"$T/nokey.err" && fail "zsagad started without keys"
grep -q "zsaga keygen" "$T/nokey.err" || fail "no key: $(cat "$T/nokey.err")"
# --insecure, said out loud: plaintext works only when both ends say it,
# and zsagad and the worker warn.
"$BIN/orchestrator/zsagad" --data "$T/j3" --clients "ipc://$T/c3" --workers "ipc://$T/w3" \
    --events "ipc://$T/e3" --insecure --http off 2>>"$T/insecure.log" &
PIDS="$PIDS $!"
"$BIN/workers/zsaga-worker-banking" --db "sqlite:$T/banking.db" --orchestrator "ipc://$T/w3" \
    --insecure --heartbeat 300 2>>"$T/insecure-worker.log" &
PIDS="$PIDS $!"
I() { env -u ZSAGA_KEY -u ZSAGA_SERVER_KEY "$BIN/cli/zsaga" --endpoint "ipc://$T/c3" --insecure "$@"; }
i=0
until I stats --json 2>/dev/null | grep -q '"workers": 1'; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "the insecure worker did not register"
    sleep 0.05
done
transfer_saga ins1 ACC001 ACC002 100
I run "$T/ins1.json" --wait-s 20 >/dev/null || fail "a saga in insecure mode"
I stats --json | grep -q '"security": "insecure"' || fail "stats does not say insecure"
grep -q "INSECURE" "$T/insecure.log" || fail "zsagad did not warn"
grep -q "INSECURE" "$T/insecure-worker.log" || fail "the worker did not warn"
# A CLI with keys gets nothing from a plaintext zsagad: nobody downgrades.
"$BIN/cli/zsaga" --endpoint "ipc://$T/c3" --timeout 1000 stats 2>/dev/null && fail "CURVE client on a plaintext zsagad"
pass "config"
