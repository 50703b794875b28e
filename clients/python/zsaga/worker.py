"""The worker: run a system's operations for zsagad, each as one local
transaction behind the barrier (zsaga.barrier), with the C runtime's
protocol, options and rules (workers/wrk_runtime.h, docs/protocol.md,
"Workers").

    w = zsaga.Worker("notify", migrations=[...])

    @w.operation("send", params="customer:str text:str", outputs="message_id:str")
    def send(ctx):
        ctx.db.execute("INSERT INTO outbox (saga, step, body) VALUES (?, ?, ?)",
                       ctx.saga, ctx.step, ctx.str("text"))
        return {"message_id": f"{ctx.saga}/{ctx.step}"}

    raise SystemExit(w.main())   # `run` (default) or `migrate status|up|down`

An operation returns its output (a flat map), raises zsaga.Fail(code,
message) to fail for good (its writes are rolled back, the verdict is
kept), or zsaga.RetryLater(message). A database error is sorted as the
C runtime sorts it: busy, deadlock and serialization failures replay the
transaction a few times, then answer "retry"; a broken connection is
dropped and answers "retry"; anything else fails the step for good.

Threads: the main thread owns the sockets to zsagad; `capacity` executor
threads each own one database connection and hand results back over an
inproc socket. SIGTERM or SIGINT: stop taking work, finish what is held,
send its results, exit 0.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import queue
import random
import signal
import socket as _socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import msgpack
import zmq

from . import barrier
from . import db as zdb
from . import schema as zschema
from .errors import Fail, RetryLater
from .keys import curve_client

log = logging.getLogger("zsaga.worker")

OK, FAILED, RETRY = "ok", "failed", "retry"
LOCAL_TRIES = 5
VERSION = "python_0_1_0"


# ---- failure injection, as workers/wrk_fault.h -------------------------------

FAULT_KINDS = ("fail", "retry", "delay", "crash-before-commit", "crash-after-commit")


@dataclass
class FaultRule:
    kind: str
    op: str
    arg: float


def parse_faults(spec: str) -> List[FaultRule]:
    """Rules "KIND=OP[:ARG];..." (fail, retry[:N], delay:MS,
    crash-before-commit[:P], crash-after-commit[:P])."""
    rules = []
    for r in filter(None, (x.strip() for x in (spec or "").split(";"))):
        kind, sep, rest = r.partition("=")
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(f"fault kind '{kind}' unknown ({', '.join(FAULT_KINDS)})")
        op, _, arg = rest.partition(":")
        default = {"retry": 1, "delay": 0}.get(kind, 1.0)
        rules.append(FaultRule(kind, op, float(arg) if arg else default))
    return rules


def _fault(rules: Sequence[FaultRule], kind: str, op: str) -> Optional[FaultRule]:
    for r in rules:
        if r.kind == kind and (r.op == op or r.op == "*"):
            return r
    return None


def _crash_point(rules: Sequence[FaultRule], kind: str, op: str) -> None:
    r = _fault(rules, kind, op)
    if r and random.random() < r.arg:
        os.kill(os.getpid(), signal.SIGKILL)


# ---- operations and their context --------------------------------------------


@dataclass
class Operation:
    name: str
    fn: Callable[["StepContext"], Optional[Dict[str, Any]]]
    params: Optional[str] = None
    outputs: Optional[str] = None
    isolation: Optional[str] = None  # an operation may ask for a stronger level
    rule: str = ""
    errors: str = ""


@dataclass
class Migration:
    """Schema version `version`: SQL per dialect (sqlite, postgresql,
    mysql: statements separated by ';'; redis: one Lua script)."""
    version: int
    name: str
    up: Dict[str, str]
    down: Dict[str, str] = field(default_factory=dict)


class StepContext:
    """One executing step: what the operation reads and the connection it
    writes through, inside the step's transaction."""

    def __init__(self, db: zdb.Conn, saga: str, step: str, op: str, phase: str, attempt: int,
                 params: Dict[str, Any], now_ms: int, faults: Sequence[FaultRule]):
        self.db, self.saga, self.step, self.op = db, saga, step, op
        self.phase, self.attempt, self.params, self.now_ms = phase, attempt, params, now_ms
        self.dialect = db.dialect
        self.prior: Dict[str, Any] = {}  # a compensation: the action's output
        self.faults = faults
        self._lua_result: Optional[Tuple[str, Any]] = None

    # Params, checked as the C helpers check them (code bad_params).
    def _get(self, key: str, typ: type, tname: str, default: Any, required: bool) -> Any:
        v = self.params.get(key)
        if v is None:
            if required:
                raise Fail("bad_params", f"params.{key}: required {tname} is missing")
            return default
        if typ is int and (isinstance(v, bool) or not isinstance(v, int)) or \
                typ is not int and not isinstance(v, typ):
            raise Fail("bad_params", f"params.{key}: must be {'an' if tname == 'integer' else 'a'} {tname}")
        return v

    def str(self, key: str, default: Optional[str] = None) -> str:
        v = self._get(key, str, "string", default, default is None)
        if default is None and not v:
            raise Fail("bad_params", f"params.{key}: required string is missing")
        return v

    def int(self, key: str, default: Optional[int] = None) -> int:
        return self._get(key, int, "integer", default, default is None)

    def bool(self, key: str, default: bool = False) -> bool:
        return self._get(key, bool, "boolean", default, False)

    def amount(self, key: str) -> int:
        """A positive amount in minor units, at most 10^15."""
        v = self.int(key)
        if v <= 0 or v > 10**15:
            raise Fail("bad_params", f"params.{key}: amount must be between 1 and 10^15 minor units")
        return v

    def ref(self, prefix: str) -> str:
        """A reference that depends only on (saga, step), as wrk_ref:
        PREFIX-16 hex digits of BLAKE2b-64 of "saga/step"."""
        h = hashlib.blake2b(f"{self.saga}/{self.step}".encode(), digest_size=8).hexdigest().upper()
        return f"{prefix[:24]}-{h}"

    def lua(self, effect: str, args: Sequence[Any] = ()) -> Dict[str, Any]:
        """Redis: run the effect inside the barrier script (one atomic
        script, as WRK_LUA_STEP). The effect defines
        `local function effect(A, prior)` returning nil, OUT or CODE,
        MESSAGE. Returns the output; raises Fail for a failure."""
        if self.dialect != "redis":
            raise Fail("unsupported", "lua() is for Redis")
        if len(args) > zschema.MAX_PARAMS:
            raise Fail("bad_params", "too many script arguments")
        _crash_point(self.faults, "crash-before-commit", self.op)
        row = self.db.execute(barrier.lua_step(effect), self.saga, self.step, self.phase, self.op,
                              self.now_ms, *args)[0]
        self._lua_result = ("ran", row)
        return _lua_answer(self, row)


class _Dup(Exception):
    """The barrier answered from its row: nothing ran."""

    def __init__(self, status: str, code: str = "", message: str = "", output: Any = None):
        self.status, self.code, self.message, self.output = status, code, message, output


def _lua_out(v: Any) -> Any:
    if isinstance(v, int):
        return v
    if v.startswith("i"):
        return int(v[1:])
    return v[1:] if v else v


def _lua_answer(ctx: StepContext, row: Sequence[Any]) -> Dict[str, Any]:
    """The barrier script's answer, read as wrk_step_lua reads it."""
    status, at, dup = str(row[0]), 1, False
    if status == "dup":
        dup, status, at = True, str(row[1]), 2
    else:
        _crash_point(ctx.faults, "crash-after-commit", ctx.op)
    if len(row) < at + 2:
        raise Fail("db_error", "redis: the barrier script gave a short answer")
    code, message = str(row[at] or ""), str(row[at + 1] or "")
    out = {str(row[i]): _lua_out(row[i + 1]) for i in range(at + 2, len(row) - 1, 2)}
    if status in ("done", "null"):
        if dup:
            raise _Dup(OK, code, message, out)
        ctx._lua_result = ("ok", (code, message))
        return out
    if status == "blocked":
        raise _Dup(FAILED, "compensated", "refused: the compensation of this step already ran") if dup \
            else Fail("compensated", "refused: the compensation of this step already ran")
    if status == "failed":
        if dup:
            raise _Dup(FAILED, code, message)
        raise _Settled(code, message)
    raise Fail("db_error", f"redis: the barrier script answered '{status}'")


class _Settled(Fail):
    """Redis: the script already recorded this failure; nothing to roll back."""


@dataclass
class Outcome:
    status: str
    code: str = ""
    message: str = ""
    output: Optional[Dict[str, Any]] = None
    duplicate: bool = False
    transient: bool = False
    broken: bool = False
    replays: int = 0


def _db_outcome(e: zdb.DbError) -> Outcome:
    if e.rc == zdb.RETRY:
        return Outcome(RETRY, "db_busy", e.message, transient=True)
    if e.rc == zdb.BROKEN:
        return Outcome(RETRY, "db_unavailable", e.message, broken=True)
    return Outcome(FAILED, "db_error", e.message)


def _check_output(out: Any) -> Dict[str, Any]:
    if out is None:
        return {}
    try:
        zschema.check_value_form("output", out)
    except ValueError as e:
        raise Fail("bad_output", str(e)) from None
    return out


class Step:
    """One step run behind the barrier, as wrk_step_run."""

    def __init__(self, ctx: StepContext, op: Operation, iso: str, timeout_ms: int):
        self.ctx, self.op, self.timeout_ms = ctx, op, timeout_ms
        order = list(zdb.ISOLATION)
        self.iso = max(iso, op.isolation or iso, key=order.index)

    def _handler(self) -> Dict[str, Any]:
        ctx, faults = self.ctx, self.ctx.faults
        r = _fault(faults, "delay", ctx.op)
        if r:
            time.sleep(r.arg / 1000)
        if _fault(faults, "fail", ctx.op):
            raise Fail("injected", f"injected failure of {ctx.op}")
        r = _fault(faults, "retry", ctx.op)
        if r and ctx.attempt <= r.arg:
            raise RetryLater(f"injected retry of {ctx.op} (try {ctx.attempt})")
        return _check_output(self.op.fn(ctx))

    def _run_handler(self) -> Outcome:
        try:
            return Outcome(OK, output=self._handler())
        except _Dup:
            raise
        except Fail as e:
            return Outcome(FAILED, e.code[:32], e.message)
        except RetryLater as e:
            return Outcome(RETRY, "retry", e.message)
        except zdb.DbError as e:
            return _db_outcome(e)

    def _mark_commit(self, phase: str, state: str, out: Outcome, with_output: bool) -> Outcome:
        db, ctx = self.ctx.db, self.ctx
        blob = msgpack.packb(out.output or {}, use_bin_type=True) if with_output else None
        _crash_point(ctx.faults, "crash-before-commit", ctx.op)
        db.execute(barrier.MARK_SQL, state, blob, out.code or None, out.message or None,
                   ctx.saga, ctx.step, phase)
        db.commit()
        _crash_point(ctx.faults, "crash-after-commit", ctx.op)
        return out

    def _select(self, phase: str) -> Tuple[Any, ...]:
        c = self.ctx
        row = c.db.one(barrier.SELECT_SQL, c.saga, c.step, phase)
        if row is None:
            raise zdb.DbError(zdb.FAILED, "the barrier row vanished")
        return row

    def _action(self) -> Outcome:
        c, db = self.ctx, self.ctx.db
        db.begin(self.iso, self.timeout_ms)
        db.execute(barrier.INSERT_SQL[db.dialect], c.saga, c.step, "action", "running", c.op, c.now_ms)
        if db.rowcount == 0:
            state, blob, code, message = self._select("action")
            db.rollback()
            if state == "done":
                raise _Dup(OK, code or "", message or "", _unpack_output(blob))
            if state == "blocked":
                raise _Dup(FAILED, "compensated", "refused: the compensation of this step already ran")
            raise _Dup(FAILED, code or "", message or "")
        db.execute("SAVEPOINT zsaga_op")
        out = self._run_handler()
        if out.status == OK:
            return self._mark_commit("action", "done", out, True)
        if out.status == FAILED and not out.transient and not out.broken:
            # Failed for good: undo the effect, keep the verdict, so no
            # later try of this step can act.
            db.execute("ROLLBACK TO SAVEPOINT zsaga_op")
            return self._mark_commit("action", "failed", out, False)
        db.rollback()
        return out

    def _compensate(self) -> Outcome:
        c, db = self.ctx, self.ctx.db
        db.begin(self.iso, self.timeout_ms)
        ins = barrier.INSERT_SQL[db.dialect]
        db.execute(ins, c.saga, c.step, "action", "blocked", c.op, c.now_ms)
        if db.rowcount == 1:
            # The action never ran, and the row just written stops it for good.
            db.execute(ins, c.saga, c.step, "compensation", "null", c.op, c.now_ms)
            _crash_point(c.faults, "crash-before-commit", c.op)
            db.commit()
            _crash_point(c.faults, "crash-after-commit", c.op)
            return Outcome(OK, message="null compensation: the action never ran", output={})
        db.execute(ins, c.saga, c.step, "compensation", "running", c.op, c.now_ms)
        if db.rowcount == 0:
            self._select("compensation")
            db.rollback()
            raise _Dup(OK)
        state, blob, _, _ = self._select("action")
        if state != "done":
            # The action failed (rolled back) or was blocked: nothing to undo.
            return self._mark_commit("compensation", "null",
                                     Outcome(OK, message="nothing to undo: the action did not apply",
                                             output={}), False)
        c.prior = _unpack_output(blob) or {}
        db.execute("SAVEPOINT zsaga_op")
        out = self._run_handler()
        if out.status != OK:
            # A failed compensation is not recorded: it must stay possible
            # to run it again (by retry, or an operator).
            db.rollback()
            return out
        return self._mark_commit("compensation", "done", out, True)

    def _redis(self) -> Outcome:
        c = self.ctx
        c._lua_result = None
        out = self._run_handler()
        if out.status == OK and c._lua_result is None:
            return Outcome(FAILED, "unsupported", f"operation {c.op} has no Redis implementation")
        if out.status == OK and c._lua_result and c._lua_result[0] == "ok":
            out.code, out.message = c._lua_result[1]
        return out

    def run(self) -> Outcome:
        out = Outcome(RETRY)
        replays = 0
        for t in range(LOCAL_TRIES):
            try:
                if self.ctx.dialect == "redis":
                    out = self._redis()
                elif self.ctx.phase == "action":
                    out = self._action()
                else:
                    out = self._compensate()
            except _Dup as d:
                out = Outcome(d.status, d.code, d.message, d.output, duplicate=True)
            except zdb.DbError as e:
                self.ctx.db.rollback()
                out = _db_outcome(e)
            if out.status != RETRY or not out.transient or out.broken:
                break
            # Busy, deadlock, serialization failure: the database asks for
            # the whole transaction again; do it here before troubling the saga.
            replays += 1
            zdb.backoff(t)
        out.replays = replays
        if out.status == OK and not out.duplicate and out.output is None:
            out.output = {}
        return out


def _unpack_output(blob: Any) -> Optional[Dict[str, Any]]:
    if blob is None:
        return None
    return msgpack.unpackb(bytes(blob), raw=False)


# ---- migrations, as workers/wrk_migrate.c ----------------------------------

SCHEMA_DDL = ("CREATE TABLE IF NOT EXISTS zsaga_schema (version INTEGER PRIMARY KEY,"
              " name VARCHAR(128) NOT NULL, applied_ms BIGINT NOT NULL)")
REDIS_VERSION = ("local m = -1\n"
                 "for _, k in ipairs(redis.call('HKEYS', 'zsaga:schema')) do\n"
                 "  if tonumber(k) > m then m = tonumber(k) end\n"
                 "end\n"
                 "return m")
REDIS_RECORD = ("if ARGV[3] == '1' then return redis.call('HSET', 'zsaga:schema', ARGV[1], ARGV[2]) end\n"
                "return redis.call('HDEL', 'zsaga:schema', ARGV[1])")


def schema_version(db: zdb.Conn) -> int:
    if db.dialect == "redis":
        return int(db.execute(REDIS_VERSION)[0][0])
    db.execute(SCHEMA_DDL)
    v = db.one("SELECT MAX(version) FROM zsaga_schema")
    return -1 if v is None or v[0] is None else int(v[0])


def _apply(db: zdb.Conn, version: int, name: str, sql: str, up: bool) -> None:
    try:
        db.begin()
        if db.dialect == "redis":
            db.execute(sql)
            db.execute(REDIS_RECORD, version, name, 1 if up else 0)
        else:
            for st in filter(None, (s.strip() for s in sql.split(";"))):
                db.execute(st)
            if up:
                db.execute("INSERT INTO zsaga_schema (version, name, applied_ms) VALUES (?, ?, ?)",
                           version, name, int(time.time() * 1000))
            else:
                db.execute("DELETE FROM zsaga_schema WHERE version = ?", version)
        db.commit()
    except zdb.DbError as e:
        db.rollback()
        raise zdb.DbError(e.rc, f"migration {version} ({name}) {'up' if up else 'down'} failed: {e.message}")
    log.info("migrated %s %d: %s", "up to" if up else "down from", version, name)


def migrate_up(db: zdb.Conn, migrations: Sequence[Migration], target: int = -1) -> None:
    cur = schema_version(db)
    if cur < 0:
        _apply(db, 0, "zsaga barrier", barrier.DDL[db.dialect], True)
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version <= cur or (target >= 0 and m.version > target):
            continue
        if db.dialect not in m.up:
            raise zdb.DbError(zdb.FAILED, f"migration {m.version} ({m.name}) has no SQL for this database")
        _apply(db, m.version, m.name, m.up[db.dialect], True)


def migrate_down(db: zdb.Conn, migrations: Sequence[Migration], target: int) -> None:
    cur = schema_version(db)
    for m in sorted(migrations, key=lambda m: -m.version):
        if m.version > cur or m.version <= target:
            continue
        if db.dialect not in m.down:
            raise zdb.DbError(zdb.FAILED, f"migration {m.version} ({m.name}) cannot be reverted")
        _apply(db, m.version, m.name, m.down[db.dialect], False)


# ---- the worker ------------------------------------------------------------


class Worker:
    def __init__(self, system: str, migrations: Sequence[Migration] = ()):
        if not zschema.NAME_RE.match(system):
            raise ValueError(f"system name '{system}' must be 1-32 of a-z 0-9 _")
        self.system = system
        self.migrations = list(migrations)
        self.ops: Dict[str, Operation] = {}
        self._stop = threading.Event()
        self.counts = {"steps_ok": 0, "steps_failed": 0, "steps_retry": 0, "duplicates": 0,
                       "db_replays": 0, "queries": 0, "connects": 0, "connect_failures": 0}
        self._lock = threading.Lock()

    def operation(self, name: str, *, params: Optional[str] = None, outputs: Optional[str] = None,
                  isolation: Optional[str] = None, rule: str = "", errors: str = ""
                  ) -> Callable[[Callable[[StepContext], Optional[Dict[str, Any]]]], Callable]:
        """Register an operation (a decorator). params/outputs: schema text
        (docs/protocol.md, "Operation schemas"), sent in `ready` so zsagad
        checks submits; isolation: read-committed, repeatable-read or
        serializable when the operation needs more than the worker's."""
        if not zschema.NAME_RE.match(name):
            raise ValueError(f"operation name '{name}' must be 1-32 of a-z 0-9 _")
        for text in (params, outputs):
            if text is not None:
                zschema.parse(text)
        if isolation is not None and isolation not in zdb.ISOLATION:
            raise ValueError(f"isolation '{isolation}': read-committed, repeatable-read or serializable")

        def register(fn: Callable[[StepContext], Optional[Dict[str, Any]]]) -> Callable:
            self.ops[name] = Operation(name, fn, params, outputs, isolation, rule, errors)
            return fn

        return register

    def stop(self) -> None:
        """Stop taking work; run() returns once held steps are answered."""
        self._stop.set()

    # ---- one step ----
    def execute(self, conn: zdb.Conn, job: Dict[str, Any], cfg: argparse.Namespace
                ) -> Tuple[Dict[str, Any], Outcome]:
        """Run one execute or compensate message: the result message, and the outcome."""
        phase = "compensation" if job["type"] == "compensate" else "action"
        op = self.ops.get(job.get("op", ""))
        params = job.get("params") or {}
        if op is None:
            out = Outcome(FAILED, "unknown_operation", f"system {self.system} has no operation {job.get('op')}")
        elif not isinstance(params, dict):
            out = Outcome(FAILED, "bad_params", "params must be a map")
        else:
            ctx = StepContext(conn, job["id"], job["step"], op.name, phase, job.get("attempt", 1), params,
                              int(time.time() * 1000), cfg.faults)
            q0 = conn.queries
            out = Step(ctx, op, cfg.isolation, cfg.statement_timeout).run()
            with self._lock:
                self.counts["queries"] += conn.queries - q0
        with self._lock:
            self.counts["steps_" + out.status] += 1
            self.counts["duplicates"] += out.duplicate
            self.counts["db_replays"] += out.replays
        res: Dict[str, Any] = {"v": 1, "type": "result", "id": job["id"], "step": job["step"],
                               "phase": phase, "attempt": job.get("attempt", 1), "status": out.status}
        if out.code:
            res["code"] = _cut(out.code, 32)
        if out.message:
            res["message"] = _cut(out.message, 1024)
        if out.status == OK and out.output is not None:
            res["output"] = out.output
        if job.get("lease"):
            res["lease"] = job["lease"]
        return res, out

    # ---- the program ----
    def main(self, argv: Optional[Sequence[str]] = None) -> int:
        """The worker program: `run` (default), `migrate status|up|down
        [VERSION]`. Options as the C workers' (see --help)."""
        cfg = self._parse(argv)
        logging.basicConfig(level=getattr(logging, cfg.log_level.upper(), logging.INFO),
                            format=f"%(asctime)s %(levelname)s {self.system}: %(message)s", stream=sys.stderr)
        if cfg.command == "migrate":
            return self._migrate(cfg)
        return self.run(cfg)

    def _parse(self, argv: Optional[Sequence[str]]) -> argparse.Namespace:
        p = argparse.ArgumentParser(prog=f"zsaga-worker-{self.system}",
                                    description=f"The {self.system} worker (zsaga, Python).")
        p.add_argument("command", nargs="?", default="run", choices=["run", "migrate"])
        p.add_argument("args", nargs="*", help="migrate: status | up [VERSION] | down VERSION --force")
        p.add_argument("--db", default=f"sqlite:{self.system}.db",
                       help="database URI (a password here shows in ps: use --db-file)")
        p.add_argument("--db-file", help="read the database URI from FILE (mode 0600)")
        p.add_argument("--orchestrator", default="tcp://127.0.0.1:5571",
                       help="zsagad's worker socket; several comma-separated (active and standbys)")
        p.add_argument("--key", help="this worker's key pair (NAME.key_secret)")
        p.add_argument("--server-key", help="zsagad's public key (zsagad.key)")
        p.add_argument("--insecure", action="store_true", help="plaintext, zsagad not authenticated: tests only")
        p.add_argument("--instance", default=f"{self.system}-{_socket.gethostname()}-{os.getpid()}")
        p.add_argument("--capacity", type=int, default=8, help="steps run at once")
        p.add_argument("--heartbeat", type=int, default=1000, help="heartbeat interval, ms")
        p.add_argument("--statement-timeout", type=int, default=30000, help="longest a step's transaction may run, ms")
        p.add_argument("--isolation", default="read-committed", choices=list(zdb.ISOLATION))
        p.add_argument("--fault", default=os.environ.get("ZSAGA_FAULTS", ""), help="inject failures (docs/operations.md)")
        p.add_argument("--no-migrate", dest="migrate", action="store_false")
        p.add_argument("--force", action="store_true")
        p.add_argument("--log-level", default="info", choices=["error", "warn", "warning", "info", "debug"])
        cfg = p.parse_args(argv)
        if cfg.log_level == "warn":
            cfg.log_level = "warning"
        if not 1 <= cfg.capacity <= 256:
            p.error("--capacity must be 1-256")
        if not cfg.insecure and (not cfg.key or not cfg.server_key):
            if cfg.command == "run":
                p.error("no key given: --key FILE and --server-key FILE (or --insecure for a plaintext test setup)")
        try:
            cfg.faults = parse_faults(cfg.fault)
            if cfg.db_file:
                cfg.db = read_secret(cfg.db_file)
        except ValueError as e:
            p.error(str(e))
        return cfg

    def _migrate(self, cfg: argparse.Namespace) -> int:
        try:
            conn = zdb.connect(cfg.db)
            sub = cfg.args[0] if cfg.args else "status"
            target = int(cfg.args[1]) if len(cfg.args) > 1 else -1
            if sub == "up":
                migrate_up(conn, self.migrations, target)
            elif sub == "down":
                if target < 0 or not cfg.force:
                    print("migrate down needs VERSION and --force (it drops data)", file=sys.stderr)
                    return 2
                migrate_down(conn, self.migrations, target)
            cur = schema_version(conn)
            print(f"schema version: {cur}")
            for m in self.migrations:
                print(f"  {m.version:3d}  {'applied' if m.version <= cur else 'pending':8s} {m.name}")
            conn.close()
            return 0
        except zdb.DbError as e:
            print(f"zsaga-worker-{self.system}: {e.message}", file=sys.stderr)
            return 1

    def _ready(self, cfg: argparse.Namespace) -> bytes:
        return msgpack.packb({
            "v": 1, "type": "ready", "system": self.system, "instance": cfg.instance,
            "capacity": cfg.capacity, "operations": list(self.ops), "version": VERSION,
            "schemas": {n: {"params": o.params or "", "outputs": o.outputs or ""} for n, o in self.ops.items()},
        }, use_bin_type=True)

    def _heartbeat(self, inflight: int, pool: "_Pool") -> bytes:
        with self._lock:
            m = dict(self.counts)
        m.update(pool.stats())
        return msgpack.packb({"v": 1, "type": "heartbeat", "inflight": inflight, "metrics": m},
                             use_bin_type=True)

    def run(self, cfg: argparse.Namespace) -> int:
        if not self.ops:
            log.error("no operations registered")
            return 2
        if cfg.migrate:
            try:
                conn = zdb.connect(cfg.db)
                migrate_up(conn, self.migrations)
                conn.close()
            except zdb.DbError as e:
                log.error("%s", e.message)
                return 1
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        zctx = zmq.Context()
        orch: List[zmq.Socket] = []
        try:
            for ep in [e.strip() for e in cfg.orchestrator.split(",") if e.strip()]:
                s = zctx.socket(zmq.DEALER)
                s.linger = 2000
                curve_client(s, cfg.key, cfg.server_key, cfg.insecure)
                s.connect(ep)
                orch.append(s)
        except (ValueError, OSError, zmq.ZMQError) as e:
            log.error("%s", e)
            for s in orch:
                s.close(0)
            zctx.term()
            return 1
        results = zctx.socket(zmq.PULL)
        results.bind(f"inproc://zsaga-results")
        pool = _Pool(self, cfg, zctx)
        ready = self._ready(cfg)
        for s in orch:
            _send(s, ready)
        log.info("ready: %s as %s, capacity %d, database %s", self.system, cfg.instance, cfg.capacity,
                 zdb.redact(cfg.db))
        poller = zmq.Poller()
        for s in orch:
            poller.register(s, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        inflight = 0
        next_hb = 0.0
        rc = 0
        while True:
            now = time.monotonic()
            if self._stop.is_set() and inflight == 0:
                break
            if now >= next_hb:
                hb = self._heartbeat(inflight, pool)
                for s in orch:
                    _send(s, hb)
                next_hb = now + cfg.heartbeat / 1000
            events = dict(poller.poll(100))
            if results in events:
                while True:
                    try:
                        k, body = results.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    inflight -= 1
                    if not _send(orch[int(k)], body):
                        log.warning("a result could not be sent; zsagad will send the step again")
            for k, s in enumerate(orch):
                if s not in events:
                    continue
                while True:
                    try:
                        body = s.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        m = msgpack.unpackb(body, raw=False)
                        t = m.get("type")
                    except Exception:
                        log.warning("dropped a message that is not a msgpack map")
                        continue
                    if t in ("execute", "compensate"):
                        if not _job_ok(m):
                            log.warning("dropped a bad job: %.200r", m)
                            continue
                        if self._stop.is_set():
                            continue  # stopping: zsagad sends it to another instance
                        inflight += 1
                        pool.jobs.put((k, m))
                    elif t == "heartbeat":
                        if not m.get("boot"):
                            _send(s, ready)  # zsagad does not know us: register again
                    elif t == "error":
                        log.error("zsagad refused this worker: %s: %s", m.get("code"), m.get("reason"))
                        if m.get("code") != "journal_full":
                            self._stop.set()
                            rc = 1
        pool.close()
        for s in orch + [results]:
            s.close()
        zctx.term()
        log.info("stopped")
        return rc


def read_secret(path: str) -> str:
    """The first line of a file only its owner may read (as zcfg_read_secret)."""
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            if mode & 0o077:
                raise ValueError(f"{path} holds a secret and may be read by others "
                                 f"(mode {mode & 0o7777:04o}): chmod 600 it")
            line = f.readline().rstrip("\r\n")
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}") from None
    if not line:
        raise ValueError(f"{path} is empty")
    return line


def _job_ok(m: Dict[str, Any]) -> bool:
    """The fields a step needs, of the right types (zsagad checks its own
    messages; a message that lacks them is dropped, as the C runtime's
    strict decoder drops it)."""
    return (all(isinstance(m.get(k), str) and m[k] for k in ("id", "step", "op"))
            and isinstance(m.get("attempt"), int) and isinstance(m.get("params", {}), dict))


def _send(sock: zmq.Socket, body: bytes) -> bool:
    """Send without waiting: a message zsagad cannot take now is dropped
    (a heartbeat goes again, a step is sent again by zsagad)."""
    try:
        sock.send(body, zmq.NOBLOCK)
        return True
    except zmq.Again:
        return False


def _cut(s: str, n: int) -> str:
    b = s.encode()
    return s if len(b) <= n else b[:n].decode(errors="ignore")


class _Pool:
    """The executor threads, each with its own connection (made when first
    needed, and made again after it broke)."""

    def __init__(self, w: Worker, cfg: argparse.Namespace, zctx: zmq.Context):
        self.w, self.cfg, self.zctx = w, cfg, zctx
        self.jobs: "queue.Queue[Optional[Tuple[int, Dict[str, Any]]]]" = queue.Queue()
        self.active = 0
        self.conns = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, name=f"executor-{i}", daemon=True)
                        for i in range(cfg.capacity)]
        for t in self.threads:
            t.start()

    def stats(self) -> Dict[str, int]:
        with self._lock:
            return {"pool_total": self.conns, "pool_max": self.cfg.capacity, "pool_active": self.active,
                    "pool_idle": self.conns - self.active}

    def _loop(self) -> None:
        out = self.zctx.socket(zmq.PUSH)
        out.connect("inproc://zsaga-results")
        conn: Optional[zdb.Conn] = None
        while True:
            item = self.jobs.get()
            if item is None:
                break
            k, job = item
            with self._lock:
                self.active += 1
            try:
                if conn is None:
                    try:
                        conn = zdb.connect(self.cfg.db)
                        with self._lock:
                            self.conns += 1
                        with self.w._lock:
                            self.w.counts["connects"] += 1
                    except zdb.DbError as e:
                        with self.w._lock:
                            self.w.counts["connect_failures"] += 1
                        conn = None
                        res = _retry_result(job, f"no database connection: {e.message}")
                        out.send_multipart([str(k).encode(), msgpack.packb(res, use_bin_type=True)])
                        continue
                try:
                    res, outcome = self.w.execute(conn, job, self.cfg)
                except Exception as e:  # a bug in an operation: answer, keep serving
                    log.exception("operation %s raised", job.get("op"))
                    conn.rollback()
                    res = _retry_result(job, f"the worker raised {type(e).__name__}: {e}")
                    res["status"], res["code"] = FAILED, "worker_error"
                    outcome = None
                if outcome is not None and outcome.broken:
                    conn.close()
                    conn = None
                    with self._lock:
                        self.conns -= 1
                out.send_multipart([str(k).encode(), msgpack.packb(res, use_bin_type=True)])
            finally:
                with self._lock:
                    self.active -= 1
        if conn is not None:
            conn.close()
        out.close()

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


def _retry_result(job: Dict[str, Any], message: str) -> Dict[str, Any]:
    res = {"v": 1, "type": "result", "id": job.get("id", ""), "step": job.get("step", ""),
           "phase": "compensation" if job.get("type") == "compensate" else "action",
           "attempt": job.get("attempt", 1), "status": RETRY, "code": "db_unavailable",
           "message": _cut(message, 1024)}
    if job.get("lease"):
        res["lease"] = job["lease"]
    return res
