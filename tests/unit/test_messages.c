/*  Tests of messages/: the msgpack reader, params, saga definitions (graph
    validation and order) and the protocol codec, including hostile input. */
#define _GNU_SOURCE /* memmem */
#include "messages/msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Build a submit body from a tiny DSL of pack calls. */
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} s_b_t;

static void s_b_init(s_b_t *b)
{
    msgpack_sbuffer_init(&b->buf);
    msgpack_packer_init(&b->pk, &b->buf, msgpack_sbuffer_write);
}

/* One step map: id, system, action, compensation, deps (NULL-terminated), params count 0. */
static void s_step(s_b_t *b, const char *id, const char *system, const char *action,
                   const char **deps, const char *ref_param)
{
    int n = 4 + (deps ? 1 : 0) + (ref_param ? 1 : 0);
    msgpack_pack_map(&b->pk, (size_t)n);
    mp_pack_kv_str(&b->pk, "id", id);
    mp_pack_kv_str(&b->pk, "system", system);
    mp_pack_kv_str(&b->pk, "action", action);
    mp_pack_kv_str(&b->pk, "compensation", "undo");
    if (deps) {
        int nd = 0;
        while (deps[nd])
            nd++;
        mp_pack_cstr(&b->pk, "deps");
        msgpack_pack_array(&b->pk, (size_t)nd);
        for (int i = 0; i < nd; i++)
            mp_pack_cstr(&b->pk, deps[i]);
    }
    if (ref_param) {
        mp_pack_cstr(&b->pk, "params");
        msgpack_pack_map(&b->pk, 1);
        mp_pack_kv_str(&b->pk, "x", ref_param);
    }
}

static void s_submit_head(s_b_t *b, int nsteps)
{
    msg_pack_header(&b->pk, MSG_SUBMIT, 4);
    mp_pack_kv_uint(&b->pk, "req", 7);
    mp_pack_cstr(&b->pk, "saga");
    msgpack_pack_map(&b->pk, 2);
    mp_pack_kv_str(&b->pk, "id", "s1");
    mp_pack_cstr(&b->pk, "steps");
    msgpack_pack_array(&b->pk, (size_t)nsteps);
}

static const char *s_decode(s_b_t *b, msg_t *m, char *err)
{
    return msg_decode(b->buf.data, b->buf.size, m, err, 512);
}

static void test_valid_submit_and_order(void **state)
{
    (void)state;
    s_b_t b;
    msg_t m;
    char err[512];
    s_b_init(&b);
    s_submit_head(&b, 3);
    const char *d1[] = { "a", NULL }, *d2[] = { "a", "b", NULL };
    s_step(&b, "c", "banking", "activate", d2, "${b.out}");
    s_step(&b, "a", "banking", "create", NULL, NULL);
    s_step(&b, "b", "payments", "schedule", d1, "${a.loan_account}");
    assert_null(s_decode(&b, &m, err));
    assert_int_equal(m.type, MSG_SUBMIT);
    assert_int_equal(m.req, 7);
    assert_non_null(m.saga);
    assert_int_equal(m.saga->nsteps, 3);
    uint32_t order[3];
    msg_saga_order(m.saga, order);
    assert_string_equal(m.saga->steps[order[0]].id, "a");
    assert_string_equal(m.saga->steps[order[1]].id, "b");
    assert_string_equal(m.saga->steps[order[2]].id, "c");
    /* Dependents of a are b and c (indices 2 and 0). */
    assert_int_equal(msg_saga_dependents(m.saga, 1), (1u << 0) | (1u << 2));
    /* Defaults were applied. */
    assert_int_equal(m.saga->steps[1].timeout_ms, MSG_DEFAULT_TIMEOUT_MS);
    assert_int_equal(m.saga->steps[1].retry.attempts, MSG_DEFAULT_ATTEMPTS);
    /* Canonical pack decodes to the same definition. */
    s_b_t c;
    s_b_init(&c);
    msg_saga_pack(m.saga, &c.pk);
    msg_saga_t *again = msg_saga_decode(c.buf.data, c.buf.size, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(again->nsteps, 3);
    assert_int_equal(again->steps[0].deps, m.saga->steps[0].deps);
    msg_saga_destroy(&again);
    msgpack_sbuffer_destroy(&c.buf);
    msg_clear(&m);
    assert_null(m.saga);
    msgpack_sbuffer_destroy(&b.buf);
}

static void s_expect_invalid(s_b_t *b, const char *code, const char *needle)
{
    msg_t m;
    char err[512];
    const char *got = s_decode(b, &m, err);
    assert_non_null(got);
    assert_string_equal(got, code);
    if (!strstr(err, needle))
        fail_msg("reason '%s' does not mention '%s'", err, needle);
    assert_null(m.saga);
    msgpack_sbuffer_destroy(&b->buf);
}

/* Defaults spelled out or left out, params in any key order: one
   canonical form, and it leaves the defaults out. */
static void test_canonical_form(void **state)
{
    (void)state;
    char err[512];
    s_b_t a, b, c;
    s_b_init(&a);
    msgpack_pack_map(&a.pk, 2);
    mp_pack_kv_str(&a.pk, "id", "s1");
    mp_pack_cstr(&a.pk, "steps");
    msgpack_pack_array(&a.pk, 1);
    msgpack_pack_map(&a.pk, 4);
    mp_pack_kv_str(&a.pk, "id", "x");
    mp_pack_kv_str(&a.pk, "system", "bank");
    mp_pack_kv_str(&a.pk, "action", "debit");
    mp_pack_cstr(&a.pk, "params");
    msgpack_pack_map(&a.pk, 2);
    mp_pack_kv_str(&a.pk, "currency", "USD");
    mp_pack_kv_int(&a.pk, "amount", 5);
    s_b_init(&b);
    msgpack_pack_map(&b.pk, 3);
    mp_pack_kv_str(&b.pk, "id", "s1");
    mp_pack_kv_str(&b.pk, "name", "");
    mp_pack_cstr(&b.pk, "steps");
    msgpack_pack_array(&b.pk, 1);
    msgpack_pack_map(&b.pk, 9);
    mp_pack_kv_str(&b.pk, "id", "x");
    mp_pack_kv_str(&b.pk, "system", "bank");
    mp_pack_kv_str(&b.pk, "action", "debit");
    mp_pack_cstr(&b.pk, "compensation");
    msgpack_pack_nil(&b.pk);
    mp_pack_cstr(&b.pk, "deps");
    msgpack_pack_array(&b.pk, 0);
    mp_pack_cstr(&b.pk, "params");
    msgpack_pack_map(&b.pk, 2);
    mp_pack_kv_uint(&b.pk, "amount", 5);
    mp_pack_kv_str(&b.pk, "currency", "USD");
    mp_pack_kv_uint(&b.pk, "timeout_ms", MSG_DEFAULT_TIMEOUT_MS);
    mp_pack_cstr(&b.pk, "retry");
    msgpack_pack_map(&b.pk, 1);
    mp_pack_kv_uint(&b.pk, "attempts", MSG_DEFAULT_ATTEMPTS);
    mp_pack_cstr(&b.pk, "compensation_retry");
    msgpack_pack_map(&b.pk, 0);
    msg_saga_t *sa = msg_saga_decode(a.buf.data, a.buf.size, err, sizeof err);
    msg_saga_t *sb = msg_saga_decode(b.buf.data, b.buf.size, err, sizeof err);
    assert_non_null(sa);
    assert_non_null(sb);
    s_b_t pa, pb;
    s_b_init(&pa);
    s_b_init(&pb);
    msg_saga_pack(sa, &pa.pk);
    msg_saga_pack(sb, &pb.pk);
    assert_int_equal(pa.buf.size, pb.buf.size);
    assert_memory_equal(pa.buf.data, pb.buf.data, pa.buf.size);
    /* No default is written: id, steps; the step's id, system, action, params. */
    mp_reader_t r;
    uint32_t n;
    mp_reader_init(&r, pa.buf.data, pa.buf.size);
    assert_int_equal(mp_read_map(&r, &n), 0);
    assert_int_equal(n, 2);
    assert_null(memmem(pa.buf.data, pa.buf.size, "timeout_ms", 10));
    assert_null(memmem(pa.buf.data, pa.buf.size, "retry", 5));
    assert_null(memmem(pa.buf.data, pa.buf.size, "compensation", 12));
    assert_null(memmem(pa.buf.data, pa.buf.size, "deps", 4));
    /* A value other than the default is kept, and reads back. */
    s_b_init(&c);
    msgpack_pack_map(&c.pk, 2);
    mp_pack_kv_str(&c.pk, "id", "s1");
    mp_pack_cstr(&c.pk, "steps");
    msgpack_pack_array(&c.pk, 1);
    msgpack_pack_map(&c.pk, 4);
    mp_pack_kv_str(&c.pk, "id", "x");
    mp_pack_kv_str(&c.pk, "system", "bank");
    mp_pack_kv_str(&c.pk, "action", "debit");
    mp_pack_kv_uint(&c.pk, "timeout_ms", 1234);
    msg_saga_t *sc = msg_saga_decode(c.buf.data, c.buf.size, err, sizeof err);
    assert_non_null(sc);
    s_b_t pc;
    s_b_init(&pc);
    msg_saga_pack(sc, &pc.pk);
    msg_saga_t *again = msg_saga_decode(pc.buf.data, pc.buf.size, err, sizeof err);
    assert_non_null(again);
    assert_int_equal(again->steps[0].timeout_ms, 1234);
    assert_int_equal(again->steps[0].retry.attempts, MSG_DEFAULT_ATTEMPTS);
    msg_saga_destroy(&again);
    msg_saga_destroy(&sa);
    msg_saga_destroy(&sb);
    msg_saga_destroy(&sc);
    msgpack_sbuffer_destroy(&a.buf);
    msgpack_sbuffer_destroy(&b.buf);
    msgpack_sbuffer_destroy(&c.buf);
    msgpack_sbuffer_destroy(&pa.buf);
    msgpack_sbuffer_destroy(&pb.buf);
    msgpack_sbuffer_destroy(&pc.buf);
}

static void test_cycle_rejected(void **state)
{
    (void)state;
    s_b_t b;
    const char *da[] = { "c", NULL }, *db[] = { "a", NULL }, *dc[] = { "b", NULL };
    s_b_init(&b);
    s_submit_head(&b, 3);
    s_step(&b, "a", "banking", "x", da, NULL);
    s_step(&b, "b", "banking", "x", db, NULL);
    s_step(&b, "c", "banking", "x", dc, NULL);
    s_expect_invalid(&b, "invalid_saga", "cycle");
}

static void test_graph_errors(void **state)
{
    (void)state;
    s_b_t b;
    const char *dx[] = { "nope", NULL }, *self[] = { "a", NULL }, *twice[] = { "a", "a", NULL };
    s_b_init(&b);
    s_submit_head(&b, 1);
    s_step(&b, "a", "banking", "x", dx, NULL);
    s_expect_invalid(&b, "invalid_saga", "unknown step 'nope'");

    s_b_init(&b);
    s_submit_head(&b, 1);
    s_step(&b, "a", "banking", "x", self, NULL);
    s_expect_invalid(&b, "invalid_saga", "depends on itself");

    s_b_init(&b);
    s_submit_head(&b, 2);
    s_step(&b, "a", "banking", "x", NULL, NULL);
    s_step(&b, "a", "banking", "y", NULL, NULL);
    s_expect_invalid(&b, "invalid_saga", "duplicate step id 'a'");

    s_b_init(&b);
    s_submit_head(&b, 2);
    s_step(&b, "a", "banking", "x", NULL, NULL);
    s_step(&b, "b", "banking", "y", twice, NULL);
    s_expect_invalid(&b, "invalid_saga", "twice");

    /* A reference to a step that is not an ancestor. */
    s_b_init(&b);
    s_submit_head(&b, 2);
    s_step(&b, "a", "banking", "x", NULL, NULL);
    s_step(&b, "b", "banking", "y", NULL, "${a.out}");
    s_expect_invalid(&b, "invalid_saga", "not a step it depends on");

    /* Bad names. */
    s_b_init(&b);
    s_submit_head(&b, 1);
    s_step(&b, "a", "Bad System", "x", NULL, NULL);
    s_expect_invalid(&b, "invalid_saga", "system must be");
}

static void test_float_and_oversize_rejected(void **state)
{
    (void)state;
    s_b_t b;
    s_b_init(&b);
    s_submit_head(&b, 1);
    msgpack_pack_map(&b.pk, 4);
    mp_pack_kv_str(&b.pk, "id", "a");
    mp_pack_kv_str(&b.pk, "system", "banking");
    mp_pack_kv_str(&b.pk, "action", "debit_account");
    mp_pack_cstr(&b.pk, "params");
    msgpack_pack_map(&b.pk, 1);
    mp_pack_cstr(&b.pk, "amount");
    msgpack_pack_double(&b.pk, 10.5);
    s_expect_invalid(&b, "invalid_saga", "floating point is not allowed");

    char big[MSG_VALUE_MAX + 10];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    s_b_init(&b);
    s_submit_head(&b, 1);
    msgpack_pack_map(&b.pk, 4);
    mp_pack_kv_str(&b.pk, "id", "a");
    mp_pack_kv_str(&b.pk, "system", "banking");
    mp_pack_kv_str(&b.pk, "action", "debit_account");
    mp_pack_cstr(&b.pk, "params");
    msgpack_pack_map(&b.pk, 1);
    mp_pack_kv_str(&b.pk, "memo", big);
    s_expect_invalid(&b, "invalid_saga", "longer than");

    /* Too many steps. */
    s_b_init(&b);
    s_submit_head(&b, MSG_MAX_STEPS + 1);
    for (int i = 0; i <= MSG_MAX_STEPS; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        s_step(&b, id, "banking", "x", NULL, NULL);
    }
    s_expect_invalid(&b, "invalid_saga", "1 to 64 steps");
}

static void test_malformed_messages(void **state)
{
    (void)state;
    msg_t m;
    char err[512];
    /* Not msgpack at all, truncated, wrong top type. */
    assert_string_equal(msg_decode("hello", 5, &m, err, sizeof err), "malformed");
    const uint8_t trunc[] = { 0x82, 0xa1, 'v' };
    assert_string_equal(msg_decode(trunc, sizeof trunc, &m, err, sizeof err), "malformed");
    /* An array header that claims 4 billion entries in 5 bytes. */
    const uint8_t huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    assert_string_equal(msg_decode(huge, sizeof huge, &m, err, sizeof err), "malformed");
    /* Unknown type, unknown field, missing field, wrong version. */
    s_b_t b;
    s_b_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mp_pack_kv_uint(&b.pk, "v", 1);
    mp_pack_kv_str(&b.pk, "type", "teleport");
    assert_string_equal(s_decode(&b, &m, err), "unknown_type");
    assert_non_null(strstr(err, "teleport"));
    msgpack_sbuffer_destroy(&b.buf);

    s_b_init(&b);
    msg_pack_header(&b.pk, MSG_STATUS, 4);
    mp_pack_kv_uint(&b.pk, "req", 1);
    mp_pack_kv_str(&b.pk, "wat", "x");
    assert_string_equal(s_decode(&b, &m, err), "malformed");
    assert_non_null(strstr(err, "unknown field 'wat'"));
    msgpack_sbuffer_destroy(&b.buf);

    s_b_init(&b);
    msg_pack_header(&b.pk, MSG_STATUS, 3);
    mp_pack_kv_uint(&b.pk, "req", 1);
    assert_string_equal(s_decode(&b, &m, err), "malformed");
    assert_non_null(strstr(err, "missing field 'id'"));
    assert_int_equal(m.type, MSG_STATUS); /* kept, for the reply */
    msgpack_sbuffer_destroy(&b.buf);

    s_b_init(&b);
    msgpack_pack_map(&b.pk, 2);
    mp_pack_kv_uint(&b.pk, "v", 9);
    mp_pack_kv_str(&b.pk, "type", "stats");
    assert_string_equal(s_decode(&b, &m, err), "unsupported_version");
    msgpack_sbuffer_destroy(&b.buf);

    /* Too large. */
    uint8_t *big = calloc(1, MSG_MAX_BYTES + 1);
    assert_string_equal(msg_decode(big, MSG_MAX_BYTES + 1, &m, err, sizeof err), "too_large");
    free(big);
}

static void test_roundtrip_worker_messages(void **state)
{
    (void)state;
    msg_t m, d;
    char err[512];
    s_b_t b, p;
    s_b_init(&p);
    msgpack_pack_map(&p.pk, 2);
    mp_pack_kv_str(&p.pk, "account", "ACC001");
    mp_pack_kv_int(&p.pk, "amount", -5);
    msg_init(&m, MSG_RESULT);
    strcpy(m.id, "s1");
    strcpy(m.step, "debit");
    m.phase = MSG_PHASE_COMPENSATION;
    m.attempt = 3;
    m.lease = 5000000000ull; /* beyond 32 bits */
    m.status = MSG_STATUS_RETRY;
    strcpy(m.code, "db_busy");
    strcpy(m.text, "locked");
    m.output = (const uint8_t *)p.buf.data;
    m.output_len = p.buf.size;
    s_b_init(&b);
    msg_pack(&m, &b.pk);
    assert_null(s_decode(&b, &d, err));
    assert_int_equal(d.type, MSG_RESULT);
    assert_string_equal(d.step, "debit");
    assert_int_equal(d.phase, MSG_PHASE_COMPENSATION);
    assert_int_equal(d.status, MSG_STATUS_RETRY);
    assert_int_equal(d.attempt, 3);
    assert_true(d.lease == 5000000000ull);
    assert_string_equal(d.text, "locked");
    msg_kv_t kv[MSG_MAX_PARAMS];
    int n = msg_params_parse(d.output, d.output_len, kv, err, sizeof err);
    assert_int_equal(n, 2);
    assert_int_equal(msg_kv_find(kv, n, "amount")->i, -5);
    msgpack_sbuffer_destroy(&b.buf);

    msg_init(&m, MSG_READY);
    strcpy(m.system, "banking");
    strcpy(m.instance, "banking-1");
    m.capacity = 4;
    m.nops = 2;
    strcpy(m.ops[0], "debit_account");
    strcpy(m.ops[1], "credit_account");
    s_b_init(&b);
    msg_pack(&m, &b.pk);
    assert_null(s_decode(&b, &d, err));
    assert_int_equal(d.nops, 2);
    assert_string_equal(d.ops[1], "credit_account");
    msgpack_sbuffer_destroy(&b.buf);
    msgpack_sbuffer_destroy(&p.buf);
}

static int s_lookup(void *arg, const char *step, const uint8_t **out, size_t *len)
{
    s_b_t *o = arg;
    if (strcmp(step, "a") != 0)
        return -1;
    *out = (const uint8_t *)o->buf.data;
    *len = o->buf.size;
    return 0;
}

static void test_params_resolve(void **state)
{
    (void)state;
    s_b_t in, out, res;
    char err[256];
    s_b_init(&in);
    msgpack_pack_map(&in.pk, 2);
    mp_pack_kv_str(&in.pk, "loan", "${a.loan_account}");
    mp_pack_kv_int(&in.pk, "n", 3);
    s_b_init(&out);
    msgpack_pack_map(&out.pk, 1);
    mp_pack_kv_str(&out.pk, "loan_account", "LN-1");
    s_b_init(&res);
    assert_int_equal(msg_params_resolve((uint8_t *)in.buf.data, in.buf.size, s_lookup, &out,
                                        &res.pk, err, sizeof err),
                     0);
    msg_kv_t kv[MSG_MAX_PARAMS];
    int n = msg_params_parse((uint8_t *)res.buf.data, res.buf.size, kv, err, sizeof err);
    assert_int_equal(n, 2);
    assert_int_equal(msg_kv_find(kv, n, "loan")->slen, 4);
    assert_memory_equal(msg_kv_find(kv, n, "loan")->s, "LN-1", 4);
    /* A missing key is an error that names it. */
    msgpack_sbuffer_clear(&in.buf);
    msgpack_pack_map(&in.pk, 1);
    mp_pack_kv_str(&in.pk, "loan", "${a.nope}");
    msgpack_sbuffer_clear(&res.buf);
    assert_int_equal(msg_params_resolve((uint8_t *)in.buf.data, in.buf.size, s_lookup, &out,
                                        &res.pk, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "no key 'nope'"));
    msgpack_sbuffer_destroy(&in.buf);
    msgpack_sbuffer_destroy(&out.buf);
    msgpack_sbuffer_destroy(&res.buf);
}

static void test_retry_delay(void **state)
{
    (void)state;
    msg_retry_t p = { 5, 100, 350 };
    assert_int_equal(msg_retry_delay(&p, 2), 100);
    assert_int_equal(msg_retry_delay(&p, 3), 200);
    assert_int_equal(msg_retry_delay(&p, 4), 350);
    assert_int_equal(msg_retry_delay(&p, 9), 350);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_submit_and_order),
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_cycle_rejected),
        cmocka_unit_test(test_graph_errors),
        cmocka_unit_test(test_float_and_oversize_rejected),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_roundtrip_worker_messages),
        cmocka_unit_test(test_params_resolve),
        cmocka_unit_test(test_retry_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
