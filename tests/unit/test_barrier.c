/*  Tests of the barrier (workers/wrk_step.c) on SQLite: duplicates, a
    compensation before its action, an action after its compensation, a
    sticky failure, and an action racing its compensation on two threads,
    many times: every round ends with the effect applied zero times or
    applied and undone, never left behind. */
#include "workers/wrk_migrate.h"
#include "workers/wrk_step.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char s_uri[300], s_dir[256];

static wrk_status_t op_add(wrk_ctx_t *c)
{
    int64_t n;
    if (!wrk_int(c, "n", &n))
        return WRK_FAILED;
    if (n < 0)
        return wrk_fail(c, "negative", "n is negative");
    db_rc_t rc = wrk_db_exec(c->db, "UPDATE counter SET value = value + ? WHERE id = 1", DB_I(n));
    if (rc)
        return wrk_db_status(c, rc);
    wrk_out_int(c, "added", n);
    return WRK_OK;
}

static wrk_status_t op_sub(wrk_ctx_t *c)
{
    int64_t n;
    if (!wrk_prior_int(c, "added", &n))
        return wrk_fail(c, "no_prior", "compensation without the action's output");
    db_rc_t rc = wrk_db_exec(c->db, "UPDATE counter SET value = value - ? WHERE id = 1", DB_I(n));
    return rc ? wrk_db_status(c, rc) : WRK_OK;
}

static const wrk_op_t s_add = { "add", op_add, DB_ISO_DEFAULT };
static const wrk_op_t s_sub = { "sub", op_sub, DB_ISO_DEFAULT };

static const wrk_migration_t s_mig[] = {
    { 1,
      "counter",
      { [DB_DIALECT_SQLITE] = "CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER);"
                              "INSERT INTO counter VALUES (1, 0)" },
      { [DB_DIALECT_SQLITE] = "DROP TABLE counter" } },
};

static int s_setup(void **state)
{
    (void)state;
    char err[512];
    snprintf(s_dir, sizeof s_dir, "/tmp/zsaga-bar-XXXXXX");
    if (!mkdtemp(s_dir))
        return -1;
    snprintf(s_uri, sizeof s_uri, "sqlite:%s/t.db", s_dir);
    wrk_conn_t *db = wrk_db_connect(s_uri, err, sizeof err);
    if (!db || wrk_migrate_up(db, s_mig, 1, -1, NULL, err, sizeof err))
        return -1;
    wrk_db_close(&db);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint8_t s_params[64];
static size_t s_plen;

static void s_set_n(int64_t n)
{
    msgpack_sbuffer b;
    msgpack_packer pk;
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    mp_pack_kv_int(&pk, "n", n);
    memcpy(s_params, b.data, b.size);
    s_plen = b.size;
    msgpack_sbuffer_destroy(&b);
}

static wrk_status_t s_run(wrk_conn_t *db, wrk_ctx_t *c, const char *saga, msg_phase_t phase)
{
    char err[256];
    c->db = db;
    c->saga = saga;
    c->step = "s1";
    c->op = phase == MSG_PHASE_ACTION ? "add" : "sub";
    c->phase = phase;
    c->attempt = 1;
    c->now_ms = 1;
    c->nparams = msg_params_parse(s_params, s_plen, c->params, err, sizeof err);
    return wrk_step_run(c, phase == MSG_PHASE_ACTION ? &s_add : &s_sub, NULL);
}

static int64_t s_value(wrk_conn_t *db)
{
    assert_int_equal(wrk_db_exec(db, "SELECT value FROM counter WHERE id = 1"), DB_OK);
    return wrk_db_int(db, 0, 0);
}

static void test_sequences(void **state)
{
    (void)state;
    char err[512];
    wrk_conn_t *db = wrk_db_connect(s_uri, err, sizeof err);
    wrk_ctx_t *c = malloc(sizeof *c);
    wrk_ctx_init(c);
    s_set_n(5);
    int64_t v0 = s_value(db);
    /* Duplicate: one effect, the same output twice. */
    assert_int_equal(s_run(db, c, "dup", MSG_PHASE_ACTION), WRK_OK);
    assert_false(c->duplicate);
    assert_int_equal(s_run(db, c, "dup", MSG_PHASE_ACTION), WRK_OK);
    assert_true(c->duplicate);
    msg_kv_t kv[MSG_MAX_PARAMS];
    int n = msg_params_parse((uint8_t *)c->result.data, c->result.size, kv, err, sizeof err);
    assert_int_equal(n, 1);
    assert_int_equal(kv[0].i, 5);
    assert_int_equal(s_value(db), v0 + 5);
    /* Compensation first: null; the late action is refused; no effect. */
    assert_int_equal(s_run(db, c, "early", MSG_PHASE_COMPENSATION), WRK_OK);
    assert_non_null(strstr(c->message, "null compensation"));
    assert_int_equal(s_run(db, c, "early", MSG_PHASE_ACTION), WRK_FAILED);
    assert_string_equal(c->code, "compensated");
    assert_int_equal(s_value(db), v0 + 5);
    /* Action, compensation twice, action again: applied then undone once. */
    assert_int_equal(s_run(db, c, "undo", MSG_PHASE_ACTION), WRK_OK);
    assert_int_equal(s_run(db, c, "undo", MSG_PHASE_COMPENSATION), WRK_OK);
    assert_false(c->duplicate);
    assert_int_equal(s_run(db, c, "undo", MSG_PHASE_COMPENSATION), WRK_OK);
    assert_true(c->duplicate);
    assert_int_equal(s_run(db, c, "undo", MSG_PHASE_ACTION), WRK_OK);
    assert_true(c->duplicate);
    assert_int_equal(s_value(db), v0 + 5);
    /* Failure is sticky, and its compensation has nothing to undo. */
    s_set_n(-1);
    assert_int_equal(s_run(db, c, "bad", MSG_PHASE_ACTION), WRK_FAILED);
    assert_string_equal(c->code, "negative");
    s_set_n(3);
    assert_int_equal(s_run(db, c, "bad", MSG_PHASE_ACTION), WRK_FAILED);
    assert_string_equal(c->code, "negative");
    assert_int_equal(s_run(db, c, "bad", MSG_PHASE_COMPENSATION), WRK_OK);
    assert_non_null(strstr(c->message, "nothing to undo"));
    assert_int_equal(s_value(db), v0 + 5);
    wrk_ctx_release(c);
    free(c);
    wrk_db_close(&db);
}

typedef struct {
    msg_phase_t phase;
    int round;
    wrk_status_t st;
} s_racer_t;

static pthread_barrier_t s_gate;

static void *s_racer(void *arg)
{
    s_racer_t *r = arg;
    char err[512], saga[32];
    wrk_conn_t *db = wrk_db_connect(s_uri, err, sizeof err);
    wrk_ctx_t *c = malloc(sizeof *c);
    wrk_ctx_init(c);
    snprintf(saga, sizeof saga, "race-%d", r->round);
    pthread_barrier_wait(&s_gate);
    r->st = s_run(db, c, saga, r->phase);
    wrk_ctx_release(c);
    free(c);
    wrk_db_close(&db);
    return NULL;
}

static void test_action_races_compensation(void **state)
{
    (void)state;
    char err[512];
    wrk_conn_t *db = wrk_db_connect(s_uri, err, sizeof err);
    s_set_n(1);
    int64_t v0 = s_value(db);
    int refused = 0, undone = 0;
    for (int round = 0; round < 100; round++) {
        s_racer_t a = { MSG_PHASE_ACTION, round, WRK_RETRY },
                  b = { MSG_PHASE_COMPENSATION, round, WRK_RETRY };
        pthread_t ta, tb;
        pthread_barrier_init(&s_gate, NULL, 2);
        pthread_create(&ta, NULL, s_racer, &a);
        pthread_create(&tb, NULL, s_racer, &b);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&s_gate);
        assert_int_equal(b.st, WRK_OK); /* a compensation always finishes */
        if (a.st == WRK_FAILED)
            refused++;
        else {
            assert_int_equal(a.st, WRK_OK);
            undone++;
        }
        /* Whatever the order, nothing is left behind. */
        assert_int_equal(s_value(db), v0);
    }
    assert_int_equal(refused + undone, 100);
    wrk_db_close(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_action_races_compensation),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
