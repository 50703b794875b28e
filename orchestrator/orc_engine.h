/*  orc_engine: the saga state machine, dispatch to workers, timers, and
    group commit to the journal. No sockets: the server feeds it decoded
    messages and sends what it leaves in its outbox, so tests can drive it.

    One batch:
        orc_engine_now(e, clock)
        ... orc_engine_submit / ready / heartbeat / result / cancel ...
        orc_engine_tick(e)      deadlines, backoffs, dead workers
        orc_engine_pump(e)      give ready steps to workers with room
        orc_engine_commit(e)    one LMDB write transaction for it all
        ... send orc_engine_dispatches() and orc_engine_events() ...
        orc_engine_outbox_clear(e)
    If commit fails (a full map, say) every saga the batch touched is
    reloaded from the journal and the outbox is dropped: memory never runs
    ahead of the journal, and the lost work is redone from what is durable.
    A reload that fails too (the journal's database unreachable) is tried
    again at every tick until it works.

    Functions that answer a client return NULL on success, or an error code
    ("unknown_system", "conflict", "journal_full", "not_found", ...) with a
    reason in err. Single thread.
*/
#ifndef ZSAGA_ORC_ENGINE_H
#define ZSAGA_ORC_ENGINE_H

#include "journal/jnl.h"
#include "orc_registry.h"
#include "orc_saga.h"

typedef struct {
    uint32_t heartbeat_timeout_ms; /* a worker silent this long is dead */
    uint32_t reserve_pct;          /* map share kept for running sagas */
    uint64_t seed;                 /* backoff jitter */
    uint64_t crash_in_commit;      /* failure tests only: die by SIGKILL in
                                      the middle of this commit (its records
                                      written, not committed); 0 never */
    uint64_t crash_after_commit;   /* failure tests only: die by SIGKILL once
                                      this commit is durable, before anything
                                      that follows from it is sent */
    uint64_t fail_in_commit;       /* tests only: this commit (counting the
                                      failed ones) fails after its records
                                      are written; 0 never */
    uint32_t max_systems;          /* systems the catalog may hold; 0: 64 */
    /* Retention of ended (completed, compensated, resolved) sagas: removed
       once older than retain_ms (0: age alone removes none) or beyond the
       newest retain_count (0: no count limit), and at any age when the
       journal is nearly full. Parked sagas are never removed. */
    uint64_t retain_ms;
    uint64_t retain_count;
    uint64_t tomb_ms;              /* a removed saga's id is still known this long */
    bool archive;                  /* remove only what orc_engine_archived has allowed */
    struct orc_metrics_s *metrics; /* fed each committed event; NULL: none */
} orc_config_t;

typedef struct {
    orc_saga_t *saga; /* holds a reference */
    uint32_t step;
    msg_phase_t phase;
    uint32_t attempt;
    uint64_t lease;
    char rid[MSG_ID_MAX + 1];
    uint8_t *params; /* resolved params, owned */
    size_t params_len;
} orc_dispatch_t;

typedef struct {
    uint64_t commits, commit_failures;
    uint64_t batch_items; /* state changes written, summed over commits */
    uint64_t dispatched, results, stale_results, fenced_results, forged_results, timeouts,
        workers_lost, ready_refused;
    uint64_t sagas_started, sagas_completed, sagas_compensated, sagas_parked;
    uint64_t sagas_removed, records_removed, tombs_expired, pressure_sweeps;
} orc_stats_t;

typedef struct orc_engine_s orc_engine_t;

/* Opens on a journal and resumes every saga that has not ended. */
/* Two clocks: wall-clock ms stamp records and age them for retention;
   monotonic ms drive every timer, so a stepped clock moves no deadline. */
orc_engine_t *orc_engine_new(jnl_t *jnl, const orc_config_t *cfg, uint64_t now_ms, uint64_t mono_ms,
                             char *err, size_t errlen);
void orc_engine_destroy(orc_engine_t **self_p);
void orc_engine_now(orc_engine_t *self, uint64_t wall_ms, uint64_t mono_ms);

/* Takes the definition (sets *def_p to NULL) unless it fails. On success
 *state is the saga's state and *duplicate tells whether it existed. */
const char *orc_engine_submit(orc_engine_t *self, msg_saga_t **def_p, uint8_t *state,
                              bool *duplicate, char *err, size_t errlen);
/* Operator commands record who gave them (a key's name) in the history. */
const char *orc_engine_cancel(orc_engine_t *self, const char *id, const char *who,
                              const char *reason, char *err, size_t errlen);
/* Operator: give a parked saga's compensations a fresh set of tries. */
const char *orc_engine_retry(orc_engine_t *self, const char *id, const char *who, char *err,
                             size_t errlen);
/* Operator: close a parked saga by hand. The note is required. */
const char *orc_engine_resolve(orc_engine_t *self, const char *id, const char *who,
                               const char *note, char *err, size_t errlen);

/* A worker registers from connection rid with key (its public key, "" in
   insecure mode; key_name for people). The caller has checked the key's
   grant. Refused with "instance_taken" (another key holds that instance),
   "journal_full" (a new system or operation would eat the running sagas'
   reserve) or "limit" (too many systems or operations). A new connection
   of a known instance under the same key is a restart: the old
   connection's steps are sent again at once. */
const char *orc_engine_ready(orc_engine_t *self, const char *rid, const char *key,
                             const char *key_name, const msg_t *m, char *err, size_t errlen);
/* False if the worker is not registered (it should send ready again). */
bool orc_engine_heartbeat(orc_engine_t *self, const char *rid);
/* A result counts only from the worker the step's latest lease went to,
   under that lease. Anything else is dropped and counted: an older lease
   is fenced (a zombie); the latest lease from anyone else is forged. */
void orc_engine_result(orc_engine_t *self, const char *rid, const msg_t *m);

void orc_engine_tick(orc_engine_t *self);
void orc_engine_pump(orc_engine_t *self);
/* Returns 0, or an LMDB code after rolling memory back to the journal. */
int orc_engine_commit(orc_engine_t *self, char *err, size_t errlen);

/* Pipelined group commit (zsagad's loop, with jnl_pipeline): start packs
   the batch, hands it to the journal's committer and returns; the loop
   then reads and applies the next batch in memory while it commits.
   The outbox moves with the flight, and lands with it: once commit_end
   has returned true with *rc 0, orc_engine_dispatches and
   orc_engine_events give the landed flight's, to send (the next flight
   may be started first, so sending overlaps its commit) and clear before
   the next commit_end. end(wait) blocks; without wait it returns false
   while the commit runs. A failed flight fails the
   batch being collected too (it was built on the failed one's memory):
   both outboxes are dropped and every saga either touched is reloaded.
   Start is refused (EBUSY) while a flight has not ended; a flight with
   nothing to write, or that failed to start, has ended at once. */
bool orc_engine_commit_busy(orc_engine_t *self);
int orc_engine_commit_start(orc_engine_t *self, char *err, size_t errlen);
bool orc_engine_commit_end(orc_engine_t *self, bool wait, int *rc, char *err, size_t errlen);

orc_dispatch_t *orc_engine_dispatches(orc_engine_t *self, size_t *n);
orc_event_t *orc_engine_events(orc_engine_t *self, size_t *n);
void orc_engine_outbox_clear(orc_engine_t *self);

/* Retention: does the next commit have ended sagas to remove (or
   tombstones to expire)? The caller commits when it does, even with
   nothing else to write; each commit removes a small batch. */
bool orc_engine_sweep_due(orc_engine_t *self);
/* With cfg.archive: every saga up to ended sequence seq is in a durable
   archive file and may be removed (persisted with the next commit). */
void orc_engine_archived(orc_engine_t *self, uint64_t seq);
uint64_t orc_engine_archived_seq(orc_engine_t *self);
/* Is the journal nearly full (archive without waiting)? */
bool orc_engine_pressure(orc_engine_t *self);

/* Earliest timer (monotonic ms), UINT64_MAX if none. */
uint64_t orc_engine_next_due(orc_engine_t *self);
jnl_t *orc_engine_journal(orc_engine_t *self);
orc_registry_t *orc_engine_registry(orc_engine_t *self);
const orc_stats_t *orc_engine_stats(orc_engine_t *self);
size_t orc_engine_active(orc_engine_t *self);
uint64_t orc_engine_boot(orc_engine_t *self);
/* The last event sequence number given (committed once the batch is). */
uint64_t orc_engine_history_seq(orc_engine_t *self);
/* Is the journal past the share reserved for running sagas? */
bool orc_engine_journal_full(orc_engine_t *self);

#endif
