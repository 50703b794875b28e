/*  wrk_step: run one action or compensation as one local transaction,
    guarded by the barrier (design.md, "At-least-once delivery,
    exactly-once effect").

    The barrier is the table zsaga_barrier, primary key (saga, step,
    phase). The action and its compensation contend on the same key:
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
    On Redis the barrier and the effect are one Lua script (a script runs
    atomically): a handler checks its params in C, then hands its effect to
    wrk_step_lua, whose script wraps it in the same barrier logic, keyed
    zsaga:barrier:{saga}:step:phase. A duplicate, a null compensation and
    an action after its compensation answer exactly as on SQL.

    Transient database errors (busy, deadlock, serialization failure) are
    retried here a few times with backoff before the step is answered
    "retry later". Handlers see params and, for a compensation, the output
    of the action (prior), and set their own output and error.

    One context per executing step; a context is used by one thread.
*/
#ifndef ZSAGA_WRK_STEP_H
#define ZSAGA_WRK_STEP_H

#include "messages/msg.h"
#include "wrk_db.h"
#include "wrk_fault.h"

typedef enum { WRK_OK = 0, WRK_FAILED, WRK_RETRY } wrk_status_t;

typedef struct wrk_ctx_s wrk_ctx_t;
typedef wrk_status_t(wrk_handler_fn)(wrk_ctx_t *ctx);

/* An operation: its handler, and what it declares in `ready` and in the
   catalogue (docs/operations-catalogue.md is printed from these): params
   and outputs as schema text (messages/msg_schema.h), its business rule,
   and the error codes it may fail with (space-separated). */
typedef struct {
    const char *name;
    wrk_handler_fn *fn;
    db_iso_t iso;
    const char *params;
    const char *outputs;
    const char *rule;
    const char *errors;
} wrk_op_t;

typedef struct {
    char key[MSG_NAME_MAX + 1];
    bool is_str;
    int64_t i;
    const char *s;
} wrk_out_t;

struct wrk_ctx_s {
    /* Set by the caller. */
    wrk_conn_t *db;
    const char *saga, *step, *op;
    msg_phase_t phase;
    uint32_t attempt;
    uint32_t statement_timeout_ms;
    db_iso_t iso;   /* the worker's level; an operation may ask for a stronger one */
    int64_t now_ms; /* wall clock, for timestamps */
    msg_kv_t params[MSG_MAX_PARAMS];
    int nparams;
    const void *system; /* the system's own settings */
    /* Set by wrk_step_run and handlers. */
    msg_kv_t prior[MSG_MAX_PARAMS]; /* compensation: the action's output */
    int nprior;
    wrk_out_t out[MSG_MAX_PARAMS];
    int nout;
    char code[MSG_CODE_MAX + 1];
    char message[MSG_TEXT_MAX + 1];
    bool transient, broken, duplicate;
    bool lua_ran;     /* Redis: the handler ran its barrier script */
    uint32_t replays; /* transactions run again for a deadlock, busy or serialization error */
    const wrk_fault_t *faults;
    uint8_t *prior_buf; /* bytes the prior kv strings point into */
    size_t prior_len;
    msgpack_sbuffer result; /* the output map sent back */
    char arena[8192];       /* NUL-terminated copies of strings */
    size_t alen;
};

void wrk_ctx_init(wrk_ctx_t *ctx);
void wrk_ctx_release(wrk_ctx_t *ctx);
/* Run the step. On return ctx->code/message/result hold the answer. */
wrk_status_t wrk_step_run(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults);

/* The barrier table, for a system's first migration. */
const char *wrk_barrier_ddl(db_dialect_t dialect);

/* A Redis step: the barrier prelude, the system's effect and the barrier
   epilogue as one script text (a string literal, so its address is
   stable). The effect defines

       local function effect(A, prior)

   with A the handler's arguments (strings) and prior the action's output
   for a compensation. It returns nil, OUT (a table of outputs, numbers or
   strings) on success, or CODE, MESSAGE to fail. It must check everything
   before it writes: Redis does not undo the writes of a script that
   stops half-way. Integers are formatted with string.format('%d') (Lua
   numbers are doubles: exact up to 2^53). */
#define WRK_LUA_STEP(effect) WRK_LUA_PRELUDE effect WRK_LUA_EPILOGUE
/* Run a Redis step: the script gets saga, step, phase, op and now_ms, then
   args, and its answer becomes the step's outcome. */
wrk_status_t wrk_step_lua(wrk_ctx_t *ctx, const char *script, const db_val_t *args, int nargs);

#define WRK_LUA_PRELUDE                                                                            \
    "local saga, step, phase, op = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"                           \
    "local now = tonumber(ARGV[5])\n"                                                              \
    "local A = {}\n"                                                                               \
    "for i = 6, #ARGV do A[i - 5] = ARGV[i] end\n"                                                 \
    "local kb = 'zsaga:barrier:{' .. saga .. '}:' .. step\n"                                       \
    "local ka, kc = kb .. ':action', kb .. ':compensation'\n"                                      \
    "local function enc(v)\n"                                                                      \
    "  if type(v) == 'number' then return 'i' .. string.format('%d', v) end\n"                     \
    "  return 's' .. tostring(v)\n"                                                                \
    "end\n"                                                                                        \
    "local function stored(k)\n"                                                                   \
    "  local h = redis.call('HGETALL', k)\n"                                                       \
    "  local r = {'', '', ''}\n"                                                                   \
    "  for i = 1, #h, 2 do\n"                                                                      \
    "    local f, v = h[i], h[i + 1]\n"                                                            \
    "    if f == 'state' then r[1] = v elseif f == 'code' then r[2] = v\n"                         \
    "    elseif f == 'message' then r[3] = v\n"                                                    \
    "    elseif string.sub(f, 1, 2) == 'o.' then r[#r + 1] = string.sub(f, 3); r[#r + 1] = v "     \
    "end\n"                                                                                        \
    "  end\n"                                                                                      \
    "  return r\n"                                                                                 \
    "end\n"                                                                                        \
    "local function record(k, state, code, message, out)\n"                                        \
    "  local a = {'state', state, 'op', op, 'created_ms', ARGV[5], 'code', code or '',\n"          \
    "             'message', message or ''}\n"                                                     \
    "  for key, v in pairs(out or {}) do a[#a + 1] = 'o.' .. key; a[#a + 1] = enc(v) end\n"        \
    "  redis.call('HSET', k, unpack(a))\n"                                                         \
    "  local r = {state, code or '', message or ''}\n"                                             \
    "  for key, v in pairs(out or {}) do r[#r + 1] = key; r[#r + 1] = enc(v) end\n"                \
    "  return r\n"                                                                                 \
    "end\n"

#define WRK_LUA_EPILOGUE                                                                           \
    "\nif phase == 'action' then\n"                                                                \
    "  if redis.call('EXISTS', ka) == 1 then\n"                                                    \
    "    local r = stored(ka); table.insert(r, 1, 'dup'); return r\n"                              \
    "  end\n"                                                                                      \
    "  local code, res = effect(A, nil)\n"                                                         \
    "  if code then return record(ka, 'failed', code, res, nil) end\n"                             \
    "  return record(ka, 'done', '', '', res)\n"                                                   \
    "end\n"                                                                                        \
    "if redis.call('EXISTS', ka) == 0 then\n"                                                      \
    "  redis.call('HSET', ka, 'state', 'blocked', 'op', op, 'created_ms', ARGV[5])\n"              \
    "  return record(kc, 'null', '', 'null compensation: the action never ran', nil)\n"            \
    "end\n"                                                                                        \
    "if redis.call('EXISTS', kc) == 1 then\n"                                                      \
    "  local r = stored(kc); table.insert(r, 1, 'dup'); return r\n"                                \
    "end\n"                                                                                        \
    "if redis.call('HGET', ka, 'state') ~= 'done' then\n"                                          \
    "  return record(kc, 'null', '', 'nothing to undo: the action did not apply', nil)\n"          \
    "end\n"                                                                                        \
    "local prior, s = {}, stored(ka)\n"                                                            \
    "for i = 4, #s, 2 do\n"                                                                        \
    "  local v = s[i + 1]\n"                                                                       \
    "  if string.sub(v, 1, 1) == 'i' then prior[s[i]] = tonumber(string.sub(v, 2))\n"              \
    "  else prior[s[i]] = string.sub(v, 2) end\n"                                                  \
    "end\n"                                                                                        \
    "local code, res = effect(A, prior)\n"                                                         \
    "if code then return {'failed', code, res} end\n"                                              \
    "return record(kc, 'done', '', '', res)\n"

/* ---- for handlers ---- */
/* Required and optional params. On a missing or wrong param they return
   false and set code "bad_params" with a reason. Strings are copies. */
bool wrk_str(wrk_ctx_t *ctx, const char *key, const char **out);
bool wrk_str_opt(wrk_ctx_t *ctx, const char *key, const char *def, const char **out);
bool wrk_int(wrk_ctx_t *ctx, const char *key, int64_t *out);
bool wrk_int_opt(wrk_ctx_t *ctx, const char *key, int64_t def, int64_t *out);
bool wrk_bool_opt(wrk_ctx_t *ctx, const char *key, bool def, bool *out);
/* A positive amount in minor units, at most 10^15. */
bool wrk_amount(wrk_ctx_t *ctx, const char *key, int64_t *out);
/* An ISO 4217 style code: three capital letters. */
bool wrk_currency(wrk_ctx_t *ctx, const char *key, const char **out);
/* The action's output, for compensations (NULL / false if absent). */
const char *wrk_prior_str(wrk_ctx_t *ctx, const char *key);
bool wrk_prior_int(wrk_ctx_t *ctx, const char *key, int64_t *out);

void wrk_out_str(wrk_ctx_t *ctx, const char *key, const char *val);
void wrk_out_int(wrk_ctx_t *ctx, const char *key, int64_t val);

wrk_status_t wrk_fail(wrk_ctx_t *ctx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
wrk_status_t wrk_retry_later(wrk_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Map a database error: retry later (busy, broken) or failed for good. */
wrk_status_t wrk_db_status(wrk_ctx_t *ctx, db_rc_t rc);
/* A reference number that depends only on (saga, step): PREFIX-16 hex.
   A re-run of the same step derives the same number. */
void wrk_ref(const wrk_ctx_t *ctx, const char *prefix, char out[48]);
/* Copy a string into the context's arena (NULL if it is full). */
const char *wrk_strdup(wrk_ctx_t *ctx, const char *s, size_t len);

#endif
