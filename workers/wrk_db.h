/*  wrk_db: one interface over every database driver a worker can use.

    Business SQL is written once, with `?` placeholders; each driver maps
    them to its own form and binds values as parameters (never pasted into
    the text). Results come back as rows of typed values in a buffer that
    the connection owns and reuses: they stay valid until the next call on
    that connection.

    Every call returns a db_rc_t that says what the caller may do next:
      DB_OK        done
      DB_CONFLICT  a unique key already exists (the transaction goes on)
      DB_RETRY     transient: busy, deadlock, serialization failure, timeout;
                   roll back and run the whole transaction again later
      DB_FAILED    the statement is wrong for this data (constraint, bad
                   value): it will fail again; roll back
      DB_BROKEN    the connection is unusable: roll back, drop it
    and the connection keeps the database's message (wrk_db_error).

    A connection is used by one thread at a time (the pool hands it out).
*/
#ifndef ZSAGA_WRK_DB_H
#define ZSAGA_WRK_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DB_OK = 0, DB_CONFLICT, DB_RETRY, DB_FAILED, DB_BROKEN } db_rc_t;
typedef enum { DB_NULL = 0, DB_INT, DB_TEXT, DB_BLOB } db_type_t;
typedef enum {
    DB_DIALECT_SQLITE = 0,
    DB_DIALECT_POSTGRES,
    DB_DIALECT_MYSQL,
    DB_DIALECT_REDIS, /* no SQL: statements are Lua scripts, see wrk_db_redis.c */
    DB_DIALECTS
} db_dialect_t;
typedef enum {
    DB_ISO_DEFAULT = 0, /* READ COMMITTED, or the engine's only level */
    DB_ISO_READ_COMMITTED,
    DB_ISO_REPEATABLE_READ,
    DB_ISO_SERIALIZABLE
} db_iso_t;

typedef struct {
    db_type_t type;
    int64_t i;
    const char *s; /* DB_TEXT and DB_BLOB; not NUL-terminated for blobs */
    size_t len;
} db_val_t;

#define DB_I(x)     ((db_val_t){ DB_INT, (int64_t)(x), NULL, 0 })
#define DB_S(x)     ((db_val_t){ DB_TEXT, 0, (x), (size_t)-1 }) /* NUL-terminated */
#define DB_SN(x, n) ((db_val_t){ DB_TEXT, 0, (x), (n) })
#define DB_B(x, n)  ((db_val_t){ DB_BLOB, 0, (const char *)(x), (n) })
#define DB_NULLV    ((db_val_t){ DB_NULL, 0, NULL, 0 })

typedef struct {
    int nrows, ncols;
    int64_t changes; /* rows changed by the last statement */
    db_val_t *v;     /* nrows * ncols, row-major */
    size_t nvals, vcap;
    char *arena; /* text and blob bytes of v, each NUL-terminated */
    size_t alen, acap;
    bool oom;
} db_rows_t;

typedef struct wrk_conn_s wrk_conn_t;

typedef struct {
    const char *scheme; /* "sqlite", "postgresql", "mysql", "redis" */
    db_dialect_t dialect;
    wrk_conn_t *(*connect)(const char *uri, char *err, size_t errlen);
    void (*close)(wrk_conn_t *c);
    db_rc_t (*begin)(wrk_conn_t *c, db_iso_t iso, uint32_t statement_timeout_ms);
    db_rc_t (*commit)(wrk_conn_t *c);
    void (*rollback)(wrk_conn_t *c);
    db_rc_t (*exec)(wrk_conn_t *c, const char *sql, const db_val_t *params, int nparams);
    db_rc_t (*ping)(wrk_conn_t *c);
    /* Optional: exec, then commit, in one round trip. */
    db_rc_t (*exec_commit)(wrk_conn_t *c, const char *sql, const db_val_t *params, int nparams);
    /* Optional: exec whose result is only its error; may wait for the
       next statement and go with it (wrk_db_exec_quiet). */
    db_rc_t (*exec_quiet)(wrk_conn_t *c, const char *sql, const db_val_t *params, int nparams);
} wrk_driver_t;

/* Every connection starts with these fields (drivers embed it first). */
struct wrk_conn_s {
    const wrk_driver_t *drv;
    db_rows_t rows;
    char err[512];
    /* Counters the pool collects when the connection comes back. trips:
       round trips to the server, counted by the driver (what a step costs
       on a small machine; 0 for SQLite, which has no server). */
    uint64_t queries, query_ns, slow_queries, errors, trips;
    uint32_t slow_ms; /* a statement slower than this is counted as slow */
    uint64_t idle_since_ms;
};

/* The driver for a URI ("sqlite:PATH", "postgresql://...", ...), or NULL
   with err set. */
const wrk_driver_t *wrk_db_driver(const char *uri, char *err, size_t errlen);
/* uri with its password masked, for logs and messages. Returns out. */
const char *wrk_db_redact(const char *uri, char *out, size_t outlen);
wrk_conn_t *wrk_db_connect(const char *uri, char *err, size_t errlen);
void wrk_db_close(wrk_conn_t **c_p);

/* Run a statement: wrk_db_exec(c, "UPDATE t SET a = ? WHERE b = ?", DB_I(1), DB_S("x")) */
#define wrk_db_exec(c, sql, ...)                                                                   \
    wrk_db_execv((c), (sql), (db_val_t[]){ DB_NULLV, ##__VA_ARGS__ } + 1,                          \
                 (int)(sizeof((db_val_t[]){ DB_NULLV, ##__VA_ARGS__ }) / sizeof(db_val_t)) - 1)
db_rc_t wrk_db_execv(wrk_conn_t *c, const char *sql, const db_val_t *params, int n);
/* A last statement and the commit, together where the driver can: the
   statement's failure or the commit's, either way the caller rolls back. */
#define wrk_db_exec_commit(c, sql, ...)                                                            \
    wrk_db_execv_commit(                                                                           \
        (c), (sql), (db_val_t[]){ DB_NULLV, ##__VA_ARGS__ } + 1,                                   \
        (int)(sizeof((db_val_t[]){ DB_NULLV, ##__VA_ARGS__ }) / sizeof(db_val_t)) - 1)
db_rc_t wrk_db_execv_commit(wrk_conn_t *c, const char *sql, const db_val_t *params, int n);
/* A statement whose result is only its error (an INSERT of a record): a
   driver that pipelines (PostgreSQL) sends it with the next statement of
   the transaction, in one round trip, and an error of it is then that
   statement's (or the commit's); others run it at once. Its rows and
   changes are not to be read. */
#define wrk_db_exec_quiet(c, sql, ...)                                                             \
    wrk_db_execv_quiet((c), (sql), (db_val_t[]){ DB_NULLV, ##__VA_ARGS__ } + 1,                    \
                       (int)(sizeof((db_val_t[]){ DB_NULLV, ##__VA_ARGS__ }) / sizeof(db_val_t)) - \
                           1)
db_rc_t wrk_db_execv_quiet(wrk_conn_t *c, const char *sql, const db_val_t *params, int n);
db_rc_t wrk_db_begin(wrk_conn_t *c, db_iso_t iso, uint32_t statement_timeout_ms);
db_rc_t wrk_db_commit(wrk_conn_t *c);
void wrk_db_rollback(wrk_conn_t *c);
const char *wrk_db_error(const wrk_conn_t *c);
db_dialect_t wrk_db_dialect(const wrk_conn_t *c);
const char *wrk_db_rc_name(db_rc_t rc);
/* "read-committed", "repeatable-read" or "serializable"; -1 otherwise. */
int wrk_db_iso_parse(const char *name);

/* Result access after exec. */
int wrk_db_nrows(const wrk_conn_t *c);
int64_t wrk_db_changes(const wrk_conn_t *c);
const db_val_t *wrk_db_val(const wrk_conn_t *c, int row, int col);
int64_t wrk_db_int(const wrk_conn_t *c, int row, int col);
/* NUL-terminated text ("" for NULL). */
const char *wrk_db_text(const wrk_conn_t *c, int row, int col);

/* For drivers: set ncols, then push each value of each row in order. */
void db_rows_reset(db_rows_t *r);
void db_rows_push(db_rows_t *r, db_type_t type, int64_t i, const char *s, size_t len);
void db_rows_free(db_rows_t *r);
/* Set the connection error text (printf style) and return rc. */
db_rc_t wrk_db_fail(wrk_conn_t *c, db_rc_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern const wrk_driver_t wrk_driver_sqlite, wrk_driver_pg, wrk_driver_mysql, wrk_driver_redis;

#endif
