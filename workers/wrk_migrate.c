/*  wrk_migrate: schema versions. See wrk_migrate.h. */
#include "wrk_migrate.h"
#include "wrk_step.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_schema_ddl =
    "CREATE TABLE IF NOT EXISTS zsaga_schema (version INTEGER PRIMARY KEY,"
    " name VARCHAR(128) NOT NULL, applied_ms BIGINT NOT NULL)";

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Redis keeps applied versions in the hash zsaga:schema (version ->
   name). A Redis migration is one Lua script and is not atomic with its
   record: it must be safe to run again. */
static const char *s_redis_version = "local m = -1\n"
                                     "for _, k in ipairs(redis.call('HKEYS', 'zsaga:schema')) do\n"
                                     "  if tonumber(k) > m then m = tonumber(k) end\n"
                                     "end\n"
                                     "return m";
static const char *s_redis_record =
    "if ARGV[3] == '1' then return redis.call('HSET', 'zsaga:schema', ARGV[1], ARGV[2]) end\n"
    "return redis.call('HDEL', 'zsaga:schema', ARGV[1])";

/* Run each ';'-separated statement of sql (a Redis migration: the whole
   script). */
static db_rc_t s_run_script(wrk_conn_t *db, const char *sql)
{
    if (wrk_db_dialect(db) == DB_DIALECT_REDIS)
        return wrk_db_execv(db, sql, NULL, 0);
    char *copy = strdup(sql);
    db_rc_t rc = DB_OK;
    if (!copy)
        return wrk_db_fail(db, DB_RETRY, "out of memory");
    for (char *save = NULL, *st = strtok_r(copy, ";", &save); st && !rc;
         st = strtok_r(NULL, ";", &save)) {
        while (*st == ' ' || *st == '\n' || *st == '\t')
            st++;
        if (*st)
            rc = wrk_db_execv(db, st, NULL, 0);
    }
    free(copy);
    return rc;
}

int wrk_migrate_version(wrk_conn_t *db, char *err, size_t errlen)
{
    if (wrk_db_dialect(db) == DB_DIALECT_REDIS) {
        if (wrk_db_execv(db, s_redis_version, NULL, 0)) {
            snprintf(err, errlen, "schema version: %s", wrk_db_error(db));
            return -2;
        }
        return (int)wrk_db_int(db, 0, 0);
    }
    if (wrk_db_execv(db, s_schema_ddl, NULL, 0) ||
        wrk_db_exec(db, "SELECT MAX(version) FROM zsaga_schema")) {
        snprintf(err, errlen, "schema version: %s", wrk_db_error(db));
        return -2;
    }
    const db_val_t *v = wrk_db_val(db, 0, 0);
    return v->type == DB_NULL ? -1 : (int)wrk_db_int(db, 0, 0);
}

static int s_apply(wrk_conn_t *db, int version, const char *name, const char *sql, bool up,
                   FILE *log, char *err, size_t errlen)
{
    db_rc_t rc = wrk_db_begin(db, DB_ISO_DEFAULT, 0);
    if (!rc)
        rc = s_run_script(db, sql);
    if (!rc && wrk_db_dialect(db) == DB_DIALECT_REDIS)
        rc = wrk_db_exec(db, s_redis_record, DB_I(version), DB_S(name), DB_I(up));
    else if (!rc)
        rc = up ? wrk_db_exec(
                      db, "INSERT INTO zsaga_schema (version, name, applied_ms) VALUES (?, ?, ?)",
                      DB_I(version), DB_S(name), DB_I(s_wall_ms()))
                : wrk_db_exec(db, "DELETE FROM zsaga_schema WHERE version = ?", DB_I(version));
    if (!rc)
        rc = wrk_db_commit(db);
    if (rc) {
        snprintf(err, errlen, "migration %d (%s) %s failed: %s", version, name, up ? "up" : "down",
                 wrk_db_error(db));
        wrk_db_rollback(db);
        return -1;
    }
    if (log)
        fprintf(log, "migrated %s %d: %s\n", up ? "up to" : "down from", version, name);
    return 0;
}

int wrk_migrate_up(wrk_conn_t *db, const wrk_migration_t *m, int n, int target, FILE *log,
                   char *err, size_t errlen)
{
    int cur = wrk_migrate_version(db, err, errlen);
    db_dialect_t d = wrk_db_dialect(db);
    if (cur < -1)
        return -1;
    if (cur < 0 && s_apply(db, 0, "zsaga barrier", wrk_barrier_ddl(d), true, log, err, errlen))
        return -1;
    for (int i = 0; i < n; i++) {
        if (m[i].version <= cur || (target >= 0 && m[i].version > target))
            continue;
        if (!m[i].up[d]) {
            snprintf(err, errlen, "migration %d (%s) has no SQL for this database", m[i].version,
                     m[i].name);
            return -1;
        }
        if (s_apply(db, m[i].version, m[i].name, m[i].up[d], true, log, err, errlen))
            return -1;
    }
    return 0;
}

int wrk_migrate_down(wrk_conn_t *db, const wrk_migration_t *m, int n, int target, FILE *log,
                     char *err, size_t errlen)
{
    int cur = wrk_migrate_version(db, err, errlen);
    db_dialect_t d = wrk_db_dialect(db);
    if (cur < -1)
        return -1;
    for (int i = n - 1; i >= 0; i--) {
        if (m[i].version > cur || m[i].version <= target)
            continue;
        if (!m[i].down[d]) {
            snprintf(err, errlen, "migration %d (%s) cannot be reverted", m[i].version, m[i].name);
            return -1;
        }
        if (s_apply(db, m[i].version, m[i].name, m[i].down[d], false, log, err, errlen))
            return -1;
    }
    return 0;
}

int wrk_migrate_status(wrk_conn_t *db, const wrk_migration_t *m, int n, FILE *out, char *err,
                       size_t errlen)
{
    int cur = wrk_migrate_version(db, err, errlen);
    if (cur < -1)
        return -1;
    fprintf(out, "schema version: %d\n", cur);
    for (int i = 0; i < n; i++)
        fprintf(out, "  %3d  %-8s %s\n", m[i].version, m[i].version <= cur ? "applied" : "pending",
                m[i].name);
    return 0;
}
