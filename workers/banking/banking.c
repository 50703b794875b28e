/*  zsaga-worker-banking: the core banking system.

    Customers and accounts (checking, savings, investment, loan, credit)
    with balances in integer minor units, holds, an overdraft limit, a
    ledger row for every balance change, loans, fees and currency
    exchange at fixed-point rates (rate_micros: units of the quote currency
    per unit of the base currency, times 10^6).

    The invariant every operation keeps, enforced by a CHECK as well:
        balance - held >= -overdraft_limit
    Balance changes are single conditional UPDATEs, so two steps racing on
    one account can neither lose an update nor overdraw it.
*/
#include "workers/wrk_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared pieces ---------------------------------------------------- */

/* Why a conditional update on an account changed nothing. need is what a
   debit wanted; a credit (need 0) can only have met the balance's end. */
static wrk_status_t s_why(wrk_ctx_t *c, const char *account, const char *currency, int64_t need)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "SELECT currency, status, balance, held, overdraft_limit "
                             "FROM accounts WHERE number = ?",
                             DB_S(account));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0)
        return wrk_fail(c, "no_account", "account %s does not exist", account);
    if (strcmp(wrk_db_text(c->db, 0, 0), currency) != 0)
        return wrk_fail(c, "currency_mismatch", "account %s holds %s, not %s", account,
                        wrk_db_text(c->db, 0, 0), currency);
    if (strcmp(wrk_db_text(c->db, 0, 1), "active") != 0)
        return wrk_fail(c, "account_inactive", "account %s is %s", account,
                        wrk_db_text(c->db, 0, 1));
    if (need == 0)
        return wrk_fail(c, "balance_overflow",
                        "account %s cannot hold more: its balance would pass the largest "
                        "amount kept (2^63 - 1 minor units)",
                        account);
    int64_t avail = wrk_db_int(c->db, 0, 2) - wrk_db_int(c->db, 0, 3) + wrk_db_int(c->db, 0, 4);
    return wrk_fail(c, "insufficient_funds",
                    "account %s has %lld.%02lld %s available, %lld.%02lld needed", account,
                    (long long)(avail / 100), (long long)(avail < 0 ? -avail % 100 : avail % 100),
                    currency, (long long)(need / 100), (long long)(need % 100));
}

/* Only its error is read: on PostgreSQL it goes with the next statement. */
static db_rc_t s_ledger(wrk_ctx_t *c, const char *account, int64_t amount, const char *currency,
                        const char *kind)
{
    return wrk_db_exec_quiet(
        c->db,
        "INSERT INTO ledger (saga, step, phase, account, amount, currency, kind, "
        "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        DB_S(c->saga), DB_S(c->step), DB_S(msg_phase_name(c->phase)), DB_S(account), DB_I(amount),
        DB_S(currency), DB_S(kind), DB_I(c->now_ms));
}

/* The new balance comes back with the update where the dialect has
   UPDATE ... RETURNING (PostgreSQL, SQLite), saving the read after it;
   MariaDB has it only for INSERT and DELETE. */
static bool s_returning(wrk_ctx_t *c, const int64_t *balance)
{
    db_dialect_t d = wrk_db_dialect(c->db);
    return balance && (d == DB_DIALECT_POSTGRES || d == DB_DIALECT_SQLITE);
}

#define DEBIT_SQL                                                                                  \
    "UPDATE accounts SET balance = balance - ? WHERE number = ? AND currency = ? AND status = "    \
    "'active' AND balance - held - ? >= -overdraft_limit"
/* Never past INT64_MAX: PostgreSQL and MariaDB would raise an error, but
   SQLite turns the sum into a float and the credit "succeeds". */
#define CREDIT_SQL                                                                                 \
    "UPDATE accounts SET balance = balance + ? WHERE number = ? AND currency = ? AND status = "    \
    "'active' AND balance <= ?"

/* Move amount into (credit) or out of (debit, within the overdraft limit)
   an account, and write its ledger row. *balance (if asked for and the
   dialect returns it) gets the new balance, *known says whether it did. */
static wrk_status_t s_change(wrk_ctx_t *c, bool debit, const char *account, int64_t amount,
                             const char *currency, const char *kind, int64_t *balance, bool *known)
{
    bool ret = s_returning(c, balance);
    const char *sql = debit ? (ret ? DEBIT_SQL " RETURNING balance" : DEBIT_SQL)
                            : (ret ? CREDIT_SQL " RETURNING balance" : CREDIT_SQL);
    db_rc_t rc = wrk_db_exec(c->db, sql, DB_I(amount), DB_S(account), DB_S(currency),
                             DB_I(debit ? amount : INT64_MAX - amount));
    if (known)
        *known = false;
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0)
        return s_why(c, account, currency, debit ? amount : 0);
    if (ret && wrk_db_nrows(c->db) == 1) {
        *balance = wrk_db_int(c->db, 0, 0);
        *known = true;
    }
    if ((rc = s_ledger(c, account, debit ? -amount : amount, currency, kind)))
        return wrk_db_status(c, rc);
    return WRK_OK;
}

static wrk_status_t s_debit(wrk_ctx_t *c, const char *account, int64_t amount, const char *currency,
                            const char *kind)
{
    return s_change(c, true, account, amount, currency, kind, NULL, NULL);
}

static wrk_status_t s_credit(wrk_ctx_t *c, const char *account, int64_t amount,
                             const char *currency, const char *kind)
{
    return s_change(c, false, account, amount, currency, kind, NULL, NULL);
}

/* The account's balance as output `key`. A failed read fails the step
   like any other statement: the transaction may be aborted by it. */
static wrk_status_t s_out_balance(wrk_ctx_t *c, const char *key, const char *account)
{
    db_rc_t rc = wrk_db_exec(c->db, "SELECT balance FROM accounts WHERE number = ?", DB_S(account));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 1)
        wrk_out_int(c, key, wrk_db_int(c->db, 0, 0));
    return WRK_OK;
}

/* ---- debit and credit ------------------------------------------------- */

static wrk_status_t op_debit_account(wrk_ctx_t *c)
{
    const char *acct, *cur;
    int64_t amount;
    if (!wrk_str(c, "account", &acct) || !wrk_amount(c, "amount", &amount) ||
        !wrk_currency(c, "currency", &cur))
        return WRK_FAILED;
    int64_t bal;
    bool known;
    wrk_status_t st = s_change(c, true, acct, amount, cur, "debit", &bal, &known);
    if (st == WRK_OK) {
        wrk_out_str(c, "account", acct);
        wrk_out_int(c, "amount", amount);
        if (known)
            wrk_out_int(c, "balance", bal);
        else
            st = s_out_balance(c, "balance", acct);
    }
    return st;
}

static wrk_status_t op_credit_account(wrk_ctx_t *c)
{
    const char *acct, *cur;
    int64_t amount;
    if (!wrk_str(c, "account", &acct) || !wrk_amount(c, "amount", &amount) ||
        !wrk_currency(c, "currency", &cur))
        return WRK_FAILED;
    int64_t bal;
    bool known;
    wrk_status_t st = s_change(c, false, acct, amount, cur, "credit", &bal, &known);
    if (st == WRK_OK) {
        wrk_out_str(c, "account", acct);
        wrk_out_int(c, "amount", amount);
        if (known)
            wrk_out_int(c, "balance", bal);
        else
            st = s_out_balance(c, "balance", acct);
    }
    return st;
}

/* Both legs of a transfer inside this bank, in one transaction. */
static wrk_status_t s_transfer(wrk_ctx_t *c, bool reverse)
{
    const char *from, *to, *cur;
    int64_t amount;
    if (!wrk_str(c, "from_account", &from) || !wrk_str(c, "to_account", &to) ||
        !wrk_amount(c, "amount", &amount) || !wrk_currency(c, "currency", &cur))
        return WRK_FAILED;
    if (strcmp(from, to) == 0)
        return wrk_fail(c, "bad_params", "a transfer needs two different accounts");
    if (reverse) {
        const char *t = from;
        from = to;
        to = t;
    }
    /* Lock the two rows in account-number order, whatever the direction:
       transfers A->B and B->A running at once then queue instead of
       deadlocking (which PostgreSQL detects only after deadlock_timeout). */
    wrk_status_t st;
    if (strcmp(from, to) < 0) {
        st = s_debit(c, from, amount, cur, "transfer_out");
        if (st == WRK_OK)
            st = s_credit(c, to, amount, cur, "transfer_in");
    } else {
        st = s_credit(c, to, amount, cur, "transfer_in");
        if (st == WRK_OK)
            st = s_debit(c, from, amount, cur, "transfer_out");
    }
    if (st == WRK_OK && (st = s_out_balance(c, "from_balance", from)) == WRK_OK)
        st = s_out_balance(c, "to_balance", to);
    return st;
}

static wrk_status_t op_transfer(wrk_ctx_t *c)
{
    return s_transfer(c, false);
}

static wrk_status_t op_reverse_transfer(wrk_ctx_t *c)
{
    return s_transfer(c, true);
}

/* ---- holds ------------------------------------------------------------ */

static wrk_status_t op_place_hold(wrk_ctx_t *c)
{
    const char *acct, *cur;
    int64_t amount;
    if (!wrk_str(c, "account", &acct) || !wrk_amount(c, "amount", &amount) ||
        !wrk_currency(c, "currency", &cur))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE accounts SET held = held + ? WHERE number = ? AND "
                             "currency = ? AND status = 'active' AND "
                             "balance - held - ? >= -overdraft_limit",
                             DB_I(amount), DB_S(acct), DB_S(cur), DB_I(amount));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0)
        return s_why(c, acct, cur, amount);
    rc = wrk_db_exec(c->db,
                     "INSERT INTO holds (saga, step, account, amount, currency, status, "
                     "created_ms) VALUES (?, ?, ?, ?, ?, 'active', ?)",
                     DB_S(c->saga), DB_S(c->step), DB_S(acct), DB_I(amount), DB_S(cur),
                     DB_I(c->now_ms));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_str(c, "account", acct);
    wrk_out_int(c, "held", amount);
    return WRK_OK;
}

/* Release the hold of step `hold_step` of this saga (default: this step,
   which is what a compensation of place_hold means). */
static wrk_status_t op_release_hold(wrk_ctx_t *c)
{
    const char *hold_step;
    if (!wrk_str_opt(c, "hold_step", c->step, &hold_step))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db,
                             "SELECT account, amount FROM holds WHERE saga = ? AND step = ? AND "
                             "status = 'active'",
                             DB_S(c->saga), DB_S(hold_step));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0) {
        wrk_out_int(c, "released", 0);
        return WRK_OK; /* nothing held: releasing is already done */
    }
    const char *acct = wrk_strdup(c, wrk_db_text(c->db, 0, 0), strlen(wrk_db_text(c->db, 0, 0)));
    int64_t amount = wrk_db_int(c->db, 0, 1);
    if ((rc = wrk_db_exec(c->db,
                          "UPDATE holds SET status = 'released', released_ms = ? WHERE saga = ? "
                          "AND step = ?",
                          DB_I(c->now_ms), DB_S(c->saga), DB_S(hold_step))) ||
        (rc = wrk_db_exec(c->db, "UPDATE accounts SET held = held - ? WHERE number = ?",
                          DB_I(amount), DB_S(acct))))
        return wrk_db_status(c, rc);
    wrk_out_int(c, "released", amount);
    return WRK_OK;
}

/* ---- loans ------------------------------------------------------------ */

static wrk_status_t op_create_loan_account(wrk_ctx_t *c)
{
    const char *cust, *cur;
    int64_t principal, rate_bp, term;
    char number[48];
    if (!wrk_str(c, "customer", &cust) || !wrk_amount(c, "principal", &principal) ||
        !wrk_currency(c, "currency", &cur) || !wrk_int(c, "rate_bp", &rate_bp) ||
        !wrk_int(c, "term_months", &term))
        return WRK_FAILED;
    if (rate_bp < 0 || rate_bp > 5000 || term < 1 || term > 480)
        return wrk_fail(c, "bad_params", "rate_bp must be 0-5000 and term_months 1-480");
    db_rc_t rc = wrk_db_exec(c->db, "SELECT status FROM customers WHERE id = ?", DB_S(cust));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0)
        return wrk_fail(c, "no_customer", "customer %s does not exist", cust);
    if (strcmp(wrk_db_text(c->db, 0, 0), "active") != 0)
        return wrk_fail(c, "customer_inactive", "customer %s is %s", cust,
                        wrk_db_text(c->db, 0, 0));
    wrk_ref(c, "LN", number);
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO accounts (number, customer_id, type, currency, balance, "
                          "held, overdraft_limit, status, created_ms) "
                          "VALUES (?, ?, 'loan', ?, 0, 0, 0, 'pending', ?)",
                          DB_S(number), DB_S(cust), DB_S(cur), DB_I(c->now_ms))) ||
        (rc = wrk_db_exec(c->db,
                          "INSERT INTO loans (account, customer_id, principal, currency, rate_bp, "
                          "term_months, status, saga, created_ms) "
                          "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                          DB_S(number), DB_S(cust), DB_I(principal), DB_S(cur), DB_I(rate_bp),
                          DB_I(term), DB_S(c->saga), DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_str(c, "loan_account", number);
    wrk_out_str(c, "customer", cust);
    wrk_out_int(c, "principal", principal);
    wrk_out_str(c, "currency", cur);
    wrk_out_int(c, "rate_bp", rate_bp);
    wrk_out_int(c, "term_months", term);
    return WRK_OK;
}

static wrk_status_t op_delete_loan_account(wrk_ctx_t *c)
{
    /* The account number comes from the action's output; the action's
       number is derived from (saga, step), so recompute it if absent. */
    char number[48];
    const char *acct = wrk_prior_str(c, "loan_account");
    if (!acct) {
        wrk_ref(c, "LN", number);
        acct = number;
    }
    db_rc_t rc = wrk_db_exec(c->db, "SELECT status FROM loans WHERE account = ?", DB_S(acct));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0)
        return WRK_OK;
    if (strcmp(wrk_db_text(c->db, 0, 0), "active") == 0)
        return wrk_fail(c, "loan_active", "loan %s is active; deactivate it first", acct);
    if ((rc = wrk_db_exec(c->db, "UPDATE loans SET status = 'deleted' WHERE account = ?",
                          DB_S(acct))) ||
        (rc = wrk_db_exec(c->db,
                          "UPDATE accounts SET status = 'closed' WHERE number = ? AND balance = 0 "
                          "AND held = 0",
                          DB_S(acct))))
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0)
        return wrk_fail(c, "loan_not_empty", "loan account %s still holds money", acct);
    wrk_out_str(c, "loan_account", acct);
    return WRK_OK;
}

static wrk_status_t s_loan_status(wrk_ctx_t *c, const char *from, const char *to,
                                  const char *acct_status)
{
    const char *acct;
    if (!wrk_str(c, "loan_account", &acct))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db, "UPDATE loans SET status = ? WHERE account = ? AND status = ?",
                             DB_S(to), DB_S(acct), DB_S(from));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0) {
        if ((rc = wrk_db_exec(c->db, "SELECT status FROM loans WHERE account = ?", DB_S(acct))))
            return wrk_db_status(c, rc);
        if (wrk_db_nrows(c->db) == 0)
            return wrk_fail(c, "no_loan", "loan %s does not exist", acct);
        return wrk_fail(c, "bad_state", "loan %s is %s, not %s", acct, wrk_db_text(c->db, 0, 0),
                        from);
    }
    if ((rc = wrk_db_exec(c->db, "UPDATE accounts SET status = ? WHERE number = ?",
                          DB_S(acct_status), DB_S(acct))))
        return wrk_db_status(c, rc);
    wrk_out_str(c, "loan_account", acct);
    wrk_out_str(c, "status", to);
    return WRK_OK;
}

static wrk_status_t op_activate_loan(wrk_ctx_t *c)
{
    return s_loan_status(c, "pending", "active", "active");
}

static wrk_status_t op_deactivate_loan(wrk_ctx_t *c)
{
    return s_loan_status(c, "active", "pending", "pending");
}

/* ---- fees ------------------------------------------------------------- */

/* A fee that may be waived: the charge runs under its own savepoint, so
   when funds are short and the fee is waivable, the charge is undone and
   the waiver recorded, without losing the rest of the step. */
static wrk_status_t op_deduct_fee(wrk_ctx_t *c)
{
    const char *acct, *cur, *code;
    int64_t amount;
    bool waivable;
    if (!wrk_str(c, "account", &acct) || !wrk_amount(c, "amount", &amount) ||
        !wrk_currency(c, "currency", &cur) || !wrk_str_opt(c, "fee_code", "service", &code) ||
        !wrk_bool_opt(c, "waivable", false, &waivable))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db, "SAVEPOINT fee");
    if (rc)
        return wrk_db_status(c, rc);
    wrk_status_t st = s_debit(c, acct, amount, cur, "fee");
    const char *status = "charged";
    if (st == WRK_FAILED && waivable && strcmp(c->code, "insufficient_funds") == 0) {
        if ((rc = wrk_db_exec(c->db, "ROLLBACK TO SAVEPOINT fee")))
            return wrk_db_status(c, rc);
        c->code[0] = c->message[0] = 0;
        status = "waived";
        st = WRK_OK;
    }
    if (st != WRK_OK)
        return st;
    if ((rc = wrk_db_exec(c->db, "RELEASE SAVEPOINT fee")) ||
        (rc = wrk_db_exec(c->db,
                          "INSERT INTO fees (saga, step, account, code, amount, currency, status, "
                          "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          DB_S(c->saga), DB_S(c->step), DB_S(acct), DB_S(code), DB_I(amount),
                          DB_S(cur), DB_S(status), DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_str(c, "fee_status", status);
    wrk_out_int(c, "amount", strcmp(status, "charged") == 0 ? amount : 0);
    return WRK_OK;
}

static wrk_status_t op_refund_fee(wrk_ctx_t *c)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "SELECT account, amount, currency FROM fees WHERE saga = ? AND "
                             "step = ? AND status = 'charged'",
                             DB_S(c->saga), DB_S(c->step));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0)
        return WRK_OK; /* waived or never charged */
    const char *acct = wrk_strdup(c, wrk_db_text(c->db, 0, 0), strlen(wrk_db_text(c->db, 0, 0)));
    const char *cur = wrk_strdup(c, wrk_db_text(c->db, 0, 2), 3);
    int64_t amount = wrk_db_int(c->db, 0, 1);
    wrk_status_t st = s_credit(c, acct, amount, cur, "fee_refund");
    if (st != WRK_OK)
        return st;
    if ((rc = wrk_db_exec(c->db, "UPDATE fees SET status = 'refunded' WHERE saga = ? AND step = ?",
                          DB_S(c->saga), DB_S(c->step))))
        return wrk_db_status(c, rc);
    wrk_out_int(c, "refunded", amount);
    return WRK_OK;
}

/* ---- currency exchange ------------------------------------------------ */

static wrk_status_t s_exchange(wrk_ctx_t *c, bool reverse)
{
    const char *from, *to, *fcur, *tcur;
    int64_t amount, converted, rate;
    if (!wrk_str(c, "from_account", &from) || !wrk_str(c, "to_account", &to) ||
        !wrk_amount(c, "amount", &amount) || !wrk_currency(c, "from_currency", &fcur) ||
        !wrk_currency(c, "to_currency", &tcur))
        return WRK_FAILED;
    if (reverse) {
        /* Undo exactly what the action did, at the rate it used. */
        if (!wrk_prior_int(c, "converted", &converted))
            return WRK_OK;
        wrk_status_t st = s_debit(c, to, converted, tcur, "fx_reverse_out");
        if (st == WRK_OK)
            st = s_credit(c, from, amount, fcur, "fx_reverse_in");
        return st;
    }
    db_rc_t rc = wrk_db_exec(c->db, "SELECT rate_micros FROM fx_rates WHERE base = ? AND quote = ?",
                             DB_S(fcur), DB_S(tcur));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db) == 0)
        return wrk_fail(c, "no_rate", "no exchange rate from %s to %s", fcur, tcur);
    rate = wrk_db_int(c->db, 0, 0);
    /* Fixed point, rounded half up, in 128 bits: no float, no overflow. */
    __int128 wide = (__int128)amount * rate + 500000;
    converted = (int64_t)(wide / 1000000);
    if (converted <= 0)
        return wrk_fail(c, "amount_too_small", "%lld %s converts to nothing", (long long)amount,
                        fcur);
    wrk_status_t st = s_debit(c, from, amount, fcur, "fx_out");
    if (st == WRK_OK)
        st = s_credit(c, to, converted, tcur, "fx_in");
    if (st == WRK_OK) {
        wrk_out_int(c, "converted", converted);
        wrk_out_int(c, "rate_micros", rate);
    }
    return st;
}

static wrk_status_t op_exchange_currency(wrk_ctx_t *c)
{
    return s_exchange(c, false);
}

static wrk_status_t op_reverse_exchange(wrk_ctx_t *c)
{
    return s_exchange(c, true);
}

/* ---- accounts --------------------------------------------------------- */

static wrk_status_t op_open_account(wrk_ctx_t *c)
{
    const char *cust, *type, *cur;
    int64_t overdraft;
    char number[48];
    if (!wrk_str(c, "customer", &cust) || !wrk_str(c, "type", &type) ||
        !wrk_currency(c, "currency", &cur) || !wrk_int_opt(c, "overdraft_limit", 0, &overdraft))
        return WRK_FAILED;
    /* The bank's ceiling on overdrafts (bank_settings.max_overdraft): an
       account may not be opened able to go deeper. */
    db_rc_t rc = wrk_db_exec(c->db, "SELECT value FROM bank_settings WHERE name = 'max_overdraft'");
    if (rc)
        return wrk_db_status(c, rc);
    int64_t max = wrk_db_nrows(c->db) ? wrk_db_int(c->db, 0, 0) : 0;
    if (overdraft < 0 || overdraft > max)
        return wrk_fail(c, "bad_params", "overdraft_limit must be between 0 and %lld minor units",
                        (long long)max);
    wrk_ref(c, "AC", number);
    rc = wrk_db_exec(c->db,
                     "INSERT INTO accounts (number, customer_id, type, currency, balance, "
                     "held, overdraft_limit, status, created_ms) "
                     "VALUES (?, ?, ?, ?, 0, 0, ?, 'active', ?)",
                     DB_S(number), DB_S(cust), DB_S(type), DB_S(cur), DB_I(overdraft),
                     DB_I(c->now_ms));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_str(c, "account", number);
    return WRK_OK;
}

static wrk_status_t op_close_account(wrk_ctx_t *c)
{
    char number[48];
    const char *acct = wrk_prior_str(c, "account");
    if (!acct && !wrk_str_opt(c, "account", NULL, &acct))
        return WRK_FAILED;
    if (!acct) {
        wrk_ref(c, "AC", number);
        acct = number;
    }
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE accounts SET status = 'closed' WHERE number = ? AND "
                             "balance = 0 AND held = 0",
                             DB_S(acct));
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_changes(c->db) == 0) {
        if ((rc = wrk_db_exec(c->db, "SELECT 1 FROM accounts WHERE number = ?", DB_S(acct))))
            return wrk_db_status(c, rc);
        if (wrk_db_nrows(c->db) == 1)
            return wrk_fail(c, "account_not_empty", "account %s still holds money", acct);
    }
    return WRK_OK;
}

/* ---- schema ----------------------------------------------------------- */

/* PostgreSQL and MariaDB share one text: VARCHAR keys (MariaDB cannot
   index TEXT), BIGINT money and times, table-level foreign keys (MariaDB
   ignores REFERENCES on a column); only the ledger's generated id and the
   engine differ. */
#define BANKING_V1(SERIAL, ENGINE)                                                                 \
    "CREATE TABLE customers (id VARCHAR(64) PRIMARY KEY, name VARCHAR(255) NOT NULL,"              \
    " kyc_status VARCHAR(16) NOT NULL DEFAULT 'pending',"                                          \
    " risk_rating VARCHAR(16) NOT NULL DEFAULT 'medium',"                                          \
    " status VARCHAR(16) NOT NULL DEFAULT 'active', created_ms BIGINT NOT NULL)" ENGINE ";"        \
    "CREATE TABLE accounts (number VARCHAR(64) PRIMARY KEY, customer_id VARCHAR(64) NOT NULL,"     \
    " type VARCHAR(16) NOT NULL CHECK (type IN "                                                   \
    "('checking','savings','investment','loan','credit')),"                                        \
    " currency CHAR(3) NOT NULL, balance BIGINT NOT NULL DEFAULT 0,"                               \
    " held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),"                                           \
    " overdraft_limit BIGINT NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),"                     \
    " status VARCHAR(16) NOT NULL DEFAULT 'active', created_ms BIGINT NOT NULL,"                   \
    " CONSTRAINT accounts_funds CHECK (balance - held >= -overdraft_limit),"                       \
    " FOREIGN KEY (customer_id) REFERENCES customers (id))" ENGINE ";"                             \
    "CREATE INDEX accounts_customer ON accounts (customer_id);"                                    \
    "CREATE TABLE ledger (id " SERIAL ", saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"    \
    " phase VARCHAR(16) NOT NULL, account VARCHAR(64) NOT NULL, amount BIGINT NOT NULL,"           \
    " currency CHAR(3) NOT NULL, kind VARCHAR(32) NOT NULL, created_ms BIGINT NOT NULL)" ENGINE    \
    ";"                                                                                            \
    "CREATE INDEX ledger_saga ON ledger (saga, step);"                                             \
    "CREATE INDEX ledger_account ON ledger (account)"

#define BANKING_V2(ENGINE)                                                                         \
    "CREATE TABLE holds (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"                    \
    " account VARCHAR(64) NOT NULL, amount BIGINT NOT NULL CHECK (amount > 0),"                    \
    " currency CHAR(3) NOT NULL, status VARCHAR(16) NOT NULL, created_ms BIGINT NOT NULL,"         \
    " released_ms BIGINT, PRIMARY KEY (saga, step),"                                               \
    " FOREIGN KEY (account) REFERENCES accounts (number))" ENGINE ";"                              \
    "CREATE TABLE loans (account VARCHAR(64) PRIMARY KEY, customer_id VARCHAR(64) NOT NULL,"       \
    " principal BIGINT NOT NULL CHECK (principal > 0), currency CHAR(3) NOT NULL,"                 \
    " rate_bp BIGINT NOT NULL, term_months BIGINT NOT NULL, status VARCHAR(16) NOT NULL,"          \
    " saga VARCHAR(64) NOT NULL, created_ms BIGINT NOT NULL,"                                      \
    " FOREIGN KEY (account) REFERENCES accounts (number),"                                         \
    " FOREIGN KEY (customer_id) REFERENCES customers (id))" ENGINE ";"                             \
    "CREATE TABLE fees (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"                     \
    " account VARCHAR(64) NOT NULL, code VARCHAR(64) NOT NULL, amount BIGINT NOT NULL,"            \
    " currency CHAR(3) NOT NULL, status VARCHAR(16) NOT NULL, created_ms BIGINT NOT NULL,"         \
    " PRIMARY KEY (saga, step))" ENGINE ";"                                                        \
    "CREATE TABLE fx_rates (base CHAR(3) NOT NULL, quote CHAR(3) NOT NULL,"                        \
    " rate_micros BIGINT NOT NULL CHECK (rate_micros > 0), PRIMARY KEY (base, quote))" ENGINE

#define INNODB " ENGINE=InnoDB"

#define BANKING_V2_DOWN "DROP TABLE fx_rates; DROP TABLE fees; DROP TABLE loans; DROP TABLE holds"

/* The bank's own limits; max_overdraft starts at 10,000,000.00. */
#define BANKING_V3(ENGINE)                                                                         \
    "CREATE TABLE bank_settings (name VARCHAR(32) PRIMARY KEY, value BIGINT NOT NULL)" ENGINE ";"  \
    "INSERT INTO bank_settings (name, value) VALUES ('max_overdraft', 1000000000)"

static const wrk_migration_t s_migrations[] = {
    { 1,
      "customers, accounts, ledger",
      { [DB_DIALECT_SQLITE] =
            "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " kyc_status TEXT NOT NULL DEFAULT 'pending', risk_rating TEXT NOT NULL DEFAULT "
            "'medium',"
            " status TEXT NOT NULL DEFAULT 'active', created_ms INTEGER NOT NULL);"
            "CREATE TABLE accounts (number TEXT PRIMARY KEY,"
            " customer_id TEXT NOT NULL REFERENCES customers(id),"
            " type TEXT NOT NULL CHECK (type IN "
            "('checking','savings','investment','loan','credit')),"
            " currency TEXT NOT NULL, balance INTEGER NOT NULL DEFAULT 0,"
            " held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),"
            " overdraft_limit INTEGER NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),"
            " status TEXT NOT NULL DEFAULT 'active', created_ms INTEGER NOT NULL,"
            " CHECK (balance - held >= -overdraft_limit));"
            "CREATE INDEX accounts_customer ON accounts (customer_id);"
            "CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, saga TEXT NOT NULL,"
            " step TEXT NOT NULL, phase TEXT NOT NULL, account TEXT NOT NULL,"
            " amount INTEGER NOT NULL, currency TEXT NOT NULL, kind TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL);"
            "CREATE INDEX ledger_saga ON ledger (saga, step);"
            "CREATE INDEX ledger_account ON ledger (account)",
        [DB_DIALECT_POSTGRES] = BANKING_V1("BIGSERIAL PRIMARY KEY", ""),
        [DB_DIALECT_MYSQL] = BANKING_V1("BIGINT AUTO_INCREMENT PRIMARY KEY", INNODB) },
      { [DB_DIALECT_SQLITE] = "DROP TABLE ledger; DROP TABLE accounts; DROP TABLE customers",
        [DB_DIALECT_POSTGRES] = "DROP TABLE ledger; DROP TABLE accounts; DROP TABLE customers",
        [DB_DIALECT_MYSQL] = "DROP TABLE ledger; DROP TABLE accounts; DROP TABLE customers" } },
    { 2,
      "holds, loans, fees, exchange rates",
      { [DB_DIALECT_SQLITE] =
            "CREATE TABLE holds (saga TEXT NOT NULL, step TEXT NOT NULL,"
            " account TEXT NOT NULL REFERENCES accounts(number),"
            " amount INTEGER NOT NULL CHECK (amount > 0), currency TEXT NOT NULL,"
            " status TEXT NOT NULL, created_ms INTEGER NOT NULL, released_ms INTEGER,"
            " PRIMARY KEY (saga, step));"
            "CREATE TABLE loans (account TEXT PRIMARY KEY REFERENCES accounts(number),"
            " customer_id TEXT NOT NULL REFERENCES customers(id),"
            " principal INTEGER NOT NULL CHECK (principal > 0), currency TEXT NOT NULL,"
            " rate_bp INTEGER NOT NULL, term_months INTEGER NOT NULL, status TEXT NOT NULL,"
            " saga TEXT NOT NULL, created_ms INTEGER NOT NULL);"
            "CREATE TABLE fees (saga TEXT NOT NULL, step TEXT NOT NULL, account TEXT NOT NULL,"
            " code TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,"
            " status TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (saga, step));"
            "CREATE TABLE fx_rates (base TEXT NOT NULL, quote TEXT NOT NULL,"
            " rate_micros INTEGER NOT NULL CHECK (rate_micros > 0), PRIMARY KEY (base, quote))",
        [DB_DIALECT_POSTGRES] = BANKING_V2(""),
        [DB_DIALECT_MYSQL] = BANKING_V2(INNODB) },
      { [DB_DIALECT_SQLITE] = BANKING_V2_DOWN,
        [DB_DIALECT_POSTGRES] = BANKING_V2_DOWN,
        [DB_DIALECT_MYSQL] = BANKING_V2_DOWN } },
    { 3,
      "bank settings (max overdraft)",
      { [DB_DIALECT_SQLITE] = BANKING_V3(""),
        [DB_DIALECT_POSTGRES] = BANKING_V3(""),
        [DB_DIALECT_MYSQL] = BANKING_V3(INNODB) },
      { [DB_DIALECT_SQLITE] = "DROP TABLE bank_settings",
        [DB_DIALECT_POSTGRES] = "DROP TABLE bank_settings",
        [DB_DIALECT_MYSQL] = "DROP TABLE bank_settings" } },
};

/* ---- commands --------------------------------------------------------- */

/* The seeds' customers and accounts, for the demo and the tests. */
static db_rc_t s_seed_demo(wrk_conn_t *db)
{
    static const struct {
        const char *id, *name;
    } customers[] = { { "C001", "John Smith" }, { "C002", "Jane Doe" }, { "C003", "ABC Corp" } };
    static const struct {
        const char *number, *customer, *type, *currency;
        int64_t balance, overdraft;
    } accounts[] = {
        { "ACC001", "C001", "checking", "USD", 500000, 0 },
        { "ACC002", "C001", "savings", "USD", 1000000, 0 },
        { "ACC003", "C002", "checking", "EUR", 250000, 0 },
        { "ACC004", "C002", "investment", "USD", 5000000, 0 },
        { "ACC005", "C002", "checking", "USD", 750000, 100000 },
        { "ACC006", "C003", "checking", "USD", 5000000, 500000 },
        { "ACC007", "C003", "savings", "USD", 10000000, 0 },
    };
    db_rc_t rc = DB_OK;
    for (size_t i = 0; !rc && i < sizeof customers / sizeof *customers; i++)
        rc = wrk_db_exec(db,
                         "INSERT INTO customers (id, name, kyc_status, created_ms) "
                         "VALUES (?, ?, 'verified', ?)",
                         DB_S(customers[i].id), DB_S(customers[i].name), DB_I(wrk_now_ms()));
    for (size_t i = 0; !rc && i < sizeof accounts / sizeof *accounts; i++)
        rc =
            wrk_db_exec(db,
                        "INSERT INTO accounts (number, customer_id, type, currency, balance, "
                        "held, overdraft_limit, status, created_ms) "
                        "VALUES (?, ?, ?, ?, ?, 0, ?, 'active', ?)",
                        DB_S(accounts[i].number), DB_S(accounts[i].customer),
                        DB_S(accounts[i].type), DB_S(accounts[i].currency),
                        DB_I(accounts[i].balance), DB_I(accounts[i].overdraft), DB_I(wrk_now_ms()));
    if (!rc)
        rc = wrk_db_exec(db, "INSERT INTO fx_rates (base, quote, rate_micros) VALUES "
                             "('USD', 'EUR', 920000), ('EUR', 'USD', 1087000)");
    return rc;
}

/* `seed ACCOUNTS [SEED]`: a load-test data set with referential integrity:
   customers with 1 to 5 accounts each (checking, savings, investment,
   credit) until ACCOUNTS accounts exist, random balances, and a loan (its
   loan account and its row in loans) for every tenth customer. The same
   SEED gives the same data. Rows go in one transaction per 1,000
   customers, so a big seed neither holds one huge transaction nor pays a
   commit per row. */
static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x << 13; /* xorshift64 */
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int s_seed(wrk_conn_t *db, int argc, char **argv)
{
    static const char *types[] = { "checking", "savings", "investment", "credit" };
    static const char *ratings[] = { "low", "medium", "high" };
    char err[512], *end = NULL;
    long long want = argc >= 1 ? strtoll(argv[0], &end, 10) : 0;
    if (argc < 1 || *end || want < 1 || want > 10000000) {
        fprintf(stderr, "usage: zsaga-worker-banking seed ACCOUNTS [SEED] --db URI "
                        "(ACCOUNTS from 1 to 10,000,000)\n");
        return 2;
    }
    uint64_t x = argc >= 2 ? strtoull(argv[1], NULL, 10) : 1;
    x = x ? x * 0x9E3779B97F4A7C15ull : 1;
    if (wrk_migrate_up(db, s_migrations, sizeof s_migrations / sizeof *s_migrations, -1, NULL, err,
                       sizeof err)) {
        fprintf(stderr, "seed: %s\n", err);
        return 1;
    }
    int64_t t0 = wrk_now_ms(), now = t0;
    long long accounts = 0, customers = 0, loans = 0;
    db_rc_t rc = DB_OK;
    while (accounts < want && !rc) {
        if ((rc = wrk_db_begin(db, DB_ISO_DEFAULT, 0)))
            break;
        for (int k = 0; k < 1000 && accounts < want && !rc; k++) {
            char cust[32], name[48], number[32];
            customers++;
            snprintf(cust, sizeof cust, "CU%08lld", customers);
            snprintf(name, sizeof name, "Customer %lld", customers);
            rc = wrk_db_exec(db,
                             "INSERT INTO customers (id, name, kyc_status, risk_rating, status, "
                             "created_ms) VALUES (?, ?, ?, ?, 'active', ?)",
                             DB_S(cust), DB_S(name), DB_S(s_rand(&x) % 10 ? "verified" : "pending"),
                             DB_S(ratings[s_rand(&x) % 3]), DB_I(now));
            int n = 1 + (int)(s_rand(&x) % 5);
            for (int a = 0; a < n && accounts < want && !rc; a++) {
                accounts++;
                snprintf(number, sizeof number, "AC%010lld", accounts);
                const char *type = types[s_rand(&x) % 4];
                int64_t overdraft = strcmp(type, "checking") == 0 ? 50000 : 0;
                rc = wrk_db_exec(
                    db,
                    "INSERT INTO accounts (number, customer_id, type, currency, "
                    "balance, held, overdraft_limit, status, created_ms) "
                    "VALUES (?, ?, ?, ?, ?, 0, ?, 'active', ?)",
                    DB_S(number), DB_S(cust), DB_S(type), DB_S(s_rand(&x) % 5 ? "USD" : "EUR"),
                    DB_I((int64_t)(s_rand(&x) % 1000000000ull)), DB_I(overdraft), DB_I(now));
            }
            if (customers % 10 == 0 && accounts < want && !rc) {
                accounts++;
                loans++;
                snprintf(number, sizeof number, "AC%010lld", accounts);
                int64_t principal = 100000 + (int64_t)(s_rand(&x) % 10000000ull);
                rc = wrk_db_exec(db,
                                 "INSERT INTO accounts (number, customer_id, type, currency, "
                                 "balance, held, overdraft_limit, status, created_ms) "
                                 "VALUES (?, ?, 'loan', 'USD', 0, 0, 0, 'active', ?)",
                                 DB_S(number), DB_S(cust), DB_I(now));
                if (!rc)
                    rc = wrk_db_exec(db,
                                     "INSERT INTO loans (account, customer_id, principal, "
                                     "currency, rate_bp, term_months, status, saga, created_ms) "
                                     "VALUES (?, ?, ?, 'USD', ?, ?, 'active', 'seed', ?)",
                                     DB_S(number), DB_S(cust), DB_I(principal),
                                     DB_I(300 + (int64_t)(s_rand(&x) % 700)),
                                     DB_I(12 * (1 + (int64_t)(s_rand(&x) % 10))), DB_I(now));
            }
        }
        if (!rc)
            rc = wrk_db_commit(db);
        if (rc)
            wrk_db_rollback(db);
    }
    if (rc) {
        fprintf(stderr, "seed: %s (after %lld customers)\n", wrk_db_error(db), customers);
        return 1;
    }
    int64_t ms = wrk_now_ms() - t0;
    printf("seeded %lld customers, %lld accounts, %lld loans in %.1f s (%.0f rows/s)\n", customers,
           accounts, loans, (double)ms / 1000.0,
           (double)(customers + accounts + loans) * 1000.0 / (double)(ms ? ms : 1));
    return 0;
}

static int s_command(wrk_conn_t *db, const char *cmd, int argc, char **argv)
{
    return strcmp(cmd, "seed") == 0 ? s_seed(db, argc, argv) : -1;
}

static const wrk_op_t s_ops[] = {
    { "debit_account", op_debit_account, DB_ISO_DEFAULT,
      "account:str amount:int1..1000000000000000 currency:str",
      "account:str amount:int balance:int",
      "Takes amount from the account, down to its overdraft limit (balance + overdraft_limit >= "
      "amount). Writes a ledger row (kind debit).",
      "no_account currency_mismatch account_inactive insufficient_funds" },
    { "credit_account", op_credit_account, DB_ISO_DEFAULT,
      "account:str amount:int1..1000000000000000 currency:str",
      "account:str amount:int balance:int",
      "Adds amount to the account. Refused if the balance would pass 2^63-1 minor units.",
      "no_account currency_mismatch account_inactive balance_overflow" },
    { "transfer", op_transfer, DB_ISO_DEFAULT,
      "from_account:str to_account:str amount:int1..1000000000000000 currency:str",
      "from_balance:int to_balance:int",
      "Debit and credit in one local transaction; both accounts hold the currency; the two "
      "accounts must differ.",
      "bad_params no_account currency_mismatch account_inactive insufficient_funds "
      "balance_overflow" },
    { "reverse_transfer", op_reverse_transfer, DB_ISO_DEFAULT,
      "from_account:str to_account:str amount:int1..1000000000000000 currency:str",
      "from_balance:int to_balance:int",
      "The compensation of transfer: moves amount back from to_account to from_account.",
      "bad_params no_account currency_mismatch account_inactive insufficient_funds "
      "balance_overflow" },
    { "place_hold", op_place_hold, DB_ISO_DEFAULT,
      "account:str amount:int1..1000000000000000 currency:str", "account:str held:int",
      "Reserves amount on the account (a hold row); the balance is debited like a debit, so it "
      "counts against the overdraft limit.",
      "no_account currency_mismatch account_inactive insufficient_funds" },
    { "release_hold", op_release_hold, DB_ISO_DEFAULT, "hold_step:str?", "released:int",
      "Gives back what the hold of this saga's step hold_step (default: this step) took; releasing "
      "nothing is already done (released 0).",
      "" },
    { "create_loan_account", op_create_loan_account, DB_ISO_DEFAULT,
      "customer:str principal:int1..1000000000000000 currency:str rate_bp:int0..5000 "
      "term_months:int1..480",
      "loan_account:str customer:str principal:int currency:str rate_bp:int term_months:int",
      "Opens a loan account (status pending) for an active customer. rate_bp is the yearly rate in "
      "basis points.",
      "bad_params no_customer customer_inactive" },
    { "delete_loan_account", op_delete_loan_account, DB_ISO_DEFAULT, "", "loan_account:str",
      "The compensation of create_loan_account: removes the loan account it created (from the "
      "action's output); refused while the loan is active or holds money.",
      "loan_active loan_not_empty" },
    { "activate_loan", op_activate_loan, DB_ISO_DEFAULT, "loan_account:str",
      "loan_account:str status:str", "pending -> active.", "no_loan bad_state" },
    { "deactivate_loan", op_deactivate_loan, DB_ISO_DEFAULT, "loan_account:str",
      "loan_account:str status:str", "active -> pending (the compensation of activate_loan).",
      "no_loan bad_state" },
    { "deduct_fee", op_deduct_fee, DB_ISO_DEFAULT,
      "account:str amount:int1..1000000000000000 currency:str fee_code:str? waivable:bool?",
      "fee_status:str amount:int",
      "Charges a fee (fee_code, default service). waivable: when true and the account lacks the "
      "funds, the fee is waived (fee_status waived, amount 0) instead of failing the step; with "
      "the funds it is charged like any fee.",
      "no_account currency_mismatch account_inactive insufficient_funds" },
    { "refund_fee", op_refund_fee, DB_ISO_DEFAULT, "", "refunded:int",
      "The compensation of deduct_fee: credits back what was charged (nothing for a waived fee).",
      "no_account account_inactive balance_overflow" },
    { "exchange_currency", op_exchange_currency, DB_ISO_REPEATABLE_READ,
      "from_account:str to_account:str amount:int1..1000000000000000 from_currency:str "
      "to_currency:str",
      "converted:int rate_micros:int",
      "Debits amount in from_currency and credits amount * rate in to_currency. The rate is fixed "
      "point (rate_micros, millionths); the converted amount is rounded half up to the minor unit, "
      "in 128-bit integers.",
      "no_rate amount_too_small no_account currency_mismatch account_inactive insufficient_funds "
      "balance_overflow" },
    { "reverse_exchange", op_reverse_exchange, DB_ISO_REPEATABLE_READ,
      "from_account:str to_account:str amount:int1..1000000000000000 from_currency:str "
      "to_currency:str",
      "converted:int rate_micros:int",
      "The compensation of exchange_currency: takes back exactly the converted amount the action "
      "credited, at the rate it used, and returns amount.",
      "no_account currency_mismatch account_inactive insufficient_funds balance_overflow" },
    { "open_account", op_open_account, DB_ISO_DEFAULT,
      "customer:str type:str currency:str overdraft_limit:int>=0?", "account:str",
      "Opens an account of type checking, savings, investment or credit; overdraft_limit (default "
      "0) at most the bank's max_overdraft setting (1,000,000,000 minor units).",
      "bad_params no_customer customer_inactive" },
    { "close_account", op_close_account, DB_ISO_DEFAULT, "account:str?", "",
      "The compensation of open_account: closes the account it opened; refused while it holds "
      "money.",
      "account_not_empty" },
};

const wrk_system_t banking_system = {
    "banking",
    s_ops,
    sizeof s_ops / sizeof *s_ops,
    s_migrations,
    sizeof s_migrations / sizeof *s_migrations,
    s_command,
    s_seed_demo,
    "       zsaga-worker-banking seed ACCOUNTS [SEED] --db URI   (a load-test data set)\n",
};

int main(int argc, char **argv)
{
    return wrk_main(&banking_system, argc, argv);
}
