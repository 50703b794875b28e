#!/usr/bin/python3
"""An attacker on zsagad's host, speaking only docs/protocol.md with pyzmq
and msgpack (Debian's python3-zmq, python3-msgpack). Each command tries one
attack and prints what it got, one fact a line, for tests/e2e/attacks.sh to
judge. Keys are czmq certificate files; "-" means no key (plaintext).

  attacker.py rogue-worker EP KEY SERVERKEY SYSTEM SECONDS
      register as SYSTEM and count the steps received in SECONDS
  attacker.py forge EP KEY SERVERKEY EVENTS CLIENTKEY SAGA REGISTER SYSTEM
      watch the event stream for SAGA's dispatch, then answer "failed"
      for it under leases 1-8 (as a registered SYSTEM worker if REGISTER)
  attacker.py client EP KEY SERVERKEY TYPE [ID [TEXT]]
      send one client request and print the reply's type and code
  attacker.py fake-orchestrator EP KEY SECONDS
      bind EP as an orchestrator and count the workers that register
  attacker.py hijack EP KEY SERVERKEY INSTANCE SYSTEM SECONDS
      register under a live worker's instance id and count steps received
  attacker.py ready-spam EP KEY SERVERKEY SYSTEM N
      send N ready messages: new systems, then new operations
  attacker.py frames EP KEY SERVERKEY N SIZE
      send one message of N frames of SIZE bytes
  attacker.py events EP KEY SERVERKEY SECONDS
      count the events received in SECONDS
"""
import sys
import time

import msgpack
import zmq


def load_cert(path):
    """Public and secret key (z85 bytes) of a czmq certificate file."""
    keys = {}
    for name in (path, path + "_secret"):
        try:
            with open(name) as f:
                for line in f:
                    line = line.strip()
                    for k in ("public-key", "secret-key"):
                        if line.startswith(k):
                            keys[k] = line.split("=", 1)[1].strip().strip('"').encode()
        except FileNotFoundError:
            pass
    return keys.get("public-key"), keys.get("secret-key")


def connect(ctx, kind, ep, key, server_key, rid=None):
    s = ctx.socket(kind)
    s.linger = 0
    # A refused handshake leaves no peer; a send must not block on that.
    s.sndtimeo = 1000
    if rid is not None:
        s.setsockopt(zmq.ROUTING_ID, rid)
    if key != "-":
        pub, sec = load_cert(key)
        if sec is None:  # an unknown key: make one up
            pub, sec = zmq.curve_keypair()
        s.curve_publickey, s.curve_secretkey = pub, sec
        s.curve_serverkey = load_cert(server_key)[0]
    s.connect(ep)
    return s


def send(sock, body, flags=0, copy=True):
    """Send, or give up quietly: an attacker that was refused has no peer."""
    try:
        sock.send(body, flags, copy=copy)
        return True
    except zmq.Again:
        return False


def pack(**m):
    return msgpack.packb(dict(v=1, **m))


def ready(system, instance, ops, capacity=100000):
    return pack(type="ready", system=system, instance=instance, capacity=capacity,
                operations=ops)


def count_steps(sock, seconds):
    """Answer heartbeats, count execute/compensate, for seconds."""
    steps, errors = 0, []
    end = time.time() + seconds
    hb = 0
    while time.time() < end:
        if time.time() > hb:
            send(sock, pack(type="heartbeat"))
            hb = time.time() + 0.3
        if sock.poll(100):
            m = msgpack.unpackb(sock.recv(), raw=False)
            if m.get("type") in ("execute", "compensate"):
                steps += 1
            elif m.get("type") == "error":
                errors.append(m.get("code"))
    return steps, errors


def main():
    ctx = zmq.Context()
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "rogue-worker":
        ep, key, skey, system, secs = a
        s = connect(ctx, zmq.DEALER, ep, key, skey)
        send(s, ready(system, "rogue-1", ["debit_account", "credit_account"]))
        steps, errors = count_steps(s, float(secs))
        print("steps", steps)
        print("refused", ",".join(errors) or "-")
    elif cmd == "forge":
        ep, key, skey, events, ckey, saga, register, system = a
        sub = connect(ctx, zmq.SUB, events, ckey, skey)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        s = connect(ctx, zmq.DEALER, ep, key, skey)
        if register == "yes":
            send(s, ready(system, "forger-1", ["nothing"], 1))
        end = time.time() + 20
        step = None
        while time.time() < end and step is None:
            if sub.poll(200):
                topic, body = sub.recv_multipart()
                ev = msgpack.unpackb(body, raw=False)
                if ev.get("id") == saga and topic == b"step.dispatched":
                    step = ev.get("step")
        if step is None:
            print("saw no dispatch")
            return 1
        for lease in range(1, 9):
            for phase in ("action", "compensation"):
                send(s, pack(type="result", id=saga, step=step, phase=phase, attempt=1,
                            lease=lease, status="failed", code="forged",
                            message="a forged failure"))
        time.sleep(0.5)
        print("forged", step)
    elif cmd == "client":
        ep, key, skey, typ = a[:4]
        s = connect(ctx, zmq.DEALER, ep, key, skey)
        m = dict(type=typ, req=7)
        if typ == "backup":
            m["path"] = a[4]
        elif typ in ("cancel", "retry", "resolve", "status"):
            m["id"] = a[4]
            if len(a) > 5:
                m["reason"] = a[5]
        elif typ == "submit":
            m["saga"] = {"id": a[4], "name": "attack",
                         "steps": [{"id": "s1", "system": "banking", "action": "credit_account",
                                    "compensation": "debit_account",
                                    "params": {"account": "ACC001", "amount": 100000,
                                               "currency": "USD"}}]}
        send(s, pack(**m))
        if s.poll(3000):
            r = msgpack.unpackb(s.recv(), raw=False)
            print(r.get("type"), r.get("code", "-"), r.get("req"))
        else:
            print("no-answer")
    elif cmd == "fake-orchestrator":
        ep, key, secs = a
        s = ctx.socket(zmq.ROUTER)
        s.linger = 0
        if key != "-":
            pub, sec = load_cert(key)
            s.curve_server = True
            s.curve_secretkey = sec
        s.bind(ep)
        seen = 0
        end = time.time() + float(secs)
        while time.time() < end:
            if s.poll(100):
                rid, body = s.recv_multipart()[:2]
                if msgpack.unpackb(body, raw=False).get("type") == "ready":
                    seen += 1
                    s.send_multipart([rid, pack(type="execute", id="fake-1", step="s1",
                                                op="credit_account", attempt=1, lease=1,
                                                params={"account": "ACC001",
                                                        "amount": 100000,
                                                        "currency": "USD"})])
        print("registered", seen)
    elif cmd == "hijack":
        ep, key, skey, instance, system, secs = a
        # The old attack: the live worker's name as routing id. Then a ready
        # under its instance id.
        s = connect(ctx, zmq.DEALER, ep, key, skey, rid=instance.encode())
        send(s, ready(system, instance, ["debit_account"]))
        steps, errors = count_steps(s, float(secs))
        print("steps", steps)
        print("refused", ",".join(errors) or "-")
    elif cmd == "ready-spam":
        ep, key, skey, system, n = a
        s = connect(ctx, zmq.DEALER, ep, key, skey)
        n = int(n)
        for i in range(n // 2):
            send(s, ready("spam%d" % i, "spam", ["op%d" % i]))
        for i in range(n - n // 2):
            send(s, ready(system, "spam", ["spamop%d" % i]))
        errors = {}
        end = time.time() + 10
        while time.time() < end and sum(errors.values()) < n:
            if s.poll(500):
                m = msgpack.unpackb(s.recv(), raw=False)
                if m.get("type") == "error":
                    errors[m.get("code")] = errors.get(m.get("code"), 0) + 1
        print("refused", " ".join("%s=%d" % kv for kv in sorted(errors.items())) or "-")
    elif cmd == "frames":
        ep, key, skey, n, size = a
        s = connect(ctx, zmq.DEALER, ep, key, skey)
        buf = b"x" * int(size)
        n = int(n)
        for i in range(n - 1):
            if not send(s, buf, zmq.SNDMORE, copy=False):
                break
        else:
            send(s, pack(type="stats", req=9), copy=False)
        time.sleep(2)
        print("reply" if s.poll(1000) else "no-reply")
    elif cmd == "events":
        ep, key, skey, secs = a
        sub = connect(ctx, zmq.SUB, ep, key, skey)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        n = 0
        end = time.time() + float(secs)
        while time.time() < end:
            if sub.poll(100):
                sub.recv_multipart()
                n += 1
        print("events", n)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
