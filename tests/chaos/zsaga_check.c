/*  zsaga-check: the chaos harness's judge. It reads the journal (LMDB, or
    the table of the journal on PostgreSQL) and
    the systems' databases directly, with the client libraries only (no
    zsaga code: neither the orchestrator's record readers nor the workers'
    drivers), and reports every broken invariant, naming the saga.

        zsaga-check snapshot --banking URI --out FILE
            the balances before the load (one "account currency balance"
            line each); the ledger must still be empty
        zsaga-check verify --journal DIR|postgresql://URI --banking URI --payments URI
                           --fraud URI --compliance URI --snapshot FILE
                           [--load-log FILE] [--archive DIR]

    With retention on, ended sagas leave the journal: --archive names the
    directory of archive files they were written to first, read here from
    the file layout (docs/operations.md, "Archive files"), checksum
    included. A saga is judged from the journal if it is there, else from
    its last archive record.

    URIs: postgresql://..., mysql://user:pass@host:port/db, redis://host:port/n.
    The rules (docs/operations.md, "Failure injection"):
      1 every saga in the journal ended: completed, compensated, resolved,
        or parked with a reason
      2 a completed saga's effects are present exactly once in every system
      3 a compensated saga's net effect is zero in every system
      4 money is conserved: balances + payments out + fees = the start
      5 no balance is below its overdraft limit
      6 every barrier row agrees with the journal and the effects; no
        effect belongs to a saga the journal does not know
      7 the compliance audit chain verifies end to end
      8 every saga the client was told "accepted" is in the journal, and
        none it was told "rejected" is
    Exit status: 0 no violation, 1 violations (each printed with its
    evidence), 2 could not read something.
*/
#define _GNU_SOURCE
#include <czmq.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <msgpack.h>
#include <mysql.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The journal's encodings this program relies on (docs/operations.md). */
enum {
    SAGA_RUNNING = 1,
    SAGA_COMPENSATING,
    SAGA_COMPLETED,
    SAGA_COMPENSATED,
    SAGA_PARKED,
    SAGA_RESOLVED
};
enum { ST_SUCCEEDED = 4, ST_FAILED = 5, ST_SKIPPED = 6, ST_COMPENSATED = 11 };

static int s_violations;
static int s_shown;

static void s_violation(int rule, const char *saga, const char *fmt, ...)
{
    s_violations++;
    if (++s_shown > 200)
        return; /* the count says the rest */
    va_list ap;
    printf("VIOLATION rule %d saga %s: ", rule, saga ? saga : "-");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void s_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "zsaga-check: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- SQL: PostgreSQL or MariaDB, rows as strings ------------------------ */

typedef struct {
    PGconn *pg;
    MYSQL *my;
} s_sql_t;

typedef void(s_row_fn)(void *arg, char **row, int ncols);

static void s_sql_open(s_sql_t *c, const char *uri)
{
    memset(c, 0, sizeof *c);
    if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
        c->pg = PQconnectdb(uri);
        if (PQstatus(c->pg) != CONNECTION_OK)
            s_die("%s: %s", uri, PQerrorMessage(c->pg));
        return;
    }
    if (strncmp(uri, "mysql://", 8) != 0)
        s_die("%s: want postgresql:// or mysql://", uri);
    /* mysql://user:pass@host:port/db */
    char buf[512], *user = buf, *pass = "", *host, *port, *db;
    snprintf(buf, sizeof buf, "%s", uri + 8);
    if (!(host = strchr(buf, '@')) || !(db = strchr(host, '/')))
        s_die("%s: want mysql://user:pass@host:port/db", uri);
    *host++ = 0;
    *db++ = 0;
    char *colon = strchr(user, ':');
    if (colon) {
        *colon = 0;
        pass = colon + 1;
    }
    if ((port = strchr(host, ':')))
        *port++ = 0;
    c->my = mysql_init(NULL);
    if (!mysql_real_connect(c->my, host, user, pass, db, port ? (unsigned)atoi(port) : 3306, NULL,
                            0))
        s_die("%s: %s", uri, mysql_error(c->my));
}

static void s_sql_close(s_sql_t *c)
{
    if (c->pg)
        PQfinish(c->pg);
    if (c->my)
        mysql_close(c->my);
}

/* Constant SQL only: nothing from outside goes into a statement. */
static void s_sql_rows(s_sql_t *c, const char *sql, s_row_fn *fn, void *arg)
{
    char *row[16];
    if (c->pg) {
        PGresult *r = PQexec(c->pg, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            s_die("%s: %s", sql, PQerrorMessage(c->pg));
        int n = PQntuples(r), nc = PQnfields(r);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < nc && k < 16; k++)
                row[k] = PQgetisnull(r, i, k) ? "" : PQgetvalue(r, i, k);
            fn(arg, row, nc);
        }
        PQclear(r);
        return;
    }
    if (mysql_query(c->my, sql))
        s_die("%s: %s", sql, mysql_error(c->my));
    MYSQL_RES *res = mysql_store_result(c->my);
    if (!res)
        s_die("%s: %s", sql, mysql_error(c->my));
    int nc = (int)mysql_num_fields(res);
    MYSQL_ROW r;
    while ((r = mysql_fetch_row(res))) {
        for (int k = 0; k < nc && k < 16; k++)
            row[k] = r[k] ? r[k] : "";
        fn(arg, row, nc);
    }
    mysql_free_result(res);
}

/* ---- what the systems hold, per (saga, step) ---------------------------- */

typedef struct {
    char saga[80], step[80];
    char bar_a[16], bar_c[16], bar_op[48]; /* barrier: action / compensation state */
    int bar_rows;
    int led_rows[2];
    int64_t led_sum[2], led_abs[2];
    char acct[2][32];
    int64_t acct_net[2];
    int nacct;
    bool acct_overflow;
    int pay_rows;
    char pay_status[16];
    int64_t pay_amount;
    int sched_rows;
    char sched_status[16];
    int fee_rows;
    char fee_status[16];
    int hold_rows;
    char hold_status[16];
    char flag_status[16], check_status[16];
    int rep_rows;
    char rep_status[16];
    int note_conf, note_canc;
    int audit_rows;
} s_fact_t;

static zhashx_t *s_facts;    /* "saga\x1fstep" -> s_fact_t */
static zhashx_t *s_loans;    /* saga -> "status" (strdup) of its loan */
static zhashx_t *s_accounts; /* number -> s_account_t */

typedef struct {
    char cur[8];
    int64_t balance, held, overdraft, start, ledger;
    bool seen_now, seen_start;
} s_account_t;

static s_fact_t *s_fact(const char *saga, const char *step)
{
    char key[170];
    snprintf(key, sizeof key, "%s\x1f%s", saga, step);
    s_fact_t *f = zhashx_lookup(s_facts, key);
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            s_die("out of memory");
        snprintf(f->saga, sizeof f->saga, "%s", saga);
        snprintf(f->step, sizeof f->step, "%s", step);
        zhashx_insert(s_facts, key, f);
    }
    return f;
}

static s_account_t *s_account(const char *number)
{
    s_account_t *a = zhashx_lookup(s_accounts, number);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (!a)
            s_die("out of memory");
        zhashx_insert(s_accounts, number, a);
    }
    return a;
}

static void s_barrier_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n; /* saga, step, phase, state, op */
    s_fact_t *f = s_fact(r[0], r[1]);
    f->bar_rows++;
    snprintf(strcmp(r[2], "action") == 0 ? f->bar_a : f->bar_c, 16, "%s", r[3]);
    if (strcmp(r[2], "action") == 0)
        snprintf(f->bar_op, sizeof f->bar_op, "%s", r[4]);
}

static void s_ledger_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n; /* saga, step, phase, account, amount */
    s_fact_t *f = s_fact(r[0], r[1]);
    int ph = strcmp(r[2], "action") == 0 ? 0 : 1;
    int64_t amount = strtoll(r[4], NULL, 10);
    f->led_rows[ph]++;
    f->led_sum[ph] += amount;
    f->led_abs[ph] += amount < 0 ? -amount : amount;
    int k = 0;
    while (k < f->nacct && strcmp(f->acct[k], r[3]) != 0)
        k++;
    if (k == f->nacct) {
        if (k == 2) {
            f->acct_overflow = true;
            return;
        }
        snprintf(f->acct[f->nacct++], 32, "%s", r[3]);
    }
    f->acct_net[k] += amount;
    if (strcmp(r[0], "seed") != 0)
        s_account(r[3])->ledger += amount;
}

static void s_account_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n; /* number, currency, balance, held, overdraft_limit */
    s_account_t *a = s_account(r[0]);
    snprintf(a->cur, sizeof a->cur, "%s", r[1]);
    a->balance = strtoll(r[2], NULL, 10);
    a->held = strtoll(r[3], NULL, 10);
    a->overdraft = strtoll(r[4], NULL, 10);
    a->seen_now = true;
}

static void s_payment_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n; /* saga, step, status, amount, currency */
    s_fact_t *f = s_fact(r[0], r[1]);
    f->pay_rows++;
    snprintf(f->pay_status, sizeof f->pay_status, "%s", r[2]);
    f->pay_amount = strtoll(r[3], NULL, 10);
}

static void s_schedule_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n;
    s_fact_t *f = s_fact(r[0], r[1]);
    f->sched_rows++;
    snprintf(f->sched_status, sizeof f->sched_status, "%s", r[2]);
}

static void s_fee_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n;
    s_fact_t *f = s_fact(r[0], r[1]);
    f->fee_rows++;
    snprintf(f->fee_status, sizeof f->fee_status, "%s", r[2]);
}

static void s_hold_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n;
    s_fact_t *f = s_fact(r[0], r[1]);
    f->hold_rows++;
    snprintf(f->hold_status, sizeof f->hold_status, "%s", r[2]);
}

static void s_loan_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n; /* saga, status */
    if (strcmp(r[0], "seed") == 0)
        return;
    char *old = zhashx_lookup(s_loans, r[0]);
    if (old)
        s_violation(2, r[0], "two loans (%s and %s)", old, r[1]);
    else
        zhashx_insert(s_loans, r[0], strdup(r[1]));
}

static void s_report_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n;
    s_fact_t *f = s_fact(r[0], r[1]);
    f->rep_rows++;
    snprintf(f->rep_status, sizeof f->rep_status, "%s", r[2]);
}

static void s_note_row(void *arg, char **r, int n)
{
    (void)arg;
    (void)n;
    s_fact_t *f = s_fact(r[0], r[1]);
    if (strcmp(r[2], "confirmation") == 0)
        f->note_conf++;
    else if (strcmp(r[2], "cancellation") == 0)
        f->note_canc++;
}

/* ---- the audit chain ---------------------------------------------------- */

typedef struct {
    char prev[65];
    int64_t seq;
    bool broken;
} s_chain_t;

static void s_audit_row(void *arg, char **r, int n)
{
    (void)n; /* seq, ts_ms, saga, step, phase, op, detail, prev_hash, hash */
    s_chain_t *ch = arg;
    int64_t seq = strtoll(r[0], NULL, 10);
    s_fact(r[2], r[3])->audit_rows++;
    if (ch->broken)
        return;
    if (seq != ch->seq + 1) {
        s_violation(7, r[2], "audit entry %" PRId64 " follows %" PRId64 ": a gap", seq, ch->seq);
        ch->broken = true;
        return;
    }
    if (strcmp(r[7], ch->prev) != 0) {
        s_violation(7, r[2],
                    "audit entry %" PRId64 " names %.16s... as previous, the chain has %.16s...",
                    seq, r[7], ch->prev);
        ch->broken = true;
        return;
    }
    /* sha256(prev|seq|ts|saga|step|phase|op|detail|), in hex */
    crypto_hash_sha256_state st;
    uint8_t h[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256_init(&st);
    char head[128];
    int hn = snprintf(head, sizeof head, "%s|%s|%s|", r[7], r[0], r[1]);
    crypto_hash_sha256_update(&st, (const uint8_t *)head, (size_t)hn);
    for (int k = 2; k <= 6; k++) {
        crypto_hash_sha256_update(&st, (const uint8_t *)r[k], strlen(r[k]));
        crypto_hash_sha256_update(&st, (const uint8_t *)"|", 1);
    }
    crypto_hash_sha256_final(&st, h);
    for (size_t i = 0; i < sizeof h; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    if (strcmp(hex, r[8]) != 0) {
        s_violation(7, r[2],
                    "audit entry %" PRId64
                    " (%s/%s %s): stored hash %.16s..., content hashes to %.16s...",
                    seq, r[3], r[4], r[5], r[8], hex);
        ch->broken = true;
        return;
    }
    snprintf(ch->prev, sizeof ch->prev, "%s", r[8]);
    ch->seq = seq;
}

static void s_head_row(void *arg, char **r, int n)
{
    (void)n;
    s_chain_t *ch = arg;
    if (!ch->broken && (strtoll(r[0], NULL, 10) != ch->seq || strcmp(r[1], ch->prev) != 0))
        s_violation(7, NULL,
                    "audit head says entry %s hash %.16s..., the chain ends at %" PRId64
                    " %.16s...",
                    r[0], r[1], ch->seq, ch->prev);
}

/* ---- Redis (fraud) ------------------------------------------------------ */

static void s_redis_load(const char *uri)
{
    char host[256] = "127.0.0.1";
    int port = 6379, db = 0;
    if (sscanf(uri, "redis://%255[^:/]:%d/%d", host, &port, &db) < 2)
        s_die("%s: want redis://host:port/db", uri);
    redisContext *rc = redisConnect(host, port);
    if (!rc || rc->err)
        s_die("%s: %s", uri, rc ? rc->errstr : "no memory");
    redisReply *r = redisCommand(rc, "SELECT %d", db);
    if (!r || r->type == REDIS_REPLY_ERROR)
        s_die("%s: SELECT failed", uri);
    freeReplyObject(r);
    char cursor[32] = "0";
    do {
        r = redisCommand(rc, "SCAN %s COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            s_die("%s: SCAN failed", uri);
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            /* zsaga:barrier:{saga}:step:phase, fraud:flag:{saga}:step,
               fraud:check:{saga}:step */
            const char *lb = strchr(key, '{'), *rb = lb ? strchr(lb, '}') : NULL;
            if (!lb || !rb || rb[1] != ':')
                continue;
            char saga[80], step[80], phase[32] = "";
            snprintf(saga, sizeof saga, "%.*s", (int)(rb - lb - 1), lb + 1);
            snprintf(step, sizeof step, "%s", rb + 2);
            char *c = strchr(step, ':');
            if (c) {
                snprintf(phase, sizeof phase, "%s", c + 1);
                *c = 0;
            }
            redisReply *h = redisCommand(rc, "HMGET %s state op status", key);
            if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 3)
                s_die("%s: HMGET %s failed", uri, key);
            const char *state = h->element[0]->str ? h->element[0]->str : "";
            const char *op = h->element[1]->str ? h->element[1]->str : "";
            const char *status = h->element[2]->str ? h->element[2]->str : "";
            s_fact_t *f = s_fact(saga, step);
            if (strncmp(key, "zsaga:barrier:", 14) == 0) {
                char *row[5] = { saga, step, phase, (char *)state, (char *)op };
                s_barrier_row(NULL, row, 5);
            } else if (strncmp(key, "fraud:flag:", 11) == 0)
                snprintf(f->flag_status, sizeof f->flag_status, "%s", status);
            else if (strncmp(key, "fraud:check:", 12) == 0)
                snprintf(f->check_status, sizeof f->check_status, "%s", status);
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(rc);
}

/* ---- the journal ---------------------------------------------------------- */

typedef struct {
    char id[80];
    int state;
    char reason[256];
    int nsteps;
    struct {
        char id[80], system[48], action[48];
        int64_t amount;
        int state;
    } steps[64];
} s_saga_t;

static bool s_key_is(const msgpack_object *k, const char *s)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
           memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static void s_copy_str(char *dst, size_t n, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_STR)
        snprintf(dst, n, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else
        dst[0] = 0;
}

static const msgpack_object *s_map_get(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (s_key_is(&m->via.map.ptr[i].key, key))
            return &m->via.map.ptr[i].val;
    return NULL;
}

static void s_steps_from_def(const msgpack_object *def, s_saga_t *s, bool *ok)
{
    const msgpack_object *steps = s_map_get(def, "steps"), *o;
    *ok = *ok && steps && steps->type == MSGPACK_OBJECT_ARRAY && steps->via.array.size <= 64;
    s->nsteps = *ok ? (int)steps->via.array.size : 0;
    for (int i = 0; i < s->nsteps; i++) {
        const msgpack_object *st = &steps->via.array.ptr[i];
        s_copy_str(s->steps[i].id, sizeof s->steps[i].id, s_map_get(st, "id"));
        s_copy_str(s->steps[i].system, sizeof s->steps[i].system, s_map_get(st, "system"));
        s_copy_str(s->steps[i].action, sizeof s->steps[i].action, s_map_get(st, "action"));
        const msgpack_object *params = s_map_get(st, "params");
        s->steps[i].amount = 0;
        if (params && (o = s_map_get(params, "amount")) &&
            (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER))
            s->steps[i].amount = (int64_t)o->via.u64;
        s->steps[i].state = -1;
    }
}

/* saga record: v1 [1, state, created_ms, updated_ms, reason|nil, hash, definition];
   v2 [2, state, updated_ms, reason|nil] with defs [2, created_ms, hash, definition] */
static bool s_saga_decode(const MDB_val *v, const MDB_val *defv, s_saga_t *s)
{
    msgpack_unpacked u, d;
    msgpack_unpacked_init(&u);
    msgpack_unpacked_init(&d);
    bool ok = msgpack_unpack_next(&u, v->mv_data, v->mv_size, NULL) == MSGPACK_UNPACK_SUCCESS;
    const msgpack_object *a = &u.data;
    ok = ok && a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size >= 4;
    bool v1 = ok && a->via.array.size == 7 && a->via.array.ptr[0].via.u64 == 1;
    ok = ok && (v1 || (a->via.array.size == 4 && a->via.array.ptr[0].via.u64 == 2 && defv));
    const msgpack_object *def = NULL;
    if (ok) {
        s->state = (int)a->via.array.ptr[1].via.u64;
        s_copy_str(s->reason, sizeof s->reason, &a->via.array.ptr[v1 ? 4 : 3]);
        if (v1)
            def = &a->via.array.ptr[6];
        else {
            ok = msgpack_unpack_next(&d, defv->mv_data, defv->mv_size, NULL) ==
                     MSGPACK_UNPACK_SUCCESS &&
                 d.data.type == MSGPACK_OBJECT_ARRAY && d.data.via.array.size == 4;
            def = ok ? &d.data.via.array.ptr[3] : NULL;
        }
    }
    if (ok)
        s_steps_from_def(def, s, &ok);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_destroy(&d);
    return ok;
}

static int s_name_index(const char *const *names, int n, const msgpack_object *o)
{
    for (int i = 0; i < n; i++)
        if (names[i] && o && o->type == MSGPACK_OBJECT_STR && s_key_is(o, names[i]))
            return i;
    return -1;
}

/* An archive record: {"seq", "saga": the status view, "definition"}. */
static bool s_archive_decode(const msgpack_object *rec, s_saga_t *s)
{
    static const char *const saga_states[] = { NULL,        "running",     "compensating",
                                               "completed", "compensated", "parked",
                                               "resolved" };
    static const char *const step_states[] = {
        "pending",
        "ready",
        "running",
        "waiting",
        "succeeded",
        "failed",
        "skipped",
        "compensation_pending",
        "compensation_ready",
        "compensating",
        "compensation_waiting",
        "compensated",
        "compensation_parked",
    };
    const msgpack_object *view = s_map_get(rec, "saga"), *def = s_map_get(rec, "definition");
    bool ok = view && def;
    if (!ok)
        return false;
    s_copy_str(s->id, sizeof s->id, s_map_get(view, "id"));
    s->state = s_name_index(saga_states, 7, s_map_get(view, "state"));
    const msgpack_object *r = s_map_get(view, "reason");
    if (r)
        s_copy_str(s->reason, sizeof s->reason, r);
    s_steps_from_def(def, s, &ok);
    const msgpack_object *steps = s_map_get(view, "steps");
    ok = ok && s->state > 0 && steps && steps->type == MSGPACK_OBJECT_ARRAY &&
         (int)steps->via.array.size == s->nsteps;
    for (int i = 0; ok && i < s->nsteps; i++) {
        int st = s_name_index(step_states, 13, s_map_get(&steps->via.array.ptr[i], "state"));
        /* Pending steps were never written to the journal: the same "no
           record" the journal reading gives. */
        s->steps[i].state = st == 0 ? -1 : st;
        ok = st >= 0;
    }
    return ok;
}

/* step record: [1, state, ...] */
static int s_step_state(const MDB_val *v)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int state = -1;
    if (msgpack_unpack_next(&u, v->mv_data, v->mv_size, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size >= 2)
        state = (int)u.data.via.array.ptr[1].via.u64;
    msgpack_unpacked_destroy(&u);
    return state;
}

/* ---- archive files ---------------------------------------------------------- */

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int s_judge_later(const s_saga_t *s, void *tally);

/* Every record of every archive file, checksum first; the last record of
   an id wins. Returns how many sagas were judged from it. */
static size_t s_archive_judge(const char *dir, zhashx_t *known, s_saga_t *s, void *tally)
{
    if (!dir)
        return 0;
    zhashx_t *last = zhashx_new(); /* id -> copy of its last record */
    zhashx_set_destructor(last, (zhashx_destructor_fn *)zchunk_destroy);
    zdir_t *d = zdir_new(dir, NULL);
    zfile_t **files = d ? (zfile_t **)zdir_flatten(d) : NULL;
    for (size_t f = 0; files && files[f]; f++) {
        const char *path = zfile_filename(files[f], NULL);
        size_t plen = strlen(path);
        if (plen < 4 || strcmp(path + plen - 4, ".zar") != 0)
            continue;
        zchunk_t *all = zchunk_slurp(path, 0);
        const uint8_t *b = all ? zchunk_data(all) : NULL;
        size_t n = all ? zchunk_size(all) : 0;
        enum { TR = 8 + 4 + 8 + 8 + 32 };
        uint8_t h[32];
        if (n < 12 + TR || memcmp(b, "ZSAGAARC", 8) || memcmp(b + n - TR, "ZSAGAEND", 8))
            s_die("%s: not a whole archive file", path);
        crypto_generichash(h, 32, b, n - 32, NULL, 0);
        if (memcmp(h, b + n - 32, 32))
            s_die("%s: archive checksum mismatch", path);
        const uint8_t *p = b + 12, *end = b + n - TR;
        while (p + 4 <= end) {
            size_t len = (size_t)s_be(p, 4);
            if (len > (size_t)(end - p - 4))
                s_die("%s: record overruns the file", path);
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            char id[80] = "";
            if (msgpack_unpack_next(&u, (const char *)p + 4, len, NULL) == MSGPACK_UNPACK_SUCCESS) {
                const msgpack_object *view = s_map_get(&u.data, "saga");
                s_copy_str(id, sizeof id, view ? s_map_get(view, "id") : s_map_get(&u.data, "id"));
            }
            msgpack_unpacked_destroy(&u);
            if (!id[0])
                s_violation(6, path, "an archive record does not decode");
            else
                zhashx_update(last, id, zchunk_new(p + 4, len));
            p += 4 + len;
        }
        zchunk_destroy(&all);
    }
    size_t judged = 0;
    for (zchunk_t *c = zhashx_first(last); c; c = zhashx_next(last)) {
        const char *id = zhashx_cursor(last);
        if (zhashx_lookup(known, id))
            continue; /* still in the journal: judged from there */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        memset(s, 0, sizeof *s);
        snprintf(s->id, sizeof s->id, "%s", id);
        zhashx_insert(known, id, (void *)1);
        if (msgpack_unpack_next(&u, (const char *)zchunk_data(c), zchunk_size(c), NULL) !=
                MSGPACK_UNPACK_SUCCESS ||
            !s_archive_decode(&u.data, s))
            s_violation(6, id, "its archive record does not decode");
        else {
            s_judge_later(s, tally);
            judged++;
        }
        msgpack_unpacked_destroy(&u);
    }
    if (files)
        zdir_flatten_free(&files);
    zdir_destroy(&d);
    zhashx_destroy(&last);
    return judged;
}

/* ---- the rules, per saga -------------------------------------------------- */

static const char *s_saga_state_names[] = { "?",           "running", "compensating", "completed",
                                            "compensated", "parked",  "resolved" };

typedef struct {
    int completed, compensated, parked, resolved, open;
} s_tally_t;

/* What no effect looks like: a step whose action never took effect. */
static void s_expect_none(const s_saga_t *s, const s_fact_t *f)
{
    if (f->led_rows[0] || f->pay_rows || f->sched_rows || f->fee_rows || f->hold_rows ||
        f->rep_rows || f->note_conf || f->flag_status[0] || f->check_status[0])
        s_violation(6, s->id,
                    "step %s: the barrier says the action did not apply (%s), yet effects exist "
                    "(ledger %d, payments %d, schedules %d, fees %d, reports %d, notes %d, "
                    "flag '%s', check '%s')",
                    f->step, f->bar_a[0] ? f->bar_a : "no row", f->led_rows[0], f->pay_rows,
                    f->sched_rows, f->fee_rows, f->rep_rows, f->note_conf, f->flag_status,
                    f->check_status);
}

/* Rule 2: the effect of one completed action, present exactly once. */
static void s_expect_once(const s_saga_t *s, int i, const s_fact_t *f)
{
    const char *op = s->steps[i].action, *st = s->steps[i].id;
    int64_t amt = s->steps[i].amount;
    if (f->led_rows[1] || f->note_canc || f->bar_c[0])
        s_violation(2, s->id,
                    "step %s completed, yet it shows a compensation (barrier '%s', %d ledger rows, "
                    "%d cancellations)",
                    st, f->bar_c, f->led_rows[1], f->note_canc);
    if (!strcmp(op, "transfer")) {
        if (f->led_rows[0] != 2 || f->led_sum[0] != 0 || f->led_abs[0] != 2 * amt)
            s_violation(2, s->id,
                        "step %s transfer of %" PRId64 ": %d ledger rows, sum %" PRId64
                        ", moved %" PRId64 " (want 2 rows, 0, %" PRId64 ")",
                        st, amt, f->led_rows[0], f->led_sum[0], f->led_abs[0], 2 * amt);
    } else if (!strcmp(op, "debit_account") || !strcmp(op, "credit_account")) {
        int64_t want = !strcmp(op, "debit_account") ? -amt : amt;
        if (f->led_rows[0] != 1 || f->led_sum[0] != want)
            s_violation(2, s->id,
                        "step %s %s: %d ledger rows summing to %" PRId64 " (want 1 row of %" PRId64
                        ")",
                        st, op, f->led_rows[0], f->led_sum[0], want);
    } else if (!strcmp(op, "deduct_fee")) {
        bool charged = !strcmp(f->fee_status, "charged");
        if (f->fee_rows != 1 ||
            (charged ? f->led_rows[0] != 1 || f->led_sum[0] != -amt : f->led_rows[0] != 0))
            s_violation(2, s->id,
                        "step %s fee: %d fee rows '%s', %d ledger rows summing to %" PRId64, st,
                        f->fee_rows, f->fee_status, f->led_rows[0], f->led_sum[0]);
    } else if (!strcmp(op, "process_payment")) {
        if (f->pay_rows != 1 || strcmp(f->pay_status, "processed") || f->pay_amount != amt)
            s_violation(2, s->id,
                        "step %s payment: %d rows, status '%s', amount %" PRId64
                        " (want 1 processed of %" PRId64 ")",
                        st, f->pay_rows, f->pay_status, f->pay_amount, amt);
    } else if (!strcmp(op, "setup_payment_schedule")) {
        if (f->sched_rows != 1 || strcmp(f->sched_status, "active"))
            s_violation(2, s->id, "step %s schedule: %d rows, status '%s'", st, f->sched_rows,
                        f->sched_status);
    } else if (!strcmp(op, "risk_assessment")) {
        if (strcmp(f->flag_status, "active"))
            s_violation(2, s->id, "step %s risk flag is '%s', want active", st, f->flag_status);
    } else if (!strcmp(op, "fraud_check")) {
        if (strcmp(f->check_status, "passed"))
            s_violation(2, s->id, "step %s fraud check is '%s', want passed", st, f->check_status);
    } else if (!strcmp(op, "send_confirmation")) {
        if (f->note_conf != 1)
            s_violation(2, s->id, "step %s: %d confirmations sent, want 1", st, f->note_conf);
    } else if (!strcmp(op, "generate_compliance_report")) {
        if (f->rep_rows != 1 || strcmp(f->rep_status, "generated"))
            s_violation(2, s->id, "step %s report: %d rows, status '%s'", st, f->rep_rows,
                        f->rep_status);
    } else if (!strcmp(op, "create_loan_account")) {
        const char *loan = zhashx_lookup(s_loans, s->id);
        if (!loan || strcmp(loan, "active"))
            s_violation(2, s->id, "loan is '%s', want active", loan ? loan : "missing");
    }
}

/* Rule 3: an action that took effect and was compensated nets to zero. */
static void s_expect_zero(const s_saga_t *s, int i, const s_fact_t *f)
{
    const char *st = s->steps[i].id;
    for (int k = 0; k < f->nacct; k++)
        if (f->acct_net[k] != 0)
            s_violation(3, s->id, "step %s leaves %" PRId64 " on account %s (ledger unbalanced)",
                        st, f->acct_net[k], f->acct[k]);
    if (f->acct_overflow)
        s_violation(3, s->id, "step %s touched more than two accounts", st);
    if (f->pay_rows && strcmp(f->pay_status, "reversed"))
        s_violation(3, s->id, "step %s payment is '%s', want reversed", st, f->pay_status);
    if (f->sched_rows && strcmp(f->sched_status, "cancelled"))
        s_violation(3, s->id, "step %s schedule is '%s', want cancelled", st, f->sched_status);
    if (f->fee_rows && !strcmp(f->fee_status, "charged"))
        s_violation(3, s->id, "step %s fee still charged", st);
    if (f->hold_rows && !strcmp(f->hold_status, "held"))
        s_violation(3, s->id, "step %s hold still held", st);
    if (!strcmp(f->flag_status, "active"))
        s_violation(3, s->id, "step %s risk flag still active", st);
    if (!strcmp(f->check_status, "passed"))
        s_violation(3, s->id, "step %s fraud check still passed", st);
    if (f->rep_rows && strcmp(f->rep_status, "archived"))
        s_violation(3, s->id, "step %s report is '%s', want archived", st, f->rep_status);
    if (f->note_conf != f->note_canc)
        s_violation(3, s->id, "step %s: %d confirmations, %d cancellations", st, f->note_conf,
                    f->note_canc);
    if (!strcmp(s->steps[i].action, "create_loan_account")) {
        const char *loan = zhashx_lookup(s_loans, s->id);
        if (loan && strcmp(loan, "deleted"))
            s_violation(3, s->id, "loan is '%s', want deleted", loan);
    }
}

static void s_judge(const s_saga_t *s, s_tally_t *t);
static int s_judge_later(const s_saga_t *s, void *tally)
{
    s_judge(s, tally);
    return 0;
}

static void s_judge(const s_saga_t *s, s_tally_t *t)
{
    static const s_fact_t none;
    switch (s->state) {
    case SAGA_COMPLETED: t->completed++; break;
    case SAGA_COMPENSATED: t->compensated++; break;
    case SAGA_RESOLVED: t->resolved++; return; /* an operator's word */
    case SAGA_PARKED:
        t->parked++;
        if (!s->reason[0])
            s_violation(1, s->id, "parked without a reason");
        printf("parked %s: %s\n", s->id, s->reason);
        return;
    default:
        t->open++;
        s_violation(1, s->id, "did not end: %s",
                    s->state > 0 && s->state <= 6 ? s_saga_state_names[s->state] : "?");
        return;
    }
    for (int i = 0; i < s->nsteps; i++) {
        char key[170];
        snprintf(key, sizeof key, "%s\x1f%s", s->id, s->steps[i].id);
        const s_fact_t *f = zhashx_lookup(s_facts, key);
        if (!f)
            f = &none;
        int js = s->steps[i].state;
        bool done = !strcmp(f->bar_a, "done");
        if (s->state == SAGA_COMPLETED) {
            if (js != ST_SUCCEEDED || !done)
                s_violation(6, s->id, "completed, but step %s is in state %d with barrier '%s'",
                            s->steps[i].id, js, f->bar_a);
            else
                s_expect_once(s, i, f);
            continue;
        }
        /* compensated */
        if (js != ST_COMPENSATED && js != ST_FAILED && js != ST_SKIPPED)
            s_violation(6, s->id, "compensated, but step %s is in state %d", s->steps[i].id, js);
        if (done && strcmp(f->bar_c, "done") != 0)
            s_violation(3, s->id, "step %s acted (barrier done) and its compensation is '%s'",
                        s->steps[i].id, f->bar_c[0] ? f->bar_c : "missing");
        if (js == ST_COMPENSATED && !f->bar_c[0])
            s_violation(6, s->id, "step %s compensated in the journal, no compensation barrier row",
                        s->steps[i].id);
        if (done)
            s_expect_zero(s, i, f);
        else
            s_expect_none(s, f);
    }
}

/* ---- commands ---------------------------------------------------------- */

static const char *s_opt(int argc, char **argv, const char *name, bool required)
{
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    if (required)
        s_die("%s is required", name);
    return NULL;
}

static void s_snap_row(void *arg, char **r, int n)
{
    (void)n;
    fprintf(arg, "%s %s %s\n", r[0], r[1], r[2]);
}

static void s_count_row(void *arg, char **r, int n)
{
    (void)n;
    *(int64_t *)arg = strtoll(r[0], NULL, 10);
}

static int s_snapshot(int argc, char **argv)
{
    s_sql_t db;
    s_sql_open(&db, s_opt(argc, argv, "--banking", true));
    int64_t ledger = 0;
    s_sql_rows(&db, "SELECT COUNT(*) FROM ledger", s_count_row, &ledger);
    if (ledger)
        s_die("the ledger already has %" PRId64 " rows: snapshot before the load", ledger);
    const char *out = s_opt(argc, argv, "--out", true);
    FILE *f = fopen(out, "w");
    if (!f)
        s_die("%s: cannot write", out);
    s_sql_rows(&db, "SELECT number, currency, balance FROM accounts ORDER BY number", s_snap_row,
               f);
    fclose(f);
    s_sql_close(&db);
    return 0;
}

static void s_free_str(void **p)
{
    free(*p);
    *p = NULL;
}

static void s_free_item(void **p)
{
    free(*p);
    *p = NULL;
}

/* ---- reading the journal --------------------------------------------------- */

/* Where a saga's other records come from: db is the journal's database
   number (docs/operations.md, "The journal on PostgreSQL"). */
enum { DB_SAGAS = 0, DB_STEPS = 1, DB_DEFS = 6 };
typedef bool(s_get_fn)(void *src, int db, const MDB_val *k, MDB_val *v);

/* One saga of the journal: its record (k, v), its definition and its
   steps' records read through get; judged, and its id noted as known. */
static void s_journal_saga(const MDB_val *k, const MDB_val *v, s_get_fn *get, void *src,
                           zhashx_t *known, s_saga_t *s, s_tally_t *tally)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%.*s", (int)k->mv_size, (const char *)k->mv_data);
    zhashx_insert(known, s->id, (void *)1);
    MDB_val dv;
    bool got_def = get(src, DB_DEFS, k, &dv);
    if (!s_saga_decode(v, got_def ? &dv : NULL, s)) {
        s_violation(6, s->id, "its journal record does not decode");
        return;
    }
    for (int i = 0; i < s->nsteps; i++) {
        uint8_t key[100];
        size_t n = strlen(s->id);
        memcpy(key, s->id, n);
        key[n] = 0;
        key[n + 1] = (uint8_t)i;
        MDB_val sk = { n + 2, key }, sv;
        if (get(src, DB_STEPS, &sk, &sv))
            s->steps[i].state = s_step_state(&sv);
    }
    s_judge(s, tally);
}

typedef struct {
    MDB_txn *txn;
    MDB_dbi steps, defs;
    bool have_defs;
} s_lmdb_t;

static bool s_lmdb_get(void *src, int db, const MDB_val *k, MDB_val *v)
{
    s_lmdb_t *l = src;
    if (db == DB_DEFS && !l->have_defs)
        return false;
    return mdb_get(l->txn, db == DB_DEFS ? l->defs : l->steps, (MDB_val *)k, v) == 0;
}

static void s_journal_lmdb(const char *dir, zhashx_t *known, s_saga_t *s, s_tally_t *tally)
{
    MDB_env *env;
    MDB_dbi sagas;
    MDB_cursor *cur;
    MDB_val k, v;
    s_lmdb_t l = { 0 };
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) || mdb_env_set_mapsize(env, 0) ||
        mdb_env_open(env, dir, MDB_RDONLY, 0644))
        s_die("%s: cannot open the journal", dir);
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &l.txn) || mdb_dbi_open(l.txn, "sagas", 0, &sagas) ||
        mdb_dbi_open(l.txn, "steps", 0, &l.steps) || mdb_cursor_open(l.txn, sagas, &cur))
        s_die("%s: no sagas/steps databases", dir);
    l.have_defs = mdb_dbi_open(l.txn, "defs", 0, &l.defs) == 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        s_journal_saga(&k, &v, s_lmdb_get, &l, known, s, tally);
    mdb_cursor_close(cur);
    mdb_txn_abort(l.txn);
    mdb_env_close(env);
}

/* The journal on PostgreSQL: the table zsaga_journal (db, k, v), read in
   one REPEATABLE READ snapshot, binary. */
typedef struct {
    PGconn *pg;
    PGresult *last; /* the value handed out last */
    char table[32]; /* the partition's table being read */
} s_pgj_t;

static bool s_pgj_get(void *src, int db, const MDB_val *k, MDB_val *v)
{
    s_pgj_t *j = src;
    char dbs[8];
    snprintf(dbs, sizeof dbs, "%d", db);
    const char *vals[2] = { dbs, k->mv_data };
    int lens[2] = { 0, (int)k->mv_size }, fmts[2] = { 0, 1 };
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT v FROM %s WHERE db = $1 AND k = $2", j->table);
    PQclear(j->last);
    j->last = PQexecParams(j->pg, sql, 2, NULL, vals, lens, fmts, 1);
    if (PQresultStatus(j->last) != PGRES_TUPLES_OK)
        s_die("journal: %s", PQresultErrorMessage(j->last));
    if (PQntuples(j->last) != 1)
        return false;
    v->mv_data = PQgetvalue(j->last, 0, 0);
    v->mv_size = (size_t)PQgetlength(j->last, 0, 0);
    return true;
}

static void s_journal_pg(const char *uri, zhashx_t *known, s_saga_t *s, s_tally_t *tally)
{
    s_pgj_t j = { PQconnectdb(uri), NULL, "" };
    if (PQstatus(j.pg) != CONNECTION_OK)
        s_die("journal: %s", PQerrorMessage(j.pg));
    PGresult *res = PQexec(j.pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        s_die("journal: %s", PQresultErrorMessage(res));
    PQclear(res);
    /* Partitions (zsagad --partitions N): a table each, zsaga_journal_pI;
       one partition: zsaga_journal. */
    res = PQexec(j.pg, "SELECT CASE WHEN to_regclass('zsaga_partitions') IS NULL THEN 1 "
                       "ELSE (SELECT coalesce(max(n), 1) FROM zsaga_partitions) END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        s_die("journal: %s", PQresultErrorMessage(res));
    int parts = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    for (int part = 0; part < parts; part++) {
        char sql[96];
        if (parts == 1)
            snprintf(j.table, sizeof j.table, "zsaga_journal");
        else
            snprintf(j.table, sizeof j.table, "zsaga_journal_p%d", part);
        const char *name[1] = { j.table };
        res = PQexecParams(j.pg, "SELECT to_regclass($1) IS NULL", 1, NULL, name, NULL, NULL, 0);
        bool absent = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                      PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (absent)
            continue; /* a partition nobody ever served holds no saga */
        snprintf(sql, sizeof sql, "SELECT k, v FROM %s WHERE db = 0 ORDER BY k", j.table);
        res = PQexecParams(j.pg, sql, 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            s_die("journal: %s", PQresultErrorMessage(res));
        for (int r = 0; r < PQntuples(res); r++) {
            MDB_val k = { (size_t)PQgetlength(res, r, 0), PQgetvalue(res, r, 0) };
            MDB_val v = { (size_t)PQgetlength(res, r, 1), PQgetvalue(res, r, 1) };
            s_journal_saga(&k, &v, s_pgj_get, &j, known, s, tally);
        }
        PQclear(res);
    }
    PQclear(j.last);
    PQfinish(j.pg);
}

static int s_verify(int argc, char **argv)
{
    s_facts = zhashx_new();
    zhashx_set_destructor(s_facts, s_free_item);
    s_loans = zhashx_new();
    zhashx_set_destructor(s_loans, s_free_str);
    s_accounts = zhashx_new();
    zhashx_set_destructor(s_accounts, s_free_item);

    /* The systems. */
    s_sql_t bank, pay, comp;
    s_sql_open(&bank, s_opt(argc, argv, "--banking", true));
    s_sql_open(&pay, s_opt(argc, argv, "--payments", true));
    s_sql_open(&comp, s_opt(argc, argv, "--compliance", true));
    const char *barrier = "SELECT saga, step, phase, state, op FROM zsaga_barrier";
    s_sql_rows(&bank, barrier, s_barrier_row, NULL);
    s_sql_rows(&pay, barrier, s_barrier_row, NULL);
    s_sql_rows(&comp, barrier, s_barrier_row, NULL);
    s_sql_rows(&bank, "SELECT saga, step, phase, account, amount FROM ledger", s_ledger_row, NULL);
    s_sql_rows(&bank, "SELECT number, currency, balance, held, overdraft_limit FROM accounts",
               s_account_row, NULL);
    s_sql_rows(&bank, "SELECT saga, step, status FROM fees", s_fee_row, NULL);
    s_sql_rows(&bank, "SELECT saga, step, status FROM holds", s_hold_row, NULL);
    s_sql_rows(&bank, "SELECT saga, status FROM loans", s_loan_row, NULL);
    s_sql_rows(&pay, "SELECT saga, step, status, amount, currency FROM payments", s_payment_row,
               NULL);
    s_sql_rows(&pay, "SELECT saga, step, status FROM payment_schedules", s_schedule_row, NULL);
    s_sql_rows(&comp, "SELECT saga, step, status FROM compliance_reports", s_report_row, NULL);
    s_sql_rows(&comp, "SELECT saga, step, kind FROM notifications", s_note_row, NULL);
    s_chain_t chain = { "genesis", 0, false };
    s_sql_rows(&comp,
               "SELECT seq, ts_ms, saga, step, phase, op, detail, prev_hash, hash FROM "
               "audit_trail ORDER BY seq",
               s_audit_row, &chain);
    s_sql_rows(&comp, "SELECT seq, hash FROM audit_head WHERE id = 1", s_head_row, &chain);
    s_redis_load(s_opt(argc, argv, "--fraud", true));

    /* Money: rules 4 and 5. */
    FILE *sf = fopen(s_opt(argc, argv, "--snapshot", true), "r");
    if (!sf)
        s_die("cannot read the snapshot");
    char num[64], cur[8];
    long long bal;
    while (fscanf(sf, "%63s %7s %lld", num, cur, &bal) == 3) {
        s_account_t *a = s_account(num);
        a->start = bal;
        a->seen_start = true;
        snprintf(a->cur, sizeof a->cur, "%s", cur);
    }
    fclose(sf);
    int64_t start_usd = 0, now_usd = 0, start_other = 0, now_other = 0;
    for (s_account_t *a = zhashx_first(s_accounts); a; a = zhashx_next(s_accounts)) {
        const char *number = zhashx_cursor(s_accounts);
        bool usd = !strcmp(a->cur, "USD");
        *(usd ? &start_usd : &start_other) += a->start;
        *(usd ? &now_usd : &now_other) += a->balance;
        if (!a->seen_now) {
            s_violation(4, NULL, "account %s is gone", number);
            continue;
        }
        if (a->balance - a->start != a->ledger)
            s_violation(4, NULL,
                        "account %s: balance %" PRId64 " - start %" PRId64 " != ledger %" PRId64,
                        number, a->balance, a->start, a->ledger);
        if (a->balance - a->held < -a->overdraft)
            s_violation(5, NULL,
                        "account %s: balance %" PRId64 " held %" PRId64
                        " is below its overdraft limit %" PRId64,
                        number, a->balance, a->held, a->overdraft);
    }
    int64_t paid = 0, fees = 0;
    for (s_fact_t *f = zhashx_first(s_facts); f; f = zhashx_next(s_facts)) {
        if (!strcmp(f->pay_status, "processed"))
            paid += f->pay_amount;
        if (!strcmp(f->fee_status, "charged"))
            fees += -f->led_sum[0];
    }
    if (now_usd + paid + fees != start_usd)
        s_violation(4, NULL,
                    "USD: balances %" PRId64 " + payments out %" PRId64 " + fees %" PRId64
                    " = %" PRId64 ", start was %" PRId64 " (off by %" PRId64 ")",
                    now_usd, paid, fees, now_usd + paid + fees, start_usd,
                    now_usd + paid + fees - start_usd);
    if (now_other != start_other)
        s_violation(4, NULL, "other currencies: balances %" PRId64 ", start was %" PRId64,
                    now_other, start_other);

    /* The journal, read-only, beside a running or stopped zsagad. */
    zhashx_t *known = zhashx_new();
    s_tally_t tally = { 0 };
    s_saga_t *s = malloc(sizeof *s);
    if (!s)
        s_die("out of memory");
    const char *jr = s_opt(argc, argv, "--journal", true);
    if (strncmp(jr, "postgresql://", 13) == 0 || strncmp(jr, "postgres://", 11) == 0)
        s_journal_pg(jr, known, s, &tally);
    else
        s_journal_lmdb(jr, known, s, &tally);

    /* Sagas retention removed: judged from the archive (the last record of
       each id: a re-archive after a crash repeats some). */
    const char *adir = s_opt(argc, argv, "--archive", false);
    size_t archived = s_archive_judge(adir, known, s, &tally);
    free(s);

    /* Rule 6, the other way: nothing for a saga the journal does not know. */
    for (s_fact_t *f = zhashx_first(s_facts); f; f = zhashx_next(s_facts))
        if (strcmp(f->saga, "seed") && !zhashx_lookup(known, f->saga))
            s_violation(6, f->saga,
                        "step %s has rows in the systems (barrier '%s', ledger %d, "
                        "payments %d, audit %d) but the journal has no such saga",
                        f->step, f->bar_a, f->led_rows[0], f->pay_rows, f->audit_rows);
    for (const char *l = zhashx_first(s_loans); l; l = zhashx_next(s_loans))
        if (!zhashx_lookup(known, zhashx_cursor(s_loans)))
            s_violation(6, zhashx_cursor(s_loans), "a loan for a saga the journal does not know");

    /* Rule 8: what the client was told. */
    const char *logpath = s_opt(argc, argv, "--load-log", false);
    int told_yes = 0, told_no = 0;
    if (logpath) {
        FILE *lf = fopen(logpath, "r");
        if (!lf)
            s_die("%s: cannot read", logpath);
        char line[512], what[32], id[128];
        while (fgets(line, sizeof line, lf))
            if (sscanf(line, "%31s %127s", what, id) == 2) {
                if (!strcmp(what, "accepted")) {
                    told_yes++;
                    if (!zhashx_lookup(known, id))
                        s_violation(8, id,
                                    "the client was told accepted; the journal has no such saga");
                } else if (!strcmp(what, "rejected")) {
                    told_no++;
                    if (zhashx_lookup(known, id))
                        s_violation(8, id, "the client was told rejected; the journal has it");
                }
            }
        fclose(lf);
    }
    printf("%zu sagas judged from the archive\n", archived);
    printf("checked %zu sagas: %d completed, %d compensated, %d parked, %d resolved, %d not "
           "ended; %zu accounts, USD %" PRId64 " -> %" PRId64 " + %" PRId64 " paid out + %" PRId64
           " fees; audit chain %" PRId64 " entries; client told accepted %d, rejected %d\n",
           zhashx_size(known), tally.completed, tally.compensated, tally.parked, tally.resolved,
           tally.open, zhashx_size(s_accounts), start_usd, now_usd, paid, fees, chain.seq, told_yes,
           told_no);
    printf("%d violation%s\n", s_violations, s_violations == 1 ? "" : "s");
    zhashx_destroy(&known);
    zhashx_destroy(&s_facts);
    zhashx_destroy(&s_loans);
    zhashx_destroy(&s_accounts);
    s_sql_close(&bank);
    s_sql_close(&pay);
    s_sql_close(&comp);
    return s_violations ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        s_die("libsodium did not start");
    if (argc >= 2 && !strcmp(argv[1], "snapshot"))
        return s_snapshot(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "verify"))
        return s_verify(argc, argv);
    fprintf(stderr,
            "usage: zsaga-check snapshot|verify ... (see the top of tests/chaos/zsaga_check.c)\n");
    return 2;
}
