#!/usr/bin/python3
"""The fraud system (fraud_check, risk_assessment and their compensations)
on the zsaga Python library: the same operations, rules, tables, Redis keys
and Lua effects as workers/fraud/fraud.c, so a Python and a C fraud worker
serve one database together (the chaos harness runs one of each).
tests/conformance/texts.py checks these Lua texts are the C worker's.

    fraud_worker.py --db redis://HOST:PORT/N --orchestrator EP --key K --server-key S

On SQLite it runs the C worker's SQL; the tables are made by its
migration (version 1), the same on both. `seed-demo` is the C worker's.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import zsaga  # noqa: E402
from zsaga import Fail, Migration  # noqa: E402

# The largest amount the rules take: Redis runs them in Lua, whose numbers
# are doubles, exact only up to 2^53 (as MAX_AMOUNT in fraud.c).
MAX_AMOUNT = 1 << 53

LUA_RULE = (
    'local function rule(name, def)\n'
    "  local v = redis.call('HGET', 'fraud:rules', name)\n"
    '  if v then return tonumber(v) end\n'
    '  return def\n'
    'end\n'
)

LUA_FRAUD_CHECK = LUA_RULE + (
    'local function effect(A, prior)\n'
    '  local cust, amount = A[1], tonumber(A[2])\n'
    "  local block, large = rule('block_score', 80), rule('large_amount', 10000000)\n"
    "  local score = tonumber(redis.call('HGET', 'fraud:watchlist', cust) or '10')\n"
    '  if amount >= large then score = score + 30 end\n'
    '  if score >= block then\n'
    "    return 'fraud_suspected', string.format('customer %s scores %d (blocking at %d)',\n"
    '                                            cust, score, block)\n'
    '  end\n'
    "  redis.call('HSET', 'fraud:check:{' .. saga .. '}:' .. step, 'customer', cust,\n"
    "             'amount', A[2], 'currency', A[3], 'score', string.format('%d', score),\n"
    "             'status', 'passed', 'created_ms', ARGV[5])\n"
    '  return nil, {score = score}\n'
    'end\n'
)

LUA_CLEAR_FRAUD_CHECK = (
    'local function effect(A, prior)\n'
    "  local k = 'fraud:check:{' .. saga .. '}:' .. step\n"
    "  if redis.call('HGET', k, 'status') == 'passed' then\n"
    "    redis.call('HSET', k, 'status', 'cleared')\n"
    '  end\n'
    '  return nil, {}\n'
    'end\n'
)

LUA_RISK_ASSESSMENT = LUA_RULE + (
    'local function effect(A, prior)\n'
    '  local cust, amount = A[1], tonumber(A[2])\n'
    "  local window = rule('velocity_window_ms', 60000)\n"
    "  local max_count = rule('velocity_max_count', 5)\n"
    "  local max_amount = rule('velocity_max_amount', 2000000)\n"
    "  local kv, ka = 'fraud:velocity:' .. cust, 'fraud:velocity_amount:' .. cust\n"
    "  local recent = redis.call('ZRANGEBYSCORE', kv, '(' .. string.format('%d', now - window),\n"
    "                            '+inf')\n"
    '  local count, sum = #recent, 0\n'
    "  for _, m in ipairs(recent) do sum = sum + tonumber(redis.call('HGET', ka, m) or '0') end\n"
    '  if count + 1 > max_count then\n'
    "    return 'velocity_exceeded', string.format(\n"
    "      'customer %s made %d transfers in the last %d s (limit %d)', cust, count,\n"
    '      window / 1000, max_count)\n'
    '  end\n'
    '  if sum + amount > max_amount then\n'
    "    return 'velocity_exceeded', string.format(\n"
    "      'customer %s would move %d in %d s (limit %d)', cust, sum + amount,\n"
    '      window / 1000, max_amount)\n'
    '  end\n'
    "  local level = 'low'\n"
    "  if amount >= 1000000 then level = 'high' elseif amount >= 100000 then level = 'medium' end\n"
    "  local member = saga .. '/' .. step\n"
    "  redis.call('ZADD', kv, now, member)\n"
    "  redis.call('HSET', ka, member, A[2])\n"
    "  redis.call('HSET', 'fraud:flag:{' .. saga .. '}:' .. step, 'customer', cust,\n"
    "             'account', A[4], 'level', level, 'status', 'active', 'created_ms', ARGV[5])\n"
    '  return nil, {risk_level = level, window_count = count + 1}\n'
    'end\n'
)

LUA_CLEAR_RISK_FLAG = (
    'local function effect(A, prior)\n'
    "  local k = 'fraud:flag:{' .. saga .. '}:' .. step\n"
    '  local cleared = 0\n'
    "  local cust = redis.call('HGET', k, 'customer')\n"
    "  if redis.call('HGET', k, 'status') == 'active' then\n"
    "    redis.call('HSET', k, 'status', 'cleared', 'cleared_ms', ARGV[5])\n"
    '    cleared = 1\n'
    '  end\n'
    '  if cust then\n'
    "    redis.call('ZREM', 'fraud:velocity:' .. cust, saga .. '/' .. step)\n"
    "    redis.call('HDEL', 'fraud:velocity_amount:' .. cust, saga .. '/' .. step)\n"
    '  end\n'
    '  return nil, {cleared = cleared}\n'
    'end\n'
)

SQLITE_TABLES = (
    "CREATE TABLE fraud_checks (saga TEXT NOT NULL, step TEXT NOT NULL,"
    " customer TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,"
    " score INTEGER NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (saga, step));"
    "CREATE TABLE risk_flags (saga TEXT NOT NULL, step TEXT NOT NULL,"
    " customer TEXT NOT NULL, account TEXT NOT NULL, level TEXT NOT NULL,"
    " status TEXT NOT NULL, created_ms INTEGER NOT NULL, cleared_ms INTEGER,"
    " PRIMARY KEY (saga, step));"
    "CREATE TABLE velocity (saga TEXT NOT NULL, step TEXT NOT NULL,"
    " customer TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,"
    " ts_ms INTEGER NOT NULL, status TEXT NOT NULL, PRIMARY KEY (saga, step));"
    "CREATE INDEX velocity_customer ON velocity (customer, ts_ms);"
    "CREATE TABLE watchlist (customer TEXT PRIMARY KEY, score INTEGER NOT NULL);"
    "CREATE TABLE fraud_rules (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

worker = zsaga.Worker("fraud", migrations=[
    Migration(1, "fraud checks, risk flags, velocity, rules",
              up={"sqlite": SQLITE_TABLES, "redis": "return 0"},
              down={"sqlite": "DROP TABLE fraud_rules; DROP TABLE watchlist; DROP TABLE velocity;"
                              " DROP TABLE risk_flags; DROP TABLE fraud_checks", "redis": "return 0"}),
])


def amount(ctx: zsaga.StepContext) -> int:
    a = ctx.amount("amount")
    if a > MAX_AMOUNT:
        raise Fail("bad_params", f"amount {a} is above the fraud rules' limit of {MAX_AMOUNT} minor units")
    return a


def currency(ctx: zsaga.StepContext) -> str:
    c = ctx.str("currency")
    if len(c) != 3 or not all("A" <= x <= "Z" for x in c):
        raise Fail("bad_params", "params.currency: currency must be three capital letters, like USD")
    return c


def rule(ctx: zsaga.StepContext, name: str, default: int) -> int:
    row = ctx.db.one("SELECT value FROM fraud_rules WHERE name = ?", name)
    return int(row[0]) if row else default


@worker.operation("fraud_check", params="customer:str amount:int1..1000000000000000 currency:str",
                  outputs="score:int", errors="fraud_suspected",
                  rule="Scores the customer: the watchlist score (default 10), plus 30 for an amount at or "
                       "above the large_amount rule (default 10,000,000 minor units); fails at or above the "
                       "block_score rule (default 80).")
def fraud_check(ctx: zsaga.StepContext) -> dict:
    cust, amt, cur = ctx.str("customer"), amount(ctx), currency(ctx)
    if ctx.dialect == "redis":
        return ctx.lua(LUA_FRAUD_CHECK, [cust, amt, cur])
    block, large = rule(ctx, "block_score", 80), rule(ctx, "large_amount", 10000000)
    row = ctx.db.one("SELECT score FROM watchlist WHERE customer = ?", cust)
    score = int(row[0]) if row else 10
    if amt >= large:
        score += 30
    if score >= block:
        raise Fail("fraud_suspected", f"customer {cust} scores {score} (blocking at {block})")
    ctx.db.execute("INSERT INTO fraud_checks (saga, step, customer, amount, currency, score, status, created_ms)"
                   " VALUES (?, ?, ?, ?, ?, ?, 'passed', ?)", ctx.saga, ctx.step, cust, amt, cur, score, ctx.now_ms)
    return {"score": score}


@worker.operation("clear_fraud_check", params="", outputs="",
                  rule="The compensation of fraud_check: marks the check cleared.")
def clear_fraud_check(ctx: zsaga.StepContext) -> dict:
    if ctx.dialect == "redis":
        return ctx.lua(LUA_CLEAR_FRAUD_CHECK)
    ctx.db.execute("UPDATE fraud_checks SET status = 'cleared' WHERE saga = ? AND step = ? AND status = 'passed'",
                   ctx.saga, ctx.step)
    return {}


@worker.operation("risk_assessment", params="customer:str amount:int1..1000000000000000 currency:str account:str?",
                  outputs="risk_level:str window_count:int", isolation="serializable", errors="velocity_exceeded",
                  rule="Velocity: fails when the customer passes velocity_max_count transfers or "
                       "velocity_max_amount in total within velocity_window_ms (default 60 s); otherwise "
                       "records the transfer in the window and raises a risk flag.")
def risk_assessment(ctx: zsaga.StepContext) -> dict:
    cust, amt, cur, acct = ctx.str("customer"), amount(ctx), currency(ctx), ctx.str("account", "")
    if ctx.dialect == "redis":
        return ctx.lua(LUA_RISK_ASSESSMENT, [cust, amt, cur, acct])
    window = rule(ctx, "velocity_window_ms", 60000)
    max_count, max_amount = rule(ctx, "velocity_max_count", 5), rule(ctx, "velocity_max_amount", 2000000)
    count, total = ctx.db.one("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM velocity WHERE customer = ?"
                              " AND status = 'active' AND ts_ms > ?", cust, ctx.now_ms - window)
    if count + 1 > max_count:
        raise Fail("velocity_exceeded",
                   f"customer {cust} made {count} transfers in the last {window // 1000} s (limit {max_count})")
    if total + amt > max_amount:
        raise Fail("velocity_exceeded",
                   f"customer {cust} would move {total + amt} in {window // 1000} s (limit {max_amount})")
    level = "high" if amt >= 1000000 else "medium" if amt >= 100000 else "low"
    ctx.db.execute("INSERT INTO velocity (saga, step, customer, amount, currency, ts_ms, status)"
                   " VALUES (?, ?, ?, ?, ?, ?, 'active')", ctx.saga, ctx.step, cust, amt, cur, ctx.now_ms)
    ctx.db.execute("INSERT INTO risk_flags (saga, step, customer, account, level, status, created_ms)"
                   " VALUES (?, ?, ?, ?, ?, 'active', ?)", ctx.saga, ctx.step, cust, acct, level, ctx.now_ms)
    return {"risk_level": level, "window_count": count + 1}


@worker.operation("clear_risk_flag", params="", outputs="cleared:int",
                  rule="The compensation of risk_assessment: clears the flag it set.")
def clear_risk_flag(ctx: zsaga.StepContext) -> dict:
    if ctx.dialect == "redis":
        return ctx.lua(LUA_CLEAR_RISK_FLAG)
    ctx.db.execute("UPDATE risk_flags SET status = 'cleared', cleared_ms = ? WHERE saga = ? AND step = ?"
                   " AND status = 'active'", ctx.now_ms, ctx.saga, ctx.step)
    flags = ctx.db.rowcount
    ctx.db.execute("UPDATE velocity SET status = 'cleared' WHERE saga = ? AND step = ?", ctx.saga, ctx.step)
    return {"cleared": flags}


if __name__ == "__main__":
    sys.exit(worker.main())
