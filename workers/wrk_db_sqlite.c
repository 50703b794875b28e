/*  wrk_db_sqlite: the SQLite driver, the embedded default.

    URI: sqlite:PATH[?synchronous=full|normal]. The database runs in WAL
    mode so readers never block the writer; writers take the lock at BEGIN
    (BEGIN IMMEDIATE) so two transactions never deadlock upgrading a read
    lock, and wait up to 10 s for it. synchronous=full (the default) fsyncs
    the WAL at every commit: a committed step survives power loss.
    synchronous=normal survives a crash of the worker but not of the OS.

    A statement timeout is enforced with the progress handler. Prepared
    statements are cached by the address of their SQL text: business SQL
    is string literals, whose addresses never change.
*/
#include "wrk_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SIZE 64

typedef struct {
    wrk_conn_t base;
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[CACHE_SIZE];
    uint64_t deadline_ms; /* 0: none */
} s_conn_t;

static uint64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int s_progress(void *arg)
{
    s_conn_t *c = arg;
    return c->deadline_ms && s_mono_ms() > c->deadline_ms;
}

static db_rc_t s_map(s_conn_t *c, int rc)
{
    int ext = sqlite3_extended_errcode(c->db);
    const char *msg = sqlite3_errmsg(c->db);
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return DB_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return wrk_db_fail(&c->base, DB_RETRY, "sqlite: database busy: %s", msg);
    case SQLITE_INTERRUPT:
        return wrk_db_fail(&c->base, DB_RETRY, "sqlite: statement timeout reached");
    case SQLITE_CONSTRAINT:
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            return wrk_db_fail(&c->base, DB_CONFLICT, "sqlite: %s", msg);
        return wrk_db_fail(&c->base, DB_FAILED, "sqlite: %s", msg);
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_ERROR: return wrk_db_fail(&c->base, DB_FAILED, "sqlite: %s", msg);
    case SQLITE_NOMEM:
    case SQLITE_IOERR:
    case SQLITE_FULL: return wrk_db_fail(&c->base, DB_RETRY, "sqlite: %s", msg);
    default: return wrk_db_fail(&c->base, DB_BROKEN, "sqlite: %s", msg);
    }
}

static wrk_conn_t *s_connect(const char *uri, char *err, size_t errlen);
static void s_close(wrk_conn_t *base);

static sqlite3_stmt *s_prepare(s_conn_t *c, const char *sql, int *rc)
{
    size_t h = ((uintptr_t)sql >> 3) % CACHE_SIZE;
    if (c->cache[h].sql == sql && c->cache[h].stmt &&
        strcmp(sqlite3_sql(c->cache[h].stmt), sql) == 0) {
        sqlite3_reset(c->cache[h].stmt);
        sqlite3_clear_bindings(c->cache[h].stmt);
        *rc = SQLITE_OK;
        return c->cache[h].stmt;
    }
    sqlite3_stmt *st = NULL;
    if ((*rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK)
        return NULL;
    sqlite3_finalize(c->cache[h].stmt);
    c->cache[h].sql = sql;
    c->cache[h].stmt = st;
    return st;
}

static db_rc_t s_exec(wrk_conn_t *base, const char *sql, const db_val_t *p, int n)
{
    s_conn_t *c = (s_conn_t *)base;
    int rc;
    sqlite3_stmt *st = s_prepare(c, sql, &rc);
    if (!st)
        return s_map(c, rc);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        switch (p[i].type) {
        case DB_INT: rc = sqlite3_bind_int64(st, i + 1, p[i].i); break;
        case DB_TEXT:
            rc = sqlite3_bind_text(st, i + 1, p[i].s, p[i].len == (size_t)-1 ? -1 : (int)p[i].len,
                                   SQLITE_TRANSIENT);
            break;
        case DB_BLOB:
            rc = sqlite3_bind_blob(st, i + 1, p[i].s, (int)p[i].len, SQLITE_TRANSIENT);
            break;
        default: rc = sqlite3_bind_null(st, i + 1); break;
        }
    }
    if (rc != SQLITE_OK)
        return s_map(c, rc);
    base->rows.ncols = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int col = 0; col < base->rows.ncols; col++) {
            switch (sqlite3_column_type(st, col)) {
            case SQLITE_INTEGER:
                db_rows_push(&base->rows, DB_INT, sqlite3_column_int64(st, col), NULL, 0);
                break;
            case SQLITE_NULL: db_rows_push(&base->rows, DB_NULL, 0, NULL, 0); break;
            case SQLITE_BLOB:
                db_rows_push(&base->rows, DB_BLOB, 0, sqlite3_column_blob(st, col),
                             (size_t)sqlite3_column_bytes(st, col));
                break;
            default:
                db_rows_push(&base->rows, DB_TEXT, 0, (const char *)sqlite3_column_text(st, col),
                             (size_t)sqlite3_column_bytes(st, col));
                break;
            }
        }
    base->rows.changes = sqlite3_changes(c->db);
    db_rc_t out = s_map(c, rc);
    sqlite3_reset(st);
    return out;
}

static db_rc_t s_simple(s_conn_t *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    return s_map(c, rc);
}

static db_rc_t s_begin(wrk_conn_t *base, db_iso_t iso, uint32_t timeout_ms)
{
    (void)iso; /* SQLite transactions are always serializable */
    s_conn_t *c = (s_conn_t *)base;
    c->deadline_ms = timeout_ms ? s_mono_ms() + timeout_ms : 0;
    return s_simple(c, "BEGIN IMMEDIATE");
}

static db_rc_t s_commit(wrk_conn_t *base)
{
    s_conn_t *c = (s_conn_t *)base;
    db_rc_t rc = s_simple(c, "COMMIT");
    c->deadline_ms = 0;
    return rc;
}

static void s_rollback(wrk_conn_t *base)
{
    s_conn_t *c = (s_conn_t *)base;
    c->deadline_ms = 0;
    if (!sqlite3_get_autocommit(c->db)) {
        char save[sizeof base->err];
        memcpy(save, base->err, sizeof save); /* keep the error that caused it */
        s_simple(c, "ROLLBACK");
        memcpy(base->err, save, sizeof save);
    }
}

static db_rc_t s_ping(wrk_conn_t *base)
{
    return s_simple((s_conn_t *)base, "SELECT 1");
}

const wrk_driver_t wrk_driver_sqlite = {
    "sqlite", DB_DIALECT_SQLITE, s_connect, s_close, s_begin, s_commit, s_rollback, s_exec, s_ping,
};

static wrk_conn_t *s_connect(const char *uri, char *err, size_t errlen)
{
    char path[1024];
    const char *p = uri + strlen("sqlite:");
    if (strncmp(p, "//", 2) == 0)
        p += 2;
    snprintf(path, sizeof path, "%s", p);
    char *q = strchr(path, '?');
    bool normal = false;
    if (q) {
        *q++ = 0;
        if (strcmp(q, "synchronous=normal") == 0)
            normal = true;
        else if (strcmp(q, "synchronous=full") != 0) {
            snprintf(err, errlen, "sqlite URI: unknown option '%s'", q);
            return NULL;
        }
    }
    if (!path[0]) {
        snprintf(err, errlen, "sqlite URI has no path: want sqlite:PATH");
        return NULL;
    }
    s_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.drv = &wrk_driver_sqlite;
    int rc = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "no memory");
        s_close(&c->base);
        return NULL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    sqlite3_progress_handler(c->db, 1000, s_progress, c);
    if (s_simple(c, "PRAGMA journal_mode=WAL") ||
        s_simple(c, normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL") ||
        s_simple(c, "PRAGMA foreign_keys=ON")) {
        snprintf(err, errlen, "sqlite %s: %s", path, c->base.err);
        s_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static void s_close(wrk_conn_t *base)
{
    s_conn_t *c = (s_conn_t *)base;
    for (int i = 0; i < CACHE_SIZE; i++)
        sqlite3_finalize(c->cache[i].stmt);
    sqlite3_close(c->db);
    free(c);
}
