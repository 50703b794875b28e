"""One interface over the databases a worker may use, as the C runtime's
workers/wrk_db.h: SQL written once with `?` placeholders, values always
bound as parameters, and every error sorted into what the caller may do:

    RETRY   transient (busy, deadlock, serialization failure, timeout):
            run the whole transaction again
    FAILED  wrong for this data (constraint, bad value): it will fail again
    BROKEN  the connection is unusable: drop it
    CONFLICT a unique key exists

URIs as the C runtime takes them: sqlite:PATH[?synchronous=normal],
postgresql://..., mysql://USER:PASS@HOST:PORT/DB, redis://HOST:PORT/N.
Drivers are imported only when used (Debian: python3-psycopg2,
python3-mysqldb, python3-redis; sqlite3 is in the standard library).
"""
import re
import time
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlparse

OK, CONFLICT, RETRY, FAILED, BROKEN = "ok", "conflict", "retry", "failed", "broken"
ISOLATION = {"read-committed": "READ COMMITTED", "repeatable-read": "REPEATABLE READ",
             "serializable": "SERIALIZABLE"}


class DbError(Exception):
    """A database error, sorted: .rc is RETRY, FAILED, BROKEN or CONFLICT."""

    def __init__(self, rc: str, message: str):
        super().__init__(message)
        self.rc = rc
        self.message = message


def redact(uri: str) -> str:
    """uri with its password masked, for logs."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", uri)


class Conn:
    """A connection: begin/commit/rollback and execute. After execute,
    .rows holds the rows (tuples) and .rowcount the rows changed."""

    dialect = ""

    def __init__(self) -> None:
        self.rows: List[Tuple[Any, ...]] = []
        self.rowcount = 0
        self.queries = 0

    def begin(self, iso: str = "read-committed", timeout_ms: int = 30000) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def execute(self, sql: str, *params: Any) -> List[Tuple[Any, ...]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def one(self, sql: str, *params: Any) -> Optional[Tuple[Any, ...]]:
        """The first row of a query, or None."""
        rows = self.execute(sql, *params)
        return rows[0] if rows else None

    @property
    def raw(self) -> Any:
        """The driver's own connection, for code that wants it."""
        return getattr(self, "_c")


class _Dbapi(Conn):
    """The DB-API drivers, with ? mapped to the driver's placeholder."""

    paramstyle = "?"

    def _sql(self, sql: str) -> str:
        return sql if self.paramstyle == "?" else sql.replace("?", self.paramstyle)

    def _classify(self, e: Exception) -> DbError:
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[Any]) -> List[Tuple[Any, ...]]:
        self.queries += 1
        try:
            cur = self._c.cursor()
            cur.execute(self._sql(sql), tuple(params))
            self.rowcount = cur.rowcount if cur.rowcount is not None else 0
            self.rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            cur.close()
            return self.rows
        except DbError:
            raise
        except Exception as e:  # each driver's own classes: sorted below
            raise self._classify(e) from e

    def execute(self, sql: str, *params: Any) -> List[Tuple[Any, ...]]:
        return self._run(sql, params)


class SqliteConn(_Dbapi):
    """WAL, writers take the lock at BEGIN IMMEDIATE and wait up to 10 s
    for it, as the C driver does."""

    dialect = "sqlite"

    def __init__(self, uri: str):
        super().__init__()
        import sqlite3

        self._mod = sqlite3
        path, _, q = uri[len("sqlite:"):].partition("?")
        sync = "FULL"
        if q == "synchronous=normal":
            sync = "NORMAL"
        elif q and q != "synchronous=full":
            raise DbError(FAILED, f"sqlite: unknown option '{q}' (synchronous=full or normal)")
        try:
            self._c = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self._c.execute("PRAGMA journal_mode=WAL")
            self._c.execute(f"PRAGMA synchronous={sync}")
        except sqlite3.Error as e:
            raise DbError(BROKEN, f"sqlite: {path}: {e}") from e

    def _classify(self, e: Exception) -> DbError:
        m = str(e)
        if isinstance(e, self._mod.IntegrityError) and "UNIQUE" in m:
            return DbError(CONFLICT, f"sqlite: {m}")
        if isinstance(e, self._mod.OperationalError) and ("locked" in m or "busy" in m):
            return DbError(RETRY, f"sqlite: database busy: {m}")
        return DbError(FAILED, f"sqlite: {m}")

    def begin(self, iso: str = "read-committed", timeout_ms: int = 30000) -> None:
        self._run("BEGIN IMMEDIATE", ())

    def commit(self) -> None:
        self._run("COMMIT", ())

    def rollback(self) -> None:
        try:
            self._c.execute("ROLLBACK")
        except self._mod.Error:
            pass

    def close(self) -> None:
        self._c.close()


class PgConn(_Dbapi):
    """psycopg2 in autocommit mode with explicit BEGIN ISOLATION LEVEL, as
    the C driver: SQLSTATE 40001, 40P01, 55P03, 57014 and class 53 are
    transient; class 08 and 57P, or a closed connection, are broken."""

    dialect = "postgresql"
    paramstyle = "%s"

    def __init__(self, uri: str):
        super().__init__()
        import psycopg2

        self._mod = psycopg2
        self._timeout = -1
        try:
            self._c = psycopg2.connect(uri)
            self._c.autocommit = True
        except psycopg2.Error as e:
            raise DbError(BROKEN, f"postgresql: {redact(uri)}: {str(e).strip()}") from e

    def _classify(self, e: Exception) -> DbError:
        code = getattr(e, "pgcode", None) or ""
        m = f"postgresql: {str(e).strip()}"
        if self._c.closed or (not code and isinstance(e, (self._mod.OperationalError, self._mod.InterfaceError))):
            return DbError(BROKEN, m)
        if code == "23505":
            return DbError(CONFLICT, m)
        if code in ("40001", "40P01", "55P03", "57014") or code.startswith("53"):
            return DbError(RETRY, m)
        if code.startswith("08") or code.startswith("57P"):
            return DbError(BROKEN, m)
        return DbError(FAILED, m)

    def begin(self, iso: str = "read-committed", timeout_ms: int = 30000) -> None:
        if self._timeout != timeout_ms:
            self._run(f"SET statement_timeout = {int(timeout_ms)}", ())
            self._timeout = timeout_ms
        self._run(f"BEGIN ISOLATION LEVEL {ISOLATION[iso]}", ())

    def commit(self) -> None:
        self._run("COMMIT", ())

    def rollback(self) -> None:
        if self._c.closed:
            return
        try:
            self._c.cursor().execute("ROLLBACK")
        except self._mod.Error:
            pass

    def close(self) -> None:
        self._c.close()


class MysqlConn(_Dbapi):
    """MySQLdb (mysqlclient). The session runs in strict mode and reports
    changed rows, so the barrier's INSERT .. ON DUPLICATE KEY UPDATE
    counts 1 for a new row and 0 for one that was there. 1062 is a
    conflict; 1213, 1205, 1969, 3024 and 1040 are transient; client
    errors 2000-2999 and 1927 (killed) are broken."""

    dialect = "mysql"
    paramstyle = "%s"

    def __init__(self, uri: str):
        super().__init__()
        import MySQLdb

        self._mod = MySQLdb
        u = urlparse(uri)
        ssl = _mysql_tls(u)
        self._timeout = -1
        self._iso = "read-committed"  # the session's level, set below
        try:
            self._c = MySQLdb.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                                      user=unquote(u.username or ""), passwd=unquote(u.password or ""),
                                      db=u.path.lstrip("/"), charset="utf8mb4", autocommit=True,
                                      connect_timeout=5, **({"ssl": ssl} if ssl else {}))
            for s in ("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION,"
                      "ERROR_FOR_DIVISION_BY_ZERO'", "SET SESSION innodb_lock_wait_timeout = 10",
                      "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"):
                self._c.cursor().execute(s)
        except MySQLdb.Error as e:
            raise DbError(BROKEN, f"mysql: {redact(uri)}: {e}") from e

    def _classify(self, e: Exception) -> DbError:
        no = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        m = f"mysql: {e}"
        if no == 1062:
            return DbError(CONFLICT, m)
        if no in (1213, 1205, 1969, 3024, 1040):
            return DbError(RETRY, m)
        if 2000 <= no < 3000 or no == 1927 or isinstance(e, self._mod.InterfaceError):
            return DbError(BROKEN, m)
        return DbError(FAILED, m)

    def begin(self, iso: str = "read-committed", timeout_ms: int = 30000) -> None:
        if self._timeout != timeout_ms:
            self._run(f"SET SESSION max_statement_time = {timeout_ms / 1000:.3f}", ())
            self._timeout = timeout_ms
        if self._iso != iso:  # the session's level: a SET only on a change
            self._run(f"SET SESSION TRANSACTION ISOLATION LEVEL {ISOLATION[iso]}", ())
            self._iso = iso
        self._run("START TRANSACTION", ())

    def commit(self) -> None:
        self._run("COMMIT", ())

    def rollback(self) -> None:
        try:
            self._c.rollback()
        except self._mod.Error:
            pass

    def close(self) -> None:
        self._c.close()


def _query(u: Any, known: Sequence[str], what: str) -> dict:
    """The URI's query as a dict; an unknown option is an error, never ignored
    (a TLS option silently dropped would send a password in clear)."""
    q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    for k in q:
        if k not in known:
            raise DbError(FAILED, f"{what} URI: unknown option '{k}' (known: {', '.join(known)})")
    return q


def _mysql_tls(u: Any) -> Optional[dict]:
    """The C driver's options: ssl-mode DISABLED, REQUIRED (encrypted) or
    VERIFY_CA / VERIFY_IDENTITY (the server's certificate checked against
    ssl-ca), ssl-ca alone meaning verify. Debian 12's mysqlclient (1.4)
    cannot ask its client library to verify the server's certificate, so
    a verifying mode is refused here rather than weakened: the C and
    Node.js libraries verify it."""
    q = _query(u, ("ssl-mode", "ssl-ca", "ssl-cert", "ssl-key"), "mysql")
    mode = q.get("ssl-mode") or ("VERIFY_IDENTITY" if q.get("ssl-ca") else "DISABLED")
    if mode == "DISABLED":
        return None
    if mode in ("VERIFY_CA", "VERIFY_IDENTITY"):
        raise DbError(FAILED, f"mysql URI: ssl-mode {mode} (or ssl-ca alone): this Python MySQL driver cannot "
                              "verify the server's certificate; use the C or Node.js worker, or ssl-mode=REQUIRED "
                              "with a verified tunnel")
    if mode != "REQUIRED":
        raise DbError(FAILED, "mysql URI: ssl-mode must be DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY")
    # REQUIRED: encrypted; a cipher list makes the driver ask for TLS even
    # with no file given.
    ssl = {"cipher": "HIGH:!aNULL"}
    for k, v in (("ca", "ssl-ca"), ("cert", "ssl-cert"), ("key", "ssl-key")):
        if q.get(v):
            ssl[k] = q[v]
    return ssl


class RedisConn(Conn):
    """Redis: a "statement" is a Lua script run atomically with EVAL
    (EVALSHA once loaded), its ARGV the params; begin/commit are no-ops
    (a script is its own transaction)."""

    dialect = "redis"

    def __init__(self, uri: str):
        super().__init__()
        import redis

        self._mod = redis
        self._scripts: dict = {}
        # TLS as the C driver's: rediss:// with ?cacert=FILE (the CA that
        # signed the server's certificate, whose name is checked) and
        # cert/key for a client certificate.
        u = urlparse(uri)
        q = _query(u, ("cacert", "cert", "key"), "redis")
        if q and u.scheme != "rediss":
            raise DbError(FAILED, "redis URI: cacert, cert and key are for rediss:// (TLS)")
        tls = {}
        if u.scheme == "rediss":
            tls = {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": q.get("cacert"),
                   "ssl_certfile": q.get("cert"), "ssl_keyfile": q.get("key")}
        try:
            self._c = redis.Redis.from_url(u._replace(query="").geturl(), socket_timeout=30,
                                           socket_connect_timeout=10, **tls)
            self._c.ping()
        except redis.RedisError as e:
            raise DbError(BROKEN, f"redis: {redact(uri)}: {e}") from e

    def begin(self, iso: str = "read-committed", timeout_ms: int = 30000) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def execute(self, sql: str, *params: Any) -> List[Tuple[Any, ...]]:
        self.queries += 1
        script = self._scripts.get(sql)
        if script is None:
            script = self._scripts[sql] = self._c.register_script(sql)
        try:
            rep = script(keys=[], args=[str(p) if isinstance(p, int) else p for p in params])
        except (self._mod.ConnectionError, self._mod.TimeoutError) as e:
            raise DbError(BROKEN, f"redis: {e}") from e
        except self._mod.ResponseError as e:
            rc = RETRY if str(e).startswith(("BUSY", "LOADING", "TRYAGAIN")) else FAILED
            raise DbError(rc, f"redis: {e}") from e
        row = tuple(_text(x) for x in rep) if isinstance(rep, list) else (_text(rep),)
        self.rows = [row]
        self.rowcount = 0
        return self.rows

    def close(self) -> None:
        self._c.close()


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def connect(uri: str) -> Conn:
    """A connection for a URI; DbError (BROKEN) when it cannot be made."""
    if uri.startswith("sqlite:"):
        return SqliteConn(uri)
    if uri.startswith(("postgresql://", "postgres://")):
        return PgConn(uri)
    if uri.startswith("mysql://"):
        return MysqlConn(uri)
    if uri.startswith(("redis://", "rediss://")):
        return RedisConn(uri)
    raise DbError(FAILED, f"no driver for '{redact(uri)}' (sqlite:, postgresql://, mysql://, redis://)")


def backoff(t: int) -> None:
    """The pause before replaying a transaction the database refused."""
    import random

    time.sleep((0.005 * (1 << t)) + random.random() * 0.005)
