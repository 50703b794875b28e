'use strict';
// One interface over the databases a Node.js worker may use, as the C
// runtime's workers/wrk_db.h: SQL written once with `?` placeholders,
// values always bound as parameters (PostgreSQL: $n; MariaDB/MySQL:
// server-side prepared statements), and every error sorted into what the
// caller may do:
//   retry    transient (busy, deadlock, serialization failure, timeout)
//   failed   wrong for this data: it will fail again
//   broken   the connection is unusable: drop it
//   conflict a unique key exists
// URIs as the C runtime's: postgresql://..., mysql://USER:PASS@HOST:PORT/DB,
// redis://HOST:PORT/N. (SQLite is served by the C and Python workers.)
const crypto = require('crypto');
const fs = require('fs');

const RETRY = 'retry', FAILED = 'failed', BROKEN = 'broken', CONFLICT = 'conflict';
const ISOLATION = { 'read-committed': 'READ COMMITTED', 'repeatable-read': 'REPEATABLE READ', serializable: 'SERIALIZABLE' };

class DbError extends Error {
  constructor(rc, message) {
    super(message);
    this.rc = rc;
  }
}

const redact = (uri) => uri.replace(/(:\/\/[^:/@]*:)[^@]*@/, '$1***@');

function safeInt(v) {
  const b = BigInt(v);
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

// ---- PostgreSQL (pg) ----------------------------------------------------

function pgClassify(e, client) {
  const code = e.code || '';
  const m = `postgresql: ${e.message}`;
  if (!/^[0-9A-Z]{5}$/.test(code)) return new DbError(BROKEN, m); // no SQLSTATE: the connection
  if (code === '23505') return new DbError(CONFLICT, m);
  if (['40001', '40P01', '55P03', '57014'].includes(code) || code.startsWith('53')) return new DbError(RETRY, m);
  if (code.startsWith('08') || code.startsWith('57P')) return new DbError(BROKEN, m);
  return new DbError(FAILED, m);
}

// A step's view of a pooled client. What the session has been set to
// (its statement timeout) is kept on the client, which outlives the step,
// so a SET goes out only when it changes.
class PgConn {
  constructor(client) {
    this.c = client;
    this.dialect = 'postgresql';
    this.rows = [];
    this.rowCount = 0;
    this.queries = 0;
    this.broken = false;
    if (!client.zsaga) {
      client.zsaga = { timeout: -1 };
      client.on('error', () => { client.zsaga.broken = true; });
    }
  }
  async run(sql, params) {
    this.queries++;
    let n = 0;
    const text = params.length ? sql.replace(/\?/g, () => `$${++n}`) : sql;
    try {
      const values = params.map((p) => (typeof p === 'bigint' ? p.toString() : p));
      const r = await this.c.query({ text, values, rowMode: 'array' });
      this.rows = r.rows || [];
      this.rowCount = r.rowCount || 0;
      return this.rows;
    } catch (e) {
      const err = pgClassify(e);
      if (err.rc === BROKEN) this.broken = true;
      throw err;
    }
  }
  execute(sql, ...params) { return this.run(sql, params); }
  async begin(iso = 'read-committed', timeoutMs = 30000) {
    if (this.c.zsaga.timeout !== timeoutMs) {
      await this.run(`SET statement_timeout = ${Math.trunc(timeoutMs)}`, []);
      this.c.zsaga.timeout = timeoutMs;
    }
    await this.run(`BEGIN ISOLATION LEVEL ${ISOLATION[iso]}`, []);
  }
  commit() { return this.run('COMMIT', []); }
  async rollback() { try { await this.c.query('ROLLBACK'); } catch (e) { /* gone with the connection */ } }
  release() { this.c.release(this.broken || this.c.zsaga.broken ? new Error('broken') : undefined); }
}

class PgPool {
  constructor(uri, max) {
    const pg = require('pg');
    pg.types.setTypeParser(20, safeInt); // BIGINT: exact, as a number when safe
    this.pool = new pg.Pool({ connectionString: uri, max });
    this.pool.on('error', () => {}); // an idle client lost: dropped by the pool
    this.uri = uri;
    this.dialect = 'postgresql';
  }
  async acquire() {
    try {
      return new PgConn(await this.pool.connect());
    } catch (e) {
      throw new DbError(BROKEN, `postgresql: ${redact(this.uri)}: ${e.message}`);
    }
  }
  close() { return this.pool.end(); }
}

// ---- MariaDB / MySQL (mysql2) ---------------------------------------------

function myClassify(e) {
  const no = e.errno || 0;
  const m = `mysql: ${e.message}`;
  if (no === 1062) return new DbError(CONFLICT, m);
  if ([1213, 1205, 1969, 3024, 1040].includes(no)) return new DbError(RETRY, m);
  if (e.fatal || (no >= 2000 && no < 3000) || no === 1927 || !no) return new DbError(BROKEN, m);
  return new DbError(FAILED, m);
}

// As PgConn: the session's settings (statement timeout, isolation level)
// are kept on the pooled connection, and a SET goes out only on a change;
// the pool's new connections start at READ COMMITTED.
class MyConn {
  constructor(conn) {
    this.c = conn;
    this.dialect = 'mysql';
    this.rows = [];
    this.rowCount = 0;
    this.queries = 0;
    this.broken = false;
    const core = conn.connection;
    if (!core.zsaga) core.zsaga = { timeout: -1, iso: 'read-committed' };
    this.session = core.zsaga;
  }
  async run(sql, params) {
    this.queries++;
    try {
      // Statements with values are prepared server-side; transaction
      // control and savepoints (which cannot be prepared) go as text.
      const values = params.map((p) => (typeof p === 'bigint' ? p.toString() : p));
      const [r] = params.length ? await this.c.execute({ sql, rowsAsArray: true }, values)
                                : await this.c.query({ sql, rowsAsArray: true });
      this.rows = Array.isArray(r) ? r : [];
      this.rowCount = Array.isArray(r) ? r.length : r.affectedRows || 0;
      return this.rows;
    } catch (e) {
      const err = myClassify(e);
      if (err.rc === BROKEN) this.broken = true;
      throw err;
    }
  }
  execute(sql, ...params) { return this.run(sql, params); }
  async begin(iso = 'read-committed', timeoutMs = 30000) {
    if (this.session.timeout !== timeoutMs) {
      await this.run(`SET SESSION max_statement_time = ${(timeoutMs / 1000).toFixed(3)}`, []);
      this.session.timeout = timeoutMs;
    }
    if (this.session.iso !== iso) {
      await this.run(`SET SESSION TRANSACTION ISOLATION LEVEL ${ISOLATION[iso]}`, []);
      this.session.iso = iso;
    }
    await this.run('START TRANSACTION', []);
  }
  commit() { return this.run('COMMIT', []); }
  async rollback() { try { await this.c.query('ROLLBACK'); } catch (e) { /* gone with the connection */ } }
  release() {
    if (this.broken) this.c.destroy();
    else this.c.release();
  }
}

// The URI's options; an unknown one is an error, never ignored (a TLS
// option silently dropped would send a password in clear).
function options(u, known, what) {
  const q = {};
  for (const [k, v] of u.searchParams) {
    if (!known.includes(k)) throw new DbError(FAILED, `${what} URI: unknown option '${k}' (known: ${known.join(', ')})`);
    q[k] = v;
  }
  return q;
}

// TLS as the C driver's: ssl-mode DISABLED, REQUIRED (encrypted) or
// VERIFY_CA / VERIFY_IDENTITY (the certificate checked against ssl-ca and
// the server's name: Node's TLS checks both), ssl-ca alone meaning verify.
function mysqlTls(u) {
  const q = options(u, ['ssl-mode', 'ssl-ca', 'ssl-cert', 'ssl-key'], 'mysql');
  const mode = q['ssl-mode'] || (q['ssl-ca'] ? 'VERIFY_IDENTITY' : 'DISABLED');
  if (mode === 'DISABLED') return undefined;
  const verify = mode === 'VERIFY_CA' || mode === 'VERIFY_IDENTITY';
  if (!verify && mode !== 'REQUIRED') throw new DbError(FAILED, 'mysql URI: ssl-mode must be DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY');
  if (verify && !q['ssl-ca']) throw new DbError(FAILED, `mysql URI: ssl-mode ${mode} needs ssl-ca=FILE`);
  const tls = { rejectUnauthorized: verify };
  for (const [k, o] of [['ca', 'ssl-ca'], ['cert', 'ssl-cert'], ['key', 'ssl-key']]) if (q[o]) tls[k] = fs.readFileSync(q[o]);
  return tls;
}

class MyPool {
  constructor(uri, max) {
    const mysql = require('mysql2/promise');
    const u = new URL(uri);
    this.uri = uri;
    this.dialect = 'mysql';
    this.pool = mysql.createPool({
      ssl: mysqlTls(u), connectTimeout: 5000,
      host: u.hostname || '127.0.0.1', port: Number(u.port || 3306), user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password), database: u.pathname.slice(1), connectionLimit: max,
      // Changed rows, not matched rows: the barrier's INSERT .. ON
      // DUPLICATE KEY UPDATE counts 1 for a new row, 0 for one that was there.
      flags: ['-FOUND_ROWS'], supportBigNumbers: true, bigNumberStrings: false, charset: 'utf8mb4',
    });
    this.pool.pool.on('connection', (c) => {
      c.query("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'");
      c.query('SET SESSION innodb_lock_wait_timeout = 10');
      c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    });
  }
  async acquire() {
    try {
      return new MyConn(await this.pool.getConnection());
    } catch (e) {
      throw new DbError(BROKEN, `mysql: ${redact(this.uri)}: ${e.message}`);
    }
  }
  close() { return this.pool.end(); }
}

// ---- Redis (ioredis) ------------------------------------------------------

class RedisConn {
  constructor(r, pool) {
    this.r = r;
    this.pool = pool;
    this.dialect = 'redis';
    this.rows = [];
    this.rowCount = 0;
    this.queries = 0;
    this.broken = false;
  }
  // A "statement" is a Lua script, run atomically (EVALSHA, loaded once).
  async execute(script, ...params) {
    this.queries++;
    const sha = crypto.createHash('sha1').update(script).digest('hex');
    const args = params.map((p) => (typeof p === 'bigint' || typeof p === 'number' ? String(p) : p));
    let rep;
    try {
      try {
        rep = await this.r.evalsha(sha, 0, ...args);
      } catch (e) {
        if (!String(e.message).startsWith('NOSCRIPT')) throw e;
        rep = await this.r.eval(script, 0, ...args);
      }
    } catch (e) {
      if (e.name === 'ReplyError') {
        const rc = /^(BUSY|LOADING|TRYAGAIN)/.test(e.message) ? RETRY : FAILED;
        throw new DbError(rc, `redis: ${e.message}`);
      }
      this.broken = true;
      // The connection's own error (a refused certificate, say) says more
      // than the command's "max retries".
      throw new DbError(BROKEN, `redis: ${e.message}${this.pool.lastError ? ` (${this.pool.lastError})` : ''}`);
    }
    this.rows = [Array.isArray(rep) ? rep : [rep]];
    return this.rows;
  }
  async begin() {}
  async commit() {}
  async rollback() {}
  release() {}
}

class RedisPool {
  constructor(uri) {
    const Redis = require('ioredis');
    this.dialect = 'redis';
    // TLS as the C driver's: rediss:// with ?cacert=FILE (the CA that
    // signed the server's certificate; Node's TLS checks its name too) and
    // cert/key for a client certificate.
    const u = new URL(uri);
    const q = options(u, ['cacert', 'cert', 'key'], 'redis');
    if (Object.keys(q).length && u.protocol !== 'rediss:') throw new DbError(FAILED, 'redis URI: cacert, cert and key are for rediss:// (TLS)');
    const tls = {};
    for (const [k, o] of [['ca', 'cacert'], ['cert', 'cert'], ['key', 'key']]) if (q[o]) tls[k] = fs.readFileSync(q[o]);
    u.search = '';
    // One connection: Redis runs one script at a time anyway, and
    // commands from concurrent steps pipeline on it.
    this.r = new Redis(u.toString(), { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false,
      connectTimeout: 10000, ...(u.protocol === 'rediss:' ? { tls } : {}) });
    this.lastError = null;
    // It reconnects on its own; a failed command says why.
    this.r.on('error', (e) => { this.lastError = e.message; });
    this.r.on('ready', () => { this.lastError = null; });
  }
  async acquire() { return new RedisConn(this.r, this); }
  close() { this.r.disconnect(); }
}

/** A pool of up to max connections for a URI; DbError when the URI is wrong. */
function pool(uri, max) {
  try {
    if (/^postgres(ql)?:\/\//.test(uri)) return new PgPool(uri, max);
    if (uri.startsWith('mysql://')) return new MyPool(uri, max);
    if (/^rediss?:\/\//.test(uri)) return new RedisPool(uri);
  } catch (e) {
    throw e instanceof DbError ? e : new DbError(FAILED, `${redact(uri)}: ${e.message}`);
  }
  throw new DbError(FAILED, `no driver for '${redact(uri)}' (postgresql://, mysql://, redis://)`);
}

module.exports = { pool, DbError, redact, ISOLATION, RETRY, FAILED, BROKEN, CONFLICT };
