'use strict';
// The worker: run a system's operations for zsagad, each as one local
// transaction behind the barrier, with the C runtime's protocol, options
// and rules (workers/wrk_runtime.h and workers/wrk_step.h; docs/protocol.md,
// "Workers"). The barrier, as workers/wrk_step.c:
//   action        insert (saga, step, "action", running); on conflict
//                 answer what the row says (done: its output; failed: its
//                 failure; blocked: refused, the compensation ran first).
//                 Else run the operation under a savepoint; success marks
//                 the row done with the output; failure rolls back to the
//                 savepoint and marks it failed; commit.
//   compensation  insert (saga, step, "action", blocked): if it went in,
//                 the action never ran and never will: a null compensation.
//                 Else insert (saga, step, "compensation"): a conflict is a
//                 duplicate; else undo if the action is done; commit.
// On Redis the barrier and the effect are one Lua script (ctx.lua).
//
//   const w = new Worker('notify', { migrations: [...] });
//   w.operation('send', { params: 'customer:str text:str' }, async (ctx) => {
//     await ctx.db.execute('INSERT INTO outbox (saga, step) VALUES (?, ?)', ctx.saga, ctx.step);
//     return { message_id: `${ctx.saga}/${ctx.step}` };
//   });
//   w.main().then((code) => process.exit(code));
//
// An operation resolves to its output (a flat map), throws Fail(code,
// message) to fail for good, or RetryLater(message). Steps run
// concurrently up to --capacity, each on its own pooled connection.
// SIGTERM or SIGINT: stop taking work, finish what is held, exit 0.
const fs = require('fs');
const os = require('os');
const { parseArgs } = require('util');
const zmq = require('zeromq');
const { pack, unpack } = require('./wire');
const barrier = require('./barrier');
const zdb = require('./db');
const schema = require('./schema');
const { curveClient } = require('./keys');
const { Fail, RetryLater } = require('./errors');

const OK = 'ok', FAILED = 'failed', RETRY = 'retry';
const LOCAL_TRIES = 5;
const VERSION = 'node_0_1_0';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- failure injection, as workers/wrk_fault.h ------------------------------
const FAULT_KINDS = ['fail', 'retry', 'delay', 'crash-before-commit', 'crash-after-commit'];

function parseFaults(spec) {
  const rules = [];
  for (const r of (spec || '').split(';').map((x) => x.trim()).filter(Boolean)) {
    const eq = r.indexOf('=');
    const kind = eq < 0 ? r : r.slice(0, eq);
    if (eq < 0 || !FAULT_KINDS.includes(kind)) throw new Error(`fault kind '${kind}' unknown (${FAULT_KINDS.join(', ')})`);
    const [op, arg] = r.slice(eq + 1).split(':');
    rules.push({ kind, op, arg: arg !== undefined ? Number(arg) : kind === 'delay' ? 0 : 1 });
  }
  return rules;
}
const findFault = (rules, kind, op) => rules.find((r) => r.kind === kind && (r.op === op || r.op === '*'));
function crashPoint(rules, kind, op) {
  const r = findFault(rules, kind, op);
  if (r && Math.random() < r.arg) process.kill(process.pid, 'SIGKILL');
}

// ---- the step context --------------------------------------------------------
class Dup {
  constructor(status, code = '', message = '', output = null) {
    Object.assign(this, { status, code, message, output });
  }
}
class Settled extends Fail {} // Redis: the script already recorded this failure

class StepContext {
  constructor(db, job, phase, op, faults) {
    this.db = db;
    this.dialect = db.dialect;
    this.saga = job.id;
    this.step = job.step;
    this.op = op;
    this.phase = phase;
    this.attempt = job.attempt || 1;
    this.params = job.params || {};
    this.nowMs = Date.now();
    this.prior = {}; // a compensation: the action's output
    this.faults = faults;
    this.luaResult = null;
  }
  get_(key, type, tname, def, required) {
    const v = this.params[key];
    if (v === undefined || v === null) {
      if (required) throw new Fail('bad_params', `params.${key}: required ${tname} is missing`);
      return def;
    }
    const ok = type === 'int' ? typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)) : typeof v === type;
    if (!ok) throw new Fail('bad_params', `params.${key}: must be ${tname === 'integer' ? 'an' : 'a'} ${tname}`);
    return v;
  }
  /** Required string (a default makes it optional). Fail bad_params otherwise. */
  str(key, def) {
    const v = this.get_(key, 'string', 'string', def, def === undefined);
    if (def === undefined && !v) throw new Fail('bad_params', `params.${key}: required string is missing`);
    return v;
  }
  int(key, def) { return this.get_(key, 'int', 'integer', def, def === undefined); }
  bool(key, def = false) { return this.get_(key, 'boolean', 'boolean', def, false); }
  /** A positive amount in minor units, at most 10^15. */
  amount(key) {
    const v = this.int(key);
    if (v <= 0 || v > 1e15) throw new Fail('bad_params', `params.${key}: amount must be between 1 and 10^15 minor units`);
    return v;
  }
  /** Redis: run the effect inside the barrier script (WRK_LUA_STEP): its output, or Fail. */
  async lua(effect, args = []) {
    if (this.dialect !== 'redis') throw new Fail('unsupported', 'lua() is for Redis');
    if (args.length > schema.MAX_PARAMS) throw new Fail('bad_params', 'too many script arguments');
    crashPoint(this.faults, 'crash-before-commit', this.op);
    const [row] = await this.db.execute(barrier.luaStep(effect), this.saga, this.step, this.phase, this.op, this.nowMs, ...args);
    this.luaResult = { ran: true };
    return luaAnswer(this, row.map((x) => (typeof x === 'number' ? x : String(x))));
  }
}

const luaOut = (v) => (typeof v === 'number' ? v : v[0] === 'i' ? Number(v.slice(1)) : v.slice(1));

// The barrier script's answer, read as wrk_step_lua reads it.
function luaAnswer(ctx, row) {
  let status = String(row[0]), at = 1, dup = false;
  if (status === 'dup') [dup, status, at] = [true, String(row[1]), 2];
  else crashPoint(ctx.faults, 'crash-after-commit', ctx.op);
  if (row.length < at + 2) throw new Fail('db_error', 'redis: the barrier script gave a short answer');
  const code = String(row[at] || ''), message = String(row[at + 1] || '');
  const out = {};
  for (let i = at + 2; i + 1 < row.length; i += 2) out[String(row[i])] = luaOut(row[i + 1]);
  if (status === 'done' || status === 'null') {
    if (dup) throw new Dup(OK, code, message, out);
    ctx.luaResult = { ran: true, code, message };
    return out;
  }
  if (status === 'blocked') {
    const refused = 'refused: the compensation of this step already ran';
    if (dup) throw new Dup(FAILED, 'compensated', refused);
    throw new Fail('compensated', refused);
  }
  if (status === 'failed') {
    if (dup) throw new Dup(FAILED, code, message);
    throw new Settled(code, message);
  }
  throw new Fail('db_error', `redis: the barrier script answered '${status}'`);
}

function dbOutcome(e) {
  if (e.rc === zdb.RETRY) return { status: RETRY, code: 'db_busy', message: e.message, transient: true };
  if (e.rc === zdb.BROKEN) return { status: RETRY, code: 'db_unavailable', message: e.message, broken: true };
  return { status: FAILED, code: 'db_error', message: e.message };
}

function checkOutput(out) {
  if (out === undefined || out === null) return {};
  try {
    schema.checkValueForm('output', out);
  } catch (e) {
    throw new Fail('bad_output', e.message);
  }
  return out;
}

const unpackOutput = (blob) => (blob === null || blob === undefined ? null : unpack(blob));
const ISO_ORDER = Object.keys(zdb.ISOLATION);

// ---- one step behind the barrier, as wrk_step_run ----------------------------
class Step {
  constructor(ctx, op, iso, timeoutMs) {
    this.ctx = ctx;
    this.op = op;
    this.timeoutMs = timeoutMs;
    this.iso = op.isolation && ISO_ORDER.indexOf(op.isolation) > ISO_ORDER.indexOf(iso) ? op.isolation : iso;
  }

  async handler() {
    const { ctx } = this;
    const d = findFault(ctx.faults, 'delay', ctx.op);
    if (d) await sleep(d.arg);
    if (findFault(ctx.faults, 'fail', ctx.op)) throw new Fail('injected', `injected failure of ${ctx.op}`);
    const r = findFault(ctx.faults, 'retry', ctx.op);
    if (r && ctx.attempt <= r.arg) throw new RetryLater(`injected retry of ${ctx.op} (try ${ctx.attempt})`);
    return checkOutput(await this.op.fn(ctx));
  }

  async runHandler() {
    try {
      return { status: OK, output: await this.handler() };
    } catch (e) {
      if (e instanceof Dup) throw e;
      if (e instanceof Fail) return { status: FAILED, code: String(e.code).slice(0, 32), message: e.detail };
      if (e instanceof RetryLater) return { status: RETRY, code: 'retry', message: e.detail };
      if (e instanceof zdb.DbError) return dbOutcome(e);
      throw e;
    }
  }

  async markCommit(phase, state, out, withOutput) {
    const { ctx } = this;
    const blob = withOutput ? pack(out.output || {}) : null;
    crashPoint(ctx.faults, 'crash-before-commit', ctx.op);
    await ctx.db.execute(barrier.MARK_SQL, state, blob, out.code || null, out.message || null, ctx.saga, ctx.step, phase);
    await ctx.db.commit();
    crashPoint(ctx.faults, 'crash-after-commit', ctx.op);
    return out;
  }

  async select(phase) {
    const { ctx } = this;
    const [row] = await ctx.db.execute(barrier.SELECT_SQL, ctx.saga, ctx.step, phase);
    if (!row) throw new zdb.DbError(zdb.FAILED, 'the barrier row vanished');
    return row;
  }

  async action() {
    const { ctx } = this, { db } = ctx;
    await db.begin(this.iso, this.timeoutMs);
    await db.execute(barrier.INSERT_SQL[db.dialect], ctx.saga, ctx.step, 'action', 'running', ctx.op, ctx.nowMs);
    if (db.rowCount === 0) {
      const [state, blob, code, message] = await this.select('action');
      await db.rollback();
      if (state === 'done') throw new Dup(OK, code || '', message || '', unpackOutput(blob));
      if (state === 'blocked') throw new Dup(FAILED, 'compensated', 'refused: the compensation of this step already ran');
      throw new Dup(FAILED, code || '', message || '');
    }
    await db.execute('SAVEPOINT zsaga_op');
    const out = await this.runHandler();
    if (out.status === OK) return this.markCommit('action', 'done', out, true);
    if (out.status === FAILED && !out.transient && !out.broken) {
      // Failed for good: undo the effect, keep the verdict.
      await db.execute('ROLLBACK TO SAVEPOINT zsaga_op');
      return this.markCommit('action', 'failed', out, false);
    }
    await db.rollback();
    return out;
  }

  async compensate() {
    const { ctx } = this, { db } = ctx;
    const ins = barrier.INSERT_SQL[db.dialect];
    await db.begin(this.iso, this.timeoutMs);
    await db.execute(ins, ctx.saga, ctx.step, 'action', 'blocked', ctx.op, ctx.nowMs);
    if (db.rowCount === 1) {
      // The action never ran, and the row just written stops it for good.
      await db.execute(ins, ctx.saga, ctx.step, 'compensation', 'null', ctx.op, ctx.nowMs);
      crashPoint(ctx.faults, 'crash-before-commit', ctx.op);
      await db.commit();
      crashPoint(ctx.faults, 'crash-after-commit', ctx.op);
      return { status: OK, message: 'null compensation: the action never ran', output: {} };
    }
    await db.execute(ins, ctx.saga, ctx.step, 'compensation', 'running', ctx.op, ctx.nowMs);
    if (db.rowCount === 0) {
      await this.select('compensation');
      await db.rollback();
      throw new Dup(OK);
    }
    const [state, blob] = await this.select('action');
    if (state !== 'done')
      return this.markCommit('compensation', 'null', { status: OK, message: 'nothing to undo: the action did not apply', output: {} }, false);
    ctx.prior = unpackOutput(blob) || {};
    await db.execute('SAVEPOINT zsaga_op');
    const out = await this.runHandler();
    if (out.status !== OK) {
      // A failed compensation is not recorded: it must stay possible to run it again.
      await db.rollback();
      return out;
    }
    return this.markCommit('compensation', 'done', out, true);
  }

  async redis() {
    const { ctx } = this;
    ctx.luaResult = null;
    const out = await this.runHandler();
    if (out.status === OK && !ctx.luaResult)
      return { status: FAILED, code: 'unsupported', message: `operation ${ctx.op} has no Redis implementation` };
    if (out.status === OK) [out.code, out.message] = [ctx.luaResult.code || '', ctx.luaResult.message || ''];
    return out;
  }

  async run() {
    let out = { status: RETRY };
    let replays = 0;
    for (let t = 0; t < LOCAL_TRIES; t++) {
      try {
        if (this.ctx.dialect === 'redis') out = await this.redis();
        else if (this.ctx.phase === 'action') out = await this.action();
        else out = await this.compensate();
      } catch (e) {
        if (e instanceof Dup) out = { status: e.status, code: e.code, message: e.message, output: e.output, duplicate: true };
        else if (e instanceof zdb.DbError) {
          await this.ctx.db.rollback();
          out = dbOutcome(e);
        } else throw e;
      }
      if (out.status !== RETRY || !out.transient || out.broken) break;
      // Busy, deadlock, serialization failure: replay the whole transaction here.
      replays++;
      await sleep(5 * (1 << t) + Math.random() * 5);
    }
    out.replays = replays;
    if (out.status === OK && !out.duplicate && !out.output) out.output = {};
    return out;
  }
}

// ---- migrations, as workers/wrk_migrate.c ----------------------------------
const SCHEMA_DDL = 'CREATE TABLE IF NOT EXISTS zsaga_schema (version INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, applied_ms BIGINT NOT NULL)';
const REDIS_VERSION = "local m = -1\nfor _, k in ipairs(redis.call('HKEYS', 'zsaga:schema')) do\n  if tonumber(k) > m then m = tonumber(k) end\nend\nreturn m";
const REDIS_RECORD = "if ARGV[3] == '1' then return redis.call('HSET', 'zsaga:schema', ARGV[1], ARGV[2]) end\nreturn redis.call('HDEL', 'zsaga:schema', ARGV[1])";

async function schemaVersion(db) {
  if (db.dialect === 'redis') return Number((await db.execute(REDIS_VERSION))[0][0]);
  await db.execute(SCHEMA_DDL);
  const [row] = await db.execute('SELECT MAX(version) FROM zsaga_schema');
  return row && row[0] !== null ? Number(row[0]) : -1;
}

async function apply(db, version, name, sql, up, log) {
  try {
    await db.begin();
    if (db.dialect === 'redis') {
      await db.execute(sql);
      await db.execute(REDIS_RECORD, version, name, up ? 1 : 0);
    } else {
      for (const st of sql.split(';').map((s) => s.trim()).filter(Boolean)) await db.execute(st);
      if (up) await db.execute('INSERT INTO zsaga_schema (version, name, applied_ms) VALUES (?, ?, ?)', version, name, Date.now());
      else await db.execute('DELETE FROM zsaga_schema WHERE version = ?', version);
    }
    await db.commit();
  } catch (e) {
    await db.rollback();
    throw new zdb.DbError(e.rc || zdb.FAILED, `migration ${version} (${name}) ${up ? 'up' : 'down'} failed: ${e.message}`);
  }
  log('info', `migrated ${up ? 'up to' : 'down from'} ${version}: ${name}`);
}

async function migrateUp(db, migrations, target = -1, log = () => {}) {
  const cur = await schemaVersion(db);
  if (cur < 0) await apply(db, 0, 'zsaga barrier', barrier.DDL[db.dialect], true, log);
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= cur || (target >= 0 && m.version > target)) continue;
    if (!(db.dialect in m.up)) throw new zdb.DbError(zdb.FAILED, `migration ${m.version} (${m.name}) has no SQL for this database`);
    await apply(db, m.version, m.name, m.up[db.dialect], true, log);
  }
}

async function migrateDown(db, migrations, target, log = () => {}) {
  const cur = await schemaVersion(db);
  for (const m of [...migrations].sort((a, b) => b.version - a.version)) {
    if (m.version > cur || m.version <= target) continue;
    if (!m.down || !(db.dialect in m.down)) throw new zdb.DbError(zdb.FAILED, `migration ${m.version} (${m.name}) cannot be reverted`);
    await apply(db, m.version, m.name, m.down[db.dialect], false, log);
  }
}

// ---- the worker ------------------------------------------------------------
const cut = (s, n) => {
  const b = Buffer.from(String(s));
  return b.length <= n ? String(s) : b.subarray(0, n).toString().replace(/\uFFFD$/, '');
};

class Worker {
  /** system: its name, as sagas name it. options.migrations: [{version, name, up: {dialect: sql}, down}]. */
  constructor(system, { migrations = [] } = {}) {
    if (!schema.NAME_RE.test(system)) throw new Error(`system name '${system}' must be 1-32 of a-z 0-9 _`);
    this.system = system;
    this.migrations = migrations;
    this.ops = new Map();
    this.counts = { steps_ok: 0, steps_failed: 0, steps_retry: 0, duplicates: 0, db_replays: 0, queries: 0, connect_failures: 0 };
    this.stopping = false;
    this.logLevel = 2;
  }

  /**
   * Register an operation. spec: params/outputs (schema text, sent in
   * `ready`), isolation (when it needs more than the worker's), rule,
   * errors. fn(ctx) resolves to the output map.
   */
  operation(name, spec, fn) {
    if (typeof spec === 'function') [spec, fn] = [{}, spec];
    if (!schema.NAME_RE.test(name)) throw new Error(`operation name '${name}' must be 1-32 of a-z 0-9 _`);
    for (const t of [spec.params, spec.outputs]) if (t !== undefined && t !== null) schema.parse(t);
    if (spec.isolation && !(spec.isolation in zdb.ISOLATION)) throw new Error(`isolation '${spec.isolation}': read-committed, repeatable-read or serializable`);
    this.ops.set(name, { name, fn, ...spec });
    return this;
  }

  log(level, msg) {
    const n = { error: 0, warn: 1, info: 2, debug: 3 }[level];
    if (n <= this.logLevel) process.stderr.write(`${new Date().toISOString()} ${level} ${this.system}: ${msg}\n`);
  }

  /** Stop taking work; run() resolves once held steps are answered. */
  stop() { this.stopping = true; }

  /** Run one execute or compensate message: [result message, outcome]. */
  async execute(db, job, cfg) {
    const phase = job.type === 'compensate' ? 'compensation' : 'action';
    const op = this.ops.get(job.op);
    let out;
    if (!op) out = { status: FAILED, code: 'unknown_operation', message: `system ${this.system} has no operation ${job.op}` };
    else if (!job.params || typeof job.params !== 'object' || Array.isArray(job.params)) out = { status: FAILED, code: 'bad_params', message: 'params must be a map' };
    else {
      const q0 = db.queries;
      out = await new Step(new StepContext(db, job, phase, op.name, cfg.faults), op, cfg.isolation, cfg.statementTimeout).run();
      this.counts.queries += db.queries - q0;
    }
    this.counts[`steps_${out.status}`]++;
    if (out.duplicate) this.counts.duplicates++;
    this.counts.db_replays += out.replays || 0;
    const res = { v: 1, type: 'result', id: job.id, step: job.step, phase, attempt: job.attempt || 1, status: out.status };
    if (out.code) res.code = cut(out.code, 32);
    if (out.message) res.message = cut(out.message, 1024);
    if (out.status === OK && out.output) res.output = out.output;
    if (job.lease) res.lease = job.lease;
    return [res, out];
  }

  parse(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        db: { type: 'string', default: `postgresql://127.0.0.1/${this.system}` },
        'db-file': { type: 'string' },
        orchestrator: { type: 'string', default: 'tcp://127.0.0.1:5571' },
        key: { type: 'string' }, 'server-key': { type: 'string' }, insecure: { type: 'boolean', default: false },
        instance: { type: 'string', default: `${this.system}-${os.hostname()}-${process.pid}` },
        capacity: { type: 'string', default: '8' }, heartbeat: { type: 'string', default: '1000' },
        'statement-timeout': { type: 'string', default: '30000' }, isolation: { type: 'string', default: 'read-committed' },
        fault: { type: 'string', default: process.env.ZSAGA_FAULTS || '' }, 'no-migrate': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false }, 'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', default: false },
      },
    });
    const cfg = {
      command: positionals[0] || 'run', args: positionals.slice(1),
      db: values['db-file'] ? readSecret(values['db-file']) : values.db, orchestrator: values.orchestrator,
      key: values.key, serverKey: values['server-key'], insecure: values.insecure, instance: values.instance,
      capacity: Number(values.capacity), heartbeat: Number(values.heartbeat), statementTimeout: Number(values['statement-timeout']),
      isolation: values.isolation, faults: parseFaults(values.fault), migrate: !values['no-migrate'], force: values.force,
      logLevel: values['log-level'], help: values.help,
    };
    if (!['run', 'migrate'].includes(cfg.command)) throw new Error(`unknown command '${cfg.command}' (run, migrate)`);
    if (!(cfg.capacity >= 1 && cfg.capacity <= 256)) throw new Error('--capacity must be 1-256');
    if (!(cfg.isolation in zdb.ISOLATION)) throw new Error('--isolation: read-committed, repeatable-read or serializable');
    if (cfg.command === 'run' && !cfg.insecure && (!cfg.key || !cfg.serverKey))
      throw new Error('no key given: --key FILE and --server-key FILE (or --insecure for a plaintext test setup)');
    return cfg;
  }

  /** The worker program: `run` (default) or `migrate status|up|down [VERSION]`. Resolves to the exit code. */
  async main(argv = process.argv.slice(2)) {
    let cfg;
    try {
      cfg = this.parse(argv);
    } catch (e) {
      process.stderr.write(`zsaga-worker-${this.system}: ${e.message}\n`);
      return 2;
    }
    if (cfg.help) {
      process.stdout.write(`usage: zsaga-worker-${this.system} [run|migrate status|up|down [VERSION]] --db URI --orchestrator EP\n` +
        '  --db-file FILE, --key FILE --server-key FILE | --insecure, --instance ID, --capacity N, --heartbeat MS,\n' +
        '  --statement-timeout MS, --isolation LEVEL, --fault SPEC, --no-migrate, --force, --log-level LEVEL\n');
      return 0;
    }
    this.logLevel = { error: 0, warn: 1, info: 2, debug: 3 }[cfg.logLevel] ?? 2;
    return cfg.command === 'migrate' ? this.migrateCommand(cfg) : this.run(cfg);
  }

  async migrateCommand(cfg) {
    let pool, db;
    try {
      pool = zdb.pool(cfg.db, 1);
    } catch (e) {
      process.stderr.write(`zsaga-worker-${this.system}: ${e.message}\n`);
      return 1;
    }
    try {
      db = await pool.acquire();
      const sub = cfg.args[0] || 'status';
      const target = cfg.args[1] !== undefined ? Number(cfg.args[1]) : -1;
      if (sub === 'up') await migrateUp(db, this.migrations, target, (l, m) => this.log(l, m));
      else if (sub === 'down') {
        if (target < 0 || !cfg.force) {
          process.stderr.write('migrate down needs VERSION and --force (it drops data)\n');
          return 2;
        }
        await migrateDown(db, this.migrations, target, (l, m) => this.log(l, m));
      }
      const cur = await schemaVersion(db);
      process.stdout.write(`schema version: ${cur}\n`);
      for (const m of this.migrations) process.stdout.write(`  ${String(m.version).padStart(3)}  ${m.version <= cur ? 'applied' : 'pending'}  ${m.name}\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`zsaga-worker-${this.system}: ${e.message}\n`);
      return 1;
    } finally {
      if (db) db.release();
      await pool.close();
    }
  }

  readyMsg(cfg) {
    const schemas = {};
    for (const [n, o] of this.ops) schemas[n] = { params: o.params || '', outputs: o.outputs || '' };
    return pack({ v: 1, type: 'ready', system: this.system, instance: cfg.instance, capacity: cfg.capacity,
      operations: [...this.ops.keys()], version: VERSION, schemas });
  }

  async run(cfg) {
    if (!this.ops.size) {
      this.log('error', 'no operations registered');
      return 2;
    }
    let pool;
    try {
      pool = zdb.pool(cfg.db, cfg.capacity);
    } catch (e) {
      this.log('error', e.message);
      return 1;
    }
    if (cfg.migrate) {
      let db;
      try {
        db = await pool.acquire();
        await migrateUp(db, this.migrations, -1, (l, m) => this.log(l, m));
      } catch (e) {
        this.log('error', e.message);
        if (db) db.release();
        await pool.close();
        return 1;
      }
      db.release();
    }
    const orch = [];
    try {
      for (const ep of cfg.orchestrator.split(',').map((e) => e.trim()).filter(Boolean)) {
        // A send waits for a connection at most 2 s: with zsagad away, a
        // result is dropped (zsagad sends the step again) rather than a
        // shutdown waiting for ever.
        const s = new zmq.Dealer({ linger: 2000, sendTimeout: 2000 });
        curveClient(s, cfg.key, cfg.serverKey, cfg.insecure);
        s.connect(ep);
        orch.push({ sock: s, queue: Promise.resolve() });
      }
    } catch (e) {
      this.log('error', e.message);
      for (const o of orch) o.sock.close();
      await pool.close();
      return 1;
    }
    // A zeromq socket takes one send at a time: each has its own chain.
    const send = (o, body) => {
      o.queue = o.queue.then(() => o.sock.send(body)).catch(() => {});
      return o.queue;
    };
    const onSignal = () => this.stop();
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    const ready = this.readyMsg(cfg);
    let inflight = 0, rc = 0;
    const backlog = [];
    let active = 0;
    const pump = () => {
      while (active < cfg.capacity && backlog.length) {
        const [o, job] = backlog.shift();
        active++;
        this.runJob(pool, job, cfg).then((res) => send(o, pack(res))).finally(() => {
          active--;
          inflight--;
          pump();
        });
      }
    };
    for (const o of orch) send(o, ready);
    this.log('info', `ready: ${this.system} as ${cfg.instance}, capacity ${cfg.capacity}, database ${zdb.redact(cfg.db)}`);
    const heartbeat = () => {
      const body = pack({ v: 1, type: 'heartbeat', inflight, metrics: { ...this.counts, pool_max: cfg.capacity, pool_active: active } });
      for (const o of orch) send(o, body);
    };
    heartbeat();
    const hb = setInterval(heartbeat, cfg.heartbeat);
    const receivers = orch.map(async (o) => {
      o.sock.receiveTimeout = 200;
      while (!this.stopping || inflight > 0) {
        let frames;
        try {
          frames = await o.sock.receive();
        } catch (e) {
          if (e.code === 'EAGAIN') continue;
          break;
        }
        let m;
        try {
          m = unpack(frames[0]);
        } catch (e) {
          this.log('warn', 'dropped a message that is not msgpack');
          continue;
        }
        if (m.type === 'execute' || m.type === 'compensate') {
          if (!jobOk(m)) {
            this.log('warn', `dropped a bad job: ${JSON.stringify(m, (k, v) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 200)}`);
            continue;
          }
          if (this.stopping) continue; // stopping: zsagad sends it to another instance
          inflight++;
          backlog.push([o, m]);
          pump();
        } else if (m.type === 'heartbeat') {
          if (!m.boot) send(o, ready); // zsagad does not know us: register again
        } else if (m.type === 'error') {
          this.log('error', `zsagad refused this worker: ${m.code}: ${m.reason}`);
          if (m.code !== 'journal_full') {
            this.stop();
            rc = 1;
          }
        }
      }
    });
    await Promise.all(receivers);
    clearInterval(hb);
    await Promise.all(orch.map((o) => o.queue));
    for (const o of orch) o.sock.close();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await pool.close();
    this.log('info', 'stopped');
    return rc;
  }

  async runJob(pool, job, cfg) {
    let db;
    try {
      db = await pool.acquire();
    } catch (e) {
      this.counts.connect_failures++;
      return retryResult(job, `no database connection: ${e.message}`);
    }
    try {
      const [res] = await this.execute(db, job, cfg);
      return res;
    } catch (e) {
      // A bug in an operation: answer, keep serving.
      this.log('error', `operation ${job.op} threw: ${e.stack || e}`);
      await db.rollback();
      return { ...retryResult(job, `the worker threw ${e.name}: ${e.message}`), status: FAILED, code: 'worker_error' };
    } finally {
      db.release();
    }
  }
}

// The first line of a file only its owner may read (as zcfg_read_secret):
// a database URI with its password, kept out of ps.
function readSecret(path) {
  let fd;
  try {
    fd = fs.openSync(path, 'r');
    const mode = fs.fstatSync(fd).mode;
    if (mode & 0o077)
      throw new Error(`${path} holds a secret and may be read by others (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}): chmod 600 it`);
    const line = fs.readFileSync(fd, 'utf8').split(/\r?\n/)[0];
    if (!line) throw new Error(`${path} is empty`);
    return line;
  } catch (e) {
    throw new Error(e.code ? `${path}: ${e.message}` : e.message);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// The fields a step needs, of the right types (zsagad checks its own
// messages; one that lacks them is dropped, as the C runtime's strict
// decoder drops it).
function jobOk(m) {
  const str = (v) => typeof v === 'string' && v.length > 0;
  const params = m.params === undefined ? {} : m.params;
  return str(m.id) && str(m.step) && str(m.op) && Number.isInteger(m.attempt) &&
    params !== null && typeof params === 'object' && !Array.isArray(params);
}

function retryResult(job, message) {
  const res = { v: 1, type: 'result', id: job.id || '', step: job.step || '', phase: job.type === 'compensate' ? 'compensation' : 'action',
    attempt: job.attempt || 1, status: RETRY, code: 'db_unavailable', message: cut(message, 1024) };
  if (job.lease) res.lease = job.lease;
  return res;
}

module.exports = { Worker, StepContext, parseFaults, migrateUp, migrateDown, schemaVersion };
