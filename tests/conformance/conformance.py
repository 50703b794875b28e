#!/usr/bin/python3
"""The conformance suite of the worker libraries: one program, run
against every implementation (C, Python, Node.js) on every backend it
supports. It plays zsagad on a ROUTER socket, starts the "notify"
example worker (deploy/examples/notify) of each implementation, sends it
steps the way zsagad can (duplicated, reordered, concurrent, across a
crash) and checks both the answers and the database: every effect
exactly once, every verdict kept.

  conformance.py --a CMD --b CMD --db URI [--dir DIR]

A and B are worker commands (a string each, split on spaces); the suite
adds --orchestrator, --insecure, --db, --instance, --capacity and
--heartbeat. They may be two implementations: then the cases prove a C,
a Python and a Node.js worker of one system share a database. Prints one
line a case; exits 1 at the first failure, saying what differed.
"""
import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from zsaga import db as zdb  # noqa: E402

TAG = f"c{os.getpid()}x{int(time.time()) % 100000}"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Store:
    """The notify system's state, read straight from its database."""

    def __init__(self, uri):
        self.uri = uri
        self.conn = zdb.connect(uri)
        self.redis = self.conn.dialect == "redis"

    def set_quota(self, customer, n):
        if self.redis:
            self.conn.raw.hset("notify:quota", customer, n)
        else:
            self.conn.execute("DELETE FROM notify_quota WHERE customer = ?", customer)
            self.conn.execute("INSERT INTO notify_quota (customer, remaining) VALUES (?, ?)", customer, n)
            if self.conn.dialect == "mysql":
                self.conn.raw.commit()

    def quota(self, customer):
        if self.redis:
            v = self.conn.raw.hget("notify:quota", customer)
            return None if v is None else int(v)
        r = self.conn.one("SELECT remaining FROM notify_quota WHERE customer = ?", customer)
        return None if r is None else int(r[0])

    def outbox(self, saga, step):
        """The message's state, or None when there is none."""
        if self.redis:
            v = self.conn.raw.hget(f"notify:outbox:{{{saga}}}:{step}", "state")
            return v.decode() if v else None
        rows = self.conn.execute("SELECT state FROM notify_outbox WHERE saga = ? AND step = ?", saga, step)
        check(len(rows) <= 1, f"{saga}/{step}: {len(rows)} outbox rows")
        return rows[0][0] if rows else None


class Orchestrator:
    """The zsagad side of the worker protocol, enough to drive workers."""

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.router_handover = 1  # a restarted worker comes back under its instance
        self.sock.bind(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.rid = {}  # instance -> routing id
        self.readies = {}  # instance -> its ready message
        self.results = []
        self.inflight = {}  # routing id -> steps in hand, by its last heartbeat
        self.lease = 100

    def pump(self, timeout_s):
        """Handle what arrives for up to timeout_s (less if something did)."""
        if not self.sock.poll(int(timeout_s * 1000)):
            return
        while True:
            try:
                rid, body = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            m = msgpack.unpackb(body, raw=False)
            t = m.get("type")
            if t == "ready":
                self.rid[m["instance"]] = rid
                self.readies[m["instance"]] = m
                self.send_to(rid, {"v": 1, "type": "heartbeat", "boot": 1})
            elif t == "heartbeat":
                self.inflight[rid] = m.get("inflight", 0)
                known = rid in self.rid.values()
                self.send_to(rid, {"v": 1, "type": "heartbeat", "boot": 1 if known else 0})
            elif t == "result":
                self.results.append(m)

    def send_to(self, rid, m):
        self.sock.send_multipart([rid, msgpack.packb(m, use_bin_type=True)])

    def wait_ready(self, instance, timeout_s=20):
        deadline = time.monotonic() + timeout_s
        while instance not in self.rid:
            check(time.monotonic() < deadline, f"worker {instance} never sent ready")
            self.pump(0.1)
        return self.readies[instance]

    def dispatch(self, instance, kind, saga, step, op, params, attempt=1):
        self.lease += 1
        m = {"v": 1, "type": kind, "id": saga, "step": step, "op": op, "attempt": attempt,
             "params": params, "timeout_ms": 30000, "lease": self.lease}
        self.send_to(self.rid[instance], m)
        return self.lease

    def result(self, lease, timeout_s=20):
        deadline = time.monotonic() + timeout_s
        while True:
            for r in self.results:
                if r.get("lease") == lease:
                    self.results.remove(r)
                    return r
            if time.monotonic() >= deadline:
                return None
            self.pump(0.1)

    def call(self, instance, kind, saga, step, op, params, attempt=1):
        lease = self.dispatch(instance, kind, saga, step, op, params, attempt)
        r = self.result(lease)
        check(r is not None, f"{kind} {saga}/{step} on {instance}: no result")
        phase = "compensation" if kind == "compensate" else "action"
        check(r["id"] == saga and r["step"] == step and r["phase"] == phase and r["attempt"] == attempt,
              f"{kind} {saga}/{step}: result names another step: {r}")
        return r


class Workers:
    def __init__(self, args, orch, logdir):
        self.args, self.orch, self.logdir = args, orch, logdir
        self.procs = {}

    def start(self, name, which, faults=""):
        cmd = shlex.split(self.args.a if which == "a" else self.args.b)
        cmd += ["--orchestrator", self.orch.endpoint, "--insecure", "--db", self.args.db,
                "--instance", name, "--capacity", "4", "--heartbeat", "200"]
        env = dict(os.environ, ZSAGA_FAULTS=faults)
        log = open(os.path.join(self.logdir, f"worker-{name}.log"), "ab")
        self.orch.rid.pop(name, None)
        self.procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        return self.orch.wait_ready(name)

    def wait_exit(self, name, timeout_s=20):
        p = self.procs[name]
        deadline = time.monotonic() + timeout_s
        while p.poll() is None:
            check(time.monotonic() < deadline, f"worker {name} did not exit")
            self.orch.pump(0.05)
        return p.returncode

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def send_params(customer, text="hello"):
    return {"customer": customer, "channel": "sms", "text": text}


def run(args):
    store = None
    orch = Orchestrator("tcp://127.0.0.1:*")
    ws = Workers(args, orch, args.dir)
    passed = []

    def case(name):
        def wrap(fn):
            fn()
            passed.append(name)
            print(f"ok  {name}", flush=True)
        return wrap

    try:
        # Every send holds its transaction 300 ms, so two copies overlap.
        ra = ws.start("a", "a", "delay=send:300")
        rb = ws.start("b", "b", "delay=send:300")
        store = Store(args.db)
        cust = f"{TAG}-cust"
        store.set_quota(cust, 10)

        @case("registers its system, operations and schemas")
        def _():
            for r in (ra, rb):
                check(r["system"] == "notify", f"ready names system {r['system']}")
                check(sorted(r["operations"]) == ["retract", "send"], f"ready operations {r['operations']}")
                check(r["schemas"]["send"]["params"] == "customer:str channel:str text:str",
                      f"send's schema: {r['schemas'].get('send')}")

        @case("duplicate delivery: one effect, the same answer")
        def _():
            s = f"{TAG}-dup"
            r1 = orch.call("a", "execute", s, "n", "send", send_params(cust))
            r2 = orch.call("b", "execute", s, "n", "send", send_params(cust))
            check(r1["status"] == "ok", f"first: {r1}")
            check(r2["status"] == "ok" and r2.get("output") == r1.get("output"),
                  f"second answered {r2}, first {r1}")
            check(r1["output"] == {"message_id": f"{s}/n", "remaining": 9}, f"output {r1['output']}")
            check(store.quota(cust) == 9, f"quota {store.quota(cust)}, expected 9")
            check(store.outbox(s, "n") == "queued", "no queued message")

        @case("a compensation before its action: null, and the action refused")
        def _():
            s = f"{TAG}-early"
            c = orch.call("a", "compensate", s, "n", "retract", send_params(cust))
            check(c["status"] == "ok", f"compensation: {c}")
            a = orch.call("b", "execute", s, "n", "send", send_params(cust))
            check(a["status"] == "failed" and a.get("code") == "compensated", f"late action: {a}")
            check(store.outbox(s, "n") is None, "the late action wrote a message")
            check(store.quota(cust) == 9, f"quota {store.quota(cust)}, expected 9")

        @case("an action after its compensation: answered, not run again")
        def _():
            s = f"{TAG}-late"
            a1 = orch.call("a", "execute", s, "n", "send", send_params(cust))
            check(a1["status"] == "ok" and store.quota(cust) == 8, f"action: {a1}")
            c1 = orch.call("b", "compensate", s, "n", "retract", send_params(cust))
            check(c1["status"] == "ok" and c1.get("output") == {"retracted": 1}, f"compensation: {c1}")
            check(store.quota(cust) == 9 and store.outbox(s, "n") == "retracted", "compensation not applied")
            a2 = orch.call("a", "execute", s, "n", "send", send_params(cust), attempt=2)
            check(a2["status"] == "ok" and a2.get("output") == a1.get("output"), f"resent action: {a2}")
            c2 = orch.call("a", "compensate", s, "n", "retract", send_params(cust), attempt=2)
            check(c2["status"] == "ok", f"resent compensation: {c2}")
            check(store.quota(cust) == 9, f"quota {store.quota(cust)}, expected 9")
            check(store.outbox(s, "n") == "retracted", "message not retracted")

        @case("two copies at once on two connections: one effect")
        def _():
            s = f"{TAG}-race"
            la = orch.dispatch("a", "execute", s, "n", "send", send_params(cust))
            lb = orch.dispatch("b", "execute", s, "n", "send", send_params(cust))
            ra_, rb_ = orch.result(la), orch.result(lb)
            check(ra_ is not None and rb_ is not None, "a copy got no result")
            check(ra_["status"] == rb_["status"] == "ok", f"answers {ra_} {rb_}")
            check(ra_["output"] == rb_["output"], f"outputs differ: {ra_['output']} {rb_['output']}")
            check(store.quota(cust) == 8, f"quota {store.quota(cust)}, expected 8")
            check(store.outbox(s, "n") == "queued", "no message")

        @case("sticky failure: the verdict stays when the cause is gone")
        def _():
            s, poor = f"{TAG}-sticky", f"{TAG}-poor"
            store.set_quota(poor, 0)
            f1 = orch.call("a", "execute", s, "n", "send", send_params(poor))
            check(f1["status"] == "failed" and f1.get("code") == "quota_exhausted", f"first: {f1}")
            store.set_quota(poor, 5)
            f2 = orch.call("b", "execute", s, "n", "send", send_params(poor), attempt=2)
            check(f2["status"] == "failed" and f2.get("code") == "quota_exhausted", f"resent: {f2}")
            check(store.quota(poor) == 5 and store.outbox(s, "n") is None, "the failed step took effect")
            c = orch.call("a", "compensate", s, "n", "retract", send_params(poor))
            check(c["status"] == "ok" and store.quota(poor) == 5, f"compensation of a failed action: {c}")

        @case("bad input: a malformed job, an unknown operation, bad params; nothing written")
        def _():
            s = f"{TAG}-bad"
            # A job without a step (zsagad never sends one): dropped, not
            # answered, and the worker goes on serving.
            orch.send_to(orch.rid["a"], {"v": 1, "type": "execute", "id": s, "op": "send", "attempt": 1,
                                         "params": send_params(cust), "lease": 99999})
            check(orch.result(99999, timeout_s=1.5) is None, "a job without a step was answered")
            u = orch.call("a", "execute", s, "n", "nope", send_params(cust))
            check(u["status"] == "failed" and u.get("code") == "unknown_operation", f"unknown op: {u}")
            b = orch.call("b", "execute", s, "m", "send", {"customer": cust, "channel": "fax", "text": "x"})
            check(b["status"] == "failed" and b.get("code") == "bad_params", f"bad channel: {b}")
            m = orch.call("a", "execute", s, "k", "send", {"customer": cust, "channel": "sms"})
            check(m["status"] == "failed" and m.get("code") == "bad_params", f"missing text: {m}")
            check(store.quota(cust) == 8 and store.outbox(s, "m") is None, "bad input took effect")

        @case("killed after commit, before the reply: the resend is answered, not applied")
        def _():
            s = f"{TAG}-crash"
            ws.start("k", "a", "crash-after-commit=send")
            orch.dispatch("k", "execute", s, "n", "send", send_params(cust))
            rc = ws.wait_exit("k")
            check(rc == -signal.SIGKILL, f"worker exited {rc}, expected SIGKILL")
            check(store.quota(cust) == 7 and store.outbox(s, "n") == "queued", "the commit did not land")
            ws.start("k", "b")
            r = orch.call("k", "execute", s, "n", "send", send_params(cust), attempt=2)
            check(r["status"] == "ok" and r["output"] == {"message_id": f"{s}/n", "remaining": 7},
                  f"resent after the crash: {r}")
            check(store.quota(cust) == 7, f"quota {store.quota(cust)}, expected 7")

        @case("graceful shutdown: a held step is answered, then exit 0")
        def _():
            s = f"{TAG}-stop"
            # A worker whose send takes 3 s: SIGTERM once its heartbeat
            # says it holds the step.
            ws.start("g", "a", "delay=send:3000")
            lease = orch.dispatch("g", "execute", s, "n", "send", send_params(cust))
            deadline = time.monotonic() + 10
            while not orch.inflight.get(orch.rid["g"]):
                check(time.monotonic() < deadline, "the worker never said it holds the step")
                orch.pump(0.05)
            ws.procs["g"].send_signal(signal.SIGTERM)
            r = orch.result(lease)
            check(r is not None and r["status"] == "ok", f"held step: {r}")
            check(ws.wait_exit("g") == 0, "worker did not exit 0")
            check(store.quota(cust) == 6, f"quota {store.quota(cust)}, expected 6")
    except Failure as e:
        print(f"FAIL {e}", flush=True)
        return 1
    finally:
        ws.stop_all()
    print(f"conformance: {len(passed)} cases passed", flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--dir", default=".")
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
