"""The client: submit sagas and follow them (docs/protocol.md, "Client
requests and replies").

    from zsaga import Client
    c = Client("tcp://127.0.0.1:5570", key="payments-api.key_secret",
               server_key="zsagad.key")
    c.submit({"id": "order-42", "steps": [...]})
    saga = c.wait("order-42", timeout_s=60)     # the saga's state, ended

Every request gets one reply; a refusal raises Rejected (submit) or
RequestError, with the protocol's code. A client is used by one thread
at a time: give each thread its own.
"""
import json
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Union

import msgpack
import zmq

from . import schema as _schema
from .errors import InvalidParams, NoAnswer, Rejected, RequestError, Timeout
from .keys import curve_client

VERSION = 1
ENDED = ("completed", "compensated", "parked", "resolved")
MAX_HOPS = 8


def _unpack(body: bytes) -> Dict[str, Any]:
    return msgpack.unpackb(body, raw=False, strict_map_key=True)


class Client:
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5570", *, key: Optional[str] = None,
                 server_key: Optional[str] = None, insecure: bool = False,
                 events: str = "tcp://127.0.0.1:5572", timeout_ms: int = 5000,
                 check_params: bool = True, context: Optional[zmq.Context] = None):
        """endpoint: zsagad's clients socket, or several comma-separated (an
        active zsagad and its standbys). key/server_key: this client's key
        pair (NAME.key_secret) and zsagad's public key; insecure for a
        zsagad run --insecure. check_params: check each step's params
        against the schemas the workers declared before sending."""
        if not insecure and (not key or not server_key):
            raise ValueError("no key given: key= and server_key= (or insecure=True for a plaintext test setup)")
        self.endpoint, self.events_endpoint = endpoint, events
        self.key, self.server_key, self.insecure = key, server_key, insecure
        self.timeout_ms = timeout_ms
        self.check_params = check_params
        self._ctx = context or zmq.Context.instance()
        self._req = int(time.time() * 1e6)
        self._schemas: Optional[Dict[str, Dict[str, Optional[str]]]] = None

    def close(self) -> None:
        """Nothing is held between requests; kept for with-statements."""

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ---------------------------------------------------
    def socket(self, kind: int, endpoint: str) -> zmq.Socket:
        """A socket of this kind connected to endpoint with this client's keys."""
        s = self._ctx.socket(kind)
        s.linger = 0
        s.sndtimeo = self.timeout_ms
        curve_client(s, self.key, self.server_key, self.insecure)
        eps = [e.strip() for e in endpoint.split(",") if e.strip()]
        if len(eps) > 1:
            s.immediate = 1  # only connections that are up take a request
        for e in eps:
            s.connect(e)
        return s

    def _request_at(self, endpoint: str, body: bytes, req: int) -> Dict[str, Any]:
        s = self.socket(zmq.DEALER, endpoint)
        try:
            try:
                s.send(body)
            except zmq.Again:
                raise NoAnswer("no_answer", f"no zsagad took the request at {endpoint}") from None
            deadline = time.monotonic() + self.timeout_ms / 1000
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not s.poll(int(left * 1000) + 1):
                    raise NoAnswer("no_answer",
                                   f"no answer from zsagad at {endpoint} within {self.timeout_ms} ms: is it "
                                   "running there? A key zsagad does not know, or the wrong server key, is "
                                   "also refused at the handshake without a word")
                reply = _unpack(s.recv())
                if reply.get("req") == req:
                    return reply
        finally:
            s.close()

    def request(self, type_: str, **fields: Any) -> Dict[str, Any]:
        """One request; the reply map (a refusal included). Follows not_leader
        to the zsagad serving the saga's partition."""
        self._req += 1
        req = self._req
        msg = {"v": VERSION, "type": type_, "req": req}
        msg.update({k: v for k, v in fields.items() if v is not None})
        body = msgpack.packb(msg, use_bin_type=True)
        ep = self.endpoint
        reply: Dict[str, Any] = {}
        for hop in range(MAX_HOPS):
            reply = self._request_at(ep, body, req)
            if reply.get("code") != "not_leader":
                return reply
            ep = reply.get("reason") or self.endpoint
            if not reply.get("reason"):
                time.sleep(0.25 * (1 << min(hop, 3)))  # a standby is taking it over
        return reply

    def _ok(self, reply: Dict[str, Any]) -> Dict[str, Any]:
        t = reply.get("type")
        if t == "rejected":
            raise Rejected(reply.get("code", ""), reply.get("reason", ""), reply)
        if t == "error":
            raise RequestError(reply.get("code", ""), reply.get("reason", ""), reply)
        return reply

    # ---- requests ----------------------------------------------------
    def systems(self) -> List[Dict[str, Any]]:
        return self._ok(self.request("systems"))["systems"]

    def schemas(self, refresh: bool = False) -> Dict[str, Dict[str, Optional[str]]]:
        """"system.operation" -> {"params", "outputs"} as the workers declared."""
        if self._schemas is None or refresh:
            out: Dict[str, Dict[str, Optional[str]]] = {}
            for s in self.systems():
                for op in s.get("operations") or []:
                    out[f"{s['name']}.{op['name']}"] = {"params": op.get("params"), "outputs": op.get("outputs")}
            self._schemas = out
        return self._schemas

    def submit(self, saga: Union[Dict[str, Any], str]) -> Dict[str, Any]:
        """Submit a saga definition (a dict, or JSON text). Gives the
        `accepted` reply (id, state, duplicate). A saga without an id gets
        a new one. Raises InvalidParams before sending when a step's
        params do not fit its operations' schemas."""
        if isinstance(saga, str):
            saga = json.loads(saga)
        if not isinstance(saga, dict):
            raise ValueError("a saga must be a map")
        saga = dict(saga)
        saga.setdefault("id", f"saga-{uuid.uuid4()}")
        if self.check_params:
            err = _schema.check_saga(saga, self.schemas())
            if err:
                raise InvalidParams("invalid_params", err)
        return self._ok(self.request("submit", saga=saga))

    def status(self, saga_id: str) -> Dict[str, Any]:
        """The saga's state (docs/protocol.md, "Saga state")."""
        return self._ok(self.request("status", id=saga_id))["saga"]

    def list(self, state: Optional[str] = None, limit: int = 100, cursor: Optional[str] = None,
             since_ms: Optional[int] = None, until_ms: Optional[int] = None) -> Dict[str, Any]:
        """One page: {"sagas": [...], "next": cursor or None}."""
        r = self._ok(self.request("list", state=state, limit=limit, cursor=cursor,
                                  since_ms=since_ms, until_ms=until_ms))
        return {"sagas": r["sagas"], "next": r.get("next")}

    def wait(self, saga_id: str, timeout_s: float = 60, poll_s: float = 0.05) -> Dict[str, Any]:
        """Poll until the saga ends; its final state. Raises Timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.status(saga_id)
            if st["state"] in ENDED:
                return st
            if time.monotonic() >= deadline:
                raise Timeout("timeout", f"saga {saga_id} is {st['state']} after {timeout_s} s")
            time.sleep(poll_s)

    def run(self, saga: Union[Dict[str, Any], str], timeout_s: float = 60) -> Dict[str, Any]:
        """Submit and wait."""
        return self.wait(self.submit(saga)["id"], timeout_s)

    def cancel(self, saga_id: str, reason: Optional[str] = None) -> None:
        self._ok(self.request("cancel", id=saga_id, reason=reason))

    def retry(self, saga_id: str) -> None:
        self._ok(self.request("retry", id=saga_id))

    def resolve(self, saga_id: str, reason: str) -> None:
        """Close a parked saga fixed by hand; reason is the record of what was done."""
        if not reason:
            raise ValueError("resolve needs a reason: what was done by hand, for the record")
        self._ok(self.request("resolve", id=saga_id, reason=reason))

    def stats(self) -> Dict[str, Any]:
        return self._ok(self.request("stats"))["stats"]

    def events(self, after_seq: int = 0, limit: int = 1000) -> Dict[str, Any]:
        """Journaled events after a sequence number: {events, next, first, head}."""
        return self._ok(self.request("events", seq=after_seq, limit=limit))

    def watch(self, from_seq: Optional[int] = None, topic: str = "",
              idle_s: float = 1.0) -> Iterator[Dict[str, Any]]:
        """Follow the event stream. With from_seq, everything after it is
        read from the journal first, and any gap in the live stream
        (events dropped for a slow reader, a zsagad restart) is filled the
        same way: each journaled event comes once, in order."""
        sub = self.socket(zmq.SUB, self.events_endpoint)
        sub.setsockopt_string(zmq.SUBSCRIBE, topic)
        last = from_seq or 0
        try:
            if from_seq is not None:
                time.sleep(0.2)  # the subscription reaches zsagad before we read
                yield from self._catch_up(last_box := [last])
                last = last_box[0]
            while True:
                if not sub.poll(int(idle_s * 1000)):
                    if from_seq is not None:
                        box = [last]
                        yield from self._catch_up(box)
                        last = box[0]
                    continue
                frames = sub.recv_multipart()
                if len(frames) != 2:
                    continue
                ev = _unpack(frames[1])
                seq = ev.get("seq", 0)
                if from_seq is None or seq == 0:  # seq 0: an alert, not journaled
                    yield ev
                elif seq > last:
                    if seq > last + 1:
                        box = [last]
                        yield from self._catch_up(box)
                        last = box[0]
                    if seq > last:
                        yield ev
                        last = seq
        finally:
            sub.close()

    def _catch_up(self, box: List[int]) -> Iterator[Dict[str, Any]]:
        """The journal's events after box[0], page by page; box[0] moves on.
        No answer (zsagad restarting) is not the end: the caller asks
        again when the stream goes quiet, as for any gap."""
        while True:
            try:
                r = self.events(box[0])
            except NoAnswer:
                return
            for ev in r["events"]:
                yield ev
            if r["next"] > box[0]:
                box[0] = r["next"]
            if not r["events"] or box[0] >= r["head"]:
                return
