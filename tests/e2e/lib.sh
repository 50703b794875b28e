# Shared by the end-to-end tests: start the real programs in a scratch
# folder on Unix sockets, talk to them with the CLI, look at the databases.
# Usage: . lib.sh BUILD_DIR
set -eu
BIN=$1
T=$(mktemp -d /tmp/zsaga-e2e.XXXXXX)
CL="ipc://$T/clients.sock"
WK="ipc://$T/workers.sock"
EV="ipc://$T/events.sock"
ZPID=""
PIDS=""
FAILED=1

cleanup() {
    for p in $PIDS $ZPID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $PIDS $ZPID; do wait "$p" 2>/dev/null || true; done
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

q() { sqlite3 "$T/$1.db" "$2"; }

zsaga() { "$BIN/cli/zsaga" --endpoint "$CL" --events "$EV" --timeout 2000 "$@"; }

start_zsagad() {
    "$BIN/orchestrator/zsagad" --data "$T/journal" --clients "$CL" --workers "$WK" \
        --events "$EV" --heartbeat-timeout 1500 "$@" 2>>"$T/zsagad.log" &
    ZPID=$!
}

# start_worker SYSTEM [options]: the pid goes in W_SYSTEM.
start_worker() {
    s=$1
    shift
    "$BIN/workers/zsaga-worker-$s" --db "sqlite:$T/$s.db" --orchestrator "$WK" \
        --heartbeat 300 "$@" 2>>"$T/worker-$s.log" &
    eval "W_$s=$!"
    PIDS="$PIDS $!"
}

seed_all() {
    for s in banking payments fraud compliance; do
        "$BIN/workers/zsaga-worker-$s" seed-demo --db "sqlite:$T/$s.db" >/dev/null
    done
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

# submit FILE ID: submit an example saga under a chosen id.
submit() {
    sed "s/^{/{ \"id\": \"$2\",/" "$1" > "$T/$2.json"
    zsaga submit "$T/$2.json" >/dev/null
}

EXAMPLES="$(cd "$(dirname "$0")/../../deploy/examples" && pwd)"
