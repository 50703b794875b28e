# Partitions shared out between machines (docs/design.md, "Scale-out"):
# a journal on PostgreSQL in 4 partitions; member a (zsagad --serve 4)
# serves all 4; under load, member b (--serve 4) joins: a gives partitions
# up, one at a time, until each holds its share (2), and b takes them;
# then b is killed (all its processes, kill -9): a takes its partitions
# back once they have been free for a lease. Every saga a client was told
# was accepted ends, each effect once.
ZSAGA_TEST_JOURNAL=pg
. "$(dirname "$0")/lib.sh"
N=4
LEASE=1500
CL=""
WK=""
for m in a b; do
    for s in "" .1 .2 .3; do
        CL="$CL${CL:+,}ipc://$T/$m-c.sock$s"
        WK="$WK${WK:+,}ipc://$T/$m-w.sock$s"
    done
done
seed banking
q banking "UPDATE accounts SET balance = 10000000000 WHERE number IN ('ACC001','ACC002')"

start_member() { # NAME: zsagad --serve 4 as member NAME; its pid in M_NAME
    journal_setup
    # shellcheck disable=SC2086
    "$BIN/orchestrator/zsagad" $JOURNAL_ARGS --partitions $N --serve 4 --member "$1" \
        --lease $LEASE --clients "ipc://$T/$1-c.sock" --workers "ipc://$T/$1-w.sock" \
        --events "ipc://$T/$1-e.sock" --heartbeat-timeout 1500 --key "$K/zsagad.key_secret" \
        --authorized "$T/authorized" --http off 2>>"$T/zsagad.log" &
    eval "M_$1=$!"
    PIDS="$PIDS $!"
}
held() { # MEMBER: how many partitions it holds now
    psql -X -t -A "$ZSAGA_PG/${TAG}_journal" -c \
        "SELECT count(*) FROM zsaga_lease WHERE member = '$1' AND expires_at > now()"
}
wait_held() { # MEMBER N [SECONDS]
    deadline=$(( $(date +%s) + ${3:-30} ))
    until [ "$(held "$1")" = "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "member $1 holds $(held "$1") partitions, expected $2"
        sleep 0.1
    done
}

start_member a
wait_held a 4
start_worker banking --capacity 8
deadline=$(( $(date +%s) + 30 ))
until [ "$(grep -c "worker banking-.* registered" "$T/zsagad.log")" -ge 4 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the worker did not register with every partition's zsagad"
    sleep 0.1
done
reference_transfer

: >"$T/accepted"
load_transfers r 120 &
L=$!
sleep 0.5
t0=$(date +%s%N)
start_member b
wait_held b 2 60
wait_held a 2
echo "member b joined: 2 partitions moved to it in $(( ($(date +%s%N) - t0) / 1000000 )) ms, under load"
grep -q "giving partition 3 up" "$T/zsagad.log" || fail "a did not give its highest partition up"
wait $L
# shellcheck disable=SC2046
WAIT_S=120 wait_ended $(grep "^r-" "$T/accepted")

# Member b dies whole: a takes its partitions back.
# shellcheck disable=SC2046
kill -KILL $(pgrep -P "$M_b") "$M_b"
t0=$(date +%s%N)
wait_held a 4 60
echo "member b killed: a holds all 4 again after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
load_transfers s 40
# shellcheck disable=SC2046
WAIT_S=60 wait_ended $(grep "^s-" "$T/accepted")

for p in 0 1 2 3; do
    n=$(psql -X -t -A "$ZSAGA_PG/${TAG}_journal" -c "SELECT count(*) FROM zsaga_journal_p$p WHERE db = 0")
    [ "$n" -gt 0 ] || fail "partition $p holds no saga"
done
check_transfers_once "$ROWS_OK"
pass "partitions shared out between members"
