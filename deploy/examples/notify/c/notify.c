/*  notify-worker: the "notify" example system, a worker built outside
    the zsaga tree against the installed libzsaga (pkg-config zsaga).
    The same system is written in Python (../python) and Node.js
    (../node); the three share its tables and may serve one database
    together.

    send     customer:str channel:str(sms|email|push) text:str
             spends one of the customer's notification quota and queues
             the message in the outbox; fails for good with
             quota_exhausted (no quota left) or unknown_customer.
             Output: message_id ("SAGA/STEP"), remaining (quota left).
    retract  the compensation of send: withdraws the queued message and
             gives the quota back. Output: retracted (1).

    The system's name is "notify" unless NOTIFY_SYSTEM names another
    (one worker program serving several systems in the tests).
*/
#include <zsaga.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis: the quota is the hash notify:quota (customer -> remaining),
   each queued message the hash notify:outbox:{saga}:step. */
#define LUA_SEND                                                                                   \
    "local function effect(A, prior)\n"                                                            \
    "  local left = redis.call('HGET', 'notify:quota', A[1])\n"                                    \
    "  if not left then return 'unknown_customer', 'no quota is set for ' .. A[1] end\n"           \
    "  if tonumber(left) <= 0 then\n"                                                              \
    "    return 'quota_exhausted', 'customer ' .. A[1] .. ' has no notifications left'\n"          \
    "  end\n"                                                                                      \
    "  local n = redis.call('HINCRBY', 'notify:quota', A[1], -1)\n"                                \
    "  redis.call('HSET', 'notify:outbox:{' .. saga .. '}:' .. step, 'customer', A[1],\n"          \
    "             'channel', A[2], 'body', A[3], 'state', 'queued', 'created_ms', ARGV[5])\n"      \
    "  return nil, {message_id = saga .. '/' .. step, remaining = n}\n"                            \
    "end\n"

#define LUA_RETRACT                                                                                \
    "local function effect(A, prior)\n"                                                            \
    "  local k = 'notify:outbox:{' .. saga .. '}:' .. step\n"                                      \
    "  local customer = redis.call('HGET', k, 'customer')\n"                                       \
    "  if customer and redis.call('HGET', k, 'state') == 'queued' then\n"                          \
    "    redis.call('HSET', k, 'state', 'retracted')\n"                                            \
    "    redis.call('HINCRBY', 'notify:quota', customer, 1)\n"                                     \
    "  end\n"                                                                                      \
    "  return nil, {retracted = 1}\n"                                                              \
    "end\n"

static wrk_status_t op_send(wrk_ctx_t *c)
{
    const char *customer, *channel, *text;
    if (!wrk_str(c, "customer", &customer) || !wrk_str(c, "channel", &channel) ||
        !wrk_str(c, "text", &text))
        return WRK_FAILED;
    if (strcmp(channel, "sms") && strcmp(channel, "email") && strcmp(channel, "push"))
        return wrk_fail(c, "bad_params", "params.channel: must be sms, email or push");
    if (wrk_db_dialect(c->db) == DB_DIALECT_REDIS)
        return wrk_step_lua(c, WRK_LUA_STEP(LUA_SEND),
                            (db_val_t[]){ DB_S(customer), DB_S(channel), DB_S(text) }, 3);
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE notify_quota SET remaining = remaining - 1 "
                             "WHERE customer = ? AND remaining > 0",
                             DB_S(customer));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0) {
        if ((rc = wrk_db_exec(c->db, "SELECT remaining FROM notify_quota WHERE customer = ?",
                              DB_S(customer))))
            return wrk_db_status(c, rc);
        if (wrk_db_nrows(c->db) == 0)
            return wrk_fail(c, "unknown_customer", "no quota is set for %s", customer);
        return wrk_fail(c, "quota_exhausted", "customer %s has no notifications left", customer);
    }
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO notify_outbox (saga, step, customer, channel, body, state, "
                          "created_ms) VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                          DB_S(c->saga), DB_S(c->step), DB_S(customer), DB_S(channel), DB_S(text),
                          DB_I(c->now_ms))) ||
        (rc = wrk_db_exec(c->db, "SELECT remaining FROM notify_quota WHERE customer = ?",
                          DB_S(customer))))
        return wrk_db_status(c, rc);
    char id[2 * MSG_ID_MAX + 2];
    snprintf(id, sizeof id, "%s/%s", c->saga, c->step);
    wrk_out_str(c, "message_id", id);
    wrk_out_int(c, "remaining", wrk_db_int(c->db, 0, 0));
    return WRK_OK;
}

static wrk_status_t op_retract(wrk_ctx_t *c)
{
    if (wrk_db_dialect(c->db) == DB_DIALECT_REDIS)
        return wrk_step_lua(c, WRK_LUA_STEP(LUA_RETRACT), NULL, 0);
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE notify_quota SET remaining = remaining + 1 WHERE customer = "
                             "(SELECT customer FROM notify_outbox WHERE saga = ? AND step = ? AND "
                             "state = 'queued')",
                             DB_S(c->saga), DB_S(c->step));
    if (!rc)
        rc = wrk_db_exec(c->db,
                         "UPDATE notify_outbox SET state = 'retracted' "
                         "WHERE saga = ? AND step = ? AND state = 'queued'",
                         DB_S(c->saga), DB_S(c->step));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_int(c, "retracted", 1);
    return WRK_OK;
}

#define NOTIFY_TABLES(bigint, text)                                                                \
    "CREATE TABLE notify_quota (customer VARCHAR(64) PRIMARY KEY, remaining " bigint " NOT NULL);" \
    "CREATE TABLE notify_outbox (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"            \
    " customer VARCHAR(64) NOT NULL, channel VARCHAR(16) NOT NULL, body " text " NOT NULL,"        \
    " state VARCHAR(16) NOT NULL, created_ms " bigint " NOT NULL, PRIMARY KEY (saga, step))"

static const wrk_migration_t s_migrations[] = {
    { 1,
      "notify tables",
      { [DB_DIALECT_SQLITE] = NOTIFY_TABLES("INTEGER", "TEXT"),
        [DB_DIALECT_POSTGRES] = NOTIFY_TABLES("BIGINT", "TEXT"),
        [DB_DIALECT_MYSQL] = NOTIFY_TABLES("BIGINT", "TEXT"),
        [DB_DIALECT_REDIS] = "return 0" },
      { [DB_DIALECT_SQLITE] = "DROP TABLE notify_outbox; DROP TABLE notify_quota",
        [DB_DIALECT_POSTGRES] = "DROP TABLE notify_outbox; DROP TABLE notify_quota",
        [DB_DIALECT_MYSQL] = "DROP TABLE notify_outbox; DROP TABLE notify_quota",
        [DB_DIALECT_REDIS] = "return 0" } },
};

static const wrk_op_t s_ops[] = {
    { "send", op_send, DB_ISO_DEFAULT, "customer:str channel:str text:str",
      "message_id:str remaining:int",
      "Spends one of the customer's notification quota and queues the message.",
      "quota_exhausted unknown_customer" },
    { "retract", op_retract, DB_ISO_DEFAULT, "", "retracted:int",
      "The compensation of send: withdraws the message and gives the quota back.", "" },
};

int main(int argc, char **argv)
{
    const char *name = getenv("NOTIFY_SYSTEM");
    wrk_system_t sys = {
        name && *name ? name : "notify",
        s_ops,
        sizeof s_ops / sizeof *s_ops,
        s_migrations,
        sizeof s_migrations / sizeof *s_migrations,
        NULL,
        NULL,
        NULL,
    };
    return wrk_main(&sys, argc, argv);
}
