/*  wrk_db_mysql: the MariaDB / MySQL driver, over the MySQL C API.

    URI: mysql://USER[:PASS]@HOST[:PORT]/DB[?ssl-mode=M&ssl-ca=F&ssl-cert=F
    &ssl-key=F] (wrk_uri.h): TLS when ssl-mode is REQUIRED, VERIFY_CA or
    VERIFY_IDENTITY (both verifying the server's certificate and name), or
    when ssl-ca is given. Statements with parameters are
    server-side prepared statements (cached per connection by the address
    of their SQL text, checked by content), with values bound apart from
    the text. Statements without parameters (transaction control, DDL,
    savepoints) go through the text protocol.

    The session runs in strict mode (a bad value is an error, not a
    warning and a silently changed row) and reports changed rows, not
    matched rows: the barrier's INSERT .. ON DUPLICATE KEY UPDATE saga =
    saga then counts 1 for a new row and 0 for one that was there.

    Error numbers decide what the caller may do: 1062 duplicate key is a
    conflict; 1213 deadlock, 1205 lock wait timeout and the statement
    timeouts (MariaDB 1969, MySQL 3024) are transient; client errors
    2000-2999 and a killed connection are broken; the rest fail for good.
    The statement timeout is MariaDB's max_statement_time, per statement.

    Round trips are what a step costs on a small machine, and this client
    library cannot pipeline: a transaction starts implicitly instead of by
    START TRANSACTION (the session runs with autocommit off from its first
    transaction on, and a statement run outside one turns it back on
    first), saving one round trip a step.
*/
#include "wrk_db.h"
#include "wrk_uri.h"

#include <mysql.h>
#include <errmsg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 64
#define MAX_PARAMS 64
#define MAX_COLS   32

typedef struct {
    wrk_conn_t base;
    MYSQL *my;
    struct {
        const char *sql;
        char *text;
        MYSQL_STMT *stmt;
    } cache[CACHE_SIZE];
    db_iso_t iso;        /* the session's level now */
    uint32_t timeout_ms; /* the session's max_statement_time now */
    bool in_txn;
    bool autocommit_off; /* the session's autocommit is 0 */
} m_conn_t;

static db_rc_t m_rc(m_conn_t *c, unsigned no, const char *state, const char *msg)
{
    db_rc_t rc = DB_FAILED;
    if (no == 1062)
        rc = DB_CONFLICT;
    else if (no == 1213 || no == 1205 || no == 1969 || no == 3024 || no == 1040)
        rc = DB_RETRY;
    else if ((no >= 2000 && no < 3000) || no == 1927 || no == 1053 || no == 1152 || no == 1158 ||
             no == 1159 || no == 1160 || no == 1161)
        rc = DB_BROKEN;
    return wrk_db_fail(&c->base, rc, "mysql %u (%s): %s", no, state, msg);
}

static db_rc_t m_err(m_conn_t *c)
{
    return m_rc(c, mysql_errno(c->my), mysql_sqlstate(c->my), mysql_error(c->my));
}

static db_rc_t m_stmt_err(m_conn_t *c, MYSQL_STMT *st)
{
    return m_rc(c, mysql_stmt_errno(st), mysql_stmt_sqlstate(st), mysql_stmt_error(st));
}

static bool m_is_int(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG;
}

/* Text protocol: run sql, keep any result. */
static db_rc_t m_simple(m_conn_t *c, const char *sql)
{
    c->base.trips++;
    if (mysql_real_query(c->my, sql, strlen(sql)))
        return m_err(c);
    MYSQL_RES *res = mysql_store_result(c->my);
    if (!res) {
        if (mysql_field_count(c->my))
            return m_err(c);
        c->base.rows.changes = (int64_t)mysql_affected_rows(c->my);
        return DB_OK;
    }
    unsigned nc = mysql_num_fields(res);
    MYSQL_FIELD *f = mysql_fetch_fields(res);
    c->base.rows.ncols = (int)nc;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        for (unsigned i = 0; i < nc; i++) {
            if (!row[i])
                db_rows_push(&c->base.rows, DB_NULL, 0, NULL, 0);
            else if (m_is_int(f[i].type))
                db_rows_push(&c->base.rows, DB_INT, strtoll(row[i], NULL, 10), NULL, 0);
            else
                db_rows_push(&c->base.rows, f[i].charsetnr == 63 ? DB_BLOB : DB_TEXT, 0, row[i],
                             lens[i]);
        }
    }
    mysql_free_result(res);
    return DB_OK;
}

static MYSQL_STMT *m_prepare(m_conn_t *c, const char *sql, db_rc_t *rc)
{
    size_t h = ((uintptr_t)sql >> 3) % CACHE_SIZE;
    if (c->cache[h].sql == sql && c->cache[h].stmt && strcmp(c->cache[h].text, sql) == 0)
        return c->cache[h].stmt;
    if (c->cache[h].stmt)
        mysql_stmt_close(c->cache[h].stmt);
    free(c->cache[h].text);
    c->cache[h].stmt = NULL;
    c->cache[h].text = NULL;
    c->cache[h].sql = NULL;
    MYSQL_STMT *st = mysql_stmt_init(c->my);
    if (!st) {
        *rc = m_err(c);
        return NULL;
    }
    c->base.trips++;
    if (mysql_stmt_prepare(st, sql, strlen(sql))) {
        *rc = m_stmt_err(c, st);
        mysql_stmt_close(st);
        return NULL;
    }
    bool update_max = true;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
    if (!(c->cache[h].text = strdup(sql))) {
        mysql_stmt_close(st);
        *rc = wrk_db_fail(&c->base, DB_RETRY, "mysql: out of memory");
        return NULL;
    }
    c->cache[h].sql = sql;
    c->cache[h].stmt = st;
    return st;
}

/* Fetch a prepared statement's result set into the rows buffer. */
static db_rc_t m_fetch(m_conn_t *c, MYSQL_STMT *st, MYSQL_RES *meta)
{
    unsigned nc = mysql_num_fields(meta);
    if (nc > MAX_COLS) {
        mysql_free_result(meta);
        return wrk_db_fail(&c->base, DB_FAILED, "mysql: more than %d columns", MAX_COLS);
    }
    if (mysql_stmt_store_result(st)) {
        mysql_free_result(meta);
        return m_stmt_err(c, st);
    }
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    MYSQL_BIND b[MAX_COLS];
    long long ints[MAX_COLS];
    unsigned long lens[MAX_COLS];
    my_bool nulls[MAX_COLS];
    char *bufs[MAX_COLS] = { 0 };
    memset(b, 0, sizeof b);
    db_rc_t rc = DB_OK;
    for (unsigned i = 0; i < nc; i++) {
        b[i].is_null = &nulls[i];
        b[i].length = &lens[i];
        if (m_is_int(f[i].type)) {
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &ints[i];
        } else {
            /* max_length is known after store_result (UPDATE_MAX_LENGTH). */
            b[i].buffer_type = f[i].charsetnr == 63 ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
            b[i].buffer_length = f[i].max_length + 1;
            if (!(bufs[i] = malloc(b[i].buffer_length))) {
                rc = wrk_db_fail(&c->base, DB_RETRY, "mysql: out of memory");
                goto done;
            }
            b[i].buffer = bufs[i];
        }
    }
    if (mysql_stmt_bind_result(st, b)) {
        rc = m_stmt_err(c, st);
        goto done;
    }
    c->base.rows.ncols = (int)nc;
    int fr;
    while ((fr = mysql_stmt_fetch(st)) == 0 || fr == MYSQL_DATA_TRUNCATED)
        for (unsigned i = 0; i < nc; i++) {
            if (nulls[i])
                db_rows_push(&c->base.rows, DB_NULL, 0, NULL, 0);
            else if (m_is_int(f[i].type))
                db_rows_push(&c->base.rows, DB_INT, ints[i], NULL, 0);
            else
                db_rows_push(&c->base.rows, f[i].charsetnr == 63 ? DB_BLOB : DB_TEXT, 0, bufs[i],
                             lens[i]);
        }
    if (fr == 1)
        rc = m_stmt_err(c, st);
done:
    for (unsigned i = 0; i < nc; i++)
        free(bufs[i]);
    mysql_stmt_free_result(st);
    mysql_free_result(meta);
    return rc;
}

static db_rc_t m_exec(wrk_conn_t *base, const char *sql, const db_val_t *p, int n)
{
    m_conn_t *c = (m_conn_t *)base;
    if (!c->in_txn && c->autocommit_off) {
        /* Outside a transaction a statement commits by itself, as it did
           before this session's first transaction. */
        db_rc_t rc = m_simple(c, "SET autocommit = 1");
        if (rc)
            return rc;
        c->autocommit_off = false;
    }
    if (n == 0)
        return m_simple(c, sql);
    if (n > MAX_PARAMS)
        return wrk_db_fail(base, DB_FAILED, "mysql: more than %d parameters", MAX_PARAMS);
    db_rc_t rc = DB_OK;
    MYSQL_STMT *st = m_prepare(c, sql, &rc);
    if (!st)
        return rc;
    if (mysql_stmt_param_count(st) != (unsigned long)n)
        return wrk_db_fail(base, DB_FAILED, "mysql: statement wants %lu parameters, got %d",
                           mysql_stmt_param_count(st), n);
    MYSQL_BIND b[MAX_PARAMS];
    long long ints[MAX_PARAMS];
    unsigned long lens[MAX_PARAMS];
    memset(b, 0, sizeof(MYSQL_BIND) * (size_t)n);
    for (int i = 0; i < n; i++) {
        switch (p[i].type) {
        case DB_INT:
            ints[i] = p[i].i;
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &ints[i];
            break;
        case DB_TEXT:
        case DB_BLOB:
            lens[i] = p[i].len == (size_t)-1 ? strlen(p[i].s) : p[i].len;
            b[i].buffer_type = p[i].type == DB_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
            b[i].buffer = (void *)p[i].s;
            b[i].buffer_length = lens[i];
            b[i].length = &lens[i];
            break;
        default: b[i].buffer_type = MYSQL_TYPE_NULL;
        }
    }
    c->base.trips++; /* the rows of a result come with it (store_result) */
    if (mysql_stmt_bind_param(st, b) || mysql_stmt_execute(st))
        return m_stmt_err(c, st);
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (meta)
        return m_fetch(c, st, meta);
    c->base.rows.changes = (int64_t)mysql_stmt_affected_rows(st);
    return DB_OK;
}

static db_rc_t m_begin(wrk_conn_t *base, db_iso_t iso, uint32_t timeout_ms)
{
    static const char *levels[] = { "READ COMMITTED", "READ COMMITTED", "REPEATABLE READ",
                                    "SERIALIZABLE" };
    m_conn_t *c = (m_conn_t *)base;
    char sql[128];
    db_rc_t rc;
    /* Session settings change rarely: send them only when they differ. */
    if (iso != c->iso) {
        snprintf(sql, sizeof sql, "SET SESSION TRANSACTION ISOLATION LEVEL %s", levels[iso]);
        if ((rc = m_simple(c, sql)))
            return rc;
        c->iso = iso;
    }
    if (timeout_ms != c->timeout_ms) {
        snprintf(sql, sizeof sql, "SET SESSION max_statement_time = %u.%03u", timeout_ms / 1000,
                 timeout_ms % 1000);
        if ((rc = m_simple(c, sql)))
            return rc;
        c->timeout_ms = timeout_ms;
    }
    /* With autocommit off the first statement starts the transaction:
       no START TRANSACTION round trip. */
    if (!c->autocommit_off) {
        if ((rc = m_simple(c, "SET autocommit = 0")))
            return rc;
        c->autocommit_off = true;
    }
    c->in_txn = true;
    return DB_OK;
}

static db_rc_t m_commit(wrk_conn_t *base)
{
    m_conn_t *c = (m_conn_t *)base;
    c->in_txn = false;
    return m_simple(c, "COMMIT");
}

static void m_rollback(wrk_conn_t *base)
{
    m_conn_t *c = (m_conn_t *)base;
    if (!c->in_txn)
        return;
    c->in_txn = false;
    char save[sizeof base->err];
    memcpy(save, base->err, sizeof save); /* keep the error that caused it */
    m_simple(c, "ROLLBACK");
    memcpy(base->err, save, sizeof save);
}

static db_rc_t m_ping(wrk_conn_t *base)
{
    m_conn_t *c = (m_conn_t *)base;
    c->base.trips++;
    return mysql_ping(c->my) ? m_err(c) : DB_OK;
}

static wrk_conn_t *m_connect(const char *uri, char *err, size_t errlen);
static void m_close(wrk_conn_t *base);

const wrk_driver_t wrk_driver_mysql = {
    "mysql", DB_DIALECT_MYSQL, m_connect, m_close, m_begin, m_commit, m_rollback, m_exec, m_ping,
};

/* The client library's global state: set up once, before any thread
   connects (mysql_init would do it lazily, racing), freed at exit. */
static void m_library_init(void)
{
    mysql_library_init(0, NULL, NULL);
    atexit(mysql_library_end);
}

static wrk_conn_t *m_connect(const char *uri, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, m_library_init);
    static const char *const known[] = { "ssl-mode", "ssl-ca", "ssl-cert", "ssl-key", NULL };
    wrk_uri_t u;
    char uerr[200];
    if (wrk_uri_parse(uri, &u, uerr, sizeof uerr) || strcmp(u.scheme, "mysql") != 0 || !u.host[0] ||
        !u.path[0] || !wrk_uri_query_known(&u, known, uerr, sizeof uerr)) {
        snprintf(err, errlen,
                 "mysql URI: want mysql://USER[:PASS]@HOST[:PORT]/DB[?ssl-mode=...&ssl-ca=...]"
                 "%s%s",
                 uerr[0] ? ": " : "", uerr);
        return NULL;
    }
    /* ssl-mode as MySQL's clients spell it. VERIFY_CA and VERIFY_IDENTITY
       both check the server's name here: MariaDB's library checks the
       certificate and the name together. */
    const char *mode = wrk_uri_query(&u, "ssl-mode");
    const char *ca = wrk_uri_query(&u, "ssl-ca");
    bool tls = false, verify = false;
    if (!mode)
        tls = verify = ca != NULL;
    else if (strcmp(mode, "DISABLED") == 0)
        tls = false;
    else if (strcmp(mode, "REQUIRED") == 0)
        tls = true;
    else if (strcmp(mode, "VERIFY_CA") == 0 || strcmp(mode, "VERIFY_IDENTITY") == 0)
        tls = verify = true;
    else {
        snprintf(err, errlen,
                 "mysql URI: ssl-mode must be DISABLED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY");
        return NULL;
    }
    if (verify && !ca) {
        snprintf(err, errlen, "mysql URI: ssl-mode %s needs ssl-ca=FILE", mode);
        return NULL;
    }
    unsigned port = u.port ? u.port : 3306;
    m_conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->my = mysql_init(NULL))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base.drv = &wrk_driver_mysql;
    c->iso = DB_ISO_DEFAULT;
    unsigned connect_s = 5, io_s = 60;
    my_bool no = 0;
    mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(c->my, MYSQL_OPT_READ_TIMEOUT, &io_s);
    mysql_options(c->my, MYSQL_OPT_WRITE_TIMEOUT, &io_s);
    mysql_options(c->my, MYSQL_OPT_RECONNECT, &no); /* a reconnect would lose the transaction */
    mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (tls) {
        my_bool yes = 1;
        mysql_options(c->my, MYSQL_OPT_SSL_ENFORCE, &yes);
        mysql_options(c->my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, verify ? &yes : &no);
        if (ca)
            mysql_options(c->my, MYSQL_OPT_SSL_CA, ca);
        if (wrk_uri_query(&u, "ssl-cert"))
            mysql_options(c->my, MYSQL_OPT_SSL_CERT, wrk_uri_query(&u, "ssl-cert"));
        if (wrk_uri_query(&u, "ssl-key"))
            mysql_options(c->my, MYSQL_OPT_SSL_KEY, wrk_uri_query(&u, "ssl-key"));
    }
    if (!mysql_real_connect(c->my, u.host, u.user[0] ? u.user : NULL,
                            u.has_password ? u.password : NULL, u.path, port, NULL, 0)) {
        snprintf(err, errlen, "mysql %s:%u: %s", u.host, port, mysql_error(c->my));
        m_close(&c->base);
        return NULL;
    }
    if (m_simple(c, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION,"
                    "ERROR_FOR_DIVISION_BY_ZERO'") ||
        m_simple(c, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED") ||
        m_simple(c, "SET SESSION innodb_lock_wait_timeout = 10")) {
        snprintf(err, errlen, "%s", c->base.err);
        m_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static void m_close(wrk_conn_t *base)
{
    m_conn_t *c = (m_conn_t *)base;
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (c->cache[i].stmt)
            mysql_stmt_close(c->cache[i].stmt);
        free(c->cache[i].text);
    }
    mysql_close(c->my);
    free(c);
}
