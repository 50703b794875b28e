# The client contract, from a second language: list with more matching
# sagas than its limit, a limit past 10,000, replies to refused messages
# carrying the request's req, and `accepted` naming duplicate every time.
. "$(dirname "$0")/lib.sh"
seed banking
start_zsagad
start_worker banking
wait_workers 1
out=$(E2E_DIR="$(dirname "$0")" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 - "$CL" "$ZSAGA_KEY" "$ZSAGA_SERVER_KEY" <<'PY'
import os, sys, time, zmq, msgpack
ep, key, skey = sys.argv[1:]
sys.path.insert(0, os.environ["E2E_DIR"])
from attacker import connect  # the same client as the attacks test
s = connect(zmq.Context(), zmq.DEALER, ep, key, skey)
def ask(body, raw=False):
    s.send(body if raw else msgpack.packb(body))
    if not s.poll(5000):
        return None
    return msgpack.unpackb(s.recv(), raw=False)
def saga(i):
    return {"id": "c%03d" % i, "name": "n", "steps": [{"id": "s", "system": "banking",
            "action": "credit_account", "compensation": "debit_account",
            "params": {"account": "ACC002", "amount": 1, "currency": "USD"}}]}
for i in range(150):
    r = ask({"v": 1, "type": "submit", "req": 1000 + i, "saga": saga(i)})
    assert r["type"] == "accepted" and r["req"] == 1000 + i, r
    assert r["duplicate"] is False, r
r = ask({"v": 1, "type": "submit", "req": 5, "saga": saga(0)})
print("resubmit", r["type"], r["duplicate"])
deadline = time.time() + 30
while time.time() < deadline:
    r = ask({"v": 1, "type": "list", "req": 6, "state": "completed", "limit": 1000})
    if len(r["sagas"]) == 150:
        break
    time.sleep(0.2)
print("completed", len(r["sagas"]))
r = ask({"v": 1, "type": "list", "req": 7, "state": "completed"})
print("default-limit", r["type"], r["req"], len(r["sagas"]), all(x and x["state"] == "completed" for x in r["sagas"]))
r = ask({"v": 1, "type": "list", "req": 8, "limit": 10001})
print("over-limit", r["type"], r.get("code"), r["req"])
# Refused messages: the req is read wherever it stands.
r = ask({"v": 2, "type": "status", "req": 9, "id": "x"})
print("version", r["type"], r.get("code"), r["req"])
r = ask({"type": "frobnicate", "v": 1, "req": 10})
print("type", r["type"], r.get("code"), r["req"])
r = ask({"v": 1, "type": "status", "id": "x", "bogus": 1, "req": 11})
print("field", r["type"], r.get("code"), r["req"])
PY
)
echo "$out"
assert_eq "resubmit accepted True" "$(echo "$out" | grep ^resubmit)" "a resubmission says duplicate"
assert_eq "completed 150" "$(echo "$out" | grep ^completed)" "all 150 listed under a larger limit"
assert_eq "default-limit sagas 7 100 True" "$(echo "$out" | grep ^default-limit)" "150 matching, limit 100"
assert_eq "over-limit error invalid 8" "$(echo "$out" | grep ^over-limit)" "a limit over 10,000"
assert_eq "version error unsupported_version 9" "$(echo "$out" | grep ^version)" "wrong version keeps req"
assert_eq "type error unknown_type 10" "$(echo "$out" | grep ^type)" "unknown type keeps req"
assert_eq "field error malformed 11" "$(echo "$out" | grep ^field)" "unknown field keeps req"
# The CLI's list over the default limit prints 100 lines, not nothing.
assert_eq 100 "$(zsaga list --state completed --json | grep -c '"id"')" "zsaga list over the limit"
pass "contract"
