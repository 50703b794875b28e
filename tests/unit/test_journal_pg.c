/*  Tests of journal/jnl_pg against a real PostgreSQL (the URI of an empty
    database in ZSAGA_TEST_PG_URI; e2e/journal_pg.sh makes one): a write
    that fails inside its pipeline, and a session the server ends under
    a pipeline, each leave the connection fit for the next transaction,
    and nothing of the failed one is kept; a COMMIT whose answer is lost
    is reported as what the database did. */
#include "journal/jnl_pg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_uri;

/* An SQL statement on a connection of the test's own. */
static void s_admin(const char *sql)
{
    PGconn *c = PQconnectdb(s_uri);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(c);
}

static jpg_t *s_open(void)
{
    char err[256];
    jpg_t *j = jpg_open(s_uri, true, err, sizeof err);
    if (!j || jpg_use_partition(j, 0, 1, err, sizeof err))
        fail_msg("%s", err);
    return j;
}

/* Is key k in db 1, with value v (NULL: absent)? */
static void s_expect(jpg_t *j, const char *k, const char *v)
{
    const void *got;
    size_t len;
    int rc = jpg_get(j, 1, k, strlen(k), &got, &len);
    if (!v) {
        assert_int_equal(rc, MDB_NOTFOUND);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(len, strlen(v));
    assert_memory_equal(got, v, len);
    jpg_release(j);
}

static void s_write_ok(jpg_t *j, const char *k, const char *v)
{
    assert_int_equal(jpg_begin(j, true), 0);
    assert_int_equal(jpg_put(j, 1, k, strlen(k), v, strlen(v)), 0);
    assert_int_equal(jpg_put(j, 1, "tail", 4, v, strlen(v)), 0);
    assert_int_equal(jpg_commit(j), 0);
    s_expect(j, k, v);
}

/* The first of several queued statements fails: every result after it is
   "aborted", and all of them must be read before libpq leaves pipeline
   mode. */
static void test_failed_statement_in_pipeline(void **state)
{
    (void)state;
    jpg_t *j = s_open();
    s_admin("ALTER TABLE zsaga_journal DROP CONSTRAINT IF EXISTS no_bad");
    s_admin("ALTER TABLE zsaga_journal ADD CONSTRAINT no_bad CHECK (k <> 'bad'::bytea)");
    assert_int_equal(jpg_begin(j, true), 0);
    assert_int_equal(jpg_put(j, 1, "bad", 3, "x", 1), 0);
    assert_int_equal(jpg_put(j, 1, "p1", 2, "y", 1), 0);
    assert_int_equal(jpg_put(j, 1, "p2", 2, "z", 1), 0);
    assert_int_not_equal(jpg_commit(j), 0);
    s_expect(j, "p1", NULL);
    s_write_ok(j, "after-fail", "ok");
    s_admin("ALTER TABLE zsaga_journal DROP CONSTRAINT no_bad");
    jpg_close(&j);
}

/* The server ends the writer's session while its batch is queued (as the
   idle-transaction limit ends a paused zsagad's): the commit fails, and
   the next transaction runs on a connection made again. */
static void test_session_ended_under_pipeline(void **state)
{
    (void)state;
    jpg_t *j = s_open();
    s_write_ok(j, "before", "1");
    for (int round = 0; round < 3; round++) {
        assert_int_equal(jpg_begin(j, true), 0);
        assert_int_equal(jpg_put(j, 1, "lost1", 5, "x", 1), 0);
        assert_int_equal(jpg_put(j, 1, "lost2", 5, "x", 1), 0);
        s_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()");
        assert_int_equal(jpg_put(j, 1, "lost3", 5, "x", 1), 0);
        assert_int_not_equal(jpg_commit(j), 0);
        s_write_ok(j, "after-kill", round == 0 ? "a" : round == 1 ? "b" : "c");
        s_expect(j, "lost1", NULL);
        s_expect(j, "lost3", NULL);
    }
    jpg_close(&j);
}

/* The same, the session ended between transactions. */
static void test_session_ended_between(void **state)
{
    (void)state;
    jpg_t *j = s_open();
    s_write_ok(j, "one", "1");
    s_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()");
    /* The first statement on the dead session fails and says so; the next
       transaction connects again. */
    if (jpg_begin(j, true) == 0) {
        assert_int_equal(jpg_put(j, 1, "two", 3, "2", 1), 0);
        jpg_commit(j);
    }
    s_write_ok(j, "three", "3");
    jpg_close(&j);
}

/* A leaseholder's writer, as zsagad's committer is: its write
   transactions are fenced, and carry their transaction's id. */
static jpg_t *s_open_leased(void)
{
    char who[128], until[64];
    jpg_t *j = s_open();
    assert_int_equal(
        jpg_lease_take(j, 0, "test", "", 60000, 0, who, sizeof who, until, sizeof until), 0);
    return j;
}

/* COMMIT's answer lost with the connection after the database committed
   (as when the server is killed between its WAL flush and its reply):
   the journal learns from txid_status that it committed and says so,
   instead of failing a batch that is in the journal. */
static void test_commit_answer_lost(void **state)
{
    (void)state;
    jpg_t *j = s_open_leased();
    assert_int_equal(jpg_begin(j, true), 0);
    assert_int_equal(jpg_put(j, 1, "landed", 6, "yes", 3), 0);
    jpg_test_cut_commit(j, false);
    assert_int_equal(jpg_commit(j), 0);
    s_expect(j, "landed", "yes");
    s_write_ok(j, "next", "1");
    jpg_lease_release(j);
    jpg_close(&j);
}

/* The connection lost before COMMIT reached the server: the same question
   finds the transaction rolled back, and the commit fails. */
static void test_commit_never_sent(void **state)
{
    (void)state;
    jpg_t *j = s_open_leased();
    assert_int_equal(jpg_begin(j, true), 0);
    assert_int_equal(jpg_put(j, 1, "unsent", 6, "no", 2), 0);
    assert_int_equal(jpg_flush(j), 0);
    jpg_test_cut_commit(j, true);
    assert_int_equal(jpg_commit(j), EIO);
    s_expect(j, "unsent", NULL);
    s_write_ok(j, "after-cut", "1");
    jpg_lease_release(j);
    jpg_close(&j);
}

/* The partition count is fixed when the journal is made. */
static void test_partition_count_fixed(void **state)
{
    (void)state;
    char err[256];
    jpg_t *j = s_open();
    assert_int_equal(jpg_partitions(j, 1, err, sizeof err), 0);
    assert_int_equal(jpg_partitions(j, 3, err, sizeof err), EINVAL);
    assert_non_null(strstr(err, "made with 1 partition"));
    assert_int_equal(jpg_partitions(j, 1, err, sizeof err), 0);
    jpg_close(&j);
}

int main(void)
{
    s_uri = getenv("ZSAGA_TEST_PG_URI");
    if (!s_uri || !*s_uri) {
        fprintf(stderr, "ZSAGA_TEST_PG_URI: the URI of an empty PostgreSQL database "
                        "(tests/e2e/journal_pg.sh makes one)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_statement_in_pipeline),
        cmocka_unit_test(test_session_ended_under_pipeline),
        cmocka_unit_test(test_session_ended_between),
        cmocka_unit_test(test_commit_answer_lost),
        cmocka_unit_test(test_commit_never_sent),
        cmocka_unit_test(test_partition_count_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
