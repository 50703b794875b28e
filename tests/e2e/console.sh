#!/bin/sh
# The web console in headless Chromium: a completed and a compensated saga,
# each step's bars in the timeline in the order they ran, compensations
# after; the HTTP API's authorization (tokens, roles, other origins).
# Screenshots go to BUILD/Testing/console-*.png.
. "$(dirname "$0")/lib.sh"
seed_all
start_zsagad
for s in banking payments fraud compliance; do start_worker "$s" --instance "$s-1"; done
wait_workers 4
PORT=$(http_port "$T/zsagad.log")
URL="http://127.0.0.1:$PORT"

submit "$EXAMPLES/loan-processing.json" loan-1
submit "$EXAMPLES/funds-transfer-fails.json" transfer-1
wait_state loan-1 completed
wait_state transfer-1 compensated

# A token for the operator's key, as `zsaga login` gives it to a person.
LOGIN=$(zsaga --key "$K/operator.key_secret" login 2>/dev/null)
TOKEN=${LOGIN##*token=}
assert_eq "$URL/#token=$TOKEN" "$LOGIN" "login prints the console URL zsagad gives"
[ ${#TOKEN} = 64 ] || fail "token: $TOKEN"

# The page the browser renders, after its scripts ran.
render() { # ROUTE NAME: the DOM, and a screenshot
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,1100 \
        --virtual-time-budget=8000 --screenshot="$BIN/Testing/console-$2.png" \
        "$URL/#$1&token=$TOKEN" >/dev/null 2>"$T/chromium-$2.err" ||
        fail "chromium screenshot $2: $(tail -3 "$T/chromium-$2.err")"
    chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=8000 --dump-dom \
        "$URL/#$1&token=$TOKEN" 2>>"$T/chromium-$2.err" >"$T/$2.html" ||
        fail "chromium $2: $(tail -3 "$T/chromium-$2.err")"
    [ -s "$BIN/Testing/console-$2.png" ] || fail "no screenshot for $2"
    echo "screenshot: $BIN/Testing/console-$2.png"
}
# The timeline's bars, in document order: step/phase/outcome.
bars() {
    grep -o '<g class="tl-row" data-step="[^"]*" data-phase="[^"]*" data-outcome="[^"]*"' "$1" |
        sed 's/.*data-step="\([^"]*\)" data-phase="\([^"]*\)" data-outcome="\([^"]*\)"/\1\/\2\/\3/' |
        tr '\n' ' '
}

mkdir -p "$BIN/Testing"
render /saga/loan-1 completed
grep -q 'data-loaded="saga"' "$T/completed.html" || fail "the saga page did not load: $(head -c 400 "$T/completed.html")"
grep -q '<span class="state s-completed">completed</span>' "$T/completed.html" || fail "state completed not shown"
assert_eq "create_loan/action/succeeded schedule/action/succeeded fraud_check/action/succeeded compliance_report/action/succeeded activate/action/succeeded " \
    "$(bars "$T/completed.html")" "loan timeline"
# The graph has a node per step and an edge per dependency.
assert_eq 5 "$(grep -o '<g class="graph-node' "$T/completed.html" | wc -l)" "graph nodes"
[ "$(grep -o 'class="graph-edge"' "$T/completed.html" | wc -l)" -ge 4 ] || fail "graph edges"
grep -q 'banking-1' "$T/completed.html" || fail "the worker instance is not on the timeline"

render /saga/transfer-1 compensated
grep -q '<span class="state s-compensated">compensated</span>' "$T/compensated.html" || fail "state compensated not shown"
assert_eq "debit/action/succeeded risk/action/succeeded payment/action/failed risk/compensation/compensated debit/compensation/compensated " \
    "$(bars "$T/compensated.html")" "transfer timeline: the failure, then compensations in reverse order"
# Compensation bars are drawn apart from action bars.
[ "$(grep -o 'class="bar-compensation"' "$T/compensated.html" | wc -l)" = 2 ] || fail "compensation bars"
grep -q 'class="bar-action failed"' "$T/compensated.html" || fail "the failed action is not marked"
grep -q 'beneficiary_blocked' "$T/compensated.html" || fail "the step's error is not shown"

render / list
grep -q 'data-id="loan-1"' "$T/list.html" && grep -q 'data-id="transfer-1"' "$T/list.html" ||
    fail "the saga list: $(grep -o '<table id="sagas".*</table>' "$T/list.html" | head -c 400)"
render /systems systems
grep -q 'data-instance="banking-1"' "$T/systems.html" || fail "workers page"

# The HTTP API: the same authorization as the sockets.
api() { # TOKEN BODY [extra curl args]: prints the HTTP status and the body
    t=$1 b=$2
    shift 2
    curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' ${t:+-H "Authorization: Bearer $t"} \
        -d "$b" "$@" "$URL/api"
}
out=$(api "" '{"type":"list"}')
assert_eq 401 "$(echo "$out" | tail -n 1)" "no token"
out=$(api "$(printf '%064d' 7)" '{"type":"list"}')
assert_eq 401 "$(echo "$out" | tail -n 1)" "a made-up token"
out=$(api "$TOKEN" '{"type":"status","id":"loan-1"}')
echo "$out" | head -n 1 | grep -q '"state":"completed"' || fail "status over /api: $out"
out=$(api "$TOKEN" '{"type":"list"}' -H 'Origin: http://evil.example')
assert_eq 403 "$(echo "$out" | tail -n 1)" "another origin"
out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: text/plain' -H "Authorization: Bearer $TOKEN" -d '{"type":"list"}' "$URL/api")
assert_eq 415 "$(echo "$out" | tail -n 1)" "a form's content type"
for h in attacker.example 127.attacker.example 127.0.0.1.attacker.example localhost.attacker.example "127.0.0.1:80x"; do
    out=$(curl -s -w '\n%{http_code}' -H "Host: $h" "$URL/metrics")
    assert_eq 421 "$(echo "$out" | tail -n 1)" "a rebound host name ($h)"
done
out=$(curl -s -w '\n%{http_code}' -H "Host: localhost:$PORT" "$URL/healthz")
assert_eq 200 "$(echo "$out" | tail -n 1)" "localhost by name"
out=$(api "$TOKEN" '{"type":"backup","path":"x"}')
echo "$out" | grep -q '"unexpected"' || fail "backup over HTTP: $out"
# A submit key's token reads but may not act; the operator's may.
SUBMIT_TOKEN=$(zsaga --key "$K/submit.key_secret" login --console "$URL" 2>/dev/null)
SUBMIT_TOKEN=${SUBMIT_TOKEN##*token=}
transfer_saga slow ACC001 ACC002 100
zsaga submit "$T/slow.json" >/dev/null
out=$(api "$SUBMIT_TOKEN" '{"type":"cancel","id":"transfer-1","reason":"x"}')
echo "$out" | grep -q '"forbidden"' || fail "a submit key cancelled over HTTP: $out"
out=$(api "$TOKEN" '{"type":"resolve","id":"transfer-1","reason":"checked"}')
echo "$out" | head -n 1 | grep -q '"code":"invalid_state"\|"code":"not_parked"\|"type":"error"' ||
    fail "resolve of a compensated saga: $out"
echo "$out" | grep -q forbidden && fail "the operator's token was refused: $out"
grep -q '"operator resolve"\|operator resolve' "$T/zsagad.log" || fail "operator action not logged"
# A removed key's token stops working at once.
rm "$T/authorized/operator.key"
sleep 2.5
out=$(api "$TOKEN" '{"type":"list"}')
assert_eq 401 "$(echo "$out" | tail -n 1)" "the token of a removed key"
pass "console: timelines of a completed and a compensated saga in Chromium, API authorization"
