# The client contract, from a second language: list with more matching
# sagas than its limit, a limit past 10,000, replies to refused messages
# carrying the request's req, `accepted` naming duplicate every time, and
# every reply type and every map inside one holding exactly the keys
# docs/protocol.md lists for it (the tables are read from the doc itself).
. "$(dirname "$0")/lib.sh"
seed banking
start_zsagad
start_worker banking --fault "delay=debit_account:3000"
wait_workers 1
out=$(E2E_DIR="$(dirname "$0")" PROTOCOL_MD="$TOP/docs/protocol.md" PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 - "$CL" "$ZSAGA_KEY" "$ZSAGA_SERVER_KEY" <<'PY'
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

# ---- every reply against docs/protocol.md's tables -----------------------------
import re
doc = open(os.environ["PROTOCOL_MD"]).read()
def keys(cell):  # the `key`s of a cell, leaving out what parentheses say
    return set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^()]*\)", "", cell)))
def table(header):
    rows = []
    for line in doc[doc.index(header):].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows
replies = {keys(r[0]).pop(): (keys(r[1]), keys(r[2])) for r in table("| reply | always | when it applies |")}
# A map's keys; those after "optional:" may be absent.
maps = {re.search(r"`([^`]+)`", r[0]).group(1): (keys(r[1].split("optional:")[0]), keys(r[1].split("optional:")[1]) if "optional:" in r[1] else set())
        for r in table("| map | keys |")}
assert len(replies) >= 8 and len(maps) >= 9, (replies, maps)
seen, seen_maps, problems = set(), set(), []
def walk(obj, parts):
    if not parts:
        yield obj
        return
    p = parts[0]
    if p.endswith("[]"):
        for x in obj[p[:-2]]:
            yield from walk(x, parts[1:])
    else:
        yield from walk(obj[p], parts[1:])
def check(r, why):
    t = r["type"]
    always, sometimes = replies[t]
    got = set(r) - {"v", "type"}
    if always - got or got - always - sometimes:
        problems.append("%s (%s): missing %s, undocumented %s" % (t, why, sorted(always - got), sorted(got - always - sometimes)))
    seen.add(t)
    for path, want in maps.items():
        if path.split(".")[0] != t:
            continue
        for m in walk(r, path.split(".")[1:]):
            if m is None:
                continue
            seen_maps.add(path)
            need, may = want
            if need - set(m) or set(m) - need - may:
                problems.append("%s (%s): missing %s, undocumented %s" % (path, why, sorted(need - set(m)), sorted(set(m) - need - may)))
    return r
check(ask({"v": 1, "type": "submit", "req": 20, "saga": saga(0)}), "submit")
check(ask({"v": 1, "type": "submit", "req": 21, "saga": {"id": "u", "steps": [{"id": "s", "system": "nosuch", "action": "a", "params": {}}]}}), "unknown system")
slow = {"id": "slow", "steps": [{"id": "s", "system": "banking", "action": "debit_account",
        "compensation": "credit_account", "params": {"account": "ACC001", "amount": 1, "currency": "USD"}}]}
check(ask({"v": 1, "type": "submit", "req": 22, "saga": slow}), "slow submit")
check(ask({"v": 1, "type": "cancel", "req": 23, "id": "slow", "reason": "test"}), "cancel")
check(ask({"v": 1, "type": "cancel", "req": 24, "id": "c000"}), "cancel of a completed saga")
check(ask({"v": 1, "type": "backup", "req": 25, "path": "b1"}), "backup")
check(ask({"v": 1, "type": "status", "req": 26, "id": "c001"}), "status")
check(ask({"v": 1, "type": "list", "req": 27, "limit": 3}), "list")
check(ask({"v": 1, "type": "systems", "req": 28}), "systems")
check(ask({"v": 1, "type": "stats", "req": 29}), "stats")
check(ask({"v": 1, "type": "events", "req": 30, "seq": 0, "limit": 50}), "events")
check(ask({"v": 1, "type": "alerts", "req": 31}), "alerts")
check(ask({"v": 1, "type": "login", "req": 32}), "login")
print("unseen", sorted(set(replies) - seen), sorted(set(maps) - seen_maps))
print("docs", "replies", len(seen), "of", len(replies), "maps", len(seen_maps), "of", len(maps))
for p in problems:
    print("problem", p)
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
echo "$out" | grep ^problem && fail "replies differ from docs/protocol.md"
n=$(echo "$out" | sed -n 's/^docs replies \([0-9]*\) of \([0-9]*\) maps \([0-9]*\) of \([0-9]*\)$/\1 \2 \3 \4/p')
set -- $n
[ "$#" = 4 ] && [ "$1" = "$2" ] && [ "$3" = "$4" ] || fail "not every documented reply and map was seen: $(echo "$out" | grep ^docs)"
# The CLI's list over the default limit prints 100 lines, not nothing.
assert_eq 100 "$(zsaga list --state completed --json | grep -c '"id"')" "zsaga list over the limit"
pass "contract"
