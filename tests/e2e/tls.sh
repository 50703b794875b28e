# The workers reach PostgreSQL, MariaDB and Redis over TLS, verifying the
# servers' certificates (made by deploy/servers.sh), with their database
# URIs, passwords and all, read from files: no password is on any command
# line. A server whose certificate the CA did not sign is refused.
. "$(dirname "$0")/lib.sh"
servers_up
eval "$("$TOP/deploy/servers.sh" env "$SERVERS")"
for s in banking compliance; do "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_$s" pg; done
"$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_payments" my
echo "$ZSAGA_PG/${TAG}_banking$ZSAGA_PG_TLS_Q" >"$T/banking.uri"
echo "$ZSAGA_PG/${TAG}_compliance$ZSAGA_PG_TLS_Q" >"$T/compliance.uri"
echo "$ZSAGA_MY_TLS/${TAG}_payments$ZSAGA_MY_TLS_Q" >"$T/payments.uri"
echo "$ZSAGA_REDIS_TLS/$REDIS_DB$ZSAGA_REDIS_TLS_Q" >"$T/fraud.uri"
chmod 600 "$T"/*.uri
W="$BIN/workers/zsaga-worker"

# A secret file others may read is refused, with the fix.
chmod 644 "$T/fraud.uri"
"$W-fraud" migrate status --db-file "$T/fraud.uri" 2>"$T/perm.err" && fail "a readable secret file"
grep -q "chmod 600" "$T/perm.err" || fail "perm: $(cat "$T/perm.err")"
chmod 600 "$T/fraud.uri"
# A certificate from another CA is refused by every driver.
other=$(echo "$ZSAGA_TLS_CA" | sed 's|tls/ca.crt|tls/server.crt|')
for s in banking payments fraud; do
    sed "s|$ZSAGA_TLS_CA|$other|" "$T/$s.uri" >"$T/bad-$s.uri"
    chmod 600 "$T/bad-$s.uri"
    if "$W-$s" migrate status --db-file "$T/bad-$s.uri" >"$T/bad-$s.err" 2>&1; then
        fail "$s trusted a server its CA did not sign"
    fi
    grep -qi "certificate" "$T/bad-$s.err" || fail "$s: $(cat "$T/bad-$s.err")"
done

for s in banking payments fraud compliance; do
    "$W-$s" seed-demo --db-file "$T/$s.uri" >/dev/null || fail "seed $s over TLS"
done
start_zsagad
for s in banking payments fraud compliance; do
    "$W-$s" --db-file "$T/$s.uri" --orchestrator "$WK" --key "$K/$s.key_secret" \
        --server-key "$K/zsagad.key" --heartbeat 300 2>>"$T/worker-$s.log" &
    PIDS="$PIDS $!"
done
wait_workers 4
submit "$EXAMPLES/loan-processing.json" loan-1
submit "$EXAMPLES/funds-transfer.json" ft-1
submit "$EXAMPLES/funds-transfer-fails.json" ftf-1
wait_state loan-1 completed 60
wait_state ft-1 completed 60
wait_state ftf-1 compensated 60

# The servers say the workers' sessions are encrypted: PostgreSQL per
# session; MariaDB's zsaga_tls user may only connect over TLS; Redis's TLS
# port speaks nothing else.
n=$(psql -X -q -t -A "$ZSAGA_PG/postgres" -c "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
     WHERE a.datname IN ('${TAG}_banking', '${TAG}_compliance') AND s.ssl")
[ "$n" -ge 2 ] || fail "PostgreSQL sessions over TLS: $n"
n=$(psql -X -q -t -A "$ZSAGA_PG/postgres" -c "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
     WHERE a.datname IN ('${TAG}_banking', '${TAG}_compliance') AND NOT s.ssl")
assert_eq 0 "$n" "no plaintext PostgreSQL session"
# No password on any command line.
for p in $PIDS; do
    for secret in zsaga-redis zsaga-tls; do
        tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "$secret" && fail "a password in the command line of $p"
    done
done
grep -h "database" "$T"/worker-*.log | grep -q "zsaga-redis\|zsaga-tls" && fail "a password in a log"
pass "tls"
