#!/bin/sh
# One saga across three languages, under CURVE, with the real zsagad: its
# steps run on the notify example's C worker (built against the installed
# libzsaga), Python worker and Node.js worker, registered as the systems
# notify_c, notify_py and notify_node and sharing one PostgreSQL database.
# The Python client submits one that completes; the Node.js client one
# whose last step fails for good, so the three steps are compensated in
# reverse order across the three languages. Both clients check params
# against the workers' schemas before sending, raise the protocol's codes,
# and the Python client reads the event stream from the journal.
. "$(dirname "$0")/lib.sh"

C="$BIN/examples/notify-c/notify-worker"
[ -x "$C" ] || fail "$C is missing: tests/e2e/install.sh builds it"
for s in notify_c notify_py notify_node; do
    keygen "$s" --role worker --systems "$s"
    cp "$K/$s.key" "$T/authorized/"
done
servers_up
"$TOP/deploy/servers.sh" newdb "$SERVERS" "${TAG}_notify" pg >/dev/null
DB="$ZSAGA_PG/${TAG}_notify"
start_zsagad

# start_lang SYSTEM COMMAND...: a notify worker as SYSTEM, its database
# URI in a 0600 file as an operator keeps it (--db-file).
start_lang() {
    s=$1
    shift
    (umask 077 && echo "$DB" >"$T/$s.uri")
    NOTIFY_SYSTEM=$s "$@" --db-file "$T/$s.uri" --orchestrator "$WK" --key "$K/$s.key_secret" \
        --server-key "$K/zsagad.key" --heartbeat 300 --instance "$s-1" 2>>"$T/worker-$s.log" &
    PIDS="$PIDS $!"
}
start_lang notify_c "$C"
# One migrates first: three workers creating the same tables at once race.
deadline=$(( $(date +%s) + 20 ))
until psql -X -q -t -A "$DB" -c "SELECT 1 FROM zsaga_schema WHERE version = 1" 2>/dev/null | grep -q 1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the C worker never migrated"
    sleep 0.1
done
start_lang notify_py env PYTHONPATH="$TOP/clients/python" /usr/bin/python3 \
    "$TOP/deploy/examples/notify/python/notify_worker.py"
PY_PID=$!
start_lang notify_node node "$TOP/deploy/examples/notify/node/notify-worker.js"
wait_workers 3
psql -X -q -v ON_ERROR_STOP=1 "$DB" \
    -c "INSERT INTO notify_quota (customer, remaining) VALUES ('alice', 10), ('broke', 0)" ||
    fail "no quotas"

# steps FIRST_ID PREFIX: the three language steps, chained.
cat >"$T/saga.py" <<'PY'
import os, sys
sys.path.insert(0, os.environ["TOP"] + "/clients/python")
import zsaga

c = zsaga.Client(os.environ["CL"], key=os.environ["K"] + "/submit.key_secret",
                 server_key=os.environ["K"] + "/zsagad.key", events=os.environ["EV"])
steps = [
    {"id": "c", "system": "notify_c", "action": "send", "compensation": "retract",
     "params": {"customer": "alice", "channel": "sms", "text": "paid"}},
    {"id": "py", "system": "notify_py", "action": "send", "compensation": "retract", "deps": ["c"],
     "params": {"customer": "alice", "channel": "email", "text": "${c.message_id}"}},
    {"id": "node", "system": "notify_node", "action": "send", "compensation": "retract", "deps": ["py"],
     "params": {"customer": "alice", "channel": "push", "text": "${py.message_id}"}},
]
# Checked before sending: a missing param and a float never leave.
for bad in ({"customer": "alice", "channel": "sms"}, {"customer": "alice", "channel": "sms", "text": "x", "n": 1.5}):
    try:
        c.submit({"id": "py-bad", "steps": [dict(steps[0], params=bad)]})
        sys.exit("submit with bad params was sent")
    except zsaga.InvalidParams as e:
        print("invalid_params:", e.reason)
try:
    c.status("py-bad")
    sys.exit("py-bad exists")
except zsaga.RequestError as e:
    assert e.code == "not_found", e.code
saga = c.run({"id": "py-ok", "name": "three languages", "steps": steps}, timeout_s=60)
print("py-ok", saga["state"], " ".join(f"{s['id']}={s['output']['remaining']}" for s in saga["steps"]))
assert saga["state"] == "completed", saga
assert [s["output"]["message_id"] for s in saga["steps"]] == ["py-ok/c", "py-ok/py", "py-ok/node"]
# The same id again is a duplicate, not a second saga.
assert c.submit({"id": "py-ok", "name": "three languages", "steps": steps})["duplicate"] is True
try:
    c.cancel("py-ok")
    sys.exit("cancel of an ended saga was accepted")
except zsaga.RequestError as e:
    assert e.code == "forbidden", e.code  # a submit key may not cancel
# The journal's events from the start, once each, in order, to the saga's end.
last, seen = 0, []
for ev in c.watch(from_seq=0):
    assert ev["seq"] > last, (ev, last)
    last = ev["seq"]
    if ev["id"] == "py-ok":
        seen.append((ev.get("step"), ev["state"]))
    if ev["id"] == "py-ok" and ev.get("step") is None and ev["state"] == "completed":
        break
assert ("node", "succeeded") in seen and seen[0] == (None, "running"), seen
print("events", len(seen))
PY
cat >"$T/saga.js" <<'JS'
const { Client, InvalidParams, Rejected } = require(process.env.TOP + '/clients/node');
(async () => {
  const c = new Client(process.env.CL, { key: process.env.K + '/operator.key_secret', serverKey: process.env.K + '/zsagad.key' });
  const step = (id, system, deps, customer, text) => ({ id, system, action: 'send', compensation: 'retract', deps,
    params: { customer, channel: 'sms', text } });
  const steps = [step('c', 'notify_c', [], 'alice', 'order'), step('py', 'notify_py', ['c'], 'alice', '${c.message_id}'),
    step('node', 'notify_node', ['py'], 'alice', '${py.message_id}'), step('last', 'notify_c', ['node'], 'broke', 'no quota')];
  try {
    await c.submit({ id: 'node-bad', steps: [{ ...steps[0], params: { customer: 'alice', channel: 'sms', text: 'x', amount: 2.5 } }] });
    throw new Error('a float was sent');
  } catch (e) {
    if (!(e instanceof InvalidParams)) throw e;
    console.log('invalid_params:', e.reason);
  }
  try {
    await c.submit({ id: 'node-x', steps: [{ ...steps[0], system: 'nobody' }] });
    throw new Error('an unknown system was accepted');
  } catch (e) {
    if (!(e instanceof Rejected) || e.code !== 'unknown_system') throw e;
  }
  const saga = await c.run({ id: 'node-fail', steps }, { timeoutMs: 60000 });
  console.log('node-fail', saga.state, saga.steps.map((s) => `${s.id}=${s.state}`).join(' '));
  if (saga.state !== 'compensated') throw new Error(`node-fail ended ${saga.state}`);
  const order = saga.history.filter((h) => h.what === 'step.compensated').map((h) => h.step);
  if (order.join(',') !== 'node,py,c') throw new Error(`compensated in the order ${order}`);
  const failed = saga.steps.find((s) => s.id === 'last');
  if (failed.code !== 'quota_exhausted') throw new Error(`the last step failed with ${failed.code}`);
  // The journal's events from the start, once each, in order, to this saga's end.
  const w = new Client(process.env.CL, { key: process.env.K + '/operator.key_secret', serverKey: process.env.K + '/zsagad.key',
    events: process.env.EV });
  let last = 0, seen = 0;
  for await (const ev of w.watch({ fromSeq: 0 })) {
    if (ev.seq <= last) throw new Error(`event ${ev.seq} after ${last}`);
    last = ev.seq;
    if (ev.id === 'node-fail') seen++;
    if (ev.id === 'node-fail' && !ev.step && ev.state === 'compensated') break;
  }
  if (seen < 10) throw new Error(`only ${seen} events of node-fail`);
  const page = await w.list({ state: 'compensated' });
  if (page.sagas.map((x) => x.id).join() !== 'node-fail') throw new Error(`compensated: ${JSON.stringify(page)}`);
  if ((await w.stats()).sagas_completed < 1) throw new Error('stats: no completed saga');
  try {
    await w.retry('node-fail');
    throw new Error('retry of a compensated saga was accepted');
  } catch (e) {
    if (e.code !== 'bad_state') throw e;
  }
  console.log('events', seen);
})().catch((e) => { console.error(e); process.exit(1); });
JS
export TOP CL EV K
/usr/bin/python3 "$T/saga.py" >"$T/py-client.log" 2>&1 || fail "the Python client: $(cat "$T/py-client.log")"
cat "$T/py-client.log"
node "$T/saga.js" >"$T/node-client.log" 2>&1 || fail "the Node.js client: $(cat "$T/node-client.log")"
cat "$T/node-client.log"

# An operator from Python: a compensation that cannot run parks its saga;
# retry runs it again, resolve closes it by hand. The Python worker is
# restarted with its compensations failing, as a broken dependency would.
kill -TERM "$PY_PID"
wait_exit "$PY_PID"
assert_eq 0 "$EXIT_RC" "the Python worker's exit status after SIGTERM"
ZSAGA_FAULTS="fail=retract" start_lang notify_py env PYTHONPATH="$TOP/clients/python" /usr/bin/python3 \
    "$TOP/deploy/examples/notify/python/notify_worker.py"
wait_workers 3
cat >"$T/park.py" <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["TOP"] + "/clients/python")
import zsaga

op = zsaga.Client(os.environ["CL"], key=os.environ["K"] + "/operator.key_secret",
                  server_key=os.environ["K"] + "/zsagad.key")
back = {"attempts": 2, "backoff_ms": 10, "backoff_max_ms": 10}
saga = {"id": "py-park", "steps": [
    {"id": "py", "system": "notify_py", "action": "send", "compensation": "retract",
     "compensation_retry": back, "params": {"customer": "alice", "channel": "sms", "text": "x"}},
    {"id": "last", "system": "notify_c", "action": "send", "deps": ["py"],
     "params": {"customer": "broke", "channel": "sms", "text": "x"}}]}
st = op.run(saga, timeout_s=60)
assert st["state"] == "parked", st["state"]
op.retry("py-park")
st = op.wait("py-park", timeout_s=60)
assert st["state"] == "parked", st["state"]
assert sum(1 for h in st["history"] if h["what"] == "step.compensation_parked") == 2, st["history"]
try:
    op.resolve("py-park", "")
    sys.exit("resolve without a reason was sent")
except ValueError:
    pass
op.resolve("py-park", "message withdrawn by hand, ticket 7")
st = op.status("py-park")
assert st["state"] == "resolved" and "ticket 7" in st["reason"], st
try:
    op.cancel("py-park")
    sys.exit("cancel of a resolved saga was accepted")
except zsaga.RequestError as e:
    assert e.code == "bad_state", e.code
page = op.list(state="resolved", limit=10)
assert [x["id"] for x in page["sagas"]] == ["py-park"] and page["next"] is None, page
assert op.stats()["sagas_parked"] >= 2
print("py-park parked twice, resolved:", st["reason"])
PY
/usr/bin/python3 "$T/park.py" >"$T/park.log" 2>&1 || fail "the Python operator: $(cat "$T/park.log")"
cat "$T/park.log"

pg() { psql -X -q -t -A "$DB" -c "$1"; }
assert_eq "c|queued
node|queued
py|queued" "$(pg "SELECT step, state FROM notify_outbox WHERE saga = 'py-ok' ORDER BY step")" "py-ok's messages"
assert_eq "c|retracted
node|retracted
py|retracted" "$(pg "SELECT step, state FROM notify_outbox WHERE saga = 'node-fail' ORDER BY step")" \
    "node-fail's messages, withdrawn in all three languages"
assert_eq 6 "$(pg "SELECT remaining FROM notify_quota WHERE customer = 'alice'")" \
    "alice's quota: three sent, three given back, one left with the parked saga"
assert_eq "queued" "$(pg "SELECT state FROM notify_outbox WHERE saga = 'py-park'")" \
    "the parked saga's message, which the operator resolved by hand"
assert_eq "node-fail|last|failed" "$(pg "SELECT saga, step, state FROM zsaga_barrier WHERE saga = 'node-fail' AND step = 'last' AND phase = 'action'")" \
    "the failed step's verdict"
pass "a saga across C, Python and Node.js workers completes; one that fails compensates across all three; one that parks is retried and resolved from Python"
