/*  wrk_runtime: everything a worker program shares; a system only supplies
    its operations, its migrations and any commands of its own.

        int main (int argc, char **argv) {
            return wrk_main (&banking_system, argc, argv);
        }

    `<worker> [run]` connects to zsagad, registers (system, instance,
    capacity, operations), heartbeats, and runs up to `capacity` steps at
    once, each on its own executor thread with a pooled connection.
    `<worker> migrate status|up|down [VERSION]` manages the schema. Other
    commands go to the system's own command function.

    Threads: the main thread owns the socket to zsagad and talks to the
    executors only by ZeroMQ messages over inproc PAIR sockets. Executors
    share the pool (which locks) and nothing else.
*/
#ifndef ZSAGA_WRK_RUNTIME_H
#define ZSAGA_WRK_RUNTIME_H

#include "wrk_migrate.h"
#include "wrk_step.h"

typedef struct {
    const char *name; /* system name, as sagas refer to it */
    const wrk_op_t *ops;
    int nops;
    const wrk_migration_t *migrations;
    int nmigrations;
    /* Extra commands ("verify-audit"...): return the exit code, or -1 if
       cmd is not one of them. May be NULL. */
    int (*command)(wrk_conn_t *db, const char *cmd, int argc, char **argv);
    /* `seed-demo`: insert the demo's data. The runtime migrates first and
       runs it in one transaction. May be NULL. */
    db_rc_t (*seed_demo)(wrk_conn_t *db);
    const char *commands_help; /* lines for --help */
} wrk_system_t;

int wrk_main(const wrk_system_t *sys, int argc, char **argv);

/* Current wall-clock time in ms. */
int64_t wrk_now_ms(void);

#endif
