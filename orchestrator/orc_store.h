/*  orc_store: the orchestrator's records in the journal, and loading a
    saga back from them.

    Records are msgpack arrays with a version number first, so a later
    release can read what an earlier one wrote:
      def      [2, created_ms, hash (bin 16), definition]   written once
      saga     [2, state, updated_ms, reason|nil]            per transition
               (a v1 saga record, [1, state, created_ms, updated_ms,
               reason|nil, hash-hex, definition], still reads)
      tomb     [1, removed_ms, state, created_ms, hash (bin 16)]
      step     [1, state, flags, attempts, comp_attempts, started_ms, finished_ms,
                comp_started_ms, comp_finished_ms, due_ms, code, error|nil, output|nil,
                lease]   (a 13-element record, written before leases, reads as lease 0)
      history  [1, ts_ms, step index or -1, what, attempt, reason|nil]
      system   [1, [operation, ...], {operation: [params schema, outputs schema]}]
               (a 2-element record, written before schemas, still reads)
    Keys are described in journal/jnl.h. Every put joins the journal's open
    write transaction. A record that does not decode is reported, never
    guessed at. Single thread (the orchestrator's loop).
*/
#ifndef ZSAGA_ORC_STORE_H
#define ZSAGA_ORC_STORE_H

#include "journal/jnl.h"
#include "orc_registry.h"
#include "orc_saga.h"

/* Completed, compensated or resolved: the saga is over for good and
   retention may remove it (parked is not: an operator still owes it). */
bool orc_store_ended(uint8_t state);

/* Writes the state record (and the definition, once), moves the index
   entry if the state changed, and gives a saga that just ended the next
   ended sequence number (*ended_seq is the last one given). */
int orc_store_put_saga(jnl_t *jnl, msgpack_sbuffer *buf, orc_saga_t *saga, uint64_t *ended_seq);
/* Due times are kept in memory on the monotonic clock; wall_minus_mono
   turns them into the wall-clock times the journal holds. */
int orc_store_put_step(jnl_t *jnl, msgpack_sbuffer *buf, const orc_saga_t *saga, uint32_t i,
                       int64_t wall_minus_mono);
int orc_store_put_event(jnl_t *jnl, msgpack_sbuffer *buf, const orc_event_t *ev);
int orc_store_put_system(jnl_t *jnl, msgpack_sbuffer *buf, const orc_system_t *sys);

/* Load one saga with its steps. Needs an open transaction. Returns NULL
   with *rc = MDB_NOTFOUND if unknown, or another code and err if corrupt. */
orc_saga_t *orc_store_load(jnl_t *jnl, const char *id, int *rc, char *err, size_t errlen);
/* State, hash and creation time of a saga, without loading it. */
int orc_store_peek(jnl_t *jnl, const char *id, uint8_t *state, uint8_t hash[16],
                   uint64_t *created_ms);
/* Define every persisted system in reg. Needs an open transaction. */
int orc_store_load_systems(jnl_t *jnl, orc_registry_t *reg);

/* Call fn with each saga id in `state` (index order) until it returns
   non-zero. Needs an open transaction. */
typedef int(orc_store_id_fn)(void *arg, const char *id);
int orc_store_each_in_state(jnl_t *jnl, uint8_t state, orc_store_id_fn *fn, void *arg);

/* Call fn with each history record of a saga, oldest first. */
typedef int(orc_store_event_fn)(void *arg, const orc_event_t *ev);
int orc_store_each_event(jnl_t *jnl, const char *id, orc_store_event_fn *fn, void *arg);

/* The event stream from the journal: every history record after sequence
   number `after`, in sequence order, until fn returns non-zero. Records of
   sagas removed by retention are gone; orc_store_first_seq is the oldest
   still kept (0: none). Needs an open transaction. */
int orc_store_events_after(jnl_t *jnl, uint64_t after, orc_store_event_fn *fn, void *arg);
uint64_t orc_store_first_seq(jnl_t *jnl);

/* Pack the status view of a saga (docs/protocol.md, "saga"): its state,
   every step, and its history from the journal. */
void orc_store_pack_status(jnl_t *jnl, msgpack_packer *pk, const orc_saga_t *saga);

/* ---- lifecycle ---- */

/* Journals of an older layout get their index, created and ended keys
   rebuilt once. *ended_seq gets the last ended sequence number. */
int orc_store_upgrade(jnl_t *jnl, uint64_t *ended_seq, char *err, size_t errlen);

/* Ended sagas in the order they ended: fn gets each one's sequence number,
   id and end time, from after_seq on, until it returns non-zero. */
typedef int(orc_store_ended_fn)(void *arg, uint64_t seq, const char *id, uint64_t ended_ms);
int orc_store_each_ended(jnl_t *jnl, uint64_t after_seq, orc_store_ended_fn *fn, void *arg);
/* Drop an ended-order entry (the saga is removed, or already gone). */
int orc_store_unend(jnl_t *jnl, uint64_t seq, const char *id);

/* Remove an ended saga: definition, state, steps, history and index
   entries; with tombstone, leave its id, final state and hash behind.
   EINVAL if the saga has not ended. *records: how many were deleted. */
int orc_store_remove(jnl_t *jnl, msgpack_sbuffer *buf, const char *id, uint64_t now_ms,
                     bool tombstone, size_t *records);

typedef struct {
    uint64_t removed_ms, created_ms;
    uint8_t state;
    uint8_t hash[16];
} orc_tomb_t;
/* The tombstone of a removed saga, or MDB_NOTFOUND. */
int orc_store_tomb(jnl_t *jnl, const char *id, orc_tomb_t *t);
/* Drop up to max (at most 32) tombstones left before before_ms, oldest
   first. */
int orc_store_expire_tombs(jnl_t *jnl, uint64_t before_ms, size_t max, size_t *n);

/* list: newest first, created before `from` (a position a previous page
   ended at) or at most until_ms, and at least since_ms; state 0 for all.
   fn returns non-zero to stop. */
typedef struct {
    uint64_t created_ms;
    char id[MSG_ID_MAX + 1];
} orc_store_cursor_t;
typedef int(orc_store_list_fn)(void *arg, uint64_t created_ms, const char *id);
int orc_store_list(jnl_t *jnl, int state, const orc_store_cursor_t *from, uint64_t since_ms,
                   uint64_t until_ms, orc_store_list_fn *fn, void *arg);

#endif
