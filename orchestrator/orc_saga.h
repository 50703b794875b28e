/*  orc_saga: the orchestrator's in-memory saga and step state.

    A saga in memory is its immutable definition (msg_saga_t) plus one
    orc_step_t per step. The state machine that moves them is in
    orc_engine.c (its header comment has the diagram and invariants); this
    file only names the states and owns allocation.

    refs counts timer and queue entries that point at the saga: a saga that
    left the active table is freed when the last one drops. Single thread.
*/
#ifndef ZSAGA_ORC_SAGA_H
#define ZSAGA_ORC_SAGA_H

#include "messages/msg.h"

typedef enum {
    SAGA_RUNNING = 1,
    SAGA_COMPENSATING,
    SAGA_COMPLETED,   /* terminal: every step succeeded */
    SAGA_COMPENSATED, /* terminal: every step that may have acted was undone */
    SAGA_PARKED,      /* a compensation ran out of retries: needs an operator */
    SAGA_RESOLVED,    /* terminal: an operator resolved a parked saga by hand */
    SAGA_NSTATES
} orc_saga_state_t;

typedef enum {
    STEP_PENDING = 0,  /* waiting for its dependencies */
    STEP_READY,        /* queued for a worker of its system */
    STEP_RUNNING,      /* action sent; waiting for the result or the deadline */
    STEP_WAITING,      /* backing off before the next try */
    STEP_SUCCEEDED,    /* action committed */
    STEP_FAILED,       /* action failed for good and rolled back */
    STEP_SKIPPED,      /* never ran: the saga stopped first */
    STEP_COMP_PENDING, /* to undo, after every dependent step is undone */
    STEP_COMP_READY,   /* compensation queued for a worker */
    STEP_COMP_RUNNING, /* compensation sent */
    STEP_COMP_WAITING, /* compensation backing off */
    STEP_COMPENSATED,  /* compensation committed (or nothing to undo) */
    STEP_COMP_PARKED,  /* compensation ran out of tries */
    STEP_NSTATES
} orc_step_state_t;

typedef struct {
    uint8_t state;
    bool maybe_applied; /* some try's outcome is unknown: compensate it */
    bool resend;        /* next dispatch repeats the current try (no new attempt) */
    bool queued;        /* an entry for it sits in its system's queue */
    uint32_t attempts, comp_attempts;
    uint64_t lease; /* number of the last dispatch (either phase); only its
                       holder's result counts */
    uint64_t started_ms, finished_ms, comp_started_ms, comp_finished_ms;
    uint64_t due_ms;       /* deadline (RUNNING) or next try (WAITING), 0 if none;
                              monotonic ms in memory, wall-clock ms in the journal */
    uint32_t timer_slot;   /* its entry in the engine's timer heap, 0 if none */
    uint32_t act_worker;   /* serial of the worker holding the action, 0 if none */
    uint32_t comp_worker;  /* same for the compensation */
    uint64_t act_lease;    /* the lease act_worker was given */
    uint64_t comp_lease;   /* the lease comp_worker was given */
    uint32_t lease_worker; /* serial of the worker the latest lease went to;
                              kept after release: only it may answer */
    char code[MSG_CODE_MAX + 1];
    char *error;     /* last error text, owned */
    uint8_t *output; /* action output map, owned */
    uint32_t output_len;
    uint64_t sent_us; /* monotonic µs of the last dispatch (metrics only; 0 after a restart) */
} orc_step_t;

typedef struct orc_saga_s {
    msg_saga_t *def;
    uint8_t state;
    uint8_t journaled_state; /* state in the journal's index; 0 if none */
    bool def_journaled;      /* definition record written (written once) */
    bool dirty;              /* header to write in this batch */
    bool in_table;           /* in the engine's active table */
    bool listed;             /* on the engine's dirty list */
    bool in_fly;             /* on the list of the batch being committed */
    uint64_t dirty_steps;    /* steps to write in this batch */
    uint64_t created_ms, updated_ms;
    char *reason; /* why it compensated or parked, owned */
    uint8_t hash[16];
    uint32_t refs;
    orc_step_t *steps;
    struct orc_saga_s *dirty_next;
    struct orc_saga_s *fly_next;
} orc_saga_t;

/* One transition, as written to the history and published as an event.
   `what` is static text: "saga.completed", "step.dispatched", ... */
typedef struct {
    uint64_t seq, ts_ms;
    char id[MSG_ID_MAX + 1];
    int32_t step; /* step index, -1 for the saga itself */
    char step_id[MSG_ID_MAX + 1];
    const char *what;
    uint32_t attempt;
    char *reason; /* owned, may be NULL */
    /* For metrics, never journaled: the saga (valid until the batch's
       commit ends) and, for a result, microseconds since its dispatch;
       for a saga's end, since it was submitted (0: unknown). */
    const struct orc_saga_s *saga;
    uint64_t took_us;
} orc_event_t;

/* Takes ownership of def. NULL when out of memory. */
orc_saga_t *orc_saga_new(msg_saga_t *def);
void orc_saga_destroy(orc_saga_t **self_p);
/* Drop one reference; frees the saga when it is out of the table and
   unreferenced. */
void orc_saga_unref(orc_saga_t *self);

const char *orc_saga_state_name(uint8_t state);
int orc_saga_state_parse(const char *name);
const char *orc_step_state_name(uint8_t state);
bool orc_saga_terminal(uint8_t state);

/* Replace an owned string (NULL clears). */
void orc_set_text(char **slot, const char *text);

#endif
