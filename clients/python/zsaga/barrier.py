"""The barrier (docs/design.md, "At-least-once delivery, exactly-once
effect"): byte-for-byte the rules and tables of the C runtime
(workers/wrk_step.c), so a Python worker and a C worker of one system can
share a database.

The table zsaga_barrier has primary key (saga, step, phase). The action
and its compensation contend on the same key:
  action        insert (saga, step, "action", running)
                conflict: answer what the row says (done: the stored
                output; failed: the stored failure; blocked: refused,
                its compensation ran first). Nothing changes.
                else run the handler under a savepoint; on success mark
                the row done with its output; on failure roll back to
                the savepoint and mark it failed; commit.
  compensation  insert (saga, step, "action", blocked)
                succeeded: the action never ran and now never will;
                record a null compensation, commit.
                conflict: the action committed (the unique index made
                us wait for it); insert (saga, step, "compensation");
                a conflict there is a duplicate (answer ok); else undo
                if the action is done, commit.
On Redis the barrier and the effect are one Lua script (the same text as
the C runtime's WRK_LUA_PRELUDE and WRK_LUA_EPILOGUE around the
operation's effect), keyed zsaga:barrier:{saga}:step:phase.
"""

INSERT_SQL = {
    "sqlite": "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    "postgresql": "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
                  "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    "mysql": "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
             "VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE saga = saga",
}

SELECT_SQL = ("SELECT state, output, code, message FROM zsaga_barrier "
              "WHERE saga = ? AND step = ? AND phase = ?")

MARK_SQL = ("UPDATE zsaga_barrier SET state = ?, output = ?, code = ?, message = ? "
            "WHERE saga = ? AND step = ? AND phase = ?")

DDL = {
    "sqlite": "CREATE TABLE zsaga_barrier ("
              " saga TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL,"
              " state TEXT NOT NULL, op TEXT NOT NULL, output BLOB,"
              " code TEXT, message TEXT, created_ms INTEGER NOT NULL,"
              " PRIMARY KEY (saga, step, phase))",
    "postgresql": "CREATE TABLE zsaga_barrier ("
                  " saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"
                  " phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL,"
                  " op VARCHAR(32) NOT NULL, output BYTEA, code VARCHAR(32),"
                  " message TEXT, created_ms BIGINT NOT NULL,"
                  " PRIMARY KEY (saga, step, phase))",
    "mysql": "CREATE TABLE zsaga_barrier ("
             " saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"
             " phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL,"
             " op VARCHAR(32) NOT NULL, output BLOB, code VARCHAR(32),"
             " message TEXT, created_ms BIGINT NOT NULL,"
             " PRIMARY KEY (saga, step, phase)) ENGINE=InnoDB",
    "redis": "return 'zsaga:barrier:{saga}:step:phase hashes'",
}

LUA_PRELUDE = (
    'local saga, step, phase, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n'
    'local now = tonumber(ARGV[5])\n'
    'local A = {}\n'
    'for i = 6, #ARGV do A[i - 5] = ARGV[i] end\n'
    "local kb = 'zsaga:barrier:{' .. saga .. '}:' .. step\n"
    "local ka, kc = kb .. ':action', kb .. ':compensation'\n"
    'local function enc(v)\n'
    "  if type(v) == 'number' then return 'i' .. string.format('%d', v) end\n"
    "  return 's' .. tostring(v)\n"
    'end\n'
    'local function stored(k)\n'
    "  local h = redis.call('HGETALL', k)\n"
    "  local r = {'', '', ''}\n"
    '  for i = 1, #h, 2 do\n'
    '    local f, v = h[i], h[i + 1]\n'
    "    if f == 'state' then r[1] = v elseif f == 'code' then r[2] = v\n"
    "    elseif f == 'message' then r[3] = v\n"
    "    elseif string.sub(f, 1, 2) == 'o.' then r[#r + 1] = string.sub(f, 3); r[#r + 1] = v end\n"
    '  end\n'
    '  return r\n'
    'end\n'
    'local function record(k, state, code, message, out)\n'
    "  local a = {'state', state, 'op', op, 'created_ms', ARGV[5], 'code', code or '',\n"
    "             'message', message or ''}\n"
    "  for key, v in pairs(out or {}) do a[#a + 1] = 'o.' .. key; a[#a + 1] = enc(v) end\n"
    "  redis.call('HSET', k, unpack(a))\n"
    "  local r = {state, code or '', message or ''}\n"
    '  for key, v in pairs(out or {}) do r[#r + 1] = key; r[#r + 1] = enc(v) end\n'
    '  return r\n'
    'end\n'
)

LUA_EPILOGUE = (
    '\n'
    "if phase == 'action' then\n"
    "  if redis.call('EXISTS', ka) == 1 then\n"
    "    local r = stored(ka); table.insert(r, 1, 'dup'); return r\n"
    '  end\n'
    '  local code, res = effect(A, nil)\n'
    "  if code then return record(ka, 'failed', code, res, nil) end\n"
    "  return record(ka, 'done', '', '', res)\n"
    'end\n'
    "if redis.call('EXISTS', ka) == 0 then\n"
    "  redis.call('HSET', ka, 'state', 'blocked', 'op', op, 'created_ms', ARGV[5])\n"
    "  return record(kc, 'null', '', 'null compensation: the action never ran', nil)\n"
    'end\n'
    "if redis.call('EXISTS', kc) == 1 then\n"
    "  local r = stored(kc); table.insert(r, 1, 'dup'); return r\n"
    'end\n'
    "if redis.call('HGET', ka, 'state') ~= 'done' then\n"
    "  return record(kc, 'null', '', 'nothing to undo: the action did not apply', nil)\n"
    'end\n'
    'local prior, s = {}, stored(ka)\n'
    'for i = 4, #s, 2 do\n'
    '  local v = s[i + 1]\n'
    "  if string.sub(v, 1, 1) == 'i' then prior[s[i]] = tonumber(string.sub(v, 2))\n"
    '  else prior[s[i]] = string.sub(v, 2) end\n'
    'end\n'
    'local code, res = effect(A, prior)\n'
    "if code then return {'failed', code, res} end\n"
    "return record(kc, 'done', '', '', res)\n"
)


def lua_step(effect: str) -> str:
    """The whole script of a Redis step: the barrier around the effect,
    which defines `local function effect(A, prior)` (see WRK_LUA_STEP in
    workers/wrk_step.h)."""
    return LUA_PRELUDE + effect + LUA_EPILOGUE
