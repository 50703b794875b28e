'use strict';
// The barrier (docs/design.md, "At-least-once delivery, exactly-once
// effect"): byte-for-byte the rules and tables of the C runtime
// (workers/wrk_step.c), so a Node.js worker and a C or Python worker of
// one system can share a database. See lib/worker.js for the rules; the
// Redis barrier is the C runtime's Lua text around the effect.

const INSERT_SQL = {
  postgresql: "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
  mysql: "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE saga = saga",
};

const SELECT_SQL = "SELECT state, output, code, message FROM zsaga_barrier WHERE saga = ? AND step = ? AND phase = ?";

const MARK_SQL = "UPDATE zsaga_barrier SET state = ?, output = ?, code = ?, message = ? WHERE saga = ? AND step = ? AND phase = ?";

const DDL = {
  postgresql: "CREATE TABLE zsaga_barrier ( saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL, phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL, op VARCHAR(32) NOT NULL, output BYTEA, code VARCHAR(32), message TEXT, created_ms BIGINT NOT NULL, PRIMARY KEY (saga, step, phase))",
  mysql: "CREATE TABLE zsaga_barrier ( saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL, phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL, op VARCHAR(32) NOT NULL, output BLOB, code VARCHAR(32), message TEXT, created_ms BIGINT NOT NULL, PRIMARY KEY (saga, step, phase)) ENGINE=InnoDB",
  redis: "return 'zsaga:barrier:{saga}:step:phase hashes'",
};

const LUA_PRELUDE =
  "local saga, step, phase, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n" +
  "local now = tonumber(ARGV[5])\n" +
  "local A = {}\n" +
  "for i = 6, #ARGV do A[i - 5] = ARGV[i] end\n" +
  "local kb = 'zsaga:barrier:{' .. saga .. '}:' .. step\n" +
  "local ka, kc = kb .. ':action', kb .. ':compensation'\n" +
  "local function enc(v)\n" +
  "  if type(v) == 'number' then return 'i' .. string.format('%d', v) end\n" +
  "  return 's' .. tostring(v)\n" +
  "end\n" +
  "local function stored(k)\n" +
  "  local h = redis.call('HGETALL', k)\n" +
  "  local r = {'', '', ''}\n" +
  "  for i = 1, #h, 2 do\n" +
  "    local f, v = h[i], h[i + 1]\n" +
  "    if f == 'state' then r[1] = v elseif f == 'code' then r[2] = v\n" +
  "    elseif f == 'message' then r[3] = v\n" +
  "    elseif string.sub(f, 1, 2) == 'o.' then r[#r + 1] = string.sub(f, 3); r[#r + 1] = v end\n" +
  "  end\n" +
  "  return r\n" +
  "end\n" +
  "local function record(k, state, code, message, out)\n" +
  "  local a = {'state', state, 'op', op, 'created_ms', ARGV[5], 'code', code or '',\n" +
  "             'message', message or ''}\n" +
  "  for key, v in pairs(out or {}) do a[#a + 1] = 'o.' .. key; a[#a + 1] = enc(v) end\n" +
  "  redis.call('HSET', k, unpack(a))\n" +
  "  local r = {state, code or '', message or ''}\n" +
  "  for key, v in pairs(out or {}) do r[#r + 1] = key; r[#r + 1] = enc(v) end\n" +
  "  return r\n" +
  "end\n";

const LUA_EPILOGUE =
  "\n" +
  "if phase == 'action' then\n" +
  "  if redis.call('EXISTS', ka) == 1 then\n" +
  "    local r = stored(ka); table.insert(r, 1, 'dup'); return r\n" +
  "  end\n" +
  "  local code, res = effect(A, nil)\n" +
  "  if code then return record(ka, 'failed', code, res, nil) end\n" +
  "  return record(ka, 'done', '', '', res)\n" +
  "end\n" +
  "if redis.call('EXISTS', ka) == 0 then\n" +
  "  redis.call('HSET', ka, 'state', 'blocked', 'op', op, 'created_ms', ARGV[5])\n" +
  "  return record(kc, 'null', '', 'null compensation: the action never ran', nil)\n" +
  "end\n" +
  "if redis.call('EXISTS', kc) == 1 then\n" +
  "  local r = stored(kc); table.insert(r, 1, 'dup'); return r\n" +
  "end\n" +
  "if redis.call('HGET', ka, 'state') ~= 'done' then\n" +
  "  return record(kc, 'null', '', 'nothing to undo: the action did not apply', nil)\n" +
  "end\n" +
  "local prior, s = {}, stored(ka)\n" +
  "for i = 4, #s, 2 do\n" +
  "  local v = s[i + 1]\n" +
  "  if string.sub(v, 1, 1) == 'i' then prior[s[i]] = tonumber(string.sub(v, 2))\n" +
  "  else prior[s[i]] = string.sub(v, 2) end\n" +
  "end\n" +
  "local code, res = effect(A, prior)\n" +
  "if code then return {'failed', code, res} end\n" +
  "return record(kc, 'done', '', '', res)\n";

/** The whole script of a Redis step: the barrier around an effect that
    defines `local function effect(A, prior)` (WRK_LUA_STEP). */
const luaStep = (effect) => LUA_PRELUDE + effect + LUA_EPILOGUE;

module.exports = { INSERT_SQL, SELECT_SQL, MARK_SQL, DDL, LUA_PRELUDE, LUA_EPILOGUE, luaStep };
