#!/bin/sh
# Metrics, alerts and logs. zsagad's and a worker's /metrics parse with
# the Prometheus client's parser and pass promtool's lint, with figures
# that match what ran; an alert fires and resolves at the seeds'
# thresholds (pool usage past 80 %, step failure rate past 5 %), and each
# change is logged (JSON lines), counted, published, run as a command and
# posted to a webhook.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
seed banking

# A webhook receiver on loopback: one line of JSON per POST.
$PY - "$T/hook.port" "$T/hook.jsonl" >"$T/hook.log" 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[2], "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
PY
PIDS="$PIDS $!"
i=0
until [ -s "$T/hook.port" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "webhook receiver"; sleep 0.05; done

start_zsagad --log-format json --alert-window 3s \
    --alert-command "echo \"\$ZSAGA_ALERT_RULE \$ZSAGA_ALERT_SUBJECT \$ZSAGA_ALERT_STATE \$ZSAGA_ALERT_LEVEL\" >>$T/alerts.cmd" \
    --alert-webhook "http://127.0.0.1:$(cat "$T/hook.port")/hook"
# Every connection holds a step 1.5 s: four at once fill a pool of four.
start_worker banking --instance banking-1 --capacity 4 --pool-max 4 --http 127.0.0.1:0 \
    --fault "delay=credit_account:1500"
wait_workers 1
ZP=$(http_port "$T/zsagad.log")
WP=$(http_port "$T/worker-banking.log")
zsaga watch --json >"$T/watch.jsonl" 2>"$T/watch.err" &
PIDS="$PIDS $!"

alert_state() { # RULE SUBJECT: "state level" from zsaga alerts
    zsaga alerts --json | $PY -c '
import json, sys
rule, subject = sys.argv[1], sys.argv[2]
for a in json.load(sys.stdin):
    if a["rule"] == rule and a["subject"] == subject:
        print(a["state"], a["level"]); break
else:
    print("none")' "$1" "$2"
}
wait_alert() { # RULE SUBJECT "STATE LEVEL"
    deadline=$(( $(date +%s) + 30 ))
    until [ "$(alert_state "$1" "$2")" = "$3" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "alert $1 $2 is '$(alert_state "$1" "$2")', expected '$3'"
        sleep 0.2
    done
}

# ---- pool usage past 80 % (here 100 %: critical), then back to 0
for n in 1 2 3 4 5 6 7 8; do
    cat >"$T/c$n.json" <<JSON
{ "id": "c$n", "name": "credit", "steps": [ { "id": "credit", "system": "banking",
  "action": "credit_account", "params": { "account": "ACC002", "amount": 1, "currency": "USD" } } ] }
JSON
    zsaga submit "$T/c$n.json" >/dev/null
done
wait_alert pool_usage banking/banking-1 "firing critical"
curl -s "http://127.0.0.1:$ZP/metrics" >"$T/firing.prom"
$PY "$(dirname "$0")/promcheck.py" "$T/firing.prom" \
    'zsaga_alerts_firing{rule=pool_usage,subject=banking/banking-1,level=critical}=eq:1' \
    'zsaga_hb_pool_active{worker=banking-1}=eq:4' 'zsaga_hb_pool_max{worker=banking-1}=eq:4' \
    >"$T/check.out" 2>&1 || fail "metrics while the pool alert fires: $(cat "$T/check.out")"
wait_ended c1 c2 c3 c4 c5 c6 c7 c8
wait_alert pool_usage banking/banking-1 "resolved "

# ---- step failure rate past 5 % (a second step that fails for good), then
# a window of good transfers brings it back under 1 %
for n in $(seq 1 24); do transfer_saga f$n ACC001 ACC002 100 fail; zsaga submit "$T/f$n.json" >/dev/null; done
wait_alert step_failure_rate banking "firing critical"
for n in $(seq 1 24); do wait_ended f$n; done
for n in $(seq 1 40); do transfer_saga ok$n ACC001 ACC002 100; zsaga submit "$T/ok$n.json" >/dev/null; done
wait_alert step_failure_rate banking "resolved "

# Each change went to the log (JSON), the command, the webhook and the
# event stream.
for rule in pool_usage step_failure_rate; do
    grep -q "^$rule .* firing critical" "$T/alerts.cmd" || fail "command: no $rule firing: $(cat "$T/alerts.cmd")"
    grep -q "^$rule .* resolved ok" "$T/alerts.cmd" || fail "command: no $rule resolved: $(cat "$T/alerts.cmd")"
    grep -q "\"rule\":\"$rule\".*\"state\":\"firing\"" "$T/hook.jsonl" || fail "webhook: no $rule firing"
    grep -q "\"rule\":\"$rule\".*\"state\":\"resolved\"" "$T/hook.jsonl" || fail "webhook: no $rule resolved"
    grep -q "\"id\": *\"$rule\"" "$T/watch.jsonl" || fail "event stream: no $rule event"
done
$PY - "$T/zsagad.log" <<'PY' || fail "zsagad's JSON log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
alerts = [l for l in lines if l.get("alert") == "pool_usage"]
assert any(l["level"] == "error" and "firing" in l["msg"] for l in alerts), alerts
assert any("resolved" in l["msg"] for l in alerts), alerts
failed = [l for l in lines if l["msg"] == "step.failed"]
assert len(failed) == 24 and all(l["saga"].startswith("f") and l["step"] == "fee" and l["system"] == "banking" for l in failed), failed[:3]
assert not [l for l in lines if l["msg"] == "step.succeeded"], "a line per successful step"
PY

# Refused submits are counted by code.
printf '{"id":"bad-1","steps":[{"id":"s","system":"nosuch","action":"a"}]}' >"$T/bad.json"
zsaga submit "$T/bad.json" >/dev/null 2>&1 && fail "a saga on an unknown system was accepted"

# ---- the figures match what ran, and both endpoints pass promtool's lint
curl -s "http://127.0.0.1:$ZP/metrics" >"$T/zsagad.prom"
curl -s "http://127.0.0.1:$WP/metrics" >"$T/worker.prom"
$PY "$(dirname "$0")/promcheck.py" "$T/zsagad.prom" \
    'zsaga_sagas_total{name=credit,state=completed}=eq:8' \
    'zsaga_sagas_total{name=transfer ACC001 to ACC002,state=compensated}=eq:24' \
    'zsaga_sagas_total{name=transfer ACC001 to ACC002,state=completed}=eq:40' \
    'zsaga_steps_total{system=banking,operation=debit_account,phase=action,outcome=failed}=eq:24' \
    'zsaga_steps_total{system=banking,operation=reverse_transfer,phase=compensation,outcome=succeeded}=eq:24' \
    'zsaga_step_latency_seconds_count{system=banking,operation=transfer,phase=action}=eq:64' \
    'zsaga_step_latency_seconds_count{system=banking,operation=credit_account,phase=action}=eq:8' \
    'zsaga_step_latency_seconds_bucket{system=banking,operation=credit_account,phase=action,le=1}=eq:0' \
    'zsaga_saga_duration_seconds_count{state=completed}=eq:48' \
    'zsaga_commit_duration_seconds_count=gt:0' 'zsaga_sagas_active=eq:0' \
    'zsaga_submits_refused_total{code=unknown_system}=eq:1' \
    'zsaga_workers{system=banking}=eq:1' >"$T/check.out" 2>&1 || fail "zsagad metrics: $(cat "$T/check.out")"
$PY "$(dirname "$0")/promcheck.py" "$T/worker.prom" \
    'zsaga_worker_steps_total{operation=credit_account,phase=action,outcome=ok}=eq:8' \
    'zsaga_worker_steps_total{operation=debit_account,phase=action,outcome=failed}=eq:24' \
    'zsaga_worker_step_seconds_count{operation=transfer,phase=action}=eq:64' \
    'zsaga_worker_pool_max=eq:4' 'zsaga_worker_pool_acquire_seconds_count=gt:0' \
    'zsaga_worker_db_transaction_seconds_count=gt:0' >"$T/check.out" 2>&1 ||
    fail "the worker's metrics: $(cat "$T/check.out")"
promtool check metrics <"$T/zsagad.prom" >"$T/lint.out" 2>&1 || fail "promtool on zsagad: $(head "$T/lint.out")"
promtool check metrics <"$T/worker.prom" >"$T/lint.out" 2>&1 || fail "promtool on the worker: $(head "$T/lint.out")"
# The shipped Prometheus rules and scrape config are valid.
promtool check rules "$TOP/deploy/prometheus/zsaga-alerts.yml" >"$T/rules.out" 2>&1 ||
    fail "promtool check rules: $(cat "$T/rules.out")"
promtool check config "$TOP/deploy/prometheus/prometheus.yml" >"$T/config.out" 2>&1 ||
    fail "promtool check config: $(cat "$T/config.out")"

# Every metric the Grafana dashboard and the alerting rules name is one
# that zsagad or a worker exports (a renamed metric would leave a panel
# or a rule silently empty).
$PY - "$TOP/deploy/grafana/zsaga.json" "$TOP/deploy/prometheus/zsaga-alerts.yml" "$T/zsagad.prom" "$T/worker.prom" <<'PY' ||
import json, re, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
exprs.append(open(sys.argv[2]).read())
have = set()
for f in sys.argv[3:]:
    for line in open(f):
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            have.add(m.group(1))
            if m.group(2) == "histogram":
                have.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
used = set(re.findall(r"\bzsaga_[a-z_]+", " ".join(exprs)))
missing = sorted(used - have)
assert not missing, missing
assert len(dash["panels"]) >= 15 and len(used) >= 20, (len(dash["panels"]), len(used))
print(len(used), "metrics used, all exported")
PY
    fail "the dashboard or the rules name metrics nobody exports"

# ---- a lost worker is logged with its system and instance
kill -STOP "$W_banking"
deadline=$(( $(date +%s) + 15 ))
until grep -q '"msg":"worker lost' "$T/zsagad.log"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "a lost worker was not logged"
    sleep 0.1
done
kill -CONT "$W_banking"
grep '"msg":"worker lost' "$T/zsagad.log" | grep -q '"system":"banking","instance":"banking-1"' ||
    fail "lost worker line: $(grep 'worker lost' "$T/zsagad.log")"
pass "metrics parse and match, alerts fire and resolve at the seeds' thresholds, logs carry fields"
