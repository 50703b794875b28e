/*  wrk_db: driver selection and result buffers. See wrk_db.h. */
#include "wrk_db.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void s_rows_fix(db_rows_t *r);

static const wrk_driver_t *s_drivers[] = { &wrk_driver_sqlite, &wrk_driver_pg, &wrk_driver_mysql,
                                           &wrk_driver_redis };

const wrk_driver_t *wrk_db_driver(const char *uri, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof s_drivers / sizeof *s_drivers; i++) {
        size_t n = strlen(s_drivers[i]->scheme);
        if (strncmp(uri, s_drivers[i]->scheme, n) == 0 && uri[n] == ':')
            return s_drivers[i];
    }
    if (strncmp(uri, "postgres://", 11) == 0) /* libpq's other spelling */
        return &wrk_driver_pg;
    if (strncmp(uri, "rediss://", 9) == 0) /* Redis over TLS */
        return &wrk_driver_redis;
    char shown[128];
    snprintf(err, errlen,
             "unsupported database URI '%s' (want sqlite:PATH, postgresql://..., "
             "mysql://... or redis[s]://...)",
             wrk_db_redact(uri, shown, sizeof shown));
    return NULL;
}

const char *wrk_db_redact(const char *uri, char *out, size_t outlen)
{
    /* scheme://user:password@rest -> scheme://user:***@rest */
    const char *start = strstr(uri, "://"), *at = start ? strchr(start + 3, '@') : NULL;
    const char *colon = at ? memchr(start + 3, ':', (size_t)(at - start - 3)) : NULL;
    if (!colon)
        snprintf(out, outlen, "%s", uri);
    else
        snprintf(out, outlen, "%.*s***%s", (int)(colon + 1 - uri), uri, at);
    return out;
}

wrk_conn_t *wrk_db_connect(const char *uri, char *err, size_t errlen)
{
    const wrk_driver_t *drv = wrk_db_driver(uri, err, errlen);
    return drv ? drv->connect(uri, err, errlen) : NULL;
}

void wrk_db_close(wrk_conn_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    wrk_conn_t *c = *c_p;
    db_rows_free(&c->rows);
    c->drv->close(c);
    *c_p = NULL;
}

/* Run a statement (and the commit, with commit; or quietly) and count it. */
static db_rc_t s_exec(wrk_conn_t *c, const char *sql, const db_val_t *params, int n, bool commit,
                      bool quiet)
{
    struct timespec t0, t1;
    db_rows_reset(&c->rows);
    c->err[0] = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    db_rc_t rc;
    if (quiet && c->drv->exec_quiet)
        rc = c->drv->exec_quiet(c, sql, params, n);
    else if (!commit)
        rc = c->drv->exec(c, sql, params, n);
    else if (c->drv->exec_commit)
        rc = c->drv->exec_commit(c, sql, params, n);
    else if (!(rc = c->drv->exec(c, sql, params, n)))
        rc = c->drv->commit(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                  (uint64_t)t0.tv_nsec;
    c->queries++;
    c->query_ns += ns;
    if (c->slow_ms && ns / 1000000u >= c->slow_ms)
        c->slow_queries++;
    if (rc != DB_OK && rc != DB_CONFLICT)
        c->errors++;
    s_rows_fix(&c->rows);
    if (rc == DB_OK && c->rows.oom)
        return wrk_db_fail(c, DB_RETRY, "out of memory reading the result");
    return rc;
}

db_rc_t wrk_db_execv(wrk_conn_t *c, const char *sql, const db_val_t *params, int n)
{
    return s_exec(c, sql, params, n, false, false);
}

db_rc_t wrk_db_execv_quiet(wrk_conn_t *c, const char *sql, const db_val_t *params, int n)
{
    return s_exec(c, sql, params, n, false, true);
}

db_rc_t wrk_db_execv_commit(wrk_conn_t *c, const char *sql, const db_val_t *params, int n)
{
    return s_exec(c, sql, params, n, true, false);
}

db_rc_t wrk_db_begin(wrk_conn_t *c, db_iso_t iso, uint32_t statement_timeout_ms)
{
    c->err[0] = 0;
    return c->drv->begin(c, iso, statement_timeout_ms);
}

db_rc_t wrk_db_commit(wrk_conn_t *c)
{
    return c->drv->commit(c);
}

void wrk_db_rollback(wrk_conn_t *c)
{
    c->drv->rollback(c);
}

const char *wrk_db_error(const wrk_conn_t *c)
{
    return c->err;
}

db_dialect_t wrk_db_dialect(const wrk_conn_t *c)
{
    return c->drv->dialect;
}

int wrk_db_iso_parse(const char *name)
{
    static const char *names[] = { "read-committed", "repeatable-read", "serializable" };
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            return DB_ISO_READ_COMMITTED + i;
    return -1;
}

const char *wrk_db_rc_name(db_rc_t rc)
{
    static const char *names[] = { "ok", "conflict", "retry", "failed", "broken" };
    return rc <= DB_BROKEN ? names[rc] : "?";
}

int wrk_db_nrows(const wrk_conn_t *c)
{
    return c->rows.nrows;
}

int64_t wrk_db_changes(const wrk_conn_t *c)
{
    return c->rows.changes;
}

const db_val_t *wrk_db_val(const wrk_conn_t *c, int row, int col)
{
    static const db_val_t null_val = { DB_NULL, 0, NULL, 0 };
    if (row < 0 || row >= c->rows.nrows || col < 0 || col >= c->rows.ncols)
        return &null_val;
    return &c->rows.v[row * c->rows.ncols + col];
}

int64_t wrk_db_int(const wrk_conn_t *c, int row, int col)
{
    const db_val_t *v = wrk_db_val(c, row, col);
    if (v->type == DB_INT)
        return v->i;
    if (v->type == DB_TEXT)
        return strtoll(v->s, NULL, 10);
    return 0;
}

const char *wrk_db_text(const wrk_conn_t *c, int row, int col)
{
    const db_val_t *v = wrk_db_val(c, row, col);
    return v->type == DB_TEXT || v->type == DB_BLOB ? v->s : "";
}

void db_rows_reset(db_rows_t *r)
{
    r->nrows = r->ncols = 0;
    r->changes = 0;
    r->nvals = r->alen = 0;
    r->oom = false;
}

/* While a statement runs, text values keep their arena offset in `i`
   (the arena may move as it grows); s_rows_fix turns them into pointers. */
void db_rows_push(db_rows_t *r, db_type_t type, int64_t i, const char *s, size_t len)
{
    if (r->nvals == r->vcap) {
        size_t cap = r->vcap ? r->vcap * 2 : 16;
        db_val_t *v = realloc(r->v, cap * sizeof *v);
        if (!v) {
            r->oom = true;
            return;
        }
        r->v = v;
        r->vcap = cap;
    }
    db_val_t *v = &r->v[r->nvals++];
    *v = (db_val_t){ type, i, NULL, len };
    if (type != DB_TEXT && type != DB_BLOB)
        return;
    if (r->alen + len + 1 > r->acap) {
        size_t cap = r->acap ? r->acap : 256;
        while (cap < r->alen + len + 1)
            cap *= 2;
        char *a = realloc(r->arena, cap);
        if (!a) {
            r->oom = true;
            v->type = DB_NULL;
            return;
        }
        r->arena = a;
        r->acap = cap;
    }
    if (len)
        memcpy(r->arena + r->alen, s, len);
    r->arena[r->alen + len] = 0;
    v->i = (int64_t)r->alen;
    r->alen += len + 1;
}

static void s_rows_fix(db_rows_t *r)
{
    r->nrows = r->ncols ? (int)(r->nvals / (size_t)r->ncols) : 0;
    for (size_t k = 0; k < r->nvals; k++)
        if (r->v[k].type == DB_TEXT || r->v[k].type == DB_BLOB)
            r->v[k].s = r->arena + r->v[k].i;
}

void db_rows_free(db_rows_t *r)
{
    free(r->v);
    free(r->arena);
    memset(r, 0, sizeof *r);
}

db_rc_t wrk_db_fail(wrk_conn_t *c, db_rc_t rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}
