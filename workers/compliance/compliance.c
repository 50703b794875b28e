/*  zsaga-worker-compliance: compliance reports, AML screening, KYC,
    notifications, and a tamper-evident audit trail.

    Every action and compensation appends one audit record in its own
    transaction. Record n carries hash_n = SHA-256(hash_{n-1} | seq | ts |
    saga | step | phase | op | detail), hex, so editing or removing any
    record breaks every hash after it. The head of the chain is one row
    (audit_head) that each append updates: that row's lock serializes
    appends on every engine. `verify-audit` recomputes the whole chain.
*/
#include "workers/wrk_runtime.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void s_hash(const char *prev, int64_t seq, int64_t ts, const char *saga, const char *step,
                   const char *phase, const char *op, const char *detail, char out[65])
{
    char head[128];
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    int n = snprintf(head, sizeof head, "%s|%lld|%lld|", prev, (long long)seq, (long long)ts);
    crypto_hash_sha256_update(&st, (const uint8_t *)head, (size_t)n);
    const char *parts[] = { saga, step, phase, op, detail };
    for (int i = 0; i < 5; i++) {
        crypto_hash_sha256_update(&st, (const uint8_t *)parts[i], strlen(parts[i]));
        crypto_hash_sha256_update(&st, (const uint8_t *)"|", 1);
    }
    crypto_hash_sha256_final(&st, h);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static wrk_status_t s_audit(wrk_ctx_t *c, const char *detail)
{
    db_rc_t rc = wrk_db_exec(c->db, "UPDATE audit_head SET seq = seq + 1 WHERE id = 1");
    if (!rc)
        rc = wrk_db_exec(c->db, "SELECT seq, hash FROM audit_head WHERE id = 1");
    if (rc)
        return wrk_db_status(c, rc);
    int64_t seq = wrk_db_int(c->db, 0, 0);
    char prev[65], hash[65];
    snprintf(prev, sizeof prev, "%s", wrk_db_text(c->db, 0, 1));
    const char *phase = msg_phase_name(c->phase);
    s_hash(prev, seq, c->now_ms, c->saga, c->step, phase, c->op, detail, hash);
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO audit_trail (seq, ts_ms, saga, step, phase, op, detail, "
                          "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          DB_I(seq), DB_I(c->now_ms), DB_S(c->saga), DB_S(c->step), DB_S(phase),
                          DB_S(c->op), DB_S(detail), DB_S(prev), DB_S(hash))) ||
        (rc = wrk_db_exec(c->db, "UPDATE audit_head SET hash = ? WHERE id = 1", DB_S(hash))))
        return wrk_db_status(c, rc);
    return WRK_OK;
}

static wrk_status_t op_generate_compliance_report(wrk_ctx_t *c)
{
    const char *cust, *subject, *type;
    int64_t amount;
    char id[48], detail[256];
    if (!wrk_str(c, "customer", &cust) || !wrk_str_opt(c, "subject", "", &subject) ||
        !wrk_str_opt(c, "report_type", "loan_origination", &type) ||
        !wrk_int_opt(c, "amount", 0, &amount))
        return WRK_FAILED;
    wrk_ref(c, "CR", id);
    db_rc_t rc = wrk_db_exec(c->db,
                             "INSERT INTO compliance_reports (id, saga, step, report_type, "
                             "customer, subject, amount, status, created_ms) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, 'generated', ?)",
                             DB_S(id), DB_S(c->saga), DB_S(c->step), DB_S(type), DB_S(cust),
                             DB_S(subject), DB_I(amount), DB_I(c->now_ms));
    if (rc)
        return wrk_db_status(c, rc);
    snprintf(detail, sizeof detail, "report %s (%s) for %s %s", id, type, cust, subject);
    wrk_out_str(c, "report", id);
    return s_audit(c, detail);
}

static wrk_status_t op_archive_compliance_report(wrk_ctx_t *c)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE compliance_reports SET status = 'archived' WHERE saga = ? "
                             "AND step = ? AND status = 'generated'",
                             DB_S(c->saga), DB_S(c->step));
    if (rc)
        return wrk_db_status(c, rc);
    return s_audit(c, "report archived");
}

static wrk_status_t op_aml_screening(wrk_ctx_t *c)
{
    const char *cust, *cur;
    int64_t amount, threshold = 1000000;
    bool block;
    char detail[160];
    if (!wrk_str(c, "customer", &cust) || !wrk_amount(c, "amount", &amount) ||
        !wrk_currency(c, "currency", &cur) || !wrk_bool_opt(c, "block_on_flag", false, &block))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db, "SELECT value FROM compliance_settings WHERE name = "
                                    "'aml_threshold'");
    if (rc)
        return wrk_db_status(c, rc);
    if (wrk_db_nrows(c->db))
        threshold = wrk_db_int(c->db, 0, 0);
    bool flagged = amount >= threshold;
    if (flagged && block)
        return wrk_fail(c, "aml_flagged", "%lld %s is at or above the AML threshold of %lld",
                        (long long)amount, cur, (long long)threshold);
    if ((rc = wrk_db_exec(c->db,
                          "INSERT INTO aml_screenings (saga, step, customer, amount, currency, "
                          "flagged, threshold, status, created_ms) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, 'screened', ?)",
                          DB_S(c->saga), DB_S(c->step), DB_S(cust), DB_I(amount), DB_S(cur),
                          DB_I(flagged), DB_I(threshold), DB_I(c->now_ms))))
        return wrk_db_status(c, rc);
    wrk_out_int(c, "flagged", flagged);
    snprintf(detail, sizeof detail, "AML %s: %lld %s for %s", flagged ? "flagged" : "clear",
             (long long)amount, cur, cust);
    return s_audit(c, detail);
}

static wrk_status_t op_void_aml_screening(wrk_ctx_t *c)
{
    db_rc_t rc = wrk_db_exec(c->db,
                             "UPDATE aml_screenings SET status = 'voided' WHERE saga = ? AND "
                             "step = ?",
                             DB_S(c->saga), DB_S(c->step));
    return rc ? wrk_db_status(c, rc) : s_audit(c, "AML screening voided");
}

static wrk_status_t op_kyc_check(wrk_ctx_t *c)
{
    const char *cust;
    char detail[128];
    if (!wrk_str(c, "customer", &cust))
        return WRK_FAILED;
    db_rc_t rc = wrk_db_exec(c->db, "SELECT status FROM kyc WHERE customer = ?", DB_S(cust));
    if (rc)
        return wrk_db_status(c, rc);
    const char *status = wrk_db_nrows(c->db) ? wrk_db_text(c->db, 0, 0) : "unknown";
    if (strcmp(status, "verified") != 0)
        return wrk_fail(c, "kyc_not_verified", "customer %s KYC status is %s", cust, status);
    snprintf(detail, sizeof detail, "KYC verified for %s", cust);
    wrk_out_str(c, "kyc", "verified");
    return s_audit(c, detail);
}

static wrk_status_t s_notify(wrk_ctx_t *c, const char *kind)
{
    const char *to, *ref;
    int64_t amount;
    char body[256];
    if (!wrk_str(c, "recipient", &to) || !wrk_str_opt(c, "reference", "", &ref) ||
        !wrk_int_opt(c, "amount", 0, &amount))
        return WRK_FAILED;
    snprintf(body, sizeof body, "%s of %s for %lld minor units", kind, ref, (long long)amount);
    db_rc_t rc = wrk_db_exec(c->db,
                             "INSERT INTO notifications (saga, step, kind, recipient, body, "
                             "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                             DB_S(c->saga), DB_S(c->step), DB_S(kind), DB_S(to), DB_S(body),
                             DB_I(c->now_ms));
    if (rc)
        return wrk_db_status(c, rc);
    return s_audit(c, body);
}

static wrk_status_t op_send_confirmation(wrk_ctx_t *c)
{
    return s_notify(c, "confirmation");
}

static wrk_status_t op_send_cancellation(wrk_ctx_t *c)
{
    return s_notify(c, "cancellation");
}

/* PostgreSQL and MariaDB share one text (VARCHAR keys, BIGINT amounts). */
#define COMPLIANCE_V1(ENGINE)                                                                      \
    "CREATE TABLE compliance_reports (id VARCHAR(64) PRIMARY KEY, saga VARCHAR(64) NOT NULL,"      \
    " step VARCHAR(64) NOT NULL, report_type VARCHAR(32) NOT NULL,"                                \
    " customer VARCHAR(64) NOT NULL, subject VARCHAR(255) NOT NULL, amount BIGINT NOT NULL,"       \
    " status VARCHAR(16) NOT NULL, created_ms BIGINT NOT NULL, UNIQUE (saga, step))" ENGINE ";"    \
    "CREATE TABLE aml_screenings (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"           \
    " customer VARCHAR(64) NOT NULL, amount BIGINT NOT NULL, currency CHAR(3) NOT NULL,"           \
    " flagged BIGINT NOT NULL, threshold BIGINT NOT NULL, status VARCHAR(16) NOT NULL,"            \
    " created_ms BIGINT NOT NULL, PRIMARY KEY (saga, step))" ENGINE ";"                            \
    "CREATE TABLE kyc (customer VARCHAR(64) PRIMARY KEY, status VARCHAR(16) NOT NULL,"             \
    " updated_ms BIGINT NOT NULL)" ENGINE ";"                                                      \
    "CREATE TABLE notifications (saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL,"            \
    " kind VARCHAR(32) NOT NULL, recipient VARCHAR(255) NOT NULL, body TEXT NOT NULL,"             \
    " created_ms BIGINT NOT NULL, PRIMARY KEY (saga, step, kind))" ENGINE ";"                      \
    "CREATE TABLE compliance_settings (name VARCHAR(64) PRIMARY KEY,"                              \
    " value BIGINT NOT NULL)" ENGINE ";"                                                           \
    "CREATE TABLE audit_trail (seq BIGINT PRIMARY KEY, ts_ms BIGINT NOT NULL,"                     \
    " saga VARCHAR(64) NOT NULL, step VARCHAR(64) NOT NULL, phase VARCHAR(16) NOT NULL,"           \
    " op VARCHAR(32) NOT NULL, detail TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL,"              \
    " hash VARCHAR(64) NOT NULL)" ENGINE ";"                                                       \
    "CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL,"                         \
    " hash VARCHAR(64) NOT NULL)" ENGINE ";"                                                       \
    "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'genesis')"
#define COMPLIANCE_V1_DOWN                                                                         \
    "DROP TABLE audit_head; DROP TABLE audit_trail; DROP TABLE compliance_settings;"               \
    " DROP TABLE notifications; DROP TABLE kyc; DROP TABLE aml_screenings;"                        \
    " DROP TABLE compliance_reports"

static const wrk_migration_t s_migrations[] = {
    { 1,
      "reports, AML, KYC, notifications, audit trail",
      { [DB_DIALECT_SQLITE] =
            "CREATE TABLE compliance_reports (id TEXT PRIMARY KEY, saga TEXT NOT NULL,"
            " step TEXT NOT NULL, report_type TEXT NOT NULL, customer TEXT NOT NULL,"
            " subject TEXT NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL, UNIQUE (saga, step));"
            "CREATE TABLE aml_screenings (saga TEXT NOT NULL, step TEXT NOT NULL,"
            " customer TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,"
            " flagged INTEGER NOT NULL, threshold INTEGER NOT NULL, status TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL, PRIMARY KEY (saga, step));"
            "CREATE TABLE kyc (customer TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " updated_ms INTEGER NOT NULL);"
            "CREATE TABLE notifications (saga TEXT NOT NULL, step TEXT NOT NULL,"
            " kind TEXT NOT NULL, recipient TEXT NOT NULL, body TEXT NOT NULL,"
            " created_ms INTEGER NOT NULL, PRIMARY KEY (saga, step, kind));"
            "CREATE TABLE compliance_settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            "CREATE TABLE audit_trail (seq INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
            " saga TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL, op TEXT NOT NULL,"
            " detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
            "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
            " hash TEXT NOT NULL);"
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'genesis')",
        [DB_DIALECT_POSTGRES] = COMPLIANCE_V1(""),
        [DB_DIALECT_MYSQL] = COMPLIANCE_V1(" ENGINE=InnoDB") },
      { [DB_DIALECT_SQLITE] = COMPLIANCE_V1_DOWN,
        [DB_DIALECT_POSTGRES] = COMPLIANCE_V1_DOWN,
        [DB_DIALECT_MYSQL] = COMPLIANCE_V1_DOWN } },
};

/* Walk the chain from the start; report the first record that breaks it. */
static int s_verify_audit(wrk_conn_t *db)
{
    char prev[65] = "genesis";
    int64_t n = 0, last = 0;
    int64_t batch = 1000;
    for (;;) {
        db_rc_t rc = wrk_db_exec(db,
                                 "SELECT seq, ts_ms, saga, step, phase, op, detail, prev_hash, "
                                 "hash FROM audit_trail WHERE seq > ? ORDER BY seq LIMIT ?",
                                 DB_I(last), DB_I(batch));
        if (rc) {
            fprintf(stderr, "verify-audit: %s\n", wrk_db_error(db));
            return 1;
        }
        int rows = wrk_db_nrows(db);
        for (int r = 0; r < rows; r++) {
            int64_t seq = wrk_db_int(db, r, 0);
            char hash[65];
            if (seq != last + 1) {
                printf("audit chain BROKEN: record %lld is missing\n", (long long)(last + 1));
                return 1;
            }
            if (strcmp(wrk_db_text(db, r, 7), prev) != 0) {
                printf("audit chain BROKEN at record %lld: prev_hash does not match\n",
                       (long long)seq);
                return 1;
            }
            s_hash(prev, seq, wrk_db_int(db, r, 1), wrk_db_text(db, r, 2), wrk_db_text(db, r, 3),
                   wrk_db_text(db, r, 4), wrk_db_text(db, r, 5), wrk_db_text(db, r, 6), hash);
            if (strcmp(hash, wrk_db_text(db, r, 8)) != 0) {
                printf("audit chain BROKEN at record %lld (saga %s step %s): hash does not "
                       "match its contents\n",
                       (long long)seq, wrk_db_text(db, r, 2), wrk_db_text(db, r, 3));
                return 1;
            }
            memcpy(prev, hash, sizeof prev);
            last = seq;
            n++;
        }
        if (rows < batch)
            break;
    }
    if (wrk_db_exec(db, "SELECT seq, hash FROM audit_head WHERE id = 1") || wrk_db_nrows(db) != 1 ||
        wrk_db_int(db, 0, 0) != last || strcmp(wrk_db_text(db, 0, 1), prev) != 0) {
        printf("audit chain BROKEN: the head does not match the last record %lld\n",
               (long long)last);
        return 1;
    }
    printf("audit chain OK: %lld records\n", (long long)n);
    return 0;
}

static db_rc_t s_seed_demo(wrk_conn_t *db)
{
    db_rc_t rc =
        wrk_db_exec(db,
                    "INSERT INTO kyc (customer, status, updated_ms) VALUES "
                    "('C001', 'verified', ?), ('C002', 'verified', ?), ('C003', 'pending', ?)",
                    DB_I(wrk_now_ms()), DB_I(wrk_now_ms()), DB_I(wrk_now_ms()));
    if (!rc)
        rc = wrk_db_exec(db, "INSERT INTO compliance_settings (name, value) VALUES "
                             "('aml_threshold', 1000000)");
    return rc;
}

static int s_command(wrk_conn_t *db, const char *cmd, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return strcmp(cmd, "verify-audit") == 0 ? s_verify_audit(db) : -1;
}

static const wrk_op_t s_ops[] = {
    { "generate_compliance_report", op_generate_compliance_report, DB_ISO_DEFAULT,
      "customer:str subject:str? report_type:str? amount:int?", "report:str",
      "Files a report and appends it to the hash-chained audit trail.", "" },
    { "archive_compliance_report", op_archive_compliance_report, DB_ISO_DEFAULT, "", "",
      "The compensation of generate_compliance_report: marks the report archived (the audit trail "
      "keeps both entries).",
      "" },
    { "aml_screening", op_aml_screening, DB_ISO_DEFAULT,
      "customer:str amount:int1..1000000000000000 currency:str block_on_flag:bool?", "flagged:int",
      "Flags an amount at or above the aml_threshold setting (default 1,000,000 minor units); with "
      "block_on_flag the step fails instead.",
      "aml_flagged" },
    { "void_aml_screening", op_void_aml_screening, DB_ISO_DEFAULT, "", "",
      "The compensation of aml_screening: marks the screening voided.", "" },
    { "kyc_check", op_kyc_check, DB_ISO_DEFAULT, "customer:str", "kyc:str",
      "Passes only a customer whose KYC status is verified (pending, expired, rejected or unknown "
      "fail).",
      "kyc_not_verified" },
    { "send_confirmation", op_send_confirmation, DB_ISO_DEFAULT,
      "recipient:str reference:str? amount:int?", "",
      "Records a confirmation notice (one per saga step).", "" },
    { "send_cancellation", op_send_cancellation, DB_ISO_DEFAULT,
      "recipient:str reference:str? amount:int?", "",
      "The compensation of send_confirmation: records a cancellation notice.", "" },
};

const wrk_system_t compliance_system = {
    "compliance",
    s_ops,
    sizeof s_ops / sizeof *s_ops,
    s_migrations,
    sizeof s_migrations / sizeof *s_migrations,
    s_command,
    s_seed_demo,
    "       zsaga-worker-compliance verify-audit --db URI   (check the audit chain)\n",
};

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    return wrk_main(&compliance_system, argc, argv);
}
