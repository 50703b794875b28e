/*  orc_saga: saga and step allocation and state names. See orc_saga.h. */
#include "orc_saga.h"

#include <stdlib.h>
#include <string.h>

static const char *s_saga_states[SAGA_NSTATES] = {
    [SAGA_RUNNING] = "running",     [SAGA_COMPENSATING] = "compensating",
    [SAGA_COMPLETED] = "completed", [SAGA_COMPENSATED] = "compensated",
    [SAGA_PARKED] = "parked",       [SAGA_RESOLVED] = "resolved",
};

static const char *s_step_states[STEP_NSTATES] = {
    [STEP_PENDING] = "pending",
    [STEP_READY] = "ready",
    [STEP_RUNNING] = "running",
    [STEP_WAITING] = "waiting",
    [STEP_SUCCEEDED] = "succeeded",
    [STEP_FAILED] = "failed",
    [STEP_SKIPPED] = "skipped",
    [STEP_COMP_PENDING] = "compensation_pending",
    [STEP_COMP_READY] = "compensation_ready",
    [STEP_COMP_RUNNING] = "compensating",
    [STEP_COMP_WAITING] = "compensation_waiting",
    [STEP_COMPENSATED] = "compensated",
    [STEP_COMP_PARKED] = "compensation_parked",
};

orc_saga_t *orc_saga_new(msg_saga_t *def)
{
    orc_saga_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->steps = calloc(def->nsteps, sizeof *self->steps);
    if (!self->steps) {
        free(self);
        return NULL;
    }
    self->def = def;
    return self;
}

void orc_saga_destroy(orc_saga_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    orc_saga_t *self = *self_p;
    for (uint32_t i = 0; i < self->def->nsteps; i++) {
        free(self->steps[i].error);
        free(self->steps[i].output);
    }
    free(self->steps);
    free(self->reason);
    msg_saga_destroy(&self->def);
    free(self);
    *self_p = NULL;
}

void orc_saga_unref(orc_saga_t *self)
{
    if (self->refs)
        self->refs--;
    if (!self->refs && !self->in_table)
        orc_saga_destroy(&self);
}

const char *orc_saga_state_name(uint8_t state)
{
    return state > 0 && state < SAGA_NSTATES ? s_saga_states[state] : "unknown";
}

int orc_saga_state_parse(const char *name)
{
    for (int i = 1; i < SAGA_NSTATES; i++)
        if (strcmp(name, s_saga_states[i]) == 0)
            return i;
    return -1;
}

const char *orc_step_state_name(uint8_t state)
{
    return state < STEP_NSTATES ? s_step_states[state] : "unknown";
}

bool orc_saga_terminal(uint8_t state)
{
    return state == SAGA_COMPLETED || state == SAGA_COMPENSATED || state == SAGA_PARKED ||
           state == SAGA_RESOLVED;
}

void orc_set_text(char **slot, const char *text)
{
    free(*slot);
    *slot = text ? strdup(text) : NULL;
}
