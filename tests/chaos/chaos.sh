#!/bin/sh
# Failure injection under load. Starts zsagad, two or three instances of
# every worker on real PostgreSQL, MariaDB and Redis servers of its own (one
# of the two fraud workers is the Python one, workers/fraud/fraud_worker.py), and
# zsaga-load; breaks things on a schedule drawn from the seed; restarts
# whatever died, as a supervisor would; waits for every saga to end; then
# zsaga-check reads the journal and the databases and judges.
#
#   chaos.sh BUILD_DIR [--minutes N] [--seed S] [--rate R] [--journal pg [--partitions P]]
#   chaos.sh BUILD_DIR --self-test
#
# --journal pg: the journal on the PostgreSQL server (a database of its
# own), with P partitions (default 1) and P + 1 zsagad processes on it,
# each on endpoints of its own: P serve a partition each, one stands by
# (lease 3 s). The load and the workers are given every zsagad's
# endpoint; the load follows not_leader. The faults that kill zsagad kill
# the holder of a partition drawn from the seed: a standby takes it over
# and the killed one comes back as a standby. journal-full (LMDB's) gives
# way to stop-zsagad: SIGSTOP of a holder past its lease, then SIGCONT (it
# must find itself deposed and exit). kill-pg kills the journal's server
# too. The checker reads every partition's table.
#
# Default: 3 minutes of load at 20 sagas/s with a fault every 8 s (22
# faults), about 5 minutes in all. --minutes N is the soak: the same with
# N minutes of load. Every fault kind of docs/operations.md ("Failure
# injection") comes up in every run. The run prints the seed; the same
# seed gives the same sagas and the same fault schedule (the timing of
# the system under test is its own).
#
# --self-test proves the checker can fail: 20 s of load with no fault, a
# clean verdict, then copies of the databases corrupted on purpose (a
# duplicated credit, a missing compensation, a broken audit hash, an effect
# of a saga nobody submitted, an accepted saga that is not in the journal);
# the checker must name each one.
#
# Needs root: the partitioned worker lives in a network namespace
# (ip netns) on a veth pair; its link is cut and healed.
BUILD=$1
shift
MINUTES=3
SEED=$(date +%s)
RATE=20
SELF_TEST=""
JOURNAL=lmdb
PARTS=1
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) MINUTES=$2; shift ;;
    --journal) JOURNAL=$2; shift ;;
    --partitions) PARTS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --self-test) SELF_TEST=1 ;;
    *) echo "usage: chaos.sh BUILD_DIR [--minutes N] [--seed S] [--rate R] [--journal pg [--partitions P]] | --self-test" >&2; exit 2 ;;
    esac
    shift
done
set -- "$BUILD" servers
. "$(dirname "$0")/../e2e/lib.sh"
use_private_servers
[ "$(id -u)" -eq 0 ] || fail "chaos.sh needs root for its network namespace"

LOAD_S=$((MINUTES * 60))
[ -z "$SELF_TEST" ] || LOAD_S=20
HB_TIMEOUT=2000
CHECK="$BIN/tests/zsaga-check"
START=$(date +%s)
FAULTS=0
SUPS=""
NS=""

now() { echo $(($(date +%s) - START)); }
say() { echo "[$(printf '%4d' "$(now)")s] $*" | tee -a "$T/chaos.log"; }

# ---- the databases ---------------------------------------------------------
servers_up
eval "$("$TOP/deploy/servers.sh" env "$SERVERS")"
. "$SERVERS/ports"
ACCOUNTS=2000
for s in banking payments fraud compliance; do new_db $s; done
case $JOURNAL in
lmdb) JOURNAL_REF=$T/journal ;;
pg)
    "$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_journal" pg >/dev/null || fail "no journal database"
    JOURNAL_REF=$ZSAGA_PG/${TAG}_journal
    ;;
*) fail "--journal lmdb or pg, not $JOURNAL" ;;
esac
"$BIN/workers/zsaga-worker-banking" seed $ACCOUNTS "$SEED" --db "$(uri_of banking)" >/dev/null ||
    fail "seeding banking"
for s in payments fraud compliance; do
    "$BIN/workers/zsaga-worker-$s" seed-demo --db "$(uri_of $s)" >/dev/null || fail "seeding $s"
done
CUSTOMERS=$(q banking "SELECT COUNT(*) FROM customers")
"$CHECK" snapshot --banking "$(uri_of banking)" --out "$T/snapshot" || fail "snapshot"

# ---- the partitioned worker's network ----------------------------------------
# A namespace and a veth pair; zsagad also listens on the host's end.
NS=zsaga$$
VA=zva$$
VB=zvb$$
NET=10.$((200 + $$ % 50)).$(($$ / 50 % 250)).
ip netns add $NS || fail "ip netns add"
ip link add $VA type veth peer name $VB || fail "veth"
ip link set $VB netns $NS
ip addr add ${NET}1/30 dev $VA
ip link set $VA up
ip netns exec $NS ip addr add ${NET}2/30 dev $VB
ip netns exec $NS ip link set $VB up
ip netns exec $NS ip link set lo up
NS_PORT=$(( 40000 + $$ % 20000 ))
WK_ALL="$WK,tcp://${NET}1:$NS_PORT"
# Unix sockets cross namespaces: the cut-off worker reaches PostgreSQL
# through the server's socket, and zsagad only through the veth.
BANK_NS_URI="postgresql://zsaga@/${TAG}_banking?host=$SERVERS/pg&port=$pg_port"

# ---- supervised processes ----------------------------------------------------
# supervise SLOT CMD...: run CMD, and again whenever it dies, until the
# run stops. Extra arguments in $T/once.SLOT go to the next start only.
supervise() {
    slot=$1
    shift
    (
        set -f # fault rules hold '*'
        while [ ! -e "$T/stop" ]; do
            extra=""
            if [ -f "$T/pre.$slot" ]; then # a step before the next start only
                sh "$T/pre.$slot" >>"$T/$slot.log" 2>&1 || echo "pre.$slot failed" >>"$T/$slot.log"
                rm -f "$T/pre.$slot"
            fi
            if [ -f "$T/once.$slot" ]; then
                extra=$(cat "$T/once.$slot")
                rm -f "$T/once.$slot"
            fi
            # shellcheck disable=SC2086
            "$@" $extra 2>>"$T/$slot.log" &
            echo $! >"$T/pid.$slot"
            wait $! || true
            [ ! -e "$T/stop" ] || break
            echo "restart $(date +%s)" >>"$T/restarts.$slot"
            sleep 0.3
        done
    ) 2>>"$T/$slot.log" & # the shell's own "Killed" notes go there too
    SUPS="$SUPS $!"
}
pid_of() { cat "$T/pid.$1" 2>/dev/null; }

# Retention on, short: ended sagas are archived and removed while faults
# happen, and the checker judges them from the archive.
ZSAGAD_ARGS="--http 127.0.0.1:0 --clients $CL --events $EV --heartbeat-timeout $HB_TIMEOUT
    --key $K/zsagad.key_secret --authorized $T/authorized
    --retain 20s --tombstones 1h --archive $T/archive"
LEASE_MS=3000
ZSAGADS=zsagad
NS_EPS="tcp://${NET}1:$NS_PORT"
if [ "$JOURNAL" = pg ]; then
    # P holders and a standby on one journal, as on several machines:
    # endpoints of their own (a client endpoint, a local worker endpoint,
    # a TCP port on the veth for the worker behind it, an event endpoint),
    # every one given to the load and the workers.
    mkdir -p "$T/archive" # a folder a zsagad: archive names are unique per writer
    ZSAGADS=""
    CLS=""
    WKS=""
    NS_EPS=""
    for i in $(seq 1 $((PARTS + 1))); do
        z=zsagad$i
        [ "$i" = 1 ] && z=zsagad
        ZSAGADS="$ZSAGADS${ZSAGADS:+ }$z"
        CLS="$CLS${CLS:+,}ipc://$T/c$i.sock"
        WKS="$WKS${WKS:+,}ipc://$T/w$i.sock"
        NS_EPS="$NS_EPS${NS_EPS:+,}tcp://${NET}1:$((NS_PORT + i - 1))"
        # shellcheck disable=SC2086
        supervise $z "$BIN/orchestrator/zsagad" --http 127.0.0.1:0 --clients "ipc://$T/c$i.sock" \
            --events "ipc://$T/e$i.sock" --heartbeat-timeout $HB_TIMEOUT \
            --key "$K/zsagad.key_secret" --authorized "$T/authorized" --retain 20s \
            --tombstones 1h --archive "$T/archive/$z" --journal "$JOURNAL_REF" \
            --partitions "$PARTS" --lease $LEASE_MS \
            --workers "ipc://$T/w$i.sock,tcp://${NET}1:$((NS_PORT + i - 1))"
        # Started in order, so that zsagad I serves partition I - 1 and
        # the last stands by.
        what="info: took the"
        [ "$i" -le "$PARTS" ] || what="info: standby"
        deadline=$(( $(date +%s) + 30 ))
        until grep -q "$what" "$T/$z.log" 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || fail "$z never said: $what"
            sleep 0.05
        done
    done
    CL=$CLS
    WK=$WKS
else
    supervise zsagad "$BIN/orchestrator/zsagad" $ZSAGAD_ARGS --data "$JOURNAL_REF" --workers "$WK_ALL"
fi
W="$BIN/workers/zsaga-worker"
WARGS="--orchestrator $WK --heartbeat 300 --capacity 8 --server-key $K/zsagad.key"
BANK_KEY="--key $K/banking.key_secret"
supervise bank1 "$W-banking" --db "$(uri_of banking)" --instance bank1 $WARGS $BANK_KEY
supervise bank2 ip netns exec $NS "$W-banking" --db "$BANK_NS_URI" --instance bank2 \
    --orchestrator "$NS_EPS" --heartbeat 300 --capacity 8 \
    --server-key "$K/zsagad.key" $BANK_KEY
# Pool starvation: 8 steps at once on 1 connection, 200 ms to get it.
supervise bank3 "$W-banking" --db "$(uri_of banking)" --instance bank3 $WARGS $BANK_KEY \
    --pool-max 1 --acquire-timeout 200
for s in payments fraud compliance; do
    for i in 1 2; do
        [ "$s$i" != fraud2 ] || continue
        supervise $s$i "$W-$s" --db "$(uri_of $s)" --instance $s$i $WARGS --key "$K/$s.key_secret"
    done
done
# fraud2 is the fraud system written in Python (workers/fraud/fraud_worker.py,
# on the Python library), sharing fraud1's Redis: the barrier of either
# language fences the other's copies of a step.
supervise fraud2 /usr/bin/python3 "$TOP/workers/fraud/fraud_worker.py" --db "$(uri_of fraud)" \
    --instance fraud2 $WARGS --key "$K/fraud.key_secret"
ALL_WORKERS="bank1 bank2 bank3 payments1 payments2 fraud1 fraud2 compliance1 compliance2"

# each_stat KEY: KEY of `zsaga stats` from every zsagad that answers, one
# line each (a standby answers nothing).
each_stat() {
    for ep in $(echo "$CL" | tr ',' ' '); do
        "$BIN/cli/zsaga" --endpoint "$ep" --timeout 1000 stats --json 2>/dev/null |
            sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"
    done
}
# Every partition's zsagad has every worker registered.
deadline=$(( $(date +%s) + 30 ))
until [ "$(each_stat workers | grep -cx 9)" = "$PARTS" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "workers registered: $(each_stat workers | tr '\n' ' ')"
    sleep 0.1
done

chaos_cleanup() {
    touch "$T/stop"
    for s in $ZSAGADS $ALL_WORKERS; do
        p=$(pid_of $s)
        [ -z "$p" ] || { kill -CONT "$p"; kill -TERM "$p"; } 2>/dev/null || true
    done
    for p in $SUPS; do wait "$p" 2>/dev/null || true; done
    [ -z "$NS" ] || { ip netns del $NS; ip link del $VA; } 2>/dev/null || true
    cleanup
}
trap chaos_cleanup EXIT
trap "exit 1" INT TERM

# ---- the load ----------------------------------------------------------------
say "seed $SEED: $LOAD_S s of load at $RATE sagas/s, $ACCOUNTS accounts, $CUSTOMERS customers"
if [ -z "$SELF_TEST" ]; then
    say "fault pool-starvation: bank3 runs 8 steps at once on 1 connection (200 ms acquire timeout)"
    FAULTS=$((FAULTS + 1))
fi
"$BIN/tests/zsaga-load" --endpoint "$CL" --seed "$SEED" --rate "$RATE" --seconds "$LOAD_S" \
    --accounts $ACCOUNTS --customers "$CUSTOMERS" --log "$T/load.txt" >"$T/load.out" 2>&1 &
LOAD=$!

# ---- the faults ----------------------------------------------------------------
# The schedule: one fault every 8 s from 6 s on, the kinds in an order
# shuffled by the seed, each kind at least once per 12 faults.
KINDS="kill-worker kill-after-commit kill-in-compensation kill-zsagad kill-zsagad-in-commit
kill-zsagad-after-commit stop-worker partition kill-pg kill-my kill-redis journal-full"
[ "$JOURNAL" = lmdb ] || KINDS=$(echo "$KINDS" | sed 's/journal-full/stop-zsagad/')
NF=$(((LOAD_S - 10) / 8))
[ -z "$SELF_TEST" ] || NF=0
awk -v seed="$SEED" -v n="$NF" -v kinds="$(echo $KINDS)" 'BEGIN {
    srand(seed); k = split(kinds, K, " ");
    for (i = 0; i < n; i++) {
        if (i % k == 0) for (j = k; j > 1; j--) { r = int(rand() * j) + 1; t = K[j]; K[j] = K[r]; K[r] = t }
        printf "%d %s %d\n", 6 + 8 * i, K[i % k + 1], int(rand() * 1000000)
    }
}' >"$T/schedule"

pick() { # N WORDS...: the word number N mod count
    n=$1
    shift
    eval "echo \${$(($n % $# + 1))}"
}

comp_ops() { # SYSTEM: its compensations, as fault rules
    case $1 in
    bank*) echo "crash-before-commit=credit_account:0.5;crash-after-commit=reverse_transfer:0.5;crash-after-commit=refund_fee;crash-before-commit=delete_loan_account" ;;
    payments*) echo "crash-after-commit=reverse_payment:0.5;crash-before-commit=cancel_payment_schedule" ;;
    fraud*) echo "crash-after-commit=clear_risk_flag:0.5;crash-before-commit=clear_fraud_check" ;;
    compliance*) echo "crash-after-commit=send_cancellation:0.5;crash-before-commit=archive_compliance_report" ;;
    esac
}

journal_used_mib() {
    used=$(zsaga stats --json 2>/dev/null | sed -n 's/.*"journal_used_bytes": \([0-9]*\).*/\1/p')
    echo $(((${used:-0} + 1048575) / 1048576))
}

# The zsagad slot that serves: on PostgreSQL, the one whose pid the lease
# of partition R mod P names (R: the fault's draw).
active() {
    [ "$JOURNAL" = pg ] || { echo zsagad; return; }
    holder=$(psql -X -t -A "$JOURNAL_REF" -c "SELECT substring(holder from 'pid ([0-9]+)')
        FROM zsaga_lease WHERE part = ${r:-0} % $PARTS" 2>/dev/null || true)
    for z in $ZSAGADS; do
        [ "$(pid_of $z)" != "$holder" ] || { echo $z; return; }
    done
    echo zsagad
}

LAST_FAULT=0
fault() { # KIND R
    kind=$1
    r=$2
    case $kind in
    kill-worker)
        w=$(pick "$r" $ALL_WORKERS)
        kill -KILL "$(pid_of "$w")" 2>/dev/null || true
        say "fault kill-worker: SIGKILL $w"
        ;;
    kill-after-commit)
        w=$(pick "$r" bank1 bank3 payments1 payments2 fraud1 fraud2 compliance1)
        echo "--fault crash-after-commit=*:0.1" >"$T/once.$w"
        kill -TERM "$(pid_of "$w")" 2>/dev/null || true
        say "fault kill-after-commit: $w restarted to die by SIGKILL after one of its next commits, before the reply"
        ;;
    kill-in-compensation)
        w=$(pick "$r" bank1 bank3 payments1 fraud1 fraud2 compliance1)
        echo "--fault $(comp_ops "$w")" >"$T/once.$w"
        kill -TERM "$(pid_of "$w")" 2>/dev/null || true
        say "fault kill-in-compensation: $w restarted to die by SIGKILL in its next compensations"
        ;;
    kill-zsagad)
        z=$(active)
        kill -KILL "$(pid_of $z)" 2>/dev/null || true
        say "fault kill-zsagad: SIGKILL $z"
        ;;
    kill-zsagad-in-commit)
        n=$((20 + r % 200))
        z=$(active)
        echo "--crash-in-commit $n" >"$T/once.$z"
        kill -KILL "$(pid_of $z)" 2>/dev/null || true
        say "fault kill-zsagad-in-commit: SIGKILL $z, restarted to die by SIGKILL in the middle of its group commit $n (once it serves)"
        ;;
    kill-zsagad-after-commit)
        n=$((20 + r % 200))
        z=$(active)
        echo "--crash-after-commit $n" >"$T/once.$z"
        kill -KILL "$(pid_of $z)" 2>/dev/null || true
        say "fault kill-zsagad-after-commit: SIGKILL $z, restarted to die by SIGKILL once its group commit $n is durable, before it sends what follows (once it serves)"
        ;;
    stop-zsagad)
        z=$(active)
        p=$(pid_of $z)
        kill -STOP "$p" 2>/dev/null || true
        say "fault stop-zsagad: SIGSTOP $z (pid $p) for $((LEASE_MS * 2 / 1000)) s (lease $LEASE_MS ms), then SIGCONT"
        sleep $((LEASE_MS * 2 / 1000))
        kill -CONT "$p" 2>/dev/null || true
        n=0
        while kill -0 "$p" 2>/dev/null && [ $n -lt 100 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        if kill -0 "$p" 2>/dev/null; then
            fail "zsagad $p still runs 10 s after SIGCONT, its lease taken"
        fi
        grep -q "zsagad\[$p\] error: deposed" "$T/$z.log" || say "      (pid $p ended without saying deposed: it held no lease by then)"
        say "      $z ($p) stopped after SIGCONT; the supervisor starts it again as the standby"
        ;;
    stop-worker)
        w=$(pick "$r" bank1 bank3 payments1 payments2 fraud1 fraud2 compliance1 compliance2)
        p=$(pid_of "$w")
        kill -STOP "$p" 2>/dev/null || true
        say "fault stop-worker: SIGSTOP $w for $((HB_TIMEOUT * 2 / 1000)) s (heartbeat timeout $HB_TIMEOUT ms), then SIGCONT"
        sleep $((HB_TIMEOUT * 2 / 1000))
        kill -CONT "$p" 2>/dev/null || true
        ;;
    partition)
        say "fault partition: link to bank2 (namespace $NS) cut for 5 s"
        ip link set $VA down
        sleep 5
        ip link set $VA up
        say "      partition healed"
        ;;
    kill-pg | kill-my | kill-redis)
        srv=${kind#kill-}
        "$TOP/deploy/servers.sh" kill "$SERVERS" "$srv"
        say "fault $kind: SIGKILL the $srv server, restart in 1 s"
        sleep 1
        "$TOP/deploy/servers.sh" start "$SERVERS" "$srv" >>"$T/servers-start.log" 2>&1 ||
            fail "$srv did not restart"
        ;;
    journal-full)
        # LMDB never maps less than its file, and a file keeps its high
        # water mark after retention frees pages: compact it offline first
        # (as an operator would with mdb_copy -c), then restart with a map
        # the size of what is in use and age retention off, so the journal
        # is nearly full at once or within seconds.
        mib=$(journal_used_mib)
        cat >"$T/pre.zsagad" <<PRE
rm -rf "$T/compact" && mkdir "$T/compact" && mdb_copy -c "$T/journal" "$T/compact" &&
    mv "$T/compact/data.mdb" "$T/journal/data.mdb" && rm -rf "$T/compact"
PRE
        echo "--map-size $mib --retain 1h" >"$T/once.zsagad"
        kill -TERM "$(pid_of zsagad)" 2>/dev/null || true
        say "fault journal-full: zsagad restarted on its compacted journal with a ${mib} MiB map and age retention off: it fills, retention sheds ended sagas, or new submits are refused; running sagas go on"
        # The window lasts until zsagad says it is under pressure (or
        # refuses for want of room), 60 s at most.
        n=0
        while [ $n -lt 120 ]; do
            st=$(zsaga stats --json 2>/dev/null || true)
            ps=$(echo "$st" | sed -n 's/.*"pressure_sweeps": \([0-9]*\).*/\1/p')
            [ "${ps:-0}" = 0 ] || break
            grep -q '^rejected .* journal_full' "$T/load.txt" 2>/dev/null && break
            sleep 0.5
            n=$((n + 1))
        done
        say "      after $((n / 2)) s: pressure sweeps ${ps:-0}, journal_full refusals so far $(grep -c '^rejected .* journal_full' "$T/load.txt" 2>/dev/null || true)"
        sleep 4
        FAULTS=$((FAULTS + 1))
        kill -TERM "$(pid_of zsagad)" 2>/dev/null || true
        say "      map raised: zsagad restarted with the default map"
        ;;
    esac
    FAULTS=$((FAULTS + 1))
    LAST_FAULT=$(date +%s)
}

while read -r at kind r; do
    while [ "$(now)" -lt "$at" ]; do sleep 0.2; done
    kill -0 $LOAD 2>/dev/null || break
    # A process may be between death and restart: a fault that misses it
    # is still logged, and never stops the run.
    fault "$kind" "$r" || true
done <"$T/schedule"

# ---- the checker's own test ----------------------------------------------------
# copy SYSTEM N: a copy of SYSTEM's database (PostgreSQL), as its URI.
copy_db() {
    psql -X -q -v ON_ERROR_STOP=1 "$ZSAGA_PG/postgres" \
        -c "CREATE DATABASE ${TAG}_${1}_$2 TEMPLATE ${TAG}_$1" >/dev/null || fail "copy of $1"
    echo "$ZSAGA_PG/${TAG}_${1}_$2"
}
qc() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$1" -c "$2"; }
# expect_caught WHAT RULE SAGA [verify options]: the checker fails and names it.
expect_caught() {
    what=$1 rule=$2 saga=$3
    shift 3
    if "$CHECK" verify --journal "$JOURNAL_REF" --payments "$(uri_of payments)" \
        --fraud "$(uri_of fraud)" --snapshot "$T/snapshot" --archive "$T/archive" "$@" \
        >"$T/caught.out"; then
        fail "the checker passed $what"
    fi
    grep -q "^VIOLATION rule $rule saga $saga:" "$T/caught.out" ||
        fail "$what: no rule $rule violation naming $saga: $(head -n 5 "$T/caught.out")"
    say "caught $what: $(grep "^VIOLATION rule $rule saga $saga:" "$T/caught.out" | head -n 1)"
}
self_test() {
    BANK=$(uri_of banking)
    COMP=$(uri_of compliance)
    # 1. A credit applied twice.
    c=$(copy_db banking c1)
    x=$(qc "$c" "SELECT saga || ' ' || account || ' ' || amount FROM ledger l WHERE step = 'move'
        AND amount > 0 AND NOT EXISTS (SELECT 1 FROM ledger k WHERE k.saga = l.saga
        AND k.phase = 'compensation') ORDER BY saga LIMIT 1")
    set -- $x
    [ -n "${1:-}" ] || fail "no completed transfer to corrupt"
    qc "$c" "INSERT INTO ledger (saga, step, phase, account, amount, currency, kind, created_ms)
        SELECT saga, step, phase, account, amount, currency, kind, created_ms FROM ledger
        WHERE saga = '$1' AND step = 'move' AND amount > 0;
        UPDATE accounts SET balance = balance + $3 WHERE number = '$2'" >/dev/null
    expect_caught "a duplicated credit" 2 "$1" --banking "$c" --compliance "$COMP"
    # 2. A compensation that is missing: its ledger entry and its effect.
    c=$(copy_db banking c2)
    x=$(qc "$c" "SELECT id || ' ' || saga || ' ' || account || ' ' || amount FROM ledger
        WHERE phase = 'compensation' ORDER BY id LIMIT 1")
    set -- $x
    [ -n "${1:-}" ] || fail "no compensation to remove"
    qc "$c" "DELETE FROM ledger WHERE id = $1;
        UPDATE accounts SET balance = balance - ($4) WHERE number = '$3'" >/dev/null
    expect_caught "a missing compensation" 3 "$2" --banking "$c" --compliance "$COMP"
    # 3. An audit entry edited after the fact.
    c=$(copy_db compliance c3)
    saga=$(qc "$c" "UPDATE audit_trail SET detail = detail || ' (edited)'
        WHERE seq = 5 RETURNING saga")
    expect_caught "a broken audit hash" 7 "$saga" --banking "$BANK" --compliance "$c"
    # 4. An effect of a saga the journal does not know.
    c=$(copy_db banking c4)
    qc "$c" "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms)
        VALUES ('ghost-1', 'move', 'action', 'done', 'transfer', 0)" >/dev/null
    expect_caught "an effect without a saga" 6 ghost-1 --banking "$c" --compliance "$COMP"
    # 5. A saga the client was told was accepted, missing from the journal.
    cp "$T/load.txt" "$T/load-lost.txt"
    echo "accepted Lt999999 t" >>"$T/load-lost.txt"
    expect_caught "an accepted saga the journal lost" 8 Lt999999 --banking "$BANK" \
        --compliance "$COMP" --load-log "$T/load-lost.txt"
    pass "the checker passes the clean run and names each of 5 corruptions"
    exit 0
}

# ---- the end -----------------------------------------------------------------
wait $LOAD || true
say "$(cat "$T/load.out")"
say "faults done; waiting for every saga to end"
deadline=$(($(date +%s) + 240))
# Every partition answered, and none has a saga still active.
until [ "$(each_stat sagas_active | grep -cx 0)" = "$PARTS" ] &&
    [ "$(each_stat sagas_active | grep -vcx 0)" = 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || {
        zsaga list --state running | head -20
        zsaga list --state compensating | head -20
        fail "sagas still running 240 s after the last fault"
    }
    sleep 0.5
done
ENDED=$(date +%s)
[ "$LAST_FAULT" -gt 0 ] || LAST_FAULT=$ENDED
say "every saga ended $((ENDED - LAST_FAULT)) s after the last fault"
zsaga stats | tee -a "$T/chaos.log" | grep -E "fenced|stale|workers_lost|sagas_" || true
restarts=0
for f in "$T"/restarts.*; do [ -f "$f" ] && restarts=$((restarts + $(wc -l <"$f"))); done
say "$FAULTS faults; $restarts process restarts by the supervisor"

# The Python fraud worker took its share: the steps it answered, from its
# last heartbeat's counters (as each zsagad that answers saw them).
py_steps=0
for ep in $(echo "$CL" | tr ',' ' '); do
    n=$("$BIN/cli/zsaga" --endpoint "$ep" --timeout 1000 stats --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
try:
    w = [m for m in json.load(sys.stdin)["worker_metrics"] if m["instance"] == "fraud2"]
    print(sum(m["metrics"].get("steps_ok", 0) + m["metrics"].get("steps_failed", 0) for m in w))
except ValueError:
    print(0)' || echo 0)
    [ "$n" -le "$py_steps" ] || py_steps=$n
done
say "fraud2, the Python fraud worker, answered $py_steps steps since its last start"
[ "$py_steps" -gt 0 ] || fail "the Python fraud worker answered no step"

# Everything stops cleanly before the checker reads.
touch "$T/stop"
for s in $ZSAGADS $ALL_WORKERS; do kill -TERM "$(pid_of $s)" 2>/dev/null || true; done
for p in $SUPS; do wait "$p" 2>/dev/null || true; done
SUPS=""

rc=0
"$CHECK" verify --journal "$JOURNAL_REF" --banking "$(uri_of banking)" \
    --payments "$(uri_of payments)" --fraud "$(uri_of fraud)" \
    --compliance "$(uri_of compliance)" --snapshot "$T/snapshot" --load-log "$T/load.txt" \
    --archive "$T/archive" >"$T/check.out" || rc=$?
tee -a "$T/chaos.log" <"$T/check.out"
[ "$rc" = 0 ] && grep -q "^0 violations" "$T/check.out" ||
    fail "the checker found violations or could not read (exit $rc, seed $SEED)"
[ -z "$SELF_TEST" ] || self_test
[ "$FAULTS" -ge 20 ] || [ "$MINUTES" -lt 3 ] || fail "only $FAULTS faults"
accepted=$(grep -c '^accepted' "$T/load.txt")
if grep -q "fault journal-full" "$T/chaos.log"; then
    full=$(grep -c '^rejected .* journal_full' "$T/load.txt" || true) # grep -c exits 1 on 0
    # With retention on, a nearly full journal first sheds its ended sagas;
    # what is left (running sagas) must still be refused when it is full.
    pressure=$(grep -c "journal nearly full: retention is removing" "$T"/zsagad*.log 2>/dev/null | awk -F: '{n += $NF} END {print n + 0}')
    [ "$full" -gt 0 ] || [ "$pressure" -gt 0 ] ||
        fail "the journal was full, yet no submit was refused with journal_full and retention never shed ended sagas"
    say "journal full: $full submits refused with journal_full, retention under pressure logged $pressure times"
fi
# On PostgreSQL, a submit whose batch could not commit while the journal's
# server was down is refused (internal, an I/O error; nothing recorded,
# which the checker's rule 8 verified): the client may submit it again.
ok_refusals=' journal_full '
if [ "$JOURNAL" = pg ] && grep -q "fault kill-pg" "$T/chaos.log"; then
    ok_refusals="$ok_refusals| internal .*Input/output error"
    say "journal's server down: $(grep -Ec " internal .*Input/output error" "$T/load.txt" || true) submits refused (internal, I/O error)"
fi
other=$(grep '^rejected' "$T/load.txt" | grep -Evc "$ok_refusals" || true)
[ "$other" = 0 ] || fail "$other submits refused for another reason: $(grep '^rejected' "$T/load.txt" | grep -Ev "$ok_refusals" | head -n 3)"
[ "$accepted" -gt 0 ] || fail "no saga was accepted"
pass "chaos ($JOURNAL journal): seed $SEED, $accepted sagas accepted, $FAULTS faults, 0 violations, last saga ended $((ENDED - LAST_FAULT)) s after the last fault"
