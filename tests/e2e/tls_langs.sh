#!/bin/sh
# The Python and Node.js workers reach PostgreSQL, MariaDB and Redis over
# TLS with the C runtime's URI options, the servers' certificates checked
# against the CA (deploy/servers.sh makes them), and refuse a server the
# CA did not sign. An option a driver does not know is an error, never
# dropped: a TLS option ignored would send the password in clear. Python's
# MySQL driver (Debian 12's mysqlclient) cannot verify a certificate: it
# encrypts with ssl-mode=REQUIRED and refuses the verifying modes, saying so.
. "$(dirname "$0")/lib.sh"
servers_up
eval "$("$TOP/deploy/servers.sh" env "$SERVERS")"
PY="env PYTHONPATH=$TOP/clients/python /usr/bin/python3 $TOP/deploy/examples/notify/python/notify_worker.py"
NODE="node $TOP/deploy/examples/notify/node/notify-worker.js"
other=$(echo "$ZSAGA_TLS_CA" | sed 's|tls/ca.crt|tls/server.crt|') # a certificate, not the CA

n=0
# migrate LANG URI: the worker's migrations over that URI (from a 0600 file).
migrate() {
    n=$((n + 1))
    (umask 077 && echo "$2" >"$T/u$n.uri")
    eval "\$$1" migrate up --db-file "$T/u$n.uri" >"$T/m$n.out" 2>&1
}
for lang in PY NODE; do
    l=$(echo "$lang" | tr 'A-Z' 'a-z')
    "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_$l" pg >/dev/null
    migrate $lang "$ZSAGA_PG/${TAG}_$l$ZSAGA_PG_TLS_Q" || fail "$lang over TLS to PostgreSQL: $(cat "$T/m$n.out")"
    grep -q "1  *applied" "$T/m$n.out" || fail "$lang PostgreSQL: $(cat "$T/m$n.out")"
    q=$(echo "$ZSAGA_PG_TLS_Q" | sed "s|$ZSAGA_TLS_CA|$other|")
    migrate $lang "$ZSAGA_PG/${TAG}_$l$q" && fail "$lang trusted a PostgreSQL server its CA did not sign"
    grep -qi "certificate" "$T/m$n.out" || fail "$lang PostgreSQL, wrong CA: $(cat "$T/m$n.out")"

    redis-cli -u "$ZSAGA_REDIS/$REDIS_DB" FLUSHDB >/dev/null
    migrate $lang "$ZSAGA_REDIS_TLS/$REDIS_DB$ZSAGA_REDIS_TLS_Q" || fail "$lang over TLS to Redis: $(cat "$T/m$n.out")"
    q=$(echo "$ZSAGA_REDIS_TLS_Q" | sed "s|$ZSAGA_TLS_CA|$other|")
    migrate $lang "$ZSAGA_REDIS_TLS/$REDIS_DB$q" && fail "$lang trusted a Redis server its CA did not sign"
    grep -qi "certificate" "$T/m$n.out" || fail "$lang Redis, wrong CA: $(cat "$T/m$n.out")"
    migrate $lang "$ZSAGA_REDIS/$REDIS_DB?cacert=$ZSAGA_TLS_CA" && fail "$lang took cacert on redis://"
    grep -q "for rediss://" "$T/m$n.out" || fail "$lang redis:// with cacert: $(cat "$T/m$n.out")"

    "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_$l" my >/dev/null
    migrate $lang "$ZSAGA_MY/${TAG}_$l?ssl-mod=REQUIRED" && fail "$lang ignored a misspelt MariaDB option"
    grep -q "unknown option 'ssl-mod'" "$T/m$n.out" || fail "$lang misspelt option: $(cat "$T/m$n.out")"
done

# MariaDB: zsaga_tls may only connect over TLS.
"$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_node" my >/dev/null
migrate NODE "$ZSAGA_MY_TLS/${TAG}_node$ZSAGA_MY_TLS_Q" || fail "Node.js over TLS to MariaDB: $(cat "$T/m$n.out")"
q=$(echo "$ZSAGA_MY_TLS_Q" | sed "s|$ZSAGA_TLS_CA|$other|")
migrate NODE "$ZSAGA_MY_TLS/${TAG}_node$q" && fail "Node.js trusted a MariaDB server its CA did not sign"
grep -qi "certificate" "$T/m$n.out" || fail "Node.js MariaDB, wrong CA: $(cat "$T/m$n.out")"
"$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_py" my >/dev/null
migrate PY "$ZSAGA_MY_TLS/${TAG}_py?ssl-mode=REQUIRED" || fail "Python over TLS to MariaDB: $(cat "$T/m$n.out")"
migrate PY "$ZSAGA_MY_TLS/${TAG}_py$ZSAGA_MY_TLS_Q" && fail "Python claimed to verify MariaDB's certificate"
grep -q "cannot verify the server's certificate" "$T/m$n.out" || fail "Python MariaDB verify: $(cat "$T/m$n.out")"
migrate PY "$ZSAGA_MY_TLS/${TAG}_py" && fail "Python reached a TLS-only MariaDB user in clear"
pass "Python and Node.js workers over TLS to PostgreSQL, MariaDB and Redis, certificates checked; unknown options refused"
