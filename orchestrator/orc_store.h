/*  orc_store: the orchestrator's records in the journal, and loading a
    saga back from them.

    Records are msgpack arrays with a version number first, so a later
    release can read what an earlier one wrote:
      saga     [1, state, created_ms, updated_ms, reason|nil, hash-hex, definition]
      step     [1, state, flags, attempts, comp_attempts, started_ms, finished_ms,
                comp_started_ms, comp_finished_ms, due_ms, code, error|nil, output|nil,
                lease]   (a 13-element record, written before leases, reads as lease 0)
      history  [1, ts_ms, step index or -1, what, attempt, reason|nil]
      system   [1, [operation, ...]]
    Keys are described in journal/jnl.h. Every put joins the journal's open
    write transaction. A record that does not decode is reported, never
    guessed at. Single thread (the orchestrator's loop).
*/
#ifndef ZSAGA_ORC_STORE_H
#define ZSAGA_ORC_STORE_H

#include "journal/jnl.h"
#include "orc_registry.h"
#include "orc_saga.h"

/* Writes the header, and moves the index entry if the state changed. */
int orc_store_put_saga(jnl_t *jnl, msgpack_sbuffer *buf, orc_saga_t *saga);
int orc_store_put_step(jnl_t *jnl, msgpack_sbuffer *buf, const orc_saga_t *saga, uint32_t i);
int orc_store_put_event(jnl_t *jnl, msgpack_sbuffer *buf, const orc_event_t *ev);
int orc_store_put_system(jnl_t *jnl, msgpack_sbuffer *buf, const orc_system_t *sys);

/* Load one saga with its steps. Needs an open transaction. Returns NULL
   with *rc = MDB_NOTFOUND if unknown, or another code and err if corrupt. */
orc_saga_t *orc_store_load(jnl_t *jnl, const char *id, int *rc, char *err, size_t errlen);
/* Define every persisted system in reg. Needs an open transaction. */
int orc_store_load_systems(jnl_t *jnl, orc_registry_t *reg);

/* Call fn with each saga id in `state` (index order) until it returns
   non-zero. Needs an open transaction. */
typedef int(orc_store_id_fn)(void *arg, const char *id);
int orc_store_each_in_state(jnl_t *jnl, uint8_t state, orc_store_id_fn *fn, void *arg);

/* Call fn with each history record of a saga, oldest first. */
typedef int(orc_store_event_fn)(void *arg, const orc_event_t *ev);
int orc_store_each_event(jnl_t *jnl, const char *id, orc_store_event_fn *fn, void *arg);

#endif
