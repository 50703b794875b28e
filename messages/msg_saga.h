/*  msg_saga: a saga definition as submitted, decoded and validated.

    A saga is a directed acyclic graph of at most MSG_MAX_STEPS steps. Each
    step names a system, an action, an optional compensation, its
    dependencies (ids of earlier-or-later steps in the same saga), params, a
    timeout and two retry policies (one for the action, one for the
    compensation). Decoding refuses: unknown fields, wrong types, oversized
    strings, duplicate step ids, unknown or repeated dependencies, cycles,
    and references "${step.key}" to a step that is not an ancestor.

    The definition is immutable once decoded. msg_saga_pack writes it in one
    canonical form: the journal stores those bytes, and resubmits are
    compared by them. Any thread; errors are text in err.
*/
#ifndef ZSAGA_MSG_SAGA_H
#define ZSAGA_MSG_SAGA_H

#include "mp.h"
#include "msg_limits.h"

typedef struct {
    uint32_t attempts;       /* tries in all, >= 1 */
    uint32_t backoff_ms;     /* delay before the second try */
    uint32_t backoff_max_ms; /* cap of the doubling delay */
} msg_retry_t;

typedef struct {
    char id[MSG_ID_MAX + 1];
    char system[MSG_NAME_MAX + 1];
    char action[MSG_NAME_MAX + 1];
    char compensation[MSG_NAME_MAX + 1]; /* "" when the action needs no undo */
    uint64_t deps;                       /* bit i: depends on steps[i] */
    uint32_t timeout_ms;
    msg_retry_t retry;
    msg_retry_t comp_retry;
    uint32_t params_off, params_len; /* slice of saga->params */
} msg_step_t;

typedef struct {
    char id[MSG_ID_MAX + 1];
    char name[MSG_SAGA_NAME_MAX + 1];
    uint32_t nsteps;
    msg_step_t *steps;
    uint8_t *params; /* every step's params map, back to back */
    size_t params_len;
} msg_saga_t;

/* Defaults for fields a submit leaves out. */
#define MSG_DEFAULT_TIMEOUT_MS       30000u
#define MSG_DEFAULT_ATTEMPTS         3u
#define MSG_DEFAULT_BACKOFF_MS       200u
#define MSG_DEFAULT_BACKOFF_MAX_MS   10000u
#define MSG_DEFAULT_COMP_ATTEMPTS    10u
#define MSG_DEFAULT_COMP_BACKOFF_MAX 30000u

/* Decode and validate one saga map at r. NULL on error, with err set. */
msg_saga_t *msg_saga_read(mp_reader_t *r, char *err, size_t errlen);
/* Same, from a whole buffer (the journal's stored form). */
msg_saga_t *msg_saga_decode(const void *buf, size_t len, char *err, size_t errlen);
void msg_saga_destroy(msg_saga_t **self_p);
/* Canonical encoding of the definition: params canonical, and every field
   that holds its default left out, so spelling a default out or not packs
   the same. */
void msg_saga_pack(const msg_saga_t *self, msgpack_packer *pk);

const uint8_t *msg_saga_step_params(const msg_saga_t *self, uint32_t i, size_t *len);
/* Index of the step with this id, or -1. */
int msg_saga_find(const msg_saga_t *self, const char *step_id);
/* Steps that list step i as a dependency. */
uint64_t msg_saga_dependents(const msg_saga_t *self, uint32_t i);
/* A topological order of the steps (dependencies first) into order[]. */
void msg_saga_order(const msg_saga_t *self, uint32_t *order);
/* Delay before try number `attempt` (2 is the first retry), without jitter. */
uint32_t msg_retry_delay(const msg_retry_t *policy, uint32_t attempt);

#endif
