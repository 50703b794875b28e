#!/bin/sh
# The systemd units pass `systemd-analyze verify`, and zsagad and a worker
# speak the notify protocol: READY=1 once up, WATCHDOG=1 pings at half the
# watchdog interval, STOPPING=1 at shutdown (a stand-in for systemd's
# notify socket records what they send).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
U="$TOP/deploy/systemd"
B=$(cd "$BIN" && pwd)
mkdir -p "$T/units"
sed "s|^ExecStart=/usr/local/bin/zsagad|ExecStart=$B/orchestrator/zsagad|" "$U/zsagad.service" >"$T/units/zsagad.service"
sed "s|^ExecStart=/usr/local/bin/zsaga-worker-%i|ExecStart=$B/workers/zsaga-worker-%i|" "$U/zsaga-worker@.service" \
    >"$T/units/zsaga-worker@.service"
(cd "$T/units" && systemd-analyze verify zsagad.service zsaga-worker@banking.service) >"$T/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$T/verify.log")"
# Nothing it says is a warning about these units either.
! grep -i "zsaga" "$T/verify.log" || fail "systemd-analyze: $(cat "$T/verify.log")"

notify_listener() { # SOCKET OUT: record each datagram as a line
    $PY - "$1" "$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        out.flush()
PY
    PIDS="$PIDS $!"
    i=0
    until [ -S "$1" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "notify socket"; sleep 0.05; done
}
wait_line() { # FILE PATTERN
    deadline=$(( $(date +%s) + 10 ))
    until grep -q "$2" "$1" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "no '$2' in $1: $(cat "$1" 2>/dev/null)"
        sleep 0.05
    done
}
notify_listener "$T/zsagad.notify" "$T/zsagad.sd"
notify_listener "$T/worker.notify" "$T/worker.sd"
seed banking
NOTIFY_SOCKET="$T/zsagad.notify" WATCHDOG_USEC=400000 start_zsagad
wait_line "$T/zsagad.sd" "^READY=1 STATUS=0 sagas resumed"
NOTIFY_SOCKET="$T/worker.notify" WATCHDOG_USEC=400000 start_worker banking --instance banking-1
wait_line "$T/worker.sd" "^READY=1 STATUS=serving banking as banking-1"
wait_workers 1
sleep 1.5
[ "$(grep -c '^WATCHDOG=1' "$T/zsagad.sd")" -ge 4 ] || fail "zsagad pinged the watchdog $(grep -c '^WATCHDOG=1' "$T/zsagad.sd") times in 1.5 s"
[ "$(grep -c '^WATCHDOG=1' "$T/worker.sd")" -ge 1 ] || fail "the worker never pinged the watchdog"
kill -TERM "$ZPID"
wait "$ZPID" 2>/dev/null || true
wait_line "$T/zsagad.sd" "^STOPPING=1"
pass "systemd units verify; READY, WATCHDOG and STOPPING notifications"
