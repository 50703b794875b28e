# Shared by the end-to-end tests: start the real programs in a scratch
# folder on Unix sockets, talk to them with the CLI, look at the databases.
# Usage: . lib.sh BUILD_DIR [MODE]
# MODE says where each system keeps its data:
#   sqlite   every system on SQLite files in the scratch folder (default)
#   servers  the production layout: banking and compliance on PostgreSQL,
#            payments on MariaDB, fraud on Redis
#   pg, my   every SQL system on PostgreSQL (pg) or MariaDB (my); fraud on
#            Redis
# With servers, the test uses the servers deploy/test.sh started (named by
# ZSAGA_SERVERS) in databases of its own, or starts private ones in its
# scratch folder (always, when it calls use_private_servers first). It
# never skips: a server that cannot start fails the test.
set -eu
BIN=$1
MODE=${2:-sqlite}
TOP="$(cd "$(dirname "$0")/../.." && pwd)"
T=$(mktemp -d /tmp/zsaga-e2e.XXXXXX)
CL="ipc://$T/clients.sock"
WK="ipc://$T/workers.sock"
EV="ipc://$T/events.sock"
ZPID=""
PIDS=""
FAILED=1

# CURVE keys, as an operator would make them: zsagad's pair, one worker key
# per system, one client key per role. The authorized directory holds every
# public key but zsagad's. The CLI and the test tools take the admin key
# from the environment; each worker gets its system's key.
K=$T/keys
mkdir -p "$K" "$T/authorized" "$T/backups"
keygen() { "$BIN/cli/zsaga" keygen "$@" --dir "$K" >/dev/null; }
keygen zsagad --role server
for s in banking payments fraud compliance; do keygen "$s" --role worker --systems "$s"; done
for r in submit operator admin; do keygen "$r" --role "$r"; done
for f in banking payments fraud compliance submit operator admin; do cp "$K/$f.key" "$T/authorized/"; done
export ZSAGA_SERVER_KEY="$K/zsagad.key" ZSAGA_KEY="$K/admin.key_secret"
export ZSAGA_PROBE_KEY="$K/zsagad.key_secret" # the probe stands in for zsagad

cleanup() {
    # CONT first: a test may have stopped one.
    for p in $PIDS $ZPID; do kill -CONT "$p" 2>/dev/null || true; done
    for p in $PIDS $ZPID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $PIDS $ZPID; do wait "$p" 2>/dev/null || true; done
    [ -z "${PRIVATE_SERVERS:-}" ] || "$TOP/deploy/servers.sh" stop "$PRIVATE_SERVERS" || true
    # A sanitizer report in any process (a leak at shutdown included) fails
    # the test even if every assertion held.
    if grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log >/dev/null 2>&1; then
        echo "FAIL: sanitizer report in $(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log)"
        FAILED=1
        trap - EXIT
        for f in "$T"/*.log; do grep -A25 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$f" | head -60; done
        exit 1
    fi
    if [ "$FAILED" = 1 ]; then
        echo "---- logs in $T"
        for f in "$T"/*.log; do echo "== $f"; tail -20 "$f"; done
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
pass() { FAILED=0; echo "PASS: $*"; }

assert_eq() { # expected actual what
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# Where each system lives in this MODE.
backend_of() {
    case $MODE:$1 in
    sqlite:*) echo sqlite ;;
    *:fraud) echo redis ;;
    servers:payments) echo my ;;
    servers:*) echo pg ;;
    *) echo "$MODE" ;;
    esac
}

SERVERS=""
servers_up() { # start (or find) the servers, once
    [ -z "$SERVERS" ] || return 0
    if [ -n "${ZSAGA_SERVERS:-}" ] && [ -z "${PRIVATE_SERVERS:-}" ]; then
        SERVERS=$ZSAGA_SERVERS
    else
        SERVERS=$T/servers
        PRIVATE_SERVERS=$SERVERS
    fi
    # PRIVATE_ONLY: a test with servers of its own may start only those it
    # needs (a private PostgreSQL alone, say).
    # shellcheck disable=SC2086
    "$TOP/deploy/servers.sh" start "$SERVERS" ${PRIVATE_ONLY:-} >"$T/servers-start.log" 2>&1 ||
        fail "could not start the database servers: $(tail -n 20 "$T/servers-start.log")"
    eval "$("$TOP/deploy/servers.sh" env "$SERVERS")"
    # A database of the test's own on each server; a Redis db number too.
    TAG=z$(basename "$T" | tr 'A-Z.-' 'a-z__')
    case " ${PRIVATE_ONLY:-redis} " in *" redis "*) ;; *) return 0 ;; esac
    REDIS_DB=$(redis-cli -u "$ZSAGA_REDIS/0" INCR zsaga:test:next)
    REDIS_DB=$((REDIS_DB % 250 + 1))
    redis-cli -u "$ZSAGA_REDIS/$REDIS_DB" FLUSHDB >/dev/null
}

# Separate servers for a test that kills them.
use_private_servers() {
    [ -z "$SERVERS" ] || fail "use_private_servers must come before any server is used"
    PRIVATE_SERVERS=$T/servers
}

uri_of() { # SYSTEM: its database URI
    case $(backend_of "$1") in
    sqlite) echo "sqlite:$T/$1.db" ;;
    pg) echo "$ZSAGA_PG/${TAG}_$1${PG_Q:-}" ;;
    my) echo "$ZSAGA_MY/${TAG}_$1" ;;
    redis) echo "$ZSAGA_REDIS/$REDIS_DB" ;;
    esac
}

# A fresh database for SYSTEM, on its backend.
new_db() {
    case $(backend_of "$1") in
    sqlite) rm -f "$T/$1.db" ;;
    redis) servers_up && redis-cli -u "$(uri_of "$1")" FLUSHDB >/dev/null ;;
    *) servers_up && "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_$1" "$(backend_of "$1")" ;;
    esac
}

# q SYSTEM SQL: the answer as plain text, a row a line, columns by '|'.
q() {
    case $(backend_of "$1") in
    sqlite) sqlite3 "$T/$1.db" "$2" ;;
    pg) psql -X -q -t -A -v ON_ERROR_STOP=1 "$(uri_of "$1")" -c "$2" ;;
    my)
        u=${ZSAGA_MY#mysql://}
        mariadb --no-defaults -N -B -h 127.0.0.1 -P "${u##*:}" -u zsaga -pzsaga \
            "${TAG}_$1" -e "$2" | sed 's/\t/|/g'
        ;;
    *) fail "q: $1 is on $(backend_of "$1"), not SQL" ;;
    esac
}

# fraud_status TABLE SAGA STEP: a fraud check's or flag's status.
fraud_status() {
    if [ "$(backend_of fraud)" = redis ]; then
        case $1 in fraud_checks) k=check ;; risk_flags) k=flag ;; esac
        redis-cli -u "$(uri_of fraud)" HGET "fraud:$k:{$2}:$3" status
    else
        q fraud "SELECT status FROM $1 WHERE saga = '$2' AND step = '$3'"
    fi
}

zsaga() { "$BIN/cli/zsaga" --endpoint "$CL" --events "$EV" --timeout 2000 "$@"; }

# The journal: LMDB in the test's folder, or, with ZSAGA_TEST_JOURNAL=pg
# (the e2e_*_pgjournal tests), a PostgreSQL database of the test's own.
JOURNAL_ARGS=""
journal_setup() {
    [ -z "$JOURNAL_ARGS" ] || return 0
    if [ "${ZSAGA_TEST_JOURNAL:-lmdb}" = pg ]; then
        servers_up
        "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_journal" pg >/dev/null ||
            fail "no database for the journal"
        JOURNAL_ARGS="--journal $ZSAGA_PG/${TAG}_journal${PG_Q:-}"
    else
        JOURNAL_ARGS="--data $T/journal"
    fi
}

start_zsagad() {
    journal_setup
    # shellcheck disable=SC2086
    "$BIN/orchestrator/zsagad" $JOURNAL_ARGS --clients "$CL" --workers "$WK" \
        --events "$EV" --heartbeat-timeout 1500 --key "$K/zsagad.key_secret" \
        --authorized "$T/authorized" --backup-dir "$T/backups" --http 127.0.0.1:0 "$@" \
        2>>"$T/zsagad.log" &
    ZPID=$!
}

# start_worker SYSTEM [options]: the pid goes in W_SYSTEM.
start_worker() {
    s=$1
    shift
    [ "$(backend_of "$s")" = sqlite ] || servers_up
    "$BIN/workers/zsaga-worker-$s" --db "$(uri_of "$s")" --orchestrator "$WK" \
        --key "$K/$s.key_secret" --server-key "$K/zsagad.key" \
        --heartbeat 300 "$@" 2>>"$T/worker-$s.log" &
    eval "W_$s=$!"
    PIDS="$PIDS $!"
}

seed() { # SYSTEM: a fresh database with the demo's data
    new_db "$1"
    "$BIN/workers/zsaga-worker-$1" seed-demo --db "$(uri_of "$1")" >/dev/null
}

seed_all() {
    for s in banking payments fraud compliance; do seed "$s"; done
}

workers_registered() {
    zsaga stats --json 2>/dev/null | sed -n 's/.*"workers": \([0-9]*\).*/\1/p'
}

wait_workers() { # N
    deadline=$(( $(date +%s) + 20 ))
    until [ "$(workers_registered)" = "$1" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "expected $1 workers to register, have $(workers_registered)"
        sleep 0.05
    done
}

saga_state() { # ID
    zsaga status "$1" --json | sed -n 's/^  "state": "\([a-z]*\)".*/\1/p'
}

wait_state() { # ID STATE [seconds]
    deadline=$(( $(date +%s) + ${3:-30} ))
    until [ "$(saga_state "$1")" = "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "saga $1 is '$(saga_state "$1")', expected '$2'"
        sleep 0.05
    done
}

wait_history() { # ID WHAT: the saga's history records WHAT (step.dispatched, ...)
    deadline=$(( $(date +%s) + 20 ))
    until zsaga status "$1" --json | grep -q "\"what\": \"$2\""; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "saga $1 never recorded $2"
        sleep 0.05
    done
}

# submit FILE ID: submit an example saga under a chosen id.
submit() {
    sed "s/^{/{ \"id\": \"$2\",/" "$1" > "$T/$2.json"
    zsaga submit "$T/$2.json" >/dev/null
}

EXAMPLES="$(cd "$(dirname "$0")/../../deploy/examples" && pwd)"

# wait_ended ID... : each saga reaches completed or compensated.
wait_ended() {
    deadline=$(( $(date +%s) + ${WAIT_S:-120} ))
    for id in "$@"; do
        until st=$(saga_state "$id") && { [ "$st" = completed ] || [ "$st" = compensated ]; }; do
            [ "$(date +%s)" -lt "$deadline" ] || fail "saga $id is '$st', expected it to end"
            sleep 0.05
        done
    done
}

# transfer_saga ID FROM TO AMOUNT [fail]: a saga file moving AMOUNT cents
# of USD in one banking step; with "fail", a second step fails for good
# (a currency mismatch), so the transfer is reversed.
transfer_saga() {
    extra=""
    [ "${5:-}" != fail ] || extra=',
    { "id": "fee", "system": "banking", "deps": ["move"], "action": "debit_account",
      "compensation": "credit_account",
      "params": { "account": "ACC003", "amount": 1, "currency": "USD" } }'
    cat >"$T/$1.json" <<JSON
{ "id": "$1", "name": "transfer $2 to $3", "steps": [
    { "id": "move", "system": "banking", "action": "transfer", "compensation": "reverse_transfer",
      "params": { "from_account": "$2", "to_account": "$3", "amount": $4, "currency": "USD" } }$extra ] }
JSON
}

# load_transfers PREFIX N [PID]: N transfers from ACC001 to ACC002 (every
# third reversed by a failing second step), four clients at a time so a
# batch holds several sagas; stops early once process PID is gone. Each id
# zsagad accepted (accepted means journaled: only those are owed an end)
# is added to $T/accepted.
load_transfers() {
    i=0
    while [ $i -lt "$2" ] && { [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null; }; do
        subs=""
        for c in 1 2 3 4; do
            i=$((i + 1))
            if [ $((i % 3)) -eq 0 ]; then
                transfer_saga "$1-$i" ACC001 ACC002 $((100 + i)) fail
            else
                transfer_saga "$1-$i" ACC001 ACC002 $((100 + i))
            fi
            { zsaga --timeout 3000 submit "$T/$1-$i.json" >/dev/null 2>&1 &&
                echo "$1-$i" >>"$T/accepted"; } &
            subs="$subs $!"
        done
        for p in $subs; do wait "$p" || true; done
    done
}

# reference_transfer: one clean transfer (ref-ok); ROWS_OK gets the ledger
# rows it left, what check_transfers_once expects of a completed one.
reference_transfer() {
    transfer_saga ref-ok ACC001 ACC002 500
    zsaga submit "$T/ref-ok.json" >/dev/null || fail "ref-ok refused"
    wait_ended ref-ok
    assert_eq completed "$(saga_state ref-ok)" "the reference transfer completes"
    ROWS_OK=$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = 'ref-ok'")
    [ "$ROWS_OK" -gt 0 ] || fail "the reference transfer left no ledger rows"
}

# check_transfers_once ROWS: every saga in $T/accepted ended, a completed
# one with exactly ROWS ledger rows (a clean transfer's), a reversed one
# netting to zero on every account; both kinds were seen.
check_transfers_once() {
    n_ok=0
    n_rev=0
    while read -r id; do
        st=$(saga_state "$id")
        if [ "$st" = completed ]; then
            assert_eq "$1" "$(q banking "SELECT COUNT(*) FROM ledger WHERE saga = '$id'")" \
                "$id: the ledger rows of one transfer"
            n_ok=$((n_ok + 1))
        else
            assert_eq compensated "$st" "$id ended"
            assert_eq 0 "$(q banking "SELECT COUNT(*) FROM (SELECT account, SUM(amount) AS s
                FROM ledger WHERE saga = '$id' GROUP BY account) t WHERE s <> 0")" \
                "$id: reversed, every account nets to zero"
            n_rev=$((n_rev + 1))
        fi
    done <"$T/accepted"
    [ $n_ok -gt 0 ] && [ $n_rev -gt 0 ] ||
        fail "expected both completed and reversed transfers ($n_ok, $n_rev)"
    echo "accepted: $(wc -l <"$T/accepted") sagas ($n_ok completed, $n_rev reversed)"
}

# wait_log PATTERN [SECONDS]: until zsagad's log has a line matching it.
wait_log() {
    deadline=$(( $(date +%s) + ${2:-30} ))
    until grep -q "$1" "$T/zsagad.log"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "zsagad's log never said: $1"
        sleep 0.02
    done
}

# wait_exit PID [SECONDS]: until child PID exits (a zombie counts as
# exited), its status in EXIT_RC; fails if it is still running by then, so
# a process that should stop and does not fails the test, not hangs it.
wait_exit() {
    deadline=$(( $(date +%s) + ${2:-30} ))
    while [ -e "/proc/$1/stat" ] && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "process $1 still runs after ${2:-30} s"
        sleep 0.05
    done
    EXIT_RC=0
    wait "$1" || EXIT_RC=$?
}

# The HTTP port a program bound (it logs "... on http://127.0.0.1:PORT/").
http_port() { # LOGFILE
    deadline=$(( $(date +%s) + 10 ))
    until p=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$1" | tail -n 1) && [ -n "$p" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "no HTTP address in $1"
        sleep 0.05
    done
    echo "$p"
}
