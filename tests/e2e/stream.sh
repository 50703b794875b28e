#!/bin/sh
# The durable event stream: a subscriber that stops and comes back with
# `zsaga watch --from SEQ`, and one that stays through a restart of
# zsagad, together see every transition the journal holds, each exactly
# once, in sequence order.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
seed banking
start_zsagad
start_worker banking --instance banking-1
wait_workers 1

batch() { # PREFIX N: N transfers, every third reversed
    for n in $(seq 1 "$2"); do
        if [ $((n % 3)) = 0 ]; then transfer_saga "$1$n" ACC001 ACC002 100 fail
        else transfer_saga "$1$n" ACC001 ACC002 100; fi
        zsaga submit "$T/$1$n.json" >/dev/null
    done
    for n in $(seq 1 "$2"); do wait_ended "$1$n"; done
}
# A reader in the background whose pid is the reader's own (a shell
# function run with & would leave the pid of a subshell).
reader() { exec "$BIN/cli/zsaga" --endpoint "$CL" --events "$EV" watch --json "$@"; }
seqs() { $PY -c 'import json,sys; [print(s) for s in (json.loads(l)["seq"] for l in open(sys.argv[1]) if l.strip()) if s]' "$1"; }

# A reads from the start, sees a batch, and is stopped.
reader --from 0 >"$T/a1.jsonl" 2>"$T/a1.err" &
A=$!
PIDS="$PIDS $A"
batch a 10
sleep 0.5
kill -TERM $A
wait $A 2>/dev/null || true
LAST=$(seqs "$T/a1.jsonl" | tail -n 1)
[ -n "$LAST" ] || fail "the first reader saw nothing: $(cat "$T/a1.err")"

# While it is away, another batch runs.
batch b 10

# It comes back after its last sequence number, follows live, and stays
# through a restart of zsagad.
reader --from "$LAST" >"$T/a2.jsonl" 2>"$T/a2.err" &
B=$!
PIDS="$PIDS $B"
batch c 5
kill -TERM "$ZPID"
wait "$ZPID" 2>/dev/null || true
start_zsagad
wait_workers 1
batch d 5
# The reader asks what it missed when the stream goes quiet (1 s).
sleep 3

# Everything the journal holds, read in one go from the start.
(reader --from 0 >"$T/all.jsonl" 2>"$T/all.err" &
    sleep 3 && kill -TERM $!)
kill -TERM $B
wait $B 2>/dev/null || true

$PY - "$T/a1.jsonl" "$T/a2.jsonl" "$T/all.jsonl" <<'PY' || fail "the stream"
import json, sys
def load(p):
    # seq 0: an alert, live only (not in the journal)
    return [e for e in (json.loads(l) for l in open(p) if l.strip()) if e["seq"]]
a1, a2, every = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
for name, evs in (("a1", a1), ("a2", a2), ("all", every)):
    s = [e["seq"] for e in evs]
    dup = sorted(x for x in set(s) if s.count(x) > 1)
    assert s == sorted(set(s)), "%s: not each once in order (twice: %s; first out of order at %s)" % (name, dup[:20], next((i for i in range(1, len(s)) if s[i] <= s[i-1]), None))
full = [e["seq"] for e in every]
assert full == list(range(1, len(full) + 1)), "the journal's stream has gaps"
assert [e["seq"] for e in a1] + [e["seq"] for e in a2] == full, \
    "the resumed reader's events (%d + %d) are not the journal's (%d)" % (len(a1), len(a2), len(full))
# What a reader got live and what the journal gives back are the same events.
key = lambda e: (e["seq"], e["id"], e.get("step", ""), e["state"], e.get("attempt", 0))
assert [key(e) for e in a1 + a2] == [key(e) for e in every], "live and journal events differ"
ids = {e["id"] for e in every}
for p, n in (("a", 10), ("b", 10), ("c", 5), ("d", 5)):
    for i in range(1, n + 1):
        assert "%s%d" % (p, i) in ids, "%s%d missing" % (p, i)
# The same events as the sagas' own histories.
ends = [e for e in every if e["state"] in ("completed", "compensated") and not e.get("step")]
assert len(ends) == 30, len(ends)
print(len(full), "events")
PY
# Paging: small pages over HTTP give the same events, each page at most
# its limit, "next" chaining them.
PORT=$(http_port "$T/zsagad.log")
TOKEN=$(zsaga login --console x 2>/dev/null)
TOKEN=${TOKEN##*token=}
$PY - "$PORT" "$TOKEN" "$T/all.jsonl" <<'PY' || fail "paged events"
import json, sys, urllib.request
port, token, path = sys.argv[1:]
want = [json.loads(l) for l in open(path) if l.strip()]
want = [(e["seq"], e["id"], e.get("step", "")) for e in want if e["seq"]]
got, after, pages = [], 0, 0
while True:
    req = urllib.request.Request("http://127.0.0.1:%s/api" % port, method="POST",
        data=json.dumps({"type": "events", "seq": after, "limit": 7}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    r = json.load(urllib.request.urlopen(req))
    assert r["type"] == "events_reply" and len(r["events"]) <= 7, r
    got += [(e["seq"], e["id"], e.get("step", "")) for e in r["events"]]
    pages += 1
    if not r["events"] or r["next"] >= r["head"]:
        break
    after = r["next"]
assert got == want, "paged %d events, the reader %d" % (len(got), len(want))
assert pages >= len(want) // 7, pages
PY
# A history count from status agrees with the stream, saga by saga.
for id in a1 b5 c3 d5; do
    n=$(zsaga status "$id" --json | grep -c '"what":')
    m=$(grep -c "\"id\": *\"$id\"" "$T/all.jsonl")
    assert_eq "$n" "$m" "events of $id"
done
# A reader whose first request goes unanswered (zsagad paused, as when
# it restarts just then) keeps going, and reads the journal once zsagad
# answers again.
kill -STOP "$ZPID"
reader --timeout 500 --from 0 >"$T/late.jsonl" 2>"$T/late.err" &
R=$!
PIDS="$PIDS $R"
sleep 1.5
kill -CONT "$ZPID"
deadline=$(( $(date +%s) + 20 ))
until [ "$(seqs "$T/late.jsonl" | wc -l)" = "$(seqs "$T/all.jsonl" | wc -l)" ]; do
    kill -0 $R 2>/dev/null || fail "the reader gave up when its first request went unanswered: $(cat "$T/late.err")"
    [ "$(date +%s)" -lt "$deadline" ] || fail "the reader read $(seqs "$T/late.jsonl" | wc -l) of $(seqs "$T/all.jsonl" | wc -l) events"
    sleep 0.1
done
grep -q "no answer" "$T/late.err" || fail "the unanswered request was not said"
kill -TERM $R
pass "durable stream: resumed after a reader's restart and across a zsagad restart, each event once"
