/*  zsaga-dbcheck URI: the drivers' contract, checked against a live
    database (run by tests/e2e/drivers.sh on SQLite, PostgreSQL and
    MariaDB). Prints one line a check; exits 1 at the first that fails.

    - a quiet statement (wrk_db_exec_quiet) is applied in order with the
      rest of its transaction, and a statement after it reads its rows;
    - its error is never lost: it comes back from it or from the next
      statement, and the transaction is rolled back;
    - a rollback drops a quiet statement not yet sent;
    - UPDATE ... RETURNING gives the new value and the changed count where
      the dialect has it;
    - on PostgreSQL, a transaction of BEGIN, two quiet inserts and a
      select costs one round trip, and its COMMIT another;
    - after transactions, a statement outside one commits by itself (the
      MariaDB driver starts transactions implicitly, autocommit off).
*/
#include "workers/wrk_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_uri;
/* One pointer for one statement: drivers cache prepared statements by it. */
static const char INS[] = "INSERT INTO zdc (id, v) VALUES (?, ?)";
static const char UPD[] = "UPDATE zdc SET v = v + ? WHERE id = ? RETURNING v";

static void s_fail(wrk_conn_t *c, const char *what)
{
    fprintf(stderr, "zsaga-dbcheck %s: FAILED: %s (%s)\n", s_uri, what, c ? wrk_db_error(c) : "");
    exit(1);
}

static void s_ok(const char *what)
{
    printf("ok: %s\n", what);
}

static int64_t s_value(wrk_conn_t *c, int id)
{
    if (wrk_db_exec(c, "SELECT v FROM zdc WHERE id = ?", DB_I(id)))
        s_fail(c, "select");
    return wrk_db_nrows(c) == 1 ? wrk_db_int(c, 0, 0) : -1;
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc != 2) {
        fprintf(stderr, "usage: zsaga-dbcheck URI\n");
        return 2;
    }
    s_uri = argv[1];
    wrk_conn_t *c = wrk_db_connect(s_uri, err, sizeof err);
    if (!c) {
        fprintf(stderr, "zsaga-dbcheck: %s\n", err);
        return 1;
    }
    db_dialect_t d = wrk_db_dialect(c);
    if (wrk_db_exec(c, "DROP TABLE IF EXISTS zdc") ||
        wrk_db_exec(c, "CREATE TABLE zdc (id INTEGER PRIMARY KEY, v BIGINT NOT NULL)"))
        s_fail(c, "create the table");

    /* In order, and read after. */
    if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000) || wrk_db_exec_quiet(c, INS, DB_I(1), DB_I(10)) ||
        wrk_db_exec_quiet(c, INS, DB_I(2), DB_I(20)))
        s_fail(c, "quiet inserts");
    if (s_value(c, 2) != 20)
        s_fail(c, "a select after two quiet inserts reads the second");
    if (wrk_db_commit(c))
        s_fail(c, "commit");
    if (s_value(c, 1) != 10 || s_value(c, 2) != 20)
        s_fail(c, "both quiet inserts committed");
    s_ok("quiet statements are applied in order and read after");
    if (d == DB_DIALECT_POSTGRES) {
        /* Prepared and the session's timeout set by now. */
        uint64_t trips = c->trips;
        if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000) ||
            wrk_db_exec_quiet(c, INS, DB_I(5), DB_I(50)) ||
            wrk_db_exec_quiet(c, INS, DB_I(6), DB_I(60)) || s_value(c, 6) != 60 || wrk_db_commit(c))
            s_fail(c, "a second transaction");
        if (c->trips - trips != 2)
            s_fail(c, "prepared: one round trip for the statements, one for COMMIT");
        s_ok("postgresql: BEGIN, two quiet inserts and a select cost one round trip");
    }

    /* An error is never lost. */
    if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000))
        s_fail(c, "begin");
    db_rc_t rc = wrk_db_exec_quiet(c, INS, DB_I(1), DB_I(99));
    if (rc == DB_OK)
        rc = wrk_db_exec(c, "UPDATE zdc SET v = v + 1 WHERE id = ?", DB_I(2));
    if (rc != DB_CONFLICT)
        s_fail(c, "a duplicate key in a quiet insert is a conflict, then or at the next statement");
    wrk_db_rollback(c);
    if (s_value(c, 1) != 10 || s_value(c, 2) != 20)
        s_fail(c, "the failed transaction left nothing");
    s_ok("a quiet statement's conflict comes back, and nothing of it stays");

    if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000))
        s_fail(c, "begin");
    rc = wrk_db_exec_quiet(c, INS, DB_I(4), DB_NULLV);
    if (rc == DB_OK)
        rc = wrk_db_exec_commit(c, "UPDATE zdc SET v = v + 1 WHERE id = ?", DB_I(2));
    if (rc != DB_FAILED)
        s_fail(c, "a NOT NULL violation in a quiet insert fails, then or with the commit");
    wrk_db_rollback(c);
    if (s_value(c, 4) != -1 || s_value(c, 2) != 20)
        s_fail(c, "the failed commit left nothing");
    s_ok("a quiet statement's failure comes back with the commit, which does not happen");

    if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000) || wrk_db_exec_quiet(c, INS, DB_I(3), DB_I(30)))
        s_fail(c, "quiet insert");
    wrk_db_rollback(c);
    if (s_value(c, 3) != -1)
        s_fail(c, "a rolled back quiet insert is not there");
    s_ok("a rollback drops a quiet statement");

    if (d == DB_DIALECT_POSTGRES || d == DB_DIALECT_SQLITE) {
        if (wrk_db_begin(c, DB_ISO_DEFAULT, 10000) || wrk_db_exec(c, UPD, DB_I(5), DB_I(1)))
            s_fail(c, "update returning");
        if (wrk_db_nrows(c) != 1 || wrk_db_int(c, 0, 0) != 15 || wrk_db_changes(c) != 1)
            s_fail(c, "UPDATE ... RETURNING gives the new value and one change");
        if (wrk_db_exec(c, UPD, DB_I(5), DB_I(77)) || wrk_db_nrows(c) != 0 ||
            wrk_db_changes(c) != 0)
            s_fail(c, "UPDATE ... RETURNING of no row: no row, no change");
        if (wrk_db_commit(c) || s_value(c, 1) != 15)
            s_fail(c, "commit");
        s_ok("UPDATE ... RETURNING");
    }
    /* Outside a transaction, a statement commits by itself: another
       connection sees it at once. */
    if (wrk_db_exec(c, INS, DB_I(8), DB_I(80)))
        s_fail(c, "insert outside a transaction");
    wrk_conn_t *c2 = wrk_db_connect(s_uri, err, sizeof err);
    if (!c2)
        s_fail(NULL, err);
    if (s_value(c2, 8) != 80)
        s_fail(c2, "a statement outside a transaction is committed at once");
    wrk_db_close(&c2);
    s_ok("a statement outside a transaction commits by itself");
    if (wrk_db_exec(c, "DROP TABLE zdc"))
        s_fail(c, "drop the table");
    printf("zsaga-dbcheck %s: all passed\n", c->drv->scheme);
    wrk_db_close(&c);
    return 0;
}
