/*  zsaga-worker-payments: payment schedules, payments and reversals.

    A payment schedule is the monthly instalment plan of a loan. The
    instalment is the annuity P * r / (1 - (1 + r)^-n), computed in 10^12
    fixed point with 128-bit integers and rounded up to the minor unit:
    no floating point touches an amount. A payment goes to a beneficiary
    and fails for good when the beneficiary is blocked or the amount is
    above the payment limit of its currency.
*/
#include "workers/wrk_name.h"
#include "workers/wrk_runtime.h"

#include <stdio.h>
#include <string.h>

#define FX_SCALE ((__int128)1000000000000ll)

/* Monthly instalment for principal at rate_bp per year over term months. */
static int64_t s_instalment(int64_t principal, int64_t rate_bp, int64_t term)
{
    if (rate_bp == 0)
        return (principal + term - 1) / term;
    __int128 r = (__int128)rate_bp * FX_SCALE / 120000; /* monthly rate */
    __int128 f = FX_SCALE;                              /* (1 + r)^n */
    for (int64_t i = 0; i < term; i++)
        f = f * (FX_SCALE + r) / FX_SCALE;
    __int128 num = (__int128)principal * r / FX_SCALE * f;
    __int128 den = f - FX_SCALE;
    return (int64_t)((num + den - 1) / den);
}

static wrk_status_t op_setup_payment_schedule(wrk_ctx_t *c)
{
    const char *loan, *cur;
    int64_t principal, rate_bp, term;
    if (!wrk_str(c, "loan_account", &loan) || !wrk_amount(c, "principal", &principal) ||
        !wrk_currency(c, "currency", &cur) || !wrk_int(c, "rate_bp", &rate_bp) ||
        !wrk_int(c, "term_months", &term))
        return WRK_FAILED;
    if (rate_bp < 0 || rate_bp > 5000 || term < 1 || term > 480)
        return wrk_fail(c, "bad_params", "rate_bp must be 0-5000 and term_months 1-480");
    int64_t inst = s_instalment(principal, rate_bp, term);
    char id[48];
    wrk_ref(c, "PS", id);
    db_rc_t rc = wrk_db_exec(c->db,
                             "INSERT INTO payment_schedules (id, saga, step, loan_account, "
                             "principal, currency, rate_bp, term_months, instalment, status, "
                             "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
                             DB_S(id), DB_S(c->saga), DB_S(c->step), DB_S(loan), DB_I(principal),
                             DB_S(cur), DB_I(rate_bp), DB_I(term), DB_I(inst), DB_I(c->now_ms));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_str(c, "schedule", id);
    wrk_out_int(c, "instalment", inst);
    wrk_out_int(c, "term_months", term);
    return WRK_OK;
}

static wrk_status_t op_cancel_payment_schedule(wrk_ctx_t *c)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE payment_schedules SET status = 'cancelled', cancelled_ms = ? "
                             "WHERE saga = ? AND step = ? AND status = 'active'",
                             DB_I(c->now_ms), DB_S(c->saga), DB_S(c->step));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_int(c, "cancelled", wrk_db_changes(c->db));
    return WRK_OK;
}

static wrk_status_t op_process_payment(wrk_ctx_t *c)
{
    const char *from, *to, *cur, *ref;
    int64_t amount;
    if (!wrk_str(c, "from_account", &from) || !wrk_str(c, "beneficiary", &to) ||
        !wrk_amount(c, "amount", &amount) || !wrk_currency(c, "currency", &cur) ||
        !wrk_str_opt(c, "reference", "", &ref))
        return WRK_FAILED;
    /* The list holds names in screening form (wrk_name.h); so is the
       beneficiary before the lookup, so no spelling slips past it. */
    char norm[256], nerr[128];
    if (wrk_name_normalize(to, strlen(to), norm, sizeof norm, nerr, sizeof nerr))
        return wrk_fail(c, "bad_params", "beneficiary: %s", nerr);
    db_rc_t rc = wrk_db_exec(
        c->db, "SELECT reason FROM blocked_beneficiaries WHERE beneficiary = ?", DB_S(norm));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) > 0)
        return wrk_fail(c, "beneficiary_blocked", "beneficiary %s is blocked: %s", to,
                        wrk_db_text(c->db, 0, 0));
    if ((rc = wrk_db_exec(c->db, "SELECT max_amount FROM payment_limits WHERE currency = ?",
                          DB_S(cur))))
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) > 0 && amount > wrk_db_int(c->db, 0, 0))
        return wrk_fail(c, "limit_exceeded", "payment of %lld exceeds the %s limit of %lld",
                        (long long)amount, cur, (long long)wrk_db_int(c->db, 0, 0));
    char id[48];
    wrk_ref(c, "PM", id);
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO payments (id, saga, step, from_account, beneficiary, "
                          "amount, currency, reference, status, created_ms) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'processed', ?)",
                          DB_S(id), DB_S(c->saga), DB_S(c->step), DB_S(from), DB_S(to),
                          DB_I(amount), DB_S(cur), DB_S(ref), DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_str(c, "payment", id);
    wrk_out_int(c, "amount", amount);
    return WRK_OK;
}

static wrk_status_t op_reverse_payment(wrk_ctx_t *c)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE payments SET status = 'reversed', reversed_ms = ? "
                             "WHERE saga = ? AND step = ? AND status = 'processed'",
                             DB_I(c->now_ms), DB_S(c->saga), DB_S(c->step));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_int(c, "reversed", wrk_db_changes(c->db));
    return WRK_OK;
}

/* PostgreSQL and MariaDB share one text (VARCHAR keys, BIGINT money). */
#define PAYMENTS_V1(ENGINE)                                                                        \
    "CREATE TABLE payment_schedules (id VARCHAR(64) PRIMARY KEY, saga VARCHAR(64) NOT NULL,"       \
    " step VARCHAR(64) NOT NULL, loan_account VARCHAR(64) NOT NULL, principal BIGINT NOT NULL,"    \
    " currency CHAR(3) NOT NULL, rate_bp BIGINT NOT NULL, term_months BIGINT NOT NULL,"            \
    " instalment BIGINT NOT NULL, status VARCHAR(16) NOT NULL, created_ms BIGINT NOT NULL,"        \
    " cancelled_ms BIGINT, UNIQUE (saga, step))" ENGINE ";"                                        \
    "CREATE TABLE payments (id VARCHAR(64) PRIMARY KEY, saga VARCHAR(64) NOT NULL,"                \
    " step VARCHAR(64) NOT NULL, from_account VARCHAR(64) NOT NULL,"                               \
    " beneficiary VARCHAR(128) NOT NULL, amount BIGINT NOT NULL, currency CHAR(3) NOT NULL,"       \
    " reference VARCHAR(255) NOT NULL, status VARCHAR(16) NOT NULL, created_ms BIGINT NOT NULL,"   \
    " reversed_ms BIGINT, UNIQUE (saga, step))" ENGINE ";"                                         \
    "CREATE TABLE blocked_beneficiaries (beneficiary VARCHAR(128) PRIMARY KEY,"                    \
    " reason VARCHAR(255) NOT NULL)" ENGINE ";"                                                    \
    "CREATE TABLE payment_limits (currency CHAR(3) PRIMARY KEY, max_amount BIGINT NOT "            \
    "NULL)" ENGINE
#define PAYMENTS_V1_DOWN                                                                           \
    "DROP TABLE payment_limits; DROP TABLE blocked_beneficiaries; DROP TABLE payments;"            \
    " DROP TABLE payment_schedules"

static const wrk_migration_t s_migrations[] = {
    { 1,
      "payment schedules, payments, limits",
      { [DB_DIALECT_SQLITE] =
            "CREATE TABLE payment_schedules (id TEXT PRIMARY KEY, saga TEXT NOT NULL,"
            " step TEXT NOT NULL, loan_account TEXT NOT NULL, principal INTEGER NOT NULL,"
            " currency TEXT NOT NULL, rate_bp INTEGER NOT NULL, term_months INTEGER NOT NULL,"
            " instalment INTEGER NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,"
            " cancelled_ms INTEGER, UNIQUE (saga, step));"
            "CREATE TABLE payments (id TEXT PRIMARY KEY, saga TEXT NOT NULL, step TEXT NOT NULL,"
            " from_account TEXT NOT NULL, beneficiary TEXT NOT NULL, amount INTEGER NOT NULL,"
            " currency TEXT NOT NULL, reference TEXT NOT NULL, status TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL, reversed_ms INTEGER, UNIQUE (saga, step));"
            "CREATE TABLE blocked_beneficiaries (beneficiary TEXT PRIMARY KEY, reason TEXT NOT "
            "NULL);"
            "CREATE TABLE payment_limits (currency TEXT PRIMARY KEY, max_amount INTEGER NOT "
            "NULL)",
        [DB_DIALECT_POSTGRES] = PAYMENTS_V1(""),
        [DB_DIALECT_MYSQL] = PAYMENTS_V1(" ENGINE=InnoDB") },
      { [DB_DIALECT_SQLITE] = PAYMENTS_V1_DOWN,
        [DB_DIALECT_POSTGRES] = PAYMENTS_V1_DOWN,
        [DB_DIALECT_MYSQL] = PAYMENTS_V1_DOWN } },
};

static db_rc_t s_seed_demo(wrk_conn_t *db)
{
    db_rc_t rc = wrk_db_exec(db, "INSERT INTO blocked_beneficiaries (beneficiary, reason) VALUES "
                                 "('BEN-SANCTIONED', 'sanctions list match')");
    if (!rc)
        rc = wrk_db_exec(db, "INSERT INTO payment_limits (currency, max_amount) VALUES "
                             "('USD', 100000000), ('EUR', 100000000)");
    return rc;
}

static const wrk_op_t s_ops[] = {
    { "setup_payment_schedule", op_setup_payment_schedule, DB_ISO_DEFAULT,
      "loan_account:str principal:int1..1000000000000000 currency:str rate_bp:int0..5000 "
      "term_months:int1..480",
      "schedule:str instalment:int term_months:int",
      "Creates an active schedule. The monthly instalment is the annuity P * r / (1 - (1 + r)^-n), "
      "r = rate_bp / 120000, computed in 10^12 fixed point with 128-bit integers and rounded up to "
      "the minor unit (rate 0: principal / term_months, rounded up).",
      "bad_params" },
    { "cancel_payment_schedule", op_cancel_payment_schedule, DB_ISO_DEFAULT, "", "cancelled:int",
      "The compensation of setup_payment_schedule: cancels the schedule it created.", "" },
    { "process_payment", op_process_payment, DB_ISO_DEFAULT,
      "from_account:str beneficiary:str amount:int1..1000000000000000 currency:str reference:str?",
      "payment:str amount:int",
      "Pays a beneficiary after sanctions screening (names compared in normalized form) and within "
      "the per-currency payment limit.",
      "bad_params beneficiary_blocked limit_exceeded" },
    { "reverse_payment", op_reverse_payment, DB_ISO_DEFAULT, "", "reversed:int",
      "The compensation of process_payment: marks the payment reversed.", "" },
};

const wrk_system_t payments_system = {
    "payments",
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
    return wrk_main(&payments_system, argc, argv);
}
