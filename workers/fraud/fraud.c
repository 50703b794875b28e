/*  zsaga-worker-fraud: fraud checks, risk assessment and velocity rules.

    fraud_check scores a customer (a watchlist score, plus points for large
    amounts) and fails for good at or above the blocking score.
    risk_assessment applies the velocity rule: more than velocity_max_count
    transfers, or more than velocity_max_amount in total, for one customer
    within velocity_window_ms fails the check for good. Otherwise it
    records the transfer in the window and raises a risk flag. Clearing a
    check or a flag (their compensations) takes the transfer back out of
    the window, so an undone saga leaves no trace in the counters.

    Production runs on Redis: each operation checks its params in C once,
    then runs its effect either as SQL (SQLite, the embedded default) or as
    a Lua script inside the barrier script (WRK_LUA_STEP). The Redis keys:
      fraud:rules                  hash  rule -> value
      fraud:watchlist              hash  customer -> score
      fraud:check:{saga}:step      hash  one passed check
      fraud:flag:{saga}:step       hash  one risk flag
      fraud:velocity:CUSTOMER      zset  saga/step scored by ts_ms (active)
      fraud:velocity_amount:CUSTOMER hash saga/step -> amount
*/
#include "workers/wrk_runtime.h"

#include <stdio.h>
#include <string.h>

/* The largest amount the rules take: Redis runs them in Lua, whose numbers
   are doubles, exact only up to 2^53. Same limit on SQLite, so both
   backends decide alike. */
#define MAX_AMOUNT (INT64_C(1) << 53)

static bool s_amount(wrk_ctx_t *c, int64_t *amount)
{
    if (!wrk_amount(c, "amount", amount))
        return false;
    if (*amount <= MAX_AMOUNT)
        return true;
    wrk_fail(c, "bad_params", "amount %lld is above the fraud rules' limit of %lld minor units",
             (long long)*amount, (long long)MAX_AMOUNT);
    return false;
}

/* A rule from fraud_rules into *out, or its default when the table has no
   such row. A database error is the caller's: deciding on a default rule
   because the read failed would let a blocked payment through. */
static db_rc_t s_rule(wrk_ctx_t *c, const char *name, int64_t def, int64_t *out)
{
    db_rc_t rc = wrk_db_exec(c->db, "SELECT value FROM fraud_rules WHERE name = ?", DB_S(name));
    *out = rc == DB_OK && wrk_db_nrows(c->db) == 1 ? wrk_db_int(c->db, 0, 0) : def;
    return rc;
}

/* A rule from fraud:rules, or its default. */
#define LUA_RULE                                                                                   \
    "local function rule(name, def)\n"                                                             \
    "  local v = redis.call('HGET', 'fraud:rules', name)\n"                                        \
    "  if v then return tonumber(v) end\n"                                                         \
    "  return def\n"                                                                               \
    "end\n"

/* A: customer, amount, currency. */
static const char s_lua_fraud_check[] = WRK_LUA_STEP(
    LUA_RULE
    "local function effect(A, prior)\n"
    "  local cust, amount = A[1], tonumber(A[2])\n"
    "  local block, large = rule('block_score', 80), rule('large_amount', 10000000)\n"
    "  local score = tonumber(redis.call('HGET', 'fraud:watchlist', cust) or '10')\n"
    "  if amount >= large then score = score + 30 end\n"
    "  if score >= block then\n"
    "    return 'fraud_suspected', string.format('customer %s scores %d (blocking at %d)',\n"
    "                                            cust, score, block)\n"
    "  end\n"
    "  redis.call('HSET', 'fraud:check:{' .. saga .. '}:' .. step, 'customer', cust,\n"
    "             'amount', A[2], 'currency', A[3], 'score', string.format('%d', score),\n"
    "             'status', 'passed', 'created_ms', ARGV[5])\n"
    "  return nil, {score = score}\n"
    "end\n");

static const char s_lua_clear_fraud_check[] =
    WRK_LUA_STEP("local function effect(A, prior)\n"
                 "  local k = 'fraud:check:{' .. saga .. '}:' .. step\n"
                 "  if redis.call('HGET', k, 'status') == 'passed' then\n"
                 "    redis.call('HSET', k, 'status', 'cleared')\n"
                 "  end\n"
                 "  return nil, {}\n"
                 "end\n");

/* A: customer, amount, currency, account. */
static const char s_lua_risk_assessment[] = WRK_LUA_STEP(
    LUA_RULE
    "local function effect(A, prior)\n"
    "  local cust, amount = A[1], tonumber(A[2])\n"
    "  local window = rule('velocity_window_ms', 60000)\n"
    "  local max_count = rule('velocity_max_count', 5)\n"
    "  local max_amount = rule('velocity_max_amount', 2000000)\n"
    "  local kv, ka = 'fraud:velocity:' .. cust, 'fraud:velocity_amount:' .. cust\n"
    "  local recent = redis.call('ZRANGEBYSCORE', kv, '(' .. string.format('%d', now - window),\n"
    "                            '+inf')\n"
    "  local count, sum = #recent, 0\n"
    "  for _, m in ipairs(recent) do sum = sum + tonumber(redis.call('HGET', ka, m) or '0') end\n"
    "  if count + 1 > max_count then\n"
    "    return 'velocity_exceeded', string.format(\n"
    "      'customer %s made %d transfers in the last %d s (limit %d)', cust, count,\n"
    "      window / 1000, max_count)\n"
    "  end\n"
    "  if sum + amount > max_amount then\n"
    "    return 'velocity_exceeded', string.format(\n"
    "      'customer %s would move %d in %d s (limit %d)', cust, sum + amount,\n"
    "      window / 1000, max_amount)\n"
    "  end\n"
    "  local level = 'low'\n"
    "  if amount >= 1000000 then level = 'high' elseif amount >= 100000 then level = 'medium' end\n"
    "  local member = saga .. '/' .. step\n"
    "  redis.call('ZADD', kv, now, member)\n"
    "  redis.call('HSET', ka, member, A[2])\n"
    "  redis.call('HSET', 'fraud:flag:{' .. saga .. '}:' .. step, 'customer', cust,\n"
    "             'account', A[4], 'level', level, 'status', 'active', 'created_ms', ARGV[5])\n"
    "  return nil, {risk_level = level, window_count = count + 1}\n"
    "end\n");

static const char s_lua_clear_risk_flag[] =
    WRK_LUA_STEP("local function effect(A, prior)\n"
                 "  local k = 'fraud:flag:{' .. saga .. '}:' .. step\n"
                 "  local cleared = 0\n"
                 "  local cust = redis.call('HGET', k, 'customer')\n"
                 "  if redis.call('HGET', k, 'status') == 'active' then\n"
                 "    redis.call('HSET', k, 'status', 'cleared', 'cleared_ms', ARGV[5])\n"
                 "    cleared = 1\n"
                 "  end\n"
                 "  if cust then\n"
                 "    redis.call('ZREM', 'fraud:velocity:' .. cust, saga .. '/' .. step)\n"
                 "    redis.call('HDEL', 'fraud:velocity_amount:' .. cust, saga .. '/' .. step)\n"
                 "  end\n"
                 "  return nil, {cleared = cleared}\n"
                 "end\n");

static bool s_redis(const wrk_ctx_t *c)
{
    return wrk_db_dialect(c->db) == DB_DIALECT_REDIS;
}

static wrk_status_t op_fraud_check(wrk_ctx_t *c)
{
    const char *cust, *cur;
    int64_t amount;
    if (!wrk_str(c, "customer", &cust) || !s_amount(c, &amount) ||
        !wrk_currency(c, "currency", &cur))
        return WRK_FAILED;
    if (s_redis(c))
        return wrk_step_lua(c, s_lua_fraud_check,
                            (db_val_t[]){ DB_S(cust), DB_I(amount), DB_S(cur) }, 3);
    int64_t block, large;
    db_rc_t rc;
    if ((rc = s_rule(c, "block_score", 80, &block)) ||
        (rc = s_rule(c, "large_amount", 10000000, &large)) ||
        (rc = wrk_db_exec(c->db, "SELECT score FROM watchlist WHERE customer = ?", DB_S(cust))))
        return wrk_db_status(c, rc);
    int64_t score = wrk_db_nrows(c->db) ? wrk_db_int(c->db, 0, 0) : 10;
    if (amount >= large)
        score += 30;
    if (score >= block)
        return wrk_fail(c, "fraud_suspected", "customer %s scores %lld (blocking at %lld)", cust,
                        (long long)score, (long long)block);
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO fraud_checks (saga, step, customer, amount, currency, "
                          "score, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'passed', ?)",
                          DB_S(c->saga), DB_S(c->step), DB_S(cust), DB_I(amount), DB_S(cur),
                          DB_I(score), DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_int(c, "score", score);
    return WRK_OK;
}

static wrk_status_t op_clear_fraud_check(wrk_ctx_t *c)
{
    if (s_redis(c))
        return wrk_step_lua(c, s_lua_clear_fraud_check, NULL, 0);
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE fraud_checks SET status = 'cleared' WHERE saga = ? AND "
                             "step = ? AND status = 'passed'",
                             DB_S(c->saga), DB_S(c->step));
    return rc ? wrk_db_status(c, rc) : WRK_OK;
}

static wrk_status_t op_risk_assessment(wrk_ctx_t *c)
{
    const char *cust, *cur, *acct;
    int64_t amount;
    if (!wrk_str(c, "customer", &cust) || !s_amount(c, &amount) ||
        !wrk_currency(c, "currency", &cur) || !wrk_str_opt(c, "account", "", &acct))
        return WRK_FAILED;
    if (s_redis(c))
        return wrk_step_lua(c, s_lua_risk_assessment,
                            (db_val_t[]){ DB_S(cust), DB_I(amount), DB_S(cur), DB_S(acct) }, 4);
    int64_t window, max_count, max_amount;
    db_rc_t rc;
    if ((rc = s_rule(c, "velocity_window_ms", 60000, &window)) ||
        (rc = s_rule(c, "velocity_max_count", 5, &max_count)) ||
        (rc = s_rule(c, "velocity_max_amount", 2000000, &max_amount)) ||
        (rc = wrk_db_exec(c->db,
                          "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM velocity WHERE "
                          "customer = ? AND status = 'active' AND ts_ms > ?",
                          DB_S(cust), DB_I(c->now_ms - window))))
        return wrk_db_status(c, rc);
    int64_t count = wrk_db_int(c->db, 0, 0), sum = wrk_db_int(c->db, 0, 1);
    if (count + 1 > max_count)
        return wrk_fail(c, "velocity_exceeded",
                        "customer %s made %lld transfers in the last %lld s (limit %lld)", cust,
                        (long long)count, (long long)(window / 1000), (long long)max_count);
    if (sum + amount > max_amount)
        return wrk_fail(
            c, "velocity_exceeded", "customer %s would move %lld in %lld s (limit %lld)", cust,
            (long long)(sum + amount), (long long)(window / 1000), (long long)max_amount);
    const char *level = amount >= 1000000 ? "high" : amount >= 100000 ? "medium" : "low";
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO velocity (saga, step, customer, amount, currency, ts_ms, "
                          "status) VALUES (?, ?, ?, ?, ?, ?, 'active')",
                          DB_S(c->saga), DB_S(c->step), DB_S(cust), DB_I(amount), DB_S(cur),
                          DB_I(c->now_ms))) ||
        (rc = wrk_db_exec(c->db,
                          "INSERT INTO risk_flags (saga, step, customer, account, level, status, "
                          "created_ms) VALUES (?, ?, ?, ?, ?, 'active', ?)",
                          DB_S(c->saga), DB_S(c->step), DB_S(cust), DB_S(acct), DB_S(level),
                          DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_str(c, "risk_level", level);
    wrk_out_int(c, "window_count", count + 1);
    return WRK_OK;
}

static wrk_status_t op_clear_risk_flag(wrk_ctx_t *c)
{
    if (s_redis(c))
        return wrk_step_lua(c, s_lua_clear_risk_flag, NULL, 0);
    db_rc_t rc;
    if ((rc = wrk_db_exec(c->db,
                          "UPDATE risk_flags SET status = 'cleared', cleared_ms = ? WHERE "
                          "saga = ? AND step = ? AND status = 'active'",
                          DB_I(c->now_ms), DB_S(c->saga), DB_S(c->step))))
        return wrk_db_status(c, rc);
    int64_t flags = wrk_db_changes(c->db);
    if ((rc = wrk_db_exec(c->db,
                          "UPDATE velocity SET status = 'cleared' WHERE saga = ? AND step = ?",
                          DB_S(c->saga), DB_S(c->step))))
        return wrk_db_status(c, rc);
    wrk_out_int(c, "cleared", flags);
    return WRK_OK;
}

static const wrk_migration_t s_migrations[] = {
    { 1,
      "fraud checks, risk flags, velocity, rules",
      { [DB_DIALECT_SQLITE] =
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
            "CREATE TABLE fraud_rules (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        /* Redis has no tables: the version records the key layout above. */
        [DB_DIALECT_REDIS] = "return 0" },
      { [DB_DIALECT_SQLITE] = "DROP TABLE fraud_rules; DROP TABLE watchlist; DROP TABLE velocity;"
                              " DROP TABLE risk_flags; DROP TABLE fraud_checks",
        [DB_DIALECT_REDIS] = "return 0" } },
};

static db_rc_t s_seed_demo(wrk_conn_t *db)
{
    if (wrk_db_dialect(db) == DB_DIALECT_REDIS)
        return wrk_db_exec(db, "redis.call('HSET', 'fraud:watchlist', 'C666', 95)\n"
                               "redis.call('HSET', 'fraud:rules', 'block_score', 80,"
                               " 'large_amount', 10000000, 'velocity_window_ms', 60000,"
                               " 'velocity_max_count', 20, 'velocity_max_amount', 100000000)\n"
                               "return 0");
    db_rc_t rc = wrk_db_exec(db, "INSERT INTO watchlist (customer, score) VALUES ('C666', 95)");
    if (!rc)
        rc = wrk_db_exec(db, "INSERT INTO fraud_rules (name, value) VALUES "
                             "('block_score', 80), ('large_amount', 10000000),"
                             " ('velocity_window_ms', 60000), ('velocity_max_count', 20),"
                             " ('velocity_max_amount', 100000000)");
    return rc;
}

static const wrk_op_t s_ops[] = {
    { "fraud_check", op_fraud_check, DB_ISO_DEFAULT,
      "customer:str amount:int1..1000000000000000 currency:str", "score:int",
      "Scores the customer: the watchlist score (default 10), plus 30 for an amount at or above "
      "the large_amount rule (default 10,000,000 minor units); fails at or above the block_score "
      "rule (default 80).",
      "fraud_suspected" },
    { "clear_fraud_check", op_clear_fraud_check, DB_ISO_DEFAULT, "", "",
      "The compensation of fraud_check: marks the check cleared.", "" },
    { "risk_assessment", op_risk_assessment, DB_ISO_SERIALIZABLE,
      "customer:str amount:int1..1000000000000000 currency:str account:str?",
      "risk_level:str window_count:int",
      "Velocity: fails when the customer passes velocity_max_count transfers or "
      "velocity_max_amount in total within velocity_window_ms (default 60 s); otherwise records "
      "the transfer in the window and raises a risk flag.",
      "velocity_exceeded" },
    { "clear_risk_flag", op_clear_risk_flag, DB_ISO_DEFAULT, "", "cleared:int",
      "The compensation of risk_assessment: clears the flag it set.", "" },
};

const wrk_system_t fraud_system = {
    "fraud",
    s_ops,
    sizeof s_ops / sizeof *s_ops,
    s_migrations,
    sizeof s_migrations / sizeof *s_migrations,
    NULL,
    s_seed_demo,
    NULL,
};

int main(int argc, char **argv)
{
    return wrk_main(&fraud_system, argc, argv);
}
