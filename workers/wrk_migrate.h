/*  wrk_migrate: versioned schema migrations with up and down.

    Each system lists its migrations in order, with SQL per dialect
    (statements separated by ';'). Version 0 belongs to the runtime: the
    barrier table. Applied versions are rows of zsaga_schema in the
    system's own database. Each migration runs in one transaction with its
    zsaga_schema row, so on engines with transactional DDL (SQLite,
    PostgreSQL) a failed migration leaves the previous version intact;
    MariaDB commits each DDL statement on its own, see docs/operations.md.
    Running up twice is a no-op. Errors are text in err.
*/
#ifndef ZSAGA_WRK_MIGRATE_H
#define ZSAGA_WRK_MIGRATE_H

#include "wrk_db.h"

#include <stdio.h>

typedef struct {
    int version;
    const char *name;
    const char *up[DB_DIALECTS]; /* by db_dialect_t; NULL: not available */
    const char *down[DB_DIALECTS];
} wrk_migration_t;

/* Apply every pending migration up to `target` (-1: all). */
int wrk_migrate_up(wrk_conn_t *db, const wrk_migration_t *m, int n, int target, FILE *log,
                   char *err, size_t errlen);
/* Revert applied migrations above `target`, newest first. */
int wrk_migrate_down(wrk_conn_t *db, const wrk_migration_t *m, int n, int target, FILE *log,
                     char *err, size_t errlen);
/* The highest applied version, or -1 if none. */
int wrk_migrate_version(wrk_conn_t *db, char *err, size_t errlen);
int wrk_migrate_status(wrk_conn_t *db, const wrk_migration_t *m, int n, FILE *out, char *err,
                       size_t errlen);

#endif
