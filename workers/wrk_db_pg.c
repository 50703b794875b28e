/*  wrk_db_pg: the PostgreSQL driver, over libpq.

    URI: any libpq connection URI, postgresql://USER[:PASS]@HOST:PORT/DB.
    Statements with parameters are prepared once per connection (cached by
    the address of their SQL text, checked by content) with `?` rewritten
    to $1..$n, and run with PQexecPrepared: values travel apart from the
    text. Integers go as text, blobs in binary; results come back as text
    and are typed by their column's type (integers, bytea, the rest text).

    SQLSTATE decides what the caller may do: 23505 unique violation is a
    conflict; 40001 serialization failure, 40P01 deadlock, 55P03 lock not
    available, 57014 statement timeout and class 53 (resources) are
    transient; class 08 and a dead connection are broken; the rest (other
    integrity violations, bad data, bad SQL) fail for good.

    Round trips are what a step costs on a small machine, so the driver
    saves them: BEGIN, SAVEPOINT and ROLLBACK TO SAVEPOINT, whose results
    nobody reads at once, and statements run with wrk_db_exec_quiet (a
    ledger insert, whose result is only its error), wait and go with the
    next statement in one pipeline (libpq pipeline mode), and a step's last
    statement goes with its COMMIT (exec_commit). An error in any of them
    is that statement's error. The statement timeout is a session setting, set only when it
    changes: PostgreSQL counts it per statement either way.

    A statement failing inside a transaction aborts it in PostgreSQL until
    the transaction or a savepoint is rolled back; the barrier relies on
    exactly that (ROLLBACK TO SAVEPOINT after a failed handler). Every later
    statement then fails with 25P02, which says nothing of the cause: the
    driver answers 25P02 (and a COMMIT that rolled back) with the error that
    aborted the transaction, so a serialization failure that code let pass
    is still retried, not failed for good.
*/
#include "wrk_db.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE  64
#define MAX_PARAMS  64
#define MAX_PENDING 4

/* A statement waiting for the next one: literal SQL without parameters,
   or a prepared statement with copies of its values (in buf). */
typedef struct {
    const char *sql;
    char name[16];
    int n;
    const char **vals;
    int *lens, *fmts;
    char *buf;  /* vals, lens and fmts */
    char *vbuf; /* the values' bytes */
} p_pending_t;

typedef struct {
    wrk_conn_t base;
    PGconn *pg;
    db_rc_t aborted_rc; /* the error that aborted the transaction */
    int npending;       /* statements waiting for the next one */
    p_pending_t pending[MAX_PENDING + 2];
    char begin[64];
    int64_t timeout_ms; /* the session's statement_timeout, -1 unknown */
    char aborted_msg[sizeof((wrk_conn_t *)0)->err];
    struct {
        const char *sql;
        char *text; /* the original SQL, to check a cache hit */
    } cache[CACHE_SIZE];
} p_conn_t;

static db_rc_t p_map(p_conn_t *c, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg);
    char text[400];
    snprintf(text, sizeof text, "%s", msg && *msg ? msg : PQerrorMessage(c->pg));
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = 0;
    if (PQstatus(c->pg) == CONNECTION_BAD || !state)
        return wrk_db_fail(&c->base, DB_BROKEN, "postgresql: %s", text);
    if (strcmp(state, "25P02") == 0 && c->aborted_rc)
        return wrk_db_fail(&c->base, c->aborted_rc, "%s (it aborted the transaction)",
                           c->aborted_msg);
    db_rc_t rc = DB_FAILED;
    if (strcmp(state, "23505") == 0)
        rc = DB_CONFLICT;
    else if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
             !strcmp(state, "57014") || strncmp(state, "53", 2) == 0)
        rc = DB_RETRY;
    else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        rc = DB_BROKEN;
    wrk_db_fail(&c->base, rc, "postgresql %s: %s", state, text);
    c->aborted_rc = rc;
    snprintf(c->aborted_msg, sizeof c->aborted_msg, "%s", c->base.err);
    return rc;
}

/* Run a statement without parameters (simple protocol). */
static db_rc_t p_simple(p_conn_t *c, const char *sql)
{
    c->base.trips++;
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    db_rc_t rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? DB_OK : p_map(c, res);
    if (rc == DB_OK)
        c->aborted_rc = DB_OK;
    PQclear(res);
    return rc;
}

static db_rc_t p_pipeline(p_conn_t *c, const char *name, int n, const char *const *vals,
                          const int *lens, const int *fmts, bool commit);

/* Rewrite `?` to $n, leaving quoted text alone. */
static int p_rewrite(const char *sql, char *out, size_t cap)
{
    size_t o = 0;
    int n = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        if (o + 8 >= cap)
            return -1;
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            o += (size_t)snprintf(out + o, cap - o, "$%d", ++n);
            continue;
        }
        out[o++] = *p;
    }
    out[o] = 0;
    return n;
}

/* The prepared statement's name for sql, preparing it on a miss. */
static db_rc_t p_prepare(p_conn_t *c, const char *sql, char name[16])
{
    size_t h = ((uintptr_t)sql >> 3) % CACHE_SIZE;
    snprintf(name, 16, "z%zu", h);
    if (c->cache[h].sql == sql && c->cache[h].text && strcmp(c->cache[h].text, sql) == 0)
        return DB_OK;
    /* A statement waiting under this name goes first: the name is about
       to mean another statement. */
    for (int i = 0; i < c->npending; i++)
        if (!c->pending[i].sql && strcmp(c->pending[i].name, name) == 0) {
            db_rc_t rc = p_pipeline(c, NULL, 0, NULL, NULL, NULL, false);
            db_rows_reset(&c->base.rows);
            if (rc)
                return rc;
            break;
        }
    if (c->cache[h].text) {
        char dealloc[32];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
        free(c->cache[h].text);
        c->cache[h].text = NULL;
        c->cache[h].sql = NULL;
        db_rc_t rc = p_simple(c, dealloc);
        if (rc)
            return rc;
    }
    size_t len = strlen(sql);
    char *text = malloc(len * 3 + 16);
    if (!text)
        return wrk_db_fail(&c->base, DB_RETRY, "postgresql: out of memory");
    if (p_rewrite(sql, text, len * 3 + 16) < 0) {
        free(text);
        return wrk_db_fail(&c->base, DB_FAILED, "postgresql: statement too long");
    }
    c->base.trips++;
    PGresult *res = PQprepare(c->pg, name, text, 0, NULL);
    db_rc_t rc = PQresultStatus(res) == PGRES_COMMAND_OK ? DB_OK : p_map(c, res);
    PQclear(res);
    if (rc) {
        free(text);
        return rc;
    }
    memcpy(text, sql, len + 1);
    c->cache[h].sql = sql;
    c->cache[h].text = text;
    return DB_OK;
}

static void p_rows(p_conn_t *c, PGresult *res)
{
    int nr = PQntuples(res), nc = PQnfields(res);
    c->base.rows.ncols = nc;
    for (int r = 0; r < nr; r++)
        for (int col = 0; col < nc; col++) {
            if (PQgetisnull(res, r, col)) {
                db_rows_push(&c->base.rows, DB_NULL, 0, NULL, 0);
                continue;
            }
            const char *v = PQgetvalue(res, r, col);
            switch (PQftype(res, col)) {
            case 20: /* int8 */
            case 21: /* int2 */
            case 23: /* int4 */
                db_rows_push(&c->base.rows, DB_INT, strtoll(v, NULL, 10), NULL, 0);
                break;
            case 17: { /* bytea, hex text */
                size_t len = 0;
                unsigned char *b = PQunescapeBytea((const unsigned char *)v, &len);
                if (!b) {
                    c->base.rows.oom = true;
                    break;
                }
                db_rows_push(&c->base.rows, DB_BLOB, 0, (const char *)b, len);
                PQfreemem(b);
                break;
            }
            default: db_rows_push(&c->base.rows, DB_TEXT, 0, v, (size_t)PQgetlength(res, r, col));
            }
        }
    const char *t = PQcmdTuples(res);
    c->base.rows.changes = t && *t ? strtoll(t, NULL, 10) : 0;
}

/* A statement nobody reads the result of at once: it waits for the next.
   Only its pointer is kept, so it must be a literal (as all our SQL is:
   the prepared statement cache keys on the pointer too). */
static bool p_deferrable(const char *sql)
{
    return strncmp(sql, "SAVEPOINT ", 10) == 0 || strncmp(sql, "ROLLBACK TO SAVEPOINT ", 22) == 0;
}

static void p_pending_clear(p_conn_t *c)
{
    for (int i = 0; i < c->npending; i++) {
        free(c->pending[i].buf);
        free(c->pending[i].vbuf);
    }
    c->npending = 0;
}

static bool p_pending_params(const p_conn_t *c)
{
    for (int i = 0; i < c->npending; i++)
        if (!c->pending[i].sql)
            return true;
    return false;
}

static void p_defer_sql(p_conn_t *c, const char *sql)
{
    c->pending[c->npending++] = (p_pending_t){ .sql = sql };
}

/* The values of p as libpq wants them: integers as text, text
   NUL-terminated, blobs binary. With keep, every byte is copied into one
   buffer (*buf, the caller's to free), so the statement can wait. */
static db_rc_t p_values(p_conn_t *c, const db_val_t *p, int n, bool keep, const char **vals,
                        int *lens, int *fmts, char (*ints)[24], char **copies, char **buf)
{
    size_t need = 0, at = 0;
    *buf = NULL;
    if (keep) {
        for (int i = 0; i < n; i++)
            need += p[i].type == DB_INT ? 24
                    : p[i].type == DB_TEXT
                        ? (p[i].len == (size_t)-1 ? strlen(p[i].s) : p[i].len) + 1
                    : p[i].type == DB_BLOB ? p[i].len
                                           : 0;
        if (!(*buf = malloc(need ? need : 1)))
            return wrk_db_fail(&c->base, DB_RETRY, "postgresql: out of memory");
    }
    for (int i = 0; i < n; i++) {
        lens[i] = 0;
        fmts[i] = 0;
        copies[i] = NULL;
        switch (p[i].type) {
        case DB_INT: {
            char *to = keep ? *buf + at : ints[i];
            at += (size_t)snprintf(to, 24, "%lld", (long long)p[i].i) + 1;
            vals[i] = to;
            break;
        }
        case DB_TEXT: {
            size_t len = p[i].len == (size_t)-1 ? strlen(p[i].s) : p[i].len;
            if (keep) {
                memcpy(*buf + at, p[i].s, len);
                (*buf)[at + len] = 0;
                vals[i] = *buf + at;
                at += len + 1;
            } else if (p[i].len == (size_t)-1) {
                vals[i] = p[i].s;
            } else { /* libpq wants text NUL-terminated */
                copies[i] = strndup(p[i].s, p[i].len);
                vals[i] = copies[i] ? copies[i] : "";
            }
            break;
        }
        case DB_BLOB:
            if (keep) {
                memcpy(*buf + at, p[i].s, p[i].len);
                vals[i] = *buf + at;
                at += p[i].len;
            } else
                vals[i] = p[i].s;
            lens[i] = (int)p[i].len;
            fmts[i] = 1;
            break;
        default: vals[i] = NULL;
        }
    }
    return DB_OK;
}

/* Send what is pending, then the prepared statement `name` (if any), then
   COMMIT (if commit), in one round trip, and read every result: the first
   error is the answer, and the statement's rows are kept. */
static db_rc_t p_pipeline(p_conn_t *c, const char *name, int n, const char *const *vals,
                          const int *lens, const int *fmts, bool commit)
{
    int nq = 0, stmt = -1, last = -1;
    bool ok = PQenterPipelineMode(c->pg) == 1;
    c->base.trips++;
    for (int i = 0; ok && i < c->npending; i++, nq++) {
        const p_pending_t *q = &c->pending[i];
        ok = q->sql ? PQsendQueryParams(c->pg, q->sql, 0, NULL, NULL, NULL, NULL, 0) == 1
                    : PQsendQueryPrepared(c->pg, q->name, q->n, q->vals, q->lens, q->fmts, 0) == 1;
    }
    p_pending_clear(c);
    if (!name && nq > 0)
        stmt = nq - 1; /* the last statement waiting is the caller's */
    if (ok && name)
        stmt = nq++, ok = PQsendQueryPrepared(c->pg, name, n, vals, lens, fmts, 0) == 1;
    if (ok && commit)
        last = nq++, ok = PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
    if (!ok || PQpipelineSync(c->pg) != 1) {
        db_rc_t rc = wrk_db_fail(&c->base, DB_BROKEN, "postgresql: %s", PQerrorMessage(c->pg));
        PQexitPipelineMode(c->pg);
        return rc;
    }
    db_rc_t rc = DB_OK;
    for (int q = 0; q < nq; q++) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            rc = rc ? rc : p_map(c, NULL);
            break;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (q == stmt)
                p_rows(c, res);
            if (q == last && strcmp(PQcmdStatus(res), "COMMIT") != 0 && !rc)
                rc =
                    wrk_db_fail(&c->base, DB_FAILED, "postgresql: the transaction was rolled back");
        } else if (st != PGRES_PIPELINE_ABORTED && !rc) { /* aborted: skipped after an error */
            rc = p_map(c, res);
        }
        PQclear(res);
        while ((res = PQgetResult(c->pg))) /* up to this query's end */
            PQclear(res);
    }
    /* Then the sync that closes the pipeline. */
    for (PGresult *res; PQstatus(c->pg) == CONNECTION_OK && (res = PQgetResult(c->pg));) {
        bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (sync)
            break;
    }
    if (PQexitPipelineMode(c->pg) != 1 && !rc)
        rc = wrk_db_fail(&c->base, DB_BROKEN, "postgresql: %s", PQerrorMessage(c->pg));
    if (rc == DB_OK)
        c->aborted_rc = DB_OK;
    return rc;
}

static db_rc_t p_run(wrk_conn_t *base, const char *sql, const db_val_t *p, int n, bool commit,
                     bool quiet)
{
    p_conn_t *c = (p_conn_t *)base;
    if (n > MAX_PARAMS)
        return wrk_db_fail(base, DB_FAILED, "postgresql: more than %d parameters", MAX_PARAMS);
    bool room = c->npending < MAX_PENDING && PQtransactionStatus(c->pg) != PQTRANS_INERROR;
    if (n == 0 && !commit && (quiet || p_deferrable(sql)) && room) {
        p_defer_sql(c, sql);
        return DB_OK;
    }
    PGresult *res;
    if (n == 0 && !commit && !p_pending_params(c)) {
        if (c->npending) {
            /* Several statements in one simple query: one round trip. */
            char *all = NULL;
            size_t len = strlen(sql) + 1;
            for (int i = 0; i < c->npending; i++)
                len += strlen(c->pending[i].sql) + 2;
            if (!(all = malloc(len)))
                return wrk_db_fail(base, DB_RETRY, "postgresql: out of memory");
            all[0] = 0;
            for (int i = 0; i < c->npending; i++)
                strcat(strcat(all, c->pending[i].sql), "; ");
            strcat(all, sql);
            p_pending_clear(c);
            c->base.trips++;
            res = PQexec(c->pg, all);
            free(all);
        } else {
            c->base.trips++;
            res = PQexec(c->pg, sql);
        }
    } else {
        char name[16];
        db_rc_t rc = DB_OK;
        if (n > 0 && (rc = p_prepare(c, sql, name)))
            return rc;
        const char *vals[MAX_PARAMS];
        int lens[MAX_PARAMS], fmts[MAX_PARAMS];
        char ints[MAX_PARAMS][24];
        char *copies[MAX_PARAMS] = { 0 };
        if (quiet && n > 0 && !commit && room) {
            /* Its values are copied, to go with the next statement. */
            p_pending_t *q = &c->pending[c->npending];
            size_t head = (size_t)n * (sizeof *q->vals + 2 * sizeof *q->lens);
            char *vbuf;
            if ((rc = p_values(c, p, n, true, vals, lens, fmts, ints, copies, &vbuf)))
                return rc;
            if (!(q->buf = malloc(head))) {
                free(vbuf);
                return wrk_db_fail(base, DB_RETRY, "postgresql: out of memory");
            }
            q->vals = (const char **)q->buf;
            q->lens = (int *)(q->buf + (size_t)n * sizeof *q->vals);
            q->fmts = q->lens + n;
            memcpy(q->vals, vals, (size_t)n * sizeof *vals);
            memcpy(q->lens, lens, (size_t)n * sizeof *lens);
            memcpy(q->fmts, fmts, (size_t)n * sizeof *fmts);
            q->sql = NULL;
            q->n = n;
            snprintf(q->name, sizeof q->name, "%s", name);
            q->vbuf = vbuf;
            c->npending++;
            return DB_OK;
        }
        if ((rc = p_values(c, p, n, false, vals, lens, fmts, ints, copies, &(char *){ NULL })))
            return rc;
        bool piped = n == 0 || c->npending || commit;
        if (n == 0) { /* a statement without parameters goes as it is */
            p_defer_sql(c, sql);
            rc = p_pipeline(c, NULL, 0, NULL, NULL, NULL, commit);
        } else if (piped) {
            rc = p_pipeline(c, name, n, vals, lens, fmts, commit);
        } else {
            c->base.trips++;
            res = PQexecPrepared(c->pg, name, n, vals, lens, fmts, 0);
        }
        for (int i = 0; i < n; i++)
            free(copies[i]);
        if (piped)
            return rc;
    }
    ExecStatusType st = PQresultStatus(res);
    db_rc_t rc;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        p_rows(c, res);
        rc = c->aborted_rc = DB_OK;
    } else {
        rc = p_map(c, res);
    }
    PQclear(res);
    return rc;
}

static db_rc_t p_begin(wrk_conn_t *base, db_iso_t iso, uint32_t timeout_ms)
{
    static const char *levels[] = { "READ COMMITTED", "READ COMMITTED", "REPEATABLE READ",
                                    "SERIALIZABLE" };
    p_conn_t *c = (p_conn_t *)base;
    if (c->timeout_ms != (int64_t)timeout_ms) {
        char sql[64];
        snprintf(sql, sizeof sql, "SET statement_timeout = %u", timeout_ms);
        db_rc_t rc = p_simple(c, sql);
        if (rc)
            return rc;
        c->timeout_ms = timeout_ms;
    }
    /* Sent with the first statement. */
    snprintf(c->begin, sizeof c->begin, "BEGIN ISOLATION LEVEL %s", levels[iso]);
    p_pending_clear(c);
    p_defer_sql(c, c->begin);
    return DB_OK;
}

static db_rc_t p_exec(wrk_conn_t *base, const char *sql, const db_val_t *p, int n)
{
    return p_run(base, sql, p, n, false, false);
}

static db_rc_t p_exec_commit(wrk_conn_t *base, const char *sql, const db_val_t *p, int n)
{
    return p_run(base, sql, p, n, true, false);
}

static db_rc_t p_exec_quiet(wrk_conn_t *base, const char *sql, const db_val_t *p, int n)
{
    return p_run(base, sql, p, n, false, true);
}

static db_rc_t p_commit(wrk_conn_t *base)
{
    p_conn_t *c = (p_conn_t *)base;
    if (c->npending)
        return p_pipeline(c, NULL, 0, NULL, NULL, NULL, true);
    c->base.trips++;
    PGresult *res = PQexec(c->pg, "COMMIT");
    db_rc_t rc;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = p_map(c, res);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0 && c->aborted_rc) /* rolled back */
        rc = wrk_db_fail(base, c->aborted_rc, "%s (the transaction was rolled back)",
                         c->aborted_msg);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        rc = wrk_db_fail(base, DB_FAILED, "postgresql: the transaction was rolled back");
    else
        rc = DB_OK;
    PQclear(res);
    return rc;
}

static void p_rollback(wrk_conn_t *base)
{
    p_conn_t *c = (p_conn_t *)base;
    p_pending_clear(c); /* never sent: nothing to undo */
    if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        return;
    char save[sizeof base->err];
    memcpy(save, base->err, sizeof save); /* keep the error that caused it */
    p_simple(c, "ROLLBACK");
    memcpy(base->err, save, sizeof save);
}

static db_rc_t p_ping(wrk_conn_t *base)
{
    return p_simple((p_conn_t *)base, "SELECT 1");
}

static wrk_conn_t *p_connect(const char *uri, char *err, size_t errlen);
static void p_close(wrk_conn_t *base);

const wrk_driver_t wrk_driver_pg = {
    "postgresql", DB_DIALECT_POSTGRES, p_connect,    p_close, p_begin, p_commit, p_rollback, p_exec,
    p_ping,       p_exec_commit,       p_exec_quiet,
};

static wrk_conn_t *p_connect(const char *uri, char *err, size_t errlen)
{
    p_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.drv = &wrk_driver_pg;
    c->timeout_ms = -1;
    c->pg = PQconnectdb(uri);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = 0;
        p_close(&c->base);
        return NULL;
    }
    if (p_simple(c, "SET client_min_messages = warning")) {
        snprintf(err, errlen, "%s", c->base.err);
        p_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static void p_close(wrk_conn_t *base)
{
    p_conn_t *c = (p_conn_t *)base;
    p_pending_clear(c);
    for (int i = 0; i < CACHE_SIZE; i++)
        free(c->cache[i].text);
    PQfinish(c->pg);
    free(c);
}
