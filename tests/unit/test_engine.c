/*  Tests of the orchestrator's engine, driven without sockets: dispatch
    order, parallel steps, reverse-order compensation, retries and
    timeouts, a lost worker, cancel, recovery after a crash, idempotent
    submit, and a full journal. */
#include "orchestrator/orc_engine.h"
#include "orchestrator/orc_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char s_dir[256];
static uint64_t s_now = 1000000; /* the monotonic clock */
static int64_t s_wall_shift;     /* the wall clock is s_now + this: tests step it */
#define S_WALL ((uint64_t)((int64_t)s_now + s_wall_shift))

typedef struct {
    jnl_t *jnl;
    orc_engine_t *e;
} s_env_t;

static void s_open_cfg(s_env_t *env, size_t map, const orc_config_t *cfg)
{
    char err[512];
    jnl_config_t jc = { map, JNL_SYNC_NONE };
    orc_config_t oc = { .heartbeat_timeout_ms = 3000, .reserve_pct = 10, .seed = 42 };
    if (cfg)
        oc = *cfg;
    env->jnl = jnl_open(s_dir, &jc, err, sizeof err);
    assert_non_null(env->jnl);
    env->e = orc_engine_new(env->jnl, &oc, S_WALL, s_now, err, sizeof err);
    if (!env->e)
        fail_msg("engine: %s", err);
}

static void s_open(s_env_t *env, size_t map)
{
    s_open_cfg(env, map, NULL);
}

static void s_close(s_env_t *env)
{
    orc_engine_destroy(&env->e);
    jnl_destroy(&env->jnl);
}

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/zsaga-eng-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

/* The last lease handed out for each step, as a worker would echo it. */
static struct {
    char saga[MSG_ID_MAX + 1], step[MSG_ID_MAX + 1];
    uint64_t lease;
} s_leases[256];
static size_t s_nleases;

static uint64_t *s_lease_slot(const char *saga, const char *step)
{
    for (size_t i = 0; i < s_nleases; i++)
        if (strcmp(s_leases[i].saga, saga) == 0 && strcmp(s_leases[i].step, step) == 0)
            return &s_leases[i].lease;
    assert_true(s_nleases < 256);
    strcpy(s_leases[s_nleases].saga, saga);
    strcpy(s_leases[s_nleases].step, step);
    s_leases[s_nleases].lease = 0;
    return &s_leases[s_nleases++].lease;
}

static int s_teardown(void **state)
{
    (void)state;
    s_nleases = 0;
    s_wall_shift = 0;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s/*", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void s_ready(s_env_t *env, const char *rid, const char *system, uint32_t capacity)
{
    msg_t m;
    msg_init(&m, MSG_READY);
    strcpy(m.system, system);
    strcpy(m.instance, rid);
    m.capacity = capacity;
    m.nops = 2;
    strcpy(m.ops[0], "act");
    strcpy(m.ops[1], "undo");
    orc_engine_now(env->e, S_WALL, s_now);
    char err[256];
    /* Each test worker has a key of its own, named like it. */
    assert_null(orc_engine_ready(env->e, rid, rid, rid, &m, err, sizeof err));
}

/* Steps as "id:system:dep1,dep2" strings. */
static msg_saga_t *s_def(const char *id, int n, const char **steps, uint32_t attempts,
                         uint32_t timeout_ms)
{
    msgpack_sbuffer b;
    msgpack_packer pk;
    char err[512];
    msgpack_sbuffer_init(&b);
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    mp_pack_kv_str(&pk, "id", id);
    mp_pack_cstr(&pk, "steps");
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        char buf[128], *save = NULL;
        snprintf(buf, sizeof buf, "%s", steps[i]);
        char *sid = strtok_r(buf, ":", &save), *sys = strtok_r(NULL, ":", &save),
             *deps = strtok_r(NULL, ":", &save);
        msgpack_pack_map(&pk, 7);
        mp_pack_kv_str(&pk, "id", sid);
        mp_pack_kv_str(&pk, "system", sys);
        mp_pack_kv_str(&pk, "action", "act");
        mp_pack_kv_str(&pk, "compensation", "undo");
        mp_pack_kv_uint(&pk, "timeout_ms", timeout_ms);
        mp_pack_cstr(&pk, "retry");
        msgpack_pack_map(&pk, 3);
        mp_pack_kv_uint(&pk, "attempts", attempts);
        mp_pack_kv_uint(&pk, "backoff_ms", 100);
        mp_pack_kv_uint(&pk, "backoff_max_ms", 100);
        mp_pack_cstr(&pk, "deps");
        int nd = 0;
        char *d[8], *s2 = NULL;
        for (char *t = deps ? strtok_r(deps, ",", &s2) : NULL; t; t = strtok_r(NULL, ",", &s2))
            d[nd++] = t;
        msgpack_pack_array(&pk, (size_t)nd);
        for (int k = 0; k < nd; k++)
            mp_pack_cstr(&pk, d[k]);
    }
    msg_saga_t *def = msg_saga_decode(b.data, b.size, err, sizeof err);
    if (!def)
        fail_msg("definition: %s", err);
    msgpack_sbuffer_destroy(&b);
    return def;
}

/* What landed, as "saga:step/phase/attempt ..." in order (the saga only
   when with_saga); the outbox is cleared. */
static char s_out[1024];
static const char *s_landed(s_env_t *env, bool with_saga)
{
    size_t n;
    orc_dispatch_t *d = orc_engine_dispatches(env->e, &n);
    s_out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char one[256];
        snprintf(one, sizeof one, "%s%s%s%s/%s/%u", i ? " " : "",
                 with_saga ? d[i].saga->def->id : "", with_saga ? ":" : "",
                 d[i].saga->def->steps[d[i].step].id, d[i].phase == MSG_PHASE_ACTION ? "a" : "c",
                 d[i].attempt);
        strncat(s_out, one, sizeof s_out - strlen(s_out) - 1);
        uint64_t *lease = s_lease_slot(d[i].saga->def->id, d[i].saga->def->steps[d[i].step].id);
        assert_true(d[i].lease > *lease); /* every dispatch a new lease */
        *lease = d[i].lease;
    }
    orc_engine_outbox_clear(env->e);
    return s_out;
}

/* Run one batch; return what was dispatched as "step/phase/attempt ..." sorted by order. */
static const char *s_batch(s_env_t *env)
{
    char err[256];
    orc_engine_now(env->e, S_WALL, s_now);
    orc_engine_tick(env->e);
    orc_engine_pump(env->e);
    assert_int_equal(orc_engine_commit(env->e, err, sizeof err), 0);
    return s_landed(env, false);
}

/* A result under the step's latest lease, or under lease + lease_delta. */
static void s_result_lease(s_env_t *env, const char *rid, const char *saga, const char *step,
                           msg_phase_t phase, uint32_t attempt, msg_status_t status,
                           int64_t lease_delta)
{
    msg_t m;
    msg_init(&m, MSG_RESULT);
    strcpy(m.id, saga);
    strcpy(m.step, step);
    m.phase = phase;
    m.attempt = attempt;
    m.lease = (uint64_t)((int64_t)*s_lease_slot(saga, step) + lease_delta);
    m.status = status;
    if (status != MSG_STATUS_OK)
        strcpy(m.code, "nope");
    orc_engine_result(env->e, rid, &m);
}

static void s_result(s_env_t *env, const char *rid, const char *saga, const char *step,
                     msg_phase_t phase, uint32_t attempt, msg_status_t status)
{
    s_result_lease(env, rid, saga, step, phase, attempt, status, 0);
}

static const char *s_state(s_env_t *env, const char *id)
{
    static char out[32];
    int rc;
    char err[256];
    jnl_read_begin(env->jnl);
    orc_saga_t *s = orc_store_load(env->jnl, id, &rc, err, sizeof err);
    jnl_read_end(env->jnl);
    snprintf(out, sizeof out, "%s", s ? orc_saga_state_name(s->state) : "none");
    orc_saga_destroy(&s);
    return out;
}

static void s_submit(s_env_t *env, msg_saga_t *def, const char *expect_code)
{
    uint8_t state;
    bool dup;
    char err[512];
    const char *code = orc_engine_submit(env->e, &def, &state, &dup, err, sizeof err);
    if (expect_code) {
        assert_non_null(code);
        assert_string_equal(code, expect_code);
        msg_saga_destroy(&def);
    } else if (code)
        fail_msg("submit refused: %s: %s", code, err);
}

static const char *s_diamond[] = { "a:bank", "b:bank:a", "c:pay:a", "d:bank:b,c" };

static void test_order_and_completion(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    s_ready(&env, "w2", "pay", 8);
    s_submit(&env, s_def("s1", 4, s_diamond, 3, 1000), NULL);
    assert_string_equal(s_batch(&env), "a/a/1");
    s_result(&env, "w1", "s1", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    /* b and c are independent: they go out together. */
    const char *out = s_batch(&env);
    assert_true(strstr(out, "b/a/1") && strstr(out, "c/a/1"));
    s_result(&env, "w1", "s1", "b", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), ""); /* d waits for c */
    s_result(&env, "w2", "s1", "c", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "d/a/1");
    s_result(&env, "w1", "s1", "d", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "s1"), "completed");
    assert_int_equal(orc_engine_active(env.e), 0);
    s_close(&env);
}

static void test_reverse_compensation(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    s_ready(&env, "w2", "pay", 8);
    const char *chain[] = { "debit:bank", "risk:bank:debit", "pay:pay:risk", "note:bank:pay" };
    s_submit(&env, s_def("t1", 4, chain, 3, 1000), NULL);
    s_batch(&env);
    s_result(&env, "w1", "t1", "debit", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    s_result(&env, "w1", "t1", "risk", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "pay/a/1");
    s_result(&env, "w2", "t1", "pay", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED);
    /* The failed step is not undone; risk is undone before debit. */
    assert_string_equal(s_batch(&env), "risk/c/1");
    assert_string_equal(s_state(&env, "t1"), "compensating");
    s_result(&env, "w1", "t1", "risk", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "debit/c/1");
    s_result(&env, "w1", "t1", "debit", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "t1"), "compensated");
    s_close(&env);
}

static void test_timeout_retry_then_unknown_is_compensated(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *two[] = { "x:bank", "y:bank:x" };
    s_submit(&env, s_def("u1", 2, two, 2, 500), NULL);
    s_batch(&env);
    s_result(&env, "w1", "u1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "y/a/1");
    /* No answer: deadline, backoff, second try, deadline again. */
    s_now += 600;
    s_ready(&env, "w1", "bank", 8); /* still alive */
    assert_string_equal(s_batch(&env), "");
    s_now += 200;
    assert_string_equal(s_batch(&env), "y/a/2");
    s_now += 600;
    s_ready(&env, "w1", "bank", 8);
    /* Out of tries with the outcome unknown: y is undone too, before x. */
    assert_string_equal(s_batch(&env), "y/c/1");
    s_result(&env, "w1", "u1", "y", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "x/c/1");
    /* A retry-later compensation is tried again after its backoff. */
    s_result(&env, "w1", "u1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_RETRY);
    assert_string_equal(s_batch(&env), "");
    s_now += 200;
    assert_string_equal(s_batch(&env), "x/c/2");
    s_result(&env, "w1", "u1", "x", MSG_PHASE_COMPENSATION, 2, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "u1"), "compensated");
    s_close(&env);
}

static void test_compensation_failure_parks(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *two[] = { "x:bank", "y:bank:x" };
    s_submit(&env, s_def("p1", 2, two, 1, 1000), NULL);
    s_batch(&env);
    s_result(&env, "w1", "p1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    s_result(&env, "w1", "p1", "y", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED);
    assert_string_equal(s_batch(&env), "x/c/1");
    s_result(&env, "w1", "p1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_FAILED);
    s_batch(&env);
    assert_string_equal(s_state(&env, "p1"), "parked");
    /* The operator retries: the compensation goes out again and finishes. */
    char err[256];
    assert_null(orc_engine_retry(env.e, "p1", "tester", err, sizeof err));
    assert_string_equal(s_batch(&env), "x/c/1");
    s_result(&env, "w1", "p1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "p1"), "compensated");
    /* Retry of a saga that is not parked is refused. */
    assert_string_equal(orc_engine_retry(env.e, "p1", "tester", err, sizeof err), "bad_state");
    s_close(&env);
}

static void test_recovery_resends_same_attempt(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *two[] = { "x:bank", "y:bank:x" };
    s_submit(&env, s_def("r1", 2, two, 3, 1000), NULL);
    s_batch(&env);
    s_result(&env, "w1", "r1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "y/a/1");
    /* Crash: the engine goes away without another commit. */
    s_close(&env);
    s_open(&env, 0);
    assert_int_equal(orc_engine_active(env.e), 1);
    /* No worker yet: y waits. The system is still known from the journal. */
    assert_string_equal(s_batch(&env), "");
    s_ready(&env, "w9", "bank", 8);
    assert_string_equal(s_batch(&env), "y/a/1");
    s_result(&env, "w9", "r1", "y", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "r1"), "completed");
    s_close(&env);
}

static void test_lost_worker_and_cancel(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *two[] = { "x:bank", "y:bank:x" };
    s_submit(&env, s_def("l1", 2, two, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    /* w1 goes silent; w2 takes over the same try. */
    s_now += 1000;
    s_ready(&env, "w2", "bank", 8);
    s_now += 2500;
    s_ready(&env, "w2", "bank", 8);
    assert_string_equal(s_batch(&env), "x/a/1");
    /* w1 wakes up (a zombie) and answers the same try under its old lease:
       dropped, whatever it says. Only w2's answer counts. */
    s_result_lease(&env, "w1", "l1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED, -1);
    s_result_lease(&env, "w1", "l1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_RETRY, -1);
    assert_string_equal(s_batch(&env), "");
    assert_int_equal(orc_engine_stats(env.e)->fenced_results, 2);
    s_result(&env, "w2", "l1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "y/a/1");
    /* Cancel while y runs: y's outcome is unknown, so y then x are undone. */
    char err[256];
    assert_null(orc_engine_cancel(env.e, "l1", "tester", "test", err, sizeof err));
    assert_string_equal(s_batch(&env), "y/c/1");
    s_result(&env, "w2", "l1", "y", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "x/c/1");
    s_result(&env, "w2", "l1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "l1"), "compensated");
    assert_string_equal(orc_engine_cancel(env.e, "l1", "tester", "", err, sizeof err), "bad_state");
    assert_string_equal(orc_engine_cancel(env.e, "nope", "tester", "", err, sizeof err),
                        "not_found");
    s_close(&env);
}

/* A saga cancelled while its action runs sends the compensation under a
   newer lease; the action's late answer is fenced, yet it still gives the
   worker back the capacity its dispatch took. */
static void test_fenced_answer_frees_capacity(void **state)
{
    (void)state;
    s_env_t env;
    char err[256];
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 2);
    const char *one[] = { "x:bank" };
    s_submit(&env, s_def("c1", 1, one, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    assert_null(orc_engine_cancel(env.e, "c1", "tester", "test", err, sizeof err));
    assert_string_equal(s_batch(&env), "x/c/1"); /* w1 now holds two dispatches */
    /* The action's answer, under the lease before the compensation's. */
    s_result_lease(&env, "w1", "c1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK, -1);
    assert_int_equal(orc_engine_stats(env.e)->fenced_results, 1);
    s_result(&env, "w1", "c1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "c1"), "compensated");
    /* Both dispatches ended: two new sagas fit on w1 at once. */
    s_submit(&env, s_def("c2", 1, one, 3, 60000), NULL);
    s_submit(&env, s_def("c3", 1, one, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1 x/a/1");
    s_close(&env);
}

/* Only the worker the latest lease went to may answer: a registered
   worker of the same system, an unregistered connection, a guessed
   future lease are all dropped and the saga does not move. */
static void test_results_only_from_holder(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    s_ready(&env, "w2", "bank", 1); /* less room: w1 gets the step */
    const char *one[] = { "x:bank" };
    s_submit(&env, s_def("h1", 1, one, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    s_result(&env, "w2", "h1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED);
    s_result(&env, "ghost", "h1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED);
    s_result(&env, "w2", "h1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    assert_int_equal(orc_engine_stats(env.e)->forged_results, 3);
    s_result_lease(&env, "w2", "h1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED, 1);
    assert_int_equal(orc_engine_stats(env.e)->fenced_results, 1);
    assert_string_equal(s_batch(&env), "");
    assert_string_equal(s_state(&env, "h1"), "running");
    s_result(&env, "w1", "h1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "h1"), "completed");
    s_close(&env);
}

static const char *s_ready_as(s_env_t *env, const char *rid, const char *key, const char *instance,
                              const char *system, uint32_t nops)
{
    static char err[256];
    msg_t m;
    msg_init(&m, MSG_READY);
    snprintf(m.system, sizeof m.system, "%s", system);
    snprintf(m.instance, sizeof m.instance, "%s", instance);
    m.capacity = 8;
    for (uint32_t i = 0; i < nops && i < MSG_MAX_OPS; i++)
        snprintf(m.ops[m.nops++], sizeof m.ops[0], "op%u", i);
    return orc_engine_ready(env->e, rid, key, key, &m, err, sizeof err);
}

/* An instance id belongs to the key that registered it; the same key on
   a new connection is a restart, whose steps go out again at once; the
   catalog of systems and operations is bounded. */
static void test_registration_rules(void **state)
{
    (void)state;
    s_env_t env;
    char err[256];
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    assert_string_equal(s_ready_as(&env, "c2", "other", "w1", "bank", 2), "instance_taken");
    const char *one[] = { "x:bank" };
    s_submit(&env, s_def("g1", 1, one, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    assert_null(s_ready_as(&env, "c3", "w1", "w1", "bank", 2));
    assert_string_equal(s_batch(&env), "x/a/1"); /* resent to the new connection */
    assert_int_equal(orc_registry_worker_count(orc_engine_registry(env.e)), 1);
    /* The old connection's answer is a zombie's; the new one's counts. */
    s_result_lease(&env, "w1", "g1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_FAILED, -1);
    s_result(&env, "c3", "g1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "g1"), "completed");
    /* Operations past MSG_MAX_OPS, and systems past the limit (64). */
    assert_string_equal(s_ready_as(&env, "c4", "k4", "w4", "bank", MSG_MAX_OPS), "limit");
    for (int i = 1; i < 64; i++) {
        char sys[16];
        snprintf(sys, sizeof sys, "sys%d", i);
        assert_null(s_ready_as(&env, "c5", "k5", "w5", sys, 1));
    }
    assert_string_equal(s_ready_as(&env, "c6", "k6", "w6", "one-too-many", 1), "limit");
    assert_int_equal(orc_engine_stats(env.e)->ready_refused, 3);
    /* A saga resolved by hand says why. */
    assert_string_equal(orc_engine_resolve(env.e, "g1", "tester", "", err, sizeof err), "invalid");
    s_close(&env);
}

static void test_submit_checks(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *one[] = { "x:bank" }, *other[] = { "x:mainframe" };
    s_submit(&env, s_def("d1", 1, other, 3, 1000), "unknown_system");
    s_submit(&env, s_def("d1", 1, one, 3, 1000), NULL);
    s_batch(&env);
    /* Same id and definition: the same saga. Different: a conflict. */
    uint8_t st;
    bool dup;
    char err[512];
    msg_saga_t *def = s_def("d1", 1, one, 3, 1000);
    assert_null(orc_engine_submit(env.e, &def, &st, &dup, err, sizeof err));
    assert_true(dup);
    assert_null(def);
    s_submit(&env, s_def("d1", 1, one, 4, 1000), "conflict");
    s_close(&env);
}

static void test_journal_full_refuses_new_sagas(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 1024 * 1024);
    s_ready(&env, "w1", "bank", 1000);
    const char *one[] = { "x:bank" };
    int accepted = 0;
    const char *code = NULL;
    for (int i = 0; i < 5000 && !code; i++) {
        char id[32], err[512];
        uint8_t st;
        bool dup;
        snprintf(id, sizeof id, "f%d", i);
        msg_saga_t *def = s_def(id, 1, one, 3, 1000);
        code = orc_engine_submit(env.e, &def, &st, &dup, err, sizeof err);
        if (code) {
            msg_saga_destroy(&def);
            assert_string_equal(code, "journal_full");
            assert_non_null(strstr(err, "--map-size"));
        } else
            accepted++;
        s_batch(&env);
    }
    assert_non_null(code);
    assert_true(accepted > 10);
    /* Running sagas still end in the reserved space. */
    for (int i = 0; i < accepted; i++) {
        char id[32];
        snprintf(id, sizeof id, "f%d", i);
        s_result(&env, "w1", id, "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
        if (i % 50 == 0)
            s_batch(&env);
    }
    s_batch(&env);
    assert_int_equal(orc_engine_active(env.e), 0);
    assert_string_equal(s_state(&env, "f0"), "completed");
    s_close(&env);
}

/* Tries run out on "retry" answers: one of them may have committed (a
   connection dropped during COMMIT), so the step is compensated. */
static void test_retries_exhausted_is_compensated(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *one[] = { "x:bank" };
    s_submit(&env, s_def("r1", 1, one, 2, 1000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    s_result(&env, "w1", "r1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_RETRY);
    assert_string_equal(s_batch(&env), "");
    s_now += 200; /* past the backoff (100 ms at most) */
    assert_string_equal(s_batch(&env), "x/a/2");
    s_result(&env, "w1", "r1", "x", MSG_PHASE_ACTION, 2, MSG_STATUS_RETRY);
    assert_string_equal(s_batch(&env), "x/c/1");
    s_result(&env, "w1", "r1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "r1"), "compensated");
    s_close(&env);
}

/* A saga cancelled while a step waits for its next try after a "retry"
   answer: that try may have acted (its database went away during the
   commit), so the step is compensated, not skipped (the chaos checker
   caught a risk flag left active this way). */
static void test_cancel_while_retrying_compensates(void **state)
{
    (void)state;
    s_env_t env;
    s_open(&env, 0);
    s_ready(&env, "w1", "bank", 8);
    const char *two[] = { "x:bank", "y:bank:x" };
    s_submit(&env, s_def("c1", 2, two, 3, 60000), NULL);
    assert_string_equal(s_batch(&env), "x/a/1");
    s_result(&env, "w1", "c1", "x", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "y/a/1");
    s_result(&env, "w1", "c1", "y", MSG_PHASE_ACTION, 1, MSG_STATUS_RETRY);
    assert_string_equal(s_batch(&env), ""); /* y waits for its backoff */
    char err[256];
    assert_null(orc_engine_cancel(env.e, "c1", "tester", "test", err, sizeof err));
    assert_string_equal(s_batch(&env), "y/c/1");
    s_result(&env, "w1", "c1", "y", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "x/c/1");
    s_result(&env, "w1", "c1", "x", MSG_PHASE_COMPENSATION, 1, MSG_STATUS_OK);
    s_batch(&env);
    assert_string_equal(s_state(&env, "c1"), "compensated");
    s_close(&env);
}

/* Pipelined commits (zsagad's loop): while a batch is in flight the next
   is collected, and nothing of it is journaled or sent before its own
   flight lands; a failed flight fails the batch collected meanwhile too,
   and every saga either touched comes back as the journal has it. */
static void test_pipelined_commit(void **state)
{
    (void)state;
    s_env_t env;
    int rc;
    char err[256];
    orc_config_t oc = { .heartbeat_timeout_ms = 3000, .reserve_pct = 10, .seed = 42 };
    oc.fail_in_commit = 3;
    s_open_cfg(&env, 0, &oc);
    assert_int_equal(jnl_pipeline(env.jnl), 0);
    assert_true(jnl_pipe_fd(env.jnl) >= 0);
    s_ready(&env, "w1", "bank", 8);
    const char *chain[] = { "a:bank", "b:bank:a" };
    s_submit(&env, s_def("p1", 2, chain, 3, 1000), NULL);
    orc_engine_pump(env.e);
    assert_int_equal(orc_engine_commit_start(env.e, err, sizeof err), 0); /* commit 1 */
    assert_true(orc_engine_commit_busy(env.e));
    assert_int_equal(orc_engine_commit_start(env.e, err, sizeof err), EBUSY);
    /* Collected while commit 1 flies: not in the journal, not sent. */
    s_submit(&env, s_def("p2", 2, chain, 3, 1000), NULL);
    orc_engine_pump(env.e);
    assert_string_equal(s_state(&env, "p2"), "none");
    assert_true(orc_engine_commit_end(env.e, true, &rc, err, sizeof err));
    assert_int_equal(rc, 0);
    assert_false(orc_engine_commit_busy(env.e));
    assert_string_equal(s_landed(&env, true), "p1:a/a/1");
    assert_string_equal(s_state(&env, "p1"), "running");
    assert_string_equal(s_state(&env, "p2"), "none");
    assert_int_equal(orc_engine_commit_start(env.e, err, sizeof err), 0); /* commit 2 */
    assert_true(orc_engine_commit_end(env.e, true, &rc, err, sizeof err));
    assert_int_equal(rc, 0);
    assert_string_equal(s_landed(&env, true), "p2:a/a/1");
    assert_string_equal(s_state(&env, "p2"), "running");

    /* Commit 3 fails once its records are written (on the committer). */
    s_result(&env, "w1", "p1", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    orc_engine_pump(env.e);
    assert_int_equal(orc_engine_commit_start(env.e, err, sizeof err), 0);
    s_submit(&env, s_def("p3", 2, chain, 3, 1000), NULL); /* collected meanwhile */
    s_result(&env, "w1", "p2", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    orc_engine_pump(env.e);
    assert_true(orc_engine_commit_end(env.e, true, &rc, err, sizeof err));
    assert_int_equal(rc, EIO);
    assert_string_equal(s_landed(&env, true), "");
    assert_int_equal(orc_engine_stats(env.e)->commit_failures, 1);
    /* p3 is gone; p1 and p2 are as the journal has them: step a running. */
    assert_int_equal(orc_engine_active(env.e), 2);
    assert_string_equal(s_state(&env, "p3"), "none");
    assert_string_equal(s_state(&env, "p1"), "running");
    /* A result whose recording was lost is fenced; the durable state has
       step a running, so the same try goes out again (under a new lease),
       and its barrier answers it as the first time. */
    s_result(&env, "w1", "p1", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_int_equal(orc_engine_commit(env.e, err, sizeof err), 0); /* nothing moved */
    assert_string_equal(s_landed(&env, true), "");
    orc_engine_now(env.e, S_WALL, s_now);
    orc_engine_pump(env.e);
    assert_int_equal(orc_engine_commit(env.e, err, sizeof err), 0);
    const char *out = s_landed(&env, true);
    assert_int_equal(strlen(out), strlen("p1:a/a/1 p2:a/a/1"));
    assert_non_null(strstr(out, "p1:a/a/1"));
    assert_non_null(strstr(out, "p2:a/a/1"));
    s_result(&env, "w1", "p1", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    s_result(&env, "w1", "p2", "a", MSG_PHASE_ACTION, 1, MSG_STATUS_OK);
    assert_string_equal(s_batch(&env), "b/a/1 b/a/1");
    s_close(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_completion, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_reverse_compensation, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_retry_then_unknown_is_compensated, s_teardown,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_compensation_failure_parks, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_resends_same_attempt, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker_and_cancel, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_fenced_answer_frees_capacity, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_results_only_from_holder, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_registration_rules, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_submit_checks, s_teardown, s_teardown),
        cmocka_unit_test_setup_teardown(test_journal_full_refuses_new_sagas, s_teardown,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted_is_compensated, s_teardown,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_retrying_compensates, s_teardown,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_commit, s_teardown, s_teardown),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
