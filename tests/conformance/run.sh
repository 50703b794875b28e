#!/bin/sh
# The conformance suite on one backend: tests/conformance/conformance.py
# against the notify worker of every implementation that supports it, one
# implementation at a time and then two different ones sharing the
# database (a C, a Python and a Node.js worker of one system).
#   run.sh BUILD sqlite|pg|my|redis
# Needs the example built against the installed libzsaga (the ctest
# fixture from tests/e2e/install.sh) and the Node.js packages
# (deploy/install-langs.sh).
BACKEND=$2
. "$(dirname "$0")/../e2e/lib.sh" "$1"

C="$BIN/examples/notify-c/notify-worker"
PY="env PYTHONPATH=$TOP/clients/python /usr/bin/python3 $TOP/deploy/examples/notify/python/notify_worker.py"
NODE="node $TOP/deploy/examples/notify/node/notify-worker.js"
[ -x "$C" ] || fail "$C is missing: tests/e2e/install.sh builds it"
[ -d "$TOP/clients/node/node_modules/zeromq" ] || fail "the Node.js packages are missing: run deploy/install-langs.sh"

case $BACKEND in
sqlite) PAIRS="C:C PY:PY C:PY" ;; # Node.js has no SQLite driver of its own here
*) PAIRS="C:C PY:PY NODE:NODE C:PY PY:NODE NODE:C" ;;
esac

n=0
for pair in $PAIRS; do
    a=${pair%%:*}
    b=${pair#*:}
    n=$((n + 1))
    case $BACKEND in
    sqlite) rm -f "$T/notify.db"*; db="sqlite:$T/notify.db" ;;
    redis) servers_up; db="$ZSAGA_REDIS/$REDIS_DB"; redis-cli -u "$db" FLUSHDB >/dev/null ;;
    *)
        servers_up
        "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_n$n" "$BACKEND" >/dev/null
        [ "$BACKEND" = pg ] && db="$ZSAGA_PG/${TAG}_n$n" || db="$ZSAGA_MY/${TAG}_n$n"
        ;;
    esac
    eval "cmd_a=\$$a"
    eval "cmd_b=\$$b"
    echo "== $a and $b on $BACKEND"
    mkdir -p "$T/$a-$b"
    /usr/bin/python3 "$TOP/tests/conformance/conformance.py" --a "$cmd_a" --b "$cmd_b" --db "$db" \
        --dir "$T/$a-$b" || {
        for f in "$T/$a-$b"/*.log; do echo "-- $f"; tail -15 "$f"; done
        fail "$a and $b on $BACKEND"
    }
    # The worker logs join the sanitizer check at cleanup.
    for f in "$T/$a-$b"/*.log; do cp "$f" "$T/$a-$b-$(basename "$f")"; done
done
pass "conformance on $BACKEND: $PAIRS"
