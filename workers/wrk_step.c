/*  wrk_step: the barrier and the handler helpers. See wrk_step.h. */
#include "wrk_step.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include <unistd.h>

#define LOCAL_TRIES 5

static const char *s_insert_sql[] = {
    [DB_DIALECT_SQLITE] = "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
                          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    [DB_DIALECT_POSTGRES] = "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    [DB_DIALECT_MYSQL] = "INSERT INTO zsaga_barrier (saga, step, phase, state, op, created_ms) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE saga = saga",
};

static const char *s_ddl[] = {
    [DB_DIALECT_SQLITE] = "CREATE TABLE zsaga_barrier ("
                          " saga TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL,"
                          " state TEXT NOT NULL, op TEXT NOT NULL, output BLOB,"
                          " code TEXT, message TEXT, created_ms INTEGER NOT NULL,"
                          " PRIMARY KEY (saga, step, phase))",
    [DB_DIALECT_POSTGRES] = "CREATE TABLE zsaga_barrier ("
                            " saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"
                            " phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL,"
                            " op VARCHAR(32) NOT NULL, output BYTEA, code VARCHAR(32),"
                            " message TEXT, created_ms BIGINT NOT NULL,"
                            " PRIMARY KEY (saga, step, phase))",
    [DB_DIALECT_MYSQL] = "CREATE TABLE zsaga_barrier ("
                         " saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"
                         " phase VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL,"
                         " op VARCHAR(32) NOT NULL, output BLOB, code VARCHAR(32),"
                         " message TEXT, created_ms BIGINT NOT NULL,"
                         " PRIMARY KEY (saga, step, phase)) ENGINE=InnoDB",
    /* Redis needs no table: the barrier is hashes, see WRK_LUA_STEP. */
    [DB_DIALECT_REDIS] = "return 'zsaga:barrier:{saga}:step:phase hashes'",
};

const char *wrk_barrier_ddl(db_dialect_t dialect)
{
    return s_ddl[dialect];
}

void wrk_ctx_init(wrk_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    msgpack_sbuffer_init(&ctx->result);
}

void wrk_ctx_release(wrk_ctx_t *ctx)
{
    msgpack_sbuffer_destroy(&ctx->result);
    free(ctx->prior_buf);
    ctx->prior_buf = NULL;
}

/* Forget what a previous try of this step left behind. */
static void s_reset(wrk_ctx_t *ctx)
{
    ctx->nout = ctx->nprior = 0;
    ctx->code[0] = ctx->message[0] = 0;
    ctx->transient = ctx->broken = ctx->duplicate = ctx->lua_ran = false;
    msgpack_sbuffer_clear(&ctx->result);
    free(ctx->prior_buf);
    ctx->prior_buf = NULL;
    /* Params point into the caller's buffer, not the arena; outputs and
       string copies restart from the beginning. */
    ctx->alen = 0;
}

void wrk_ref(const wrk_ctx_t *ctx, const char *prefix, char out[48])
{
    uint8_t h[8];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)ctx->saga, strlen(ctx->saga));
    crypto_generichash_update(&st, (const uint8_t *)"/", 1);
    crypto_generichash_update(&st, (const uint8_t *)ctx->step, strlen(ctx->step));
    crypto_generichash_final(&st, h, sizeof h);
    int n = snprintf(out, 48, "%.24s-", prefix);
    for (int i = 0; i < 8; i++)
        n += snprintf(out + n, (size_t)(48 - n), "%02X", h[i]);
}

const char *wrk_strdup(wrk_ctx_t *ctx, const char *s, size_t len)
{
    if (ctx->alen + len + 1 > sizeof ctx->arena)
        return NULL;
    char *d = ctx->arena + ctx->alen;
    memcpy(d, s, len);
    d[len] = 0;
    ctx->alen += len + 1;
    return d;
}

wrk_status_t wrk_fail(wrk_ctx_t *ctx, const char *code, const char *fmt, ...)
{
    va_list ap;
    snprintf(ctx->code, sizeof ctx->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    return WRK_FAILED;
}

wrk_status_t wrk_retry_later(wrk_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    snprintf(ctx->code, sizeof ctx->code, "retry");
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    return WRK_RETRY;
}

wrk_status_t wrk_db_status(wrk_ctx_t *ctx, db_rc_t rc)
{
    const char *e = wrk_db_error(ctx->db);
    switch (rc) {
    case DB_OK: return WRK_OK;
    case DB_RETRY:
        ctx->transient = true;
        snprintf(ctx->code, sizeof ctx->code, "db_busy");
        snprintf(ctx->message, sizeof ctx->message, "%s", e);
        return WRK_RETRY;
    case DB_BROKEN:
        ctx->broken = true;
        snprintf(ctx->code, sizeof ctx->code, "db_unavailable");
        snprintf(ctx->message, sizeof ctx->message, "%s", e);
        return WRK_RETRY;
    default: return wrk_fail(ctx, "db_error", "%s", e);
    }
}

/* ---- params ----------------------------------------------------------- */

static const msg_kv_t *s_param(wrk_ctx_t *ctx, const char *key)
{
    return msg_kv_find(ctx->params, ctx->nparams, key);
}

static bool s_bad(wrk_ctx_t *ctx, const char *key, const char *want)
{
    wrk_fail(ctx, "bad_params", "params.%s: %s", key, want);
    return false;
}

bool wrk_str_opt(wrk_ctx_t *ctx, const char *key, const char *def, const char **out)
{
    const msg_kv_t *kv = s_param(ctx, key);
    if (!kv || kv->type == MP_NIL) {
        *out = def;
        return true;
    }
    if (kv->type != MP_STR)
        return s_bad(ctx, key, "must be a string");
    if (!(*out = wrk_strdup(ctx, kv->s, kv->slen)))
        return s_bad(ctx, key, "too long");
    return true;
}

bool wrk_str(wrk_ctx_t *ctx, const char *key, const char **out)
{
    if (!wrk_str_opt(ctx, key, NULL, out))
        return false;
    if (!*out || !**out)
        return s_bad(ctx, key, "required string is missing");
    return true;
}

bool wrk_int_opt(wrk_ctx_t *ctx, const char *key, int64_t def, int64_t *out)
{
    const msg_kv_t *kv = s_param(ctx, key);
    if (!kv || kv->type == MP_NIL) {
        *out = def;
        return true;
    }
    if (kv->type != MP_INT)
        return s_bad(ctx, key, "must be an integer");
    *out = kv->i;
    return true;
}

bool wrk_int(wrk_ctx_t *ctx, const char *key, int64_t *out)
{
    const msg_kv_t *kv = s_param(ctx, key);
    if (!kv || kv->type == MP_NIL)
        return s_bad(ctx, key, "required integer is missing");
    return wrk_int_opt(ctx, key, 0, out);
}

bool wrk_bool_opt(wrk_ctx_t *ctx, const char *key, bool def, bool *out)
{
    const msg_kv_t *kv = s_param(ctx, key);
    if (!kv || kv->type == MP_NIL) {
        *out = def;
        return true;
    }
    if (kv->type != MP_BOOL)
        return s_bad(ctx, key, "must be a boolean");
    *out = kv->b;
    return true;
}

bool wrk_amount(wrk_ctx_t *ctx, const char *key, int64_t *out)
{
    if (!wrk_int(ctx, key, out))
        return false;
    if (*out <= 0 || *out > 1000000000000000ll)
        return s_bad(ctx, key, "amount must be between 1 and 10^15 minor units");
    return true;
}

bool wrk_currency(wrk_ctx_t *ctx, const char *key, const char **out)
{
    if (!wrk_str(ctx, key, out))
        return false;
    const char *c = *out;
    if (strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c[2] < 'A' ||
        c[2] > 'Z')
        return s_bad(ctx, key, "currency must be three capital letters, like USD");
    return true;
}

const char *wrk_prior_str(wrk_ctx_t *ctx, const char *key)
{
    const msg_kv_t *kv = msg_kv_find(ctx->prior, ctx->nprior, key);
    return kv && kv->type == MP_STR ? wrk_strdup(ctx, kv->s, kv->slen) : NULL;
}

bool wrk_prior_int(wrk_ctx_t *ctx, const char *key, int64_t *out)
{
    const msg_kv_t *kv = msg_kv_find(ctx->prior, ctx->nprior, key);
    if (!kv || kv->type != MP_INT)
        return false;
    *out = kv->i;
    return true;
}

static wrk_out_t *s_out_slot(wrk_ctx_t *ctx, const char *key)
{
    for (int i = 0; i < ctx->nout; i++)
        if (strcmp(ctx->out[i].key, key) == 0)
            return &ctx->out[i];
    if (ctx->nout == MSG_MAX_PARAMS)
        return NULL;
    wrk_out_t *o = &ctx->out[ctx->nout++];
    snprintf(o->key, sizeof o->key, "%s", key);
    return o;
}

void wrk_out_str(wrk_ctx_t *ctx, const char *key, const char *val)
{
    wrk_out_t *o = s_out_slot(ctx, key);
    if (o) {
        o->is_str = true;
        o->s = wrk_strdup(ctx, val, strlen(val));
        if (!o->s)
            o->s = "";
    }
}

void wrk_out_int(wrk_ctx_t *ctx, const char *key, int64_t val)
{
    wrk_out_t *o = s_out_slot(ctx, key);
    if (o) {
        o->is_str = false;
        o->i = val;
    }
}

static void s_pack_output(wrk_ctx_t *ctx)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&ctx->result);
    msgpack_packer_init(&pk, &ctx->result, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)ctx->nout);
    for (int i = 0; i < ctx->nout; i++) {
        mp_pack_cstr(&pk, ctx->out[i].key);
        if (ctx->out[i].is_str)
            mp_pack_cstr(&pk, ctx->out[i].s);
        else
            msgpack_pack_int64(&pk, ctx->out[i].i);
    }
}

/* ---- the barrier ------------------------------------------------------ */

static db_rc_t s_insert(wrk_ctx_t *ctx, const char *phase, const char *state)
{
    return wrk_db_exec(ctx->db, s_insert_sql[wrk_db_dialect(ctx->db)], DB_S(ctx->saga),
                       DB_S(ctx->step), DB_S(phase), DB_S(state), DB_S(ctx->op), DB_I(ctx->now_ms));
}

/* Read a barrier row: state, output, code, message. */
static db_rc_t s_select(wrk_ctx_t *ctx, const char *phase)
{
    return wrk_db_exec(ctx->db,
                       "SELECT state, output, code, message FROM zsaga_barrier "
                       "WHERE saga = ? AND step = ? AND phase = ?",
                       DB_S(ctx->saga), DB_S(ctx->step), DB_S(phase));
}

/* Set a barrier row's verdict: the last statement of a step's
   transaction, so it goes with the commit. */
static wrk_status_t s_mark_commit(wrk_ctx_t *ctx, const char *phase, const char *state,
                                  bool with_output, const wrk_fault_t *faults)
{
    if (with_output)
        s_pack_output(ctx);
    wrk_fault_crash_point(faults, WRK_FAULT_CRASH_BEFORE_COMMIT, ctx->op);
    db_rc_t rc = wrk_db_exec_commit(
        ctx->db,
        "UPDATE zsaga_barrier SET state = ?, output = ?, code = ?, message = ? "
        "WHERE saga = ? AND step = ? AND phase = ?",
        DB_S(state), with_output ? DB_B(ctx->result.data, ctx->result.size) : DB_NULLV,
        ctx->code[0] ? DB_S(ctx->code) : DB_NULLV, ctx->message[0] ? DB_S(ctx->message) : DB_NULLV,
        DB_S(ctx->saga), DB_S(ctx->step), DB_S(phase));
    if (rc) {
        wrk_db_rollback(ctx->db);
        return wrk_db_status(ctx, rc);
    }
    wrk_fault_crash_point(faults, WRK_FAULT_CRASH_AFTER_COMMIT, ctx->op);
    return WRK_OK;
}

/* Keep the stored output of a row (column 1 of the last select). */
static void s_keep_output(wrk_ctx_t *ctx, bool as_prior)
{
    const db_val_t *v = wrk_db_val(ctx->db, 0, 1);
    if (v->type != DB_BLOB && v->type != DB_TEXT)
        return;
    if (!as_prior) {
        msgpack_sbuffer_clear(&ctx->result);
        msgpack_sbuffer_write(&ctx->result, v->s, v->len);
        return;
    }
    char err[256];
    if ((ctx->prior_buf = malloc(v->len ? v->len : 1))) {
        memcpy(ctx->prior_buf, v->s, v->len);
        ctx->prior_len = v->len;
        int n = msg_params_parse(ctx->prior_buf, v->len, ctx->prior, err, sizeof err);
        ctx->nprior = n > 0 ? n : 0;
    }
}

static wrk_status_t s_commit(wrk_ctx_t *ctx, const wrk_fault_t *faults)
{
    wrk_fault_crash_point(faults, WRK_FAULT_CRASH_BEFORE_COMMIT, ctx->op);
    db_rc_t rc = wrk_db_commit(ctx->db);
    if (rc) {
        wrk_db_rollback(ctx->db);
        return wrk_db_status(ctx, rc);
    }
    wrk_fault_crash_point(faults, WRK_FAULT_CRASH_AFTER_COMMIT, ctx->op);
    return WRK_OK;
}

/* Undo and answer with the database's complaint. */
static wrk_status_t s_abort(wrk_ctx_t *ctx, db_rc_t rc)
{
    wrk_status_t st = wrk_db_status(ctx, rc);
    wrk_db_rollback(ctx->db);
    return st;
}

static wrk_status_t s_injected(wrk_ctx_t *ctx, const wrk_fault_t *faults)
{
    const wrk_fault_rule_t *r;
    if ((r = wrk_fault_find(faults, WRK_FAULT_DELAY, ctx->op)))
        usleep(r->arg * 1000u);
    if (wrk_fault_find(faults, WRK_FAULT_FAIL, ctx->op))
        return wrk_fail(ctx, "injected", "injected failure of %s", ctx->op);
    if ((r = wrk_fault_find(faults, WRK_FAULT_RETRY, ctx->op)) && ctx->attempt <= r->arg)
        return wrk_retry_later(ctx, "injected retry of %s (try %u)", ctx->op, ctx->attempt);
    return WRK_OK;
}

static wrk_status_t s_run_handler(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults)
{
    wrk_status_t st = s_injected(ctx, faults);
    return st == WRK_OK ? op->fn(ctx) : st;
}

/* The stronger of the worker's level and the operation's: an operation
   that needs REPEATABLE READ keeps it on a READ COMMITTED worker, and a
   SERIALIZABLE worker is never weakened by an operation. */
static db_iso_t s_iso(const wrk_ctx_t *ctx, const wrk_op_t *op)
{
    return op->iso > ctx->iso ? op->iso : ctx->iso;
}

static wrk_status_t s_action(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults)
{
    db_rc_t rc;
    if ((rc = wrk_db_begin(ctx->db, s_iso(ctx, op), ctx->statement_timeout_ms)))
        return s_abort(ctx, rc);
    if ((rc = s_insert(ctx, "action", "running")))
        return s_abort(ctx, rc);
    if (wrk_db_changes(ctx->db) == 0) {
        /* Seen before: answer from the row, change nothing. */
        if ((rc = s_select(ctx, "action")))
            return s_abort(ctx, rc);
        char state[16];
        snprintf(state, sizeof state, "%s", wrk_db_text(ctx->db, 0, 0));
        snprintf(ctx->code, sizeof ctx->code, "%s", wrk_db_text(ctx->db, 0, 2));
        snprintf(ctx->message, sizeof ctx->message, "%s", wrk_db_text(ctx->db, 0, 3));
        s_keep_output(ctx, false);
        wrk_db_rollback(ctx->db);
        ctx->duplicate = true;
        if (strcmp(state, "done") == 0)
            return WRK_OK;
        if (strcmp(state, "blocked") == 0)
            return wrk_fail(ctx, "compensated",
                            "refused: the compensation of this step already ran");
        return WRK_FAILED;
    }
    if ((rc = wrk_db_exec(ctx->db, "SAVEPOINT zsaga_op")))
        return s_abort(ctx, rc);
    wrk_status_t st = s_run_handler(ctx, op, faults);
    if (st == WRK_OK) {
        return s_mark_commit(ctx, "action", "done", true, faults);
    }
    if (st == WRK_FAILED && !ctx->transient && !ctx->broken) {
        /* Failed for good: undo the effect, keep the verdict, so no later
           try of this step can act (and the orchestrator need not undo it). */
        char code[sizeof ctx->code], msg[sizeof ctx->message];
        memcpy(code, ctx->code, sizeof code);
        memcpy(msg, ctx->message, sizeof msg);
        if ((rc = wrk_db_exec(ctx->db, "ROLLBACK TO SAVEPOINT zsaga_op")))
            return s_abort(ctx, rc);
        wrk_status_t cst = s_mark_commit(ctx, "action", "failed", false, faults);
        if (cst != WRK_OK)
            return cst;
        memcpy(ctx->code, code, sizeof code);
        memcpy(ctx->message, msg, sizeof msg);
        return WRK_FAILED;
    }
    wrk_db_rollback(ctx->db);
    return WRK_RETRY;
}

static wrk_status_t s_compensate(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults)
{
    db_rc_t rc;
    if ((rc = wrk_db_begin(ctx->db, s_iso(ctx, op), ctx->statement_timeout_ms)))
        return s_abort(ctx, rc);
    if ((rc = s_insert(ctx, "action", "blocked")))
        return s_abort(ctx, rc);
    if (wrk_db_changes(ctx->db) == 1) {
        /* The action never ran, and the row we just wrote stops it for good. */
        if ((rc = s_insert(ctx, "compensation", "null")))
            return s_abort(ctx, rc);
        snprintf(ctx->message, sizeof ctx->message, "null compensation: the action never ran");
        return s_commit(ctx, faults);
    }
    if ((rc = s_insert(ctx, "compensation", "running")))
        return s_abort(ctx, rc);
    if (wrk_db_changes(ctx->db) == 0) {
        if ((rc = s_select(ctx, "compensation")))
            return s_abort(ctx, rc);
        wrk_db_rollback(ctx->db);
        ctx->duplicate = true;
        return WRK_OK;
    }
    if ((rc = s_select(ctx, "action")))
        return s_abort(ctx, rc);
    if (strcmp(wrk_db_text(ctx->db, 0, 0), "done") != 0) {
        /* The action failed (rolled back) or was blocked: nothing to undo. */
        snprintf(ctx->message, sizeof ctx->message, "nothing to undo: the action did not apply");
        return s_mark_commit(ctx, "compensation", "null", false, faults);
    }
    s_keep_output(ctx, true);
    if ((rc = wrk_db_exec(ctx->db, "SAVEPOINT zsaga_op")))
        return s_abort(ctx, rc);
    wrk_status_t st = s_run_handler(ctx, op, faults);
    if (st != WRK_OK) {
        /* A compensation that fails is not recorded: it must stay
           possible to run it again (by retry, or an operator). */
        wrk_db_rollback(ctx->db);
        return st;
    }
    return s_mark_commit(ctx, "compensation", "done", true, faults);
}

/* ---- Redis: the barrier is in the script -------------------------------- */

/* Turn a typed reply value ('i123' or 'stext') into an output. */
static void s_lua_out(wrk_ctx_t *ctx, const char *key, const char *v)
{
    if (v[0] == 'i')
        wrk_out_int(ctx, key, strtoll(v + 1, NULL, 10));
    else
        wrk_out_str(ctx, key, v[0] ? v + 1 : v);
}

wrk_status_t wrk_step_lua(wrk_ctx_t *ctx, const char *script, const db_val_t *args, int nargs)
{
    db_val_t argv[5 + MSG_MAX_PARAMS];
    if (nargs > MSG_MAX_PARAMS)
        return wrk_fail(ctx, "bad_params", "too many script arguments");
    ctx->lua_ran = true;
    argv[0] = DB_S(ctx->saga);
    argv[1] = DB_S(ctx->step);
    argv[2] = DB_S(msg_phase_name(ctx->phase));
    argv[3] = DB_S(ctx->op);
    argv[4] = DB_I(ctx->now_ms);
    for (int i = 0; i < nargs; i++)
        argv[5 + i] = args[i];
    wrk_fault_crash_point(ctx->faults, WRK_FAULT_CRASH_BEFORE_COMMIT, ctx->op);
    db_rc_t rc = wrk_db_execv(ctx->db, script, argv, 5 + nargs);
    if (rc)
        return wrk_db_status(ctx, rc);
    int ncols = wrk_db_nrows(ctx->db) == 1 ? ctx->db->rows.ncols : 0;
    char status[16];
    snprintf(status, sizeof status, "%s", wrk_db_text(ctx->db, 0, 0));
    int at = 1; /* a duplicate carries the stored state first */
    if (strcmp(status, "dup") == 0) {
        ctx->duplicate = true;
        snprintf(status, sizeof status, "%s", wrk_db_text(ctx->db, 0, 1));
        at = 2;
    } else {
        wrk_fault_crash_point(ctx->faults, WRK_FAULT_CRASH_AFTER_COMMIT, ctx->op);
    }
    if (ncols < at + 2)
        return wrk_fail(ctx, "db_error", "redis: the barrier script gave a short answer");
    snprintf(ctx->code, sizeof ctx->code, "%s", wrk_db_text(ctx->db, 0, at));
    snprintf(ctx->message, sizeof ctx->message, "%s", wrk_db_text(ctx->db, 0, at + 1));
    for (int col = at + 2; col + 1 < ncols; col += 2)
        s_lua_out(ctx, wrk_db_text(ctx->db, 0, col), wrk_db_text(ctx->db, 0, col + 1));
    if (ctx->duplicate)
        s_pack_output(ctx); /* the stored output, as the first answer gave it */
    if (strcmp(status, "done") == 0 || strcmp(status, "null") == 0)
        return WRK_OK;
    if (strcmp(status, "blocked") == 0)
        return wrk_fail(ctx, "compensated", "refused: the compensation of this step already ran");
    if (strcmp(status, "failed") == 0)
        return WRK_FAILED;
    return wrk_fail(ctx, "db_error", "redis: the barrier script answered '%s'", status);
}

static wrk_status_t s_lua_step(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults)
{
    wrk_status_t st = s_run_handler(ctx, op, faults);
    if (!ctx->lua_ran && st == WRK_OK)
        return wrk_fail(ctx, "unsupported", "operation %s has no Redis implementation", ctx->op);
    return st;
}

wrk_status_t wrk_step_run(wrk_ctx_t *ctx, const wrk_op_t *op, const wrk_fault_t *faults)
{
    wrk_status_t st = WRK_RETRY;
    ctx->faults = faults;
    ctx->replays = 0;
    for (int t = 0; t < LOCAL_TRIES; t++) {
        s_reset(ctx);
        if (wrk_db_dialect(ctx->db) == DB_DIALECT_REDIS)
            st = s_lua_step(ctx, op, faults);
        else
            st = ctx->phase == MSG_PHASE_ACTION ? s_action(ctx, op, faults)
                                                : s_compensate(ctx, op, faults);
        if (st != WRK_RETRY || !ctx->transient || ctx->broken)
            break;
        /* Busy, deadlock, serialization failure: the database asks for the
           whole transaction again; do it here before troubling the saga. */
        ctx->replays++;
        usleep((useconds_t)(5000u << t) + (useconds_t)(random() % 5000));
    }
    if (st == WRK_OK && !ctx->duplicate && ctx->result.size == 0)
        s_pack_output(ctx);
    return st;
}
